// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice's datapath: the forward half (TC ingress of the client-facing
 * interfaces, or XDP on a NIC) turns connections to a Service VIP into
 * connections to a primary or canary pod, and the reverse half (TC egress)
 * gives replies, and ICMP errors about them, the VIP back. Both count per
 * backend, and account HTTP/1.x requests and TCP failures.
 *
 * What it may touch: only packets to a (VIP, port, protocol) in sl_services,
 * and only replies from a backend to a client whose flow conntrack holds and
 * names that backend. Every other packet leaves unchanged, and nothing that
 * is not ours is dropped.
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
#include "lib/http.h"
#include "lib/icmp.h"
#include "lib/rst.h"
#include "lib/route.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Request accounting (HTTP heads, handshakes, refusals, resets) on or off,
 * set by the loader. A constant after load: the verifier removes the
 * accounting code entirely when it is off, which is how `make bench`
 * measures what accounting costs.
 */
const volatile bool accounting = true;

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

/*
 * A new flow: choose, remember it, count the connection. @old: the entry of
 * an ended flow on the same tuple (a client reusing its port), rewritten in
 * place rather than replaced: an insert into the LRU costs a node taken from
 * its lists and one given back, several times a lookup. A late reply of the
 * ended flow racing with the rewrite is translated only while the entry
 * still names its backend (ct_lookup_reply() compares address and port).
 */
static __always_inline int steer_new_flow(const struct pkt *p, const struct sl_service *svc,
					  __u64 now, struct sl_ct_entry *old,
					  struct sl_ct_entry *fwd)
{
	struct sl_ct_key key;
	struct sl_backend *b;
	struct sl_backend_stats *st;
	__u32 client_hash = 0, rnd = 0, backend_id;
	__u8 version;

	if (svc->affinity == SL_AFFINITY_CLIENT)
		client_hash = sl_hash_addr(&p->saddr, svc->hash_seed);
	else
		rnd = bpf_get_prandom_u32();
	version = lb_pick_version(svc, p, client_hash, rnd, now);
	if (lb_pick_backend(svc, &version, client_hash, rnd, &backend_id))
		return -1;
	b = bpf_map_lookup_elem(&sl_backends, &backend_id);
	if (!b || b->family != p->family)
		return -1;

	__builtin_memset(fwd, 0, sizeof(*fwd));
	fwd->created_ns = now;
	fwd->last_seen_ns = now;
	__builtin_memcpy(&fwd->nat_addr, &b->addr, sizeof(fwd->nat_addr));
	fwd->nat_port = b->port;
	fwd->flags = ct_teardown_flags(p, SL_CT_F_FIN_FWD);
	fwd->version = version;
	fwd->backend_id = backend_id;
	fwd->svc_ref = svc->id + 1;

	/* sl_revnat already lists this backend's VIPs: the agent writes it first. */
	if (old) {
		__builtin_memcpy(old, fwd, sizeof(*old));
	} else {
		ct_key_forward(&key, p);
		if (bpf_map_update_elem(&sl_ct, &key, fwd, BPF_ANY))
			dp_count(SL_DP_CT_FULL);
	}

	st = backend_stats(backend_id);
	if (st)
		st->conns_opened++;
	dp_count(SL_DP_NEW_FLOWS);
	return 0;
}

/* Count a flow that just ended with requests still unanswered. */
static __always_inline void flow_ended(struct sl_ct_entry *fwd, struct sl_backend_stats *st)
{
	if (st) {
		st->conns_closed++;
		st->unanswered += fwd->pending;
	}
	fwd->pending = 0;
}

/* The client's side of an established TCP flow: teardown, SYN retries, requests. */
static __always_inline void track_forward(void *ctx, bool xdp, const struct pkt *p,
					  struct sl_ct_entry *e, struct sl_backend_stats *st)
{
	/*
	 * A flow that ended keeps its entry for late ACKs and retransmissions
	 * in both directions, until a new SYN renews it or LRU takes it.
	 */
	if (ct_mark_teardown(e, ct_teardown_flags(p, SL_CT_F_FIN_FWD)))
		flow_ended(e, st);
	if (!accounting)
		return;
	/* A SYN again before any answer: the backend is slow or gone. */
	if ((p->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN &&
	    !(e->flags & (SL_CT_F_SEEN_REPLY | SL_CT_F_SYN_RETX))) {
		e->flags |= SL_CT_F_SYN_RETX;
		if (st)
			st->conns_syn_retx++;
	}
	if (p->payload_len)
		http_forward(ctx, xdp, p, e, st);
}

/*
 * A packet that starts a flow, or renews an ended one: out of line, so the
 * established path, which nearly every packet takes, stays a short run of
 * instructions (docs/benchmarks.md: under load, cache misses cost more than the work).
 */
enum new_flow_result { NEW_FLOW_OK, NEW_FLOW_NOT_OURS, NEW_FLOW_NO_BACKEND };

static __noinline int new_flow(const struct pkt *p, struct sl_ct_entry *old, __u64 now,
			       struct sl_ct_entry *fresh)
{
	struct sl_service *svc;

	svc = lb_lookup_service(p);
	if (!svc)
		return NEW_FLOW_NOT_OURS; /* a filter false positive: not ours */
	/* a TCP segment of a flow conntrack no longer knows: LRU evicted it */
	if (!old && p->proto == IPPROTO_TCP && !(p->tcp_flags & SL_TCP_SYN))
		dp_count(SL_DP_CT_MIDFLOW);
	if (!now)
		now = bpf_ktime_get_ns();
	if (steer_new_flow(p, svc, now, old, fresh)) {
		dp_count(SL_DP_NO_BACKEND);
		return NEW_FLOW_NO_BACKEND;
	}
	return NEW_FLOW_OK;
}

enum fwd_verdict {
	FWD_PASS, /* on to the stack untouched */
	FWD_STEERED, /* rewritten for its backend: on to the stack, or routed here */
	FWD_OTHER, /* TCP or UDP, not to a service: maybe a backend's reply */
	FWD_DROP,
	FWD_RESET, /* turned into a reset to the client: back out where it came in */
};

/*
 * The forward half, once for both hooks: @xdp is a constant at each call
 * site, so each program keeps only its own branches. TC packets may hold
 * their headers in fragments (pulled) and a partial checksum (see nat.h);
 * XDP frames are linear with full checksums. With host routing only (the
 * copies cost the default path nothing), @p_out gets the packet as parsed,
 * for FWD_STEERED and FWD_OTHER, and @to_out and @to_port_out the backend's
 * address and port it now carries, for FWD_STEERED.
 */
static __always_inline int forward(void *ctx, bool xdp, struct pkt *p_out, union sl_addr *to_out,
				   __be16 *to_port_out)
{
	struct sl_ct_entry *e, fresh;
	struct sl_backend_stats *st;
	struct sl_ct_key key;
	union sl_addr to;
	struct pkt p;
	__be16 to_port;
	__u32 backend_id;
	bool renew = false;
	__u64 now = 0;
	int ret;

	if (xdp) {
		struct xdp_md *x = ctx;
		void *data = (void *)(long)x->data, *data_end = (void *)(long)x->data_end;

		ret = parse_pkt(data, data_end, (__u32)(data_end - data), &p);
		if (ret == PARSE_SHORT)
			ret = PARSE_MALFORMED;
	} else {
		ret = parse_skb(ctx, &p);
	}
	if (ret != PARSE_OK) {
		count_parse_result(ret);
		return FWD_PASS;
	}
	if (!filter_hit(SL_FILTER_VIP, &p.daddr, p.dport)) {
		if (host_routing)
			__builtin_memcpy(p_out, &p, sizeof(p));
		return FWD_OTHER;
	}

	/*
	 * Conntrack before the service: an established flow needs one lookup,
	 * and keeps its backend even once its service is gone (it drains).
	 */
	ct_key_forward(&key, &p);
	e = bpf_map_lookup_elem(&sl_ct, &key);
	if (e) {
		if (e->flags & SL_CT_F_EVICT) {
			/*
			 * Moved off its backend by the agent (a rollback's reset): a
			 * TCP segment gets a reset back (rst.h says why), a SYN or
			 * anything rst.h cannot answer is steered anew.
			 */
			if (!xdp && p.proto == IPPROTO_TCP && !(p.tcp_flags & SL_TCP_RST) &&
			    (p.tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) != SL_TCP_SYN &&
			    rst_to_client(ctx, &p))
				return FWD_RESET;
			renew = true;
		} else if (p.proto == IPPROTO_TCP) {
			renew = (p.tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN &&
				(ct_closed(e) || ct_backend_gone(e));
		} else {
			/* Only UDP ages by time; TCP ends by FIN/RST (or LRU). */
			now = bpf_ktime_get_ns();
			renew = ct_udp_expired(e, now) || ct_backend_gone(e);
			if (!renew)
				ct_touch(e, now);
		}
	}
	if (e && !renew) {
		/*
		 * Copy out in each branch: merging the map pointer with the stack
		 * entry below makes clang compute field addresses before the
		 * verifier has seen the NULL check.
		 */
		__builtin_memcpy(&to, &e->nat_addr, sizeof(to));
		to_port = e->nat_port;
		backend_id = e->backend_id;
		st = backend_stats(backend_id);
		if (st) {
			st->pkts_fwd++;
			st->bytes_fwd += p.len;
		}
		if (p.proto == IPPROTO_TCP)
			track_forward(ctx, xdp, &p, e, st);
	} else {
		ret = new_flow(&p, e, now, &fresh);
		if (ret == NEW_FLOW_NOT_OURS) {
			if (host_routing)
				__builtin_memcpy(p_out, &p, sizeof(p));
			return FWD_OTHER;
		}
		if (ret != NEW_FLOW_OK)
			return FWD_DROP;
		__builtin_memcpy(&to, &fresh.nat_addr, sizeof(to));
		to_port = fresh.nat_port;
		backend_id = fresh.backend_id;
		st = backend_stats(backend_id);
		if (st) {
			st->pkts_fwd++;
			st->bytes_fwd += p.len;
		}
	}

	if (xdp ? nat_dnat_xdp(ctx, &p, &to, to_port) : nat_dnat(ctx, &p, &to, to_port)) {
		dp_count(SL_DP_REWRITE_ERR);
		return FWD_DROP;
	}
	if (host_routing) {
		__builtin_memcpy(p_out, &p, sizeof(p));
		__builtin_memcpy(to_out, &to, sizeof(to));
		*to_port_out = to_port;
	}
	return FWD_STEERED;
}

/*
 * The forward half at XDP, for north-south traffic on the node's NIC: the
 * same lookups, conntrack and choice as at TC, before the kernel builds an
 * skb. Replies still go through sl_tc_reverse at the NIC's egress.
 */
SEC("xdp")
int sl_xdp_forward(struct xdp_md *ctx)
{
	union sl_addr to;
	__be16 to_port;
	struct pkt p;

	/* FWD_RESET is TC's alone: XDP steers a reset flow's packets anew */
	return forward(ctx, true, &p, &to, &to_port) == FWD_DROP ? XDP_DROP : XDP_PASS;
}

/*
 * The backend's side of a TCP flow: the handshake, refusals and resets,
 * teardown, and responses.
 */
static __always_inline void track_reverse(const struct pkt *p, struct sl_ct_entry *fwd,
					  const __u8 *head, bool have_head,
					  struct sl_backend_stats *st)
{
	if (!accounting)
		goto teardown;
	if ((p->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == (SL_TCP_SYN | SL_TCP_ACK) &&
	    !(fwd->flags & SL_CT_F_SEEN_REPLY)) {
		fwd->flags |= SL_CT_F_SEEN_REPLY;
		if (st) {
			st->handshakes++;
			st->handshake_ns += bpf_ktime_get_ns() - fwd->created_ns;
		}
	}
	if ((p->tcp_flags & SL_TCP_RST) && !(fwd->flags & SL_CT_F_RST) && st) {
		/* RST for a SYN is a refusal; after the handshake, a reset. */
		if (fwd->flags & SL_CT_F_SEEN_REPLY)
			st->conns_reset++;
		else
			st->conns_refused++;
	}
	if (have_head)
		http_reverse(p, fwd, head, fwd->backend_id, st);
teardown:
	if (ct_mark_teardown(fwd, ct_teardown_flags(p, SL_CT_F_FIN_REV)))
		flow_ended(fwd, st);
}

/*
 * The reverse half, once for both places it runs: the egress of the
 * client-facing interfaces (sl_tc_reverse), and with host routing also the
 * ingress of a backend's own interface (@route, from sl_tc_forward), where
 * a reply it can route is translated, counted and sent on by the program,
 * and any other is left untouched for the egress to translate as usual.
 */
static __always_inline int reverse(struct __sk_buff *skb, const struct pkt *p, bool route)
{
	struct sl_backend_stats *st;
	struct bpf_fib_lookup fib;
	struct sl_ct_entry *e;
	union sl_addr vip;
	__u8 head[HTTP_HEAD_LEN];
	bool have_head = false, synack;
	__be16 vip_port;

	if (!filter_hit(SL_FILTER_BACKEND, &p->saddr, p->sport))
		return SL_TC_PASS;
	synack = p->proto == IPPROTO_TCP &&
		 (p->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == (SL_TCP_SYN | SL_TCP_ACK);
	e = ct_lookup_reply(&p->saddr, p->sport, &p->daddr, p->dport, p->proto, p->family, synack,
			    &vip, &vip_port);
	if (!e)
		return SL_TC_PASS;
	if (route && (!route_ttl_ok(skb, p) ||
		      !route_lookup(skb, p, &p->saddr, p->sport, &p->daddr, p->dport, &fib)))
		return SL_TC_PASS;
	if (p->proto == IPPROTO_UDP) {
		__u64 now = bpf_ktime_get_ns();

		/*
		 * An expired flow has ended, as for the forward half: a datagram
		 * from the pod to that client port now belongs to a conversation
		 * the client began with the pod itself. A live one is kept alive
		 * by its backend's datagrams too (a stream the client only opened).
		 */
		if (ct_udp_expired(e, now))
			return SL_TC_PASS;
		ct_touch(e, now);
	}
	st = backend_stats(e->backend_id);
	if (st) {
		st->pkts_rev++;
		st->bytes_rev += p->len;
	}
	if (p->proto == IPPROTO_TCP) {
		if (accounting && p->payload_len >= HTTP_HEAD_LEN &&
		    !http_load(skb, false, p, head, HTTP_HEAD_LEN))
			have_head = head[0] == 'H' && head[1] == 'T';
		if (have_head || (p->tcp_flags & (SL_TCP_FIN | SL_TCP_RST)) || (accounting && synack))
			track_reverse(p, e, head, have_head, st);
	}
	if (nat_snat(skb, p, &vip, vip_port)) {
		dp_count(SL_DP_REWRITE_ERR);
		return TC_ACT_SHOT;
	}
	if (route) {
		dp_count(SL_DP_ROUTED);
		return route_deliver(skb, p, &fib);
	}
	return SL_TC_PASS;
}

SEC("tc")
int sl_tc_reverse(struct __sk_buff *skb)
{
	struct pkt p;
	int ret;

	ret = parse_skb(skb, &p);
	if (ret != PARSE_OK) {
		/* not TCP/UDP: maybe an ICMP error about a steered flow */
		if (ret == PARSE_NOT_OURS && icmp_reverse(skb))
			dp_count(SL_DP_ICMP);
		return SL_TC_PASS;
	}
	return reverse(skb, &p, false);
}

/* A steered packet, rewritten: routed here when it can be (lib/route.h). */
static __always_inline int route_steered(struct __sk_buff *skb, const struct pkt *p,
					 const union sl_addr *to, __be16 to_port)
{
	struct bpf_fib_lookup fib;

	if (!route_ttl_ok(skb, p) || !route_lookup(skb, p, &p->saddr, p->sport, to, to_port, &fib))
		return SL_TC_PASS;
	dp_count(SL_DP_ROUTED);
	return route_deliver(skb, p, &fib);
}

SEC("tc")
int sl_tc_forward(struct __sk_buff *skb)
{
	union sl_addr to;
	__be16 to_port;
	struct pkt p;

	switch (forward(skb, false, &p, &to, &to_port)) {
	case FWD_STEERED:
		return host_routing ? route_steered(skb, &p, &to, to_port) : SL_TC_PASS;
	case FWD_OTHER:
		/* a backend's reply, coming in on its own interface */
		return host_routing ? reverse(skb, &p, true) : SL_TC_PASS;
	case FWD_DROP:
		return TC_ACT_SHOT;
	case FWD_RESET:
		return bpf_redirect(skb->ifindex, 0);
	default:
		return SL_TC_PASS;
	}
}
