/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A TCP RST sent back to the client in place of its packet, for flows a
 * rollback's reset moved off the canary. Steering such a packet to primary
 * instead and counting on primary's kernel to answer RST fails when primary
 * still holds a TIME_WAIT socket for the same addresses and ports: it
 * answers with an ACK, and the client's request hangs. Answered here, the
 * client learns at once, whatever any pod holds, and reconnects (to primary).
 *
 * The reset follows RFC 793: to a segment with ACK, seq = SEG.ACK and no
 * ACK; otherwise seq 0 and ACK = SEG.SEQ + SEG.LEN. Only plain headers are
 * answered this way (IPv4 without options, IPv6 without extension headers);
 * for the rest the caller steers the packet anew as before.
 */
#ifndef SLUICE_BPF_RST_H
#define SLUICE_BPF_RST_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/csum.h"
#include "lib/nat.h"
#include "lib/parse.h"

#define RST_V4_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define RST_V6_LEN (ETH_HLEN + sizeof(struct ipv6hdr) + sizeof(struct tcphdr))

/*
 * Turn the TCP header into the reset and checksum it over @pseudo: whole, or
 * for a CHECKSUM_PARTIAL skb (@partial) the folded pseudo-header sum the
 * stack or the device finishes, as nat.h explains.
 */
static __always_inline void rst_fill_tcp(struct tcphdr *tcp, __u32 seq, __u32 ack, bool with_ack,
					 __u32 pseudo, bool partial)
{
	__be16 port = tcp->source;

	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->seq = bpf_htonl(seq);
	tcp->ack_seq = bpf_htonl(ack);
	((__u8 *)tcp)[12] = 5 << 4; /* no options */
	((__u8 *)tcp)[13] = SL_TCP_RST | (with_ack ? SL_TCP_ACK : 0);
	tcp->window = 0;
	tcp->urg_ptr = 0;
	tcp->check = 0;
	if (partial)
		tcp->check = csum_fold32(pseudo);
	else
		tcp->check = ~csum_fold32(csum_sum16((const __u16 *)tcp, sizeof(*tcp) / 2, pseudo));
}

/**
 * rst_to_client() - rewrite @skb, a TCP segment from the client described by
 * @p (its destination still the VIP), into a reset from the VIP to the
 * client, for the caller to send back out the device it came in on. Out of
 * line (a BPF subprogram): it runs once per reset flow, not per packet.
 * Return: true when @skb is now that reset; false when the headers are not
 * plain, the kernel cannot tell the skb's checksum state (before 6.3, see
 * nat.h), or the packet could not be trimmed (@skb is then unchanged).
 */
static __noinline bool rst_to_client(struct __sk_buff *skb, const struct pkt *p)
{
	bool v4 = p->family == AF_INET, with_ack = !(p->tcp_flags & SL_TCP_ACK);
	__u32 want = v4 ? RST_V4_LEN : RST_V6_LEN, seq = 0, ack = 0, pseudo;
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	__u8 mac[ETH_ALEN];
	struct ethhdr *eth;
	struct tcphdr *tcp;
	bool partial;

	if (!have_kern_ctx || p->l4_off != want - sizeof(struct tcphdr))
		return false;
	tcp = data + want - sizeof(struct tcphdr);
	if ((void *)(tcp + 1) > data_end)
		return false;
	if (with_ack)
		ack = p->seq + p->payload_len + !!(p->tcp_flags & SL_TCP_SYN) +
		      !!(p->tcp_flags & SL_TCP_FIN);
	else
		seq = bpf_ntohl(tcp->ack_seq);
	if (skb->len != want && bpf_skb_change_tail(skb, want, 0))
		return false;

	partial = nat_ip_summed(skb) == SL_CHECKSUM_PARTIAL;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if (data + want > data_end)
		return false;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	if (v4) {
		struct iphdr *ip = (void *)(eth + 1);
		__be32 a = ip->saddr;

		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tos = 0;
		ip->tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(struct tcphdr));
		ip->id = 0;
		ip->frag_off = 0;
		ip->ttl = 64;
		ip->check = 0;
		ip->check = ~csum_fold32(csum_sum16((const __u16 *)ip, sizeof(*ip) / 2, 0));
		pseudo = csum_sum16((const __u16 *)&ip->saddr, 4,
				   bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(struct tcphdr)));
		rst_fill_tcp((void *)(ip + 1), seq, ack, with_ack, pseudo, partial);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct in6_addr a = ip6->saddr;

		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons(sizeof(struct tcphdr));
		ip6->hop_limit = 64;
		pseudo = csum_sum16((const __u16 *)&ip6->saddr, 16,
				   bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(struct tcphdr)));
		rst_fill_tcp((void *)(ip6 + 1), seq, ack, with_ack, pseudo, partial);
	}
	/* a checksum a NIC vouched for was the old packet's: this one is checked afresh */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	return true;
}

#endif /* SLUICE_BPF_RST_H */
