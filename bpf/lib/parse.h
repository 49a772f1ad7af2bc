/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing for the steering programs: Ethernet, IPv4 (options
 * included), IPv6 (hop-by-hop and destination options skipped), TCP and UDP.
 * Parsing only reads; it never decides. Anything it cannot make sense of is
 * reported as "not steerable" and the caller hands the packet on untouched,
 * because a packet sluice does not understand is, by definition, not ours.
 */
#ifndef SLUICE_BPF_PARSE_H
#define SLUICE_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice/datapath.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/*
 * Where the L4 header may start at the latest. Beyond it the packet is left
 * alone; the bound also lets the verifier accept rewrites at that offset.
 */
#define SL_L4_OFF_MAX 254
#define SL_L4_OFF_MASK 0xff

/* IPv6 extension headers walked before giving up (hop-by-hop, dest opts). */
#define SL_MAX_EXT_HDRS 4

/* TCP flags as they sit in byte 13 of the header. */
#define SL_TCP_FIN 0x01
#define SL_TCP_SYN 0x02
#define SL_TCP_RST 0x04
#define SL_TCP_ACK 0x10

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_OURS, /* not IP, not TCP/UDP: nothing to steer */
	PARSE_FRAGMENT, /* an IP fragment: the ports are not all there */
	PARSE_UNSTEERABLE, /* headers we refuse to rewrite behind (IPv6 routing, AH) */
	PARSE_MALFORMED, /* headers inconsistent with the packet's length */
	PARSE_SHORT, /* headers beyond the linear data: pull and retry */
};

/* What the steering needs to know about one packet, with offsets for rewrites. */
struct pkt {
	union sl_addr saddr;
	union sl_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 tcp_flags;
	__u8 pad;
	__u32 l4_off; /* the L3 header is always right after Ethernet */
	__u32 len; /* skb->len, for byte counters */
	__u32 payload_off; /* TCP: where the payload starts */
	__u32 payload_len; /* TCP: payload bytes, by the IP lengths (not the frame's padding) */
	__u32 seq; /* TCP: sequence number, host order */
	__u32 ip_len; /* IP packet length from the header, for payload_len */
};

static __always_inline int parse_ipv6_ext(void *data, void *data_end, __u32 *off, __u8 *nexthdr)
{
	int i;

#pragma unroll
	for (i = 0; i < SL_MAX_EXT_HDRS; i++) {
		struct ipv6_opt_hdr *opt;

		switch (*nexthdr) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
			return PARSE_OK;
		case IPPROTO_HOPOPTS:
		case IPPROTO_DSTOPTS:
			opt = data + *off;
			if ((void *)(opt + 1) > data_end)
				return PARSE_SHORT;
			*nexthdr = opt->nexthdr;
			*off += ((__u32)opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			return PARSE_FRAGMENT;
		case IPPROTO_ROUTING:
		case IPPROTO_AH:
		case IPPROTO_ESP:
			/*
			 * A routing header moves the destination the L4 checksum
			 * covers, and AH/ESP protect what we would rewrite.
			 */
			return PARSE_UNSTEERABLE;
		default:
			return PARSE_NOT_OURS;
		}
	}
	return PARSE_UNSTEERABLE;
}

/**
 * parse_pkt() - fill @p from the packet in [@data, @data_end).
 * @tot_len: skb->len, to check the IP lengths against what arrived.
 */
static __always_inline int parse_pkt(void *data, void *data_end, __u32 tot_len, struct pkt *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth), ip_len;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return tot_len < sizeof(*eth) ? PARSE_NOT_OURS : PARSE_SHORT;

	p->len = tot_len;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return tot_len < off + sizeof(*ip) ? PARSE_MALFORMED : PARSE_SHORT;
		ihl = ip->ihl * 4;
		ip_len = bpf_ntohs(ip->tot_len);
		/*
		 * BIG TCP (gso_ipv4_max_size raised): an aggregate over 64 KiB has
		 * 0 there and is as long as the skb, as the kernel's iph_totlen()
		 * reads it. Only a GSO skb can be that long; XDP's linear frames
		 * never are.
		 */
		if (__builtin_expect(ip_len == 0, 0) && ip->protocol == IPPROTO_TCP &&
		    tot_len - off > 0xffff)
			ip_len = tot_len - off;
		if (ip->version != 4 || ihl < sizeof(*ip) || ip_len < ihl || off + ip_len > tot_len)
			return PARSE_MALFORMED;
		p->ip_len = ip_len;
		proto = ip->protocol;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return PARSE_NOT_OURS;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return PARSE_FRAGMENT;
		p->family = AF_INET;
		p->saddr.v6[1] = p->saddr.v6[2] = p->saddr.v6[3] = 0;
		p->daddr.v6[1] = p->daddr.v6[2] = p->daddr.v6[3] = 0;
		p->saddr.v4 = ip->saddr;
		p->daddr.v4 = ip->daddr;
		off += ihl;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		int ret;

		if ((void *)(ip6 + 1) > data_end)
			return tot_len < off + sizeof(*ip6) ? PARSE_MALFORMED : PARSE_SHORT;
		ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		/* BIG TCP for IPv6 (gso_max_size raised): the same, payload_len 0 */
		if (__builtin_expect(ip6->payload_len == 0, 0) &&
		    tot_len - off > sizeof(*ip6) + 0xffff)
			ip_len = tot_len - off;
		if (ip6->version != 6 || off + ip_len > tot_len)
			return PARSE_MALFORMED;
		p->ip_len = ip_len;
		proto = ip6->nexthdr;
		p->family = AF_INET6;
		__builtin_memcpy(&p->saddr, &ip6->saddr, sizeof(p->saddr));
		__builtin_memcpy(&p->daddr, &ip6->daddr, sizeof(p->daddr));
		off += sizeof(*ip6);
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
			ret = parse_ipv6_ext(data, data_end, &off, &proto);
			if (ret != PARSE_OK)
				return ret;
		}
	} else {
		return PARSE_NOT_OURS;
	}

	if (off > SL_L4_OFF_MAX)
		return PARSE_UNSTEERABLE;
	p->proto = proto;
	p->l4_off = off;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = data + off;

		if ((void *)(tcp + 1) > data_end)
			return tot_len < off + sizeof(*tcp) ? PARSE_MALFORMED : PARSE_SHORT;
		if (tcp->doff < 5)
			return PARSE_MALFORMED;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->seq = bpf_ntohl(tcp->seq);
		p->payload_off = off + tcp->doff * 4;
		/*
		 * The IP length must cover the TCP header: rewriting ports and a
		 * checksum that lie past the packet's declared end would change
		 * bytes that are not part of it. (off counts Ethernet, ip_len not.)
		 */
		if (p->ip_len + sizeof(*eth) < p->payload_off)
			return PARSE_MALFORMED;
		p->payload_len = p->ip_len + sizeof(*eth) - p->payload_off;
	} else {
		struct udphdr *udp = data + off;

		if ((void *)(udp + 1) > data_end)
			return tot_len < off + sizeof(*udp) ? PARSE_MALFORMED : PARSE_SHORT;
		if (p->ip_len + sizeof(*eth) < off + sizeof(*udp))
			return PARSE_MALFORMED; /* as for TCP: the header past the packet's end */
		p->sport = udp->source;
		p->dport = udp->dest;
		p->tcp_flags = 0;
		p->payload_len = 0; /* UDP payloads are not looked at */
	}
	return PARSE_OK;
}

#endif /* SLUICE_BPF_PARSE_H */
