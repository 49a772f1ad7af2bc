/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What outlives the agent besides the pinned maps: each rollout's status
 * (one JSON file per rollout, replaced atomically at every decision) and the
 * audit log (history.jsonl, one JSON line per decision). Both live in the
 * state dir. The CLI reads them too, so `sluice status` and `sluice history`
 * answer with the agent down.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "analysis.h"
#include "metrics.h"

#define STATE_DEFAULT_DIR "/var/lib/sluice"
#define STATE_NAME_MAX 512 /* "namespace/name" */

struct rollout_record {
	char name[STATE_NAME_MAX]; /* namespace/name */
	uint64_t revision; /* of the primary and canary sets; a change restarts the analysis */
	int attempt; /* 1, 2, ...: new revision or retry */
	struct rollout_status st;
	char primary_version[SPEC_VERSION_MAX];
	char canary_version[SPEC_VERSION_MAX];
	int threshold;
	uint16_t max_weight_bp;
	uint64_t interval_ms;
	uint64_t started_unix_ms; /* this attempt */
	uint64_t updated_unix_ms;
	uint64_t decided_unix_ms; /* the last decision (not every tick is one) */
	/* The last check's windows, for status. */
	bool has_last;
	struct window_metrics last_canary, last_primary;
	char last_action[16];
	char last_reason[224];
};

/** state_save() - write @r to STATE_DIR/rollouts/NS.NAME.json, atomically. */
int state_save(const char *dir, const struct rollout_record *r);
/** state_load() - read one rollout's record; -ENOENT when it has none. */
int state_load(const char *dir, const char *name, struct rollout_record *r);
/** state_list() - every record in the state dir, malloc'd array, sorted by name. */
int state_list(const char *dir, struct rollout_record **out, int *n);
/** state_remove() - forget a rollout (it left the spec). */
void state_remove(const char *dir, const char *name);

/** history_append() - one audit record (a JSON object) as a line of history.jsonl. */
int history_append(const char *dir, const cJSON *rec);

/** window_json() - a window's metrics as a JSON object (status, history). */
cJSON *window_json(const struct window_metrics *w);

uint64_t now_unix_ms(void);
/** unix_ms_format() - RFC 3339 UTC with milliseconds. */
void unix_ms_format(uint64_t ms, char *buf, size_t len);

#endif /* SLUICE_STATE_H */
