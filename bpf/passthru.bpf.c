// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's reference programs, never loaded by the agent:
 * - sl_tc_passthru does nothing: the steering programs' cost is their time
 *   minus its time in the same round;
 * - sl_tc_ct_lookup and sl_tc_ct_update do exactly one lookup, or one
 *   update, in an LRU hash with conntrack's key and value: the floor under
 *   any conntrack-based path on the machine at hand, so `make bench` can say
 *   how much of a path is sluice's logic and how much the map's own price.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sl_ct_key);
	__type(value, struct sl_ct_entry);
} ref_ct SEC(".maps");

SEC("tc")
int sl_tc_passthru(struct __sk_buff *skb)
{
	(void)skb;
	return SL_TC_PASS;
}

/* The XDP baseline: the XDP rows are measured against it. */
SEC("xdp")
int sl_xdp_passthru(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

SEC("tc")
int sl_tc_ct_lookup(struct __sk_buff *skb)
{
	struct sl_ct_key key = { .proto = 6, .family = 2 };

	key.saddr.v4 = skb->len; /* the same key every time: one hit */
	return bpf_map_lookup_elem(&ref_ct, &key) ? SL_TC_PASS : TC_ACT_SHOT;
}

SEC("tc")
int sl_tc_ct_update(struct __sk_buff *skb)
{
	struct sl_ct_key key = { .proto = 6, .family = 2 };
	struct sl_ct_entry val = { .backend_id = 1 };

	key.saddr.v4 = skb->len;
	return bpf_map_update_elem(&ref_ct, &key, &val, BPF_ANY) ? TC_ACT_SHOT : SL_TC_PASS;
}
