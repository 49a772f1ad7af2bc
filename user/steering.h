/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Writing a rollout's steering into the datapath maps: the service entry,
 * its backends, its slot bank and its cohorts. Works on map fds, so the
 * agent (from its skeleton) and the CLI (from the pins) share it.
 */
#ifndef SLUICE_STEERING_H
#define SLUICE_STEERING_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"
#include "spec.h"
#include "sluice/datapath.h"

/** steering_key() - the sl_services key of a Canary's VIP, port and protocol. */
void steering_key(const struct spec_canary *c, struct sl_service_key *key);

/**
 * steering_apply() - make the maps steer @c's VIP at canary weight @weight_bp.
 * Reuses the service id and backend ids already in the maps for the same VIP
 * and endpoints, so flows and counters survive a re-apply (spec reload,
 * agent restart). The new backend set is written to the idle slot bank and
 * published with one sl_services update.
 * @svc_id: the service id used, when not NULL.
 * Return: 0 or -errno (logged).
 */
int steering_apply(const struct dp_maps *m, const struct spec_canary *c, uint16_t weight_bp,
		   uint32_t *svc_id);

/** steering_set_weight() - change only the canary weight (basis points). */
int steering_set_weight(const struct dp_maps *m, const struct sl_service_key *key,
			uint16_t weight_bp);

/** steering_set_flag() - set or clear one SL_SVC_F_* flag of a service. */
int steering_set_flag(const struct dp_maps *m, const struct sl_service_key *key, uint8_t flag,
		      bool on);

/**
 * steering_set_sample_shift() - time 1 in 2^@shift of service @svc_id's
 * requests, on every flow from its next request on (sl_svc_sampling).
 * Return: 1 when it changed, 0 when it was already so, or -errno.
 */
int steering_set_sample_shift(const struct dp_maps *m, uint32_t svc_id, uint8_t shift);

/** steering_sample_shift() - service @svc_id's latency sampling k, or -errno. */
int steering_sample_shift(const struct dp_maps *m, uint32_t svc_id);

/**
 * steering_evict() - move the flows of @key's VIP that run to @version off
 * it: each entry is marked SL_CT_F_EVICT, and the client's next packet is
 * steered anew (to primary after a rollback); a TCP connection's new
 * backend answers with RST, so the client reconnects, to primary. Answers
 * already in flight from the old backend still get the VIP back.
 * Return: flows marked, or -errno.
 */
int steering_evict(const struct dp_maps *m, const struct sl_service_key *key, uint8_t version);

/**
 * steering_remove() - stop steering a VIP: its service entry goes first (new
 * packets to the VIP pass untouched), then its backends, slots and cohorts.
 */
int steering_remove(const struct dp_maps *m, const struct sl_service_key *key);

/** steering_seed() - the client-hash seed of a rollout, from namespace/name. */
uint32_t steering_seed(const char *namespace, const char *name);

#endif /* SLUICE_STEERING_H */
