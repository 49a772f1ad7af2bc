/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about steered flows, on their way back to the client. When a
 * DNATed packet is too big for a hop between the node and the pod, the
 * router says so to the client in an ICMP error that quotes the packet as
 * it was after the DNAT (client -> pod IP:port). The client's socket knows
 * only the VIP, so without help it ignores the error and path MTU discovery
 * breaks. This puts the VIP and its port back into the quoted headers and
 * fixes every checksum that covers them.
 */
#ifndef SLUICE_BPF_ICMP_H
#define SLUICE_BPF_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/csum.h"
#include "lib/ct.h"
#include "lib/maps.h"

/* ICMP and ICMPv6 share this header shape; linux/icmp.h would pull in libc. */
struct sl_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest;
};

#define IPPROTO_ICMPV6_ 58
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3

/*
 * Rewrite the quoted packet's destination (@qdst, the pod) and destination
 * port (@qport) to the VIP the client used, and return the checksum change
 * the enclosing ICMP message takes. @qcheck: the quoted L4 checksum, when
 * the quote includes it (else NULL); @iph_check: the quoted IPv4 header's.
 */
static __always_inline __u32 icmp_fix_quote(__u16 *qdst, int words, __u16 *qport, __u16 *qcheck,
					     __u16 *iph_check, const union sl_addr *vip,
					     const __be16 *vip_port, bool udp)
{
	__u32 d_addr = csum_diff16(qdst, (const __u16 *)vip, words);
	__u32 d_port = csum_diff16(qport, (const __u16 *)vip_port, 1);
	__u32 d_msg = d_addr + d_port;
	int i;

#pragma unroll
	for (i = 0; i < 8; i++)
		if (i < words)
			qdst[i] = ((const __u16 *)vip)[i];
	*qport = *vip_port;
	if (iph_check) {
		__u16 old = *iph_check;

		*iph_check = csum_replace_full(old, d_addr);
		d_msg += csum_diff16(&old, iph_check, 1);
	}
	if (qcheck && !(udp && *qcheck == 0)) {
		__u16 old = *qcheck;

		*qcheck = csum_replace_full(old, d_addr + d_port);
		d_msg += csum_diff16(&old, qcheck, 1);
	}
	return d_msg;
}

/**
 * icmp_reverse() - translate an ICMP error about a steered flow.
 * Out of line (a BPF subprogram): rare, and inlined it would spread the
 * reply path's hot instructions over more cache lines.
 * Return: true when the packet was one and was rewritten.
 */
static __noinline bool icmp_reverse(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	union sl_addr vip;
	__be16 vip_port;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1), *q;
		struct sl_icmphdr *ic;
		union sl_addr pod, client;
		__u16 *ports, *qcheck = NULL;
		__u32 ihl, qihl;

		/* an ICMP error is a single small datagram: a fragment is something else */
		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_ICMP || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return false;
		ihl = 20;
		ic = (void *)ip + ihl;
		if ((void *)(ic + 1) > data_end ||
		    (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED))
			return false;
		q = (void *)(ic + 1);
		if ((void *)(q + 1) > data_end || q->version != 4 ||
		    (q->protocol != IPPROTO_TCP && q->protocol != IPPROTO_UDP))
			return false;
		qihl = q->ihl * 4;
		if (qihl < 20 || qihl > 60)
			return false;
		ports = (void *)q + qihl;
		if ((void *)(ports + 2) > data_end)
			return false;
		/* a union's initializer need not clear past its first member */
		__builtin_memset(&pod, 0, sizeof(pod));
		__builtin_memset(&client, 0, sizeof(client));
		pod.v4 = q->daddr;
		client.v4 = q->saddr;
		/* the quoted packet went client -> pod: its flow, as a reply would find it */
		if (!ct_lookup_reply(&pod, ports[1], &client, ports[0], q->protocol, AF_INET, false,
				     &vip, &vip_port))
			return false;
		/* the quoted L4 checksum, if the quote reaches it */
		if (q->protocol == IPPROTO_TCP && (void *)ports + 18 <= data_end)
			qcheck = (void *)ports + 16;
		else if (q->protocol == IPPROTO_UDP && (void *)ports + 8 <= data_end)
			qcheck = (void *)ports + 6;
		ic->checksum = csum_replace_full(
			ic->checksum, icmp_fix_quote((__u16 *)&q->daddr, 2, &ports[1], qcheck,
						     &q->check, &vip, &vip_port,
						     q->protocol == IPPROTO_UDP));
		return true;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1), *q;
		struct sl_icmphdr *ic;
		union sl_addr pod, client;
		__u16 *ports, *qcheck = NULL;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6_)
			return false;
		ic = (void *)(ip6 + 1);
		if ((void *)(ic + 1) > data_end ||
		    (ic->type != ICMPV6_DEST_UNREACH && ic->type != ICMPV6_PKT_TOOBIG &&
		     ic->type != ICMPV6_TIME_EXCEED))
			return false;
		q = (void *)(ic + 1);
		if ((void *)(q + 1) > data_end || q->version != 6 ||
		    (q->nexthdr != IPPROTO_TCP && q->nexthdr != IPPROTO_UDP))
			return false;
		ports = (void *)(q + 1);
		if ((void *)(ports + 2) > data_end)
			return false;
		__builtin_memcpy(&pod, &q->daddr, sizeof(pod));
		__builtin_memcpy(&client, &q->saddr, sizeof(client));
		if (!ct_lookup_reply(&pod, ports[1], &client, ports[0], q->nexthdr, AF_INET6, false,
				     &vip, &vip_port))
			return false;
		if (q->nexthdr == IPPROTO_TCP && (void *)ports + 18 <= data_end)
			qcheck = (void *)ports + 16;
		else if (q->nexthdr == IPPROTO_UDP && (void *)ports + 8 <= data_end)
			qcheck = (void *)ports + 6;
		/* ICMPv6's pseudo-header holds the outer addresses, which stay */
		ic->checksum = csum_replace_full(
			ic->checksum, icmp_fix_quote((__u16 *)&q->daddr, 8, &ports[1], qcheck, NULL,
						     &vip, &vip_port, q->nexthdr == IPPROTO_UDP));
		return true;
	}
	return false;
}

#endif /* SLUICE_BPF_ICMP_H */
