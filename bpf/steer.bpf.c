// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice's TC datapath: the forward half (ingress of the client-facing
 * interfaces) turns connections to a Service VIP into connections to a
 * primary or canary pod, and the reverse half (egress of the same
 * interfaces) gives replies the VIP back. Both count per backend.
 *
 * What it may touch: only packets to a (VIP, port, protocol) in sl_services,
 * and only replies whose exact 5-tuple has a reverse conntrack entry. Every
 * other packet leaves unchanged, and nothing that is not ours is dropped.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/ct.h"
#include "lib/lb.h"
#include "lib/nat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Enough for Ethernet + IPv6 with a few option headers + TCP with options. */
#define SL_PULL_LEN 192

static __always_inline int parse_skb(struct __sk_buff *skb, struct pkt *p)
{
	int ret;

	ret = parse_pkt((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);
	if (ret != PARSE_SHORT)
		return ret;
	/* Headers split across pages: make them linear once and look again. */
	if (bpf_skb_pull_data(skb, skb->len < SL_PULL_LEN ? skb->len : SL_PULL_LEN))
		return PARSE_MALFORMED;
	ret = parse_pkt((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);
	return ret == PARSE_SHORT ? PARSE_MALFORMED : ret;
}

static __always_inline void count_parse_result(int ret)
{
	if (ret == PARSE_FRAGMENT)
		dp_count(SL_DP_FRAGMENTS);
	else if (ret == PARSE_UNSTEERABLE)
		dp_count(SL_DP_UNSTEERABLE);
	else if (ret == PARSE_MALFORMED)
		dp_count(SL_DP_MALFORMED);
}

static __always_inline struct sl_backend_stats *backend_stats(__u32 backend_id)
{
	return bpf_map_lookup_elem(&sl_stats, &backend_id);
}

/* A new flow: choose, remember both directions, count the connection. */
static __always_inline int steer_new_flow(const struct pkt *p, const struct sl_service *svc,
					  const struct sl_ct_entry *old, __u64 now,
					  struct sl_ct_entry *fwd)
{
	struct sl_ct_key key;
	struct sl_ct_entry rev;
	struct sl_backend *b;
	struct sl_backend_stats *st;
	__u32 client_hash = 0, rnd = 0, backend_id;
	__u8 version;

	if (svc->affinity == SL_AFFINITY_CLIENT)
		client_hash = sl_hash_addr(&p->saddr, svc->hash_seed);
	else
		rnd = bpf_get_prandom_u32();
	version = lb_pick_version(svc, p, client_hash, rnd);
	if (lb_pick_backend(svc, &version, client_hash, rnd, &backend_id))
		return -1;
	b = bpf_map_lookup_elem(&sl_backends, &backend_id);
	if (!b || b->family != p->family)
		return -1;

	/* The port was reused: the old backend's reply entry must not linger. */
	if (old && (old->nat_port != b->port || old->nat_addr.v6[0] != b->addr.v6[0] ||
		    old->nat_addr.v6[1] != b->addr.v6[1] || old->nat_addr.v6[2] != b->addr.v6[2] ||
		    old->nat_addr.v6[3] != b->addr.v6[3])) {
		ct_key_reverse(&key, p, &old->nat_addr, old->nat_port);
		bpf_map_delete_elem(&sl_ct, &key);
	}

	__builtin_memset(fwd, 0, sizeof(*fwd));
	fwd->created_ns = now;
	fwd->last_seen_ns = now;
	__builtin_memcpy(&fwd->nat_addr, &b->addr, sizeof(fwd->nat_addr));
	fwd->nat_port = b->port;
	fwd->flags = ct_teardown_flags(p, SL_CT_F_FIN_FWD);
	fwd->version = version;
	fwd->backend_id = backend_id;

	rev = *fwd;
	__builtin_memcpy(&rev.nat_addr, &p->daddr, sizeof(rev.nat_addr));
	rev.nat_port = p->dport;
	rev.flags = 0;

	/*
	 * Reverse entry first: once the forward entry exists, replies can come
	 * back, and they must find their way to the VIP.
	 */
	ct_key_reverse(&key, p, &b->addr, b->port);
	if (bpf_map_update_elem(&sl_ct, &key, &rev, BPF_ANY))
		dp_count(SL_DP_CT_FULL);
	ct_key_forward(&key, p);
	if (bpf_map_update_elem(&sl_ct, &key, fwd, BPF_ANY))
		dp_count(SL_DP_CT_FULL);

	st = backend_stats(backend_id);
	if (st)
		st->conns_opened++;
	dp_count(SL_DP_NEW_FLOWS);
	return 0;
}

SEC("tc")
int sl_tc_forward(struct __sk_buff *skb)
{
	struct sl_ct_entry *e, fresh;
	struct sl_backend_stats *st;
	struct sl_service *svc;
	struct sl_ct_key key;
	union sl_addr to;
	struct pkt p;
	__be16 to_port;
	__u32 backend_id;
	bool closed = false, renew = false;
	__u64 now = 0;
	int ret;

	ret = parse_skb(skb, &p);
	if (ret != PARSE_OK) {
		count_parse_result(ret);
		return TC_ACT_OK;
	}
	if (!filter_hit(SL_FILTER_VIP, &p.daddr, p.dport))
		return TC_ACT_OK;

	/*
	 * Conntrack before the service: an established flow needs one lookup,
	 * and keeps its backend even once its service is gone (it drains).
	 */
	ct_key_forward(&key, &p);
	e = bpf_map_lookup_elem(&sl_ct, &key);
	if (e) {
		if (p.proto == IPPROTO_TCP) {
			renew = (p.tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN &&
				ct_closed(e);
		} else {
			/* Only UDP ages by time; TCP ends by FIN/RST (or LRU). */
			now = bpf_ktime_get_coarse_ns();
			renew = now - e->last_seen_ns > ct_udp_timeout_ns;
			if (!renew)
				ct_touch(e, now);
		}
	}
	if (e && !renew) {
		closed = ct_mark_teardown(e, ct_teardown_flags(&p, SL_CT_F_FIN_FWD));
		/*
		 * Copy out in each branch: merging the map pointer with the stack
		 * entry below makes clang compute field addresses before the
		 * verifier has seen the NULL check.
		 */
		__builtin_memcpy(&to, &e->nat_addr, sizeof(to));
		to_port = e->nat_port;
		backend_id = e->backend_id;
	} else {
		svc = lb_lookup_service(&p);
		if (!svc)
			return TC_ACT_OK; /* a filter false positive: not ours */
		if (!now)
			now = bpf_ktime_get_coarse_ns();
		if (steer_new_flow(&p, svc, e, now, &fresh)) {
			dp_count(SL_DP_NO_BACKEND);
			return TC_ACT_SHOT;
		}
		__builtin_memcpy(&to, &fresh.nat_addr, sizeof(to));
		to_port = fresh.nat_port;
		backend_id = fresh.backend_id;
	}

	st = backend_stats(backend_id);
	if (st) {
		st->pkts_fwd++;
		st->bytes_fwd += p.len;
		st->conns_closed += closed;
	}
	if (nat_dnat(skb, &p, &to, to_port)) {
		dp_count(SL_DP_REWRITE_ERR);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

/* Teardown seen on the reply path is recorded on the flow's forward entry. */
static __always_inline void reverse_teardown(const struct pkt *p, const struct sl_ct_entry *rev)
{
	struct sl_ct_entry *fwd;
	struct sl_ct_key key;
	__u8 f = ct_teardown_flags(p, SL_CT_F_FIN_REV);

	if (!f)
		return;
	ct_key_forward_of_reply(&key, p, rev);
	fwd = bpf_map_lookup_elem(&sl_ct, &key);
	if (fwd && ct_mark_teardown(fwd, f)) {
		struct sl_backend_stats *st = backend_stats(rev->backend_id);

		if (st)
			st->conns_closed++;
	}
}

SEC("tc")
int sl_tc_reverse(struct __sk_buff *skb)
{
	struct sl_backend_stats *st;
	struct sl_ct_entry *e;
	struct sl_ct_key key;
	union sl_addr vip;
	struct pkt p;
	__be16 vip_port;
	int ret;

	ret = parse_skb(skb, &p);
	if (ret != PARSE_OK)
		return TC_ACT_OK;
	if (!filter_hit(SL_FILTER_BACKEND, &p.saddr, p.sport))
		return TC_ACT_OK;
	ct_key_from_reply(&key, &p);
	e = bpf_map_lookup_elem(&sl_ct, &key);
	if (!e)
		return TC_ACT_OK;

	__builtin_memcpy(&vip, &e->nat_addr, sizeof(vip));
	vip_port = e->nat_port;
	st = backend_stats(e->backend_id);
	if (st) {
		st->pkts_rev++;
		st->bytes_rev += p.len;
	}
	if (p.proto == IPPROTO_TCP && (p.tcp_flags & (SL_TCP_FIN | SL_TCP_RST)))
		reverse_teardown(&p, e);
	if (nat_snat(skb, &p, &vip, vip_port)) {
		dp_count(SL_DP_REWRITE_ERR);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}
