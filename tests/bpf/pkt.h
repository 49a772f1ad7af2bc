/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Crafted packets for the BPF fixture tests and the benchmark: Ethernet,
 * IPv4 (with options) or IPv6 (with extension headers), TCP or UDP, all
 * checksums computed from scratch here. An expected output packet is built
 * the same way with the rewritten addresses, so comparing bytes checks every
 * rewritten field and both checksums by recomputation.
 */
#ifndef SLUICE_TESTS_PKT_H
#define SLUICE_TESTS_PKT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

enum pkt_v6_ext {
	PKT_EXT_NONE,
	PKT_EXT_HOPOPTS, /* hop-by-hop options, 8 bytes */
	PKT_EXT_DSTOPTS_2, /* hop-by-hop then destination options */
	PKT_EXT_ROUTING, /* routing header: sluice must not rewrite behind it */
	PKT_EXT_FRAGMENT, /* fragment header */
};

struct pkt_desc {
	const char *src, *dst; /* IPv4 or IPv6 literals, one family */
	uint16_t sport, dport;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP (or another, raw) */
	uint8_t tcp_flags;
	int ip_opts; /* IPv4 option bytes, multiple of 4 */
	enum pkt_v6_ext ext;
	bool v4_more_frags;
	uint16_t v4_frag_off; /* in 8-byte units */
	bool udp_no_csum;
	bool partial_csum; /* L4 field: the folded pseudo-header sum, as a CHECKSUM_PARTIAL skb's */
	int payload; /* bytes of payload after the L4 header */
	const char *data; /* the payload's text; its length when payload is 0 */
	uint32_t seq; /* TCP sequence number; 0x01020304 when 0 */
	uint32_t ack; /* TCP acknowledgment number */
};

#define PKT_MAX 2048

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

static inline uint32_t pkt_sum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline int pkt_family(const char *addr)
{
	return strchr(addr, ':') ? AF_INET6 : AF_INET;
}

/**
 * pkt_build() - write the packet @d describes into @buf.
 * Return: its length in bytes.
 */
static inline size_t pkt_build(uint8_t *buf, const struct pkt_desc *d)
{
	int family = pkt_family(d->src);
	size_t off = 14, l3 = 14, l4, l4_len, hdr_len;
	uint8_t src[16] = { 0 }, dst[16] = { 0 };
	uint8_t nexthdr;
	uint32_t sum;

	memset(buf, 0, PKT_MAX);
	/* MACs: 02:00:00:00:00:01 -> 02:00:00:00:00:02, locally administered */
	buf[0] = 0x02, buf[5] = 0x02, buf[6] = 0x02, buf[11] = 0x01;
	pkt_put16(buf + 12, family == AF_INET ? ETH_P_IP : ETH_P_IPV6);
	inet_pton(family, d->src, src);
	inet_pton(family, d->dst, dst);

	int payload = d->payload ? d->payload : d->data ? (int)strlen(d->data) : 0;

	hdr_len = d->proto == IPPROTO_TCP ? 20 : 8;
	l4_len = hdr_len + payload;
	if (family == AF_INET) {
		size_t ihl = 20 + d->ip_opts;

		buf[l3] = 0x40 | (ihl / 4);
		pkt_put16(buf + l3 + 2, ihl + l4_len);
		pkt_put16(buf + l3 + 4, 0x1234);
		pkt_put16(buf + l3 + 6, (d->v4_more_frags ? 0x2000 : 0) | d->v4_frag_off);
		buf[l3 + 8] = 64;
		buf[l3 + 9] = d->proto;
		memcpy(buf + l3 + 12, src, 4);
		memcpy(buf + l3 + 16, dst, 4);
		for (int i = 0; i < d->ip_opts; i++)
			buf[l3 + 20 + i] = 0x01; /* NOP options */
		pkt_put16(buf + l3 + 10, pkt_fold(pkt_sum(buf + l3, ihl, 0)));
		off = l3 + ihl;
	} else {
		size_t ext_len = 0;

		buf[l3] = 0x60;
		buf[l3 + 7] = 64;
		memcpy(buf + l3 + 8, src, 16);
		memcpy(buf + l3 + 24, dst, 16);
		off = l3 + 40;
		nexthdr = d->proto;
		switch (d->ext) {
		case PKT_EXT_NONE:
			break;
		case PKT_EXT_HOPOPTS:
			buf[l3 + 6] = IPPROTO_HOPOPTS;
			buf[off] = d->proto, buf[off + 1] = 0, buf[off + 2] = 1; /* PadN */
			buf[off + 3] = 4;
			ext_len = 8;
			break;
		case PKT_EXT_DSTOPTS_2:
			buf[l3 + 6] = IPPROTO_HOPOPTS;
			buf[off] = IPPROTO_DSTOPTS, buf[off + 2] = 1, buf[off + 3] = 4;
			buf[off + 8] = d->proto, buf[off + 9] = 1; /* 16 bytes */
			buf[off + 10] = 1, buf[off + 11] = 12;
			ext_len = 24;
			break;
		case PKT_EXT_ROUTING:
			buf[l3 + 6] = IPPROTO_ROUTING;
			buf[off] = d->proto, buf[off + 1] = 0, buf[off + 2] = 0; /* segments left 0 */
			ext_len = 8;
			break;
		case PKT_EXT_FRAGMENT:
			buf[l3 + 6] = IPPROTO_FRAGMENT;
			buf[off] = d->proto;
			buf[off + 3] = 1; /* offset 0, more fragments */
			buf[off + 7] = 0x42;
			ext_len = 8;
			break;
		}
		if (d->ext == PKT_EXT_NONE)
			buf[l3 + 6] = nexthdr;
		off += ext_len;
		pkt_put16(buf + l3 + 4, ext_len + l4_len);
	}

	l4 = off;
	pkt_put16(buf + l4, d->sport);
	pkt_put16(buf + l4 + 2, d->dport);
	for (int i = 0; i < payload; i++)
		buf[l4 + hdr_len + i] = d->data ? d->data[i] : 'a' + i % 26;
	if (d->proto == IPPROTO_TCP) {
		uint32_t seq = d->seq ? d->seq : 0x01020304;

		pkt_put16(buf + l4 + 4, seq >> 16), pkt_put16(buf + l4 + 6, seq & 0xffff);
		pkt_put16(buf + l4 + 8, d->ack >> 16), pkt_put16(buf + l4 + 10, d->ack & 0xffff);
		buf[l4 + 12] = 5 << 4;
		buf[l4 + 13] = d->tcp_flags;
		pkt_put16(buf + l4 + 14, 64240);
	} else if (d->proto == IPPROTO_UDP) {
		pkt_put16(buf + l4 + 4, l4_len);
	}

	/* L4 checksum over the pseudo-header, computed from scratch. */
	if (d->proto == IPPROTO_TCP || d->proto == IPPROTO_UDP) {
		size_t alen = family == AF_INET ? 4 : 16;
		size_t csum_at = l4 + (d->proto == IPPROTO_TCP ? 16 : 6);
		uint16_t c;

		sum = pkt_sum(src, alen, 0);
		sum = pkt_sum(dst, alen, sum);
		sum += d->proto + (uint32_t)l4_len;
		if (d->partial_csum) {
			/* what the stack leaves for the device: no payload, not complemented */
			pkt_put16(buf + csum_at, (uint16_t)~pkt_fold(sum));
			return l4 + l4_len;
		}
		sum = pkt_sum(buf + l4, l4_len, sum);
		c = pkt_fold(sum);
		if (d->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		if (d->proto == IPPROTO_UDP && d->udp_no_csum && family == AF_INET)
			c = 0;
		pkt_put16(buf + csum_at, c);
	}
	return l4 + l4_len;
}

#endif /* SLUICE_TESTS_PKT_H */
