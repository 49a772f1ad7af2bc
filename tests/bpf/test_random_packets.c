// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A bounded property test of the datapath on hostile input: tens of
 * thousands of mutated and random packets through both programs. Whatever
 * comes in, the programs must (1) never drop, (2) never change a packet
 * that is not to a steered VIP (forward) or from a steered flow's backend
 * (reverse), and (3) never break a checksum: the one's-complement residual
 * of the IPv4 header and of the L4 segment (pseudo-header included) must be
 * the same after a rewrite as before, so a right checksum stays right and a
 * wrong one stays exactly as wrong. A fixed seed keeps runs repeatable;
 * SLUICE_SEED=n picks another.
 */
#include "fixture.h"

#define ROUNDS 30000

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

struct view {
	bool ip, ours;
	int family;
	size_t l3, l4, l4_len;
	uint8_t proto;
};

/* Where things are, by the datapath's own rules (parse.h), for the checks. */
static struct view look(const uint8_t *b, size_t len)
{
	struct view v = { 0 };
	uint16_t et;

	if (len < 14)
		return v;
	et = b[12] << 8 | b[13];
	v.l3 = 14;
	if (et == 0x0800 && len >= 34 && (b[14] >> 4) == 4) {
		size_t ihl = (b[14] & 15) * 4, tot = b[16] << 8 | b[17];

		if (ihl < 20 || tot < ihl || 14 + tot > len || (b[20] & 0x3f) || b[21])
			return v;
		v.family = AF_INET;
		v.proto = b[23];
		v.l4 = 14 + ihl;
		v.l4_len = tot - ihl;
	} else if (et == 0x86dd && len >= 54 && (b[14] >> 4) == 6) {
		size_t plen = b[18] << 8 | b[19], off = 54;
		uint8_t nh = b[20];

		if (54 + plen > len)
			return v;
		for (int i = 0; i < 4 && (nh == 0 || nh == 60); i++) {
			if (off + 2 > len)
				return v;
			nh = b[off];
			off += (b[off + 1] + 1) * 8;
		}
		if (off > 14 + 40 + plen)
			return v;
		v.family = AF_INET6;
		v.proto = nh;
		v.l4 = off;
		v.l4_len = 14 + 40 + plen - off;
	} else {
		return v;
	}
	if ((v.proto != IPPROTO_TCP && v.proto != IPPROTO_UDP) || v.l4 + 8 > len ||
	    (v.proto == IPPROTO_TCP && v.l4 + 20 > len))
		return v;
	v.ip = true;
	return v;
}

/* Residual of a one's-complement sum: 0xffff for a correct checksum. */
static uint16_t residual_l4(const uint8_t *b, const struct view *v)
{
	size_t alen = v->family == AF_INET ? 4 : 16;
	size_t src = v->family == AF_INET ? 26 : 22, dst = src + alen;
	uint32_t sum = pkt_sum(b + src, alen, 0);

	sum = pkt_sum(b + dst, alen, sum);
	sum += v->proto + (uint32_t)v->l4_len;
	sum = pkt_sum(b + v->l4, v->l4_len, sum);
	return (uint16_t)~pkt_fold(sum);
}

static uint16_t residual_ip4(const uint8_t *b)
{
	return (uint16_t)~pkt_fold(pkt_sum(b + 14, (b[14] & 15) * 4, 0));
}

static bool is_vip(const uint8_t *b, const struct view *v)
{
	const uint8_t vip4[4] = { 198, 19, 0, 10 };
	uint8_t vip6[16];
	uint16_t dport = b[v->l4 + 2] << 8 | b[v->l4 + 3];

	inet_pton(AF_INET6, VIP6, vip6);
	if (dport != 80)
		return false;
	return v->family == AF_INET ? !memcmp(b + 30, vip4, 4) : !memcmp(b + 38, vip6, 16);
}

/* A random packet built well, then damaged. */
static size_t make(uint8_t *b)
{
	static const char *const src4[] = { CLIENT4, P1_4, C1_4, "198.18.7.7" };
	static const char *const dst4[] = { VIP4, "198.18.9.9", CLIENT4 };
	static const char *const src6[] = { CLIENT6, P1_6, C1_6 };
	static const char *const dst6[] = { VIP6, "fd00:5c:9::9", CLIENT6 };
	struct pkt_desc d = { 0 };
	bool v6 = rnd() & 1;
	size_t len;

	d.src = v6 ? src6[rnd() % 3] : src4[rnd() % 4];
	d.dst = v6 ? dst6[rnd() % 3] : dst4[rnd() % 3];
	d.sport = rnd() % 3 ? 8080 : (uint16_t)rnd();
	d.dport = rnd() % 2 ? 80 : (uint16_t)rnd();
	d.proto = rnd() % 4 ? IPPROTO_TCP : IPPROTO_UDP;
	d.tcp_flags = rnd() & 0x3f;
	d.payload = rnd() % 120;
	d.seq = rnd();
	if (!v6 && rnd() % 5 == 0)
		d.ip_opts = 4 * (rnd() % 10);
	if (v6 && rnd() % 5 == 0)
		d.ext = (enum pkt_v6_ext)(rnd() % 5);
	if (!v6 && rnd() % 20 == 0)
		d.v4_more_frags = true;
	if (d.proto == IPPROTO_UDP && !v6 && rnd() % 4 == 0)
		d.udp_no_csum = true;
	if (rnd() % 10 == 0 && d.payload >= 12)
		d.data = rnd() & 1 ? "GET / HTTP/1.1\r\n\r\n____________________"
				   : "HTTP/1.1 503 X\r\n\r\n____________________";
	len = pkt_build(b, &d);
	/* damage: a few bytes anywhere, sometimes a truncation, sometimes pure noise */
	switch (rnd() % 6) {
	case 0:
		break; /* intact */
	case 1:
	case 2:
		for (int k = rnd() % 4 + 1; k; k--)
			b[rnd() % len] ^= (uint8_t)(1 + rnd() % 255);
		break;
	case 3:
		len = 14 + rnd() % (len - 13);
		break;
	case 4:
		for (size_t i = 14; i < len; i++)
			b[i] = (uint8_t)rnd();
		break;
	case 5:
		b[14 + rnd() % 40] = (uint8_t)rnd(); /* somewhere in the IP header */
		break;
	}
	return len;
}

int main(void)
{
	struct spec_canary c;
	uint8_t in[PKT_MAX], out[PKT_MAX];
	int runs = 0, changed = 0, refused = 0, dropped = 0, foreign = 0, broken = 0;
	const char *seed = getenv("SLUICE_SEED");

	uint64_t seed0 = seed ? strtoull(seed, NULL, 10) | 1 : 0x5eed5eedULL;

	rng = seed0;
	if (!fixture_setup("random packets"))
		return tap_done();
	make_canary(&c, "fuzz4", VIP4, 80, IPPROTO_TCP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 5000, NULL);
	make_canary(&c, "fuzz4u", VIP4, 80, IPPROTO_UDP, P1_4, C1_4);
	steering_apply(&dp.maps, &c, 5000, NULL);
	make_canary(&c, "fuzz6", VIP6, 80, IPPROTO_TCP, P1_6, C1_6);
	steering_apply(&dp.maps, &c, 5000, NULL);

	for (int i = 0; i < ROUNDS; i++) {
		size_t len = make(in);
		int prog = i & 1 ? rev_fd : fwd_fd;
		uint32_t olen = 0;
		int verdict = run(prog, in, len, out, &olen);
		struct view v;

		if (verdict == RUN_ERR(-EINVAL)) {
			refused++; /* shorter than the test runner accepts */
			continue;
		}
		runs++;
		if (verdict != SL_TC_PASS) {
			dropped++;
			continue;
		}
		if (olen == len && !memcmp(in, out, len))
			continue;
		changed++;
		v = look(in, len);
		if (!v.ip || olen != len || (prog == fwd_fd && !is_vip(in, &v))) {
			foreign++;
			if (foreign <= 3)
				tap_diag("round %d: a packet that is not ours was changed", i);
			continue;
		}
		if ((v.family == AF_INET && residual_ip4(in) != residual_ip4(out)) ||
		    (v.proto == IPPROTO_UDP && v.family == AF_INET && in[v.l4 + 6] == 0 &&
		     in[v.l4 + 7] == 0 ? (out[v.l4 + 6] | out[v.l4 + 7]) != 0
				       : residual_l4(in, &v) != residual_l4(out, &v))) {
			broken++;
			if (broken <= 3)
				tap_diag("round %d (%s, v%d, proto %d, len %zu, l4 %zu+%zu): "
					 "checksum residual changed: ip %04x->%04x l4 %04x->%04x "
					 "field %02x%02x->%02x%02x",
					 i, prog == fwd_fd ? "forward" : "reverse",
					 v.family == AF_INET ? 4 : 6, v.proto, len, v.l4, v.l4_len,
					 v.family == AF_INET ? residual_ip4(in) : 0,
					 v.family == AF_INET ? residual_ip4(out) : 0,
					 residual_l4(in, &v), residual_l4(out, &v),
					 in[v.l4 + (v.proto == IPPROTO_TCP ? 16 : 6)],
					 in[v.l4 + (v.proto == IPPROTO_TCP ? 17 : 7)],
					 out[v.l4 + (v.proto == IPPROTO_TCP ? 16 : 6)],
					 out[v.l4 + (v.proto == IPPROTO_TCP ? 17 : 7)]);
		}
	}
	tap_diag("seed %llu (SLUICE_SEED): %d runs (%d too short for the test runner), %d rewritten",
		 (unsigned long long)seed0, runs, refused, changed);
	tap_ok(runs > ROUNDS / 2 && changed > 100, "%d mutated and random packets ran, %d rewritten",
	       runs, changed);
	tap_ok(dropped == 0, "none dropped (%d)", dropped);
	tap_ok(foreign == 0, "no packet that is not a steered flow's was changed (%d)", foreign);
	tap_ok(broken == 0, "no rewrite changed a checksum's residual (%d)", broken);
	fixture_teardown();
	return tap_done();
}
