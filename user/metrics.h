/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Turning the datapath's counters into the numbers a rollout is judged by:
 * per-version sums of backend counters, differences between two moments
 * (a metric's window), success rate and latency quantiles. Pure functions
 * over plain structs, so the analysis can be tested without a kernel and
 * does not care where the counts came from.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/datapath.h"

/* Everything counted for one version (or one backend) up to a moment. */
struct counters {
	uint64_t conns_opened;
	uint64_t conns_refused;
	uint64_t conns_syn_retx;
	uint64_t conns_reset;
	uint64_t conns_closed;
	uint64_t requests;
	uint64_t responses[SL_HTTP_CLASSES];
	uint64_t responses_5xx[SL_5XX_KINDS];
	uint64_t unclassified;
	uint64_t unanswered;
	uint64_t latency[SL_LAT_BUCKETS];
};

/* What a window of traffic says about a version. */
struct window_metrics {
	bool has_data; /* anything at all reached the version in the window */
	bool http; /* the window saw HTTP responses: the rate is per request */
	uint64_t total; /* requests (http) or connections (otherwise) judged */
	uint64_t failed; /* 5xx, unanswered, refused, reset ... (see docs/accounting.md) */
	double success_rate_pct; /* 100 * (total - failed) / total */
	bool has_latency;
	double latency_p50_ms, latency_p99_ms;
};

/** counters_add_backend() - add one backend's kernel counters and histogram. */
void counters_add_backend(struct counters *c, const struct sl_backend_stats *st,
			  const uint64_t *hist);

/** counters_delta() - @now minus @then, field by field (a window). */
void counters_delta(struct counters *out, const struct counters *now,
		    const struct counters *then);

/** metrics_compute() - success rate and quantiles of a window. */
void metrics_compute(const struct counters *window, struct window_metrics *m);

/**
 * hist_quantile_ns() - the @q quantile (0..1) of a latency histogram, as the
 * midpoint of the bucket it falls in: within 3.1% of the true value.
 * Return: nanoseconds, or -1 when the histogram is empty.
 */
double hist_quantile_ns(const uint64_t *hist, double q);

/*
 * By default, the timed requests the version with the smaller share must
 * still get in an analysis interval when the datapath samples latency:
 * enough for a p99 (the 20 slowest of 2000) to sit where the full count
 * would put it. `sluice agent --latency-samples` changes it.
 */
#define METRICS_SAMPLES_MIN 2000

/**
 * metrics_sample_shift() - the latency sampling k (time 1 in 2^k requests)
 * for a service that saw @requests (both versions) in the last analysis
 * interval, at canary weight @weight_bp, with @cur in force. k rises only
 * when the smaller share would keep twice @min_samples and falls as soon as
 * it would keep fewer, so a rate at the edge does not flap. @min_samples 0:
 * always 0 (every request timed).
 */
uint8_t metrics_sample_shift(uint8_t cur, uint64_t requests, uint16_t weight_bp,
			     uint32_t min_samples);

#endif /* SLUICE_METRICS_H */
