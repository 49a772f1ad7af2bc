/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The steering decision for a new flow: which version (canary weight,
 * client buckets, cohorts), then which backend within that version.
 * Established flows never come here; conntrack answers for them.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/parse.h"
#include "sluice/hash.h"

static __always_inline struct sl_service *lb_lookup_service(const struct pkt *p)
{
	struct sl_service_key key = {
		.port = p->dport,
		.proto = p->proto,
		.family = p->family,
	};

	__builtin_memcpy(&key.vip, &p->daddr, sizeof(key.vip));
	return bpf_map_lookup_elem(&sl_services, &key);
}

/* A cohort pins a client network to one version whatever the weight. */
static __always_inline int lb_cohort(const struct sl_service *svc, const struct pkt *p)
{
	struct sl_cohort_key key = {
		.prefixlen = SL_COHORT_PREFIX_BASE + (p->family == AF_INET ? 32 : 128),
		.svc_id = bpf_htonl(svc->id),
		.family = bpf_htonl(p->family),
	};
	__u8 *version;

	__builtin_memcpy(&key.addr, &p->saddr, sizeof(key.addr));
	version = bpf_map_lookup_elem(&sl_cohorts, &key);
	return version ? *version : SL_VERSION_NONE;
}

/*
 * Connection affinity draws one random number per new flow and takes the
 * version from its low part (mod SL_BUCKETS) and the backend from the rest
 * (over 400,000 values, ample for SL_MAX_SLOTS): one helper call, not two.
 */

/**
 * lb_pick_version() - primary or canary for a new flow from @p's client.
 * Weight 0 never picks the canary and SL_WEIGHT_MAX always does, in both
 * affinity modes: the comparison is "bucket < weight" with buckets in
 * [0, SL_BUCKETS).
 */
/* Is the agent silent for longer than the fail-safe allows? */
static __always_inline bool lb_agent_silent(__u64 now)
{
	__u32 zero = 0;
	struct sl_agent_state *a = bpf_map_lookup_elem(&sl_agent, &zero);

	/* signed: a heartbeat written after @now was read is not silence */
	return a && a->failsafe_after_ns &&
	       (__s64)(now - a->heartbeat_ns) > (__s64)a->failsafe_after_ns;
}

static __always_inline __u8 lb_pick_version(const struct sl_service *svc, const struct pkt *p,
					    __u32 client_hash, __u32 rnd, __u64 now)
{
	__u32 bucket;

	/* rolled back, or nobody watching: primary for every new connection */
	if (svc->flags & SL_SVC_F_PRIMARY_ONLY)
		return SL_PRIMARY;
	if ((svc->flags & SL_SVC_F_FAILSAFE) && (svc->weight || (svc->flags & SL_SVC_F_COHORTS)) &&
	    lb_agent_silent(now)) {
		dp_count(SL_DP_FAILSAFE);
		return SL_PRIMARY;
	}

	if (svc->flags & SL_SVC_F_COHORTS) {
		int v = lb_cohort(svc, p);

		if (v != SL_VERSION_NONE)
			return v;
	}
	if (svc->affinity == SL_AFFINITY_CLIENT)
		bucket = sl_client_bucket(client_hash);
	else
		bucket = rnd % SL_BUCKETS;
	return bucket < svc->weight ? SL_CANARY : SL_PRIMARY;
}

/**
 * lb_pick_backend() - a backend id of @version, or -1 when neither version
 * has one. A version with no backends falls back to the other one rather
 * than blackholing: a canary set emptied mid-rollout must not drop traffic.
 */
static __always_inline int lb_pick_backend(const struct sl_service *svc, __u8 *version,
					   __u32 client_hash, __u32 rnd, __u32 *backend_id)
{
	__u32 first = 0, count, slot, *id;

	if (*version == SL_CANARY && svc->canary_count == 0)
		*version = SL_PRIMARY;
	else if (*version == SL_PRIMARY && svc->primary_count == 0)
		*version = SL_CANARY;

	if (*version == SL_CANARY) {
		first = svc->primary_count;
		count = svc->canary_count;
	} else {
		count = svc->primary_count;
	}
	if (count == 0 || first + count > SL_MAX_SLOTS)
		return -1;

	/*
	 * Client affinity keeps a client on one backend too (a second,
	 * independent hash, so the backend does not correlate with the bucket);
	 * connection affinity spreads every connection at random.
	 */
	if (svc->affinity == SL_AFFINITY_CLIENT)
		slot = sl_client_slot(client_hash, count);
	else
		slot = (rnd / SL_BUCKETS) % count;
	slot = sl_slot_index(svc->id, !!(svc->flags & SL_SVC_F_BANK1), first + slot);
	id = bpf_map_lookup_elem(&sl_svc_slots, &slot);
	if (!id)
		return -1;
	*backend_id = *id;
	return 0;
}

#endif /* SLUICE_BPF_LB_H */
