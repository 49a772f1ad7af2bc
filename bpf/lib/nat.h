/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address and port rewrites with checksums kept right. Everything goes
 * through the kernel's csum helpers rather than arithmetic on packet bytes:
 * they know the skb's ip_summed state, so a CHECKSUM_PARTIAL packet from a
 * local veth (whose L4 field holds only the pseudo-header sum) and a fully
 * checksummed one from the wire both come out right.
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lib/parse.h"

/* BPF_F_MARK_MANGLED_0 keeps a UDP/IPv4 "no checksum" zero as zero. */
static __always_inline __u64 nat_l4_flags(const struct pkt *p)
{
	return p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/**
 * nat_rewrite() - replace one address and one port of @p, fixing checksums.
 * @addr_off, @port_off: where in the packet the address and the port sit.
 * @from, @to: the old and new address; @from_port, @to_port likewise.
 * Return: 0, or a negative error from a helper (the packet is then partly
 * rewritten and must be dropped).
 */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct pkt *p,
				       __u32 addr_off, __u32 port_off,
				       const union sl_addr *from, const union sl_addr *to,
				       __be16 from_port, __be16 to_port)
{
	__u64 l4f = nat_l4_flags(p);
	int ret;

	if (p->family == AF_INET) {
		ret = bpf_l4_csum_replace(skb, p->csum_off, from->v4, to->v4,
					  l4f | BPF_F_PSEUDO_HDR | sizeof(__be32));
		if (ret)
			return ret;
		ret = bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check),
					  from->v4, to->v4, sizeof(__be32));
		if (ret)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, &to->v4, sizeof(to->v4), 0);
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)from->v6, 16, (__be32 *)to->v6, 16, 0);

		if (diff < 0)
			return (int)diff;
		/* IPv6 has no header checksum: only the L4 pseudo-header moves. */
		ret = bpf_l4_csum_replace(skb, p->csum_off, 0, (__u32)diff,
					  l4f | BPF_F_PSEUDO_HDR);
		if (ret)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, to->v6, 16, 0);
	}
	if (ret)
		return ret;
	if (from_port == to_port)
		return 0;
	ret = bpf_l4_csum_replace(skb, p->csum_off, from_port, to_port, l4f | sizeof(__be16));
	if (ret)
		return ret;
	return bpf_skb_store_bytes(skb, port_off, &to_port, sizeof(to_port), 0);
}

static __always_inline __u32 nat_daddr_off(const struct pkt *p)
{
	return p->family == AF_INET ? p->l3_off + offsetof(struct iphdr, daddr)
				    : p->l3_off + offsetof(struct ipv6hdr, daddr);
}

static __always_inline __u32 nat_saddr_off(const struct pkt *p)
{
	return p->family == AF_INET ? p->l3_off + offsetof(struct iphdr, saddr)
				    : p->l3_off + offsetof(struct ipv6hdr, saddr);
}

/* TCP and UDP both keep source then destination port in the first 4 bytes. */
static __always_inline int nat_dnat(struct __sk_buff *skb, const struct pkt *p,
				    const union sl_addr *to, __be16 to_port)
{
	return nat_rewrite(skb, p, nat_daddr_off(p), p->l4_off + 2, &p->daddr, to, p->dport,
			   to_port);
}

static __always_inline int nat_snat(struct __sk_buff *skb, const struct pkt *p,
				    const union sl_addr *to, __be16 to_port)
{
	return nat_rewrite(skb, p, nat_saddr_off(p), p->l4_off, &p->saddr, to, p->sport, to_port);
}

#endif /* SLUICE_BPF_NAT_H */
