// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading and attaching the steering programs (skeleton lifecycle: open,
 * set rodata and sizes, load, attach), and opening their pinned maps again
 * by path. libbpf pins every map by name under the pin root and adopts maps
 * already pinned there, so a restarted agent keeps the flows and counters.
 */
#include <errno.h>
#include <fnmatch.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "sluice/datapath.h"
#include "steer.skel.h"
#include "tcx.h"

int dp_nr_cpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

static bool tcx_device_exists(int ifindex, void *arg)
{
	char name[IF_NAMESIZE];

	(void)arg;
	return if_indextoname(ifindex, name) != NULL;
}

static void maps_reset(struct dp_maps *m)
{
	m->services = m->slots = m->backends = m->ct = -1;
	m->cohorts = m->stats = m->dp_stats = m->meta = m->filter = m->latency = m->agent = -1;
	m->revnat = m->sampling = -1;
}

/*
 * What the running kernel offers the programs, looked up in its BTF before
 * load, so that a missing feature is named instead of showing up as a
 * verifier dump. Sets the rodata switches that pick a path for this kernel.
 */
static int dp_probe_kernel(struct steer_bpf *skel)
{
	struct btf *vmlinux;
	bool kern_ctx;
	int err;

	/* CO-RE relocations (ip_summed, kfunc ids) need the kernel's BTF. */
	vmlinux = btf__load_vmlinux_btf();
	err = libbpf_get_error(vmlinux);
	if (err) {
		log_warn("kernel lacks BTF (CONFIG_DEBUG_INFO_BTF; /sys/kernel/btf/vmlinux): %s\n",
			 strerror(-err));
		return err;
	}
	/* Linux 6.3+: without it, checksums go through the csum helpers. */
	kern_ctx = btf__find_by_name_kind(vmlinux, "bpf_cast_to_kern_ctx", BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);
	skel->rodata->have_kern_ctx = kern_ctx;
	if (!kern_ctx)
		log_info("kernel lacks bpf_cast_to_kern_ctx() (Linux 6.3+): checksums through "
			 "the csum helpers\n");
	return 0;
}

/*
 * sl_dp_stats grows when a release adds a node-wide event, and libbpf then
 * refuses to adopt the pinned map of the release before. It holds nothing a
 * restart may not reset (counters a Prometheus scrape sees start again), so
 * unlike the other maps it is not worth refusing to start for: a pinned one
 * of another size is unpinned and a new one made. The programs still
 * attached keep theirs until the new ones replace them.
 */
static void dp_stats_renew_if_resized(const char *pin_root)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/sl_dp_stats", pin_root) >= (int)sizeof(path))
		return;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return; /* none pinned yet */
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.max_entries != SL_DP_COUNTERS &&
	    info.type == BPF_MAP_TYPE_PERCPU_ARRAY && info.key_size == sizeof(__u32) &&
	    info.value_size == sizeof(__u64)) {
		if (unlink(path))
			log_warn("%s: %s\n", path, strerror(errno));
		else
			log_info("%s held %u node-wide counters, this build has %d: "
				 "a new map, the counters start again\n", path, info.max_entries,
				 SL_DP_COUNTERS);
	}
	close(fd);
}

/* Whether netfilter's conntrack holds entries in this network namespace (kube-proxy, a NAT rule). */
static bool netfilter_tracking(void)
{
	FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_count", "re");
	unsigned long n = 0;

	if (!f)
		return false; /* no conntrack module, or not in this namespace */
	if (fscanf(f, "%lu", &n) != 1)
		n = 0;
	fclose(f);
	return n > 0;
}

int dp_load(struct datapath *dp, const struct dp_opts *opts)
{
	const char *root = opts->pin_root ? opts->pin_root : DP_DEFAULT_PIN_ROOT;
	uint32_t flows = opts->ct_flows ? opts->ct_flows : DP_DEFAULT_CT_FLOWS;
	struct steer_bpf *skel;
	int err;

	memset(dp, 0, sizeof(*dp));
	maps_reset(&dp->maps);
	dp->tc_api = opts->tc_api;
	if (snprintf(dp->pin_root, sizeof(dp->pin_root), "%s", root) >= (int)sizeof(dp->pin_root))
		return -ENAMETOOLONG;
	err = bpffs_prepare(dp->pin_root);
	if (err)
		return err;
	/* links of devices deleted while no agent ran: the kernel detached them */
	tcx_sweep(dp->pin_root, tcx_device_exists, NULL);
	dp_stats_renew_if_resized(dp->pin_root);

	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dp->pin_root);
	skel = steer_bpf__open_opts(&oo);
	if (!skel) {
		err = -errno;
		log_warn("opening the steering programs: %s\n", strerror(-err));
		return err;
	}
	if (opts->udp_timeout_ns) {
		skel->rodata->ct_udp_timeout_ns = opts->udp_timeout_ns;
		/* a busy flow must refresh well within a short timeout (ct.h) */
		if (opts->udp_timeout_ns / 4 < SL_CT_REFRESH_NS)
			skel->rodata->ct_refresh_ns = opts->udp_timeout_ns / 4;
	}
	skel->rodata->accounting = !opts->no_accounting;
	skel->rodata->host_routing = opts->host_routing;
	err = dp_probe_kernel(skel);
	if (err)
		goto cleanup;
	err = bpf_map__set_max_entries(skel->maps.sl_ct, flows);
	if (err) {
		log_warn("sizing conntrack for %u flows: %s\n", flows, strerror(-err));
		goto cleanup;
	}
	err = steer_bpf__load(skel);
	if (err) {
		log_warn("loading the steering programs (pin root %s): %s%s\n", dp->pin_root,
			 strerror(-err),
			 err == -EINVAL ? "; maps pinned there by another build or size? "
					  "`sluice agent --cleanup` removes them" : "");
		goto cleanup;
	}
	dp->skel = skel;
	if (opts->host_routing) {
		log_info("host routing on: steered packets are routed by the programs, "
			 "not by the node's stack (netfilter's FORWARD and POSTROUTING do not "
			 "see them)\n");
		if (netfilter_tracking())
			log_warn("host routing: netfilter's conntrack tracks flows on this node: "
				 "attach the backends' interfaces too (--iface), so that both "
				 "directions are routed; seeing only the replies, it takes them "
				 "for invalid (docs/datapath.md)\n");
	}
	dp->maps.services = bpf_map__fd(skel->maps.sl_services);
	dp->maps.slots = bpf_map__fd(skel->maps.sl_svc_slots);
	dp->maps.backends = bpf_map__fd(skel->maps.sl_backends);
	dp->maps.ct = bpf_map__fd(skel->maps.sl_ct);
	dp->maps.cohorts = bpf_map__fd(skel->maps.sl_cohorts);
	dp->maps.stats = bpf_map__fd(skel->maps.sl_stats);
	dp->maps.dp_stats = bpf_map__fd(skel->maps.sl_dp_stats);
	dp->maps.meta = bpf_map__fd(skel->maps.sl_svc_meta);
	dp->maps.filter = bpf_map__fd(skel->maps.sl_filter);
	dp->maps.latency = bpf_map__fd(skel->maps.sl_latency);
	dp->maps.agent = bpf_map__fd(skel->maps.sl_agent);
	dp->maps.revnat = bpf_map__fd(skel->maps.sl_revnat);
	dp->maps.sampling = bpf_map__fd(skel->maps.sl_svc_sampling);
	return 0;

cleanup:
	steer_bpf__destroy(skel);
	return err;
}

static int tc_attach_one(int ifindex, enum bpf_tc_attach_point where, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = DP_TC_HANDLE, .priority = DP_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	/*
	 * One clsact serves both directions; it may be there already (ours
	 * from before, or another tool's), which is fine.
	 */
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	err = bpf_tc_hook_create(&hook);
	hook.attach_point = where;
	/* ENOENT: the kernel knows no such qdisc kind, nor a module for it. */
	if (err == -ENOENT || err == -EOPNOTSUPP)
		log_warn("kernel lacks the clsact qdisc (CONFIG_NET_SCH_INGRESS)\n");
	if (err && err != -EEXIST)
		return err;
	err = bpf_tc_attach(&hook, &to);
	if (err == -ENOENT || err == -EOPNOTSUPP)
		log_warn("kernel lacks the BPF TC classifier (CONFIG_NET_CLS_BPF)\n");
	return err;
}

/* Is @name in the comma-separated list @list (names or fnmatch globs)? */
static bool iface_listed(const char *list, const char *name)
{
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!fnmatch(tok, name, 0))
			return true;
	return false;
}

static void tc_detach_one(int ifindex, enum bpf_tc_attach_point where)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = DP_TC_HANDLE, .priority = DP_TC_PRIORITY);

	/* Only our filter goes; clsact and other tools' filters stay. */
	bpf_tc_detach(&hook, &to);
}

/* Is the program in our cls_bpf slot (handle, priority) one of sluice's? */
static bool tc_slot_is_ours(int ifindex, enum bpf_tc_attach_point where)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = DP_TC_HANDLE, .priority = DP_TC_PRIORITY);
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int fd;
	bool ours;

	if (bpf_tc_query(&hook, &to))
		return false;
	fd = bpf_prog_get_fd_by_id(to.prog_id);
	if (fd < 0)
		return false;
	ours = !bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, "sl_tc_", 6);
	close(fd);
	return ours;
}

/* Whether @ifname's driver is @driver (ethtool's name for it); @unknown when it cannot tell. */
static bool driver_is(const char *ifname, const char *driver, bool unknown)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { 0 };
	int fd, err;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return unknown;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&info;
	err = ioctl(fd, SIOCETHTOOL, &ifr);
	close(fd);
	if (err)
		return unknown;
	return !strcmp(info.driver, driver);
}

/*
 * Host routing sends packets for @ifindex straight to its peer's ingress
 * when it has one (bpf/lib/route.h): veth and netkit devices do. Any other
 * device would drop them there, so an unknown one is left unmarked.
 */
static void route_mark_peer(struct datapath *dp, const char *ifname, int ifindex, bool on)
{
	__u64 bit;

	if (ifindex < 0 || ifindex >= SL_ROUTE_PEER_IFINDEXES)
		return;
	bit = 1ULL << (ifindex % 64);
	if (on && (driver_is(ifname, "veth", false) || driver_is(ifname, "netkit", false)))
		dp->skel->bss->route_peer_ifs[ifindex / 64] |= bit;
	else
		dp->skel->bss->route_peer_ifs[ifindex / 64] &= ~bit;
}

/*
 * One half at one of @h's TC hooks, through tcx or clsact as this datapath
 * does. The first attach of an AUTO datapath finds out which the kernel
 * has. Moving from one API to the other (a kernel upgrade, --tc-api) takes
 * the other's attachment of ours off once the new one runs: a packet seen
 * by both in between is rewritten once, the second half finding no VIP.
 */
static int hook_attach(struct datapath *dp, struct dp_hook *h, bool egress, int prog_fd)
{
	enum bpf_tc_attach_point where = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
	int err;

	if (dp->tc_api != DP_TC_CLSACT) {
		/* attached before (a rename): the pin holds the link, tcx_attach reopens it */
		if (h->tcx_fd[egress] >= 0)
			close(h->tcx_fd[egress]);
		err = tcx_attach(dp->pin_root, h->ifindex, egress, prog_fd, &h->tcx_fd[egress]);
		if (!err) {
			if (dp->tc_api == DP_TC_AUTO)
				log_info("attaching through tcx links (pinned under %s)\n", dp->pin_root);
			dp->tc_api = DP_TC_TCX;
			if (tc_slot_is_ours(h->ifindex, where))
				tc_detach_one(h->ifindex, where);
			return 0;
		}
		if (err != -EOPNOTSUPP || dp->tc_api == DP_TC_TCX) {
			if (err == -EOPNOTSUPP)
				log_warn("kernel lacks tcx (Linux 6.6+); --tc-api clsact works "
					 "without\n");
			return err;
		}
		log_info("kernel lacks tcx (Linux 6.6+): attaching through clsact and cls_bpf\n");
		dp->tc_api = DP_TC_CLSACT;
	}
	err = tc_attach_one(h->ifindex, where, prog_fd);
	if (!err)
		tcx_release(dp->pin_root, h->ifindex, egress, &h->tcx_fd[egress]);
	return err;
}

/* Take one half off @h's hook; a deleted device (@gone) took it with it. */
static void hook_detach(struct datapath *dp, struct dp_hook *h, bool egress, bool gone)
{
	if (h->tcx_fd[egress] >= 0)
		tcx_release(dp->pin_root, h->ifindex, egress, &h->tcx_fd[egress]);
	else if (!gone)
		tc_detach_one(h->ifindex, egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
}

int dp_attach(struct datapath *dp, const char *ifname)
{
	int ifindex = if_nametoindex(ifname);

	if (!ifindex) {
		int err = -errno;

		log_warn("interface %s: %s\n", ifname, strerror(-err));
		return err;
	}
	return dp_attach_ifindex(dp, ifname, ifindex);
}

static void hook_init(struct dp_hook *h, const char *ifname, int ifindex)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->ifname, sizeof(h->ifname), "%s", ifname);
	h->ifindex = ifindex;
	h->tcx_fd[0] = h->tcx_fd[1] = -1;
}

int dp_attach_ifindex(struct datapath *dp, const char *ifname, int ifindex)
{
	struct dp_hook *h = NULL, fresh;
	int err;

	/* Attached already (a rename within the pattern): replace in place, keep one hook. */
	for (int i = 0; i < dp->n_hooks; i++)
		if (dp->hooks[i].ifindex == ifindex)
			h = &dp->hooks[i];
	if (!h && dp->n_hooks >= DP_MAX_IFACES) {
		log_warn("%s: more than %d interfaces\n", ifname, DP_MAX_IFACES);
		return -E2BIG;
	}
	if (!h) {
		hook_init(&fresh, ifname, ifindex);
		h = &fresh;
	}
	err = hook_attach(dp, h, false, bpf_program__fd(dp->skel->progs.sl_tc_forward));
	if (err) {
		log_warn("attaching the forward half to %s ingress: %s\n", ifname, strerror(-err));
		return err;
	}
	err = hook_attach(dp, h, true, bpf_program__fd(dp->skel->progs.sl_tc_reverse));
	if (err) {
		log_warn("attaching the reverse half to %s egress: %s\n", ifname, strerror(-err));
		hook_detach(dp, h, false, false);
		return err;
	}
	if (h == &fresh) {
		h = &dp->hooks[dp->n_hooks++];
		*h = fresh;
	}
	snprintf(h->ifname, sizeof(h->ifname), "%s", ifname);
	route_mark_peer(dp, ifname, ifindex, true);
	log_info("attached to %s (ifindex %d): forward at ingress, reverse at egress (%s)\n",
		 ifname, ifindex, dp->tc_api == DP_TC_TCX ? "tcx" : "clsact");
	return 0;
}

void dp_forget(struct datapath *dp, int ifindex, bool detach)
{
	for (int i = 0; i < dp->n_hooks; i++) {
		if (dp->hooks[i].ifindex != ifindex)
			continue;
		/*
		 * A deleted interface took its filters and links with it (only the
		 * links' pins are left to remove); a renamed one keeps them.
		 */
		hook_detach(dp, &dp->hooks[i], false, !detach);
		hook_detach(dp, &dp->hooks[i], true, !detach);
		/* the index may come back as another device */
		route_mark_peer(dp, dp->hooks[i].ifname, ifindex, false);
		log_info("%s %s (ifindex %d)\n", detach ? "detached from" : "forgot",
			 dp->hooks[i].ifname, ifindex);
		dp->hooks[i] = dp->hooks[--dp->n_hooks];
		return;
	}
}

/*
 * Drivers whose XDP frames are skbs handed over by a local sender, and so
 * may carry CHECKSUM_PARTIAL L4 fields (bpf/lib/nat.h): a veth's come from
 * its peer, a tun/tap's from the process (or VM) writing to it. Other
 * drivers' frames come off the wire, checksums full.
 */
static bool xdp_frames_may_be_partial(const char *ifname)
{
	/* unknown: guessing costs a few ns, missing costs packets */
	return driver_is(ifname, "veth", true) || driver_is(ifname, "tun", true);
}

void dp_xdp_guess_csum(struct datapath *dp, int ifindex, bool guess)
{
	struct steer_bpf__bss *bss = dp->skel->bss;
	__u64 bit;

	if (ifindex < 0)
		return;
	if (ifindex >= SL_XDP_GUESS_IFINDEXES) {
		/* one switch for every high ifindex: once on, it stays on */
		bss->xdp_csum_guess_high |= guess;
		return;
	}
	bit = 1ULL << (ifindex % 64);
	if (guess)
		bss->xdp_csum_guess_ifs[ifindex / 64] |= bit;
	else
		bss->xdp_csum_guess_ifs[ifindex / 64] &= ~bit;
}

int dp_attach_xdp(struct datapath *dp, const char *ifname)
{
	int ifindex = if_nametoindex(ifname), fd, err, flags = XDP_FLAGS_DRV_MODE;
	struct dp_hook *h;
	bool guess;

	if (!ifindex) {
		err = -errno;
		log_warn("interface %s: %s\n", ifname, strerror(-err));
		return err;
	}
	if (dp->n_hooks >= DP_MAX_IFACES)
		return -E2BIG;
	fd = bpf_program__fd(dp->skel->progs.sl_xdp_forward);
	/* before the program sees a frame of this interface */
	guess = xdp_frames_may_be_partial(ifname);
	dp_xdp_guess_csum(dp, ifindex, guess);
	/* native first: the point of XDP is to run before the skb exists */
	err = bpf_xdp_attach(ifindex, fd, flags, NULL);
	if (err) {
		log_debug("%s: native XDP refused (%s); trying generic\n", ifname, strerror(-err));
		flags = XDP_FLAGS_SKB_MODE;
		/* generic mode runs on skbs, GRO-merged ones partial */
		guess = true;
		dp_xdp_guess_csum(dp, ifindex, guess);
		err = bpf_xdp_attach(ifindex, fd, flags, NULL);
	}
	if (err) {
		log_warn("attaching the forward half to %s as XDP: %s\n", ifname, strerror(-err));
		return err;
	}
	h = &dp->hooks[dp->n_hooks];
	hook_init(h, ifname, ifindex);
	err = hook_attach(dp, h, true, bpf_program__fd(dp->skel->progs.sl_tc_reverse));
	if (err) {
		log_warn("attaching the reverse half to %s egress: %s\n", ifname, strerror(-err));
		bpf_xdp_detach(ifindex, flags, NULL);
		return err;
	}
	dp->n_hooks++;
	h->xdp_flags = flags;
	log_info("attached to %s (ifindex %d): forward as XDP in %s mode, reverse at TC egress "
		 "(%s)%s\n", ifname, ifindex, flags == XDP_FLAGS_DRV_MODE ? "native" : "generic",
		 dp->tc_api == DP_TC_TCX ? "tcx" : "clsact",
		 guess ? "; checksums may arrive partial" : "");
	return 0;
}

void dp_detach(struct datapath *dp)
{
	for (int i = 0; i < dp->n_hooks; i++) {
		if (dp->hooks[i].xdp_flags)
			bpf_xdp_detach(dp->hooks[i].ifindex, dp->hooks[i].xdp_flags, NULL);
		hook_detach(dp, &dp->hooks[i], false, false);
		hook_detach(dp, &dp->hooks[i], true, false);
		log_info("detached from %s\n", dp->hooks[i].ifname);
	}
	dp->n_hooks = 0;
}

void dp_unpin(struct datapath *dp)
{
	struct bpf_map *map;

	if (!dp->skel)
		return;
	bpf_object__for_each_map(map, dp->skel->obj) {
		if (bpf_map__is_pinned(map))
			bpf_map__unpin(map, NULL);
	}
	if (rmdir(dp->pin_root) && errno != ENOENT)
		log_warn("removing pin root %s: %s\n", dp->pin_root, strerror(errno));
}

void dp_destroy(struct datapath *dp)
{
	/* the links stay attached through their pins */
	for (int i = 0; i < dp->n_hooks; i++)
		for (int w = 0; w < 2; w++)
			if (dp->hooks[i].tcx_fd[w] >= 0)
				close(dp->hooks[i].tcx_fd[w]);
	steer_bpf__destroy(dp->skel);
	dp->skel = NULL;
}

static int open_pin(const char *root, const char *name, int *fd)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", root, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		int err = -errno;

		log_debug("opening %s: %s\n", path, strerror(-err));
		return err;
	}
	return 0;
}

int dp_maps_open_pinned(struct dp_maps *m, const char *pin_root)
{
	int err;

	maps_reset(m);
	if ((err = open_pin(pin_root, SL_MAP_SERVICES, &m->services)) ||
	    (err = open_pin(pin_root, SL_MAP_SLOTS, &m->slots)) ||
	    (err = open_pin(pin_root, SL_MAP_BACKENDS, &m->backends)) ||
	    (err = open_pin(pin_root, SL_MAP_CT, &m->ct)) ||
	    (err = open_pin(pin_root, SL_MAP_COHORTS, &m->cohorts)) ||
	    (err = open_pin(pin_root, SL_MAP_STATS, &m->stats)) ||
	    (err = open_pin(pin_root, SL_MAP_DP_STATS, &m->dp_stats)) ||
	    (err = open_pin(pin_root, SL_MAP_SVC_META, &m->meta)) ||
	    (err = open_pin(pin_root, SL_MAP_FILTER, &m->filter)) ||
	    (err = open_pin(pin_root, SL_MAP_LATENCY, &m->latency)) ||
	    (err = open_pin(pin_root, SL_MAP_AGENT, &m->agent)) ||
	    (err = open_pin(pin_root, SL_MAP_REVNAT, &m->revnat)) ||
	    (err = open_pin(pin_root, SL_MAP_SAMPLING, &m->sampling))) {
		dp_maps_close(m);
		return err;
	}
	return 0;
}

void dp_maps_close(struct dp_maps *m)
{
	int *fds[] = { &m->services, &m->slots,	   &m->backends, &m->ct,     &m->cohorts,
		       &m->stats,    &m->dp_stats, &m->meta,	 &m->filter, &m->latency,
		       &m->agent,    &m->revnat,   &m->sampling };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int dp_backend_stats(const struct dp_maps *m, uint32_t backend_id, struct sl_backend_stats *sum)
{
	int n = dp_nr_cpus();
	struct sl_backend_stats *per = calloc(n, sizeof(*per));
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)sum;
	int err = 0;

	/* Every field is a __u64 counter, so the sum is word by word. */
	_Static_assert(sizeof(*sum) % sizeof(uint64_t) == 0, "sl_backend_stats is all __u64");
	if (!per)
		return -ENOMEM;
	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(m->stats, &backend_id, per)) {
		err = -errno;
		goto out;
	}
	for (int c = 0; c < n; c++) {
		src = (const uint64_t *)&per[c];
		for (size_t w = 0; w < sizeof(*sum) / sizeof(uint64_t); w++)
			dst[w] += src[w];
	}
out:
	free(per);
	return err;
}

int dp_counter(const struct dp_maps *m, uint32_t counter, uint64_t *sum)
{
	int n = dp_nr_cpus();
	uint64_t per[n];

	*sum = 0;
	if (bpf_map_lookup_elem(m->dp_stats, &counter, per))
		return -errno;
	for (int c = 0; c < n; c++)
		*sum += per[c];
	return 0;
}

int dp_backend_latency(const struct dp_maps *m, uint32_t backend_id, uint64_t *hist)
{
	int n = dp_nr_cpus();
	struct sl_latency_hist *per = calloc(n, sizeof(*per));
	int err = 0;

	if (!per)
		return -ENOMEM;
	memset(hist, 0, SL_LAT_BUCKETS * sizeof(*hist));
	if (bpf_map_lookup_elem(m->latency, &backend_id, per)) {
		err = -errno;
		goto out;
	}
	/* Bucket counts add exactly across CPUs: the merge loses nothing. */
	for (int c = 0; c < n; c++)
		for (int b = 0; b < SL_LAT_BUCKETS; b++)
			hist[b] += per[c].buckets[b];
out:
	free(per);
	return err;
}

/* tcx_sweep()'s filter for --cleanup: the links of interfaces not listed stay. */
static bool tcx_not_listed(int ifindex, void *arg)
{
	char name[IF_NAMESIZE];

	return if_indextoname(ifindex, name) && !iface_listed(arg, name);
}

int dp_cleanup(const char *pin_root, const char *ifaces, int *filters, int *pins)
{
	static const char *const names[] = { SL_MAP_SERVICES, SL_MAP_SLOTS,   SL_MAP_BACKENDS,
					     SL_MAP_CT,	      SL_MAP_COHORTS, SL_MAP_STATS,
					     SL_MAP_DP_STATS, SL_MAP_SVC_META, SL_MAP_FILTER,
					     SL_MAP_LATENCY,  SL_MAP_AGENT,    SL_MAP_REVNAT,
					     SL_MAP_SAMPLING };
	struct if_nameindex *all = if_nameindex(), *it;

	*filters = *pins = 0;
	for (it = all; it && it->if_index; it++) {
		const enum bpf_tc_attach_point where[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

		__u32 xdp_id = 0;

		if (ifaces && !iface_listed(ifaces, it->if_name))
			continue;
		/* our XDP program, if that is what sits on the interface */
		if (!bpf_xdp_query_id(it->if_index, 0, &xdp_id) && xdp_id) {
			struct bpf_prog_info info = { 0 };
			__u32 len = sizeof(info);
			int fd = bpf_prog_get_fd_by_id(xdp_id);

			if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) &&
			    !strcmp(info.name, "sl_xdp_forward")) {
				bpf_xdp_detach(it->if_index, 0, NULL);
				(*filters)++;
				log_info("detached sl_xdp_forward from %s\n", it->if_name);
			}
			if (fd >= 0)
				close(fd);
		}
		for (int w = 0; w < 2; w++) {
			/* only our handle and priority, and only if a sluice program sits there */
			if (!tc_slot_is_ours(it->if_index, where[w]))
				continue;
			tc_detach_one(it->if_index, where[w]);
			(*filters)++;
			log_info("detached %s from %s %s\n", w ? "sl_tc_reverse" : "sl_tc_forward",
				 it->if_name, w ? "egress" : "ingress");
		}
	}
	if_freenameindex(all);
	/* tcx links go with their pins; those of devices gone are only pins by now */
	*filters += tcx_sweep(pin_root, ifaces ? tcx_not_listed : NULL, (void *)ifaces);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", pin_root, names[i]);
		if (!unlink(path))
			(*pins)++;
		else if (errno != ENOENT)
			log_warn("removing %s: %s\n", path, strerror(errno));
	}
	if (rmdir(pin_root) && errno != ENOENT)
		log_warn("removing %s: %s (not empty: something else is pinned there)\n", pin_root,
			 strerror(errno));
	return 0;
}
