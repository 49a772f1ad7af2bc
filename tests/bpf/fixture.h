/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the BPF fixture suites share: the loaded datapath under a per-run
 * pin root, a run of one crafted packet through a program, services built
 * in code (no spec files), and comparisons of whole packets.
 */
#ifndef SLUICE_TESTS_FIXTURE_H
#define SLUICE_TESTS_FIXTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <linux/bpf.h>

#include "datapath.h"
#include "log.h"
#include "pkt.h"
#include "spec.h"
#include "steer.skel.h"
#include "steering.h"
#include "tap.h"

static struct datapath dp;
static int fwd_fd, rev_fd, xdp_fd;

#define VIP4 "198.19.0.10"
#define VIP6 "fd00:5c:ff::10"
#define CLIENT4 "198.18.0.2"
#define CLIENT6 "fd00:5c::2"
#define P1_4 "198.18.1.2"
#define C1_4 "198.18.3.2"
#define P1_6 "fd00:5c:1::2"
#define C1_6 "fd00:5c:3::2"

/*
 * The test runner's own failures, as run() returns them: far from every
 * verdict (SL_TC_PASS is -1, as is -EPERM), so a failed run never passes
 * for a verdict.
 */
#define RUN_ERR(e) (-1000 + (e))

static inline int run(int prog_fd, const uint8_t *in, size_t len, uint8_t *out, uint32_t *out_len)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = in, .data_size_in = len,
		    .data_out = out, .data_size_out = PKT_MAX, .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &topts);

	if (err)
		return RUN_ERR(err);
	*out_len = topts.data_size_out;
	return (int)topts.retval;
}

static inline void set_addr(struct spec_addr *a, const char *s)
{
	a->family = pkt_family(s);
	memset(&a->addr, 0, sizeof(a->addr));
	inet_pton(a->family, s, &a->addr);
}

static inline void add_ep(struct spec_version_set *set, const char *addr, uint16_t port)
{
	struct spec_endpoint *ep = &set->endpoints[set->n_endpoints++];

	set_addr(&ep->addr, addr);
	ep->port = port;
}

static inline void add_cohort(struct spec_version_set *set, const char *net, int plen)
{
	struct spec_cidr *c = &set->cohorts[set->n_cohorts++];

	set_addr(&c->net, net);
	c->prefixlen = plen;
}

/* A one-primary, one-canary service on @vip:@port, pods listening on 8080. */
static inline void make_canary(struct spec_canary *c, const char *name, const char *vip, uint16_t port,
			uint8_t proto, const char *primary, const char *canary)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->namespace, sizeof(c->namespace), "test");
	c->port = port;
	c->target_port = 8080;
	c->proto = proto;
	set_addr(&c->vip, vip);
	snprintf(c->primary.version, sizeof(c->primary.version), "v1");
	snprintf(c->canary.version, sizeof(c->canary.version), "v2");
	add_ep(&c->primary, primary, 8080);
	if (canary)
		add_ep(&c->canary, canary, 8080);
}

static inline struct sl_backend_stats sum_stats(uint32_t id)
{
	struct sl_backend_stats total = { 0 };

	dp_backend_stats(&dp.maps, id, &total);
	return total;
}

/* The backend id of @addr in service @svc_id (each service has its own). */
static inline uint32_t backend_id_of(uint32_t svc_id, const char *addr)
{
	struct spec_addr a;

	set_addr(&a, addr);
	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		struct sl_backend b;

		if (!bpf_map_lookup_elem(dp.maps.backends, &i, &b) && b.family == a.family &&
		    b.svc_id == svc_id &&
		    !memcmp(&b.addr, &a.addr, sizeof(b.addr)))
			return i;
	}
	return UINT32_MAX;
}

/* Send @in through @prog; true when verdict and every byte are as @want. */
static inline bool expect(int prog, const struct pkt_desc *in, int verdict, const struct pkt_desc *want)
{
	uint8_t ib[PKT_MAX], ob[PKT_MAX], wb[PKT_MAX];
	size_t ilen = pkt_build(ib, in), wlen = pkt_build(wb, want ? want : in);
	uint32_t olen = 0;
	int ret = run(prog, ib, ilen, ob, &olen);

	if (ret != verdict) {
		tap_diag("verdict %d, want %d", ret, verdict);
		return false;
	}
	if (olen != wlen || memcmp(ob, wb, wlen)) {
		for (size_t i = 0; i < wlen && i < olen; i++)
			if (ob[i] != wb[i]) {
				tap_diag("byte %zu: got %02x want %02x (len %u/%zu)", i, ob[i], wb[i],
					 olen, wlen);
				break;
			}
		if (olen != wlen)
			tap_diag("length %u, want %zu", olen, wlen);
		return false;
	}
	return true;
}

/*
 * A raw buffer (for truncated packets): the verdict and untouched bytes.
 * Return: 1 passed, 0 failed, -1 when the kernel's test runner refuses to
 * build an skb that short (it wants a whole Ethernet header, and for IPv6 a
 * whole IPv6 header), which the caller counts apart.
 */
static inline int expect_raw_untouched(int prog, const uint8_t *in, size_t len)
{
	uint8_t ob[PKT_MAX];
	uint32_t olen = 0;
	int ret = run(prog, in, len, ob, &olen);

	if (ret == RUN_ERR(-EINVAL))
		return -1;
	if (ret != SL_TC_PASS)
		tap_diag("verdict %d on a %zu-byte packet", ret, len);
	return ret == SL_TC_PASS && olen == len && !memcmp(in, ob, len);
}

/* Every prefix of @raw through the forward program: all must pass untouched. */
static inline void expect_truncations(const uint8_t *raw, size_t len, const char *what)
{
	int passed = 0, refused = 0, failed = 0;

	for (size_t cut = 1; cut < len; cut++) {
		int r = expect_raw_untouched(fwd_fd, raw, cut);

		r < 0 ? refused++ : r ? passed++ : failed++;
	}
	tap_ok(failed == 0 && passed > 0,
	       "every truncation of %s passes untouched (%d cuts run, %d too short for the "
	       "kernel's test runner)", what, passed, refused);
}

/* Which backend a new flow went to: the daddr of the rewritten SYN. */
static inline int steer_syn(const char *client, const char *vip, uint16_t sport, uint16_t dport,
		     char *to, size_t to_len)
{
	struct pkt_desc d = { .src = client, .dst = vip, .sport = sport, .dport = dport,
			      .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN };
	uint8_t ib[PKT_MAX], ob[PKT_MAX];
	size_t len = pkt_build(ib, &d);
	uint32_t olen;
	int fam = pkt_family(client);

	if (run(fwd_fd, ib, len, ob, &olen) != SL_TC_PASS)
		return -1;
	inet_ntop(fam, ob + 14 + (fam == AF_INET ? 16 : 24), to, to_len);
	return 0;
}

/*
 * fixture_setup() - load the datapath under a per-run pin root (with a
 * 100 ms UDP timeout, so idle expiry can be tested). Return: false when the
 * suite cannot run; the reason has been printed as TAP.
 */
static inline bool fixture_setup(const char *suite)
{
	static char root[64];
	struct dp_opts opts = { 0 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		tap_skip(suite, "need root to load BPF programs");
		return false;
	}
	log_set_level(LOG_LEVEL_WARN);
	log_route_libbpf();
	snprintf(root, sizeof(root), "/sys/fs/bpf/sluice-test-bpf-%d", getpid());
	opts.pin_root = root;
	opts.ct_flows = 65536;
	opts.udp_timeout_ns = 100ULL * 1000 * 1000;
	if (!tap_ok(dp_load(&dp, &opts) == 0, "steering programs load and pin under %s", root))
		return false;
	fwd_fd = bpf_program__fd(dp.skel->progs.sl_tc_forward);
	rev_fd = bpf_program__fd(dp.skel->progs.sl_tc_reverse);
	xdp_fd = bpf_program__fd(dp.skel->progs.sl_xdp_forward);
	return true;
}

static inline void fixture_teardown(void)
{
	dp_unpin(&dp);
	dp_destroy(&dp);
}

#endif /* SLUICE_TESTS_FIXTURE_H */
