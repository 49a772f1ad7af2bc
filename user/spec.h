/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Canary spec as the agent holds it: a Flagger Canary resource
 * (flagger.app/v1beta1) plus sluice's own spec.steering block, parsed from
 * JSON or YAML and validated. Everything downstream (datapath, analysis, CLI)
 * reads this struct, never the documents.
 */
#ifndef SLUICE_SPEC_H
#define SLUICE_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>

#include "sluice/datapath.h"

#define SPEC_NAME_MAX 254 /* metadata.name / namespace (DNS-1123 subdomain) */
#define SPEC_VERSION_MAX 64
#define SPEC_MAX_ENDPOINTS 128 /* per version; both together <= SL_MAX_SLOTS */
#define SPEC_MAX_COHORTS 64 /* per version */
#define SPEC_MAX_STEPS 32
#define SPEC_MAX_METRICS 8

struct spec_addr {
	int family; /* AF_INET or AF_INET6 */
	union sl_addr addr;
};

struct spec_cidr {
	struct spec_addr net;
	uint8_t prefixlen;
};

struct spec_endpoint {
	struct spec_addr addr;
	uint16_t port; /* host order; spec.service.targetPort unless given */
};

struct spec_version_set {
	char version[SPEC_VERSION_MAX];
	int n_endpoints;
	struct spec_endpoint endpoints[SPEC_MAX_ENDPOINTS];
	int n_cohorts;
	struct spec_cidr cohorts[SPEC_MAX_COHORTS]; /* spec.steering.cohorts.<version> */
};

enum spec_metric_kind {
	SPEC_METRIC_SUCCESS_RATE, /* request-success-rate, percent, min */
	SPEC_METRIC_DURATION, /* request-duration, p99 ms, max */
};

struct spec_metric {
	enum spec_metric_kind kind;
	bool has_min, has_max;
	double min, max;
	uint64_t interval_ms; /* the metric's window; defaults to analysis.interval */
};

/* Flagger's webhook types (spec.analysis.webhooks[].type). */
enum spec_webhook_type {
	WH_CONFIRM_ROLLOUT, /* gate before the first step; no failed check */
	WH_PRE_ROLLOUT, /* before the first step; a failure is a failed check */
	WH_ROLLOUT, /* every analysis tick; a failure is a failed check */
	WH_CONFIRM_TRAFFIC_INCREASE, /* gate before each step */
	WH_CONFIRM_PROMOTION, /* gate at the max weight; metrics keep running */
	WH_POST_ROLLOUT, /* after promotion or rollback; logged */
	WH_ROLLBACK, /* polled; a 2xx answer rolls back at once */
	WH_EVENT, /* every event */
	WH_TYPES,
};

#define SPEC_MAX_WEBHOOKS 8
#define SPEC_MAX_WEBHOOK_META 8

struct spec_webhook {
	char name[64];
	enum spec_webhook_type type;
	char url[512];
	uint64_t timeout_ms; /* default 10 s, as Flagger */
	int retries; /* further attempts after a failure, 0..10 */
	int n_meta;
	char meta_key[SPEC_MAX_WEBHOOK_META][64];
	char meta_val[SPEC_MAX_WEBHOOK_META][192];
};

/** spec_webhook_type_name() - "confirm-rollout", ... */
const char *spec_webhook_type_name(enum spec_webhook_type t);

struct spec_analysis {
	uint64_t interval_ms; /* one tick */
	int threshold; /* failed checks before rollback; <= 0 in the document means 1 */
	int max_weight; /* percent */
	int step_weight; /* percent; 0 when step_weights is used */
	int n_step_weights;
	int step_weights[SPEC_MAX_STEPS]; /* percent, strictly increasing */
	int step_weight_promotion; /* percent; 0 = promote in one step */
	int iterations; /* > 0: blue/green, N checks at 0% then switch */
	int n_metrics;
	struct spec_metric metrics[SPEC_MAX_METRICS];
	int n_webhooks;
	struct spec_webhook webhooks[SPEC_MAX_WEBHOOKS];
};

struct spec_canary {
	char name[SPEC_NAME_MAX];
	char namespace[SPEC_NAME_MAX]; /* "default" when absent */
	uint16_t port; /* spec.service.port: the VIP's port */
	uint16_t target_port; /* spec.service.targetPort: the pods' port */
	struct spec_analysis analysis;
	bool revert_on_failure; /* default true */
	bool skip_analysis;
	/* spec.steering */
	struct spec_addr vip;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	enum sl_affinity affinity;
	int initial_weight; /* steering.weight: fixed canary percent, basis points */
	bool has_initial_weight; /* steering.weight given: the weight is held there by hand */
	struct spec_version_set primary;
	struct spec_version_set canary;
	bool failsafe; /* steering.failsafe (default true): primary only when the agent is silent */
	bool rollback_reset; /* steering.onRollback: reset (true) or drain (false, default) */
	uint64_t drain_timeout_ms; /* steering.drainTimeout: drain, then reset (default 30s) */
	/* Fields the document carried that sluice accepts but does not act on. */
	int n_ignored;
	char ignored[16][96];
	int ignored_dropped; /* ignored fields beyond the array, counted but not kept */
};

/* One error found in a document: "spec.analysis.stepWeight: must be > 0". */
struct spec_error {
	char path[128];
	char reason[192];
};

struct spec_errors {
	int n;
	struct spec_error e[32];
	int dropped; /* errors beyond the array, counted but not kept */
};

/**
 * spec_parse_buffer() - parse and validate one Canary document.
 * @buf, @len: the document, JSON or YAML (detected by content).
 * @out: filled on success.
 * @errs: every problem found, with its path; parsing goes on after an error
 *        so a user sees all of them at once.
 * Return: 0 when the document is valid, -EINVAL when @errs has entries
 *         (-ENOMEM when memory ran out; that is in @errs as well).
 */
int spec_parse_buffer(const char *buf, size_t len, struct spec_canary *out,
		      struct spec_errors *errs);

/**
 * spec_parse_file() - spec_parse_buffer() on a file; I/O errors go to @errs too,
 * with an empty path, and return -errno (-ENOENT, -EISDIR, -EFBIG over 1 MiB ...).
 */
int spec_parse_file(const char *path, struct spec_canary *out, struct spec_errors *errs);

/** spec_print_errors() - "FILE: PATH: REASON" lines, one per error. */
void spec_print_errors(FILE *f, const char *file, const struct spec_errors *errs);

/** spec_to_json() - the normalized form (units resolved, defaults filled), malloc'd. */
char *spec_to_json(const struct spec_canary *c);

/** spec_addr_parse() - IPv4 or IPv6 literal; 0 or -EINVAL. */
int spec_addr_parse(const char *s, struct spec_addr *out);

/** spec_duration_ms() - "250ms", "2s", "1m", "1h", "1h30m"; 0 or -EINVAL. */
int spec_duration_ms(const char *s, uint64_t *out_ms);

#endif /* SLUICE_SPEC_H */
