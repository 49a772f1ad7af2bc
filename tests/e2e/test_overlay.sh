#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sluice on an overlay: the client reaches the node through a VXLAN tunnel,
# as on a cluster whose pod network is VXLAN (Flannel, Calico, Cilium in
# tunnel mode), and the agent steers on the tunnel's interface. Backends are
# a pod and a host-network server on the node's own address.
#
# What this adds to the veth suites: packets that arrive CHECKSUM_COMPLETE.
# The node checks the tunnel's outer UDP checksum in software (both ends of
# the underlay compute checksums in software and trust none) and then
# hands the inner packet on with skb->csum, the sum of its bytes, which
# every rewrite must move with the bytes. A datagram delivered on the node
# itself is checked against that sum, and one whose sum came from software
# and disagrees is dropped (UdpInCsumErrors, Udp6InCsumErrors): IPv6
# DNAT once got this wrong (it took the address change out of skb->csum as
# for IPv4, where the IP header checksum balances it). Replies come back
# through the tunnel and the client checks their inner checksums the same
# way. Then again with host routing, which hands the pod those packets with
# their sum, one hop older. Prints TAP.
set -u
CLUSTER_PODS="p1:1"
. "$(dirname "$0")/lib.sh"
need_root_tools "sluice on a VXLAN overlay"
need_tools "sluice on a VXLAN overlay" jq python3 ethtool nstat
trap cluster_down EXIT
cluster_up

# The tunnel over the client's link: underlay 198.18.0.0/24, overlay
# 198.18.100.0/24 and fd00:5c:100::/64, outer UDP checksums on.
vxlan() { # NS LOCAL REMOTE DEV INNER_SUFFIX
	ip -n "$(ns "$1")" link add vx0 type vxlan id 42 local "$2" remote "$3" dstport 4789 \
		udpcsum dev "$4" &&
		ip -n "$(ns "$1")" addr add "198.18.100.$5/24" dev vx0 &&
		ip -n "$(ns "$1")" addr add "fd00:5c:100::$5/64" dev vx0 nodad &&
		ip -n "$(ns "$1")" link set vx0 up
}
if ! vxlan client 198.18.0.2 198.18.0.1 eth0 2 2>"$WORK/vxlan.err"; then
	skip "sluice on a VXLAN overlay" "no VXLAN in this kernel ($(head -1 "$WORK/vxlan.err"))"
	tap_done
	exit 0
fi
vxlan node 198.18.0.1 198.18.0.2 cli0 1
ip -n "$(ns client)" route add 198.19.0.0/24 via 198.18.100.1 dev vx0
ip -n "$(ns client)" -6 route add fd00:5c:ff::/64 via fd00:5c:100::1 dev vx0
in_ns client ethtool -K eth0 tx off rx off >/dev/null && in_node ethtool -K cli0 tx off rx off >/dev/null &&
	verify_checksums p1
ok $? "underlay and pod link compute checksums in software and trust none (ethtool)"

# HTTP on the pod and on the node (host network, the node's address on the
# overlay, from which its replies leave); UDP echo on the node.
start_backend p1 p1
start_backend node host
start_udp_echo node host 5353
wait_http p1 http://198.18.1.2:8080/ && wait_http node http://198.18.100.1:8080/
ok $? "the pod and the host-network server answer HTTP"
wait_http client http://198.18.100.1:8080/ && wait_http client "http://[fd00:5c:100::1]:8080/"
ok $? "the tunnel carries IPv4 and IPv6 between client and node"

# HTTP split between the pod and the host; every datagram to the host (weight 0)
canary_spec web 80 8080 tcp 50 $VIP4 198.18.1.2 198.18.100.1
canary_spec web6 80 8080 tcp 50 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:100::1"'
canary_spec dns 53 5353 udp 0 $VIP4 198.18.100.1 198.18.1.2
canary_spec dns6 53 5353 udp 0 "\"$VIP6\"" '"fd00:5c:100::1"' '"fd00:5c:1::2"'
AGENT_IFACE_ARGS="--iface vx0" start_agent "$WORK/spec"
ok $? "agent runs with --iface vx0"
attached vx0
ok $? "both TC halves run at the tunnel's interface ($(hooks_of vx0 | tr '\n' ';'))"

tcp_rounds() { # WHAT
	local fam vip before e n np nh
	for fam in 4 6; do
		vip=$VIP4; [ $fam = 6 ] && vip="[$VIP6]"
		before=$(csum_errors client p1 node)
		for i in $(seq 40); do
			in_ns client curl -s --max-time 2 "http://$vip/"
		done >"$WORK/web$fam.out"
		e=$(($(csum_errors client p1 node) - before))
		n=$(grep -c . "$WORK/web$fam.out")
		np=$(grep -c '^p1' "$WORK/web$fam.out")
		nh=$(grep -c '^host' "$WORK/web$fam.out")
		[ "$n" -eq 40 ] && [ "$np" -gt 0 ] && [ "$nh" -gt 0 ] && [ "$e" -eq 0 ]
		ok $? "TCP, IPv$fam, through the tunnel$1: $n of 40 requests answered (pod $np, host $nh), $e checksum errors"
	done
}
tcp_rounds ""

# udp_rounds WHERE NAME BASE: 20 flows of 5 datagrams through each VIP, all
# answered by NAME (the pod p1 or the host network, "host"). Datagrams longer
# than 76 bytes: shorter ones the stack checks in full on arrival, whatever
# skb->csum says (CHECKSUM_BREAK).
udp_rounds() {
	local fam vip before e out
	for fam in 4 6; do
		vip=$VIP4; [ $fam = 6 ] && vip=$VIP6
		before=$(csum_errors client node p1)
		out=$(in_ns client python3 "$(dirname "$0")/udp_echo.py" client "$vip" 53 20 5 0 $(($3 + fam * 100)) 200)
		e=$(($(csum_errors client node p1) - before))
		[ "$(echo "$out" | jq .answered)" -eq 100 ] && [ "$(echo "$out" | jq .wrong_source)" -eq 0 ] &&
			[ "$(echo "$out" | jq ".pods.$2 // 0")" -eq 100 ] && [ "$e" -eq 0 ]
		ok $? "UDP, IPv$fam, through the tunnel $1: $(echo "$out" | jq .answered) of 100 datagrams of 200 bytes answered from the VIP, $e checksum errors ($(echo "$out" | jq -c '{lost, wrong_source, pods}'))"
	done
}
udp_rounds "to the host network" host 20000

# Host routing (bpf/lib/route.h): the pod's packets are routed by the forward
# half, out of the pod link's egress (that link is not attached), while the
# host network's, for a local address, still go to the stack. They arrive
# CHECKSUM_COMPLETE and stay so (the stack's forwarding would have dropped
# the sum): the pod checks them against skb->csum, which must have moved
# with the IPv6 hop limit (the IPv4 TTL and header checksum balance). Left
# stale, every IPv6 datagram of 200 bytes is lost to a checksum error.
stop_agent
start_udp_echo p1 p1 5353
# the pod as primary now, at weight 0 as before (a restarted agent resumes the weight)
canary_spec dns 53 5353 udp 0 $VIP4 198.18.1.2 198.18.100.1
canary_spec dns6 53 5353 udp 0 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:100::1"'
AGENT_IFACE_ARGS="--iface vx0" start_agent "$WORK/spec" --host-routing
ok $? "agent runs with --iface vx0 --host-routing"
tcp_rounds " with host routing"
udp_rounds "to the pod with host routing" p1 21000
routed=$(sl status --json | jq '.datapath.host_routed')
[ "$routed" -ge 200 ]
ok $? "host routing: $routed packets routed by the programs (at least the 200 datagrams to the pod)"
tap_done
