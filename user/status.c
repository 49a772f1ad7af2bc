// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice status`: what the datapath is doing, read straight from the
 * pinned maps, so it answers whether the agent is up or not: each steered
 * service with its canary weight, affinity, and per-backend counters summed
 * over the CPUs, plus the node-wide datapath events.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <cjson/cJSON.h>

#include "cli.h"
#include "json_util.h"
#include "datapath.h"
#include "log.h"
#include "metrics.h"
#include "state.h"
#include "sluice/latency.h"
#include "sluice/datapath.h"

static const char *const dp_counter_names[SL_DP_COUNTERS] = {
	[SL_DP_NEW_FLOWS] = "new_flows",
	[SL_DP_NO_BACKEND] = "no_backend_drops",
	[SL_DP_FRAGMENTS] = "fragments_passed",
	[SL_DP_UNSTEERABLE] = "unsteerable_passed",
	[SL_DP_MALFORMED] = "malformed_passed",
	[SL_DP_CT_FULL] = "conntrack_insert_failures",
	[SL_DP_REWRITE_ERR] = "rewrite_error_drops",
	[SL_DP_FAILSAFE] = "failsafe_primary_flows",
	[SL_DP_CT_MIDFLOW] = "conntrack_midflow_misses",
	[SL_DP_ICMP] = "icmp_errors_translated",
	[SL_DP_ROUTED] = "host_routed",
};

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : proto == IPPROTO_TCP ? "tcp" : "?";
}

static void add_u64(cJSON *o, const char *k, uint64_t v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

static cJSON *backend_json(const struct dp_maps *m, uint32_t id)
{
	static const char *const classes[SL_HTTP_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	static const char *const codes[SL_5XX_KINDS] = { "500", "502", "503", "504", "other" };
	struct sl_backend b = { 0 };
	struct sl_backend_stats st;
	struct counters c = { 0 };
	struct window_metrics wm;
	uint64_t hist[SL_LAT_BUCKETS];
	char addr[INET6_ADDRSTRLEN] = "?";
	cJSON *o = cJSON_CreateObject(), *r, *f;

	if (bpf_map_lookup_elem(m->backends, &id, &b) == 0 && b.family)
		inet_ntop(b.family, &b.addr, addr, sizeof(addr));
	if (dp_backend_stats(m, id, &st))
		memset(&st, 0, sizeof(st));
	if (dp_backend_latency(m, id, hist))
		memset(hist, 0, sizeof(hist));
	counters_add_backend(&c, &st, hist);
	metrics_compute(&c, &wm);

	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddStringToObject(o, "address", addr);
	cJSON_AddNumberToObject(o, "port", ntohs(b.port));
	add_u64(o, "conns_opened", st.conns_opened);
	add_u64(o, "conns_closed", st.conns_closed);
	add_u64(o, "conns_refused", st.conns_refused);
	add_u64(o, "conns_syn_retx", st.conns_syn_retx);
	add_u64(o, "conns_reset", st.conns_reset);
	cJSON_AddNumberToObject(o, "handshake_mean_ms",
				st.handshakes ? st.handshake_ns / 1e6 / st.handshakes : 0);
	add_u64(o, "packets_to_backend", st.pkts_fwd);
	add_u64(o, "bytes_to_backend", st.bytes_fwd);
	add_u64(o, "packets_from_backend", st.pkts_rev);
	add_u64(o, "bytes_from_backend", st.bytes_rev);
	add_u64(o, "requests", st.requests);
	r = cJSON_AddObjectToObject(o, "responses");
	for (int i = 0; i < SL_HTTP_CLASSES; i++)
		add_u64(r, classes[i], st.responses[i]);
	f = cJSON_AddObjectToObject(o, "responses_5xx");
	for (int i = 0; i < SL_5XX_KINDS; i++)
		add_u64(f, codes[i], st.responses_5xx[i]);
	add_u64(o, "unclassified", st.unclassified);
	add_u64(o, "unanswered", st.unanswered);
	if (wm.has_data)
		cJSON_AddNumberToObject(o, "success_rate_pct", wm.success_rate_pct);
	if (wm.has_latency) {
		cJSON *h = cJSON_AddArrayToObject(o, "latency_histogram");

		cJSON_AddNumberToObject(o, "latency_p50_ms", wm.latency_p50_ms);
		cJSON_AddNumberToObject(o, "latency_p99_ms", wm.latency_p99_ms);
		/* the non-empty buckets, each with its bounds, as the kernel keeps them */
		for (int b = 0; b < SL_LAT_BUCKETS; b++) {
			cJSON *e;

			if (!hist[b])
				continue;
			e = cJSON_CreateObject();
			cJSON_AddNumberToObject(e, "from_ms", sl_lat_lower_ns(b) / 1e6);
			if (b < SL_LAT_BUCKETS - 1)
				cJSON_AddNumberToObject(e, "to_ms", sl_lat_upper_ns(b) / 1e6);
			cJSON_AddNumberToObject(e, "count", (double)hist[b]);
			cJSON_AddItemToArray(h, e);
		}
	}
	return o;
}

static cJSON *version_json(const struct dp_maps *m, const struct sl_service *svc, bool canary,
			   const char *version)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "backends");
	uint32_t bank = !!(svc->flags & SL_SVC_F_BANK1);
	uint32_t first = canary ? svc->primary_count : 0;
	uint32_t count = canary ? svc->canary_count : svc->primary_count;

	cJSON_AddStringToObject(o, "version", version);
	for (uint32_t i = 0; i < count && first + i < SL_MAX_SLOTS; i++) {
		uint32_t slot = sl_slot_index(svc->id, bank, first + i), id;

		if (bpf_map_lookup_elem(m->slots, &slot, &id) == 0)
			cJSON_AddItemToArray(arr, backend_json(m, id));
	}
	return o;
}

/* The rollout's record from the state dir, when the agent keeps one. */
static cJSON *rollout_json(const char *state_dir, const char *name)
{
	struct rollout_record r;
	cJSON *o;

	if (state_load(state_dir, name, &r))
		return NULL;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "phase", phase_name(r.st.phase));
	cJSON_AddNumberToObject(o, "attempt", r.attempt);
	cJSON_AddNumberToObject(o, "failed_checks", r.st.failed_checks);
	cJSON_AddNumberToObject(o, "threshold", r.threshold);
	cJSON_AddNumberToObject(o, "iterations", r.st.iterations);
	cJSON_AddNumberToObject(o, "max_weight_pct", r.max_weight_bp / 100.0);
	cJSON_AddNumberToObject(o, "interval_ms", (double)r.interval_ms);
	cJSON_AddBoolToObject(o, "paused", r.st.paused);
	cJSON_AddBoolToObject(o, "manual_weight", r.st.manual);
	cJSON_AddStringToObject(o, "last_action", r.last_action);
	cJSON_AddStringToObject(o, "last_reason", r.last_reason);
	cJSON_AddNumberToObject(o, "updated_unix_ms", (double)r.updated_unix_ms);
	if (r.has_last) {
		cJSON *w = cJSON_AddObjectToObject(o, "last_window");

		cJSON_AddItemToObject(w, "canary", window_json(&r.last_canary));
		cJSON_AddItemToObject(w, "primary", window_json(&r.last_primary));
	}
	return o;
}

static cJSON *service_json(const struct dp_maps *m, const char *state_dir,
			   const struct sl_service_key *k, const struct sl_service *svc)
{
	struct sl_service_meta meta = { 0 };
	char vip[INET6_ADDRSTRLEN];
	cJSON *o = cJSON_CreateObject(), *r;
	uint8_t shift = 0;

	bpf_map_lookup_elem(m->meta, &svc->id, &meta);
	inet_ntop(k->family, &k->vip, vip, sizeof(vip));
	cJSON_AddStringToObject(o, "name", meta.name[0] ? meta.name : "?");
	cJSON_AddNumberToObject(o, "service_id", svc->id);
	cJSON_AddStringToObject(o, "vip", vip);
	cJSON_AddNumberToObject(o, "port", ntohs(k->port));
	cJSON_AddStringToObject(o, "protocol", proto_name(k->proto));
	cJSON_AddNumberToObject(o, "weight_bp", svc->weight);
	cJSON_AddNumberToObject(o, "weight_pct", svc->weight / 100.0);
	cJSON_AddStringToObject(o, "affinity",
				svc->affinity == SL_AFFINITY_CLIENT ? "client" : "connection");
	cJSON_AddBoolToObject(o, "cohorts", svc->flags & SL_SVC_F_COHORTS);
	/* latency sampling: 1 in this many requests timed (docs/accounting.md) */
	bpf_map_lookup_elem(m->sampling, &svc->id, &shift);
	cJSON_AddNumberToObject(o, "latency_sample_1_in", 1U << (shift & 7));
	r = meta.name[0] ? rollout_json(state_dir, meta.name) : NULL;
	if (r)
		cJSON_AddItemToObject(o, "rollout", r);
	cJSON_AddItemToObject(o, "primary", version_json(m, svc, false, meta.primary_version));
	cJSON_AddItemToObject(o, "canary", version_json(m, svc, true, meta.canary_version));
	return o;
}

static cJSON *status_json(const struct dp_maps *m, const char *state_dir, const char *want)
{
	cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "services");
	cJSON *dps = cJSON_AddObjectToObject(root, "datapath");
	struct sl_service_key k, next;
	struct sl_service svc;
	int err = bpf_map_get_next_key(m->services, NULL, &next);

	while (!err) {
		k = next;
		if (bpf_map_lookup_elem(m->services, &k, &svc) == 0) {
			struct sl_service_meta meta = { 0 };

			bpf_map_lookup_elem(m->meta, &svc.id, &meta);
			if (cli_name_matches(want, meta.name))
				cJSON_AddItemToArray(arr, service_json(m, state_dir, &k, &svc));
		}
		err = bpf_map_get_next_key(m->services, &k, &next);
	}
	for (uint32_t i = 0; i < SL_DP_COUNTERS; i++) {
		uint64_t v = 0;

		dp_counter(m, i, &v);
		cJSON_AddNumberToObject(dps, dp_counter_names[i], (double)v);
	}
	{
		/* the heartbeat as the datapath sees it: is the fail-safe on? */
		struct sl_agent_state as = { 0 };
		struct timespec ts;
		uint32_t zero = 0;
		cJSON *ag = cJSON_AddObjectToObject(root, "agent");

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (!bpf_map_lookup_elem(m->agent, &zero, &as) && as.heartbeat_ns) {
			uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
			double age = (now - as.heartbeat_ns) / 1e6;

			cJSON_AddNumberToObject(ag, "heartbeat_age_ms", age);
			cJSON_AddNumberToObject(ag, "failsafe_after_ms", as.failsafe_after_ns / 1e6);
			cJSON_AddBoolToObject(ag, "failsafe_active",
					      as.failsafe_after_ns && age * 1e6 > as.failsafe_after_ns);
		}
	}
	return root;
}

static void fmt_ms(double ms, char *buf, size_t len)
{
	if (ms < 1)
		snprintf(buf, len, "%.0fus", ms * 1000);
	else if (ms < 1000)
		snprintf(buf, len, "%.3gms", ms);
	else
		snprintf(buf, len, "%.3gs", ms / 1000);
}

/*
 * The latency histogram as bars, one per power of two (the kernel's 16
 * buckets per octave summed): enough to see a second mode or a slow tail.
 */
static void print_histogram(const cJSON *b)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(b, "latency_histogram"), *e;
	double oct[64] = { 0 }, max = 0;
	int lo = 64, hi = -1;

	cJSON_ArrayForEach(e, h) {
		double from = json_num(e, "from_ms") * 1e6;
		int k = from < 1024 ? 9 : (int)floor(log2(from));

		if (k < 0 || k > 63)
			continue;
		oct[k] += json_num(e, "count");
		lo = k < lo ? k : lo;
		hi = k > hi ? k : hi;
	}
	for (int k = lo; k <= hi; k++)
		max = oct[k] > max ? oct[k] : max;
	for (int k = lo; k <= hi && max > 0; k++) {
		char a[16], z[16], bar[41];
		int n = (int)(40 * oct[k] / max + 0.5);

		fmt_ms(k == 9 ? 0 : ldexp(1, k) / 1e6, a, sizeof(a));
		fmt_ms(ldexp(1, k + 1) / 1e6, z, sizeof(z));
		memset(bar, '#', n);
		bar[n] = '\0';
		printf("      %7s-%-7s |%-40s %.0f\n", a, z, bar, oct[k]);
	}
}

static bool show_histograms;

static void print_version(const cJSON *v, const char *label)
{
	const cJSON *b;

	printf("  %-8s %s\n", label, json_str(v, "version"));
	cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(v, "backends")) {
		char ep[INET6_ADDRSTRLEN + 8];
		const char *a = json_str(b, "address");

		snprintf(ep, sizeof(ep), strchr(a, ':') ? "[%s]:%d" : "%s:%d", a,
			 (int)json_num(b, "port"));
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(b, "responses");

		printf("    %-28s conns %.0f (refused %.0f, reset %.0f)  requests %.0f  "
		       "2xx %.0f 4xx %.0f 5xx %.0f",
		       ep, json_num(b, "conns_opened"), json_num(b, "conns_refused"), json_num(b, "conns_reset"),
		       json_num(b, "requests"), json_num(r, "2xx"), json_num(r, "4xx"), json_num(r, "5xx"));
		if (cJSON_GetObjectItemCaseSensitive(b, "latency_p99_ms"))
			printf("  p50 %.2f ms p99 %.2f ms", json_num(b, "latency_p50_ms"),
			       json_num(b, "latency_p99_ms"));
		printf("\n");
		if (show_histograms)
			print_histogram(b);
	}
}

static void print_window(const char *label, const cJSON *w)
{
	if (!w)
		return;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "has_data"))) {
		printf(" %s: no traffic", label);
		return;
	}
	printf(" %s: %.2f%% of %.0f %s ok", label, json_num(w, "success_rate_pct"), json_num(w, "total"),
	       json_str(w, "basis"));
	if (cJSON_GetObjectItemCaseSensitive(w, "latency_p99_ms"))
		printf(", p99 %.1f ms", json_num(w, "latency_p99_ms"));
}

static void print_rollout(const cJSON *r)
{
	const cJSON *w;

	if (!r)
		return;
	printf("  %s  attempt %.0f  failed checks %.0f/%.0f  max weight %.0f%%%s%s\n",
	       json_str(r, "phase"), json_num(r, "attempt"), json_num(r, "failed_checks"), json_num(r, "threshold"),
	       json_num(r, "max_weight_pct"),
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "paused")) ? "  (paused)" : "",
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "manual_weight"))
		       ? "  (weight set by hand)"
		       : "");
	w = cJSON_GetObjectItemCaseSensitive(r, "last_window");
	if (w) {
		printf("  last window:");
		print_window("canary", cJSON_GetObjectItemCaseSensitive(w, "canary"));
		printf(" |");
		print_window("primary", cJSON_GetObjectItemCaseSensitive(w, "primary"));
		printf("\n");
	}
	if (json_str(r, "last_action")[0])
		printf("  last decision: %s: %s\n", json_str(r, "last_action"), json_str(r, "last_reason"));
}

static void print_text(const cJSON *root)
{
	const cJSON *s, *services = cJSON_GetObjectItemCaseSensitive(root, "services");
	const cJSON *c;

	if (cJSON_GetArraySize(services) == 0)
		printf("no services steered\n");
	cJSON_ArrayForEach(s, services) {
		const char *vip = json_str(s, "vip");

		double sample = json_num(s, "latency_sample_1_in");

		printf(strchr(vip, ':') ? "%s  [%s]:%d/%s  canary weight %.2f%%  affinity %s%s"
					: "%s  %s:%d/%s  canary weight %.2f%%  affinity %s%s",
		       json_str(s, "name"), vip, (int)json_num(s, "port"), json_str(s, "protocol"),
		       json_num(s, "weight_pct"), json_str(s, "affinity"),
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "cohorts")) ? ", cohorts" : "");
		if (sample > 1)
			printf(", latency timed 1 in %.0f", sample);
		putchar('\n');
		print_rollout(cJSON_GetObjectItemCaseSensitive(s, "rollout"));
		print_version(cJSON_GetObjectItemCaseSensitive(s, "primary"), "primary");
		print_version(cJSON_GetObjectItemCaseSensitive(s, "canary"), "canary");
	}
	{
		const cJSON *ag = cJSON_GetObjectItemCaseSensitive(root, "agent");

		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ag, "failsafe_active")))
			printf("FAIL-SAFE: no agent heartbeat for %.1f s (limit %.1f s): rollouts "
			       "that opt in send new connections to primary only\n",
			       json_num(ag, "heartbeat_age_ms") / 1000,
			       json_num(ag, "failsafe_after_ms") / 1000);
	}
	printf("datapath:");
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "datapath"))
		printf(" %s %.0f", c->string, c->valuedouble);
	printf("\n");
}

static void status_usage(FILE *f)
{
	fprintf(f, "Usage: sluice status [NAME] [--json] [--watch] [--bpffs DIR] [--state-dir DIR]\n"
		   "\n"
		   "Each rollout's phase, canary weight, failed checks, last window's metrics per\n"
		   "version, and per-backend counters, read from the pinned maps and the state\n"
		   "dir (works with the agent down). NAME is namespace/name or a unique name.\n"
		   "\n"
		   "  -j, --json          one JSON object; errors as {\"error\": \"...\"}\n"
		   "  -w, --watch         redraw every second until interrupted\n"
		   "      --histogram     latency bars per backend (the default with NAME)\n"
		   "  -b, --bpffs DIR     pin root (default %s)\n"
		   "      --state-dir DIR (default %s)\n"
		   "      --run-dir DIR   accepted for symmetry with the other commands\n"
		   "  -h, --help          this text\n",
		DP_DEFAULT_PIN_ROOT, STATE_DEFAULT_DIR);
}

static int status_once(const char *pin_root, const char *state_dir, const char *want, bool json,
		       bool watch)
{
	struct dp_maps m;
	cJSON *root, *services;
	int err = dp_maps_open_pinned(&m, pin_root);

	if (err) {
		cli_error(json, "no sluice datapath pinned at %s (%s): is the agent running with "
				"--bpffs %s?", pin_root, strerror(-err), pin_root);
		return EXIT_FAIL;
	}
	root = status_json(&m, state_dir, want);
	services = cJSON_GetObjectItemCaseSensitive(root, "services");
	if (want && cJSON_GetArraySize(services) == 0) {
		cli_error(json, "no rollout %s in the pinned maps", want);
		err = -ENOENT;
	} else if (json) {
		json_print_line(root);
	} else {
		if (watch)
			printf("\033[H\033[2J"); /* home and clear: redraw in place */
		print_text(root);
		fflush(stdout);
	}
	cJSON_Delete(root);
	dp_maps_close(&m);
	return err ? EXIT_FAIL : EXIT_OK;
}

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

int do_status(int argc, char **argv)
{
	enum { O_STATE = 256, O_RUN };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "histogram", no_argument, NULL, 'H' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_root = DP_DEFAULT_PIN_ROOT, *state_dir = STATE_DEFAULT_DIR, *want = NULL;
	bool json = false, watch = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jwb:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'H':
			show_histograms = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'b':
			pin_root = optarg;
			break;
		case O_STATE:
			state_dir = optarg;
			break;
		case O_RUN:
			break;
		case 'h':
			status_usage(stdout);
			return EXIT_OK;
		default:
			status_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		want = argv[optind++];
		show_histograms = true; /* one rollout: room for the detail */
	}
	if (optind < argc) {
		cli_error(json, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!watch)
		return status_once(pin_root, state_dir, want, json, false);

	signal(SIGINT, on_watch_signal);
	signal(SIGTERM, on_watch_signal);
	do {
		ret = status_once(pin_root, state_dir, want, json, true);
		for (int i = 0; i < 10 && !watch_stop; i++)
			usleep(100 * 1000);
	} while (!watch_stop);
	return ret;
}
