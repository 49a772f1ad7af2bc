#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A UDP service through a VIP, end to end: an echo server in each pod
# answers every datagram with its name. Steered first by the TC halves,
# then by the XDP forward half, IPv4 and IPv6, with every host verifying
# the checksums it receives (lib.sh: through a veth it otherwise trusts
# them). Each client socket is a flow: its datagrams stay on one pod, and
# replies come back from the VIP and port it sent to. IPv4 datagrams sent
# without a checksum (0) must arrive too: a rewrite that folded the port
# change into that 0 would make a wrong checksum of it. Prints TAP.
set -u
CLUSTER_PODS="p1:1 c1:3"
. "$(dirname "$0")/lib.sh"
need_root_tools "UDP through a VIP"
need_tools "UDP through a VIP" jq python3 ethtool nstat
trap cluster_down EXIT
cluster_up

ECHO=$(dirname "$0")/udp_echo.py
start_udp_echo p1 p1 5353
start_udp_echo c1 c1 5353
canary_spec dns 53 5353 udp 50 $VIP4 198.18.1.2 198.18.3.2
canary_spec dns6 53 5353 udp 50 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:3::2"'

verify_checksums client p1 c1
ok $? "client and pods verify every checksum they receive (ethtool: node tx off, host rx off)"
# Neighbours resolved first: a first IPv6 datagram can wait a second or more
# for neighbour discovery, which is not what this test is about.
# One datagram from the node to each pod's server directly does it.
for a in 198.18.1.2 198.18.3.2 fd00:5c:1::2 fd00:5c:3::2; do
	in_node python3 "$ECHO" client $a 5353 1 1 0 40000 >/dev/null 2>&1
done

# udp_checks HALF PORT: 40 flows (source ports above PORT) of 5 datagrams through each VIP, then 40 more
# without checksums (IPv4); every check for HALF (the forward half's hook).
udp_checks() {
	local half=$1 vip fam nocheck out what before e base=$2
	for run in 4 6 4-nocheck; do
		base=$((base + 100))
		fam=${run%%-*}; nocheck=0; [ "$run" = 4-nocheck ] && nocheck=1
		vip=$VIP4; [ "$fam" = 6 ] && vip=$VIP6
		what="$half, IPv$fam$([ $nocheck = 1 ] && echo ", no checksum")"
		before=$(csum_errors client p1 c1)
		out=$(in_ns client python3 "$ECHO" client "$vip" 53 40 5 $nocheck $base)
		e=$(($(csum_errors client p1 c1) - before))
		[ "$(echo "$out" | jq .answered)" -eq 200 ] && [ "$e" -eq 0 ]
		ok $? "$what: $(echo "$out" | jq .answered) of 200 datagrams answered, $e checksum errors ($(echo "$out" | jq -c '{lost, late, pods}'))"
		[ "$(echo "$out" | jq .wrong_source)" -eq 0 ]
		ok $? "$what: every reply came from the VIP and port the client sent to"
		[ "$(echo "$out" | jq .flows_on_one_pod)" -eq 40 ] &&
			[ "$(echo "$out" | jq '.pods.p1 // 0')" -gt 0 ] && [ "$(echo "$out" | jq '.pods.c1 // 0')" -gt 0 ]
		ok $? "$what: each of 40 flows stayed on one pod, both pods used at weight 50%"
	done
}

start_agent "$WORK/spec"
ok $? "agent steers a UDP service on an IPv4 and an IPv6 VIP (TC halves)"
udp_checks "TC" 20000
n=$(sl status --json | jq '[.services[] | (.primary.backends + .canary.backends)[] | .conns_opened] | add')
[ "$n" -eq 120 ]
ok $? "TC: conntrack opened one flow per socket ($n of 120)"

stop_agent
in_node "$SLUICE" agent --cleanup --bpffs "$PIN_ROOT" >/dev/null 2>&1
AGENT_IFACE_ARGS="--xdp-iface cli0" start_agent "$WORK/spec"
ok $? "a new agent steers them with the forward half at XDP on cli0"
udp_checks "XDP" 30000
n=$(sl status --json | jq '[.services[] | (.primary.backends + .canary.backends)[] | .conns_opened] | add')
[ "$n" -eq 120 ]
ok $? "XDP: conntrack opened one flow per socket ($n of 120)"
tap_done
