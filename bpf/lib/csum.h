/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One's-complement checksum arithmetic for in-place rewrites (RFC 1624),
 * done in BPF rather than through the csum helpers: on a machine with
 * return-thunk mitigations every helper call costs tens of nanoseconds, and
 * a DNAT would take five of them. All values stay in network byte order;
 * the arithmetic does not care which order as long as it is one order.
 */
#ifndef SLUICE_BPF_CSUM_H
#define SLUICE_BPF_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The change of a sum when 16-bit words @from become @to: ~from + to, per word. */
static __always_inline __u32 csum_diff16(const __u16 *from, const __u16 *to, int words)
{
	__u32 d = 0;
	int i;

#pragma unroll
	for (i = 0; i < words; i++)
		d += (__u16)~from[i] + (__u32)to[i];
	return d;
}

/* @sum plus the 16-bit words at @p, unfolded. */
static __always_inline __u32 csum_sum16(const __u16 *p, int words, __u32 sum)
{
	int i;

#pragma unroll
	for (i = 0; i < words; i++)
		sum += p[i];
	return sum;
}

/* A checksum field that holds ~sum (IP header, TCP/UDP when complete). */
static __always_inline __u16 csum_replace_full(__u16 check, __u32 diff)
{
	return ~csum_fold32((__u16)~check + csum_fold32(diff));
}

/*
 * A CHECKSUM_PARTIAL L4 field: it holds the folded pseudo-header sum, not
 * its complement; the device (or the stack) finishes it over the payload.
 */
static __always_inline __u16 csum_replace_partial(__u16 check, __u32 diff)
{
	return csum_fold32((__u32)check + csum_fold32(diff));
}

#endif /* SLUICE_BPF_CSUM_H */
