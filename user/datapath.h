/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath as user space sees it: load the steering programs with their
 * maps pinned under a pin root, attach them to interfaces at TC (tcx links,
 * or clsact and cls_bpf before Linux 6.6) or XDP, and open the pinned maps
 * again from any process (the CLI, the tests) by path.
 */
#ifndef SLUICE_USER_DATAPATH_H
#define SLUICE_USER_DATAPATH_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/datapath.h"

#define DP_DEFAULT_PIN_ROOT "/sys/fs/bpf/sluice"
#define DP_BPFFS_MOUNT "/sys/fs/bpf"
#define DP_MAX_IFACES 1024 /* a node runs 110 pods by default; each has a veth */
#define DP_DEFAULT_CT_FLOWS 131072

/* cls_bpf filter identity: ours to replace and remove, nobody else's. */
#define DP_TC_HANDLE 0x51ce
#define DP_TC_PRIORITY 1

/* File descriptors of the pinned maps; -1 where not open. */
struct dp_maps {
	int services;
	int slots;
	int backends;
	int ct;
	int cohorts;
	int stats;
	int dp_stats;
	int meta;
	int filter;
	int latency;
	int agent;
	int revnat;
	int sampling;
};

/* How the TC halves are attached. */
enum dp_tc_api {
	DP_TC_AUTO, /* tcx where the kernel has it (6.6+), else clsact */
	DP_TC_TCX, /* tcx links, pinned under the pin root */
	DP_TC_CLSACT, /* cls_bpf filters (handle DP_TC_HANDLE, priority DP_TC_PRIORITY) */
};

struct dp_hook {
	char ifname[IF_NAMESIZE];
	int ifindex;
	int xdp_flags; /* XDP forward half attached in this mode (0: TC forward half) */
	int tcx_fd[2]; /* ingress and egress tcx links; -1: none (clsact, or XDP ingress) */
};

struct dp_opts {
	const char *pin_root; /* NULL: DP_DEFAULT_PIN_ROOT */
	uint32_t ct_flows; /* conntrack capacity in flows; 0: DP_DEFAULT_CT_FLOWS */
	uint64_t udp_timeout_ns; /* 0: SL_CT_DEFAULT_UDP_TIMEOUT_NS */
	bool no_accounting; /* leave request accounting out of the programs */
	bool host_routing; /* route steered packets in the programs (bpf/lib/route.h) */
	enum dp_tc_api tc_api;
};

struct steer_bpf;

struct datapath {
	struct steer_bpf *skel;
	struct dp_maps maps;
	char pin_root[PATH_MAX];
	enum dp_tc_api tc_api; /* AUTO until the first attach finds out */
	int n_hooks;
	struct dp_hook hooks[DP_MAX_IFACES];
};

/**
 * bpffs_prepare() - make sure @pin_root exists on a BPF filesystem.
 * Mounts bpffs at /sys/fs/bpf when nothing is mounted there (as Cilium's
 * agent does: many nodes boot without it) and creates @pin_root.
 * Return: 0 or -errno, with the reason logged.
 */
int bpffs_prepare(const char *pin_root);

/** dp_load() - open, configure and load the programs; maps pinned or adopted. */
int dp_load(struct datapath *dp, const struct dp_opts *opts);
/** dp_attach() - forward half at @ifname's ingress, reverse half at its egress. */
int dp_attach(struct datapath *dp, const char *ifname);
/** dp_attach_ifindex() - dp_attach() by index; again on an attached one replaces in place. */
int dp_attach_ifindex(struct datapath *dp, const char *ifname, int ifindex);
/** dp_forget() - drop @ifindex's hook; @detach: remove its filters too (it still exists). */
void dp_forget(struct datapath *dp, int ifindex, bool detach);
/**
 * dp_attach_xdp() - the forward half as XDP on @ifname (north-south: the
 * node's NIC), native mode where the driver has it, generic otherwise; the
 * reverse half at its TC egress as usual. Logs which mode it got.
 */
int dp_attach_xdp(struct datapath *dp, const char *ifname);
/**
 * dp_xdp_guess_csum() - whether the XDP forward half reads the kind of an L4
 * checksum (full or CHECKSUM_PARTIAL) from each frame of @ifindex (bpf/lib/nat.h).
 * dp_attach_xdp() sets it by driver and mode; tests set it by hand.
 */
void dp_xdp_guess_csum(struct datapath *dp, int ifindex, bool guess);
/** dp_detach() - remove sluice's programs from every interface it attached to. */
void dp_detach(struct datapath *dp);
/** dp_unpin() - remove the pinned maps and the pin root directory. */
void dp_unpin(struct datapath *dp);
/** dp_destroy() - close everything; pins and attachments (tcx links pinned) stay. */
void dp_destroy(struct datapath *dp);

/**
 * dp_cleanup() - what `sluice agent --cleanup` does: remove sluice's
 * attachments (tcx links pinned under @pin_root; cls_bpf filters with our
 * handle and priority, and only where a sl_tc_* program sits; our XDP
 * program) from every interface, or those matching @ifaces (names or
 * globs), and sluice's pins under @pin_root, then the directory if it is
 * empty. clsact qdiscs stay: other tools may use them.
 * @filters: attachments removed; @pins: maps unpinned.
 */
int dp_cleanup(const char *pin_root, const char *ifaces, int *filters, int *pins);

/** dp_maps_open_pinned() - open every map pinned under @pin_root by name. */
int dp_maps_open_pinned(struct dp_maps *m, const char *pin_root);
void dp_maps_close(struct dp_maps *m);

/** dp_backend_stats() - one backend's counters summed over every CPU. */
int dp_backend_stats(const struct dp_maps *m, uint32_t backend_id, struct sl_backend_stats *sum);
/** dp_backend_latency() - one backend's latency histogram (SL_LAT_BUCKETS) over every CPU. */
int dp_backend_latency(const struct dp_maps *m, uint32_t backend_id, uint64_t *hist);
/** dp_counter() - one sl_dp_stats event counter summed over every CPU. */
int dp_counter(const struct dp_maps *m, uint32_t counter, uint64_t *sum);

/** dp_nr_cpus() - possible CPUs, the value count of per-CPU maps. */
int dp_nr_cpus(void);

#endif /* SLUICE_USER_DATAPATH_H */
