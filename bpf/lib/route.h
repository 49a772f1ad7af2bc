/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host routing (`sluice agent --host-routing`): a steered packet, once
 * rewritten, is routed by the program instead of by the node's IP stack.
 * The program asks the kernel's FIB where the packet goes (bpf_fib_lookup(),
 * the same tables, forwarding switch and MTU check the stack would apply),
 * decrements its TTL or hop limit, writes the next hop's MAC addresses and
 * hands it to the egress device, or, for a veth or netkit device, straight
 * to its peer's ingress inside the pod (bpf_redirect_peer()): no second
 * pass through the stack's receive path, routing and neighbour output, and
 * none through the node's netfilter hooks either. That last part is the
 * price: netfilter FORWARD and POSTROUTING rules (NetworkPolicy enforced
 * with iptables, a host firewall, masquerading) never see these packets, so
 * the switch is off unless the operator turns it on (docs/datapath.md).
 *
 * Whatever the FIB cannot answer outright (no neighbour entry yet, a packet
 * or a GSO packet's segments over the egress MTU, a local destination,
 * forwarding off, a TTL about to expire, a frame for another host's MAC
 * address) goes to the stack as before, which resolves, answers with ICMP,
 * delivers or drops it.
 */
#ifndef SLUICE_BPF_ROUTE_H
#define SLUICE_BPF_ROUTE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice/datapath.h"
#include "lib/csum.h"
#include "lib/nat.h"
#include "lib/parse.h"

/* Set by the loader (--host-routing); a constant after load: off, none of this is in the programs. */
const volatile bool host_routing = false;

/*
 * The interfaces whose packets may go straight to their peer's ingress
 * (veth, netkit: the agent marks those it attaches to). For any other
 * device bpf_redirect_peer() would drop the packet, so an unmarked one gets
 * a plain redirect to its egress. A bit per ifindex below
 * SL_ROUTE_PEER_IFINDEXES; above it, egress always.
 */
__u64 route_peer_ifs[SL_ROUTE_PEER_IFINDEXES / 64];

static __always_inline bool route_peer_capable(__u32 ifindex)
{
	return ifindex < SL_ROUTE_PEER_IFINDEXES &&
	       ((route_peer_ifs[ifindex / 64] >> (ifindex % 64)) & 1);
}

/*
 * A GSO packet's segments, each its headers and gso_size bytes, against the
 * egress MTU. The FIB lookup lets any GSO packet through its own check (a
 * device with TSO would not care), where forwarding checks the segments and
 * answers too big ones with ICMP "fragmentation needed": left to the stack,
 * such a packet gets that answer, where sent on it would be cut into
 * segments larger than the path takes.
 */
static __always_inline bool route_gso_fits(struct __sk_buff *skb, const struct pkt *p, __u32 mtu)
{
	__u32 hdrs;

	if (!skb->gso_size)
		return true;
	hdrs = p->proto == IPPROTO_TCP ? p->payload_off :
					 (p->l4_off & SL_L4_OFF_MASK) + sizeof(struct udphdr);
	return hdrs - sizeof(struct ethhdr) + skb->gso_size <= mtu;
}

/**
 * route_lookup() - where the kernel would forward a packet from @src:@sport
 * to @dst:@dport that came in on @skb's device.
 * @f: filled in: the egress device and the MAC addresses for it
 * Return: true when the program may deliver it itself (see the top of the file).
 */
static __always_inline bool route_lookup(struct __sk_buff *skb, const struct pkt *p,
					 const union sl_addr *src, __be16 sport,
					 const union sl_addr *dst, __be16 dport,
					 struct bpf_fib_lookup *f)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;

	/* a frame for another host's address: the stack drops it, so do we */
	if (skb->pkt_type != PACKET_HOST)
		return false;
	__builtin_memset(f, 0, sizeof(*f));
	f->family = p->family;
	f->l4_protocol = p->proto;
	/* ports and flow label as the stack's lookup has them: the same ECMP path */
	f->sport = sport;
	f->dport = dport;
	f->ifindex = skb->ifindex;
	if (p->family == AF_INET) {
		f->ipv4_src = src->v4;
		f->ipv4_dst = dst->v4;
	} else {
		__be32 *ip6 = data + sizeof(struct ethhdr);

		if ((void *)(ip6 + 1) > data_end)
			return false;
		f->flowinfo = *ip6 & bpf_htonl(0x0fffffff);
		__builtin_memcpy(f->ipv6_src, src, sizeof(f->ipv6_src));
		__builtin_memcpy(f->ipv6_dst, dst, sizeof(f->ipv6_dst));
	}
	/*
	 * tot_len left 0: the skb flavour then checks the packet against the
	 * egress MTU itself (and answers with the MTU in mtu_result), but lets
	 * every GSO packet pass: route_gso_fits() checks those.
	 */
	if (bpf_fib_lookup(skb, f, sizeof(*f), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return false;
	return route_gso_fits(skb, p, f->mtu_result);
}

/**
 * route_ttl_ok() - whether the packet has a hop left: one that would expire
 * here goes to the stack, which answers with ICMP time exceeded.
 */
static __always_inline bool route_ttl_ok(struct __sk_buff *skb, const struct pkt *p)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;

	if (p->family == AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);

		return (void *)(ip + 1) <= data_end && ip->ttl > 1;
	}
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

	return (void *)(ip6 + 1) <= data_end && ip6->hop_limit > 1;
}

/**
 * route_deliver() - one hop less, the next hop's addresses, and out of @f's device.
 * Return: the TC verdict (TC_ACT_REDIRECT), or TC_ACT_SHOT if the headers are
 * no longer readable (they were a moment ago).
 */
static __always_inline int route_deliver(struct __sk_buff *skb, const struct pkt *p,
					 const struct bpf_fib_lookup *f)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if (p->family == AF_INET) {
		struct iphdr *ip = data + sizeof(*eth);
		__u16 old, new;

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_SHOT;
		/* TTL and checksum move together: skb->csum, if kept, stays right */
		old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		new = *(__u16 *)&ip->ttl;
		ip->check = csum_replace_full(ip->check, csum_diff16(&old, &new, 1));
	} else {
		struct ipv6hdr *ip6 = data + sizeof(*eth);
		__u16 *word, old;

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_SHOT;
		/* no header checksum: a CHECKSUM_COMPLETE sum moves instead */
		word = (__u16 *)&ip6->payload_len + 1; /* next header, hop limit */
		old = *word;
		ip6->hop_limit--;
		if (!have_kern_ctx || nat_ip_summed(skb) == SL_CHECKSUM_COMPLETE)
			bpf_csum_update(skb, csum_fold32(csum_diff16(&old, word, 1)));
		/* the helper may move the data: read the pointers again */
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
	}
	__builtin_memcpy(eth->h_dest, f->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f->smac, ETH_ALEN);
	if (route_peer_capable(f->ifindex))
		return bpf_redirect_peer(f->ifindex, 0);
	return bpf_redirect(f->ifindex, 0);
}

#endif /* SLUICE_BPF_ROUTE_H */
