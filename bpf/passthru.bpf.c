// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's baseline: a TC program that does nothing. `make bench`
 * runs it beside the steering programs in the same run, so the datapath's
 * cost is a difference of two measurements on the same machine and moment.
 * The agent never loads it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int sl_tc_passthru(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}
