// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF fixture tests for the steering programs: crafted packets through the
 * real, loaded sl_tc_forward and sl_tc_reverse with bpf_prog_test_run_opts,
 * checked byte for byte against packets built with the expected rewrite
 * (so checksums are verified by recomputation), and the maps read after.
 * Needs root and a BPF-capable kernel; prints TAP.
 */
#include <time.h>

#include "fixture.h"
#include "sluice/hash.h"

static void test_basic_family(const char *fam, const char *vip, const char *client,
			      const char *p1, const char *c1, uint8_t proto)
{
	const char *pname = proto == IPPROTO_TCP ? "tcp" : "udp";
	uint8_t syn = proto == IPPROTO_TCP ? PKT_TCP_SYN : 0;
	uint8_t ack = proto == IPPROTO_TCP ? PKT_TCP_ACK : 0;
	struct spec_canary c;
	struct pkt_desc in, want;
	uint32_t pid, cid, svc_id;
	struct sl_backend_stats before, after;
	char name[32];

	snprintf(name, sizeof(name), "basic-%s-%s", fam, pname);
	make_canary(&c, name, vip, 80, proto, p1, c1);
	if (!tap_ok(steering_apply(&dp.maps, &c, 0, &svc_id) == 0, "%s %s: service written", fam,
		    pname))
		return;
	pid = backend_id_of(svc_id, p1);
	cid = backend_id_of(svc_id, c1);
	before = sum_stats(pid);

	in = (struct pkt_desc){ .src = client, .dst = vip, .sport = 40000, .dport = 80,
				.proto = proto, .tcp_flags = syn, .payload = proto == IPPROTO_UDP ? 33 : 0 };
	want = in;
	want.dst = p1;
	want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want),
	       "%s %s: first packet to VIP at weight 0 is DNATed to the primary, checksums right",
	       fam, pname);

	/* Flip all new traffic to canary: the established flow must not move. */
	steering_set_weight(&dp.maps, &(struct sl_service_key){ 0 }, 0); /* no-op: wrong key */
	{
		struct sl_service_key key;

		steering_key(&c, &key);
		steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);
	}
	in.tcp_flags = ack;
	in.payload = 100;
	want = in;
	want.dst = p1;
	want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want),
	       "%s %s: established flow keeps its primary backend at weight 10000", fam, pname);

	/* Reply from the backend: source becomes the VIP again. */
	in = (struct pkt_desc){ .src = p1, .dst = client, .sport = 8080, .dport = 40000,
				.proto = proto, .tcp_flags = syn | ack, .payload = 7 };
	want = in;
	want.src = vip;
	want.sport = 80;
	tap_ok(expect(rev_fd, &in, SL_TC_PASS, &want),
	       "%s %s: reply gets the VIP:port back as its source, checksums right", fam, pname);

	/* The same reply shape from a port nobody connected from: untouched. */
	in.dport = 40001;
	tap_ok(expect(rev_fd, &in, SL_TC_PASS, NULL),
	       "%s %s: a pod's packet outside any steered flow is untouched", fam, pname);

	/* A new flow now goes to the canary. */
	in = (struct pkt_desc){ .src = client, .dst = vip, .sport = 40002, .dport = 80,
				.proto = proto, .tcp_flags = syn };
	want = in;
	want.dst = c1;
	want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want), "%s %s: new flow at weight 10000 goes to canary",
	       fam, pname);

	after = sum_stats(pid);
	tap_ok(after.conns_opened - before.conns_opened == 1 &&
		       after.pkts_fwd - before.pkts_fwd == 2 && after.pkts_rev - before.pkts_rev == 1,
	       "%s %s: primary stats count 1 connection, 2 packets forward, 1 back (got %llu/%llu/%llu)",
	       fam, pname, (unsigned long long)(after.conns_opened - before.conns_opened),
	       (unsigned long long)(after.pkts_fwd - before.pkts_fwd),
	       (unsigned long long)(after.pkts_rev - before.pkts_rev));
	tap_ok(sum_stats(cid).conns_opened >= 1, "%s %s: canary stats count its connection", fam,
	       pname);
}

static void test_untouched(void)
{
	struct spec_canary c;
	uint8_t raw[PKT_MAX];
	size_t len;
	struct pkt_desc d;
	static const struct {
		const char *desc;
		struct pkt_desc d;
	} cases[] = {
		{ "v4 TCP to another address",
		  { .src = CLIENT4, .dst = "198.18.9.9", .sport = 1, .dport = 80,
		    .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN } },
		{ "v4 TCP to the VIP on another port",
		  { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 8444, .proto = IPPROTO_TCP,
		    .tcp_flags = PKT_TCP_SYN } },
		{ "v4 UDP to a TCP-only VIP port",
		  { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 8443, .proto = IPPROTO_UDP } },
		{ "v4 ICMP-numbered protocol to the VIP",
		  { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 8443, .proto = 1,
		    .payload = 8 } },
		{ "v4 first fragment to the VIP",
		  { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 8443, .proto = IPPROTO_TCP,
		    .tcp_flags = PKT_TCP_SYN, .v4_more_frags = true } },
		{ "v4 later fragment to the VIP",
		  { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 8443, .proto = IPPROTO_TCP,
		    .v4_frag_off = 185, .payload = 20 } },
		{ "v6 TCP to another address",
		  { .src = CLIENT6, .dst = "fd00:5c:9::9", .sport = 1, .dport = 80,
		    .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN } },
		{ "v6 fragment header to the VIP",
		  { .src = CLIENT6, .dst = VIP6, .sport = 1, .dport = 8443, .proto = IPPROTO_TCP,
		    .tcp_flags = PKT_TCP_SYN, .ext = PKT_EXT_FRAGMENT } },
		{ "v6 routing header to the VIP",
		  { .src = CLIENT6, .dst = VIP6, .sport = 1, .dport = 8443, .proto = IPPROTO_TCP,
		    .tcp_flags = PKT_TCP_SYN, .ext = PKT_EXT_ROUTING } },
	};

	make_canary(&c, "untouched4", VIP4, 8443, IPPROTO_TCP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 5000, NULL);
	make_canary(&c, "untouched6", VIP6, 8443, IPPROTO_TCP, P1_6, C1_6);
	steering_apply(&dp.maps, &c, 5000, NULL);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_ok(expect(fwd_fd, &cases[i].d, SL_TC_PASS, NULL), "untouched: %s",
		       cases[i].desc);
		tap_ok(expect(rev_fd, &cases[i].d, SL_TC_PASS, NULL), "untouched by reverse: %s",
		       cases[i].desc);
	}

	/* Truncated packets: every prefix of a SYN to the VIP, and malformed headers. */
	d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 2, .dport = 8443,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
	len = pkt_build(raw, &d);
	expect_truncations(raw, len, "a v4 SYN to the VIP");
	d.src = CLIENT6, d.dst = VIP6;
	d.ext = PKT_EXT_HOPOPTS;
	len = pkt_build(raw, &d);
	expect_truncations(raw, len, "a v6 SYN with a hop-by-hop header to the VIP");
	d.src = CLIENT4, d.dst = VIP4;
	len = pkt_build(raw, &d);
	raw[14] = 0x44; /* IHL 4: shorter than the fixed header */
	tap_ok(expect_raw_untouched(fwd_fd, raw, len) == 1, "v4 IHL below 5 passes untouched");
	len = pkt_build(raw, &d);
	pkt_put16(raw + 16, 400); /* total length beyond the frame */
	tap_ok(expect_raw_untouched(fwd_fd, raw, len) == 1, "v4 total length beyond the frame passes untouched");
	len = pkt_build(raw, &d);
	pkt_put16(raw + 16, 20 + 16); /* IP length ends inside the TCP header (found by fuzzing) */
	raw[24] = raw[25] = 0;
	pkt_put16(raw + 24, pkt_fold(pkt_sum(raw + 14, 20, 0)));
	tap_ok(expect_raw_untouched(fwd_fd, raw, len) == 1,
	       "an IP length that ends inside the TCP header passes untouched");
	len = pkt_build(raw, &d);
	raw[14 + 20 + 12] = 0x20; /* TCP data offset 2 */
	tap_ok(expect_raw_untouched(fwd_fd, raw, len) == 1, "TCP data offset below 5 passes untouched");
	len = pkt_build(raw, &d);
	raw[12] = 0x08, raw[13] = 0x06; /* ARP ethertype */
	tap_ok(expect_raw_untouched(fwd_fd, raw, len) == 1, "non-IP ethertype passes untouched");
}

static void test_headers(void)
{
	struct pkt_desc in, want;

	/* IPv4 options: the L4 header moves, the rewrite must follow it. */
	in = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 3000, .dport = 80,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN, .ip_opts = 8 };
	want = in;
	want.dst = P1_4, want.dport = 8080;
	/* untouched4 is at weight 5000: pin this client through a cohort-free
	 * single-backend service instead */
	{
		struct spec_canary c;

		make_canary(&c, "hdr4", VIP4, 443, IPPROTO_TCP, P1_4, NULL);
		steering_apply(&dp.maps, &c, 0, NULL);
		make_canary(&c, "hdr6", VIP6, 443, IPPROTO_TCP, P1_6, NULL);
		steering_apply(&dp.maps, &c, 0, NULL);
	}
	in.dport = 443;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want), "v4 with IP options is steered correctly");
	in = (struct pkt_desc){ .src = CLIENT6, .dst = VIP6, .sport = 3000, .dport = 443,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN, .ext = PKT_EXT_HOPOPTS };
	want = in;
	want.dst = P1_6, want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want), "v6 with a hop-by-hop header is steered");
	in.sport = 3001, in.ext = PKT_EXT_DSTOPTS_2, in.payload = 50;
	want = in;
	want.dst = P1_6, want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want),
	       "v6 with hop-by-hop and destination options is steered");
}

static void test_udp_zero_csum(void)
{
	struct spec_canary c;
	struct pkt_desc in, want;

	make_canary(&c, "dns", VIP4, 53, IPPROTO_UDP, P1_4, NULL);
	steering_apply(&dp.maps, &c, 0, NULL);
	in = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 5353, .dport = 53,
				.proto = IPPROTO_UDP, .udp_no_csum = true, .payload = 12 };
	want = in;
	want.dst = P1_4, want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want), "v4 UDP without checksum keeps checksum 0");
}

/* Count canary picks among @n new flows from distinct source ports. */
static int count_canary(const char *client, const char *vip, uint16_t dport, int n,
			const char *canary_addr, uint16_t port_base)
{
	char to[INET6_ADDRSTRLEN];
	int canary = 0;

	for (int i = 0; i < n; i++) {
		if (steer_syn(client, vip, (uint16_t)(port_base + i), dport, to, sizeof(to)))
			return -1;
		canary += !strcmp(to, canary_addr);
	}
	return canary;
}

static void test_weights(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	int n;

	make_canary(&c, "weights", VIP4, 8000, IPPROTO_TCP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	n = count_canary(CLIENT4, VIP4, 8000, 2000, C1_4, 10000);
	tap_ok(n == 0, "weight 0: none of 2000 new flows reach the canary (got %d)", n);
	steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);
	n = count_canary(CLIENT4, VIP4, 8000, 2000, C1_4, 20000);
	tap_ok(n == 2000, "weight 10000: all 2000 new flows reach the canary (got %d)", n);

	/* The statistical split: 100,000 flows at 10%. */
	steering_set_weight(&dp.maps, &key, 1000);
	{
		int total = 0, canary = 0;

		for (int client = 0; client < 4 && total >= 0; client++) {
			char src[32];

			snprintf(src, sizeof(src), "198.18.0.%d", 10 + client);
			n = count_canary(src, VIP4, 8000, 25000, C1_4, 30000);
			if (n < 0) {
				total = -1;
				break;
			}
			canary += n;
			total += 25000;
		}
		double pct = total > 0 ? 100.0 * canary / total : -1;

		tap_ok(total == 100000 && pct >= 9.4 && pct <= 10.6,
		       "weight 1000: %d of 100000 new flows (%.2f%%) reach the canary, within 10 +- 0.6",
		       canary, pct);
	}
}

static void test_client_affinity(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	enum { CLIENTS = 400 };
	static char was_canary[CLIENTS];
	bool monotone = true, predicted = true, sticky = true;
	uint32_t seed;

	make_canary(&c, "sticky", VIP4, 9000, IPPROTO_TCP, P1_4, C1_4);
	c.affinity = SL_AFFINITY_CLIENT;
	steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	seed = steering_seed(c.namespace, c.name);
	memset(was_canary, 0, sizeof(was_canary));

	for (int w = 0; w <= SL_WEIGHT_MAX; w += 1000) {
		steering_set_weight(&dp.maps, &key, w);
		for (int i = 0; i < CLIENTS; i++) {
			char src[32], to[INET6_ADDRSTRLEN];
			struct spec_addr a;
			bool canary;

			snprintf(src, sizeof(src), "198.18.%d.%d", 100 + i / 200, 1 + i % 200);
			/* a fresh source port per weight: always a new flow */
			if (steer_syn(src, VIP4, (uint16_t)(1000 + w / 100), 9000, to, sizeof(to))) {
				monotone = false;
				break;
			}
			canary = !strcmp(to, C1_4);
			if (was_canary[i] && !canary)
				monotone = false;
			was_canary[i] = canary;
			set_addr(&a, src);
			if (canary != (sl_client_bucket(sl_hash_addr(&a.addr, seed)) < (uint32_t)w))
				predicted = false;
		}
	}
	tap_ok(monotone, "client affinity: raising the weight 0 -> 10000 never moves a client back");
	tap_ok(predicted, "client affinity: every placement equals bucket(hash(client)) < weight");

	steering_set_weight(&dp.maps, &key, 5000);
	for (int i = 0; i < 50 && sticky; i++) {
		char src[32], first[INET6_ADDRSTRLEN], to[INET6_ADDRSTRLEN];

		snprintf(src, sizeof(src), "198.18.102.%d", 1 + i);
		steer_syn(src, VIP4, 2000, 9000, first, sizeof(first));
		for (int k = 1; k < 20; k++) {
			steer_syn(src, VIP4, (uint16_t)(2000 + k), 9000, to, sizeof(to));
			if (strcmp(to, first))
				sticky = false;
		}
	}
	tap_ok(sticky, "client affinity: 20 connections of one client land on one version");
}

static void test_cohorts(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	char to[INET6_ADDRSTRLEN];
	int n;

	make_canary(&c, "cohort", VIP4, 7000, IPPROTO_TCP, P1_4, C1_4);
	add_cohort(&c.canary, "198.18.0.0", 28);
	add_cohort(&c.primary, "198.18.0.64", 26);
	steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	n = count_canary("198.18.0.5", VIP4, 7000, 200, C1_4, 1000);
	tap_ok(n == 200, "cohort canary 198.18.0.0/28 reaches the canary at weight 0 (%d/200)", n);
	n = count_canary("198.18.0.17", VIP4, 7000, 200, C1_4, 1000);
	tap_ok(n == 0, "a client outside the cohort stays on primary at weight 0 (%d/200)", n);
	steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);
	n = count_canary("198.18.0.70", VIP4, 7000, 200, C1_4, 3000);
	tap_ok(n == 0, "cohort primary 198.18.0.64/26 stays on primary at weight 10000 (%d/200)", n);
	steer_syn("198.18.0.17", VIP4, 5000, 7000, to, sizeof(to));
	tap_ok(!strcmp(to, C1_4), "a client outside the cohorts follows the weight (%s)", to);
}

static void test_teardown_and_udp_timeout(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	char to[INET6_ADDRSTRLEN];
	struct pkt_desc d;
	uint8_t b[PKT_MAX], o[PKT_MAX];
	uint32_t olen, svc_id;

	make_canary(&c, "teardown", VIP4, 6000, IPPROTO_TCP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 0, &svc_id);
	steering_key(&c, &key);
	steer_syn(CLIENT4, VIP4, 4000, 6000, to, sizeof(to));
	steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);
	steer_syn(CLIENT4, VIP4, 4000, 6000, to, sizeof(to));
	tap_ok(!strcmp(to, P1_4), "a retransmitted SYN stays on its backend (%s)", to);

	/* FIN from the client only: still the same flow. */
	d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 4000, .dport = 6000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	steer_syn(CLIENT4, VIP4, 4000, 6000, to, sizeof(to));
	tap_ok(!strcmp(to, P1_4), "after a FIN one way, the flow keeps its backend (%s)", to);
	/* FIN from the backend too: the port may now start a new connection. */
	d = (struct pkt_desc){ .src = P1_4, .dst = CLIENT4, .sport = 8080, .dport = 4000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
	run(rev_fd, b, pkt_build(b, &d), o, &olen);
	tap_ok(olen > 0 && o[14 + 12] == 198 && o[14 + 15] == 10,
	       "the backend's FIN goes back from the VIP");
	steer_syn(CLIENT4, VIP4, 4000, 6000, to, sizeof(to));
	tap_ok(!strcmp(to, C1_4), "after FIN both ways, a new SYN on the same port is steered anew (%s)",
	       to);
	tap_ok(sum_stats(backend_id_of(svc_id, P1_4)).conns_closed == 1,
	       "a flow closed by the backend's FIN is counted closed once");

	/* The other order: the backend closes first, the client's FIN ends it. */
	{
		uint64_t closed0 = sum_stats(backend_id_of(svc_id, C1_4)).conns_closed;

		steer_syn(CLIENT4, VIP4, 4100, 6000, to, sizeof(to));
		d = (struct pkt_desc){ .src = C1_4, .dst = CLIENT4, .sport = 8080, .dport = 4100,
				       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
		run(rev_fd, b, pkt_build(b, &d), o, &olen);
		d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 4100, .dport = 6000,
				       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
		run(fwd_fd, b, pkt_build(b, &d), o, &olen);
		d.tcp_flags = PKT_TCP_ACK; /* the last ACK: same backend, not counted again */
		run(fwd_fd, b, pkt_build(b, &d), o, &olen);
		tap_ok(!strcmp(to, C1_4) &&
			       sum_stats(backend_id_of(svc_id, C1_4)).conns_closed == closed0 + 1,
		       "a flow closed by the client's FIN is counted closed once");
	}

	/* RST ends a flow at once. */
	steering_set_weight(&dp.maps, &key, 0);
	d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 4000, .dport = 6000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_RST };
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	steer_syn(CLIENT4, VIP4, 4000, 6000, to, sizeof(to));
	tap_ok(!strcmp(to, P1_4), "after a RST, a new SYN on the same port is steered anew (%s)", to);

	/*
	 * The client now talks to the pod directly from the same port (the
	 * flow to the VIP ended): the pod's SYN-ACK must not be turned into
	 * the VIP's.
	 */
	steer_syn(CLIENT4, VIP4, 4200, 6000, to, sizeof(to));
	d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 4200, .dport = 6000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	d = (struct pkt_desc){ .src = to, .dst = CLIENT4, .sport = 8080, .dport = 4200,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK };
	run(rev_fd, b, pkt_build(b, &d), o, &olen);
	d.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	tap_ok(expect(rev_fd, &d, SL_TC_PASS, NULL),
	       "a pod's SYN-ACK on an ended flow's tuple (a direct connection) is untouched");
	d.tcp_flags = PKT_TCP_ACK;
	tap_ok(expect(rev_fd, &d, SL_TC_PASS, NULL), "...and so is the rest of that connection");

	/* A late reply from the old backend after the port moved to another one. */
	d = (struct pkt_desc){ .src = C1_4, .dst = CLIENT4, .sport = 8080, .dport = 4000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK };
	tap_ok(expect(rev_fd, &d, SL_TC_PASS, NULL),
	       "a reply from the previous backend, once the port moved on, is untouched");
}

static void test_udp_timeout(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	char to[INET6_ADDRSTRLEN];
	struct pkt_desc d;
	uint8_t b[PKT_MAX], o[PKT_MAX];
	uint32_t olen;

	make_canary(&c, "udptimeout", VIP4, 5353, IPPROTO_UDP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	d = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 999, .dport = 5353,
			       .proto = IPPROTO_UDP, .payload = 4 };
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	inet_ntop(AF_INET, o + 30, to, sizeof(to));
	tap_ok(!strcmp(to, P1_4), "UDP flow within its idle timeout keeps its backend (%s)", to);
	usleep(300 * 1000); /* the test loader set a 100 ms UDP timeout */
	run(fwd_fd, b, pkt_build(b, &d), o, &olen);
	inet_ntop(AF_INET, o + 30, to, sizeof(to));
	tap_ok(!strcmp(to, C1_4), "UDP flow idle past its timeout is steered anew (%s)", to);
}

/* The conntrack entry of UDP flow CLIENT4:@sport -> VIP4:@dport, read or (@write) written. */
static bool udp_entry(uint16_t sport, uint16_t dport, struct sl_ct_entry *e, bool write)
{
	struct sl_ct_key k = { .sport = htons(sport), .dport = htons(dport), .proto = IPPROTO_UDP,
			       .family = AF_INET };

	inet_pton(AF_INET, CLIENT4, &k.saddr.v4);
	inet_pton(AF_INET, VIP4, &k.daddr.v4);
	return write ? !bpf_map_update_elem(dp.maps.ct, &k, e, BPF_EXIST)
		     : !bpf_map_lookup_elem(dp.maps.ct, &k, e);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Set the flow's last_seen to @at; false if the entry is gone. */
static bool udp_seen_at(uint16_t sport, uint16_t dport, uint64_t at)
{
	struct sl_ct_entry e;

	if (!udp_entry(sport, dport, &e, false))
		return false;
	e.last_seen_ns = at;
	return udp_entry(sport, dport, &e, true);
}

/*
 * UDP idleness, with the test loader's 100 ms timeout (so 25 ms between
 * refreshes): a busy flow stays, in either direction, a silent one ends in
 * both, and a last_seen another CPU wrote after this one read the clock is
 * not taken for 584 years of silence.
 */
static void test_udp_ages_both_ways(void)
{
	struct spec_canary c;
	struct sl_service_key key;
	struct sl_ct_entry e;
	struct pkt_desc fwd = { .src = CLIENT4, .dst = VIP4, .sport = 998, .dport = 5354,
				.proto = IPPROTO_UDP, .payload = 4 };
	struct pkt_desc rev = { .src = P1_4, .dst = CLIENT4, .sport = 8080, .dport = 998,
				.proto = IPPROTO_UDP, .payload = 4 };
	struct pkt_desc to_p1 = fwd, from_vip = rev;
	uint64_t t;

	to_p1.dst = P1_4, to_p1.dport = 8080;
	from_vip.src = VIP4, from_vip.sport = 5354;
	make_canary(&c, "udpage", VIP4, 5354, IPPROTO_UDP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	tap_ok(expect(fwd_fd, &fwd, SL_TC_PASS, &to_p1), "a UDP flow starts on primary at weight 0");
	/* from here a flow steered anew would go to the canary */
	steering_set_weight(&dp.maps, &key, SL_WEIGHT_MAX);

	tap_ok(udp_seen_at(998, 5354, mono_ns() + 5000000000ULL) &&
		       expect(fwd_fd, &fwd, SL_TC_PASS, &to_p1),
	       "a last_seen later than the datagram's clock read keeps the flow (no wrap-around)");

	t = mono_ns();
	tap_ok(udp_seen_at(998, 5354, t - 60000000ULL) && expect(fwd_fd, &fwd, SL_TC_PASS, &to_p1) &&
		       udp_entry(998, 5354, &e, false) && e.last_seen_ns >= t,
	       "a datagram 60 ms after the last refresh refreshes it (a quarter of a 100 ms timeout)");

	t = mono_ns();
	tap_ok(udp_seen_at(998, 5354, t - 60000000ULL) && expect(rev_fd, &rev, SL_TC_PASS, &from_vip) &&
		       udp_entry(998, 5354, &e, false) && e.last_seen_ns >= t,
	       "the backend's datagrams refresh the flow too (a stream the client only opened)");

	tap_ok(udp_seen_at(998, 5354, mono_ns() - 500000000ULL) &&
		       expect(rev_fd, &rev, SL_TC_PASS, NULL),
	       "a datagram from the pod to a flow silent past its timeout is not the VIP's");
	to_p1.dst = C1_4;
	tap_ok(expect(fwd_fd, &fwd, SL_TC_PASS, &to_p1),
	       "...and the client's next datagram is steered anew (to the canary at 100%%)");
}

/*
 * A backend leaves its service: its established TCP flows drain to it, but
 * a SYN on one of their tuples (the client's port reused without a FIN or
 * RST seen) and the next datagram of a UDP flow are steered anew.
 */
static void test_backend_gone(void)
{
	struct spec_canary tcp, udp;
	struct pkt_desc syn = { .src = CLIENT4, .dst = VIP4, .sport = 4400, .dport = 6100,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
	struct pkt_desc ack = syn, dgram = { .src = CLIENT4, .dst = VIP4, .sport = 4401,
					     .dport = 5355, .proto = IPPROTO_UDP, .payload = 8 };
	struct pkt_desc want;

	ack.tcp_flags = PKT_TCP_ACK, ack.payload = 10;
	make_canary(&tcp, "gone", VIP4, 6100, IPPROTO_TCP, P1_4, NULL);
	make_canary(&udp, "goneudp", VIP4, 5355, IPPROTO_UDP, P1_4, NULL);
	steering_apply(&dp.maps, &tcp, 0, NULL);
	steering_apply(&dp.maps, &udp, 0, NULL);
	want = syn, want.dst = P1_4, want.dport = 8080;
	tap_ok(expect(fwd_fd, &syn, SL_TC_PASS, &want), "a TCP flow starts on its only backend");
	want = dgram, want.dst = P1_4, want.dport = 8080;
	tap_ok(expect(fwd_fd, &dgram, SL_TC_PASS, &want), "a UDP flow starts on its only backend");

	/* both services now on another pod: P1 left them */
	tcp.primary.n_endpoints = udp.primary.n_endpoints = 0;
	add_ep(&tcp.primary, "198.18.1.77", 8080);
	add_ep(&udp.primary, "198.18.1.77", 8080);
	steering_apply(&dp.maps, &tcp, 0, NULL);
	steering_apply(&dp.maps, &udp, 0, NULL);
	want = ack, want.dst = P1_4, want.dport = 8080;
	tap_ok(expect(fwd_fd, &ack, SL_TC_PASS, &want),
	       "the established TCP flow drains to its removed backend");
	want = syn, want.dst = "198.18.1.77", want.dport = 8080;
	tap_ok(expect(fwd_fd, &syn, SL_TC_PASS, &want),
	       "a SYN on its tuple, never closed, goes to a backend of the service now");
	want = dgram, want.dst = "198.18.1.77", want.dport = 8080;
	tap_ok(expect(fwd_fd, &dgram, SL_TC_PASS, &want),
	       "the UDP flow's next datagram goes to a backend of the service now");
}

static void test_backend_added(void)
{
	struct spec_canary c;
	char to[INET6_ADDRSTRLEN];
	struct pkt_desc in, want;
	uint32_t id_before, id_after, svc_id;

	make_canary(&c, "grow", VIP4, 5000, IPPROTO_TCP, "198.18.1.20", NULL);
	steering_apply(&dp.maps, &c, 0, &svc_id);
	id_before = backend_id_of(svc_id, "198.18.1.20");
	steer_syn(CLIENT4, VIP4, 7777, 5000, to, sizeof(to));
	add_ep(&c.primary, "198.18.2.20", 8080);
	add_ep(&c.primary, "198.18.2.21", 8080);
	tap_ok(steering_apply(&dp.maps, &c, 0, NULL) == 0, "two backends added to a live service");
	id_after = backend_id_of(svc_id, "198.18.1.20");
	in = (struct pkt_desc){ .src = CLIENT4, .dst = VIP4, .sport = 7777, .dport = 5000,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 10 };
	want = in;
	want.dst = "198.18.1.20", want.dport = 8080;
	tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want) && id_before == id_after,
	       "the established flow keeps its backend (and its backend id %u)", id_after);
	{
		int seen[3] = { 0 };

		for (int i = 0; i < 300; i++) {
			steer_syn(CLIENT4, VIP4, (uint16_t)(20000 + i), 5000, to, sizeof(to));
			seen[!strcmp(to, "198.18.2.20") ? 1 : !strcmp(to, "198.18.2.21") ? 2 : 0]++;
		}
		tap_ok(seen[0] > 50 && seen[1] > 50 && seen[2] > 50,
		       "new flows spread over all three backends (%d/%d/%d of 300)", seen[0], seen[1],
		       seen[2]);
	}
	c.primary.n_endpoints = 1;
	c.primary.endpoints[0] = c.primary.endpoints[2];
	steering_apply(&dp.maps, &c, 0, NULL);
	{
		bool only = true;

		for (int i = 0; i < 50; i++) {
			steer_syn(CLIENT4, VIP4, (uint16_t)(21000 + i), 5000, to, sizeof(to));
			only &= !strcmp(to, "198.18.2.21");
		}
		tap_ok(only && backend_id_of(svc_id, "198.18.1.20") == UINT32_MAX,
		       "after removing two backends new flows use the one left, ids freed");
	}
}

static void test_no_backend(void)
{
	struct spec_canary c;
	struct pkt_desc d = { .src = CLIENT4, .dst = VIP4, .sport = 1, .dport = 4000,
			      .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
	struct pkt_desc want = d;

	/* Canary weight with an empty canary set falls back to primary. */
	make_canary(&c, "nocanary", VIP4, 4000, IPPROTO_TCP, P1_4, NULL);
	steering_apply(&dp.maps, &c, SL_WEIGHT_MAX, NULL);
	want.dst = P1_4, want.dport = 8080;
	tap_ok(expect(fwd_fd, &d, SL_TC_PASS, &want),
	       "weight 10000 with no canary backend falls back to primary");
}


/*
 * An ICMP error quoting a steered packet (client -> pod after DNAT), as a
 * router between node and pod sends it: the quote must get the VIP back,
 * every checksum must still verify, and the outer headers must not move.
 */
static size_t icmp_error(uint8_t *b, bool v6, const uint8_t *quote, size_t qlen, size_t keep)
{
	size_t l3 = 14, ip_len = v6 ? 40 : 20, icmp = l3 + ip_len;
	uint8_t src[16], dst[16];
	uint32_t sum;

	memset(b, 0, PKT_MAX);
	b[0] = 0x02, b[5] = 0x02, b[6] = 0x02, b[11] = 0x01;
	pkt_put16(b + 12, v6 ? ETH_P_IPV6 : ETH_P_IP);
	if (keep > qlen - 14)
		keep = qlen - 14;
	memcpy(b + icmp + 8, quote + 14, keep); /* the quoted IP packet, Ethernet stripped */
	inet_pton(v6 ? AF_INET6 : AF_INET, v6 ? "fd00:5c:1::1" : "198.18.1.1", src);
	inet_pton(v6 ? AF_INET6 : AF_INET, v6 ? CLIENT6 : CLIENT4, dst);
	if (!v6) {
		b[l3] = 0x45;
		pkt_put16(b + l3 + 2, 20 + 8 + keep);
		b[l3 + 8] = 64, b[l3 + 9] = 1;
		memcpy(b + l3 + 12, src, 4), memcpy(b + l3 + 16, dst, 4);
		pkt_put16(b + l3 + 10, pkt_fold(pkt_sum(b + l3, 20, 0)));
		b[icmp] = 3, b[icmp + 1] = 4; /* fragmentation needed */
		pkt_put16(b + icmp + 6, 1000);
		pkt_put16(b + icmp + 2, pkt_fold(pkt_sum(b + icmp, 8 + keep, 0)));
	} else {
		b[l3] = 0x60;
		pkt_put16(b + l3 + 4, 8 + keep);
		b[l3 + 6] = 58, b[l3 + 7] = 64;
		memcpy(b + l3 + 8, src, 16), memcpy(b + l3 + 24, dst, 16);
		b[icmp] = 2; /* packet too big */
		pkt_put16(b + icmp + 6, 1280);
		sum = pkt_sum(src, 16, 0);
		sum = pkt_sum(dst, 16, sum);
		sum += 58 + (uint32_t)(8 + keep);
		pkt_put16(b + icmp + 2, pkt_fold(pkt_sum(b + icmp, 8 + keep, sum)));
	}
	return icmp + 8 + keep;
}

static bool icmp_sum_ok(const uint8_t *b, bool v6, size_t len)
{
	size_t icmp = 14 + (v6 ? 40 : 20);
	uint32_t sum = 0;

	if (v6) {
		sum = pkt_sum(b + 22, 32, 0);
		sum += 58 + (uint32_t)(len - icmp);
	}
	return pkt_fold(pkt_sum(b + icmp, len - icmp, sum)) == 0;
}

static void test_icmp_errors(void)
{
	for (int v6 = 0; v6 < 2; v6++) {
		const char *fam = v6 ? "v6" : "v4";
		const char *vip = v6 ? VIP6 : VIP4, *client = v6 ? CLIENT6 : CLIENT4;
		const char *pod = v6 ? P1_6 : P1_4;
		struct spec_canary c;
		struct pkt_desc d = { .src = client, .dst = vip, .sport = 5500, .dport = 80,
				      .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
		uint8_t q[PKT_MAX], want_q[PKT_MAX], in[PKT_MAX], out[PKT_MAX], ref[PKT_MAX];
		size_t qlen, len, icmp = 14 + (v6 ? 40 : 20);
		uint32_t olen = 0;
		uint8_t a[16];
		bool ok;

		make_canary(&c, v6 ? "pmtu6" : "pmtu4", vip, 80, IPPROTO_TCP, pod, NULL);
		steering_apply(&dp.maps, &c, 0, NULL);
		run(fwd_fd, q, pkt_build(q, &d), out, &olen); /* the flow exists now */

		/* what the router quotes: the packet after DNAT, with a payload */
		d = (struct pkt_desc){ .src = client, .dst = pod, .sport = 5500, .dport = 8080,
				       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 1200 };
		qlen = pkt_build(q, &d);
		d.dst = vip, d.dport = 80;
		pkt_build(want_q, &d);
		len = icmp_error(in, v6, q, qlen, 200);
		icmp_error(ref, v6, want_q, qlen, 200);

		if (!v6) {
			/*
			 * The same bytes as a fragment (more fragments, and at an
			 * offset): an ICMP error is never one, so they are something
			 * else's and stay as they are.
			 */
			uint8_t frag[PKT_MAX];
			bool untouched = true;

			for (int off = 0; off < 2; off++) {
				memcpy(frag, in, len);
				pkt_put16(frag + 14 + 6, off ? 0x0010 : 0x2000);
				pkt_put16(frag + 14 + 10, 0);
				pkt_put16(frag + 14 + 10, pkt_fold(pkt_sum(frag + 14, 20, 0)));
				untouched &= run(rev_fd, frag, len, out, &olen) == SL_TC_PASS &&
					     olen == len && !memcmp(out, frag, len);
			}
			tap_ok(untouched, "v4 ICMP error bytes in an IP fragment are left alone");
		}
		ok = run(rev_fd, in, len, out, &olen) == SL_TC_PASS && olen == len;
		tap_ok(ok && !memcmp(out + icmp + 8, ref + icmp + 8, len - icmp - 8),
		       "%s ICMP error about a steered flow: the quoted packet gets the VIP and port "
		       "back, its checksums right", fam);
		tap_ok(ok && icmp_sum_ok(out, v6, len) && !memcmp(out, in, icmp),
		       "%s ICMP error: its own checksum verifies, the outer headers are untouched",
		       fam);

		/* the same error quoting a pod nobody steered to: untouched */
		inet_pton(v6 ? AF_INET6 : AF_INET, v6 ? "fd00:5c:7::7" : "198.18.7.7", a);
		memcpy(in + icmp + 8 + (v6 ? 24 : 16), a, v6 ? 16 : 4);
		ok = run(rev_fd, in, len, out, &olen) == SL_TC_PASS;
		tap_ok(ok && !memcmp(in, out, len), "%s ICMP error about another flow is untouched",
		       fam);
	}
}

/* The same forward half as XDP: same choice, same rewrite, XDP's verdicts. */
/*
 * One pod behind several VIPs (several Services, or ports, over the same
 * pods): a reply finds its flow through each VIP the pod serves and gets its
 * own flow's VIP back. A backend may serve SL_REVNAT_VIPS of them; past that
 * the new service is refused alone, and a removed service gives its place.
 */
static void test_shared_backend(void)
{
	const char *vips[] = { "198.19.0.21", "198.19.0.22" };
	struct spec_canary c;
	struct sl_service_key key;
	struct pkt_desc in, want;
	char to[INET6_ADDRSTRLEN], vip[32], name[32];
	int err, ok = 0, failed = 0;
	uint32_t id = 0;

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "shared-%d", i);
		make_canary(&c, name, vips[i], 80, IPPROTO_TCP, P1_4, NULL);
		steering_apply(&dp.maps, &c, 0, NULL);
		steer_syn(CLIENT4, vips[i], 4600 + i, 80, to, sizeof(to));
	}
	for (int i = 0; i < 2; i++) {
		in = (struct pkt_desc){ .src = P1_4, .dst = CLIENT4, .sport = 8080,
					.dport = 4600 + i, .proto = IPPROTO_TCP,
					.tcp_flags = PKT_TCP_ACK, .payload = 10 };
		want = in;
		want.src = vips[i];
		want.sport = 80;
		tap_ok(expect(rev_fd, &in, SL_TC_PASS, &want),
		       "a pod behind two VIPs: the reply of the flow to %s gets %s back", vips[i],
		       vips[i]);
	}

	for (int i = 1; i <= SL_REVNAT_VIPS; i++) {
		snprintf(vip, sizeof(vip), "198.19.2.%d", i);
		snprintf(name, sizeof(name), "many-%d", i);
		make_canary(&c, name, vip, 80, IPPROTO_TCP, "198.18.1.40", NULL);
		err = steering_apply(&dp.maps, &c, 0, NULL);
		err ? failed++ : ok++;
	}
	tap_ok(ok == SL_REVNAT_VIPS && failed == 0, "one pod behind %d VIPs: all steered (%d/%d)",
	       SL_REVNAT_VIPS, ok, SL_REVNAT_VIPS);
	make_canary(&c, "many-over", "198.19.2.100", 80, IPPROTO_TCP, "198.18.1.40", NULL);
	err = steering_apply(&dp.maps, &c, 0, NULL);
	steering_key(&c, &key);
	tap_ok(err == -E2BIG && bpf_map_lookup_elem(dp.maps.services, &key, &(struct sl_service){}),
	       "one VIP more for that pod is refused (%d), and not published", err);
	steer_syn(CLIENT4, "198.19.2.1", 4700, 80, to, sizeof(to));
	tap_ok(!strcmp(to, "198.18.1.40"), "...while the pod's other VIPs keep steering (%s)", to);
	make_canary(&c, "many-1", "198.19.2.1", 80, IPPROTO_TCP, "198.18.1.40", NULL);
	steering_key(&c, &key);
	steering_remove(&dp.maps, &key);
	/* every free id as a removed service that sampled would leave it */
	for (uint32_t i = 0; i < SL_MAX_SERVICES; i++)
		steering_set_sample_shift(&dp.maps, i, 3);
	make_canary(&c, "many-over", "198.19.2.100", 80, IPPROTO_TCP, "198.18.1.40", NULL);
	tap_ok(steering_apply(&dp.maps, &c, 0, &id) == 0,
	       "once one of those services is removed, the refused one fits");
	tap_ok(steering_sample_shift(&dp.maps, id) == 0,
	       "a new service times every request, not its id's last owner's 1 in 8 (id %u)", id);
	for (uint32_t i = 0; i < SL_MAX_SERVICES; i++)
		steering_set_sample_shift(&dp.maps, i, 0);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Is @o (@olen bytes) a TCP reset from @vip:@vport to @client:@cport with
 * sequence number @seq, flags @flags, MACs swapped (pkt_build sends
 * ..:01 -> ..:02) and every checksum right?
 */
static bool is_reset(const uint8_t *o, uint32_t olen, const char *vip, uint16_t vport,
		     const char *client, uint16_t cport, uint32_t seq, uint8_t flags)
{
	int fam = pkt_family(vip);
	size_t alen = fam == AF_INET ? 4 : 16, l3 = 14, l4 = l3 + (fam == AF_INET ? 20 : 40);
	uint8_t a[16], b[16];
	uint32_t sum;

	inet_pton(fam, vip, a);
	inet_pton(fam, client, b);
	if (olen != l4 + 20 || o[5] != 0x01 || o[11] != 0x02)
		return false;
	if (fam == AF_INET && (memcmp(o + l3 + 12, a, 4) || memcmp(o + l3 + 16, b, 4) ||
			       pkt_fold(pkt_sum(o + l3, 20, 0)) != 0 || o[l3 + 9] != IPPROTO_TCP ||
			       o[l3 + 2] != 0 || o[l3 + 3] != 40))
		return false;
	if (fam == AF_INET6 && (memcmp(o + l3 + 8, a, 16) || memcmp(o + l3 + 24, b, 16) ||
				o[l3 + 4] != 0 || o[l3 + 5] != 20 || o[l3 + 6] != IPPROTO_TCP))
		return false;
	if (o[l4] != vport >> 8 || o[l4 + 1] != (vport & 0xff) || o[l4 + 2] != cport >> 8 ||
	    o[l4 + 3] != (cport & 0xff) || get32(o + l4 + 4) != seq || o[l4 + 12] != 0x50 ||
	    o[l4 + 13] != flags)
		return false;
	sum = pkt_sum(a, alen, 0);
	sum = pkt_sum(b, alen, sum);
	sum += IPPROTO_TCP + 20;
	return pkt_fold(pkt_sum(o + l4, 20, sum)) == 0;
}

/*
 * A rollback's reset: the agent marks the canary's flows. The canary's
 * answer already in flight still gets the VIP back; the client's next
 * segment is answered with a reset from the VIP, and a new connection on
 * the tuple goes to primary.
 */
static void test_evict(void)
{
	const char *vip = "198.19.0.23";
	struct spec_canary c;
	struct sl_service_key key;
	struct pkt_desc in, want;
	char to[INET6_ADDRSTRLEN];
	uint8_t b[PKT_MAX], o[PKT_MAX];
	uint32_t olen = 0;
	size_t len;
	int n, verdict;

	make_canary(&c, "evict", vip, 80, IPPROTO_TCP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, SL_WEIGHT_MAX, NULL);
	steer_syn(CLIENT4, vip, 4800, 80, to, sizeof(to));
	steering_key(&c, &key);
	steering_set_weight(&dp.maps, &key, 0);
	n = steering_evict(&dp.maps, &key, SL_CANARY);
	tap_ok(!strcmp(to, C1_4) && n == 1, "reset: the canary's one flow is marked (%d, was on %s)",
	       n, to);
	in = (struct pkt_desc){ .src = C1_4, .dst = CLIENT4, .sport = 8080, .dport = 4800,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 20 };
	want = in;
	want.src = vip;
	want.sport = 80;
	tap_ok(expect(rev_fd, &in, SL_TC_PASS, &want),
	       "reset: the canary's answer in flight still goes back from the VIP");
	/*
	 * Before 6.3 the datapath cannot read the skb's checksum state and
	 * steers the segment anew instead (docs/reliability.md).
	 */
	if (!dp.skel->rodata->have_kern_ctx) {
		in = (struct pkt_desc){ .src = CLIENT4, .dst = vip, .sport = 4800, .dport = 80,
					.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK,
					.payload = 20 };
		want = in;
		want.dst = P1_4;
		want.dport = 8080;
		tap_ok(expect(fwd_fd, &in, SL_TC_PASS, &want),
		       "reset, kernel before 6.3: the client's next segment goes to primary");
		return;
	}
	/* its next segment comes back as a reset, whatever primary's sockets hold */
	in = (struct pkt_desc){ .src = CLIENT4, .dst = vip, .sport = 4800, .dport = 80,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH,
				.payload = 20, .ack = 0xa1b2c3d4 };
	len = pkt_build(b, &in);
	verdict = run(fwd_fd, b, len, o, &olen);
	tap_ok(verdict == TC_ACT_REDIRECT &&
		       is_reset(o, olen, vip, 80, CLIENT4, 4800, 0xa1b2c3d4, PKT_TCP_RST),
	       "reset: the client's next segment is answered with an RST from the VIP, seq = "
	       "its ACK, checksums right (verdict %d, %u bytes)", verdict, olen);
	/* without ACK (RFC 793): seq 0, ACK = its seq + length (SYN and FIN count one) */
	in.tcp_flags = PKT_TCP_FIN, in.payload = 0, in.seq = 1000;
	len = pkt_build(b, &in);
	verdict = run(fwd_fd, b, len, o, &olen);
	tap_ok(verdict == TC_ACT_REDIRECT &&
		       is_reset(o, olen, vip, 80, CLIENT4, 4800, 0, PKT_TCP_RST | PKT_TCP_ACK) &&
		       get32(o + 34 + 8) == 1001,
	       "reset: a segment without ACK gets RST|ACK, ack = seq + 1 for its FIN");
	/* a new connection from that port is steered anew, to primary */
	steer_syn(CLIENT4, vip, 4800, 80, to, sizeof(to));
	tap_ok(!strcmp(to, P1_4), "reset: a new SYN on the tuple goes to primary (%s)", to);
	in = (struct pkt_desc){ .src = C1_4, .dst = CLIENT4, .sport = 8080, .dport = 4800,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK };
	tap_ok(expect(rev_fd, &in, SL_TC_PASS, NULL),
	       "reset: once the flow moved, the canary's packets are no longer its");

	/* IPv6, and a client segment with payload */
	make_canary(&c, "evict6", "fd00:5c:ff::23", 80, IPPROTO_TCP, P1_6, C1_6);
	steering_apply(&dp.maps, &c, SL_WEIGHT_MAX, NULL);
	steer_syn(CLIENT6, "fd00:5c:ff::23", 4900, 80, to, sizeof(to));
	steering_key(&c, &key);
	steering_set_weight(&dp.maps, &key, 0);
	steering_evict(&dp.maps, &key, SL_CANARY);
	in = (struct pkt_desc){ .src = CLIENT6, .dst = "fd00:5c:ff::23", .sport = 4900, .dport = 80,
				.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 100,
				.ack = 77 };
	len = pkt_build(b, &in);
	verdict = run(fwd_fd, b, len, o, &olen);
	tap_ok(verdict == TC_ACT_REDIRECT &&
		       is_reset(o, olen, "fd00:5c:ff::23", 80, CLIENT6, 4900, 77, PKT_TCP_RST),
	       "reset, v6: an RST from the VIP, checksums right (verdict %d, %u bytes)", verdict,
	       olen);
	tap_ok(steering_evict(&dp.maps, &key, SL_CANARY) == 0,
	       "reset again: nothing left on the canary");
}

/*
 * @in through XDP passes rewritten as @want in every byte but the two of
 * the L4 checksum at @csum_at, which differ.
 */
/* bpf_prog_test_run_opts() hands XDP programs their frame from lo. */
#define TEST_RUN_IFINDEX 1

/* @in as the XDP tests' primary pod receives it. */
static struct pkt_desc dnat_of(struct pkt_desc in, const char *pod)
{
	in.dst = pod;
	in.dport = 8080;
	return in;
}

static bool xdp_only_csum_differs(const struct pkt_desc *in, const struct pkt_desc *want,
				  size_t csum_at)
{
	uint8_t ib[PKT_MAX], ob[PKT_MAX], wb[PKT_MAX];
	size_t ilen = pkt_build(ib, in), wlen = pkt_build(wb, want);
	uint32_t olen = 0;

	if (run(xdp_fd, ib, ilen, ob, &olen) != XDP_PASS || olen != wlen)
		return false;
	return !memcmp(ob, wb, csum_at) && memcmp(ob + csum_at, wb + csum_at, 2) &&
	       !memcmp(ob + csum_at + 2, wb + csum_at + 2, wlen - csum_at - 2);
}

static void test_xdp(void)
{
	for (int v6 = 0; v6 < 2; v6++) {
		const char *fam = v6 ? "v6" : "v4";
		const char *vip = v6 ? "fd00:5c:ff::12" : "198.19.0.12";
		const char *client = v6 ? CLIENT6 : CLIENT4, *pod = v6 ? P1_6 : P1_4;
		struct spec_canary c;
		struct pkt_desc in, want;

		make_canary(&c, v6 ? "xdp6" : "xdp4", vip, 80, IPPROTO_TCP, pod, v6 ? C1_6 : C1_4);
		steering_apply(&dp.maps, &c, 0, NULL);
		in = (struct pkt_desc){ .src = client, .dst = vip, .sport = 6100, .dport = 80,
					.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
		want = dnat_of(in, pod);
		tap_ok(expect(xdp_fd, &in, XDP_PASS, &want),
		       "%s XDP: a SYN to the VIP is DNATed to the primary, checksums right", fam);
		in.tcp_flags = PKT_TCP_ACK, in.payload = 300;
		want = dnat_of(in, pod);
		tap_ok(expect(xdp_fd, &in, XDP_PASS, &want), "%s XDP: the established flow follows",
		       fam);
		in = (struct pkt_desc){ .src = pod, .dst = client, .sport = 8080, .dport = 6100,
					.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 9 };
		want = in;
		want.src = vip, want.sport = 80;
		tap_ok(expect(rev_fd, &in, SL_TC_PASS, &want),
		       "%s XDP: the reply, at TC egress, gets the VIP back (one conntrack)", fam);
		in = (struct pkt_desc){ .src = client, .dst = v6 ? "fd00:5c:9::9" : "198.18.9.9",
					.sport = 1, .dport = 80, .proto = IPPROTO_UDP, .payload = 20 };
		tap_ok(expect(xdp_fd, &in, XDP_PASS, NULL), "%s XDP: other traffic passes untouched",
		       fam);

		/*
		 * A veth's frames are its peer's skbs, CHECKSUM_PARTIAL from a
		 * local sender: with the agent's switch on, the field is read
		 * as what it is (bpf/lib/nat.h).
		 */
		dp_xdp_guess_csum(&dp, TEST_RUN_IFINDEX, true);
		in = (struct pkt_desc){ .src = client, .dst = vip, .sport = 6101, .dport = 80,
					.proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN,
					.partial_csum = true };
		want = dnat_of(in, pod);
		tap_ok(expect(xdp_fd, &in, XDP_PASS, &want),
		       "%s XDP, partial checksums possible: a partial SYN keeps a partial field, of the new pseudo-header",
		       fam);
		in.tcp_flags = PKT_TCP_ACK, in.payload = 300;
		want = dnat_of(in, pod);
		tap_ok(expect(xdp_fd, &in, XDP_PASS, &want),
		       "%s XDP, partial checksums possible: so does a partial request with payload", fam);
		in.partial_csum = false, in.payload = 301;
		want = dnat_of(in, pod);
		tap_ok(expect(xdp_fd, &in, XDP_PASS, &want),
		       "%s XDP, partial checksums possible: a full checksum is still updated in full",
		       fam);
		dp_xdp_guess_csum(&dp, TEST_RUN_IFINDEX, false);
		in.partial_csum = true, in.payload = 300;
		want = dnat_of(in, pod);
		tap_ok(xdp_only_csum_differs(&in, &want, v6 ? 14 + 40 + 16 : 14 + 20 + 16),
		       "%s XDP, switch off (a NIC's frames): a partial field is taken for full", fam);
		/* the switch is per interface: another's, low or high ifindex, is not this one's */
		dp_xdp_guess_csum(&dp, TEST_RUN_IFINDEX + 1, true);
		dp_xdp_guess_csum(&dp, SL_XDP_GUESS_IFINDEXES + 7, true);
		tap_ok(xdp_only_csum_differs(&in, &want, v6 ? 14 + 40 + 16 : 14 + 20 + 16),
		       "%s XDP, switch on for other interfaces only: this one's frames are still full",
		       fam);
		dp_xdp_guess_csum(&dp, TEST_RUN_IFINDEX + 1, false);
	}
}

int main(void)
{
	if (!fixture_setup("BPF steering fixtures"))
		return tap_done();
	test_basic_family("v4", VIP4, CLIENT4, P1_4, C1_4, IPPROTO_TCP);
	test_basic_family("v4", VIP4, CLIENT4, P1_4, C1_4, IPPROTO_UDP);
	test_basic_family("v6", VIP6, CLIENT6, P1_6, C1_6, IPPROTO_TCP);
	test_basic_family("v6", VIP6, CLIENT6, P1_6, C1_6, IPPROTO_UDP);
	test_untouched();
	test_headers();
	test_udp_zero_csum();
	test_weights();
	test_client_affinity();
	test_cohorts();
	test_teardown_and_udp_timeout();
	test_udp_timeout();
	test_udp_ages_both_ways();
	test_backend_gone();
	test_backend_added();
	test_no_backend();
	test_icmp_errors();
	test_shared_backend();
	test_evict();
	test_xdp();
	fixture_teardown();
	return tap_done();
}
