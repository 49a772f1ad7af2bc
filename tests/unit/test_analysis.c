// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The analysis state machine and the judge, tick by tick over synthetic
 * metric windows: no kernel, no clock. Each test is one Flagger behaviour
 * from shared/flagger-semantics.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "analysis.h"
#include "metrics.h"
#include "sluice/latency.h"

static struct spec_canary spec(int step, int max, int threshold)
{
	struct spec_canary c;

	memset(&c, 0, sizeof(c));
	c.analysis.interval_ms = 1000;
	c.analysis.step_weight = step;
	c.analysis.max_weight = max;
	c.analysis.threshold = threshold;
	c.analysis.n_metrics = 2;
	c.analysis.metrics[0] = (struct spec_metric){ .kind = SPEC_METRIC_SUCCESS_RATE,
						      .has_min = true, .min = 99,
						      .interval_ms = 1000 };
	c.analysis.metrics[1] = (struct spec_metric){ .kind = SPEC_METRIC_DURATION, .has_max = true,
						      .max = 500, .interval_ms = 1000 };
	c.revert_on_failure = true;
	return c;
}

/* A check from a success rate and a p99 (negative: no data). */
static struct check_result check(const struct spec_canary *c, double rate, double p99_ms)
{
	struct window_metrics w[2];
	struct check_result r;

	memset(w, 0, sizeof(w));
	w[0].has_data = rate >= 0;
	w[0].success_rate_pct = rate;
	w[0].total = 100;
	w[1].has_latency = p99_ms >= 0;
	w[1].latency_p99_ms = p99_ms;
	analysis_judge(&c->analysis, w, &r);
	return r;
}

static struct decision tick(const struct spec_canary *c, struct rollout_status *st, double rate,
			    double p99)
{
	struct check_result r = check(c, rate, p99);
	struct decision d;

	analysis_tick(c, st, analysis_needs_check(c, st) ? &r : NULL, NULL, &d);
	return d;
}

static void healthy_canary_steps_to_max_then_promotes(void **state)
{
	struct spec_canary c = spec(10, 30, 2);
	struct rollout_status st;
	struct decision d;
	(void)state;

	analysis_restart(&st);
	d = tick(&c, &st, -1, -1); /* no traffic yet: no check, first step */
	assert_int_equal(d.action, ACT_START);
	assert_int_equal(st.weight_bp, 1000);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	d = tick(&c, &st, 100, 5);
	assert_int_equal(d.action, ACT_STEP);
	assert_int_equal(st.weight_bp, 2000);
	d = tick(&c, &st, 99.5, 5);
	assert_int_equal(st.weight_bp, 3000);
	d = tick(&c, &st, 100, 5);
	assert_int_equal(d.action, ACT_PROMOTE);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
	assert_int_equal(st.phase, PHASE_SUCCEEDED);
	d = tick(&c, &st, 0, 5000); /* finished: nothing moves any more */
	assert_int_equal(d.action, ACT_NONE);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
}

static void step_is_capped_at_max_weight(void **state)
{
	struct spec_canary c = spec(20, 50, 1);
	(void)state;

	assert_int_equal(analysis_next_weight(&c.analysis, 0), 2000);
	assert_int_equal(analysis_next_weight(&c.analysis, 4000), 5000);
	assert_int_equal(analysis_max_weight(&c.analysis), 5000);
	c.analysis.step_weight = 0;
	c.analysis.n_step_weights = 4;
	memcpy(c.analysis.step_weights, (int[]){ 1, 5, 10, 30 }, 4 * sizeof(int));
	assert_int_equal(analysis_next_weight(&c.analysis, 0), 100);
	assert_int_equal(analysis_next_weight(&c.analysis, 100), 500);
	assert_int_equal(analysis_next_weight(&c.analysis, 1000), 3000);
	assert_int_equal(analysis_max_weight(&c.analysis), 3000);
}

static void failed_checks_are_cumulative_and_hold_the_weight(void **state)
{
	struct spec_canary c = spec(10, 50, 3);
	struct rollout_status st;
	struct decision d;
	(void)state;

	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	d = tick(&c, &st, 90, 5);
	assert_int_equal(d.action, ACT_HOLD);
	assert_int_equal(st.weight_bp, 1000);
	assert_int_equal(st.failed_checks, 1);
	d = tick(&c, &st, 100, 5); /* a pass in between does not reset the count */
	assert_int_equal(d.action, ACT_STEP);
	assert_int_equal(st.failed_checks, 1);
	d = tick(&c, &st, 100, 900); /* slow: p99 over max */
	assert_int_equal(d.action, ACT_HOLD);
	assert_non_null(strstr(d.reason, "request-duration p99 900.0ms > 500ms"));
	d = tick(&c, &st, -1, -1); /* no values found: a failed check too */
	assert_int_equal(d.action, ACT_ROLLBACK);
	assert_non_null(strstr(d.reason, "no values found"));
	assert_int_equal(st.weight_bp, 0);
	assert_int_equal(st.phase, PHASE_FAILED);
	assert_int_equal(st.failed_checks, 3);
}

static void threshold_unset_means_one(void **state)
{
	struct spec_canary c = spec(10, 50, 0);
	struct rollout_status st;
	struct decision d;
	(void)state;

	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	d = tick(&c, &st, 50, 5);
	assert_int_equal(d.action, ACT_ROLLBACK);
}

static void revert_on_failure_false_freezes(void **state)
{
	struct spec_canary c = spec(10, 50, 1);
	struct rollout_status st;
	struct decision d;
	(void)state;

	c.revert_on_failure = false;
	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	tick(&c, &st, 100, 1);
	d = tick(&c, &st, 10, 1);
	assert_int_equal(d.action, ACT_FREEZE);
	assert_int_equal(st.weight_bp, 2000);
	assert_int_equal(st.phase, PHASE_FAILED);
}

static void blue_green_checks_at_zero_then_switches(void **state)
{
	struct spec_canary c = spec(0, 100, 2);
	struct rollout_status st;
	struct decision d;
	(void)state;

	c.analysis.iterations = 3;
	analysis_restart(&st);
	for (int i = 1; i <= 2; i++) {
		d = tick(&c, &st, 100, 5);
		assert_int_equal(d.action, ACT_ITERATE);
		assert_int_equal(st.weight_bp, 0);
		assert_int_equal(st.iterations, i);
	}
	d = tick(&c, &st, 100, 5);
	assert_int_equal(d.action, ACT_PROMOTE);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
}

static void step_weight_promotion_moves_in_steps(void **state)
{
	struct spec_canary c = spec(50, 50, 1);
	struct rollout_status st;
	(void)state;

	c.analysis.step_weight_promotion = 20;
	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	assert_int_equal(st.weight_bp, 5000);
	tick(&c, &st, 100, 1);
	assert_int_equal(st.phase, PHASE_PROMOTING);
	assert_int_equal(st.weight_bp, 7000);
	tick(&c, &st, 100, 1);
	assert_int_equal(st.weight_bp, 9000);
	tick(&c, &st, 100, 1);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
	assert_int_equal(st.phase, PHASE_SUCCEEDED);
}

static void skip_analysis_promotes_at_once(void **state)
{
	struct spec_canary c = spec(10, 50, 1);
	struct rollout_status st;
	(void)state;

	c.skip_analysis = true;
	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	assert_int_equal(st.phase, PHASE_SUCCEEDED);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
}

static void commands_from_people(void **state)
{
	struct spec_canary c = spec(10, 30, 1);
	struct rollout_status st;
	struct decision d;
	(void)state;

	analysis_restart(&st);
	tick(&c, &st, -1, -1);
	assert_int_equal(analysis_command(&c, &st, CMD_PAUSE, 0, &d), 0);
	assert_int_equal(st.phase, PHASE_WAITING);
	d = tick(&c, &st, 0, 5000); /* paused: even a terrible window decides nothing */
	assert_int_equal(d.action, ACT_NONE);
	assert_int_equal(st.failed_checks, 0);
	assert_int_equal(analysis_command(&c, &st, CMD_RESUME, 0, &d), 0);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	assert_int_equal(analysis_command(&c, &st, CMD_SET_WEIGHT, 2500, &d), 0);
	assert_int_equal(st.weight_bp, 2500);
	assert_true(st.manual);
	d = tick(&c, &st, 100, 1);
	assert_int_equal(d.action, ACT_NONE);
	assert_int_equal(analysis_command(&c, &st, CMD_PROMOTE, 0, &d), 0);
	assert_int_equal(st.weight_bp, 3000);
	assert_int_equal(analysis_command(&c, &st, CMD_RETRY, 0, &d), -EINVAL);
	assert_non_null(strstr(d.reason, "Failed"));
	assert_int_equal(analysis_command(&c, &st, CMD_ABORT, 0, &d), 0);
	assert_int_equal(st.weight_bp, 0);
	assert_int_equal(st.phase, PHASE_FAILED);
	assert_int_equal(analysis_command(&c, &st, CMD_PAUSE, 0, &d), -EINVAL);
	assert_int_equal(analysis_command(&c, &st, CMD_RETRY, 0, &d), 0);
	assert_int_equal(st.phase, PHASE_INITIALIZED);
	assert_int_equal(st.failed_checks, 0);
	assert_int_equal(analysis_command(&c, &st, CMD_PROMOTE_FULL, 0, &d), 0);
	assert_int_equal(st.phase, PHASE_SUCCEEDED);
	assert_int_equal(st.weight_bp, SL_WEIGHT_MAX);
	assert_int_equal(analysis_command(&c, &st, CMD_ABORT, 0, &d), -EINVAL);
}

static struct decision tick_gated(const struct spec_canary *c, struct rollout_status *st,
				  double rate, const struct gates *g)
{
	struct check_result r = check(c, rate, 5);
	struct decision d;

	analysis_tick(c, st, analysis_needs_check(c, st) ? &r : NULL, g, &d);
	return d;
}

static void webhook_gates_hold_without_failing(void **state)
{
	struct spec_canary c = spec(10, 20, 2);
	struct rollout_status st;
	struct gates g = { .confirm_rollout = false, .confirm_traffic_increase = true,
			   .confirm_promotion = true, .pre_rollout_done = true };
	struct decision d;
	(void)state;

	analysis_restart(&st);
	d = tick_gated(&c, &st, -1, &g);
	assert_int_equal(d.action, ACT_WAIT);
	assert_non_null(strstr(d.reason, "confirm-rollout"));
	assert_int_equal(st.weight_bp, 0);
	assert_int_equal(st.phase, PHASE_INITIALIZED);
	g.confirm_rollout = true;
	d = tick_gated(&c, &st, -1, &g);
	assert_int_equal(d.action, ACT_START);
	assert_int_equal(st.weight_bp, 1000);

	g.confirm_traffic_increase = false;
	d = tick_gated(&c, &st, 100, &g);
	assert_int_equal(d.action, ACT_WAIT);
	assert_int_equal(st.weight_bp, 1000);
	assert_int_equal(st.failed_checks, 0);
	d = tick_gated(&c, &st, 50, &g); /* metrics still judged while the gate is closed */
	assert_int_equal(d.action, ACT_HOLD);
	assert_int_equal(st.failed_checks, 1);
	g.confirm_traffic_increase = true;
	d = tick_gated(&c, &st, 100, &g);
	assert_int_equal(d.action, ACT_STEP);
	assert_int_equal(st.weight_bp, 2000);

	g.confirm_promotion = false;
	d = tick_gated(&c, &st, 100, &g);
	assert_int_equal(d.action, ACT_WAIT);
	assert_non_null(strstr(d.reason, "confirm-promotion"));
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	g.confirm_promotion = true;
	d = tick_gated(&c, &st, 100, &g);
	assert_int_equal(d.action, ACT_PROMOTE);
	assert_int_equal(st.phase, PHASE_SUCCEEDED);
}

static void pre_rollout_failures_count(void **state)
{
	struct spec_canary c = spec(10, 20, 2);
	struct rollout_status st;
	struct gates g = { .confirm_rollout = true, .confirm_traffic_increase = true,
			   .confirm_promotion = true };
	struct decision d;
	(void)state;

	analysis_restart(&st);
	d = tick_gated(&c, &st, -1, &g); /* no answer yet */
	assert_int_equal(d.action, ACT_WAIT);
	g.pre_rollout_failed = true;
	snprintf(g.why_pre, sizeof(g.why_pre), "pre-rollout webhook smoke: HTTP 500");
	d = tick_gated(&c, &st, -1, &g);
	assert_int_equal(d.action, ACT_HOLD);
	assert_int_equal(st.failed_checks, 1);
	assert_int_equal(st.weight_bp, 0);
	d = tick_gated(&c, &st, -1, &g);
	assert_int_equal(d.action, ACT_ROLLBACK);
	assert_int_equal(st.phase, PHASE_FAILED);
	assert_non_null(strstr(d.reason, "smoke"));

	analysis_restart(&st);
	g.pre_rollout_failed = false;
	g.pre_rollout_done = true;
	d = tick_gated(&c, &st, -1, &g);
	assert_int_equal(d.action, ACT_START);
}

static void success_rate_per_request_and_per_connection(void **state)
{
	struct counters w;
	struct window_metrics m;
	(void)state;

	memset(&w, 0, sizeof(w));
	w.responses[1] = 950;
	w.responses[3] = 30; /* 4xx are not failures */
	w.responses[4] = 20;
	metrics_compute(&w, &m);
	assert_true(m.http);
	assert_true(m.has_data);
	assert_int_equal(m.total, 1000);
	assert_int_equal(m.failed, 20);
	assert_true(m.success_rate_pct > 97.99 && m.success_rate_pct < 98.01);

	w.unanswered = 10;
	w.conns_refused = 10;
	metrics_compute(&w, &m);
	assert_int_equal(m.total, 1020);
	assert_int_equal(m.failed, 40);

	/* No HTTP seen (TLS): connections decide. */
	memset(&w, 0, sizeof(w));
	w.conns_opened = 100;
	w.conns_refused = 30;
	metrics_compute(&w, &m);
	assert_false(m.http);
	assert_int_equal(m.failed, 30);
	assert_true(m.success_rate_pct > 69.99 && m.success_rate_pct < 70.01);

	memset(&w, 0, sizeof(w));
	metrics_compute(&w, &m);
	assert_false(m.has_data);
	assert_false(m.has_latency);
}

static void quantiles_are_within_the_histogram_error(void **state)
{
	static uint64_t hist[SL_LAT_BUCKETS];
	uint64_t v[1000];
	(void)state;

	/* 990 requests at 2..11 ms, 10 at 300..390 ms: the p99 is the 990th value. */
	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < 1000; i++) {
		v[i] = i < 990 ? 2000000ULL + (uint64_t)i * 9100 : 300000000ULL + (i - 990) * 10000000ULL;
		hist[sl_lat_bucket(v[i])]++;
	}
	double p99 = hist_quantile_ns(hist, 0.99), p50 = hist_quantile_ns(hist, 0.50);
	double true_p99 = (double)v[989], true_p50 = (double)v[499];

	assert_true(p99 >= true_p99 * (1 - 1.0 / 32) && p99 <= true_p99 * (1 + 1.0 / 32));
	assert_true(p50 >= true_p50 * (1 - 1.0 / 32) && p50 <= true_p50 * (1 + 1.0 / 32));
	hist[sl_lat_bucket(v[995])] += 20; /* now the tail holds more than 1% */
	assert_true(hist_quantile_ns(hist, 0.99) > 290e6);
	memset(hist, 0, sizeof(hist));
	assert_true(hist_quantile_ns(hist, 0.99) < 0);
}

static void deltas_never_wrap(void **state)
{
	struct counters a, b, d;
	(void)state;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.requests = 10;
	b.requests = 25; /* b later than a */
	counters_delta(&d, &b, &a);
	assert_int_equal(d.requests, 15);
	counters_delta(&d, &a, &b); /* counters went back (maps recreated) */
	assert_int_equal(d.requests, 0);
}

static void latency_sampling_follows_the_smaller_share(void **state)
{
	(void)state;

	/* low rates: every request timed */
	assert_int_equal(metrics_sample_shift(0, 0, 1000, 2000), 0);
	assert_int_equal(metrics_sample_shift(0, 30000, 1000, 2000), 0); /* canary 3000: < 2 x 2 x 2000 */
	/* the canary's 10% of 550k: 55k, halved while 4000+ would stay after the next halving */
	assert_int_equal(metrics_sample_shift(0, 550000, 1000, 2000), 3);
	/* 90% canary: the primary's 10% is the smaller share, same k */
	assert_int_equal(metrics_sample_shift(0, 550000, 9000, 2000), 3);
	/* before the analysis and after promotion one version takes everything */
	assert_int_equal(metrics_sample_shift(0, 550000, 0, 2000), SL_SAMPLE_SHIFT_MAX);
	assert_int_equal(metrics_sample_shift(0, 550000, SL_WEIGHT_MAX, 2000), SL_SAMPLE_SHIFT_MAX);
	/* never past 1 in 16 */
	assert_int_equal(metrics_sample_shift(0, UINT64_MAX / 2, 5000, 2000), SL_SAMPLE_SHIFT_MAX);
	/* hysteresis: 24k in the smaller share keeps k=3 (3000 timed) but would not reach it */
	assert_int_equal(metrics_sample_shift(3, 240000, 1000, 2000), 3);
	assert_int_equal(metrics_sample_shift(0, 240000, 1000, 2000), 2);
	/* below 2000 timed it comes down at once, as far as needed */
	assert_int_equal(metrics_sample_shift(3, 150000, 1000, 2000), 2); /* 15000 >> 3 = 1875 */
	assert_int_equal(metrics_sample_shift(4, 10000, 1000, 2000), 0);
	/* --latency-samples: a smaller minimum samples sooner; 0 never samples */
	assert_int_equal(metrics_sample_shift(0, 30000, 1000, 200), 2);
	assert_int_equal(metrics_sample_shift(3, UINT64_MAX / 2, 5000, 0), 0);
	/* a k out of range in the maps is taken as the maximum, not trusted */
	assert_int_equal(metrics_sample_shift(200, 550000, 1000, 2000), SL_SAMPLE_SHIFT_MAX);
	assert_int_equal(metrics_sample_shift(200, 150000, 1000, 2000), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthy_canary_steps_to_max_then_promotes),
		cmocka_unit_test(step_is_capped_at_max_weight),
		cmocka_unit_test(failed_checks_are_cumulative_and_hold_the_weight),
		cmocka_unit_test(threshold_unset_means_one),
		cmocka_unit_test(revert_on_failure_false_freezes),
		cmocka_unit_test(blue_green_checks_at_zero_then_switches),
		cmocka_unit_test(step_weight_promotion_moves_in_steps),
		cmocka_unit_test(skip_analysis_promotes_at_once),
		cmocka_unit_test(commands_from_people),
		cmocka_unit_test(webhook_gates_hold_without_failing),
		cmocka_unit_test(pre_rollout_failures_count),
		cmocka_unit_test(success_rate_per_request_and_per_connection),
		cmocka_unit_test(quantiles_are_within_the_histogram_error),
		cmocka_unit_test(deltas_never_wrap),
		cmocka_unit_test(latency_sampling_follows_the_smaller_share),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("analysis", tests, NULL, NULL);
}
