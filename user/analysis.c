// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flagger's canary analysis as a pure state machine:
 * - the first tick routes the first step to the canary without a check
 *   (Flagger skips checks while no traffic reaches the canary);
 * - each later tick judges the canary's metrics over their windows: a pass
 *   moves the weight one step (or promotes at the max weight), a failure
 *   holds it and adds to the cumulative failed checks;
 * - at `threshold` failed checks the canary is rolled back (all new
 *   connections to primary), or with revertOnFailure false frozen where it
 *   is; either way the rollout is Failed;
 * - blue/green (iterations without steps): N passed checks at 0% (traffic
 *   reaches the canary only through cohorts), then all traffic switches.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"

static const char *const phase_names[] = {
	[PHASE_INITIALIZED] = "Initialized", [PHASE_PROGRESSING] = "Progressing",
	[PHASE_WAITING] = "Waiting",	     [PHASE_PROMOTING] = "Promoting",
	[PHASE_SUCCEEDED] = "Succeeded",     [PHASE_FAILED] = "Failed",
};

const char *phase_name(enum rollout_phase p)
{
	return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[p] : "?";
}

int phase_parse(const char *s)
{
	for (unsigned i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
		if (!strcmp(s, phase_names[i]))
			return (int)i;
	return -1;
}

const char *action_name(enum analysis_action a)
{
	static const char *const names[] = {
		[ACT_NONE] = "none",	   [ACT_START] = "start",	  [ACT_HOLD] = "hold",
		[ACT_STEP] = "step",	   [ACT_ITERATE] = "iterate",	  [ACT_PROMOTE] = "promote",
		[ACT_ROLLBACK] = "rollback", [ACT_FREEZE] = "freeze",	  [ACT_WAIT] = "wait",
	};

	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

void analysis_judge(const struct spec_analysis *a, const struct window_metrics *canary,
		    struct check_result *out)
{
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	out->passed = true;
	out->n = a->n_metrics;
	for (int i = 0; i < a->n_metrics; i++) {
		const struct spec_metric *sm = &a->metrics[i];
		const struct window_metrics *w = &canary[i];
		struct metric_result *r = &out->m[i];
		const char *name;

		r->kind = sm->kind;
		r->window_ms = sm->interval_ms;
		if (sm->kind == SPEC_METRIC_SUCCESS_RATE) {
			name = "request-success-rate";
			r->threshold = sm->min;
			r->no_data = !w->has_data;
			r->value = w->success_rate_pct;
			r->passed = !r->no_data && (!sm->has_min || r->value >= sm->min);
		} else {
			name = "request-duration";
			r->threshold = sm->max;
			r->no_data = !w->has_latency;
			r->value = w->latency_p99_ms;
			r->passed = !r->no_data && (!sm->has_max || r->value <= sm->max);
		}
		if (r->passed)
			continue;
		out->passed = false;
		if (len >= sizeof(out->reason) - 1)
			continue;
		if (r->no_data)
			len += snprintf(out->reason + len, sizeof(out->reason) - len,
					"%s%s: no values found (no traffic reached the canary)",
					len ? "; " : "", name);
		else if (sm->kind == SPEC_METRIC_SUCCESS_RATE)
			len += snprintf(out->reason + len, sizeof(out->reason) - len,
					"%s%s %.2f%% < %g%%", len ? "; " : "", name, r->value,
					r->threshold);
		else
			len += snprintf(out->reason + len, sizeof(out->reason) - len,
					"%s%s p99 %.1fms > %gms", len ? "; " : "", name, r->value,
					r->threshold);
	}
}

uint16_t analysis_max_weight(const struct spec_analysis *a)
{
	if (a->n_step_weights)
		return (uint16_t)(a->step_weights[a->n_step_weights - 1] * 100);
	return (uint16_t)((a->max_weight ? a->max_weight : 100) * 100);
}

uint16_t analysis_next_weight(const struct spec_analysis *a, uint16_t bp)
{
	uint16_t max = analysis_max_weight(a);

	if (a->n_step_weights) {
		for (int i = 0; i < a->n_step_weights; i++)
			if (a->step_weights[i] * 100 > bp)
				return (uint16_t)(a->step_weights[i] * 100);
		return max;
	}
	/* Flagger: weight + stepWeight, capped at maxWeight */
	if ((unsigned)bp + a->step_weight * 100 >= max)
		return max;
	return (uint16_t)(bp + a->step_weight * 100);
}

static bool blue_green(const struct spec_analysis *a)
{
	return a->iterations > 0 && a->step_weight == 0 && a->n_step_weights == 0;
}

bool analysis_needs_check(const struct spec_canary *c, const struct rollout_status *st)
{
	if (c->skip_analysis || st->paused || st->manual)
		return false;
	if (st->phase == PHASE_PROGRESSING)
		return st->weight_bp > 0 || blue_green(&c->analysis);
	return st->phase == PHASE_INITIALIZED && blue_green(&c->analysis);
}

static void decide(struct decision *d, struct rollout_status *st, enum analysis_action act,
		   uint16_t to_bp, enum rollout_phase to_phase, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void decide(struct decision *d, struct rollout_status *st, enum analysis_action act,
		   uint16_t to_bp, enum rollout_phase to_phase, const char *fmt, ...)
{
	va_list ap;

	d->action = act;
	d->from_bp = st->weight_bp;
	d->to_bp = to_bp;
	d->from_phase = st->phase;
	d->to_phase = to_phase;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
	st->weight_bp = to_bp;
	st->phase = to_phase;
}

/* Promotion: one step to 100%, or the first stepWeightPromotion step. */
static void promote(const struct spec_canary *c, struct rollout_status *st, struct decision *d,
		    const char *why)
{
	int spw = c->analysis.step_weight_promotion * 100;

	if (spw > 0 && st->weight_bp + spw < SL_WEIGHT_MAX)
		decide(d, st, ACT_PROMOTE, (uint16_t)(st->weight_bp + spw), PHASE_PROMOTING,
		       "%s; promoting by %d%% steps", why, c->analysis.step_weight_promotion);
	else
		decide(d, st, ACT_PROMOTE, SL_WEIGHT_MAX, PHASE_SUCCEEDED,
		       "%s; all traffic to the canary set", why);
}

static void failed_check(const struct spec_canary *c, struct rollout_status *st,
			 const struct check_result *check, struct decision *d)
{
	int threshold = c->analysis.threshold > 0 ? c->analysis.threshold : 1;

	st->failed_checks++;
	if (st->failed_checks < threshold) {
		decide(d, st, ACT_HOLD, st->weight_bp, st->phase, "failed check %d/%d: %s",
		       st->failed_checks, threshold, check->reason);
		return;
	}
	if (c->revert_on_failure)
		decide(d, st, ACT_ROLLBACK, 0, PHASE_FAILED,
		       "failed checks %d/%d reached the threshold: %s; rolled back to primary",
		       st->failed_checks, threshold, check->reason);
	else
		decide(d, st, ACT_FREEZE, st->weight_bp, PHASE_FAILED,
		       "failed checks %d/%d reached the threshold: %s; weight frozen "
		       "(revertOnFailure: false)",
		       st->failed_checks, threshold, check->reason);
}

/* A closed gate: nothing moves and nothing fails (Flagger's confirm-* hooks). */
static bool gate_closed(bool open, const char *why, struct rollout_status *st,
			struct decision *d, enum rollout_phase phase, const char *gate)
{
	if (open)
		return false;
	decide(d, st, ACT_WAIT, st->weight_bp, phase, "waiting for %s%s%s", gate,
	       why && why[0] ? ": " : "", why ? why : "");
	return true;
}

/* pre-rollout hooks: must answer 2xx before the first step; a failure counts. */
static bool pre_rollout_blocks(const struct spec_canary *c, struct rollout_status *st,
			       const struct gates *g, struct decision *d)
{
	struct check_result hook = { .passed = false };

	if (!g)
		return false;
	if (g->pre_rollout_failed) {
		snprintf(hook.reason, sizeof(hook.reason), "%s", g->why_pre);
		if (st->phase == PHASE_INITIALIZED)
			st->phase = PHASE_PROGRESSING; /* the attempt has begun, at 0% */
		failed_check(c, st, &hook, d);
		return true;
	}
	if (!g->pre_rollout_done) {
		decide(d, st, ACT_WAIT, st->weight_bp, st->phase,
		       "waiting for the pre-rollout webhooks to answer");
		return true;
	}
	return false;
}

void analysis_tick(const struct spec_canary *c, struct rollout_status *st,
		   const struct check_result *check, const struct gates *g, struct decision *d)
{
	const struct spec_analysis *a = &c->analysis;
	uint16_t max = analysis_max_weight(a);

	memset(d, 0, sizeof(*d));
	d->action = ACT_NONE;
	d->from_bp = d->to_bp = st->weight_bp;
	d->from_phase = d->to_phase = st->phase;

	if (st->phase == PHASE_SUCCEEDED || st->phase == PHASE_FAILED || st->paused ||
	    st->manual)
		return;

	if (c->skip_analysis) {
		promote(c, st, d, "skipAnalysis");
		return;
	}
	if (st->phase == PHASE_PROMOTING) {
		promote(c, st, d, "promotion continues");
		return;
	}

	if (blue_green(a)) {
		if (st->iterations == 0 && st->failed_checks == 0 &&
		    (gate_closed(g ? g->confirm_rollout : true, g ? g->why_rollout : NULL, st, d,
				 st->phase, "confirm-rollout") ||
		     pre_rollout_blocks(c, st, g, d)))
			return;
		if (!check)
			return;
		if (!check->passed) {
			if (st->phase == PHASE_INITIALIZED)
				st->phase = PHASE_PROGRESSING;
			failed_check(c, st, check, d);
			return;
		}
		if (st->iterations + 1 >= a->iterations &&
		    gate_closed(g ? g->confirm_promotion : true, g ? g->why_promotion : NULL, st, d,
				PHASE_PROGRESSING, "confirm-promotion"))
			return;
		st->iterations++;
		if (st->iterations >= a->iterations) {
			promote(c, st, d, "blue/green: all iterations passed");
			return;
		}
		decide(d, st, ACT_ITERATE, 0, PHASE_PROGRESSING, "blue/green: check %d/%d passed",
		       st->iterations, a->iterations);
		return;
	}

	if (st->phase == PHASE_INITIALIZED || st->weight_bp == 0) {
		if (gate_closed(g ? g->confirm_rollout : true, g ? g->why_rollout : NULL, st, d,
				st->phase, "confirm-rollout") ||
		    pre_rollout_blocks(c, st, g, d))
			return;
		/* No traffic reaches the canary yet: nothing to judge (Flagger). */
		decide(d, st, ACT_START, analysis_next_weight(a, 0), PHASE_PROGRESSING,
		       "starting the analysis: first step to the canary");
		return;
	}
	if (!check)
		return;
	if (!check->passed) {
		failed_check(c, st, check, d);
		return;
	}
	if (st->weight_bp >= max) {
		/* metrics keep running while confirm-promotion holds (Flagger) */
		if (gate_closed(g ? g->confirm_promotion : true, g ? g->why_promotion : NULL, st, d,
				PHASE_PROGRESSING, "confirm-promotion"))
			return;
		st->iterations++;
		promote(c, st, d, "checks passed at the max weight");
		return;
	}
	if (gate_closed(g ? g->confirm_traffic_increase : true, g ? g->why_traffic : NULL, st, d,
			PHASE_PROGRESSING, "confirm-traffic-increase"))
		return;
	st->iterations++;
	decide(d, st, ACT_STEP, analysis_next_weight(a, st->weight_bp), PHASE_PROGRESSING,
	       "checks passed");
}

void analysis_restart(struct rollout_status *st)
{
	memset(st, 0, sizeof(*st));
	st->phase = PHASE_INITIALIZED;
}

int analysis_command(const struct spec_canary *c, struct rollout_status *st,
		     enum rollout_command cmd, uint16_t weight_bp, struct decision *d)
{
	bool done = st->phase == PHASE_SUCCEEDED || st->phase == PHASE_FAILED;

	memset(d, 0, sizeof(*d));
	d->from_bp = d->to_bp = st->weight_bp;
	d->from_phase = d->to_phase = st->phase;

	switch (cmd) {
	case CMD_PAUSE:
		if (done)
			goto finished;
		st->paused = true;
		decide(d, st, ACT_HOLD, st->weight_bp, PHASE_WAITING, "paused by a person");
		return 0;
	case CMD_RESUME:
		if (done)
			goto finished;
		st->paused = false;
		st->manual = false;
		decide(d, st, ACT_NONE, st->weight_bp,
		       st->weight_bp ? PHASE_PROGRESSING : PHASE_INITIALIZED, "resumed by a person");
		return 0;
	case CMD_PROMOTE:
		if (done)
			goto finished;
		st->paused = st->manual = false;
		if (st->weight_bp >= analysis_max_weight(&c->analysis))
			promote(c, st, d, "promoted by a person");
		else
			decide(d, st, ACT_STEP, analysis_next_weight(&c->analysis, st->weight_bp),
			       PHASE_PROGRESSING, "promoted one step by a person");
		return 0;
	case CMD_PROMOTE_FULL:
		if (done)
			goto finished;
		st->paused = st->manual = false;
		decide(d, st, ACT_PROMOTE, SL_WEIGHT_MAX, PHASE_SUCCEEDED,
		       "promoted fully by a person: all traffic to the canary set");
		return 0;
	case CMD_ABORT:
		if (st->phase == PHASE_SUCCEEDED)
			goto finished;
		st->paused = st->manual = false;
		decide(d, st, ACT_ROLLBACK, 0, PHASE_FAILED, "aborted by a person: rolled back");
		return 0;
	case CMD_RETRY:
		if (st->phase != PHASE_FAILED) {
			snprintf(d->reason, sizeof(d->reason),
				 "retry applies to a Failed rollout; this one is %s",
				 phase_name(st->phase));
			return -EINVAL;
		}
		analysis_restart(st);
		decide(d, st, ACT_NONE, 0, PHASE_INITIALIZED, "retried by a person: starting over");
		return 0;
	case CMD_SET_WEIGHT:
		if (done)
			goto finished;
		st->manual = true;
		decide(d, st, ACT_HOLD, weight_bp, PHASE_WAITING,
		       "weight set to %.2f%% by a person; analysis paused until resume",
		       weight_bp / 100.0);
		return 0;
	}
	snprintf(d->reason, sizeof(d->reason), "unknown command");
	return -EINVAL;

finished:
	snprintf(d->reason, sizeof(d->reason), "the rollout has %s; `sluice retry` or a new "
		 "revision starts another", st->phase == PHASE_SUCCEEDED ? "succeeded" : "failed");
	return -EINVAL;
}
