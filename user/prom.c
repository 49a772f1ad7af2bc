// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Prometheus rendering. Names follow the conventions: base units
 * (seconds), `_total` on counters, one metric family per HELP/TYPE block.
 * Per backend, labels say which rollout, which role (primary or canary),
 * which version string and which backend (address:port).
 *
 * The request-duration histogram is exported with one `le` bucket per power
 * of two from 1 us to 137 s: those are exact edges of the kernel's buckets,
 * so every exported count is exact; the agent's own p99 uses the full
 * 16-per-octave histogram. `_sum` is estimated from bucket midpoints (the
 * kernel does not keep a sum): within 3.1% like the quantiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "analysis.h"
#include "prom.h"
#include "sluice/latency.h"
#include "steering.h"

/* Label values: backslash, quote and newline escaped (the format's rule). */
static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct backend_view {
	const struct rollout *r;
	uint32_t id;
	uint8_t version;
	char addr[INET6_ADDRSTRLEN + 8];
	struct sl_backend_stats st;
	uint64_t hist[SL_LAT_BUCKETS];
};

static void labels(FILE *f, const struct backend_view *b)
{
	const struct spec_version_set *set =
		b->version == SL_CANARY ? &b->r->spec.canary : &b->r->spec.primary;

	fputs("{rollout=\"", f);
	esc(f, b->r->rec.name);
	fprintf(f, "\",role=\"%s\",version=\"", b->version == SL_CANARY ? "canary" : "primary");
	esc(f, set->version);
	fprintf(f, "\",backend=\"%s\"", b->addr);
}

static int load_backends(struct rollout *const *rs, int n, const struct dp_maps *m,
			 struct backend_view **out)
{
	struct backend_view *v = NULL;
	int count = 0, cap = 0;

	for (int i = 0; i < n; i++) {
		uint32_t ids[SL_MAX_SLOTS];
		uint8_t vers[SL_MAX_SLOTS];
		int k = rollout_backends(m, &rs[i]->spec, ids, vers, SL_MAX_SLOTS);

		for (int j = 0; j < k; j++) {
			struct backend_view *b;
			struct sl_backend be = { 0 };
			char a[INET6_ADDRSTRLEN] = "?";

			if (count == cap) {
				struct backend_view *g;

				cap = cap ? cap * 2 : 16;
				g = realloc(v, cap * sizeof(*v));
				if (!g) {
					free(v);
					return -1;
				}
				v = g;
			}
			b = &v[count++];
			memset(b, 0, sizeof(*b));
			b->r = rs[i];
			b->id = ids[j];
			b->version = vers[j];
			if (!bpf_map_lookup_elem(m->backends, &ids[j], &be) && be.family)
				inet_ntop(be.family, &be.addr, a, sizeof(a));
			snprintf(b->addr, sizeof(b->addr), be.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
				 a, ntohs(be.port));
			dp_backend_stats(m, ids[j], &b->st);
			dp_backend_latency(m, ids[j], b->hist);
		}
	}
	*out = v;
	return count;
}

static void rollout_metrics(FILE *f, struct rollout *const *rs, int n)
{
	static const enum rollout_phase phases[] = { PHASE_INITIALIZED, PHASE_PROGRESSING,
						     PHASE_WAITING,	PHASE_PROMOTING,
						     PHASE_SUCCEEDED,	PHASE_FAILED };

	family(f, "sluice_rollout_info", "gauge",
	       "A rollout's versions and attempt; always 1.");
	for (int i = 0; i < n; i++) {
		fputs("sluice_rollout_info{rollout=\"", f);
		esc(f, rs[i]->rec.name);
		fputs("\",primary_version=\"", f);
		esc(f, rs[i]->spec.primary.version);
		fputs("\",canary_version=\"", f);
		esc(f, rs[i]->spec.canary.version);
		fprintf(f, "\",attempt=\"%d\"} 1\n", rs[i]->rec.attempt);
	}
	family(f, "sluice_canary_weight_percent", "gauge",
	       "Share of new connections steered to the canary, percent.");
	for (int i = 0; i < n; i++) {
		fputs("sluice_canary_weight_percent{rollout=\"", f);
		esc(f, rs[i]->rec.name);
		fprintf(f, "\"} %.2f\n", rs[i]->rec.st.weight_bp / 100.0);
	}
	family(f, "sluice_rollout_phase", "gauge", "1 for the rollout's current phase, else 0.");
	for (int i = 0; i < n; i++) {
		for (size_t p = 0; p < sizeof(phases) / sizeof(phases[0]); p++) {
			fputs("sluice_rollout_phase{rollout=\"", f);
			esc(f, rs[i]->rec.name);
			fprintf(f, "\",phase=\"%s\"} %d\n", phase_name(phases[p]),
				rs[i]->rec.st.phase == phases[p]);
		}
	}
	family(f, "sluice_rollout_failed_checks", "gauge",
	       "Failed checks in the current attempt (cumulative, as Flagger counts them).");
	for (int i = 0; i < n; i++) {
		fputs("sluice_rollout_failed_checks{rollout=\"", f);
		esc(f, rs[i]->rec.name);
		fprintf(f, "\"} %d\n", rs[i]->rec.st.failed_checks);
	}
	family(f, "sluice_rollout_failed_checks_threshold", "gauge",
	       "Failed checks at which the rollout is rolled back.");
	for (int i = 0; i < n; i++) {
		fputs("sluice_rollout_failed_checks_threshold{rollout=\"", f);
		esc(f, rs[i]->rec.name);
		fprintf(f, "\"} %d\n", rs[i]->rec.threshold);
	}
	family(f, "sluice_rollout_last_decision_timestamp_seconds", "gauge",
	       "When the agent last changed or judged the rollout (Unix time).");
	for (int i = 0; i < n; i++) {
		fputs("sluice_rollout_last_decision_timestamp_seconds{rollout=\"", f);
		esc(f, rs[i]->rec.name);
		fprintf(f, "\"} %.3f\n", rs[i]->rec.decided_unix_ms / 1000.0);
	}
}

#define EACH_BACKEND(name, type, help, expr)                  \
	do {                                                  \
		family(f, name, type, help);                  \
		for (int _i = 0; _i < nb; _i++) {             \
			const struct backend_view *b = &bv[_i]; \
			fputs(name, f);                       \
			labels(f, b);                         \
			fprintf(f, "} %llu\n", (unsigned long long)(expr)); \
		}                                             \
	} while (0)

static void backend_metrics(FILE *f, const struct backend_view *bv, int nb)
{
	static const char *const classes[SL_HTTP_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	static const char *const codes[SL_5XX_KINDS] = { "500", "502", "503", "504", "other" };

	EACH_BACKEND("sluice_connections_opened_total", "counter",
		     "Connections (flows) steered to the backend.", b->st.conns_opened);
	EACH_BACKEND("sluice_connections_closed_total", "counter",
		     "TCP connections seen closing (FIN both ways, or RST).", b->st.conns_closed);
	family(f, "sluice_connection_failures_total", "counter",
	       "Connections that failed: refused (RST to SYN), syn_retransmitted (no answer to "
	       "the first SYN), reset (RST after the handshake).");
	for (int i = 0; i < nb; i++) {
		const struct {
			const char *kind;
			uint64_t v;
		} k[] = { { "refused", bv[i].st.conns_refused },
			  { "syn_retransmitted", bv[i].st.conns_syn_retx },
			  { "reset", bv[i].st.conns_reset } };

		for (size_t j = 0; j < 3; j++) {
			fputs("sluice_connection_failures_total", f);
			labels(f, &bv[i]);
			fprintf(f, ",kind=\"%s\"} %llu\n", k[j].kind, (unsigned long long)k[j].v);
		}
	}
	EACH_BACKEND("sluice_requests_total", "counter", "HTTP/1.x requests seen.",
		     b->st.requests);
	family(f, "sluice_responses_total", "counter",
	       "HTTP/1.x responses matched to a request, by status class.");
	for (int i = 0; i < nb; i++)
		for (int c = 0; c < SL_HTTP_CLASSES; c++) {
			fputs("sluice_responses_total", f);
			labels(f, &bv[i]);
			fprintf(f, ",class=\"%s\"} %llu\n", classes[c],
				(unsigned long long)bv[i].st.responses[c]);
		}
	family(f, "sluice_server_error_responses_total", "counter",
	       "The 5xx responses among sluice_responses_total, by code.");
	for (int i = 0; i < nb; i++)
		for (int c = 0; c < SL_5XX_KINDS; c++) {
			fputs("sluice_server_error_responses_total", f);
			labels(f, &bv[i]);
			fprintf(f, ",code=\"%s\"} %llu\n", codes[c],
				(unsigned long long)bv[i].st.responses_5xx[c]);
		}
	EACH_BACKEND("sluice_responses_unclassified_total", "counter",
		     "Responses that could not be matched to one request (pipelining, no request).",
		     b->st.unclassified);
	EACH_BACKEND("sluice_requests_unanswered_total", "counter",
		     "Requests whose connection ended before a response.", b->st.unanswered);
	EACH_BACKEND("sluice_handshakes_total", "counter", "TCP handshakes completed (SYN-ACKs).",
		     b->st.handshakes);
	family(f, "sluice_handshake_seconds_total", "counter",
	       "SYN to SYN-ACK time of the handshakes, summed.");
	for (int i = 0; i < nb; i++) {
		fputs("sluice_handshake_seconds_total", f);
		labels(f, &bv[i]);
		fprintf(f, "} %.9f\n", bv[i].st.handshake_ns / 1e9);
	}

	family(f, "sluice_request_duration_seconds", "histogram",
	       "Request latency at the node: request head in to response head out; at high "
	       "rates a sample of the requests (docs/accounting.md).");
	for (int i = 0; i < nb; i++) {
		uint64_t cum = 0, total = 0;
		double sum = 0;
		int b = 0;

		for (int k = SL_LAT_MIN_EXP; k <= SL_LAT_MAX_EXP + 1; k++) {
			/* all buckets ending at or below 2^k ns */
			while (b < SL_LAT_BUCKETS - 1 && sl_lat_upper_ns(b) <= (1ULL << k))
				cum += bv[i].hist[b++];
			fputs("sluice_request_duration_seconds_bucket", f);
			labels(f, &bv[i]);
			fprintf(f, ",le=\"%.9g\"} %llu\n", (double)(1ULL << k) / 1e9,
				(unsigned long long)cum);
		}
		for (int k = 0; k < SL_LAT_BUCKETS; k++) {
			double lo = (double)sl_lat_lower_ns(k);
			double hi = k == SL_LAT_BUCKETS - 1 ? lo : (double)sl_lat_upper_ns(k);

			total += bv[i].hist[k];
			sum += bv[i].hist[k] * (lo + hi) / 2 / 1e9;
		}
		fputs("sluice_request_duration_seconds_bucket", f);
		labels(f, &bv[i]);
		fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)total);
		fputs("sluice_request_duration_seconds_sum", f);
		labels(f, &bv[i]);
		fprintf(f, "} %.9f\n", sum);
		fputs("sluice_request_duration_seconds_count", f);
		labels(f, &bv[i]);
		fprintf(f, "} %llu\n", (unsigned long long)total);
	}
}

static void datapath_metrics(FILE *f, const struct dp_maps *m)
{
	static const char *const names[SL_DP_COUNTERS] = {
		[SL_DP_NEW_FLOWS] = "new_flow",	   [SL_DP_NO_BACKEND] = "no_backend_drop",
		[SL_DP_FRAGMENTS] = "fragment_passed", [SL_DP_UNSTEERABLE] = "unsteerable_passed",
		[SL_DP_MALFORMED] = "malformed_passed", [SL_DP_CT_FULL] = "conntrack_insert_failure",
		[SL_DP_REWRITE_ERR] = "rewrite_error_drop", [SL_DP_FAILSAFE] = "failsafe_primary_flow",
		[SL_DP_CT_MIDFLOW] = "conntrack_midflow_miss", [SL_DP_ICMP] = "icmp_error_translated",
		[SL_DP_ROUTED] = "host_routed",
	};

	family(f, "sluice_datapath_events_total", "counter", "Node-wide datapath events.");
	for (uint32_t i = 0; i < SL_DP_COUNTERS; i++) {
		uint64_t v = 0;

		dp_counter(m, i, &v);
		fprintf(f, "sluice_datapath_events_total{event=\"%s\"} %llu\n", names[i],
			(unsigned long long)v);
	}
}

char *prom_render(struct rollout *const *rs, int n, const struct dp_maps *m)
{
	struct backend_view *bv = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int nb;

	if (!f)
		return NULL;
	rollout_metrics(f, rs, n);
	nb = load_backends(rs, n, m, &bv);
	if (nb > 0)
		backend_metrics(f, bv, nb);
	free(bv);
	datapath_metrics(f, m);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
