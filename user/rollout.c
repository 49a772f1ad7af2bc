// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent side of a rollout. Windows: every tick takes a snapshot of both
 * versions' cumulative counters (kept in a small ring); a metric's window
 * is the newest snapshot minus the newest one at least a window older. The
 * counters come from the kernel, so a window is exact to the tick.
 */
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "log.h"
#include "rollout.h"
#include "steering.h"
#include "webhook.h"

uint64_t rollout_revision(const struct spec_canary *c)
{
	const struct spec_version_set *sets[] = { &c->primary, &c->canary };
	uint64_t h = 1469598103934665603ULL; /* FNV-1a, 64 bit */

#define MIX(p, n)                                                            \
	do {                                                                 \
		const unsigned char *_b = (const unsigned char *)(p);       \
		for (size_t _i = 0; _i < (n); _i++)                          \
			h = (h ^ _b[_i]) * 1099511628211ULL;                 \
	} while (0)
	for (int s = 0; s < 2; s++) {
		MIX(sets[s]->version, strlen(sets[s]->version) + 1);
		for (int i = 0; i < sets[s]->n_endpoints; i++) {
			MIX(&sets[s]->endpoints[i].addr.addr, sizeof(union sl_addr));
			MIX(&sets[s]->endpoints[i].port, sizeof(uint16_t));
		}
	}
#undef MIX
	return h;
}

int rollout_backends(const struct dp_maps *m, const struct spec_canary *c, uint32_t *ids,
		     uint8_t *versions, int max)
{
	struct sl_service_key key;
	struct sl_service svc;
	uint32_t bank;
	int n = 0;

	steering_key(c, &key);
	if (bpf_map_lookup_elem(m->services, &key, &svc))
		return -errno;
	bank = !!(svc.flags & SL_SVC_F_BANK1);
	for (uint32_t i = 0; i < (uint32_t)svc.primary_count + svc.canary_count && n < max; i++) {
		uint32_t slot = sl_slot_index(svc.id, bank, i);

		if (bpf_map_lookup_elem(m->slots, &slot, &ids[n]))
			continue;
		versions[n++] = i < svc.primary_count ? SL_PRIMARY : SL_CANARY;
	}
	return n;
}

int rollout_read_counters(const struct dp_maps *m, const struct spec_canary *c,
			  struct counters v[2])
{
	static uint64_t hist[SL_LAT_BUCKETS];
	uint32_t ids[SL_MAX_SLOTS];
	uint8_t versions[SL_MAX_SLOTS];
	int n = rollout_backends(m, c, ids, versions, SL_MAX_SLOTS);

	memset(v, 0, 2 * sizeof(*v));
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct sl_backend_stats st;

		if (dp_backend_stats(m, ids[i], &st) || dp_backend_latency(m, ids[i], hist))
			continue;
		counters_add_backend(&v[versions[i]], &st, hist);
	}
	return 0;
}

/* The requests counted so far on @c's backends, both versions: sl_stats only. */
static int read_requests(const struct dp_maps *m, const struct spec_canary *c, uint64_t *total)
{
	uint32_t ids[SL_MAX_SLOTS];
	uint8_t versions[SL_MAX_SLOTS];
	int n = rollout_backends(m, c, ids, versions, SL_MAX_SLOTS);

	*total = 0;
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct sl_backend_stats st;

		if (!dp_backend_stats(m, ids[i], &st))
			*total += st.requests;
	}
	return 0;
}

static uint64_t longest_window(const struct spec_canary *c)
{
	uint64_t w = c->analysis.interval_ms;

	for (int i = 0; i < c->analysis.n_metrics; i++)
		if (c->analysis.metrics[i].interval_ms > w)
			w = c->analysis.metrics[i].interval_ms;
	return w;
}

static void snaps_reset(struct rollout *r)
{
	uint64_t interval = r->spec.analysis.interval_ms ? r->spec.analysis.interval_ms : 1000;
	uint64_t window = longest_window(&r->spec);
	uint64_t ticks = (window + interval - 1) / interval;

	struct snapshot *grown;
	int cap;

	r->n_snaps = 0;
	r->head = -1;
	if (ticks + 1 <= ROLLOUT_MAX_SNAPS) {
		r->spacing_ms = interval;
		cap = (int)ticks + 1;
	} else {
		r->spacing_ms = (window + ROLLOUT_MAX_SNAPS - 2) / (ROLLOUT_MAX_SNAPS - 1);
		cap = ROLLOUT_MAX_SNAPS;
	}
	/* 7 KiB a snapshot: allocated to need, not to the maximum (100 rollouts, 100 agents) */
	grown = realloc(r->snaps, cap * sizeof(*r->snaps));
	if (!grown) {
		log_warn("%s: no memory for metric windows\n", r->rec.name);
		cap = 0;
	} else {
		r->snaps = grown;
	}
	r->cap_snaps = cap;
}

static void snaps_push(struct rollout *r, uint64_t now_ms, const struct counters v[2])
{
	if (!r->cap_snaps)
		return;
	if (r->n_snaps && now_ms + r->spec.analysis.interval_ms / 2 <
				  r->snaps[r->head].t_ms + r->spacing_ms) {
		/* too close to the last kept one: refresh the newest in place */
		memcpy(r->snaps[r->head].v, v, 2 * sizeof(*v));
		r->snaps[r->head].t_ms = now_ms;
		return;
	}
	r->head = (r->head + 1) % r->cap_snaps;
	r->snaps[r->head].t_ms = now_ms;
	memcpy(r->snaps[r->head].v, v, 2 * sizeof(*v));
	if (r->n_snaps < r->cap_snaps)
		r->n_snaps++;
}

/* The window ending now of length @window_ms: newest minus the right older snapshot. */
static bool snaps_window(const struct rollout *r, uint64_t window_ms, int version,
			 struct counters *out)
{
	const struct snapshot *now, *base = NULL;
	uint64_t slack = r->spec.analysis.interval_ms / 2;

	if (r->n_snaps < 2)
		return false;
	now = &r->snaps[r->head];
	for (int k = 1; k < r->n_snaps; k++) {
		const struct snapshot *s = &r->snaps[(r->head - k + r->cap_snaps) % r->cap_snaps];

		base = s; /* the oldest so far, if none is old enough */
		if (s->t_ms + window_ms <= now->t_ms + slack)
			break;
	}
	counters_delta(out, &now->v[version], &base->v[version]);
	return true;
}

static cJSON *decision_json(const struct rollout *r, const struct decision *d,
			    const struct check_result *check, const char *by)
{
	cJSON *o = cJSON_CreateObject();
	char t[40], rev[24];

	unix_ms_format(now_unix_ms(), t, sizeof(t));
	cJSON_AddStringToObject(o, "time", t);
	cJSON_AddStringToObject(o, "rollout", r->rec.name);
	cJSON_AddNumberToObject(o, "attempt", r->rec.attempt);
	snprintf(rev, sizeof(rev), "%016llx", (unsigned long long)r->rec.revision);
	cJSON_AddStringToObject(o, "revision", rev);
	cJSON_AddStringToObject(o, "primary_version", r->spec.primary.version);
	cJSON_AddStringToObject(o, "canary_version", r->spec.canary.version);
	cJSON_AddStringToObject(o, "by", by);
	cJSON_AddStringToObject(o, "action", action_name(d->action));
	cJSON_AddStringToObject(o, "phase_from", phase_name(d->from_phase));
	cJSON_AddStringToObject(o, "phase", phase_name(d->to_phase));
	cJSON_AddNumberToObject(o, "weight_from_pct", d->from_bp / 100.0);
	cJSON_AddNumberToObject(o, "weight_pct", d->to_bp / 100.0);
	cJSON_AddNumberToObject(o, "failed_checks", r->rec.st.failed_checks);
	cJSON_AddNumberToObject(o, "threshold", r->rec.threshold);
	cJSON_AddStringToObject(o, "reason", d->reason);
	if (check) {
		cJSON *c = cJSON_AddObjectToObject(o, "check");
		cJSON *arr = cJSON_AddArrayToObject(c, "metrics");

		cJSON_AddBoolToObject(c, "passed", check->passed);
		for (int i = 0; i < check->n; i++) {
			const struct metric_result *m = &check->m[i];
			cJSON *e = cJSON_CreateObject();

			cJSON_AddStringToObject(e, "name", m->kind == SPEC_METRIC_SUCCESS_RATE
								   ? "request-success-rate"
								   : "request-duration");
			cJSON_AddNumberToObject(e, "window_ms", (double)m->window_ms);
			cJSON_AddBoolToObject(e, "no_data", m->no_data);
			if (!m->no_data)
				cJSON_AddNumberToObject(e, "value", m->value);
			cJSON_AddNumberToObject(e, "threshold", m->threshold);
			cJSON_AddBoolToObject(e, "passed", m->passed);
			cJSON_AddItemToArray(arr, e);
		}
	}
	if (r->rec.has_last) {
		cJSON *w = cJSON_AddObjectToObject(o, "window");

		cJSON_AddItemToObject(w, "canary", window_json(&r->rec.last_canary));
		cJSON_AddItemToObject(w, "primary", window_json(&r->rec.last_primary));
	}
	return o;
}

/* Flagger's payload: name, namespace, phase, checksum, metadata. */
static char *hook_payload(const struct rollout *r, const struct spec_webhook *w,
			  const char *event_msg, const char *event_type)
{
	cJSON *o = cJSON_CreateObject(), *m;
	char rev[24], *s;

	snprintf(rev, sizeof(rev), "%016llx", (unsigned long long)r->rec.revision);
	cJSON_AddStringToObject(o, "name", r->spec.name);
	cJSON_AddStringToObject(o, "namespace", r->spec.namespace);
	cJSON_AddStringToObject(o, "phase", phase_name(r->rec.st.phase));
	cJSON_AddStringToObject(o, "checksum", rev);
	m = cJSON_AddObjectToObject(o, "metadata");
	for (int i = 0; i < w->n_meta; i++)
		cJSON_AddStringToObject(m, w->meta_key[i], w->meta_val[i]);
	if (event_msg) {
		char t[32];

		cJSON_AddStringToObject(m, "eventMessage", event_msg);
		cJSON_AddStringToObject(m, "eventType", event_type);
		snprintf(t, sizeof(t), "%llu", (unsigned long long)now_unix_ms());
		cJSON_AddStringToObject(m, "timestamp", t);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void hook_call(struct rollout *r, int i, const char *event_msg, const char *event_type)
{
	const struct spec_webhook *w = &r->spec.analysis.webhooks[i];
	char *payload;
	uint64_t token;

	if (!r->hooks)
		return;
	payload = hook_payload(r, w, event_msg, event_type);
	if (!payload)
		return;
	token = webhook_submit(r->hooks, w, payload);
	free(payload);
	/* events and post-rollout calls are fire and forget: only polled hooks are tracked */
	if (token && w->type != WH_EVENT && w->type != WH_POST_ROLLOUT) {
		r->hook[i].token = token;
		r->hook[i].submitted_ms = now_unix_ms();
	}
}

/* Is this polled hook's answer needed now? */
static bool hook_relevant(const struct rollout *r, enum spec_webhook_type t)
{
	const struct rollout_status *st = &r->rec.st;
	uint16_t max = analysis_max_weight(&r->spec.analysis);
	bool running = st->phase != PHASE_SUCCEEDED && st->phase != PHASE_FAILED &&
		       !st->paused && !st->manual;
	bool starting = st->weight_bp == 0 && st->iterations == 0 && st->failed_checks == 0;

	switch (t) {
	case WH_CONFIRM_ROLLOUT:
	case WH_PRE_ROLLOUT:
		return running && starting && st->phase != PHASE_PROMOTING;
	case WH_ROLLOUT:
		return running && analysis_needs_check(&r->spec, st);
	case WH_CONFIRM_TRAFFIC_INCREASE:
		return running && st->phase == PHASE_PROGRESSING && st->weight_bp > 0 &&
		       st->weight_bp < max;
	case WH_CONFIRM_PROMOTION:
		return running && st->phase == PHASE_PROGRESSING &&
		       (st->weight_bp >= max ||
			(r->spec.analysis.iterations > 0 && st->weight_bp == 0));
	case WH_ROLLBACK:
		return st->phase == PHASE_PROGRESSING || st->phase == PHASE_WAITING ||
		       st->phase == PHASE_PROMOTING;
	default:
		return false;
	}
}

/* Ask every polled hook whose answer the next tick will need, unless it is asked already. */
static void hooks_poll(struct rollout *r)
{
	for (int i = 0; i < r->spec.analysis.n_webhooks; i++)
		if (!r->hook[i].token && hook_relevant(r, r->spec.analysis.webhooks[i].type))
			hook_call(r, i, NULL, NULL);
}

static void hook_why(const struct rollout *r, int i, char *buf, size_t len)
{
	const struct hook_slot *h = &r->hook[i];
	const char *name = r->spec.analysis.webhooks[i].name;

	if (!h->answered)
		snprintf(buf, len, "%s webhook %s has not answered yet",
			 spec_webhook_type_name(r->spec.analysis.webhooks[i].type), name);
	else if (h->status)
		snprintf(buf, len, "%s webhook %s answered HTTP %d",
			 spec_webhook_type_name(r->spec.analysis.webhooks[i].type), name, h->status);
	else
		snprintf(buf, len, "%s webhook %s failed: %s",
			 spec_webhook_type_name(r->spec.analysis.webhooks[i].type), name, h->error);
}

/* The gates from the answers: a gate is open when its hooks all said 2xx since the last change. */
static void gates_fill(struct rollout *r, struct gates *g)
{
	memset(g, 0, sizeof(*g));
	g->confirm_rollout = g->confirm_traffic_increase = g->confirm_promotion = true;
	g->pre_rollout_done = true;
	for (int i = 0; i < r->spec.analysis.n_webhooks; i++) {
		const struct spec_webhook *w = &r->spec.analysis.webhooks[i];
		struct hook_slot *h = &r->hook[i];
		bool fresh_ok = h->answered && h->ok && h->submitted_ms >= r->gate_epoch_ms;
		bool *gate = NULL;
		char *why = NULL;

		if (w->type == WH_CONFIRM_ROLLOUT)
			gate = &g->confirm_rollout, why = g->why_rollout;
		else if (w->type == WH_CONFIRM_TRAFFIC_INCREASE)
			gate = &g->confirm_traffic_increase, why = g->why_traffic;
		else if (w->type == WH_CONFIRM_PROMOTION)
			gate = &g->confirm_promotion, why = g->why_promotion;
		if (gate && !fresh_ok) {
			*gate = false;
			hook_why(r, i, why, sizeof(g->why_rollout));
		}
		if (w->type == WH_PRE_ROLLOUT) {
			if (h->answered && !h->ok && h->unread) {
				g->pre_rollout_failed = true;
				h->unread = false;
				hook_why(r, i, g->why_pre, sizeof(g->why_pre));
			}
			if (!fresh_ok)
				g->pre_rollout_done = false;
		}
	}
}

/* A failing `rollout` hook is a failed check, like a metric out of range. */
static void rollout_hooks_into_check(struct rollout *r, struct check_result *check)
{
	for (int i = 0; i < r->spec.analysis.n_webhooks; i++) {
		struct hook_slot *h = &r->hook[i];
		size_t len = strlen(check->reason);
		char why[160];

		if (r->spec.analysis.webhooks[i].type != WH_ROLLOUT || !h->unread)
			continue;
		h->unread = false;
		if (h->ok)
			continue;
		check->passed = false;
		hook_why(r, i, why, sizeof(why));
		snprintf(check->reason + len, sizeof(check->reason) - len, "%s%s", len ? "; " : "",
			 why);
	}
}

/* After a decision: events, post-rollout, and fresh answers for the gates ahead. */
static void hooks_after(struct rollout *r, const struct decision *d)
{
	bool ended = (d->to_phase == PHASE_SUCCEEDED || d->to_phase == PHASE_FAILED) &&
		     d->from_phase != d->to_phase;
	bool warning = d->action == ACT_ROLLBACK || d->action == ACT_FREEZE ||
		       d->action == ACT_HOLD;

	if (d->to_bp != d->from_bp || d->to_phase != d->from_phase)
		r->gate_epoch_ms = now_unix_ms();
	for (int i = 0; i < r->spec.analysis.n_webhooks; i++) {
		enum spec_webhook_type t = r->spec.analysis.webhooks[i].type;

		if (t == WH_EVENT)
			hook_call(r, i, d->reason, warning ? "Warning" : "Normal");
		else if (t == WH_POST_ROLLOUT && ended)
			hook_call(r, i, NULL, NULL);
	}
	hooks_poll(r);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The service flags that follow the rollout's state: primary only once it is
 * rolled back (cohorts included) or during a drill; the fail-safe only while
 * it is unfinished (a promoted canary is the new stable version: sending new
 * connections back to the old one when the agent dies would be a rollback
 * nobody asked for).
 */
static void sync_flags(struct rollout *r)
{
	struct sl_service_key key;

	steering_key(&r->spec, &key);
	steering_set_flag(r->maps, &key, SL_SVC_F_PRIMARY_ONLY,
			  r->drill || (r->rec.st.phase == PHASE_FAILED && r->rec.st.weight_bp == 0));
	steering_set_flag(r->maps, &key, SL_SVC_F_FAILSAFE,
			  r->spec.failsafe && r->rec.st.phase != PHASE_SUCCEEDED);
}

/* Apply a decision: the weight to the datapath, then the record and the log. */
static void commit(struct rollout *r, const struct decision *d, const struct check_result *check,
		   const char *by)
{
	struct sl_service_key key;
	cJSON *rec;
	int err;

	steering_key(&r->spec, &key);
	if (d->to_bp != d->from_bp) {
		err = steering_set_weight(r->maps, &key, d->to_bp);
		if (err)
			log_warn("%s: writing weight %.2f%%: %s\n", r->rec.name, d->to_bp / 100.0,
				 strerror(-err));
	}
	sync_flags(r);
	if (d->action == ACT_ROLLBACK && !r->drill) {
		/* existing canary connections: reset now, or after the drain timeout */
		r->evict_at_ms = mono_ms() + (r->spec.rollback_reset ? 0 : r->spec.drain_timeout_ms);
	}
	r->rec.updated_unix_ms = now_unix_ms();
	r->rec.decided_unix_ms = r->rec.updated_unix_ms;
	snprintf(r->rec.last_action, sizeof(r->rec.last_action), "%s", action_name(d->action));
	snprintf(r->rec.last_reason, sizeof(r->rec.last_reason), "%s", d->reason);
	state_save(r->state_dir, &r->rec);
	rec = decision_json(r, d, check, by);
	history_append(r->state_dir, rec);
	cJSON_Delete(rec);
	log_info("%s: %s %s, weight %.2f%% -> %.2f%%: %s\n", r->rec.name, phase_name(d->to_phase),
		 action_name(d->action), d->from_bp / 100.0, d->to_bp / 100.0, d->reason);
	hooks_after(r, d);
}

static void fill_record_spec(struct rollout *r)
{
	snprintf(r->rec.name, sizeof(r->rec.name), "%s/%s", r->spec.namespace, r->spec.name);
	snprintf(r->rec.primary_version, sizeof(r->rec.primary_version), "%s",
		 r->spec.primary.version);
	snprintf(r->rec.canary_version, sizeof(r->rec.canary_version), "%s",
		 r->spec.canary.version);
	r->rec.threshold = r->spec.analysis.threshold > 0 ? r->spec.analysis.threshold : 1;
	r->rec.max_weight_bp = analysis_max_weight(&r->spec.analysis);
	r->rec.interval_ms = r->spec.analysis.interval_ms;
	r->rec.revision = rollout_revision(&r->spec);
}

/* A new attempt: Initialized at 0% (or held at steering.weight by hand). */
static void new_attempt(struct rollout *r, const char *why)
{
	struct decision d = { 0 };

	d.from_bp = r->rec.st.weight_bp;
	d.from_phase = r->rec.st.phase;
	analysis_restart(&r->rec.st);
	r->rec.attempt++;
	r->rec.started_unix_ms = now_unix_ms();
	r->rec.has_last = false;
	r->evict_at_ms = 0; /* a drain pending for the last attempt is moot */
	if (r->spec.has_initial_weight) {
		r->rec.st.weight_bp = (uint16_t)r->spec.initial_weight;
		r->rec.st.manual = true;
		r->rec.st.phase = PHASE_WAITING;
	}
	d.action = ACT_NONE;
	d.to_bp = r->rec.st.weight_bp;
	d.to_phase = r->rec.st.phase;
	snprintf(d.reason, sizeof(d.reason), "%s: %s -> %s%s", why, r->spec.primary.version,
		 r->spec.canary.version,
		 r->spec.has_initial_weight ? "; weight held at spec.steering.weight" : "");
	snaps_reset(r);
	commit(r, &d, NULL, "agent");
}

/*
 * Latency sampling follows the service's request rate: @total, the requests
 * counted so far (both versions), against the count at the last update, scaled
 * to one analysis interval, sets the k the datapath times 1 in 2^k requests by
 * (metrics_sample_shift() has the rule). Called at each tick and, between
 * ticks, every ROLLOUT_SAMPLE_EVERY_MS (rollout_housekeep()). The first call
 * only takes the count to measure from. A silent stretch (no request since the
 * last update) keeps k: it times nothing either way, and traffic that comes
 * back in bursts (a batch job, a client's retries) then starts at the k it
 * left with instead of timing everything until the next update; a burst that
 * comes back slower than it left lowers k at that update.
 */
static void sample_update(struct rollout *r, uint64_t now_ms, uint64_t total)
{
	uint64_t per_interval;
	uint8_t k;
	int err;

	if (r->sample_ms && now_ms > r->sample_ms && total > r->sample_requests) {
		per_interval = (total - r->sample_requests) * r->spec.analysis.interval_ms /
			       (now_ms - r->sample_ms);
		k = metrics_sample_shift(r->sample_shift, per_interval, r->rec.st.weight_bp,
					 r->sample_min);
		err = steering_set_sample_shift(r->maps, r->svc_id, k);
		if (err < 0)
			log_warn("%s: setting latency sampling: %s\n", r->rec.name, strerror(-err));
		else if (err > 0 || k != r->sample_shift)
			log_info("%s: timing 1 in %u requests (%llu requests an interval)\n",
				 r->rec.name, 1U << k, (unsigned long long)per_interval);
		if (err >= 0)
			r->sample_shift = k;
	}
	r->sample_requests = total;
	r->sample_ms = now_ms;
}

/*
 * Latency sampling from the rollout's start: the k in the maps (an agent
 * restart keeps it) and the request count the rate is measured from. When
 * the count cannot be read, the first tick takes it.
 */
static void sample_start(struct rollout *r, uint64_t now_ms)
{
	int cur = steering_sample_shift(r->maps, r->svc_id);
	uint64_t total;

	if (cur >= 0)
		r->sample_shift = (uint8_t)cur;
	if (!read_requests(r->maps, &r->spec, &total))
		sample_update(r, now_ms, total);
}

int rollout_start(struct rollout *r, const struct spec_canary *c, const struct dp_maps *m,
		  const char *state_dir, struct webhook_runner *hooks, uint64_t now_ms)
{
	struct rollout_record saved = { 0 };
	int err;

	memset(r, 0, sizeof(*r));
	r->spec = *c;
	r->maps = m;
	r->state_dir = state_dir;
	r->hooks = hooks;
	fill_record_spec(r);
	snaps_reset(r);

	err = state_load(state_dir, r->rec.name, &saved);
	if (err == 0 && saved.revision == r->rec.revision) {
		/* The same revision: carry on exactly where the last agent was. */
		r->rec.attempt = saved.attempt;
		r->rec.st = saved.st;
		r->rec.started_unix_ms = saved.started_unix_ms;
		r->rec.decided_unix_ms = saved.decided_unix_ms;
		r->rec.has_last = saved.has_last;
		r->rec.last_canary = saved.last_canary;
		r->rec.last_primary = saved.last_primary;
		snprintf(r->rec.last_action, sizeof(r->rec.last_action), "%s", saved.last_action);
		snprintf(r->rec.last_reason, sizeof(r->rec.last_reason), "%s", saved.last_reason);
		log_info("%s: resuming attempt %d: %s at %.2f%%, %d failed check(s)\n",
			 r->rec.name, r->rec.attempt, phase_name(r->rec.st.phase),
			 r->rec.st.weight_bp / 100.0, r->rec.st.failed_checks);
	} else {
		if (err == 0)
			r->rec.attempt = saved.attempt;
		analysis_restart(&r->rec.st);
	}
	err = steering_apply(m, &r->spec, r->rec.st.weight_bp, &r->svc_id);
	if (err)
		return err;
	sync_flags(r);
	sample_start(r, now_ms);
	if (r->rec.started_unix_ms == 0 || saved.revision != r->rec.revision)
		new_attempt(r, r->rec.attempt ? "new revision" : "rollout loaded");
	r->next_tick_ms = now_ms + r->spec.analysis.interval_ms;
	hooks_poll(r);
	return 0;
}

int rollout_update(struct rollout *r, const struct spec_canary *c, uint64_t now_ms)
{
	uint64_t rev = rollout_revision(c);
	bool restart = rev != r->rec.revision;
	bool new_fixed_weight = c->has_initial_weight &&
				(!r->spec.has_initial_weight ||
				 r->spec.initial_weight != c->initial_weight);
	int err;

	r->spec = *c;
	/* the webhook list may have changed: answers to the old one no longer apply */
	memset(r->hook, 0, sizeof(r->hook));
	fill_record_spec(r);
	err = steering_apply(r->maps, &r->spec, restart ? 0 : r->rec.st.weight_bp, &r->svc_id);
	if (err)
		return err;
	sync_flags(r);
	if (restart) {
		/* A changed canary set restarts the analysis, as Flagger does. */
		r->rec.st.weight_bp = 0;
		new_attempt(r, "new revision");
		r->next_tick_ms = now_ms + r->spec.analysis.interval_ms;
	} else {
		snaps_reset(r); /* the windows may have changed length */
		if (new_fixed_weight) {
			/* a new spec.steering.weight is a set-weight written in the spec */
			struct decision d;

			if (!analysis_command(&r->spec, &r->rec.st, CMD_SET_WEIGHT,
					      (uint16_t)c->initial_weight, &d)) {
				snprintf(d.reason, sizeof(d.reason),
					 "weight set to %.2f%% by spec.steering.weight",
					 c->initial_weight / 100.0);
				commit(r, &d, NULL, "spec");
			}
		}
	}
	return 0;
}

void rollout_tick(struct rollout *r, uint64_t now_ms)
{
	struct counters v[2], w[2];
	struct window_metrics wm[SPEC_MAX_METRICS];
	struct check_result check, *cp = NULL;
	struct gates gates;
	struct decision d;
	uint64_t first_window = r->spec.analysis.n_metrics ? r->spec.analysis.metrics[0].interval_ms
							   : r->spec.analysis.interval_ms;

	r->next_tick_ms += r->spec.analysis.interval_ms;
	if (r->next_tick_ms <= now_ms) /* we fell behind (suspend, load): do not burst */
		r->next_tick_ms = now_ms + r->spec.analysis.interval_ms;

	if (rollout_read_counters(r->maps, &r->spec, v)) {
		log_warn("%s: its service entry is gone from the maps; re-applying\n", r->rec.name);
		steering_apply(r->maps, &r->spec, r->rec.st.weight_bp, &r->svc_id);
		return;
	}
	snaps_push(r, now_ms, v);
	sample_update(r, now_ms, v[SL_PRIMARY].requests + v[SL_CANARY].requests);

	/* The last window of each version, for status and the audit log. */
	if (snaps_window(r, first_window, SL_CANARY, &w[SL_CANARY]) &&
	    snaps_window(r, first_window, SL_PRIMARY, &w[SL_PRIMARY])) {
		metrics_compute(&w[SL_CANARY], &r->rec.last_canary);
		metrics_compute(&w[SL_PRIMARY], &r->rec.last_primary);
		r->rec.has_last = true;
	}

	if (analysis_needs_check(&r->spec, &r->rec.st)) {
		for (int i = 0; i < r->spec.analysis.n_metrics; i++) {
			struct counters cw;

			if (snaps_window(r, r->spec.analysis.metrics[i].interval_ms, SL_CANARY, &cw))
				metrics_compute(&cw, &wm[i]);
			else
				memset(&wm[i], 0, sizeof(wm[i]));
		}
		analysis_judge(&r->spec.analysis, wm, &check);
		rollout_hooks_into_check(r, &check);
		cp = &check;
	}
	if (r->spec.analysis.n_webhooks)
		gates_fill(r, &gates);
	analysis_tick(&r->spec, &r->rec.st, cp, r->spec.analysis.n_webhooks ? &gates : NULL, &d);
	/* a gate still closed for the same reason is not news: no new audit line */
	if (d.action == ACT_WAIT && !strcmp(r->rec.last_action, "wait") &&
	    !strcmp(r->rec.last_reason, d.reason))
		d.action = ACT_NONE;
	if (d.action == ACT_NONE) {
		hooks_poll(r);
		/*
		 * Nothing decided: the record's last windows are refreshed for
		 * `sluice status`, but written at most every 5 s, not every tick.
		 */
		r->rec.updated_unix_ms = now_unix_ms();
		if (now_ms - r->saved_ms >= 5000) {
			r->saved_ms = now_ms;
			state_save(r->state_dir, &r->rec);
		}
		return;
	}
	commit(r, &d, cp, "analysis");
}

int rollout_command(struct rollout *r, enum rollout_command cmd, uint16_t weight_bp, char *msg,
		    size_t msg_len)
{
	struct decision d;
	int err = analysis_command(&r->spec, &r->rec.st, cmd, weight_bp, &d);

	if (err) {
		snprintf(msg, msg_len, "%s: %s", r->rec.name, d.reason);
		return err;
	}
	if (cmd == CMD_RETRY) {
		r->rec.attempt++;
		r->rec.started_unix_ms = now_unix_ms();
		r->rec.has_last = false;
		snaps_reset(r);
	}
	commit(r, &d, NULL, "person");
	snprintf(msg, msg_len, "%s: %s, canary weight %.2f%% (%s)", r->rec.name,
		 phase_name(r->rec.st.phase), r->rec.st.weight_bp / 100.0, d.reason);
	return 0;
}

uint64_t rollout_next_due(const struct rollout *r)
{
	uint64_t due = r->next_tick_ms;

	if (r->evict_at_ms && r->evict_at_ms < due)
		due = r->evict_at_ms;
	if (r->sample_ms && r->sample_ms + ROLLOUT_SAMPLE_EVERY_MS < due)
		due = r->sample_ms + ROLLOUT_SAMPLE_EVERY_MS;
	return due;
}


static void audit(struct rollout *r, const char *action, const char *by, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An audit record that is not a decision of the state machine (drains, drills). */
static void audit(struct rollout *r, const char *action, const char *by, const char *fmt, ...)
{
	struct decision d = { 0 };
	cJSON *rec;
	va_list ap;

	d.from_bp = d.to_bp = r->rec.st.weight_bp;
	d.from_phase = d.to_phase = r->rec.st.phase;
	va_start(ap, fmt);
	vsnprintf(d.reason, sizeof(d.reason), fmt, ap);
	va_end(ap);
	rec = decision_json(r, &d, NULL, by);
	cJSON_ReplaceItemInObjectCaseSensitive(rec, "action", cJSON_CreateString(action));
	history_append(r->state_dir, rec);
	cJSON_Delete(rec);
	log_info("%s: %s: %s\n", r->rec.name, action, d.reason);
}

void rollout_housekeep(struct rollout *r, uint64_t now_ms)
{
	struct sl_service_key key;
	uint64_t requests;
	char msg[256];
	int n;

	/*
	 * Latency sampling between ticks: a burst of traffic is sampled from
	 * its second second, not from the next analysis interval.
	 */
	if (r->sample_ms && now_ms >= r->sample_ms + ROLLOUT_SAMPLE_EVERY_MS &&
	    !read_requests(r->maps, &r->spec, &requests))
		sample_update(r, now_ms, requests);

	/* a drill whose CLI went away must not hold the canary out forever */
	if (r->drill && now_ms - r->drill_started_ms > ROLLOUT_DRILL_MAX_MS)
		rollout_drill_end(r, -1, msg, sizeof(msg));

	if (!r->evict_at_ms || now_ms < r->evict_at_ms)
		return;
	r->evict_at_ms = 0;
	steering_key(&r->spec, &key);
	n = steering_evict(r->maps, &key, SL_CANARY);
	if (n < 0) {
		log_warn("%s: resetting the canary's connections: %s\n", r->rec.name, strerror(-n));
		return;
	}
	audit(r, r->spec.rollback_reset ? "reset" : "drain", "agent",
	      r->spec.rollback_reset ? "reset %d canary connection(s) after the rollback"
				     : "drain timeout: reset %d canary connection(s) still open",
	      n);
}

int rollout_drill_start(struct rollout *r, char *msg, size_t msg_len)
{
	struct sl_service_key key;
	int n;

	if (r->drill) {
		snprintf(msg, msg_len, "%s: a drill is already running", r->rec.name);
		return -EBUSY;
	}
	r->drill = true;
	r->drill_started_ms = mono_ms();
	r->drill_saved = r->rec.st;
	/* held by hand meanwhile: the analysis must not step it back up */
	r->rec.st.manual = true;
	steering_key(&r->spec, &key);
	steering_set_weight(r->maps, &key, 0);
	steering_set_flag(r->maps, &key, SL_SVC_F_PRIMARY_ONLY, true);
	n = steering_evict(r->maps, &key, SL_CANARY);
	audit(r, "drill", "person",
	      "rollback drill started: canary weight %.2f%% -> 0%%, %d canary connection(s) reset",
	      r->drill_saved.weight_bp / 100.0, n < 0 ? 0 : n);
	snprintf(msg, msg_len, "%s: drill started: canary out of traffic, %d connection(s) reset",
		 r->rec.name, n < 0 ? 0 : n);
	return 0;
}

int rollout_drill_end(struct rollout *r, double measured_ms, char *msg, size_t msg_len)
{
	struct sl_service_key key;

	if (!r->drill) {
		snprintf(msg, msg_len, "%s: no drill is running", r->rec.name);
		return -EINVAL;
	}
	r->drill = false;
	r->rec.st = r->drill_saved;
	steering_key(&r->spec, &key);
	steering_set_weight(r->maps, &key, r->rec.st.weight_bp);
	sync_flags(r);
	if (measured_ms >= 0)
		audit(r, "drill", "person",
		      "rollback drill: no connection reached the canary %.0f ms after the "
		      "rollback; restored to %.2f%% (%s)",
		      measured_ms, r->rec.st.weight_bp / 100.0, phase_name(r->rec.st.phase));
	else
		audit(r, "drill", "agent", "rollback drill abandoned; restored to %.2f%% (%s)",
		      r->rec.st.weight_bp / 100.0, phase_name(r->rec.st.phase));
	state_save(r->state_dir, &r->rec);
	snprintf(msg, msg_len, "%s: drill done: %.0f ms until no connection reached the canary; "
		 "restored to %.2f%%", r->rec.name, measured_ms, r->rec.st.weight_bp / 100.0);
	return 0;
}

bool rollout_hook_result(struct rollout *r, uint64_t token, bool ok, int status,
			 const char *error)
{
	for (int i = 0; i < r->spec.analysis.n_webhooks; i++) {
		struct hook_slot *h = &r->hook[i];
		const struct spec_webhook *w = &r->spec.analysis.webhooks[i];

		if (!token || h->token != token)
			continue;
		h->token = 0;
		h->answered = true;
		h->ok = ok;
		h->unread = true;
		h->status = status;
		snprintf(h->error, sizeof(h->error), "%s", error);
		if (!ok)
			log_debug("%s: %s webhook %s: %s%d %s\n", r->rec.name,
				  spec_webhook_type_name(w->type), w->name, status ? "HTTP " : "",
				  status, error);
		if (w->type == WH_ROLLBACK && ok && hook_relevant(r, WH_ROLLBACK)) {
			struct decision d;

			/* Flagger: a rollback hook's 2xx rolls back at once */
			if (!analysis_command(&r->spec, &r->rec.st, CMD_ABORT, 0, &d)) {
				snprintf(d.reason, sizeof(d.reason),
					 "rollback webhook %s answered HTTP %d: rolled back", w->name,
					 status);
				commit(r, &d, NULL, "webhook");
			}
		}
		return true;
	}
	return false;
}

void rollout_free(struct rollout *r)
{
	if (!r)
		return;
	free(r->snaps);
	free(r);
}

void rollout_stop(struct rollout *r)
{
	struct sl_service_key key;

	steering_key(&r->spec, &key);
	steering_remove(r->maps, &key);
	state_remove(r->state_dir, r->rec.name);
	log_info("%s: no longer in the spec; its VIP is not steered any more\n", r->rec.name);
}
