#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make bench-lb`: sluice against what a user without a mesh would pick
# instead, all in one run on one namespace cluster with one backend (nginx,
# one worker, listening on 8080 for "primary" and 8081 for "canary", and on
# 8082, which nothing steers, for the direct runs), each path splitting 90/10
# between the first two ports:
#   direct      wrk straight to the pod (the ceiling): each path's twin, below
#   sluice TC   the VIP steered by sluice's TC programs (accounting on; tcx links
#               where the kernel has them)
#   sluice XDP  the same VIP, forward half at XDP (native) on another client link
#   sluice HR   sluice TC with --host-routing, on a node of its own ("hrnode",
#               a third router namespace with its own link to the pod, both
#               links attached): the programs route both directions and hand
#               each packet straight into the pod's or client's namespace
#   xdp-pass    a do-nothing native XDP program on a client link, attached for
#               the path's runs and detached for its twin's: what XDP costs on
#               a veth by itself
#   iptables    DNAT with -m statistic (kube-proxy's iptables mode)
#   nftables    DNAT with numgen random
#   conntrack   straight to the pod through the node where iptables and nftables
#               run, tracked, against its twin untracked: what netfilter's
#               conntrack costs by itself, the floor under iptables and nftables
#   HAProxy     TCP mode, weighted servers, on the node
# Every path is compared with its twin: the same client namespace, link and
# node, straight to the pod's port 8082 (on nfnode, untracked: a NOTRACK rule
# for it). Client links differ in speed by several percent from one cluster
# to the next, for no reason in their configuration (docs/benchmarks.md), so
# a path measured against a direct run on another link carries that link's
# luck; against its twin it does not. The twin pays what the node charges
# traffic it does not steer: for sluice, a parse and a bit test in each half.
# Each path pays for the machinery it needs and no other's: iptables and
# nftables run on a node of their own ("nfnode", a second router namespace
# with a second link to the same pod), so that their netfilter conntrack is
# not charged to direct, sluice and HAProxy as well. NODE_CONNTRACK=1 turns
# conntrack on in sluice's node too (a DNAT rule for another Service), as on
# a node where kube-proxy already runs: every node path then pays it.
# wrk from the client namespace, keep-alive and new-connection (Connection:
# close) modes. Each path's run of DUR seconds sits between two runs of its
# twin and is compared with their mean; ROUNDS cycles of every path per mode,
# the order rotated each cycle, each sluice path FOCUS more times a cycle;
# medians of those ratios, with their 95% confidence intervals and
# quartiles, and a line per sluice path and mode on the issue's targets. Then
# the agent's own CPU and RSS with 100 rollouts at a 1 s interval.
set -eu
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
for t in wrk nginx haproxy nft iptables; do
	command -v "$t" >/dev/null || { echo "bench-lb needs $t (make deps)" >&2; exit 1; }
done
ROUNDS=${ROUNDS:-9}
DUR=${DUR:-2}
# extra sandwiches of each sluice path per cycle, spread through the cycle: a
# 9-cycle median moves by about 3 points from one run to the next on a shared
# machine, too coarse for a 0.97 target; the peers, further from it, keep one
FOCUS=${FOCUS:-2}
FOCUS_PATHS="sluice-tc sluice-xdp sluice-hr"
CONNS=${CONNS:-32}
# one client namespace per path: a path's connection-tracking leftovers
# (netfilter's conntrack, HAProxy's sockets, sluice's conntrack) must not meet
# another path's new connections on a recycled port
CLUSTER_PODS="p1:1 cld:21 clh:24 clx:25 clp:26"
NF_CLIENTS="cli:32 cln:33 clc:34" # behind nfnode: iptables, nftables, conntrack
HR_CLIENTS="clr:42" # behind hrnode: sluice with --host-routing
NODE_CONNTRACK=${NODE_CONNTRACK:-0}
nf_down() {
	local c
	for c in nfnode $NF_CLIENTS hrnode $HR_CLIENTS; do ip netns del "$(ns "${c%%:*}")" 2>/dev/null; done
	rm -rf "$PIN_ROOT-hr"
}
trap 'cluster_down; nf_down' EXIT
cluster_up
# router_node NODE POD_IF INDEX CLIENTS: another node, routing between its
# clients (CLIENTS: their prefix) and a link of its own to the pod (POD_IF,
# 198.18.INDEX.2); the pod answers them back through it
router_node() {
	ip netns add "$(ns "$1")"
	ip -n "$(ns "$1")" link set lo up
	in_ns "$1" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$(ns "$1")" link add p1 type veth peer name "$2" netns "$(ns p1)"
	ip -n "$(ns "$1")" addr add "198.18.$3.1/24" dev p1
	ip -n "$(ns "$1")" link set p1 up
	ip -n "$(ns p1)" addr add "198.18.$3.2/24" dev "$2"
	ip -n "$(ns p1)" link set "$2" up
	ip -n "$(ns p1)" route add "$4" via "198.18.$3.1"
}
router_node nfnode eth1 31 198.18.32.0/22 # iptables, nftables, conntrack
router_node hrnode eth2 41 198.18.42.0/24 # sluice with host routing
# client_link NODE NAME INDEX: a client namespace behind NODE, 198.18.INDEX.2
client_link() {
	ip netns add "$(ns "$2")"
	ip -n "$(ns "$2")" link set lo up
	ip -n "$(ns "$1")" link add "$2" type veth peer name eth0 netns "$(ns "$2")"
	ip -n "$(ns "$1")" addr add "198.18.$3.1/24" dev "$2"
	ip -n "$(ns "$1")" link set "$2" up
	ip -n "$(ns "$2")" addr add "198.18.$3.2/24" dev eth0
	ip -n "$(ns "$2")" link set eth0 up
	ip -n "$(ns "$2")" route add default via "198.18.$3.1"
}
for c in $NF_CLIENTS; do client_link nfnode "${c%%:*}" "${c##*:}"; done
for c in $HR_CLIENTS; do client_link hrnode "${c%%:*}" "${c##*:}"; done
# new-connection mode opens tens of thousands of connections a run: let the
# client (and HAProxy's side, on the node) reuse ports in TIME_WAIT
for n in client node cld cli cln clc clh clx clp clr; do
	in_ns $n sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
done
if [ "$NODE_CONNTRACK" = 1 ]; then
	# a DNAT rule for another Service, as kube-proxy has: netfilter then
	# tracks every connection through the node (an empty nat chain would not)
	in_ns node nft add table ip kubeproxy
	in_ns node nft 'add chain ip kubeproxy pre { type nat hook prerouting priority -100; }'
	in_ns node nft 'add rule ip kubeproxy pre ip daddr 198.19.0.99 tcp dport 80 dnat to 198.18.1.2:8080'
fi

# the backend: nginx, one worker, two steered ports and the twins' port
start_nginx p1 p1 8080 8081 8082
wait_http p1 http://198.18.1.2:8080/

# sluice on 198.19.0.10
mkdir -p "$WORK/spec"
cat >"$WORK/spec/lb.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: lb, namespace: bench}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 10s, stepWeight: 10}
  steering:
    vip: 198.19.0.10
    weight: 10
    primary: {version: v1, endpoints: ["198.18.1.2:8080"]}
    canary: {version: v2, endpoints: ["198.18.1.2:8081"]}
YAML
# TC on cli0 (the sluice-tc client), XDP on clx (the sluice-xdp client): one agent, one VIP
start_agent "$WORK/spec" --listen none --xdp-iface clx
# sluice with host routing on hrnode, its own agent: 198.19.0.50 to the pod's address there
mkdir -p "$WORK/spec-hr"
sed -e 's/198.19.0.10/198.19.0.50/; s/198.18.1.2:/198.18.41.2:/g' "$WORK/spec/lb.yaml" >"$WORK/spec-hr/lb.yaml"
(exec nsenter --net="/run/netns/$(ns hrnode)" "$SLUICE" agent --spec "$WORK/spec-hr" --iface clr,p1 \
	--host-routing --bpffs "$PIN_ROOT-hr" --state-dir "$WORK/state-hr" --run-dir "$WORK/run-hr" \
	--listen none >"$WORK/agent-hr.log" 2>&1) &
CLUSTER_PIDS+=($!)
for i in $(seq 100); do
	grep -q "agent running" "$WORK/agent-hr.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "host routing on" "$WORK/agent-hr.log" || { echo "hrnode's agent did not start:" >&2; cat "$WORK/agent-hr.log" >&2; exit 1; }
# iptables on .20, nftables on .30 (PREROUTING on nfnode, as kube-proxy does
# on its node), both to the pod's address on nfnode's side
in_ns nfnode iptables -t nat -A PREROUTING -d 198.19.0.20 -p tcp --dport 80 \
	-m statistic --mode random --probability 0.1 -j DNAT --to-destination 198.18.31.2:8081
in_ns nfnode iptables -t nat -A PREROUTING -d 198.19.0.20 -p tcp --dport 80 \
	-j DNAT --to-destination 198.18.31.2:8080
in_ns nfnode nft add table ip lb
in_ns nfnode nft 'add chain ip lb pre { type nat hook prerouting priority -100; }'
in_ns nfnode nft 'add rule ip lb pre ip daddr 198.19.0.30 tcp dport 80 dnat to numgen random mod 100 map { 0-9 : 198.18.31.2 . 8081, 10-99 : 198.18.31.2 . 8080 }'
if [ "$NODE_CONNTRACK" != 1 ]; then
	# the twins of nfnode's paths go untracked, both ways, as direct traffic
	# through sluice's node does (with NODE_CONNTRACK=1 every path pays it)
	in_ns nfnode nft add table ip untracked
	in_ns nfnode nft 'add chain ip untracked pre { type filter hook prerouting priority raw; }'
	in_ns nfnode nft 'add rule ip untracked pre ip daddr 198.18.31.2 tcp dport 8082 notrack'
	in_ns nfnode nft 'add rule ip untracked pre ip saddr 198.18.31.2 tcp sport 8082 notrack'
fi
# keep netfilter's conntrack from filling with TIME_WAIT entries, or new SYNs
# are dropped after a few rounds (after the rules: they load its module)
for n in nfnode node; do
	in_ns $n sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 2>/dev/null || true
	in_ns $n sysctl -qw net.netfilter.nf_conntrack_max=1048576 2>/dev/null || true
done
# HAProxy on .40, an address of the node
ip -n "$(ns node)" addr add 198.19.0.40/32 dev lo
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 198.19.0.40:80
    default_backend be
backend be
    balance random
    server primary 198.18.1.2:8080 weight 90
    server canary 198.18.1.2:8081 weight 10
CFG
(exec ip netns exec "$(ns node)" haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1) &
CLUSTER_PIDS+=($!)
# xdp-pass: the do-nothing XDP program of make bench, native, on clp's node side
XDP_PASS_PIN=/sys/fs/bpf/sluice-bench-xdp-$$
bpftool prog loadall .output/passthru.bpf.o "$XDP_PASS_PIN" >/dev/null
# nsenter, not ip -n: that remounts /sys and would not see the pin
in_node ip link set dev clp xdpdrv pinned "$XDP_PASS_PIN/sl_xdp_passthru"
trap 'cluster_down; nf_down; rm -rf "$XDP_PASS_PIN"' EXIT
sleep 0.5

PATHS="direct sluice-tc sluice-xdp sluice-hr xdp-pass iptables nftables conntrack haproxy"
url_of() {
	case $1 in
	direct | xdp-pass) echo "http://198.18.1.2:8080/" ;;
	conntrack) echo "http://198.18.31.2:8080/" ;;
	sluice-tc | sluice-xdp) echo "http://198.19.0.10/" ;;
	sluice-hr) echo "http://198.19.0.50/" ;;
	iptables) echo "http://198.19.0.20/" ;;
	nftables) echo "http://198.19.0.30/" ;;
	haproxy) echo "http://198.19.0.40/" ;;
	esac
}
client_of() { # sluice's client is the one behind cli0, where its programs are attached
	case $1 in
	direct) echo cld ;; sluice-tc) echo client ;; sluice-xdp) echo clx ;; xdp-pass) echo clp ;;
	sluice-hr) echo clr ;;
	iptables) echo cli ;;
	nftables) echo cln ;;
	conntrack) echo clc ;;
	haproxy) echo clh ;;
	esac
}
# a path's twin: from the same client, straight to the pod's unsteered port
twin_url_of() {
	case $1 in
	iptables | nftables | conntrack) echo "http://198.18.31.2:8082/" ;;
	sluice-hr) echo "http://198.18.41.2:8082/" ;;
	*) echo "http://198.18.1.2:8082/" ;;
	esac
}
# what a run needs in place: xdp-pass's program on clp for the path, not for its twin
set_up_for() { # PATH path|twin
	[ "$1" = xdp-pass ] || return 0
	if [ "$2" = path ]; then
		in_node ip link set dev clp xdpdrv pinned "$XDP_PASS_PIN/sl_xdp_passthru"
	else
		in_node ip link set dev clp xdpdrv off
	fi
}
answers() { # CLIENT URL
	[ "$(in_ns "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2" || true)" = 200 ]
}
ct_count() { in_ns "$1" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; }
# the twins first: on nfnode they must leave no conntrack entries
CT_BEFORE=$(ct_count nfnode)
for p in ${PATHS#direct }; do
	answers "$(client_of "$p")" "$(twin_url_of "$p")" || { echo "the twin of $p does not answer" >&2; exit 1; }
done
CT_TWINS=$(ct_count nfnode)
if [ "$NODE_CONNTRACK" != 1 ] && [ "$CT_TWINS" -ne "$CT_BEFORE" ]; then
	echo "the twins left netfilter conntrack entries on nfnode ($CT_BEFORE -> $CT_TWINS): NOTRACK is not working" >&2
	exit 1
fi
for p in $PATHS; do
	answers "$(client_of "$p")" "$(url_of "$p")" || { echo "path $p does not answer" >&2; cat "$WORK/haproxy.log" >&2; exit 1; }
done
# those requests left entries wherever conntrack is on: check it is on where meant
CT_NODE=$(ct_count node) CT_NFNODE=$(ct_count nfnode)
if [ "$CT_NFNODE" -eq 0 ] || { [ "$NODE_CONNTRACK" = 1 ] && [ "$CT_NODE" -eq 0 ]; } ||
	{ [ "$NODE_CONNTRACK" != 1 ] && [ "$CT_NODE" -ne 0 ]; }; then
	echo "netfilter conntrack is not where it should be: $CT_NODE entries in sluice's node, $CT_NFNODE in nfnode (NODE_CONNTRACK=$NODE_CONNTRACK)" >&2
	exit 1
fi

# wrk's numbers: requests/s and the 99th percentile in ms
wrk_run() { # CLIENT URL MODE
	local hdr=() out
	[ "$3" = close ] && hdr=(-H "Connection: close")
	out=$(in_ns "$1" wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "${hdr[@]}" "$2" 2>&1 || true)
	rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
	[ -n "$rps" ] || { echo "wrk failed on $2 from $1 ($3): $out" >&2; rps=0; }
	p99=$(echo "$out" | awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub("us", "", v); v /= 1000 }
		else if (v ~ /ms$/) { sub("ms", "", v) } else if (v ~ /s$/) { sub("s", "", v); v *= 1000 }
		print v }')
	echo "$rps ${p99:-0}"
}
measure() { # PATH MODE
	set_up_for "$1" path
	wrk_run "$(client_of "$1")" "$(url_of "$1")" "$2"
}
measure_twin() { # PATH MODE
	set_up_for "$1" twin
	wrk_run "$(client_of "$1")" "$(twin_url_of "$1")" "$2"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# the 95% confidence interval of the median of the arguments, from their order
# statistics (ranks n/2 -/+ 0.98 sqrt(n), the normal approximation of the
# binomial): how far this run's median may be from the machine's
median_ci() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
	END { j = int(NR / 2 - 0.98 * sqrt(NR)); k = NR / 2 + 1 + 0.98 * sqrt(NR)
		k = (k == int(k)) ? k : int(k) + 1; if (j < 1) j = 1; if (k > NR) k = NR
		printf "%.3f %.3f", a[j], a[k] }'; }

# quartiles Q1 median Q3 of the arguments
quartiles() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
	function q(f,   i, k) { i = 1 + (NR - 1) * f; k = int(i); return a[k] + (i - k) * (a[k + 1] - a[k]) }
	END { printf "%.3f %.3f %.3f", q(0.25), q(0.5), q(0.75) }'; }

# Sandwiches: every path's run sits between two runs of its twin, and its ratio
# is to their mean, so the host's drift over the minutes of a bench (other
# guests on the same cores) cancels out instead of landing on whichever path
# ran in a bad moment. Each cycle runs every path once, the order rotated by
# the cycle, and each sluice path FOCUS times more, spread through the cycle.
# The direct row sums up all the twins' runs.
declare -A RPS P99 RATIO TWIN
read -ra OTHERS <<<"${PATHS#direct }"
read -ra EXTRA <<<"$(for i in $(seq "$FOCUS"); do printf '%s ' $FOCUS_PATHS; done)"
for mode in keepalive close; do
	for c in $(seq "$ROUNDS"); do
		k=$(((c - 1) % ${#OTHERS[@]}))
		rotated=("${OTHERS[@]:$k}" "${OTHERS[@]:0:$k}")
		# each extra run goes after a path that is neither it nor the next one,
		# so that no path runs right after itself (its twin's runs would then
		# follow each other from one client to one port)
		extra=("${EXTRA[@]}") order=() j=0
		for i in "${!rotated[@]}"; do
			order+=("${rotated[i]}")
			for t in $j $((j + 1)); do
				[ "$t" -lt "${#extra[@]}" ] || break
				e=${extra[t]}
				if [ "$e" != "${rotated[i]}" ] && [ "$e" != "${rotated[i + 1]:-}" ]; then
					extra[t]=${extra[j]} extra[j]=$e
					order+=("$e") j=$((j + 1))
					break
				fi
			done
		done
		order+=("${extra[@]:$j}")
		for p in "${order[@]}"; do
			read -r before bp99 < <(measure_twin "$p" "$mode")
			read -r rps p99 < <(measure "$p" "$mode")
			read -r after ap99 < <(measure_twin "$p" "$mode")
			RPS[$p,$mode]="${RPS[$p,$mode]:-} $rps"
			P99[$p,$mode]="${P99[$p,$mode]:-} $p99"
			TWIN[$p,$mode]="${TWIN[$p,$mode]:-} $before $after"
			RPS[direct,$mode]="${RPS[direct,$mode]:-} $before $after"
			P99[direct,$mode]="${P99[direct,$mode]:-} $bp99 $ap99"
			r=$(awk -v a="$rps" -v b="$before" -v d="$after" \
				'BEGIN { printf "%.3f", (b + d > 0 ? 2 * a / (b + d) : 0) }')
			RATIO[$p,$mode]="${RATIO[$p,$mode]:-} $r"
			printf 'cycle %d %-9s %-10s %10.0f req/s  p99 %7.2f ms  ratio %s (twin %.0f, %.0f)\n' \
				"$c" "$mode" "$p" "$rps" "$p99" "$r" "$before" "$after" >&2
		done
	done
done

echo
echo "sluice vs. the alternatives: wrk -t2 -c$CONNS -d${DUR}s; $ROUNDS cycles per mode, each"
echo "path's run between two runs of its twin (direct from the same client, link and"
echo "node, to the pod's unsteered port; untracked on nfnode), the sluice paths $((FOCUS + 1)) times a"
echo "cycle; n ratios per path, their median, its 95% confidence interval, their quartiles"
echo "sluice's TC halves: $(grep -o "reverse at egress ([a-z]*)" "$WORK/agent.log" | head -1 | tr -d '()' | sed 's/.* //')"
echo "backend: nginx, 1 worker; every path splits 90/10 between two ports of it"
if [ "$NODE_CONNTRACK" = 1 ]; then
	echo "netfilter conntrack: on in nfnode and in sluice's node (NODE_CONNTRACK=1)"
else
	echo "netfilter conntrack: on in nfnode, off in sluice's node"
fi
echo "(entries after one request on each path: $CT_NFNODE in nfnode, $CT_NODE in sluice's node)"
printf '%-10s %-10s %8s %7s %10s %3s %7s %12s %12s\n' mode path "req/s" "p99 ms" "twin req/s" \
	n ratio "95% CI" "Q1-Q3"
for mode in keepalive close; do
	for p in $PATHS; do
		if [ "$p" = direct ]; then
			q="1.000 1.000 1.000" ci="1.000 1.000" twin=- n=-
		else
			# shellcheck disable=SC2086
			q=$(quartiles ${RATIO[$p,$mode]}) ci=$(median_ci ${RATIO[$p,$mode]})
			# shellcheck disable=SC2086
			twin=$(printf '%.0f' "$(median ${TWIN[$p,$mode]})") n=$(echo ${RATIO[$p,$mode]} | wc -w)
		fi
		read -r q1 q2 q3 <<<"$q"
		read -r c1 c2 <<<"$ci"
		# shellcheck disable=SC2086
		printf '%-10s %-10s %8.0f %7.2f %10s %3s %7s %12s %12s\n' "$mode" "$p" \
			"$(median ${RPS[$p,$mode]})" "$(median ${P99[$p,$mode]})" "$twin" "$n" "$q2" \
			"$c1-$c2" "$q1-$q3"
	done
done
# The issue's targets, read off the table: each sluice path at 0.97 of direct
# or more, and ahead of the best peer (iptables, nftables, HAProxy)
for mode in keepalive close; do
	best=0 bestp=""
	for p in iptables nftables haproxy; do
		# shellcheck disable=SC2086
		m=$(quartiles ${RATIO[$p,$mode]} | cut -d' ' -f2)
		if awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$m bestp=$p; fi
	done
	for p in $FOCUS_PATHS; do
		# shellcheck disable=SC2086
		m=$(quartiles ${RATIO[$p,$mode]} | cut -d' ' -f2)
		awk -v m="$m" -v b="$best" -v mode="$mode" -v p="$p" -v bp="$bestp" 'BEGIN {
			printf "target %-9s %-10s %.3f: >= 0.970 %s; ahead of every peer (best %s %.3f) %s\n",
				mode, p, m, (m >= 0.97 ? "met" : "NOT met"), bp, b, (m > b ? "yes" : "NO") }'
	done
done

# What sluice's programs cost per packet under this load, as the kernel times
# them (kernel.bpf_stats_enabled: run time and count of each program): a few
# runs per mode after the ratios, since the stats' own clock reads (about as
# much as a do-nothing program's whole run) would weigh on sluice's ratios.
# The same for a do-nothing TC program on a client link of its own (cld) is that floor.
prog_stats() { bpftool prog show id "$1" -j | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }
ns_per_run() { # RUNS... -> run time / count over the pairs "t0 c0 t1 c1"
	awk '{ t += $3 - $1; c += $4 - $2 } END { printf "%.0f", c ? t / c : 0 }' <<<"$1"
}
profile() { # PATH MODE IDS...: prints "ns/run of each id" after 3 runs
	local p=$1 mode=$2 id acc=() r i
	shift 2
	for r in 1 2 3; do
		i=0
		for id in "$@"; do acc[i]="${acc[i]:-}$(prog_stats "$id") "; i=$((i + 1)); done
		measure "$p" "$mode" >/dev/null
		i=0
		for id in "$@"; do acc[i]="${acc[i]}$(prog_stats "$id")
"; i=$((i + 1)); done
	done
	for i in "${!acc[@]}"; do printf '%s ' "$(ns_per_run "${acc[i]}")"; done
	echo
}
ids_of() { in_node "$SLUICE" hooks --json "$1" | jq -r '.[] | select(.program | startswith("sl_")) | .id'; }
read -ra SL_IDS <<<"$(ids_of cli0 | tr '\n' ' ')"
in_node tc qdisc add dev cld clsact
in_node tc filter add dev cld ingress bpf da pinned "$XDP_PASS_PIN/sl_tc_passthru"
in_node tc filter add dev cld egress bpf da pinned "$XDP_PASS_PIN/sl_tc_passthru"
read -ra PASS_IDS <<<"$(in_node tc -j filter show dev cld ingress | jq -r '.[] | .options.prog.id // empty' | head -1) $(in_node tc -j filter show dev cld egress | jq -r '.[] | .options.prog.id // empty' | head -1)"
sysctl -qw kernel.bpf_stats_enabled=1
echo
echo "sluice's TC programs under this load, ns per run as the kernel times them"
echo "(kernel.bpf_stats_enabled, 3 runs per mode; a do-nothing TC program on a client"
echo "link of its own gives the floor the timing itself adds)"
printf '%-10s %10s %10s %14s\n' mode forward reverse "do-nothing"
for mode in keepalive close; do
	read -r f r < <(profile sluice-tc "$mode" "${SL_IDS[@]}")
	read -r pf _ < <(profile direct "$mode" "${PASS_IDS[@]}")
	printf '%-10s %10s %10s %14s\n' "$mode" "$f" "$r" "$pf"
done
sysctl -qw kernel.bpf_stats_enabled=0
in_node tc qdisc del dev cld clsact
# the agent's latency sampling follows the bursts: how far it went
grep -o "timing 1 in [0-9]*" "$WORK/agent.log" | awk '{ if ($4 > m) m = $4; c++ }
	END { printf "latency sampling during the runs: at most 1 in %d requests timed (%d changes of k)\n", m ? m : 1, c }'

# The agent's own cost: 100 rollouts at a 1 s interval on an interface of their
# own, each with pods of its own (no traffic: the agent's work is the same).
stop_agent
ip -n "$(ns node)" link add bench0 type veth peer name bench1
ip -n "$(ns node)" link set bench0 up
mkdir -p "$WORK/many"
for i in $(seq 100); do
	cat >"$WORK/many/r$i.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: r$i, namespace: bench}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: 1s
    stepWeight: 10
    metrics: [{name: request-success-rate, thresholdRange: {min: 99}}, {name: request-duration, thresholdRange: {max: 500}}]
  steering:
    vip: 198.19.1.$i
    primary: {version: v1, endpoints: ["198.18.200.$i:8080"]}
    canary: {version: v2, endpoints: ["198.18.201.$i:8080"]}
YAML
done
(exec nsenter --net="/run/netns/$(ns node)" "$SLUICE" agent --spec "$WORK/many" --iface bench0 \
	--bpffs "$PIN_ROOT-many" --state-dir "$WORK/state-many" --run-dir "$WORK/run-many" \
	--listen none >"$WORK/agent-many.log" 2>&1) &
MANY=$!
CLUSTER_PIDS+=($MANY)
sleep 5
ticks() { awk '{ print $14 + $15 }' "/proc/$MANY/stat"; }
t0=$(ticks); s0=$(date +%s%N)
sleep 20
t1=$(ticks); s1=$(date +%s%N)
hz=$(getconf CLK_TCK)
cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v ns=$((s1 - s0)) 'BEGIN { printf "%.2f", 100 * t / hz / (ns / 1e9) }')
rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$MANY/status")
echo
echo "agent with 100 rollouts at a 1 s interval (20 s window): CPU ${cpu}% of one core, RSS ${rss} MiB"
echo "(targets: under 1% of a core, under 20 MiB)"
kill "$MANY"; wait "$MANY" 2>/dev/null || true
rm -rf "$PIN_ROOT-many"
