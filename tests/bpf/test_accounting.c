// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF fixture tests for request accounting: HTTP/1.x request and response
 * heads, latency into the histogram, and the TCP failure signals (refused,
 * SYN retransmitted, reset), each driven by crafted packets through the
 * loaded programs and checked in sl_stats and sl_latency afterwards.
 */
#include "fixture.h"
#include "sluice/hash.h"
#include "sluice/latency.h"

static uint32_t svc4, svc6;

/* One TCP segment of a flow between CLIENT:sport and the VIP:80 (backend :8080). */
static void seg(bool v6, bool to_backend, uint16_t sport, uint8_t flags, uint32_t seq,
		const char *data)
{
	struct pkt_desc d = { .proto = IPPROTO_TCP, .tcp_flags = flags, .seq = seq, .data = data };
	uint8_t b[PKT_MAX], o[PKT_MAX];
	uint32_t olen;

	if (to_backend) {
		d.src = v6 ? CLIENT6 : CLIENT4, d.dst = v6 ? VIP6 : VIP4;
		d.sport = sport, d.dport = 80;
	} else {
		d.src = v6 ? P1_6 : P1_4, d.dst = v6 ? CLIENT6 : CLIENT4;
		d.sport = 8080, d.dport = sport;
	}
	run(to_backend ? fwd_fd : rev_fd, b, pkt_build(b, &d), o, &olen);
}

/* SYN, SYN-ACK, ACK. */
static void handshake(bool v6, uint16_t sport)
{
	seg(v6, true, sport, PKT_TCP_SYN, 1, NULL);
	seg(v6, false, sport, PKT_TCP_SYN | PKT_TCP_ACK, 1000, NULL);
	seg(v6, true, sport, PKT_TCP_ACK, 2, NULL);
}

static struct sl_backend_stats snap(bool v6)
{
	return sum_stats(backend_id_of(v6 ? svc6 : svc4, v6 ? P1_6 : P1_4));
}

static uint64_t hist_total(bool v6)
{
	uint64_t h[SL_LAT_BUCKETS], n = 0;

	dp_backend_latency(&dp.maps, backend_id_of(v6 ? svc6 : svc4, v6 ? P1_6 : P1_4), h);
	for (int b = 0; b < SL_LAT_BUCKETS; b++)
		n += h[b];
	return n;
}

#define D(field) ((unsigned long long)(after.field - before.field))

static void test_exchange(bool v6)
{
	const char *fam = v6 ? "v6" : "v4";
	struct sl_backend_stats before = snap(v6), after;
	uint64_t h0 = hist_total(v6);
	static const int codes[] = { 200, 301, 404, 500, 503 };
	uint16_t port = v6 ? 6000 : 5000;
	uint32_t cseq = 2, bseq = 1001;

	handshake(v6, port);
	after = snap(v6);
	tap_ok(D(handshakes) == 1 && D(conns_opened) == 1,
	       "%s: SYN-ACK counted as a handshake (%llu)", fam, D(handshakes));

	/* Keep-alive: five requests one after another, each answered. */
	for (int i = 0; i < 5; i++) {
		char status[64];

		seg(v6, true, port, PKT_TCP_ACK | PKT_TCP_PSH, cseq, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
		cseq += 100;
		snprintf(status, sizeof(status), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
			 codes[i]);
		seg(v6, false, port, PKT_TCP_ACK | PKT_TCP_PSH, bseq, status);
		bseq += 100;
	}
	after = snap(v6);
	tap_ok(D(requests) == 5, "%s: five keep-alive requests counted (%llu)", fam, D(requests));
	tap_ok(D(responses[1]) == 1 && D(responses[2]) == 1 && D(responses[3]) == 1 &&
		       D(responses[4]) == 2,
	       "%s: responses by class 2xx/3xx/4xx/5xx = 1/1/1/2 (%llu/%llu/%llu/%llu)", fam,
	       D(responses[1]), D(responses[2]), D(responses[3]), D(responses[4]));
	tap_ok(D(responses_5xx[SL_5XX_500]) == 1 && D(responses_5xx[SL_5XX_503]) == 1,
	       "%s: 5xx by code: one 500, one 503", fam);
	tap_ok(hist_total(v6) - h0 == 5, "%s: five latencies in the histogram (%llu)", fam,
	       (unsigned long long)(hist_total(v6) - h0));

	/* Split segments: the request's body and the response's body follow. */
	before = snap(v6);
	seg(v6, true, port, PKT_TCP_ACK, cseq, "POST /upload HTTP/1.1\r\nContent-Length: 20\r\n\r\n");
	cseq += 100;
	seg(v6, true, port, PKT_TCP_ACK, cseq, "0123456789GET 56789"); /* body, even this one */
	cseq += 100;
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 201 Created\r\nContent-Length: 30\r\n\r\n");
	bseq += 100;
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 200 is just body text");
	bseq += 100;
	after = snap(v6);
	tap_ok(D(requests) == 1 && D(responses[1]) == 1 && D(unclassified) == 1,
	       "%s: split request and response: 1 request, 1 response; body text starting "
	       "like a head is not a response but counted unclassified (%llu/%llu/%llu)",
	       fam, D(requests), D(responses[1]), D(unclassified));

	/* A retransmitted request head is not a second request. */
	before = snap(v6);
	seg(v6, true, port, PKT_TCP_ACK, cseq, "GET /again HTTP/1.1\r\n\r\n");
	seg(v6, true, port, PKT_TCP_ACK, cseq, "GET /again HTTP/1.1\r\n\r\n");
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 200 OK\r\n\r\n");
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 200 OK\r\n\r\n");
	cseq += 100, bseq += 100;
	after = snap(v6);
	tap_ok(D(requests) == 1 && D(responses[1]) == 1 && D(unclassified) == 0,
	       "%s: retransmitted request and response heads count once (%llu/%llu)", fam,
	       D(requests), D(responses[1]));

	/* A response with no request. */
	before = snap(v6);
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 200 OK\r\n\r\n");
	bseq += 100;
	after = snap(v6);
	tap_ok(D(unclassified) == 1 && D(responses[1]) == 0,
	       "%s: a response without a request is unclassified, not a success", fam);

	/* Pipelining: two requests out at once; their responses are unclassified. */
	before = snap(v6);
	seg(v6, true, port, PKT_TCP_ACK, cseq, "GET /1 HTTP/1.1\r\n\r\n");
	seg(v6, true, port, PKT_TCP_ACK, cseq + 50, "GET /2 HTTP/1.1\r\n\r\n");
	cseq += 100;
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 500 Oops\r\n\r\n");
	seg(v6, false, port, PKT_TCP_ACK, bseq + 50, "HTTP/1.1 200 OK\r\n\r\n");
	bseq += 100;
	after = snap(v6);
	tap_ok(D(requests) == 2 && D(unclassified) == 2 && D(responses[1]) == 0 &&
		       D(responses[4]) == 0,
	       "%s: pipelined responses are unclassified, neither success nor 5xx", fam);

	/* A request with no response, then the backend closes: unanswered. */
	handshake(v6, port + 1);
	before = snap(v6);
	seg(v6, true, port + 1, PKT_TCP_ACK, 2, "GET /slow HTTP/1.1\r\n\r\n");
	seg(v6, false, port + 1, PKT_TCP_ACK | PKT_TCP_FIN, 1001, NULL);
	seg(v6, true, port + 1, PKT_TCP_ACK | PKT_TCP_FIN, 102, NULL);
	after = snap(v6);
	tap_ok(D(requests) == 1 && D(unanswered) == 1 && D(conns_closed) == 1,
	       "%s: a request left unanswered when the flow closes is counted (%llu)", fam,
	       D(unanswered));
}

static void test_tcp_signals(bool v6)
{
	const char *fam = v6 ? "v6" : "v4";
	struct sl_backend_stats before = snap(v6), after;
	uint16_t port = v6 ? 7000 : 7500;

	/* RST answering the SYN: refused. */
	seg(v6, true, port, PKT_TCP_SYN, 1, NULL);
	seg(v6, false, port, PKT_TCP_RST | PKT_TCP_ACK, 0, NULL);
	after = snap(v6);
	tap_ok(D(conns_refused) == 1 && D(conns_reset) == 0, "%s: RST on SYN counted refused", fam);

	/* SYN sent again with no answer: counted once however often. */
	before = snap(v6);
	seg(v6, true, port + 1, PKT_TCP_SYN, 1, NULL);
	seg(v6, true, port + 1, PKT_TCP_SYN, 1, NULL);
	seg(v6, true, port + 1, PKT_TCP_SYN, 1, NULL);
	after = snap(v6);
	tap_ok(D(conns_syn_retx) == 1, "%s: a retransmitted SYN counts once (%llu)", fam,
	       D(conns_syn_retx));

	/* Reset after the handshake, with a request in flight. */
	handshake(v6, port + 2);
	before = snap(v6);
	seg(v6, true, port + 2, PKT_TCP_ACK, 2, "GET / HTTP/1.1\r\n\r\n");
	seg(v6, false, port + 2, PKT_TCP_RST | PKT_TCP_ACK, 1001, NULL);
	after = snap(v6);
	tap_ok(D(conns_reset) == 1 && D(conns_refused) == 0 && D(unanswered) == 1,
	       "%s: RST after the handshake is a reset, its request unanswered", fam);
}

/* One request at client sequence @cseq, answered 200. */
static void exchange(bool v6, uint16_t port, uint32_t cseq, uint32_t bseq)
{
	seg(v6, true, port, PKT_TCP_ACK | PKT_TCP_PSH, cseq, "GET /s HTTP/1.1\r\n\r\n");
	seg(v6, false, port, PKT_TCP_ACK | PKT_TCP_PSH, bseq, "HTTP/1.1 200 OK\r\n\r\n");
}

/*
 * What @n exchanges on @port from client sequence @cseq added to the latency
 * histogram: each timed request counts 2^k, for the requests it stands for.
 */
static uint64_t timed_of(bool v6, uint16_t port, uint32_t cseq, int n, uint32_t *want_1_in_8)
{
	uint64_t h0 = hist_total(v6);

	*want_1_in_8 = 0;
	for (int i = 0; i < n; i++, cseq += 1000) {
		exchange(v6, port, cseq, cseq + 999);
		if (!(sl_mix32(cseq) & 7))
			(*want_1_in_8)++;
	}
	return hist_total(v6) - h0;
}

/* The flow CLIENT:@port -> VIP:80's conntrack entry, read or (@write) written back. */
static bool ct_entry(bool v6, uint16_t port, struct sl_ct_entry *e, bool write)
{
	struct sl_ct_key k = { .sport = htons(port), .dport = htons(80), .proto = IPPROTO_TCP };

	k.family = v6 ? AF_INET6 : AF_INET;
	inet_pton(k.family, v6 ? CLIENT6 : CLIENT4, &k.saddr);
	inet_pton(k.family, v6 ? VIP6 : VIP4, &k.daddr);
	return write ? !bpf_map_update_elem(dp.maps.ct, &k, e, BPF_EXIST)
		     : !bpf_map_lookup_elem(dp.maps.ct, &k, e);
}

/*
 * Latency sampling: while the service times 1 in 8 requests, exactly the
 * requests whose sequence numbers hash into the sample reach the histogram,
 * 8 times each, and every request and response is still counted; a
 * keep-alive flow opened before the change follows it from its next
 * request, and back again; an entry from before svc_ref existed times every
 * request. 50 exchanges: not a multiple of 8, so every request counted once
 * cannot pass for the sample counted 8 times.
 */
static void test_sampling(bool v6)
{
	const char *fam = v6 ? "v6" : "v4";
	uint32_t svc = v6 ? svc6 : svc4, want, cseq, bseq;
	uint16_t old_port = v6 ? 8100 : 8200, port = old_port + 1;
	struct sl_backend_stats before, after;
	struct sl_ct_entry e;
	uint64_t timed, h0;
	bool found;
	int n = 50;

	handshake(v6, old_port); /* opened while every request is timed */
	timed = timed_of(v6, old_port, 2, 8, &want);
	tap_ok(steering_sample_shift(&dp.maps, svc) == 0 && timed == 8,
	       "%s: a new service times every request (%llu of 8)", fam,
	       (unsigned long long)timed);
	tap_ok(steering_set_sample_shift(&dp.maps, svc, 3) == 1 &&
		       steering_sample_shift(&dp.maps, svc) == 3,
	       "%s: sampling set to 1 in 8", fam);
	handshake(v6, port);

	before = snap(v6);
	timed = timed_of(v6, port, 2, n, &want);
	after = snap(v6);
	tap_ok(D(requests) == (unsigned)n && D(responses[1]) == (unsigned)n,
	       "%s: sampled flow: all %d requests and responses counted (%llu/%llu)", fam, n,
	       D(requests), D(responses[1]));
	tap_ok(want > 0 && want < (unsigned)n && timed == 8ULL * want,
	       "%s: sampled flow: the %u of %d requests whose sequence hashes into 1 in 8 timed, "
	       "8 each in the histogram (%llu)", fam, want, n, (unsigned long long)timed);

	/* an untimed request's head sent again is still one request */
	cseq = 2 + 1000 * n, bseq = cseq + 999;
	while (!(sl_mix32(cseq) & 7))
		cseq += 1000, bseq += 1000;
	before = snap(v6);
	h0 = hist_total(v6);
	seg(v6, true, port, PKT_TCP_ACK, cseq, "GET /r HTTP/1.1\r\n\r\n");
	seg(v6, true, port, PKT_TCP_ACK, cseq, "GET /r HTTP/1.1\r\n\r\n");
	seg(v6, false, port, PKT_TCP_ACK, bseq, "HTTP/1.1 200 OK\r\n\r\n");
	after = snap(v6);
	tap_ok(D(requests) == 1 && D(responses[1]) == 1 && D(unclassified) == 0 &&
		       hist_total(v6) == h0,
	       "%s: an untimed request retransmitted: one request, one response, no latency",
	       fam);

	/* the keep-alive flow from before the change follows it */
	timed = timed_of(v6, old_port, 10002, n, &want);
	tap_ok(timed == 8ULL * want && want > 0 && want < (unsigned)n,
	       "%s: a flow opened before the change times its %u of %d too, 8 each (%llu)", fam,
	       want, n, (unsigned long long)timed);

	/* an entry written before svc_ref existed: every request */
	memset(&e, 0, sizeof(e));
	found = ct_entry(v6, old_port, &e, false);
	tap_ok(found && e.svc_ref == svc + 1, "%s: the flow's entry names its service (svc_ref %u)",
	       fam, e.svc_ref);
	e.svc_ref = 0;
	ct_entry(v6, old_port, &e, true);
	timed = timed_of(v6, old_port, 200002, 8, &want);
	tap_ok(timed == 8, "%s: an entry without svc_ref times every request (%llu of 8)", fam,
	       (unsigned long long)timed);

	tap_ok(steering_set_sample_shift(&dp.maps, svc, 0) == 1 &&
		       steering_set_sample_shift(&dp.maps, svc, 0) == 0 &&
		       steering_set_sample_shift(&dp.maps, svc, SL_SAMPLE_SHIFT_MAX + 1) == -ERANGE &&
		       steering_set_sample_shift(&dp.maps, SL_MAX_SERVICES, 0) == -ERANGE,
	       "%s: sampling back to every request; a k past 1 in 16 or an id past the "
	       "last refused", fam);
	timed = timed_of(v6, port, 300002, 8, &want);
	tap_ok(timed == 8, "%s: and the sampled flow times all 8 again (%llu)", fam,
	       (unsigned long long)timed);
}

static void test_latency_buckets(void)
{
	bool ok = true;

	/* Every bucket's midpoint is within 1/32 of every value it holds. */
	for (uint64_t ns = 1024; ns < 100ULL * 1000 * 1000 * 1000; ns += ns / 7 + 1) {
		uint32_t b = sl_lat_bucket(ns);
		double mid = (sl_lat_lower_ns(b) + (double)sl_lat_upper_ns(b)) / 2;

		if (ns < sl_lat_lower_ns(b) || ns >= sl_lat_upper_ns(b) ||
		    (mid - ns) / ns > 1.0 / 32 + 1e-9 || (ns - mid) / ns > 1.0 / 32 + 1e-9)
			ok = false;
	}
	tap_ok(ok, "latency buckets: 1 us to 100 s, each value within 3.1%% of its bucket's midpoint");
}

int main(void)
{
	struct spec_canary c;

	if (!fixture_setup("BPF accounting fixtures"))
		return tap_done();
	make_canary(&c, "http4", VIP4, 80, IPPROTO_TCP, P1_4, NULL);
	steering_apply(&dp.maps, &c, 0, &svc4);
	make_canary(&c, "http6", VIP6, 80, IPPROTO_TCP, P1_6, NULL);
	steering_apply(&dp.maps, &c, 0, &svc6);

	test_exchange(false);
	test_exchange(true);
	test_tcp_signals(false);
	test_tcp_signals(true);
	test_sampling(false);
	test_sampling(true);
	test_latency_buckets();
	fixture_teardown();
	return tap_done();
}
