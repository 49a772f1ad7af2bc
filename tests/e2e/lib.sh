#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A namespace cluster for end-to-end tests and the demo (shared/testing.md):
# every host is a network namespace this script creates, the node included,
# and nothing is attached to or routed through the root namespace.
#
#   client  eth0 198.18.0.2/24  fd00:5c::2/64     --- cli0  node
#   p1      eth0 198.18.1.2/24  fd00:5c:1::2/64   --- p1    node   primary pods
#   p2      eth0 198.18.2.2/24  fd00:5c:2::2/64   --- p2    node
#   c1      eth0 198.18.3.2/24  fd00:5c:3::2/64   --- c1    node   canary pod
#
# The node routes between them; the VIPs (198.19.0.0/24, fd00:5c:ff::/64)
# exist only in sluice's maps. The agent runs in the node's network
# namespace through nsenter, not `ip netns exec`, because the latter gives
# the process a fresh /sys and so a private BPF filesystem: pins would be
# invisible to everyone else.
#
# Source it, set CLUSTER_PODS if you want other pods, then cluster_up.

SLUICE_ROOT=${SLUICE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SLUICE=${SLUICE:-$SLUICE_ROOT/build/sluice}
BACKEND_BIN=${BACKEND_BIN:-$SLUICE_ROOT/build/test-backend}
LOADGEN_BIN=${LOADGEN_BIN:-$SLUICE_ROOT/build/loadgen}

P=${CLUSTER_PREFIX:-sl$$}
PIN_ROOT=${PIN_ROOT:-/sys/fs/bpf/sluice-test-$$}
WORK=${WORK:-$(mktemp -d /tmp/sluice-e2e.XXXXXX)}
CLUSTER_PODS=${CLUSTER_PODS:-"p1:1 p2:2 c1:3"}
VIP4=198.19.0.10
VIP6=fd00:5c:ff::10
CLUSTER_PIDS=()
STATE_DIR=$WORK/state
RUN_DIR=$WORK/run
# sluice CLI against this cluster's agent, maps and state
sl() { "$SLUICE" "$@" --bpffs "$PIN_ROOT" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR"; }

ns() { echo "$P-$1"; }
# Run in a host's namespace (for clients and servers).
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
# Run in the node's network namespace, keeping the root mount namespace.
in_node() { nsenter --net="/run/netns/$(ns node)" "$@"; }

_host() { # name index
	local name=$1 i=$2
	ip netns add "$(ns "$name")"
	ip -n "$(ns node)" link add "$name" type veth peer name eth0 netns "$(ns "$name")"
	ip -n "$(ns node)" addr add "198.18.$i.1/24" dev "$name"
	ip -n "$(ns node)" addr add "fd00:5c:$i::1/64" dev "$name" nodad
	ip -n "$(ns node)" link set "$name" up
	ip -n "$(ns "$name")" link set lo up
	ip -n "$(ns "$name")" addr add "198.18.$i.2/24" dev eth0
	ip -n "$(ns "$name")" addr add "fd00:5c:$i::2/64" dev eth0 nodad
	ip -n "$(ns "$name")" link set eth0 up
	ip -n "$(ns "$name")" route add default via "198.18.$i.1"
	ip -n "$(ns "$name")" -6 route add default via "fd00:5c:$i::1"
}

cluster_up() {
	ip netns add "$(ns node)"
	ip -n "$(ns node)" link set lo up
	in_ns node sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	# The client's link is named cli0 on the node: sluice attaches there.
	ip netns add "$(ns client)"
	ip -n "$(ns node)" link add cli0 type veth peer name eth0 netns "$(ns client)"
	ip -n "$(ns node)" addr add 198.18.0.1/24 dev cli0
	ip -n "$(ns node)" addr add fd00:5c::1/64 dev cli0 nodad
	ip -n "$(ns node)" link set cli0 up
	ip -n "$(ns client)" link set lo up
	ip -n "$(ns client)" addr add 198.18.0.2/24 dev eth0
	ip -n "$(ns client)" addr add fd00:5c::2/64 dev eth0 nodad
	ip -n "$(ns client)" link set eth0 up
	ip -n "$(ns client)" route add default via 198.18.0.1
	ip -n "$(ns client)" -6 route add default via fd00:5c::1
	local pod
	for pod in $CLUSTER_PODS; do
		_host "${pod%%:*}" "${pod##*:}"
	done
}

# start_backend POD NAME [test-backend options...]: an HTTP pod on :8080, v4 and v6.
start_backend() {
	local pod=$1 name=$2; shift 2
	# exec: $! must be the server itself, not a subshell, for kill to reach it
	(exec ip netns exec "$(ns "$pod")" "$BACKEND_BIN" --listen '[::]:8080' --name "$name" \
		--quiet "$@" >"$WORK/backend-$pod.log" 2>&1) &
	CLUSTER_PIDS+=($!)
}

# start_nginx POD NAME PORT...: Debian's nginx as a pod, one worker, answering 200
# "NAME" with an X-Backend header on each PORT (v4 and v6)
start_nginx() {
	local pod=$1 name=$2 port listen="" dir
	shift 2
	dir=$WORK/nginx-$pod
	mkdir -p "$dir"
	for port in "$@"; do
		listen="$listen        listen $port; listen [::]:$port;
"
	done
	cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
$listen        location / { add_header X-Backend $name always; return 200 "$name\n"; }
    }
}
CONF
	(exec ip netns exec "$(ns "$pod")" nginx -c "$dir/nginx.conf" -g 'daemon off;' \
		>"$dir/out.log" 2>&1) &
	CLUSTER_PIDS+=($!)
}

# start_udp_echo HOST NAME PORT: tests/e2e/udp_echo.py's server in HOST's
# namespace, answering as NAME
start_udp_echo() {
	(exec ip netns exec "$(ns "$1")" python3 "$SLUICE_ROOT/tests/e2e/udp_echo.py" serve "$2" "$3" \
		>"$WORK/echo-$1.log" 2>&1) &
	CLUSTER_PIDS+=($!)
}

# canary_spec NAME PORT TARGET_PORT PROTOCOL WEIGHT VIP PRIMARY CANARY: a Canary
# steered at a fixed weight, into $WORK/spec/NAME.yaml (IPv6 addresses quoted:
# '"fd00:5c:1::2"')
canary_spec() {
	mkdir -p "$WORK/spec"
	cat >"$WORK/spec/$1.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: $1, namespace: e2e}
spec:
  service: {port: $2, targetPort: $3}
  analysis: {interval: 10s, stepWeight: 10}
  steering: {vip: $6, protocol: $4, weight: $5,
    primary: {version: v1, endpoints: [$7]}, canary: {version: v2, endpoints: [$8]}}
YAML
}

# field NAME JQ: a field of rollout NAME's entry in `sluice status --json`
field_of() { sl status "$1" --json 2>/dev/null | jq -r ".services[0].$2"; }
# wait_field NAME JQ VALUE SECONDS: until that field has that value
wait_field() {
	local i
	for i in $(seq $(($4 * 10))); do
		[ "$(field_of "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_http NS URL: until the URL answers, at most 5 s.
wait_http() {
	local i
	for i in $(seq 50); do
		in_ns "$1" curl -s -o /dev/null --max-time 1 "$2" && return 0
		sleep 0.1
	done
	return 1
}

# start_agent SPEC [extra agent options]: sluice agent on the node, cli0
# (AGENT_IFACE_ARGS: how it attaches there; default the TC halves).
start_agent() {
	local spec=$1; shift
	# shellcheck disable=SC2086 # AGENT_IFACE_ARGS is words
	(exec nsenter --net="/run/netns/$(ns node)" "$SLUICE" agent --spec "$spec" ${AGENT_IFACE_ARGS:---iface cli0} \
		--bpffs "$PIN_ROOT" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR" "$@" \
		>>"$WORK/agent.log" 2>&1) &
	AGENT_PID=$!
	CLUSTER_PIDS+=($AGENT_PID)
	local i
	local before
	before=$(grep -c "agent running" "$WORK/agent.log" 2>/dev/null || true)
	for i in $(seq 100); do
		[ "$(grep -c "agent running" "$WORK/agent.log" 2>/dev/null || true)" -gt "${before:-0}" ] && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/agent.log" >&2
	return 1
}

# hooks_of DEV: sluice's programs at DEV in the node, "HOOK API PROGRAM" per line, as
# the kernel reports them (`sluice hooks`: tcx, cls_bpf or XDP, whichever is in use)
hooks_of() {
	in_node "$SLUICE" hooks --json "$1" 2>/dev/null |
		jq -r '.[] | select(.program | startswith("sl_")) | "\(.hook) \(.api) \(.program)"'
}
# attached DEV: both TC halves run at DEV
attached() {
	local h
	h=$(hooks_of "$1")
	echo "$h" | grep -q "^ingress .* sl_tc_forward$" && echo "$h" | grep -q "^egress .* sl_tc_reverse$"
}

# agent_threads: the names of the running agent's threads, one a line
agent_threads() { cat /proc/"$AGENT_PID"/task/*/comm 2>/dev/null; }

# Make HOSTs check every checksum they receive. Between namespaces a veth
# hands over the sender's CHECKSUM_PARTIAL skb and the receiver trusts it,
# so a rewrite that leaves a wrong L4 field goes unseen. With the node's
# side of each link computing checksums in software (tx off, after the TC
# egress hook) and the host's side not trusting any (rx off), the host's
# TCP verifies each segment and counts a bad one in InCsumErrors.
verify_checksums() { # HOST...
	local h link
	for h in "$@"; do
		link=$h; [ "$h" = client ] && link=cli0
		in_node ethtool -K "$link" tx off >/dev/null 2>&1 &&
			in_ns "$h" ethtool -K eth0 rx off >/dev/null 2>&1 || return 1
	done
}
# TCP, UDP and ICMP checksum errors the HOSTs' stacks have counted, summed.
csum_errors() { # HOST...
	local h
	for h in "$@"; do
		in_ns "$h" nstat -asz TcpInCsumErrors UdpInCsumErrors Udp6InCsumErrors \
			IcmpInCsumErrors Icmp6InCsumErrors
	done | awk '/CsumErrors/ {n += $2} END {print n + 0}'
}

stop_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

cluster_down() {
	local pid n
	set +e # cleanup goes on past whatever is already gone
	stop_agent
	for pid in "${CLUSTER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${CLUSTER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for n in client node $(for p in $CLUSTER_PODS; do echo "${p%%:*}"; done); do
		ip netns del "$(ns "$n")" 2>/dev/null
	done
	rm -rf "$PIN_ROOT" 2>/dev/null
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

# TAP for shell suites; tests/run.sh counts these lines.
TAP_N=0
TAP_FAILED=0
ok() { # ok CONDITION_EXIT_STATUS DESCRIPTION
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1 # SKIP $2"; }
diag() { echo "# $*"; }
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

# need_tools SUITE TOOL...: skip the whole suite, naming the first missing tool.
need_tools() {
	local suite=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || { skip "$suite" "$t is not installed (make deps)"; tap_done; exit 0; }
	done
}

# need_root_tools: skip the whole suite with a reason when it cannot run.
need_root_tools() {
	if [ "$(id -u)" -ne 0 ]; then skip "$1" "needs root for network namespaces and BPF"; tap_done; exit 0; fi
	local t
	for t in ip nsenter curl; do
		command -v "$t" >/dev/null || { skip "$1" "$t is not installed"; tap_done; exit 0; }
	done
}
