/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The latency histogram's bucket arithmetic (see struct sl_latency_hist),
 * shared by the datapath, which files a duration, and user space, which
 * turns buckets back into durations for quantiles. Integer code only: BPF
 * has no count-leading-zeros instruction, so the exponent is found by a
 * branch-free binary search.
 */
#ifndef SLUICE_LATENCY_H
#define SLUICE_LATENCY_H

#include <linux/types.h>

#include "sluice/datapath.h"

static inline __attribute__((always_inline)) __u32 sl_log2_u64(__u64 v)
{
	__u32 r = 0, s;

	s = (v > 0xffffffffULL) << 5, v >>= s, r |= s;
	s = (v > 0xffff) << 4, v >>= s, r |= s;
	s = (v > 0xff) << 3, v >>= s, r |= s;
	s = (v > 0xf) << 2, v >>= s, r |= s;
	s = (v > 0x3) << 1, v >>= s, r |= s;
	r |= (__u32)(v >> 1);
	return r;
}

/** sl_lat_bucket() - the bucket of a duration in nanoseconds. */
static inline __attribute__((always_inline)) __u32 sl_lat_bucket(__u64 ns)
{
	__u32 e, sub;

	if (ns < (1ULL << SL_LAT_MIN_EXP))
		return 0;
	e = sl_log2_u64(ns);
	if (e > SL_LAT_MAX_EXP)
		return SL_LAT_BUCKETS - 1;
	sub = (__u32)(ns >> (e - SL_LAT_SUB_BITS)) & (SL_LAT_SUB - 1);
	return 1 + (e - SL_LAT_MIN_EXP) * SL_LAT_SUB + sub;
}

/** sl_lat_lower_ns() - the smallest duration bucket @b holds. */
static inline __u64 sl_lat_lower_ns(__u32 b)
{
	__u32 e, sub;

	if (b == 0)
		return 0;
	if (b >= SL_LAT_BUCKETS - 1)
		return 1ULL << (SL_LAT_MAX_EXP + 1);
	e = SL_LAT_MIN_EXP + (b - 1) / SL_LAT_SUB;
	sub = (b - 1) % SL_LAT_SUB;
	return (1ULL << e) + ((__u64)sub << (e - SL_LAT_SUB_BITS));
}

/** sl_lat_upper_ns() - the first duration past bucket @b. */
static inline __u64 sl_lat_upper_ns(__u32 b)
{
	if (b >= SL_LAT_BUCKETS - 1)
		return ~0ULL;
	return sl_lat_lower_ns(b + 1);
}

#endif /* SLUICE_LATENCY_H */
