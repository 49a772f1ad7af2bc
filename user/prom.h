/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's state and the datapath's counters in the Prometheus text
 * exposition format (version 0.0.4), for /metrics. docs/metrics.md lists
 * every metric and has the PromQL that mirrors the agent's judgement.
 */
#ifndef SLUICE_PROM_H
#define SLUICE_PROM_H

#include "datapath.h"
#include "rollout.h"

/** prom_render() - every metric, malloc'd; NULL only when out of memory. */
char *prom_render(struct rollout *const *rollouts, int n, const struct dp_maps *m);

#endif /* SLUICE_PROM_H */
