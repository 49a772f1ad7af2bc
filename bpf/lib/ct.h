/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack: the memory that keeps every flow on the backend it started on.
 * One entry per flow, keyed client -> VIP as the client sent it. Replies
 * (backend -> client) find it through sl_revnat, which lists the VIPs each
 * backend serves: the key is rebuilt for each and the entry must name that
 * very backend, so a reply is rewritten only if it belongs to a flow sluice
 * steered there.
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/parse.h"

/* Set by the loader before load; see SL_CT_DEFAULT_UDP_TIMEOUT_NS. */
const volatile __u64 ct_udp_timeout_ns = SL_CT_DEFAULT_UDP_TIMEOUT_NS;
/*
 * How stale a UDP flow's last_seen may grow before a packet rewrites it:
 * SL_CT_REFRESH_NS, or a quarter of a shorter timeout (the loader sets it),
 * so that a flow sending more often than every 3/4 of its timeout never
 * expires: it could otherwise be steered anew while it is busy.
 */
const volatile __u64 ct_refresh_ns = SL_CT_REFRESH_NS;

static __always_inline void ct_key_forward(struct sl_ct_key *k, const struct pkt *p)
{
	__builtin_memcpy(&k->saddr, &p->saddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &p->daddr, sizeof(k->daddr));
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->reserved = 0;
	k->pad = 0;
}

static __always_inline bool ct_closed(const struct sl_ct_entry *e)
{
	return (e->flags & SL_CT_F_RST) ||
	       (e->flags & (SL_CT_F_FIN_FWD | SL_CT_F_FIN_REV)) ==
		       (SL_CT_F_FIN_FWD | SL_CT_F_FIN_REV);
}

/**
 * ct_lookup_reply() - the flow a packet from @backend:@bport to
 * @client:@cport belongs to, and the VIP and port the client sent it to.
 * @synack: the packet opens a connection. A closed flow's entry does not
 * claim it: that is a new connection on a recycled port, such as the
 * client talking to the pod directly, and is not sluice's; the entry goes,
 * so the rest of that connection is not taken for the old flow either.
 * Return: the entry, or NULL when no steered flow matches.
 */
static __always_inline struct sl_ct_entry *
ct_lookup_reply(const union sl_addr *backend, __be16 bport, const union sl_addr *client,
		__be16 cport, __u8 proto, __u8 family, bool synack, union sl_addr *vip,
		__be16 *vip_port)
{
	struct sl_revnat_key rk = { .port = bport, .proto = proto, .family = family };
	struct sl_ct_key k = { .sport = cport, .proto = proto, .family = family };
	struct sl_revnat *rn;
	struct sl_ct_entry *e;
	int i;

	__builtin_memcpy(&rk.addr, backend, sizeof(rk.addr));
	rn = bpf_map_lookup_elem(&sl_revnat, &rk);
	if (!rn)
		return NULL;
	__builtin_memcpy(&k.saddr, client, sizeof(k.saddr));
	/* nearly always one VIP: a loop, not SL_REVNAT_VIPS copies of the lookup */
#pragma clang loop unroll(disable)
	for (i = 0; i < SL_REVNAT_VIPS; i++) {
		if ((__u32)i >= rn->count)
			break;
		__builtin_memcpy(&k.daddr, &rn->vips[i].vip, sizeof(k.daddr));
		k.dport = rn->vips[i].port;
		e = bpf_map_lookup_elem(&sl_ct, &k);
		if (!e || e->nat_port != bport || e->nat_addr.v6[0] != backend->v6[0] ||
		    e->nat_addr.v6[1] != backend->v6[1] || e->nat_addr.v6[2] != backend->v6[2] ||
		    e->nat_addr.v6[3] != backend->v6[3])
			continue;
		if (synack && ct_closed(e)) {
			bpf_map_delete_elem(&sl_ct, &k);
			continue;
		}
		__builtin_memcpy(vip, &k.daddr, sizeof(*vip));
		*vip_port = k.dport;
		return e;
	}
	return NULL;
}

/*
 * The flow's backend has left its service (the agent zeroes a freed
 * backend's entry, and may give the id to another). Its established TCP
 * flows still drain to it, but a new connection on the same tuple and UDP,
 * which has no end to wait for, go elsewhere: a client that keeps reusing a
 * UDP source port (a resolver) would otherwise keep talking to a deleted pod.
 */
static __always_inline bool ct_backend_gone(const struct sl_ct_entry *e)
{
	__u32 id = e->backend_id;
	struct sl_backend *b = bpf_map_lookup_elem(&sl_backends, &id);

	return !b || b->port != e->nat_port || b->addr.v6[0] != e->nat_addr.v6[0] ||
	       b->addr.v6[1] != e->nat_addr.v6[1] || b->addr.v6[2] != e->nat_addr.v6[2] ||
	       b->addr.v6[3] != e->nat_addr.v6[3];
}

/* TCP teardown bits this packet adds to its flow's flags. */
static __always_inline __u8 ct_teardown_flags(const struct pkt *p, __u8 fin_flag)
{
	__u8 f = 0;

	if (p->proto != IPPROTO_TCP)
		return 0;
	if (p->tcp_flags & SL_TCP_FIN)
		f |= fin_flag;
	if (p->tcp_flags & SL_TCP_RST)
		f |= SL_CT_F_RST;
	return f;
}

/**
 * ct_mark_teardown() - add teardown bits to a flow's entry.
 * Return: true when this packet is the one that closed the flow, so that
 * whichever direction sees the closing FIN counts it, once.
 */
static __always_inline bool ct_mark_teardown(struct sl_ct_entry *fwd, __u8 f)
{
	bool was_closed;

	if (!(f & ~fwd->flags))
		return false;
	was_closed = ct_closed(fwd);
	fwd->flags |= f;
	return !was_closed && ct_closed(fwd);
}

/*
 * A UDP flow silent both ways for longer than its timeout has ended. Time
 * differences are signed, here and in ct_touch(): another CPU may write a
 * last_seen later than the @now this one read a moment before, and that
 * flow is fresh, not 584 years idle.
 */
static __always_inline bool ct_udp_expired(const struct sl_ct_entry *e, __u64 now)
{
	return (__s64)(now - e->last_seen_ns) > (__s64)ct_udp_timeout_ns;
}

/*
 * UDP only, from either direction: refresh last_seen at most once per
 * ct_refresh_ns: a write per packet would bounce the entry's cache line
 * between CPUs for nothing.
 */
static __always_inline void ct_touch(struct sl_ct_entry *e, __u64 now)
{
	if ((__s64)(now - e->last_seen_ns) > (__s64)ct_refresh_ns)
		e->last_seen_ns = now;
}

#endif /* SLUICE_BPF_CT_H */
