/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The client hash behind `client` affinity, shared by the datapath and user
 * space so the CLI and the tests can tell which bucket a client falls in
 * without asking the kernel. Pure integer code: builds for BPF and for the
 * host alike.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <linux/types.h>

#include "sluice/datapath.h"

static inline __attribute__((always_inline)) __u32 sl_mix32(__u32 h)
{
	/* murmur3's finalizer: every input bit moves every output bit. */
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/**
 * sl_hash_addr() - a stable hash of a client address under a rollout's seed.
 * The same address and seed give the same value on every node and kernel,
 * so a client's bucket does not depend on where its packets land.
 */
static inline __attribute__((always_inline)) __u32 sl_hash_addr(const union sl_addr *a,
								__u32 seed)
{
	__u32 h = seed;

	h = sl_mix32(h ^ a->v6[0]);
	h = sl_mix32(h ^ a->v6[1]);
	h = sl_mix32(h ^ a->v6[2]);
	h = sl_mix32(h ^ a->v6[3]);
	return h;
}

/* The bucket in [0, SL_BUCKETS) a client falls in: canary when < weight. */
static inline __attribute__((always_inline)) __u32 sl_client_bucket(__u32 client_hash)
{
	return client_hash % SL_BUCKETS;
}

/* Which backend of a version a client sticks to, independent of its bucket. */
static inline __attribute__((always_inline)) __u32 sl_client_slot(__u32 client_hash, __u32 count)
{
	return sl_mix32(client_hash ^ 0x5bd1e995) % count;
}

/* The sl_filter bit of an address and port (see struct sl_filter). */
static inline __attribute__((always_inline)) __u32 sl_filter_bit(const union sl_addr *a,
								 __be16 port)
{
	__u32 h = sl_mix32(a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3]);

	return sl_mix32(h ^ port) % SL_FILTER_BITS;
}

#endif /* SLUICE_HASH_H */
