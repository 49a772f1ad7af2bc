/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack: the memory that keeps every flow on the backend it started on.
 * A flow has a forward entry (client -> VIP, names the backend) and a reverse
 * entry (backend -> client, names the VIP), both in one LRU hash. TCP
 * teardown is tracked on the forward entry only, so both halves agree on
 * when a flow is over.
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

static __always_inline void ct_key_forward(struct sl_ct_key *k, const struct pkt *p)
{
	__builtin_memcpy(&k->saddr, &p->saddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &p->daddr, sizeof(k->daddr));
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->dir = SL_CT_FORWARD;
	k->pad = 0;
}

/* The reverse packet's key as the forward half predicts it. */
static __always_inline void ct_key_reverse(struct sl_ct_key *k, const struct pkt *p,
					   const union sl_addr *backend, __be16 backend_port)
{
	__builtin_memcpy(&k->saddr, backend, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &p->saddr, sizeof(k->daddr));
	k->sport = backend_port;
	k->dport = p->sport;
	k->proto = p->proto;
	k->family = p->family;
	k->dir = SL_CT_REVERSE;
	k->pad = 0;
}

/* The reverse packet's own key: it is already addressed backend -> client. */
static __always_inline void ct_key_from_reply(struct sl_ct_key *k, const struct pkt *p)
{
	ct_key_forward(k, p);
	k->dir = SL_CT_REVERSE;
}

/* The forward key of the flow a reply belongs to, once the VIP is known. */
static __always_inline void ct_key_forward_of_reply(struct sl_ct_key *k, const struct pkt *p,
						    const struct sl_ct_entry *rev)
{
	__builtin_memcpy(&k->saddr, &p->daddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &rev->nat_addr, sizeof(k->daddr));
	k->sport = p->dport;
	k->dport = rev->nat_port;
	k->proto = p->proto;
	k->family = p->family;
	k->dir = SL_CT_FORWARD;
	k->pad = 0;
}

static __always_inline bool ct_closed(const struct sl_ct_entry *e)
{
	return (e->flags & SL_CT_F_RST) ||
	       (e->flags & (SL_CT_F_FIN_FWD | SL_CT_F_FIN_REV)) ==
		       (SL_CT_F_FIN_FWD | SL_CT_F_FIN_REV);
}

/* TCP teardown bits this packet adds to the forward entry's flags. */
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
 * ct_mark_teardown() - add teardown bits to a forward entry.
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
 * UDP only: refresh last_seen at most once per SL_CT_REFRESH_NS: a write per packet
 * would bounce the entry's cache line between CPUs for nothing.
 */
static __always_inline void ct_touch(struct sl_ct_entry *e, __u64 now)
{
	if (now - e->last_seen_ns > SL_CT_REFRESH_NS)
		e->last_seen_ns = now;
}

#endif /* SLUICE_BPF_CT_H */
