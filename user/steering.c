// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs the datapath maps from a spec. The order of writes is what keeps
 * the datapath consistent while it runs: backends first, then the idle slot
 * bank, then cohorts, the filter bits and the backends' VIPs for replies
 * (sl_revnat), then the service entry that publishes them all at once;
 * backends that left the set are freed only after that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <bpf/bpf.h>

#include "log.h"
#include "sluice/hash.h"
#include "steering.h"

void steering_key(const struct spec_canary *c, struct sl_service_key *key)
{
	memset(key, 0, sizeof(*key));
	key->vip = c->vip.addr;
	key->port = htons(c->port);
	key->proto = c->proto;
	key->family = c->vip.family;
}

uint32_t steering_seed(const char *namespace, const char *name)
{
	/* FNV-1a: stable across builds and machines, which is all it needs. */
	uint32_t h = 2166136261u;
	const char *parts[] = { namespace, "/", name };

	for (size_t i = 0; i < 3; i++)
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
			h = (h ^ *p) * 16777619u;
	return h;
}

static int find_service_id(const struct dp_maps *m, const struct sl_service_key *key,
			   uint32_t *id, struct sl_service *existing)
{
	struct sl_service_key k, next;
	struct sl_service v;
	static uint8_t used[SL_MAX_SERVICES];
	int err;

	if (bpf_map_lookup_elem(m->services, key, existing) == 0) {
		*id = existing->id;
		return 1;
	}
	memset(used, 0, sizeof(used));
	err = bpf_map_get_next_key(m->services, NULL, &next);
	while (!err) {
		k = next;
		if (bpf_map_lookup_elem(m->services, &k, &v) == 0 && v.id < SL_MAX_SERVICES)
			used[v.id] = 1;
		err = bpf_map_get_next_key(m->services, &k, &next);
	}
	for (uint32_t i = 0; i < SL_MAX_SERVICES; i++) {
		if (!used[i]) {
			*id = i;
			return 0;
		}
	}
	return -ENOSPC;
}

struct backend_table {
	struct sl_backend b[SL_MAX_BACKENDS];
	uint8_t taken[SL_MAX_BACKENDS]; /* claimed during this apply */
};

static int read_backends(const struct dp_maps *m, struct backend_table *t)
{
	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		if (bpf_map_lookup_elem(m->backends, &i, &t->b[i]))
			return -errno;
		t->taken[i] = 0;
	}
	return 0;
}

static bool backend_is(const struct sl_backend *b, uint32_t svc_id,
		       const struct spec_endpoint *ep)
{
	return b->family == ep->addr.family && b->svc_id == svc_id &&
	       b->port == htons(ep->port) && !memcmp(&b->addr, &ep->addr.addr, sizeof(b->addr));
}

/* The id this endpoint had before, or a free one. */
static int claim_backend(struct backend_table *t, uint32_t svc_id,
			 const struct spec_endpoint *ep, uint32_t *id)
{
	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		if (!t->taken[i] && backend_is(&t->b[i], svc_id, ep)) {
			*id = i;
			return 0;
		}
	}
	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		if (!t->taken[i] && t->b[i].family == 0) {
			*id = i;
			return 0;
		}
	}
	return -ENOSPC;
}

static int write_set(const struct dp_maps *m, struct backend_table *t, uint32_t svc_id,
		     uint32_t bank, uint32_t first, const struct spec_version_set *set,
		     uint8_t version)
{
	for (int i = 0; i < set->n_endpoints; i++) {
		const struct spec_endpoint *ep = &set->endpoints[i];
		struct sl_backend b = { 0 };
		uint32_t id, slot;
		int err;

		err = claim_backend(t, svc_id, ep, &id);
		if (err) {
			log_warn("no free backend id: %d backends is the node's limit\n",
				 SL_MAX_BACKENDS);
			return err;
		}
		b.addr = ep->addr.addr;
		b.port = htons(ep->port);
		b.family = ep->addr.family;
		b.version = version;
		b.svc_id = svc_id;
		t->taken[id] = 1;
		t->b[id] = b;
		slot = sl_slot_index(svc_id, bank, first + i);
		if (bpf_map_update_elem(m->backends, &id, &b, BPF_ANY) ||
		    bpf_map_update_elem(m->slots, &slot, &id, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int cohort_key(struct sl_cohort_key *k, uint32_t svc_id, const struct spec_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = SL_COHORT_PREFIX_BASE + c->prefixlen;
	k->svc_id = htonl(svc_id);
	k->family = htonl(c->net.family);
	k->addr = c->net.addr;
	return 0;
}

/* Drop every cohort of @svc_id; the trie has no per-service index. */
static void clear_cohorts(const struct dp_maps *m, uint32_t svc_id)
{
	struct sl_cohort_key k, next;
	int err = bpf_map_get_next_key(m->cohorts, NULL, &next);

	while (!err) {
		k = next;
		err = bpf_map_get_next_key(m->cohorts, &k, &next);
		if (k.svc_id == htonl(svc_id)) {
			bpf_map_delete_elem(m->cohorts, &k);
			/* deleting may reorder the walk: start over */
			err = bpf_map_get_next_key(m->cohorts, NULL, &next);
		}
	}
}

static int write_cohorts(const struct dp_maps *m, uint32_t svc_id,
			 const struct spec_version_set *set, uint8_t version)
{
	for (int i = 0; i < set->n_cohorts; i++) {
		struct sl_cohort_key k;

		cohort_key(&k, svc_id, &set->cohorts[i]);
		if (bpf_map_update_elem(m->cohorts, &k, &version, BPF_ANY))
			return -errno;
	}
	return 0;
}

static void filter_set(struct sl_filter *f, const union sl_addr *a, __be16 port)
{
	uint32_t bit = sl_filter_bit(a, port);

	f->words[bit / 64] |= 1ULL << (bit % 64);
}

/*
 * Let the datapath see a rollout's VIP and backends: set their bits before
 * the service is published. Bits are never cleared while the agent runs
 * (see struct sl_filter), so this only adds.
 */
static int filters_add(const struct dp_maps *m, const struct spec_canary *c)
{
	static struct sl_filter vip, backend;
	uint32_t kv = SL_FILTER_VIP, kb = SL_FILTER_BACKEND;
	const struct spec_version_set *sets[] = { &c->primary, &c->canary };

	if (bpf_map_lookup_elem(m->filter, &kv, &vip) ||
	    bpf_map_lookup_elem(m->filter, &kb, &backend))
		return -errno;
	filter_set(&vip, &c->vip.addr, htons(c->port));
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < sets[s]->n_endpoints; i++)
			filter_set(&backend, &sets[s]->endpoints[i].addr.addr,
				   htons(sets[s]->endpoints[i].port));
	/* The backend bitmap first: replies must be recognised before requests go out. */
	if (bpf_map_update_elem(m->filter, &kb, &backend, BPF_ANY) ||
	    bpf_map_update_elem(m->filter, &kv, &vip, BPF_ANY))
		return -errno;
	return 0;
}

/* Does any service still send flows from its VIP @v to the backend @k? */
static bool revnat_in_use(const struct dp_maps *m, const struct backend_table *t,
			  const struct sl_revnat_key *k, const struct sl_revnat_vip *v)
{
	struct sl_service_key sk = { .port = v->port, .proto = k->proto, .family = k->family };
	struct sl_service svc;

	sk.vip = v->vip;
	if (bpf_map_lookup_elem(m->services, &sk, &svc))
		return false;
	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		const struct sl_backend *b = &t->b[i];

		if (b->family == k->family && b->svc_id == svc.id && b->port == k->port &&
		    !memcmp(&b->addr, &k->addr, sizeof(b->addr)))
			return true;
	}
	return false;
}

/* Drop the VIPs no service uses for this backend any more; Return: how many. */
static int revnat_prune(const struct dp_maps *m, const struct backend_table *t,
			const struct sl_revnat_key *k, struct sl_revnat *rn)
{
	uint32_t kept = 0, n = rn->count < SL_REVNAT_VIPS ? rn->count : SL_REVNAT_VIPS;

	for (uint32_t i = 0; i < n; i++)
		if (revnat_in_use(m, t, k, &rn->vips[i]))
			rn->vips[kept++] = rn->vips[i];
	memset(&rn->vips[kept], 0, (SL_REVNAT_VIPS - kept) * sizeof(rn->vips[0]));
	rn->count = kept;
	return (int)(n - kept);
}

/* The whole map: backends no service uses any more give their entries back. */
static void revnat_prune_all(const struct dp_maps *m, const struct backend_table *t)
{
	struct sl_revnat_key k, next;
	struct sl_revnat rn;
	int err = bpf_map_get_next_key(m->revnat, NULL, &next);

	while (!err) {
		k = next;
		err = bpf_map_get_next_key(m->revnat, &k, &next);
		if (bpf_map_lookup_elem(m->revnat, &k, &rn) || !revnat_prune(m, t, &k, &rn))
			continue;
		if (rn.count)
			bpf_map_update_elem(m->revnat, &k, &rn, BPF_EXIST);
		else
			bpf_map_delete_elem(m->revnat, &k);
	}
}

static const char *endpoint_str(const struct spec_endpoint *ep, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ep->addr.family, &ep->addr.addr, a, sizeof(a));
	snprintf(buf, len, ep->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ep->port);
	return buf;
}

/* List @v among the VIPs of backend @ep, making room if it must. */
static int revnat_add_one(const struct dp_maps *m, const struct backend_table *t,
			  const struct spec_endpoint *ep, uint8_t proto,
			  const struct sl_revnat_vip *v)
{
	struct sl_revnat_key k = { .port = htons(ep->port), .proto = proto };
	struct sl_revnat rn = { 0 };
	char buf[64];

	k.addr = ep->addr.addr;
	k.family = ep->addr.family;
	if (bpf_map_lookup_elem(m->revnat, &k, &rn))
		memset(&rn, 0, sizeof(rn));
	for (uint32_t i = 0; i < rn.count && i < SL_REVNAT_VIPS; i++)
		if (rn.vips[i].port == v->port && !memcmp(&rn.vips[i].vip, &v->vip, sizeof(v->vip)))
			return 0;
	if (rn.count >= SL_REVNAT_VIPS)
		revnat_prune(m, t, &k, &rn);
	if (rn.count >= SL_REVNAT_VIPS) {
		log_warn("backend %s already serves %d VIPs, the most one backend may\n",
			 endpoint_str(ep, buf, sizeof(buf)), SL_REVNAT_VIPS);
		return -E2BIG;
	}
	rn.vips[rn.count++] = *v;
	if (!bpf_map_update_elem(m->revnat, &k, &rn, BPF_ANY))
		return 0;
	if (errno != E2BIG)
		return -errno;
	revnat_prune_all(m, t);
	if (!bpf_map_update_elem(m->revnat, &k, &rn, BPF_ANY))
		return 0;
	log_warn("backend %s: no room for its VIPs: %d backends is the node's limit\n",
		 endpoint_str(ep, buf, sizeof(buf)), SL_MAX_REVNAT);
	return -E2BIG;
}

/*
 * Let replies from each of @c's backends find their flows: list @c's VIP
 * for every one of them. Like the filter bits, before the service is
 * published, and only added to (a backend that leaves keeps the VIP for the
 * replies of its draining flows until the room is needed).
 */
static int revnat_add(const struct dp_maps *m, const struct backend_table *t,
		      const struct spec_canary *c)
{
	const struct spec_version_set *sets[] = { &c->primary, &c->canary };
	struct sl_revnat_vip v = { .port = htons(c->port) };
	int err;

	v.vip = c->vip.addr;
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < sets[s]->n_endpoints; i++) {
			err = revnat_add_one(m, t, &sets[s]->endpoints[i], c->proto, &v);
			if (err)
				return err;
		}
	}
	return 0;
}

static uint64_t now_unix_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int write_meta(const struct dp_maps *m, uint32_t svc_id, const struct spec_canary *c)
{
	struct sl_service_meta meta = { 0 };

	/* Long names are cut: the map is for people; the state dir keeps them whole. */
	if (snprintf(meta.name, sizeof(meta.name), "%s/%s", c->namespace, c->name) >=
	    (int)sizeof(meta.name))
		meta.name[sizeof(meta.name) - 2] = '~';
	if (snprintf(meta.primary_version, sizeof(meta.primary_version), "%s",
		     c->primary.version) >= (int)sizeof(meta.primary_version))
		meta.primary_version[sizeof(meta.primary_version) - 2] = '~';
	if (snprintf(meta.canary_version, sizeof(meta.canary_version), "%s", c->canary.version) >=
	    (int)sizeof(meta.canary_version))
		meta.canary_version[sizeof(meta.canary_version) - 2] = '~';
	meta.updated_unix_ms = now_unix_ms();
	return bpf_map_update_elem(m->meta, &svc_id, &meta, BPF_ANY) ? -errno : 0;
}

static void free_unclaimed(const struct dp_maps *m, struct backend_table *t, uint32_t svc_id)
{
	struct sl_backend zero = { 0 };

	for (uint32_t i = 0; i < SL_MAX_BACKENDS; i++) {
		if (t->b[i].family && t->b[i].svc_id == svc_id && !t->taken[i])
			bpf_map_update_elem(m->backends, &i, &zero, BPF_ANY);
	}
}

int steering_apply(const struct dp_maps *m, const struct spec_canary *c, uint16_t weight_bp,
		   uint32_t *svc_id_out)
{
	static struct backend_table table; /* 28 KiB: not for the stack */
	struct sl_service_key key;
	struct sl_service old, svc = { 0 };
	uint32_t svc_id, bank = 0;
	int found, err;

	if (c->primary.n_endpoints + c->canary.n_endpoints > SL_MAX_SLOTS)
		return -E2BIG;
	if (weight_bp > SL_WEIGHT_MAX)
		return -ERANGE;
	steering_key(c, &key);
	found = find_service_id(m, &key, &svc_id, &old);
	if (found < 0) {
		log_warn("%s/%s: no free service slot: %d services is the node's limit\n",
			 c->namespace, c->name, SL_MAX_SERVICES);
		return found;
	}
	if (found)
		bank = !(old.flags & SL_SVC_F_BANK1);

	err = read_backends(m, &table);
	if (!err)
		err = write_set(m, &table, svc_id, bank, 0, &c->primary, SL_PRIMARY);
	if (!err)
		err = write_set(m, &table, svc_id, bank, c->primary.n_endpoints, &c->canary,
				SL_CANARY);
	if (err)
		goto fail;

	clear_cohorts(m, svc_id);
	err = write_cohorts(m, svc_id, &c->primary, SL_PRIMARY);
	if (!err)
		err = write_cohorts(m, svc_id, &c->canary, SL_CANARY);
	if (!err)
		err = write_meta(m, svc_id, c);
	/* a new service starts timing every request, whatever the id's last owner had */
	if (!err && !found && (err = steering_set_sample_shift(m, svc_id, 0)) > 0)
		err = 0;
	if (!err)
		err = filters_add(m, c);
	if (!err)
		err = revnat_add(m, &table, c);
	if (err)
		goto fail;

	svc.id = svc_id;
	svc.weight = weight_bp;
	svc.affinity = c->affinity;
	svc.flags = (bank ? SL_SVC_F_BANK1 : 0) |
		    (c->primary.n_cohorts + c->canary.n_cohorts ? SL_SVC_F_COHORTS : 0) |
		    (c->failsafe ? SL_SVC_F_FAILSAFE : 0) |
		    /* the rollout's, kept */
		    (found ? old.flags & SL_SVC_F_PRIMARY_ONLY : 0);
	svc.primary_count = c->primary.n_endpoints;
	svc.canary_count = c->canary.n_endpoints;
	svc.hash_seed = steering_seed(c->namespace, c->name);
	if (bpf_map_update_elem(m->services, &key, &svc, BPF_ANY)) {
		err = -errno;
		goto fail;
	}
	free_unclaimed(m, &table, svc_id);
	if (svc_id_out)
		*svc_id_out = svc_id;
	return 0;

fail:
	log_warn("%s/%s: writing the steering maps: %s\n", c->namespace, c->name, strerror(-err));
	return err;
}

int steering_set_weight(const struct dp_maps *m, const struct sl_service_key *key,
			uint16_t weight_bp)
{
	struct sl_service svc;

	if (weight_bp > SL_WEIGHT_MAX)
		return -ERANGE;
	if (bpf_map_lookup_elem(m->services, key, &svc))
		return -errno;
	svc.weight = weight_bp;
	return bpf_map_update_elem(m->services, key, &svc, BPF_EXIST) ? -errno : 0;
}

int steering_set_flag(const struct dp_maps *m, const struct sl_service_key *key, uint8_t flag,
		      bool on)
{
	struct sl_service svc;
	uint8_t want;

	if (bpf_map_lookup_elem(m->services, key, &svc))
		return -errno;
	want = on ? svc.flags | flag : svc.flags & ~flag;
	if (want == svc.flags)
		return 0;
	svc.flags = want;
	return bpf_map_update_elem(m->services, key, &svc, BPF_EXIST) ? -errno : 0;
}

int steering_sample_shift(const struct dp_maps *m, uint32_t svc_id)
{
	uint8_t k;

	if (svc_id >= SL_MAX_SERVICES)
		return -ERANGE;
	return bpf_map_lookup_elem(m->sampling, &svc_id, &k) ? -errno : k;
}

int steering_set_sample_shift(const struct dp_maps *m, uint32_t svc_id, uint8_t shift)
{
	int cur = steering_sample_shift(m, svc_id);

	if (shift > SL_SAMPLE_SHIFT_MAX)
		return -ERANGE;
	if (cur < 0 || cur == shift)
		return cur < 0 ? cur : 0;
	return bpf_map_update_elem(m->sampling, &svc_id, &shift, BPF_ANY) ? -errno : 1;
}

int steering_evict(const struct dp_maps *m, const struct sl_service_key *key, uint8_t version)
{
	struct sl_ct_key k, next, *doomed = NULL;
	struct sl_ct_entry e;
	size_t n = 0, cap = 0;
	int err = bpf_map_get_next_key(m->ct, NULL, &next);

	/* Collect first: deleting while walking a hash map restarts the walk. */
	while (!err) {
		k = next;
		err = bpf_map_get_next_key(m->ct, &k, &next);
		if (k.reserved || k.proto != key->proto || k.family != key->family ||
		    k.dport != key->port || memcmp(&k.daddr, &key->vip, sizeof(k.daddr)) ||
		    bpf_map_lookup_elem(m->ct, &k, &e) || e.version != version ||
		    (e.flags & SL_CT_F_EVICT))
			continue;
		if (n == cap) {
			struct sl_ct_key *g;

			cap = cap ? cap * 2 : 256;
			g = realloc(doomed, cap * sizeof(*g));
			if (!g) {
				free(doomed);
				return -ENOMEM;
			}
			doomed = g;
		}
		doomed[n++] = k;
	}
	/*
	 * Marked, not deleted: the client's next packet is steered anew, while an
	 * answer the backend has in flight still finds the flow and goes back
	 * from the VIP (deleted, it would reach the client from the pod's
	 * address, be dropped, and leave that request hanging).
	 *
	 * Read again and checked again: since the walk, a SYN may have renewed
	 * the entry for a new connection on another version, which must not be
	 * marked. What the datapath writes between this read and the write
	 * below (a teardown flag, a request count) is lost; a microsecond's
	 * window, once per flow and rollback.
	 */
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(m->ct, &doomed[i], &e) || e.version != version)
			continue;
		e.flags |= SL_CT_F_EVICT;
		bpf_map_update_elem(m->ct, &doomed[i], &e, BPF_EXIST);
	}
	free(doomed);
	return (int)n;
}

int steering_remove(const struct dp_maps *m, const struct sl_service_key *key)
{
	static struct backend_table table;
	struct sl_service svc;
	struct sl_service_meta zero_meta = { 0 };
	int err;

	if (bpf_map_lookup_elem(m->services, key, &svc))
		return -errno;
	if (bpf_map_delete_elem(m->services, key))
		return -errno;
	clear_cohorts(m, svc.id);
	err = read_backends(m, &table);
	if (err)
		return err;
	free_unclaimed(m, &table, svc.id);
	bpf_map_update_elem(m->meta, &svc.id, &zero_meta, BPF_ANY);
	return 0;
}
