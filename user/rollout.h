/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One rollout inside the agent: its spec, its persisted record, and the
 * counter snapshots its metric windows are cut from. Ties the pure
 * analysis to the world: reads the datapath's counters, writes the weight,
 * appends to the audit log and saves the record at every decision.
 */
#ifndef SLUICE_ROLLOUT_H
#define SLUICE_ROLLOUT_H

#include <stdint.h>

#include "analysis.h"
#include "datapath.h"
#include "metrics.h"
#include "spec.h"
#include "state.h"

/* Snapshots kept per rollout: windows are cut at this granularity at worst. */
#define ROLLOUT_MAX_SNAPS 16
/* A drill whose CLI vanished is ended by the agent after this long. */
#define ROLLOUT_DRILL_MAX_MS 60000
/* How often latency sampling follows the request rate between ticks. */
#define ROLLOUT_SAMPLE_EVERY_MS 1000

struct snapshot {
	uint64_t t_ms; /* monotonic */
	struct counters v[2]; /* SL_PRIMARY, SL_CANARY */
};

/* One webhook's last call, as the gates and checks read it. */
struct hook_slot {
	uint64_t token; /* the call in flight, 0 when none */
	uint64_t submitted_ms; /* wall clock of the last call */
	bool answered, ok, unread; /* unread: a failure not yet counted */
	int status;
	char error[96];
};

struct webhook_runner;

struct rollout {
	struct spec_canary spec;
	struct rollout_record rec;
	const struct dp_maps *maps;
	const char *state_dir;
	uint32_t svc_id;
	uint64_t next_tick_ms; /* monotonic */
	uint64_t spacing_ms; /* between snapshots */
	int n_snaps, cap_snaps, head; /* ring: head is the newest */
	struct snapshot *snaps; /* cap_snaps of them: most rollouts need two */
	uint64_t saved_ms; /* monotonic: the record's last write on a tick without news */
	struct webhook_runner *hooks; /* NULL: webhooks are not called */
	struct hook_slot hook[SPEC_MAX_WEBHOOKS];
	uint64_t gate_epoch_ms; /* the last weight or phase change: gates must be newer */
	uint64_t evict_at_ms; /* monotonic: when the rolled-back canary's flows go; 0: none */
	/* latency sampling: the agent's --latency-samples, the k in force, and the request
	 * count and time it was chosen at */
	uint32_t sample_min;
	uint8_t sample_shift;
	uint64_t sample_requests, sample_ms;
	/* a rollback drill in progress: what to put back afterwards */
	bool drill;
	uint64_t drill_started_ms; /* monotonic */
	struct rollout_status drill_saved;
};

/** rollout_revision() - a hash of what the rollout steers between: both version sets. */
uint64_t rollout_revision(const struct spec_canary *c);

/**
 * rollout_start() - take a rollout on: resume its saved record when the
 * revision is the same, otherwise start a new attempt; program the maps at
 * the record's weight. @hooks calls the spec's webhooks (NULL: none are).
 * Return: 0 or -errno (logged).
 */
int rollout_start(struct rollout *r, const struct spec_canary *c, const struct dp_maps *m,
		  const char *state_dir, struct webhook_runner *hooks, uint64_t now_ms);

/** rollout_update() - a reloaded spec for the same rollout (a new revision restarts it). */
int rollout_update(struct rollout *r, const struct spec_canary *c, uint64_t now_ms);

/** rollout_tick() - one analysis interval: snapshot, judge, decide, apply, record. */
void rollout_tick(struct rollout *r, uint64_t now_ms);

/**
 * rollout_command() - a person's command (pause, resume, ...). @msg gets
 * what happened or why not. Return: 0 or -EINVAL.
 */
int rollout_command(struct rollout *r, enum rollout_command cmd, uint16_t weight_bp, char *msg,
		    size_t msg_len);

/**
 * rollout_hook_result() - an answer to one of this rollout's webhook calls.
 * Return: true when @token was this rollout's. A `rollback` hook answering
 * 2xx rolls the canary back here and now.
 */
bool rollout_hook_result(struct rollout *r, uint64_t token, bool ok, int status,
			 const char *error);

/** rollout_next_due() - monotonic ms of the next thing this rollout must do. */
uint64_t rollout_next_due(const struct rollout *r);

/** rollout_housekeep() - work that is not a tick: draining a rolled-back canary. */
void rollout_housekeep(struct rollout *r, uint64_t now_ms);

/**
 * rollout_drill_start() - a rollback drill: the canary out of all traffic
 * at once (weight 0, primary only, its flows reset), analysis held, the
 * state kept to be put back by rollout_drill_end().
 */
int rollout_drill_start(struct rollout *r, char *msg, size_t msg_len);
/** rollout_drill_end() - record what the drill measured and put the rollout back. */
int rollout_drill_end(struct rollout *r, double measured_ms, char *msg, size_t msg_len);

/** rollout_free() - release a rollout the agent no longer runs. */
void rollout_free(struct rollout *r);

/** rollout_stop() - the rollout left the spec: stop steering its VIP, forget its record. */
void rollout_stop(struct rollout *r);

/**
 * rollout_backends() - the backend ids of a rollout's live slot bank and
 * each one's version (SL_PRIMARY or SL_CANARY). Return: how many, or -errno.
 */
int rollout_backends(const struct dp_maps *m, const struct spec_canary *c, uint32_t *ids,
		     uint8_t *versions, int max);

/** rollout_read_counters() - both versions' counters now, summed over their backends. */
int rollout_read_counters(const struct dp_maps *m, const struct spec_canary *c,
			  struct counters v[2]);

#endif /* SLUICE_ROLLOUT_H */
