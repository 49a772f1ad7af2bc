/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rollout state machine and the judge, with Flagger's semantics
 * (shared/flagger-semantics.md): pure functions over a rollout's status and
 * the metrics of its windows. No I/O, no clock, no kernel: the agent feeds
 * them, the unit tests drive them tick by tick, and another judge (a
 * statistical one) can replace analysis_judge() without touching the rest.
 */
#ifndef SLUICE_ANALYSIS_H
#define SLUICE_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "spec.h"

enum rollout_phase {
	PHASE_INITIALIZED, /* loaded, no traffic to the canary yet */
	PHASE_PROGRESSING, /* checks running, weight moving */
	PHASE_WAITING, /* paused by a person (or a weight set by hand) */
	PHASE_PROMOTING, /* moving all traffic to the canary set */
	PHASE_SUCCEEDED,
	PHASE_FAILED,
};

const char *phase_name(enum rollout_phase p);
/** phase_parse() - the phase named @s; -1 when none is. */
int phase_parse(const char *s);

/* One metric of one check. */
struct metric_result {
	enum spec_metric_kind kind;
	bool no_data; /* nothing reached the canary in the window: a failed check */
	double value; /* percent, or ms */
	double threshold; /* the min or the max it is held to */
	bool passed;
	uint64_t window_ms;
};

struct check_result {
	bool passed;
	int n;
	struct metric_result m[SPEC_MAX_METRICS];
	char reason[192]; /* why it failed, for logs and history */
};

/**
 * analysis_judge() - hold the canary's metrics to the spec's thresholds.
 * @canary: one window per metric of @a, in the same order.
 */
void analysis_judge(const struct spec_analysis *a, const struct window_metrics *canary,
		    struct check_result *out);

/* What a rollout is, between ticks. Everything here is persisted. */
struct rollout_status {
	enum rollout_phase phase;
	uint16_t weight_bp; /* the canary weight the datapath has */
	int failed_checks; /* cumulative in this attempt (Flagger) */
	int iterations; /* passed checks (blue/green counts them) */
	bool paused; /* a person paused it: no decisions until resume */
	bool manual; /* the weight was set by hand: analysis holds until resume */
};

enum analysis_action {
	ACT_NONE, /* nothing to decide (finished, or paused) */
	ACT_START, /* first tick: traffic to the canary, no check at 0% */
	ACT_HOLD, /* check failed, threshold not reached: weight stays */
	ACT_STEP, /* check passed: next weight */
	ACT_ITERATE, /* blue/green: a passed check at 0% */
	ACT_PROMOTE, /* all traffic to the canary set */
	ACT_ROLLBACK, /* threshold reached: all new connections to primary */
	ACT_FREEZE, /* threshold reached, revertOnFailure false: weight kept, Failed */
	ACT_WAIT, /* a confirm-* webhook gate is closed: nothing moves, nothing fails */
};

/*
 * What the webhooks say this tick, as far as the state machine cares.
 * NULL means no webhooks: every gate open. The agent fills it from the
 * answers it has (user/rollout.c); a failing `rollout` webhook is folded
 * into the check instead, as one more failed metric.
 */
struct gates {
	bool confirm_rollout; /* open: the first step may go */
	bool confirm_traffic_increase; /* open: the next step may go */
	bool confirm_promotion; /* open: promotion may go */
	bool pre_rollout_done; /* every pre-rollout hook answered 2xx */
	bool pre_rollout_failed; /* one answered otherwise since the last tick */
	/* why each is closed or failed, for the decision's reason */
	char why_rollout[160], why_traffic[160], why_promotion[160], why_pre[160];
};

const char *action_name(enum analysis_action a);

struct decision {
	enum analysis_action action;
	uint16_t from_bp, to_bp;
	enum rollout_phase from_phase, to_phase;
	char reason[224];
};

/** analysis_needs_check() - does this tick judge metrics? (Not at 0%, not when done.) */
bool analysis_needs_check(const struct spec_canary *c, const struct rollout_status *st);

/**
 * analysis_tick() - one interval of a rollout: from @st and, when
 * analysis_needs_check() said so, @check, the next status and the decision.
 */
void analysis_tick(const struct spec_canary *c, struct rollout_status *st,
		   const struct check_result *check, const struct gates *g, struct decision *d);

/** analysis_next_weight() - the step after @bp (basis points), capped at the max weight. */
uint16_t analysis_next_weight(const struct spec_analysis *a, uint16_t bp);
/** analysis_max_weight() - the weight at which a passing check promotes, basis points. */
uint16_t analysis_max_weight(const struct spec_analysis *a);

/* What people can ask of a rollout (sluice pause|resume|promote|abort|retry|set-weight). */
enum rollout_command {
	CMD_PAUSE,
	CMD_RESUME,
	CMD_PROMOTE, /* one step now, without waiting for a check */
	CMD_PROMOTE_FULL, /* all the way now */
	CMD_ABORT, /* roll back now */
	CMD_RETRY, /* a Failed rollout starts over */
	CMD_SET_WEIGHT, /* hold the weight by hand; pauses the analysis */
};

/**
 * analysis_command() - apply a person's command to @st.
 * @weight_bp: for CMD_SET_WEIGHT.
 * Return: 0, or -EINVAL with @d->reason saying why the command does not
 * apply in this phase (e.g. retry of a rollout that has not failed).
 */
int analysis_command(const struct spec_canary *c, struct rollout_status *st,
		     enum rollout_command cmd, uint16_t weight_bp, struct decision *d);

/** analysis_restart() - a new revision or a retry: Initialized at 0%. */
void analysis_restart(struct rollout_status *st);

#endif /* SLUICE_ANALYSIS_H */
