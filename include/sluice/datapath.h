/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The contract between sluice's BPF programs and user space: map names, keys,
 * values and limits. Both sides include this file and nothing else describes
 * these layouts, so the agent, the CLI, the tests and bpftool (through BTF)
 * all read the same bytes the same way.
 *
 * Rules for editing: fixed-width types only, explicit padding, and a
 * _Static_assert on every size, because a layout change silently breaks maps
 * pinned by a previous agent.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <linux/types.h>

/* Map names: at most 15 characters so bpftool shows them whole. */
#define SL_MAP_SERVICES "sl_services"
#define SL_MAP_SLOTS "sl_svc_slots"
#define SL_MAP_BACKENDS "sl_backends"
#define SL_MAP_CT "sl_ct"
#define SL_MAP_COHORTS "sl_cohorts"
#define SL_MAP_STATS "sl_stats"
#define SL_MAP_DP_STATS "sl_dp_stats"
#define SL_MAP_SVC_META "sl_svc_meta"
#define SL_MAP_FILTER "sl_filter"
#define SL_MAP_LATENCY "sl_latency"
#define SL_MAP_AGENT "sl_agent"
#define SL_MAP_REVNAT "sl_revnat"
#define SL_MAP_SAMPLING "sl_svc_sampling"

/* Limits. They size the maps; the agent rejects specs beyond them. */
#define SL_MAX_SERVICES 1024
#define SL_MAX_SLOTS 128 /* backends of one service, both versions together */
#define SL_SLOT_BANKS 2 /* each service has two slot banks; see sl_svc_slots */
#define SL_MAX_BACKENDS 1024 /* backend ids, node-wide; sizes the per-CPU stats */
#define SL_MAX_COHORTS 16384

#define SL_WEIGHT_MAX 10000 /* weights are basis points: 10000 = 100% */
#define SL_BUCKETS 10000 /* client affinity hashes clients into this many buckets */

/*
 * The TC halves' verdict for every packet they let through, rewritten or
 * not: TC_ACT_UNSPEC, which tcx calls TCX_NEXT. The next program at the
 * same hook (another tool's tcx program or cls_bpf filter) still sees the
 * packet, where TC_ACT_OK would end the hook there.
 */
#define SL_TC_PASS (-1)

/* Versions of a rollout. */
enum sl_version {
	SL_PRIMARY = 0,
	SL_CANARY = 1,
	SL_VERSION_NONE = 255, /* cohort value for "no pin" is never stored */
};

enum sl_affinity {
	SL_AFFINITY_CONNECTION = 0, /* each new connection drawn by weight */
	SL_AFFINITY_CLIENT = 1, /* client address hashed into a bucket */
};

/* sl_service.flags */
#define SL_SVC_F_COHORTS (1U << 0) /* look the client up in sl_cohorts */
#define SL_SVC_F_BANK1 (1U << 1) /* the live slots are bank 1, else bank 0 */
#define SL_SVC_F_FAILSAFE (1U << 2) /* agent silent too long: new connections to primary */
#define SL_SVC_F_PRIMARY_ONLY (1U << 3) /* rolled back: primary only, cohorts included */
/*
 * sl_svc_sampling: array indexed by service id, the service's latency
 * sampling k as the agent chooses it from the request rate: the datapath
 * times 1 in 2^k requests (0: every one). Reading the clock is the dearest
 * thing request accounting does (about 100 ns a call on a busy node, two a
 * request); at thousands of requests a second a sample gives the same p99,
 * and every response is still counted. Every flow reads it at each request,
 * through its entry's svc_ref, so a keep-alive connection opened while the
 * service was quiet follows the rate too. docs/accounting.md says more.
 */
#define SL_SAMPLE_SHIFT_MAX 4 /* at most 1 in 16 */

/*
 * An address of either family. IPv4 uses the first word and leaves the rest
 * zero, so one key layout serves both families and a v4 key never equals a
 * v6 key (the family byte differs as well).
 */
union sl_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 bytes[16];
};

/* sl_services: which (VIP, port, protocol) sluice owns, and how to split it. */
struct sl_service_key {
	union sl_addr vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* AF_INET or AF_INET6 */
};
_Static_assert(sizeof(struct sl_service_key) == 20, "sl_service_key layout");

struct sl_service {
	__u32 id; /* index into sl_svc_slots, stable for the rollout's life */
	__u16 weight; /* canary weight, basis points 0..SL_WEIGHT_MAX */
	__u8 affinity; /* enum sl_affinity */
	__u8 flags; /* SL_SVC_F_* */
	__u16 primary_count; /* slots [0, primary_count) are primary */
	__u16 canary_count; /* slots [primary_count, +canary_count) are canary */
	__u32 hash_seed; /* per rollout, so each rollout picks its own client cohort */
};
_Static_assert(sizeof(struct sl_service) == 16, "sl_service layout");

/*
 * sl_svc_meta: array indexed by service id, written by the agent and read by
 * people: the datapath never looks at it. It is a map rather than a file so
 * that `bpftool map dump` and `sluice status` with the agent down can name
 * what each service entry belongs to.
 */
struct sl_service_meta {
	char name[96]; /* "namespace/name" of the Canary */
	char primary_version[48];
	char canary_version[48];
	__u64 updated_unix_ms; /* last write by the agent, wall clock */
};
_Static_assert(sizeof(struct sl_service_meta) == 200, "sl_service_meta layout");

/*
 * sl_filter: two bitmaps, one array entry each, that let every packet that
 * is not sluice's leave after a bit test instead of a hash lookup. Bit
 * sl_filter_bit(addr, port) is set in SL_FILTER_VIP for each steered VIP
 * and port, and in SL_FILTER_BACKEND for each backend address and port. A
 * set bit only means "look it up": false positives cost a lookup, never a
 * wrong rewrite. Bits are only ever added while the agent runs, so flows to
 * a backend that left the spec keep their replies translated.
 */
#define SL_FILTER_BITS 65536
enum sl_filter_kind {
	SL_FILTER_VIP = 0,
	SL_FILTER_BACKEND = 1,
	SL_FILTERS,
};

struct sl_filter {
	__u64 words[SL_FILTER_BITS / 64];
};

/*
 * sl_agent: one entry, the agent's heartbeat. The agent writes
 * bpf_ktime_get_ns()'s clock (CLOCK_MONOTONIC) at least once a second; when
 * it is older than failsafe_after_ns, services with SL_SVC_F_FAILSAFE send
 * every new connection to primary (established ones are left alone): a
 * canary nobody watches gets no new traffic.
 */
struct sl_agent_state {
	__u64 heartbeat_ns;
	__u64 failsafe_after_ns; /* 0: fail-safe off */
};
_Static_assert(sizeof(struct sl_agent_state) == 16, "sl_agent_state layout");

/* sl_backends: array indexed by backend id. */
struct sl_backend {
	union sl_addr addr;
	__be16 port;
	__u8 family;
	__u8 version; /* enum sl_version */
	__u32 svc_id;
};
_Static_assert(sizeof(struct sl_backend) == 24, "sl_backend layout");

/*
 * sl_svc_slots: array of backend ids. Service s owns SL_SLOT_BANKS banks of
 * SL_MAX_SLOTS; slot i of bank k is at (s * SL_SLOT_BANKS + k) * SL_MAX_SLOTS + i.
 * The agent writes a new backend set into the idle bank, then flips
 * SL_SVC_F_BANK1 together with the counts in one sl_services update, so a new
 * flow never sees new counts with old slots or the reverse.
 */
static inline __attribute__((always_inline)) __u32 sl_slot_index(__u32 svc_id, __u32 bank,
								 __u32 slot)
{
	return (svc_id * SL_SLOT_BANKS + bank) * SL_MAX_SLOTS + slot;
}

/* sl_cohorts: LPM trie; prefixlen counts svc_id and family bits as well. */
struct sl_cohort_key {
	__u32 prefixlen; /* 64 + address prefix length */
	__u32 svc_id; /* big endian in the trie's view: store with htonl */
	__u32 family; /* likewise htonl(AF_INET or AF_INET6) */
	union sl_addr addr;
};
_Static_assert(sizeof(struct sl_cohort_key) == 28, "sl_cohort_key layout");
#define SL_COHORT_PREFIX_BASE 64

/*
 * sl_ct: one LRU hash entry per flow, keyed by the flow as the client sent it
 * (client -> VIP); the value names the chosen backend. Both halves use the
 * same entry: the reverse half rebuilds the key from a reply (backend ->
 * client) with the VIPs sl_revnat lists for that backend, and rewrites only
 * replies whose entry names exactly that backend. One entry, not one per
 * direction: a new flow costs one insert, and a flow 104 bytes of key and
 * value instead of twice that.
 */
struct sl_ct_key {
	union sl_addr saddr;
	union sl_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 reserved; /* 0; reverse entries (1) were in this layout until sl_revnat */
	__u8 pad;
};
_Static_assert(sizeof(struct sl_ct_key) == 40, "sl_ct_key layout");

/*
 * sl_revnat: for each backend (address, port, protocol), the VIPs and ports
 * of the services it serves, so that a reply can find its flow. Nearly
 * always one; a pod behind several Services (or ports) has several. The agent only adds
 * while it runs (a backend that left a service keeps its VIP for the replies
 * of flows still draining) and prunes VIPs no service uses when it needs the
 * room.
 */
#define SL_REVNAT_VIPS 16
#define SL_MAX_REVNAT (2 * SL_MAX_BACKENDS)

struct sl_revnat_key {
	union sl_addr addr; /* the backend's */
	__be16 port;
	__u8 proto;
	__u8 family;
};
_Static_assert(sizeof(struct sl_revnat_key) == 20, "sl_revnat_key layout");

struct sl_revnat_vip {
	union sl_addr vip;
	__be16 port;
	__u16 pad;
};

struct sl_revnat {
	__u32 count; /* vips[0, count) are valid */
	__u32 pad;
	struct sl_revnat_vip vips[SL_REVNAT_VIPS];
};
_Static_assert(sizeof(struct sl_revnat) == 8 + 20 * SL_REVNAT_VIPS, "sl_revnat layout");

/* sl_ct_entry.flags: the TCP connection as both halves saw it */
#define SL_CT_F_FIN_FWD (1U << 0) /* client sent FIN */
#define SL_CT_F_FIN_REV (1U << 1) /* backend sent FIN */
#define SL_CT_F_RST (1U << 2) /* either side sent RST */
#define SL_CT_F_SEEN_REPLY (1U << 3) /* the backend answered the SYN */
#define SL_CT_F_SYN_RETX (1U << 4) /* the client had to send its SYN again */
/*
 * Set by the agent (a rollback's reset): the client's next packet is steered
 * anew, while the backend's answers already in flight still go back.
 */
#define SL_CT_F_EVICT (1U << 5)

/* sl_ct_entry.http_flags: request accounting */
#define SL_HTTP_F_PIPELINED (1U << 0) /* two requests were outstanding at once */
#define SL_HTTP_F_UNTIMED (1U << 1) /* the oldest unanswered request is not in the sample */

struct sl_ct_entry {
	__u64 created_ns; /* bpf_ktime_get_ns() at the first packet */
	__u64 last_seen_ns; /* UDP only, either direction; refreshed at most once per
			     * SL_CT_REFRESH_NS (a quarter of a shorter timeout) */
	union sl_addr nat_addr; /* the backend's address ... */
	__be16 nat_port; /* ... and port */
	__u8 flags; /* SL_CT_F_* */
	__u8 version; /* enum sl_version of the backend */
	__u32 backend_id;
	/* Request accounting. */
	__u64 req_ns; /* first byte of the oldest unanswered request */
	__u32 req_seq; /* its TCP sequence number: a retransmission is not a request */
	__u32 resp_seq; /* the last response head's, likewise */
	__u8 pending; /* requests seen, responses not yet */
	__u8 http_flags; /* SL_HTTP_F_* */
	/*
	 * The sampling k the outstanding request was timed under: its latency
	 * counts 2^k times in the histogram, for the 2^k requests it stands for.
	 */
	__u8 req_shift;
	__u8 pad;
	/*
	 * The flow's service id + 1, where its latency sampling k is read
	 * (sl_svc_sampling); 0 in entries written before the field existed,
	 * which time every request.
	 */
	__u32 svc_ref;
};
_Static_assert(sizeof(struct sl_ct_entry) == 64, "sl_ct_entry layout");

/* How often an active UDP flow rewrites its last_seen at most (saves cache-line writes). */
#define SL_CT_REFRESH_NS 1000000000ULL
#define SL_CT_DEFAULT_UDP_TIMEOUT_NS (30ULL * 1000000000ULL)

/*
 * The XDP forward half's per-interface switch for partial checksums
 * (bpf/lib/nat.h, xdp_csum_guess_ifs): a bit per ifindex below this, one
 * switch shared by all above.
 */
#define SL_XDP_GUESS_IFINDEXES 1024

/*
 * Host routing's marks for interfaces with a peer (bpf/lib/route.h,
 * route_peer_ifs): a bit per ifindex below this; above it, a plain redirect.
 */
#define SL_ROUTE_PEER_IFINDEXES 1024

/*
 * sl_stats: per-CPU array indexed by backend id. The agent sums the CPUs.
 * What counts as a request, a response and a failure is in docs/accounting.md.
 */
#define SL_HTTP_CLASSES 5 /* 1xx .. 5xx */
enum sl_5xx {
	SL_5XX_500,
	SL_5XX_502,
	SL_5XX_503,
	SL_5XX_504,
	SL_5XX_OTHER,
	SL_5XX_KINDS,
};

struct sl_backend_stats {
	__u64 conns_opened; /* new flows steered to this backend */
	__u64 conns_refused; /* the backend answered the SYN with RST */
	__u64 conns_syn_retx; /* the client sent its SYN again: no answer yet */
	__u64 conns_reset; /* reset by the backend after the handshake */
	__u64 conns_closed; /* TCP flows seen closing (FIN both ways, or RST) */
	__u64 handshakes; /* SYN-ACKs seen ... */
	__u64 handshake_ns; /* ... and the SYN to SYN-ACK time they took, summed */
	__u64 pkts_fwd; /* client -> backend */
	__u64 bytes_fwd;
	__u64 pkts_rev; /* backend -> client */
	__u64 bytes_rev;
	__u64 requests; /* HTTP/1.x request heads */
	__u64 responses[SL_HTTP_CLASSES]; /* response heads matched to one request, by class */
	__u64 responses_5xx[SL_5XX_KINDS]; /* the 5xx among them, by code */
	__u64 unclassified; /* response heads that could not be matched (pipelining...) */
	__u64 unanswered; /* requests whose connection ended before a response */
};
_Static_assert(sizeof(struct sl_backend_stats) == 192, "sl_backend_stats layout");

/*
 * sl_latency: per-CPU array indexed by backend id: request latency (first
 * byte of the request in, first byte of the response out) in a log-linear
 * histogram. Bucket 0 holds everything under 2^SL_LAT_MIN_EXP ns, the last
 * everything from 2^(SL_LAT_MAX_EXP + 1) ns up; in between each power of two
 * is cut in SL_LAT_SUB equal parts, so a bucket's midpoint is within
 * 1 / (2 * SL_LAT_SUB) = 3.1% of any value in it, from 1 us to 137 s.
 * include/sluice/latency.h has the bucket arithmetic for both sides.
 */
#define SL_LAT_SUB_BITS 4
#define SL_LAT_SUB (1 << SL_LAT_SUB_BITS)
#define SL_LAT_MIN_EXP 10 /* 1024 ns */
#define SL_LAT_MAX_EXP 36 /* the last octave starts at 68.7 s */
#define SL_LAT_BUCKETS (2 + (SL_LAT_MAX_EXP - SL_LAT_MIN_EXP + 1) * SL_LAT_SUB)

struct sl_latency_hist {
	__u32 buckets[SL_LAT_BUCKETS];
	__u32 pad[2];
};
_Static_assert(sizeof(struct sl_latency_hist) % 8 == 0, "sl_latency_hist layout");

/*
 * sl_dp_stats: per-CPU array of node-wide datapath events, by index. Only
 * rare events are counted here: a per-packet counter would cost every packet
 * of the node, and per-backend traffic is in sl_stats already.
 */
enum sl_dp_counter {
	SL_DP_NEW_FLOWS, /* flows steered (conntrack entries created) */
	SL_DP_NO_BACKEND, /* VIP hit but no version has a backend: dropped */
	SL_DP_FRAGMENTS, /* IP fragments: no ports to steer by, passed */
	SL_DP_UNSTEERABLE, /* IPv6 routing/AH/ESP headers: passed untouched */
	SL_DP_MALFORMED, /* truncated or inconsistent headers: passed untouched */
	SL_DP_CT_FULL, /* conntrack insert failed: packet steered, flow not kept */
	SL_DP_REWRITE_ERR, /* a helper refused a rewrite: packet dropped */
	SL_DP_FAILSAFE, /* new flows sent to primary because the agent is silent */
	SL_DP_CT_MIDFLOW, /* TCP non-SYN to a VIP without conntrack: evicted (LRU) or lost */
	SL_DP_ICMP, /* ICMP errors about steered flows given the VIP back (path MTU) */
	SL_DP_ROUTED, /* steered packets routed by the program (--host-routing) */
	SL_DP_COUNTERS,
};

#endif /* SLUICE_DATAPATH_H */
