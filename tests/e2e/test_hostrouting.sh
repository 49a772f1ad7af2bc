#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Host routing (`sluice agent --host-routing`, bpf/lib/route.h): steered
# packets routed by the programs instead of the node's IP stack. The node's
# own forwarding counters (IpForwDatagrams, Ip6OutForwDatagrams) tell which
# packets the stack routed; sluice's host_routed counter tells which the
# programs did, and every datagram must still arrive one hop older (TTL and
# hop limit 63 at both ends, from 64). First with only the client's link
# attached: requests are routed by the forward half through the pod link's
# egress (whose checksums the node computes and the pods verify) and replies
# by the stack. Then with the pods' links attached too: requests go straight
# into the pod (bpf_redirect_peer) and replies straight into the client,
# every sender writing full checksums and every receiver verifying them.
# Both families, TCP (HTTP, counted requests) and UDP. Also: an agent upgraded
# over the previous release's smaller sl_dp_stats starts, and one on a node
# where netfilter's conntrack runs warns. Prints TAP.
set -u
CLUSTER_PODS="p1:1 c1:3"
. "$(dirname "$0")/lib.sh"
need_root_tools "host routing"
need_tools "host routing" jq python3 ethtool nstat
trap cluster_down EXIT
cluster_up

ECHO=$(dirname "$0")/udp_echo.py
start_backend p1 p1
start_backend c1 c1
start_udp_echo p1 p1 5353
start_udp_echo c1 c1 5353
canary_spec web 80 8080 tcp 50 $VIP4 198.18.1.2 198.18.3.2
canary_spec web6 80 8080 tcp 50 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:3::2"'
canary_spec dns 53 5353 udp 50 $VIP4 198.18.1.2 198.18.3.2
canary_spec dns6 53 5353 udp 50 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:3::2"'
wait_http p1 http://198.18.1.2:8080/ && wait_http c1 http://198.18.3.2:8080/
ok $? "two pods serve HTTP"

verify_checksums client p1 c1
ok $? "client and pods verify every checksum they receive (ethtool: node tx off, host rx off)"
# The FIB answers only once the node has a neighbour entry (until then the
# stack routes, and resolves): one request to each pod, both families, whose
# replies resolve the client too, before anything is counted.
for a in 198.18.1.2 198.18.3.2 "[fd00:5c:1::2]" "[fd00:5c:3::2]"; do
	in_ns client curl -s -o /dev/null --max-time 2 "http://$a:8080/"
done

# what the node's stack forwarded, IPv4 and IPv6
forwarded() { in_node nstat -asz IpForwDatagrams Ip6OutForwDatagrams | awk '/Forw/ {n += $2} END {print n + 0}'; }
routed() { sl status --json | jq '.datapath.host_routed'; }
# packets the node's side of the pods' links sent: bpf_redirect_peer() skips it
pod_links_tx() {
	ip -n "$(ns node)" -s -j link show | jq '[.[] | select(.ifname == "p1" or .ifname == "c1") |
		.stats64.tx.packets] | add'
}

# udp_round WHAT VIP BASE WANT_ROUTED WANT_FORWARDED: 20 flows of 5 datagrams
udp_round() {
	local what=$1 vip=$2 r0 f0 t0 out r f
	r0=$(routed) f0=$(forwarded) t0=$(pod_links_tx)
	out=$(in_ns client python3 "$ECHO" client "$vip" 53 20 5 0 "$3")
	r=$(($(routed) - r0)) f=$(($(forwarded) - f0)) TX=$(($(pod_links_tx) - t0))
	[ "$(echo "$out" | jq .answered)" -eq 100 ] && [ "$(echo "$out" | jq .wrong_source)" -eq 0 ] &&
		[ "$(echo "$out" | jq '.pods.p1 // 0')" -gt 0 ] && [ "$(echo "$out" | jq '.pods.c1 // 0')" -gt 0 ]
	ok $? "$what: 100 of 100 datagrams answered from the VIP, both pods ($(echo "$out" | jq -c '{answered, wrong_source, pods}'))"
	[ "$r" -eq "$4" ] && [ "$f" -eq "$5" ]
	ok $? "$what: routed by the programs $r (want $4), by the node's stack $f (want $5)"
	[ "$(echo "$out" | jq -c '[.ttl_there, .ttl_back]')" = "[[63],[63]]" ]
	ok $? "$what: one hop each way: TTL at the pod and at the client $(echo "$out" | jq -c '[.ttl_there, .ttl_back]') (want [[63],[63]])"
}

# http_round WHAT URL: 40 requests, one connection each; every one answered, both pods
http_round() {
	local out
	out=$(for i in $(seq 40); do in_ns client curl -s --max-time 2 "$2"; echo; done | grep . | sort | uniq -c)
	[ "$(echo "$out" | awk '{n += $1} END {print n}')" -eq 40 ] && echo "$out" | grep -q " p1$" &&
		echo "$out" | grep -q " c1$"
	ok $? "$1: 40 of 40 requests answered, both pods ($(echo $out))"
}

# ttl_one VIP: a datagram with one hop left must not reach a pod: the stack
# drops it (time exceeded), where a routing program that ignored it would
# deliver it with TTL 0
ttl_one() {
	in_ns client python3 - "$1" <<'PY'
import socket, sys
vip = sys.argv[1]
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
s.settimeout(1.0)
s.sendto(b"last hop", (vip, 53))
try:
    s.recvfrom(4096)
    sys.exit(1)
except OSError:
    sys.exit(0)
PY
}

start_agent "$WORK/spec" --host-routing
ok $? "agent with --host-routing on cli0 only"
grep -q "host routing" "$WORK/agent.log"
ok $? "the agent says host routing is on ($(grep -o 'host routing[^;]*' "$WORK/agent.log" | head -1))"
udp_round "cli0 only, IPv4" $VIP4 20000 100 100
[ "$TX" -ge 100 ]
ok $? "cli0 only: the datagrams left through the pods' links ($TX packets sent there)"
udp_round "cli0 only, IPv6" $VIP6 20100 100 100
http_round "cli0 only, IPv4" "http://$VIP4/"
http_round "cli0 only, IPv6" "http://[$VIP6]/"
ttl_one $VIP4
ok $? "cli0 only, IPv4: a datagram with TTL 1 is not routed (no answer)"
ttl_one $VIP6
ok $? "cli0 only, IPv6: a datagram with hop limit 1 is not routed (no answer)"
# A frame for another host's MAC address reaches cli0 all the same (a veth
# hands over whatever its peer sends); the stack drops it, and so must the
# programs, not route it to the pod
gw_mac=$(ip -n "$(ns node)" -j link show cli0 | jq -r '.[0].address')
ip -n "$(ns client)" neigh replace 198.18.0.1 lladdr 02:00:5e:00:00:99 dev eth0 nud permanent
out=$(in_ns client python3 "$ECHO" client $VIP4 53 1 1 0 20500)
ip -n "$(ns client)" neigh replace 198.18.0.1 lladdr "$gw_mac" dev eth0 nud reachable
[ "$(echo "$out" | jq .answered)" -eq 0 ]
ok $? "cli0 only: a frame for another MAC address is not routed ($(echo "$out" | jq .answered) of 1 answered)"

stop_agent
# Senders write full checksums now: a packet that skips the node's egress
# reaches its receiver as it left the sender, and a partial one is trusted
for h in client p1 c1; do in_ns $h ethtool -K eth0 tx off >/dev/null 2>&1; done
# The release before host routing pinned an sl_dp_stats of 10 counters, one
# fewer: an agent upgraded over it makes a new one rather than refuse to start
old_stats=0
if command -v bpftool >/dev/null; then
	rm -f "$PIN_ROOT/sl_dp_stats" &&
		bpftool map create "$PIN_ROOT/sl_dp_stats" type percpu_array key 4 value 8 entries 10 \
			name sl_dp_stats && old_stats=1
fi
AGENT_IFACE_ARGS="--iface cli0,p1,c1" start_agent "$WORK/spec" --host-routing
ok $? "agent with --host-routing on cli0 and the pods' links"
if [ $old_stats = 1 ]; then
	grep -q "sl_dp_stats held 10 node-wide counters" "$WORK/agent.log"
	ok $? "it replaced a pinned sl_dp_stats of the release before (10 counters) with its own"
else
	skip "an sl_dp_stats of the release before is replaced" "bpftool is not installed or could not pin a map"
fi
e0=$(csum_errors client p1 c1)
udp_round "pods' links too, IPv4" $VIP4 21000 200 0
# a few neighbour probes may still leave that way
[ "$TX" -lt 10 ]
ok $? "pods' links too: the datagrams went straight into the pods, not through their links ($TX packets sent there)"
udp_round "pods' links too, IPv6" $VIP6 21100 200 0
# requests are counted by the forward half, responses by the reverse half,
# here where the replies are routed: "requests responses"
http_counts() {
	sl status --json | jq -r '[.services[] | select(.protocol == "tcp") |
		(.primary.backends + .canary.backends)[]] | "\(map(.requests) | add) \(map(.responses["2xx"]) | add)"'
}
read -r q0 r0 < <(http_counts)
http_round "pods' links too, IPv4" "http://$VIP4/"
http_round "pods' links too, IPv6" "http://[$VIP6]/"
read -r q1 r1 < <(http_counts)
[ $((q1 - q0)) -eq 80 ] && [ $((r1 - r0)) -eq 80 ]
ok $? "pods' links too: requests and 2xx responses counted in the kernel: $((q1 - q0)) and $((r1 - r0)) of 80 (responses where the replies are routed)"
e=$(($(csum_errors client p1 c1) - e0))
[ "$e" -eq 0 ]
ok $? "pods' links too: no checksum errors at the client or the pods ($e)"
ttl_one $VIP4
ok $? "pods' links too, IPv4: a datagram with TTL 1 is not routed (no answer)"

# Where netfilter's conntrack tracks the node's flows, a flow routed one way
# only has its replies taken for invalid: the agent warns at start
stop_agent
if command -v nft >/dev/null && in_node nft add table ip sltrack &&
	in_node nft 'add chain ip sltrack pre { type filter hook prerouting priority 0; }' &&
	in_node nft 'add rule ip sltrack pre ct state new counter'; then
	in_ns client curl -s -o /dev/null --max-time 2 http://198.18.1.2:8080/
	start_agent "$WORK/spec" --host-routing
	grep -q "netfilter's conntrack tracks flows on this node" "$WORK/agent.log"
	ok $? "with netfilter's conntrack on in the node the agent warns to route both directions"
else
	skip "the agent's warning about netfilter's conntrack" "nft is not installed or refused the rule (make deps)"
fi
tap_done
