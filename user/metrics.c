// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counter arithmetic and the two built-in metrics: request-success-rate
 * (percent of requests that were not failures) and request-duration (p99 in
 * ms). When a window has HTTP responses the rate is per request; when it has
 * none (TLS, gRPC, anything opaque) it falls back to connections, so a
 * canary whose pods refuse or reset connections still fails its checks.
 */
#include <string.h>

#include "metrics.h"
#include "sluice/latency.h"

void counters_add_backend(struct counters *c, const struct sl_backend_stats *st,
			  const uint64_t *hist)
{
	c->conns_opened += st->conns_opened;
	c->conns_refused += st->conns_refused;
	c->conns_syn_retx += st->conns_syn_retx;
	c->conns_reset += st->conns_reset;
	c->conns_closed += st->conns_closed;
	c->requests += st->requests;
	for (int i = 0; i < SL_HTTP_CLASSES; i++)
		c->responses[i] += st->responses[i];
	for (int i = 0; i < SL_5XX_KINDS; i++)
		c->responses_5xx[i] += st->responses_5xx[i];
	c->unclassified += st->unclassified;
	c->unanswered += st->unanswered;
	if (hist)
		for (int b = 0; b < SL_LAT_BUCKETS; b++)
			c->latency[b] += hist[b];
}

void counters_delta(struct counters *out, const struct counters *now, const struct counters *then)
{
	const uint64_t *a = (const uint64_t *)now, *b = (const uint64_t *)then;
	uint64_t *o = (uint64_t *)out;

	/* struct counters is all uint64_t; a counter that went back (a reset
	 * map) gives 0, not a wrapped huge number */
	_Static_assert(sizeof(struct counters) % sizeof(uint64_t) == 0, "all uint64_t");
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		o[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
}

double hist_quantile_ns(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0, rank;

	for (int b = 0; b < SL_LAT_BUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return -1;
	/* the smallest value with at least q of the samples at or below it */
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < SL_LAT_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank) {
			double lo = (double)sl_lat_lower_ns(b);

			if (b == SL_LAT_BUCKETS - 1)
				return lo; /* open-ended: say at least this */
			return (lo + (double)sl_lat_upper_ns(b)) / 2;
		}
	}
	return -1;
}

void metrics_compute(const struct counters *w, struct window_metrics *m)
{
	uint64_t responses = 0;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < SL_HTTP_CLASSES; i++)
		responses += w->responses[i];

	if (responses + w->unanswered > 0) {
		/*
		 * Per request: a 5xx or a request left unanswered is a failure,
		 * and so is a connection that never got to carry one (refused).
		 * Unclassified responses are neither success nor failure.
		 */
		m->http = true;
		m->total = responses + w->unanswered + w->conns_refused;
		m->failed = w->responses[4] + w->unanswered + w->conns_refused;
	} else {
		/* Per connection: refused or reset is a failure. */
		m->total = w->conns_opened;
		m->failed = w->conns_refused + w->conns_reset;
		if (m->failed > m->total)
			m->total = m->failed;
	}
	m->has_data = m->total > 0;
	if (m->has_data)
		m->success_rate_pct = 100.0 * (double)(m->total - m->failed) / (double)m->total;

	double p50 = hist_quantile_ns(w->latency, 0.50), p99 = hist_quantile_ns(w->latency, 0.99);

	if (p99 >= 0) {
		m->has_latency = true;
		m->latency_p50_ms = p50 / 1e6;
		m->latency_p99_ms = p99 / 1e6;
	}
}

uint8_t metrics_sample_shift(uint8_t cur, uint64_t requests, uint16_t weight_bp,
			     uint32_t min_samples)
{
	/* at 0 or 100% one version takes everything; otherwise the smaller share */
	uint64_t share = weight_bp == 0 || weight_bp >= SL_WEIGHT_MAX ? SL_WEIGHT_MAX :
			 weight_bp < SL_WEIGHT_MAX - weight_bp ? weight_bp :
								  SL_WEIGHT_MAX - weight_bp;
	uint64_t fewest = requests / SL_WEIGHT_MAX * share +
			  requests % SL_WEIGHT_MAX * share / SL_WEIGHT_MAX;
	uint8_t k = cur > SL_SAMPLE_SHIFT_MAX ? SL_SAMPLE_SHIFT_MAX : cur;

	if (!min_samples)
		return 0;
	while (k < SL_SAMPLE_SHIFT_MAX && fewest >> (k + 1) >= 2ULL * min_samples)
		k++;
	while (k > 0 && fewest >> k < min_samples)
		k--;
	return k;
}
