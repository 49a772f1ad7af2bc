/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `sluice history NAME --svg FILE`: one attempt of a rollout drawn as a
 * timeline a person can read at a glance: the canary weight, the success
 * rate and the p99 of each version at every decision, the thresholds, and
 * every decision marked, so it is plain why it was promoted or rolled back.
 */
#ifndef SLUICE_HISTORY_SVG_H
#define SLUICE_HISTORY_SVG_H

#include <cjson/cJSON.h>

/**
 * history_svg() - draw @attempt (an element of `sluice history --json`)
 * into the SVG file @path. Return: 0 or -errno.
 */
int history_svg(const cJSON *attempt, const char *path);

#endif /* SLUICE_HISTORY_SVG_H */
