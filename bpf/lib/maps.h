/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps every sluice program shares. Defined once here so the TC programs
 * (and the XDP forward half) see the same pinned instances: each is pinned by
 * name under the loader's pin root, so a restarted agent adopts them with the
 * flows and counters they hold.
 */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath.h"
#include "sluice/hash.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, struct sl_service_key);
	__type(value, struct sl_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES * SL_SLOT_BANKS * SL_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32); /* backend id */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_slots SEC(".maps");

/* For people and the CLI only; see struct sl_service_meta. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sl_service_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_backends SEC(".maps");

/* The latency sampling k of each service (datapath.h); read at every request head. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_sampling SEC(".maps");

/* One entry per flow; the loader sizes it (--ct-flows). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct sl_ct_key);
	__type(value, struct sl_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_REVNAT);
	__type(key, struct sl_revnat_key);
	__type(value, struct sl_revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_MAX_COHORTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_cohort_key);
	__type(value, __u8); /* enum sl_version */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_cohorts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_backend_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_latency_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_DP_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_dp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_agent_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_agent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_FILTERS);
	__type(key, __u32);
	__type(value, struct sl_filter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_filter SEC(".maps");

static __always_inline void dp_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&sl_dp_stats, &counter);

	if (v)
		*v += 1;
}

/* May this address and port be sluice's? A clear bit means surely not. */
static __always_inline bool filter_hit(__u32 kind, const union sl_addr *a, __be16 port)
{
	struct sl_filter *f = bpf_map_lookup_elem(&sl_filter, &kind);
	__u32 bit = sl_filter_bit(a, port);

	return f && ((f->words[bit / 64] >> (bit % 64)) & 1);
}

#endif /* SLUICE_BPF_MAPS_H */
