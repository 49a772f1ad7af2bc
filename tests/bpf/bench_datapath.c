// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `make bench`: ns per packet of the steering programs through
 * bpf_prog_test_run_opts, beside a do-nothing TC program measured in the
 * same rounds, so each path's cost is a same-run difference. Rounds
 * interleave every path and the table gives medians, because the machines
 * are shared and noisy.
 *
 * The test runner reuses one skb for all repeats, so a DNAT would turn the
 * second repeat into a non-VIP packet. The bench therefore steers two VIPs
 * at each other (A -> B and B -> A): every repeat is a packet to a VIP and
 * takes the full path, rewrite included. New flows use SYN|RST, which
 * closes the entry it creates, so each repeat is steered anew on a tuple
 * whose ended flow's entry is still there: the datapath renews that entry
 * in place, as it does for a client reusing its port. A flow on a tuple
 * conntrack has never seen pays one LRU insert instead, the "ref: 1
 * conntrack update" row; the table adds the two for that case.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "passthru.skel.h"
#include "pkt.h"
#include "spec.h"
#include "steer.skel.h"
#include "steering.h"

#define REPEAT 1000000
#define ROUNDS 9
#define CT_FLOWS 2000000 /* capacity: one entry per flow */
#define CT_FILL 1000000 /* entries put in conntrack before measuring */

#define VIP_A "198.19.0.10"
#define VIP_B "198.19.0.11"
#define CLIENT "198.18.0.2"

enum path {
	P_PASS,
	P_NONVIP,
	P_ESTABLISHED,
	P_NEW,
	P_REVERSE,
	P_EST_NOACCT,
	P_REV_NOACCT,
	P_CT_LOOKUP,
	P_CT_UPDATE,
	P_XDP_PASS,
	P_XDP_EST,
	P_XDP_EST_GUESS,
	P_XDP_NEW,
	P_N
};
static const char *const path_names[P_N] = {
	[P_PASS] = "pass-through (baseline)",
	[P_NONVIP] = "non-VIP packet",
	[P_ESTABLISHED] = "established-flow forward",
	[P_NEW] = "new flow (tuple reused)",
	[P_REVERSE] = "reverse (reply)",
	[P_EST_NOACCT] = "established, no accounting",
	[P_REV_NOACCT] = "reverse, no accounting",
	[P_CT_LOOKUP] = "ref: 1 conntrack lookup",
	[P_CT_UPDATE] = "ref: 1 conntrack update",
	[P_XDP_PASS] = "XDP pass-through",
	[P_XDP_EST] = "XDP established forward",
	[P_XDP_EST_GUESS] = "XDP est., partial checksum",
	[P_XDP_NEW] = "XDP new flow (reused)",
};
static const char *const targets[P_N] = {
	[P_ESTABLISHED] = "<= 40 ns over",
	[P_NEW] = "<= 150 ns over",
};

struct input {
	int prog_fd;
	bool partial_guess; /* the agent's switch for veth and generic XDP (bpf/lib/nat.h) */
	uint8_t pkt[PKT_MAX];
	size_t len;
};

static double run_ns(const struct input *in)
{
	uint8_t out[PKT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = in->pkt, .data_size_in = in->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = REPEAT);

	if (bpf_prog_test_run_opts(in->prog_fd, &t)) {
		fprintf(stderr, "bench: test run failed: %s\n", strerror(errno));
		exit(1);
	}
	return t.duration; /* the kernel's mean ns per repeat */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void vip_to_vip(struct spec_canary *c, const char *name, const char *vip, uint16_t port,
		       const char *backend, uint16_t backend_port)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->namespace, sizeof(c->namespace), "bench");
	c->port = port;
	c->proto = IPPROTO_TCP;
	c->vip.family = AF_INET;
	inet_pton(AF_INET, vip, &c->vip.addr);
	c->primary.n_endpoints = 1;
	c->primary.endpoints[0].addr.family = AF_INET;
	inet_pton(AF_INET, backend, &c->primary.endpoints[0].addr.addr);
	c->primary.endpoints[0].port = backend_port;
}

/* Fill conntrack with @n forward entries of made-up flows, in batches. */
static int fill_ct(int fd, int n)
{
	enum { BATCH = 4096 };
	static struct sl_ct_key keys[BATCH];
	static struct sl_ct_entry vals[BATCH];

	for (int done = 0; done < n;) {
		uint32_t count = n - done < BATCH ? n - done : BATCH;
		LIBBPF_OPTS(bpf_map_batch_opts, bo);

		for (uint32_t i = 0; i < count; i++) {
			uint32_t id = done + i;

			memset(&keys[i], 0, sizeof(keys[i]));
			keys[i].saddr.v4 = htonl(0xc6120000 | (id >> 16)); /* 198.18.x.y */
			keys[i].daddr.v4 = htonl(0xc6130000 | (id & 0xff)); /* 198.19.0.z */
			keys[i].sport = htons(id & 0xffff);
			keys[i].dport = htons(80);
			keys[i].proto = IPPROTO_TCP;
			keys[i].family = AF_INET;
			memset(&vals[i], 0, sizeof(vals[i]));
			vals[i].nat_addr.v4 = htonl(0xc6120102);
			vals[i].nat_port = htons(8080);
		}
		if (bpf_map_update_batch(fd, keys, vals, &count, &bo))
			return -errno;
		done += count;
	}
	return 0;
}

static long fdinfo_memlock(int fd)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int ct_count(int fd)
{
	struct sl_ct_key k, next;
	int n = 0, err = bpf_map_get_next_key(fd, NULL, &next);

	while (!err) {
		k = next;
		n++;
		err = bpf_map_get_next_key(fd, &k, &next);
	}
	return n;
}

struct instance {
	struct datapath dp;
	int fwd_fd, rev_fd, xdp_fd;
	uint8_t est[PKT_MAX], newf[PKT_MAX], rev[PKT_MAX];
	size_t est_len, newf_len, rev_len;
};

/*
 * Load a datapath under its own pin root, steer the two VIPs at each other,
 * fill conntrack, open the measured flow, and build the measured packets.
 */
static int instance_setup(struct instance *x, const char *tag, bool accounting)
{
	struct dp_opts opts = { .ct_flows = CT_FLOWS, .no_accounting = !accounting };
	struct spec_canary c;
	struct pkt_desc d;
	uint8_t scratch[PKT_MAX];
	static char roots[2][64];
	char *root = roots[accounting];
	int err;

	snprintf(root, sizeof(roots[0]), "/sys/fs/bpf/sluice-bench-%s-%d", tag, getpid());
	opts.pin_root = root;
	if (dp_load(&x->dp, &opts))
		return -1;
	x->fwd_fd = bpf_program__fd(x->dp.skel->progs.sl_tc_forward);
	x->rev_fd = bpf_program__fd(x->dp.skel->progs.sl_tc_reverse);
	x->xdp_fd = bpf_program__fd(x->dp.skel->progs.sl_xdp_forward);
	vip_to_vip(&c, "a", VIP_A, 80, VIP_B, 8080);
	steering_apply(&x->dp.maps, &c, 0, NULL);
	vip_to_vip(&c, "b", VIP_B, 8080, VIP_A, 80);
	steering_apply(&x->dp.maps, &c, 0, NULL);
	err = fill_ct(x->dp.maps.ct, CT_FILL);
	if (err) {
		fprintf(stderr, "bench: filling conntrack: %s\n", strerror(-err));
		return err;
	}

	/* Established: open both flows (client -> A and client -> B) once. */
	d = (struct pkt_desc){ .src = CLIENT, .dst = VIP_A, .sport = 40000, .dport = 80,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_SYN, .payload = 64 };
	x->est_len = pkt_build(x->est, &d);
	{
		LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = x->est, .data_size_in = x->est_len,
			    .data_out = scratch, .data_size_out = sizeof(scratch), .repeat = 2);
		bpf_prog_test_run_opts(x->fwd_fd, &t);
	}
	d.tcp_flags = PKT_TCP_ACK;
	x->est_len = pkt_build(x->est, &d);
	d.sport = 40001, d.tcp_flags = PKT_TCP_SYN | PKT_TCP_RST;
	x->newf_len = pkt_build(x->newf, &d);
	/* Reverse: the reply of the established flow, ping-ponging A <-> B too. */
	d = (struct pkt_desc){ .src = VIP_B, .dst = CLIENT, .sport = 8080, .dport = 40000,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 64 };
	x->rev_len = pkt_build(x->rev, &d);
	return 0;
}

static void input_of(struct input *in, int fd, const uint8_t *pkt, size_t len)
{
	in->prog_fd = fd;
	memcpy(in->pkt, pkt, len);
	in->len = len;
}

int main(void)
{
	static struct instance on, off;
	struct passthru_bpf *pass = NULL;
	static struct input in[P_N];
	static double ns[P_N][ROUNDS], over[P_N][ROUNDS], acct_fwd[ROUNDS], acct_rev[ROUNDS];
	struct pkt_desc d;
	int err = 1, entries;
	long memlock;

	if (geteuid() != 0) {
		fprintf(stderr, "make bench needs root to load BPF programs\n");
		return 1;
	}
	log_set_level(LOG_LEVEL_WARN);
	log_route_libbpf();
	pass = passthru_bpf__open_and_load();
	if (!pass) {
		fprintf(stderr, "bench: loading the reference programs failed\n");
		return 1;
	}
	if (instance_setup(&on, "acct", true) || instance_setup(&off, "noacct", false))
		goto out;

	d = (struct pkt_desc){ .src = CLIENT, .dst = "198.18.9.9", .sport = 40000, .dport = 80,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 64 };
	in[P_PASS].prog_fd = bpf_program__fd(pass->progs.sl_tc_passthru);
	in[P_PASS].len = pkt_build(in[P_PASS].pkt, &d);
	input_of(&in[P_NONVIP], on.fwd_fd, in[P_PASS].pkt, in[P_PASS].len);
	input_of(&in[P_ESTABLISHED], on.fwd_fd, on.est, on.est_len);
	input_of(&in[P_NEW], on.fwd_fd, on.newf, on.newf_len);
	input_of(&in[P_REVERSE], on.rev_fd, on.rev, on.rev_len);
	input_of(&in[P_EST_NOACCT], off.fwd_fd, off.est, off.est_len);
	input_of(&in[P_REV_NOACCT], off.rev_fd, off.rev, off.rev_len);

	/* The floor: one conntrack-shaped lookup (of a present key) and one update. */
	input_of(&in[P_CT_UPDATE], bpf_program__fd(pass->progs.sl_tc_ct_update), in[P_PASS].pkt,
		 in[P_PASS].len);
	run_ns(&in[P_CT_UPDATE]); /* creates the key the lookup finds */
	input_of(&in[P_CT_LOOKUP], bpf_program__fd(pass->progs.sl_tc_ct_lookup), in[P_PASS].pkt,
		 in[P_PASS].len);

	/* XDP: the same packets through the XDP forward half, against an XDP baseline */
	input_of(&in[P_XDP_PASS], bpf_program__fd(pass->progs.sl_xdp_passthru), in[P_PASS].pkt,
		 in[P_PASS].len);
	input_of(&in[P_XDP_EST], on.xdp_fd, on.est, on.est_len);
	input_of(&in[P_XDP_NEW], on.xdp_fd, on.newf, on.newf_len);
	/* a veth's frame of the same flow: partial field, read as such */
	d = (struct pkt_desc){ .src = CLIENT, .dst = VIP_A, .sport = 40000, .dport = 80,
			       .proto = IPPROTO_TCP, .tcp_flags = PKT_TCP_ACK, .payload = 64,
			       .partial_csum = true };
	in[P_XDP_EST_GUESS].prog_fd = on.xdp_fd;
	in[P_XDP_EST_GUESS].len = pkt_build(in[P_XDP_EST_GUESS].pkt, &d);
	in[P_XDP_EST_GUESS].partial_guess = true;

	entries = ct_count(on.dp.maps.ct);
	memlock = fdinfo_memlock(on.dp.maps.ct);

	for (int r = 0; r < ROUNDS; r++) {
		for (int p = 0; p < P_N; p++) {
			/* bpf_prog_test_run_opts() hands XDP programs their frame from lo (1) */
			dp_xdp_guess_csum(&on.dp, 1, in[p].partial_guess);
			ns[p][r] = run_ns(&in[p]);
		}
		for (int p = 0; p < P_N; p++)
			over[p][r] = ns[p][r] - ns[p >= P_XDP_PASS ? P_XDP_PASS : P_PASS][r];
		acct_fwd[r] = ns[P_ESTABLISHED][r] - ns[P_EST_NOACCT][r];
		acct_rev[r] = ns[P_REVERSE][r] - ns[P_REV_NOACCT][r];
	}

	printf("sluice datapath: bpf_prog_test_run_opts, %d repeats x %d interleaved rounds, "
	       "medians\n", REPEAT, ROUNDS);
	printf("conntrack: %d entries present (capacity %u flows, one entry each)\n\n", entries,
	       CT_FLOWS);
	printf("%-28s %10s %18s   %s\n", "path", "ns/packet", "over pass-through", "target");
	for (int p = 0; p < P_N; p++) {
		double m = median(ns[p], ROUNDS), o = median(over[p], ROUNDS);

		if (p == P_PASS || p == P_XDP_PASS)
			printf("%-28s %10.1f %18s\n", path_names[p], m, "-");
		else
			printf("%-28s %10.1f %+18.1f   %s\n", path_names[p], m, o,
			       targets[p] ? targets[p] : "");
	}
	printf("\nnew flow on a tuple conntrack has not seen: new flow (tuple reused) + one "
	       "conntrack update = %+.1f ns over pass-through (target <= 150 ns)\n",
	       median(over[P_NEW], ROUNDS) + median(over[P_CT_UPDATE], ROUNDS));
	printf("\nrequest accounting adds (same-run differences, medians): established forward "
	       "%+.1f ns, reverse %+.1f ns per packet (target <= 25 ns)\n",
	       median(acct_fwd, ROUNDS), median(acct_rev, ROUNDS));
	printf("\nThe ref rows are the price of the map operations alone on this machine: the\n"
	       "established path does one lookup, a new flow one lookup, one service lookup\n"
	       "and one update (none when it renews an ended flow's entry); a reply a\n"
	       "sl_revnat lookup and one conntrack lookup.\n");
	if (memlock > 0)
		printf("\nconntrack memory: %ld bytes for %u flows: %.0f bytes per flow (one "
		       "entry)\n", memlock, CT_FLOWS, (double)memlock / CT_FLOWS);
	err = 0;
out:
	passthru_bpf__destroy(pass);
	dp_unpin(&on.dp);
	dp_destroy(&on.dp);
	dp_unpin(&off.dp);
	dp_destroy(&off.dp);
	return err;
}
