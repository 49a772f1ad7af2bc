/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address and port rewrites with checksums kept right, written straight
 * into the packet. The L4 checksum field means different things by the
 * skb's ip_summed: a CHECKSUM_PARTIAL packet from a local veth holds only
 * the pseudo-header sum there (so only the address change goes in, and the
 * port change must not), every other packet the full complement (both go
 * in). ip_summed is read from the kernel's sk_buff through
 * bpf_cast_to_kern_ctx(), which the verifier turns into a register move,
 * so knowing it costs nothing; a CHECKSUM_COMPLETE packet also has its
 * skb->csum corrected, the only helper call of a rewrite.
 *
 * bpf_cast_to_kern_ctx() came with Linux 6.3. Older kernels (6.1 LTS) take
 * the helper path instead: bpf_l3/l4_csum_replace() know ip_summed
 * themselves, at the price of a few helper calls per rewritten packet. The
 * loader picks the path before load (have_kern_ctx); see nat_rewrite().
 *
 * XDP has no ip_summed. Frames from a NIC's driver carry full checksums,
 * but a veth's frames are its peer's skbs, from local senders (pods, a
 * client namespace) whose L4 fields are CHECKSUM_PARTIAL, and generic mode
 * runs on skbs that GRO may have merged into CHECKSUM_PARTIAL ones. Where the
 * agent attaches XDP to such a link it marks the interface in
 * xdp_csum_guess_ifs, and the rewrite of that interface's frames then reads
 * the field itself: see nat_guess_summed().
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "lib/csum.h"
#include "lib/parse.h"

#define SL_CHECKSUM_NONE 0
#define SL_CHECKSUM_UNNECESSARY 1
#define SL_CHECKSUM_COMPLETE 2
#define SL_CHECKSUM_PARTIAL 3
/* Not the kernel's: an XDP frame that may be either full or partial. */
#define SL_CHECKSUM_GUESS 4

/*
 * Weak, so that libbpf (1.1) loads the object on a kernel without the
 * kfunc: it then leaves the call unresolved (id 0) instead of failing.
 */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/*
 * Set by the loader (dp_probe_kernel()): true where the running kernel's
 * BTF has bpf_cast_to_kern_ctx(). A constant after load, so the verifier
 * removes the path not taken. Where it is false, the unresolved call sits
 * in that dead path: the verifier accepts a call to kfunc id 0 that is never
 * reached and drops it with the rest (seen on 6.1 by vmtest).
 */
const volatile bool have_kern_ctx = true;

/*
 * The interfaces whose XDP frames may be partial, a bit per ifindex below
 * SL_XDP_GUESS_IFINDEXES and one switch for all above: set by the agent
 * before it attaches sl_xdp_forward to a veth or tun or in generic mode
 * (dp_xdp_guess_csum()); clear for a NIC in native mode, whose fields are
 * always full. Writable (.bss), not load-time constants: which interfaces
 * and modes there are is known only once the program is loaded.
 */
__u64 xdp_csum_guess_ifs[SL_XDP_GUESS_IFINDEXES / 64];
bool xdp_csum_guess_high;

static __always_inline bool nat_xdp_may_be_partial(struct xdp_md *ctx)
{
	__u32 i = ctx->ingress_ifindex;

	if (i < SL_XDP_GUESS_IFINDEXES)
		return (xdp_csum_guess_ifs[i / 64] >> (i % 64)) & 1;
	return xdp_csum_guess_high;
}

/* Just the field sluice reads, relocated against the running kernel (CO-RE). */
struct sk_buff___sl {
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));

static __always_inline int nat_ip_summed(struct __sk_buff *ctx)
{
	struct sk_buff___sl *skb = bpf_cast_to_kern_ctx(ctx);

	return BPF_CORE_READ_BITFIELD(skb, ip_summed);
}

/*
 * The folded sum of @p's TCP/UDP pseudo-header (addresses, protocol, L4
 * length), which is what a CHECKSUM_PARTIAL field holds: the stack writes
 * ~tcp_v4_check(len, saddr, daddr, 0) there and leaves the payload's sum
 * to the device or to skb_checksum_help(). An IPv4 address fills only the
 * first four bytes of its union (parse_pkt() zeroes the rest), so summing
 * all sixteen serves both families.
 */
static __always_inline __u16 nat_pseudo_fold(const struct pkt *p)
{
	__u32 l4_len = p->ip_len - ((p->l4_off & SL_L4_OFF_MASK) - sizeof(struct ethhdr));
	__u32 sum = bpf_htons((__u16)p->proto) + bpf_htons((__u16)l4_len);

	sum = csum_sum16((const __u16 *)&p->saddr, 8, sum);
	return csum_fold32(csum_sum16((const __u16 *)&p->daddr, 8, sum));
}

/**
 * nat_guess_summed() - whether an XDP frame's L4 field at @check is partial.
 * A partial field always equals the pseudo-header's folded sum; a full one
 * is the complement of the sum over pseudo-header and segment together,
 * and equals it once in 65536 packets by chance. Such a frame's bytes are
 * then a valid partial frame as well (summing its payload would not tell
 * them apart), and it is taken for one: on the links where the guess is
 * made, local senders' partial frames are the rule. A full one so taken
 * leaves with its port change missing from the field, and whoever checks
 * it drops it, as a corrupt segment (TCP sends it again, and a resent
 * segment's timestamp or acknowledgment gives it another sum).
 */
static __always_inline int nat_guess_summed(const struct pkt *p, const __u16 *check)
{
	return *check == nat_pseudo_fold(p) ? SL_CHECKSUM_PARTIAL : SL_CHECKSUM_NONE;
}

/*
 * The fast path: one's-complement arithmetic on the packet's own bytes,
 * keyed on ip_summed (see the top of this file).
 */
/**
 * nat_rewrite_bytes() - the rewrite on the bytes in [@data, @data_end), for
 * a packet whose L4 checksum state is @summed (SL_CHECKSUM_GUESS: read from
 * the field, nat_guess_summed()).
 * @moved_out: for a CHECKSUM_COMPLETE skb, how much the sum of the bytes
 * from the network header on changed (unfolded, to be added), which its csum
 * must follow: see the end of the function. Untouched otherwise.
 */
static __always_inline int nat_rewrite_bytes(void *data, void *data_end, const struct pkt *p,
					     bool dst, const union sl_addr *to, __be16 to_port,
					     int summed, __u32 *moved_out)
{
	__u32 l4 = p->l4_off & SL_L4_OFF_MASK;
	__u16 *check, *port;
	__u32 d_addr, d_port;

	if (p->family == AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__be32 *a;

		if ((void *)(ip + 1) > data_end)
			return -1;
		a = dst ? &ip->daddr : &ip->saddr;
		d_addr = csum_diff16((__u16 *)a, (const __u16 *)&to->v4, 2);
		*a = to->v4;
		ip->check = csum_replace_full(ip->check, d_addr);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		__u32 *a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = dst ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
		d_addr = csum_diff16((__u16 *)a, (const __u16 *)to->v6, 8);
		a[0] = to->v6[0];
		a[1] = to->v6[1];
		a[2] = to->v6[2];
		a[3] = to->v6[3];
	}

	/* TCP's checksum sits at +16, UDP's at +6. */
	if (p->proto == IPPROTO_TCP) {
		if (data + l4 + 20 > data_end)
			return -1;
		check = data + l4 + 16;
	} else {
		if (data + l4 + 8 > data_end)
			return -1;
		check = data + l4 + 6;
	}
	if (summed == SL_CHECKSUM_GUESS)
		summed = nat_guess_summed(p, check);
	port = data + l4 + (dst ? 2 : 0);
	d_port = csum_diff16(port, (const __u16 *)&to_port, 1);
	*port = to_port;

	/*
	 * What the bytes from the network header on moved by: the port's
	 * change, and an IPv6 address's (an IPv4 address is balanced by its own
	 * header checksum); a full L4 field then takes both changes back out,
	 * leaving -d_addr for IPv4 and nothing for IPv6. Only a
	 * CHECKSUM_COMPLETE skb needs this, and its field is always full.
	 */
	if (summed == SL_CHECKSUM_COMPLETE)
		*moved_out = d_port + (p->family == AF_INET6 ? d_addr : 0);
	if (p->proto == IPPROTO_UDP && *check == 0) {
		/* UDP over IPv4 without a checksum stays without one. */
	} else if (summed == SL_CHECKSUM_PARTIAL) {
		*check = csum_replace_partial(*check, d_addr);
	} else {
		__u16 c = csum_replace_full(*check, d_addr + d_port);

		*check = (p->proto == IPPROTO_UDP && c == 0) ? 0xffff : c;
		if (summed == SL_CHECKSUM_COMPLETE)
			*moved_out += (__u16)~csum_fold32(d_addr + d_port);
	}
	return 0;
}

static __always_inline int nat_rewrite_direct(struct __sk_buff *skb, const struct pkt *p, bool dst,
					      const union sl_addr *to, __be16 to_port)
{
	int summed = nat_ip_summed(skb);
	__u32 moved = 0;

	if (nat_rewrite_bytes((void *)(long)skb->data, (void *)(long)skb->data_end, p, dst, to,
			      to_port, summed, &moved))
		return -1;
	/*
	 * skb->csum is the sum of the packet from the network header: it moves
	 * as the bytes did. For a rewritten IPv6 segment that is not at all
	 * (its address and L4 field balance), so no call; 0xffff is zero too.
	 */
	if (summed == SL_CHECKSUM_COMPLETE) {
		__u16 m = csum_fold32(moved);

		if (m != 0 && m != 0xffff)
			bpf_csum_update(skb, m);
	}
	return 0;
}

/* BPF_F_MARK_MANGLED_0 keeps a UDP/IPv4 "no checksum" zero as zero. */
static __always_inline __u64 nat_l4_flags(const struct pkt *p)
{
	return p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/*
 * The helper path, for kernels without bpf_cast_to_kern_ctx(): the csum
 * helpers read ip_summed in the kernel and update the L4 field and
 * skb->csum accordingly; the bytes go in with bpf_skb_store_bytes().
 * Accordingly, but for IPv4: with BPF_F_PSEUDO_HDR, bpf_l4_csum_replace()
 * takes the address change out of a CHECKSUM_COMPLETE skb's csum, right
 * where an IPv4 header checksum balances the address bytes, wrong for IPv6,
 * where the L4 field alone does (kernels from 6.16 have BPF_F_IPV6 for
 * this; 6.1 has not). And a UDP field left 0 (BPF_F_MARK_MANGLED_0) takes
 * nothing, while the port bytes still move. bpf_csum_update(), which acts
 * on CHECKSUM_COMPLETE skbs only, puts both right.
 */
static __always_inline int nat_rewrite_helpers(struct __sk_buff *skb, const struct pkt *p, bool dst,
					       const union sl_addr *to, __be16 to_port)
{
	__u32 l4 = p->l4_off & SL_L4_OFF_MASK;
	__u32 csum_off = l4 + (p->proto == IPPROTO_TCP ? 16 : 6);
	__u32 port_off = l4 + (dst ? 2 : 0);
	const union sl_addr *from = dst ? &p->daddr : &p->saddr;
	__be16 from_port = dst ? p->dport : p->sport;
	__u64 l4f = nat_l4_flags(p);
	__u32 ip_check_off = sizeof(struct ethhdr) + offsetof(struct iphdr, check);
	__u32 addr_off, fix = 0;
	bool udp_zero = false;
	int ret;

	if (p->proto == IPPROTO_UDP) {
		__u16 check;

		if (bpf_skb_load_bytes(skb, csum_off, &check, sizeof(check)))
			return -1;
		udp_zero = check == 0;
	}

	if (p->family == AF_INET) {
		addr_off = sizeof(struct ethhdr) +
			   (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
		ret = bpf_l4_csum_replace(skb, csum_off, from->v4, to->v4,
					  l4f | BPF_F_PSEUDO_HDR | sizeof(__be32));
		if (ret)
			return ret;
		ret = bpf_l3_csum_replace(skb, ip_check_off, from->v4, to->v4, sizeof(__be32));
		if (ret)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, &to->v4, sizeof(to->v4), 0);
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)from->v6, 16, (__be32 *)to->v6, 16, 0);

		if (diff < 0)
			return (int)diff;
		addr_off = sizeof(struct ethhdr) + (dst ? offsetof(struct ipv6hdr, daddr)
							: offsetof(struct ipv6hdr, saddr));
		/* IPv6 has no header checksum: only the L4 pseudo-header moves. */
		ret = bpf_l4_csum_replace(skb, csum_off, 0, (__u32)diff, l4f | BPF_F_PSEUDO_HDR);
		if (ret)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, to->v6, 16, 0);
		/* the helper took it out of skb->csum (or, for a 0 field, never put it in) */
		fix = (__u32)diff;
	}
	if (ret)
		return ret;
	if (from_port != to_port) {
		ret = bpf_l4_csum_replace(skb, csum_off, from_port, to_port, l4f | sizeof(__be16));
		if (ret)
			return ret;
		ret = bpf_skb_store_bytes(skb, port_off, &to_port, sizeof(to_port), 0);
		if (ret)
			return ret;
		if (udp_zero)
			fix += csum_diff16(&from_port, &to_port, 1);
	}
	if (fix)
		bpf_csum_update(skb, fix);
	return 0;
}

/**
 * nat_rewrite() - replace the destination (@dst) or source address and port
 * of the packet @p describes with @to and @to_port, fixing checksums.
 * Return: 0, or non-zero when the headers are no longer where parsing saw
 * them or a helper failed (the packet may then be half rewritten: drop it).
 */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct pkt *p, bool dst,
				       const union sl_addr *to, __be16 to_port)
{
	if (have_kern_ctx)
		return nat_rewrite_direct(skb, p, dst, to, to_port);
	return nat_rewrite_helpers(skb, p, dst, to, to_port);
}

static __always_inline int nat_dnat(struct __sk_buff *skb, const struct pkt *p,
				    const union sl_addr *to, __be16 to_port)
{
	return nat_rewrite(skb, p, true, to, to_port);
}

/*
 * XDP: there is no skb to keep in step, and the field's state is full
 * unless the agent marked this frame's interface (top of this file).
 */
static __always_inline int nat_dnat_xdp(struct xdp_md *ctx, const struct pkt *p,
					const union sl_addr *to, __be16 to_port)
{
	__u32 moved;

	return nat_rewrite_bytes((void *)(long)ctx->data, (void *)(long)ctx->data_end, p, true, to,
				 to_port,
				 nat_xdp_may_be_partial(ctx) ? SL_CHECKSUM_GUESS : SL_CHECKSUM_NONE,
				 &moved);
}

static __always_inline int nat_snat(struct __sk_buff *skb, const struct pkt *p,
				    const union sl_addr *to, __be16 to_port)
{
	return nat_rewrite(skb, p, false, to, to_port);
}

#endif /* SLUICE_BPF_NAT_H */
