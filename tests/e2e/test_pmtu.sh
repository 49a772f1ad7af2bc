#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Path MTU discovery through a VIP: the node's link to the pod has a smaller
# MTU (1000; IPv6 1280) than the client's and the pod's (1500), so the
# client's full-size segments to the VIP must shrink. The node answers them
# with ICMP "fragmentation needed" / "packet too big" quoting the pod's
# address; sluice gives the quote the VIP back, or the client never learns
# and the upload stalls. Prints TAP.
set -u
CLUSTER_PODS="p1:1"
. "$(dirname "$0")/lib.sh"
need_root_tools "path MTU through a VIP"
trap cluster_down EXIT
cluster_up
start_backend p1 p1
wait_http p1 http://198.18.1.2:8080/
# the narrow hop: the node's side of the pod's link
ip -n "$(ns node)" link set p1 mtu 1280
ip netns exec "$(ns node)" sysctl -qw net.ipv4.ip_no_pmtu_disc=0

cat >"$WORK/spec.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: pmtu, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 10s, stepWeight: 10}
  steering:
    vip: $VIP4
    weight: 0
    primary: {version: v1, endpoints: [198.18.1.2]}
    canary: {version: v2, endpoints: []}
YAML
sed "s/name: pmtu,/name: pmtu6,/; s/vip: $VIP4/vip: \"$VIP6\"/; s/\[198.18.1.2\]/[\"fd00:5c:1::2\"]/" \
	"$WORK/spec.yaml" >"$WORK/spec6.yaml"
mkdir -p "$WORK/spec"
mv "$WORK/spec.yaml" "$WORK/spec6.yaml" "$WORK/spec/"
start_agent "$WORK/spec"
ok $? "agent steering an IPv4 and an IPv6 VIP to a pod behind a 1280-byte hop"

# The ICMP errors' quotes are rewritten and their checksums fixed: the
# client and pod check every checksum they receive (lib.sh), which through a
# veth they otherwise would not.
verify_checksums client p1
ok $? "client and pod verify every checksum they receive (ethtool)"
head -c 60000 /dev/urandom >"$WORK/body"
uploads() { # HALF: both families' uploads, the ICMP errors translated, no checksum error
	local fam url code n e
	for fam in 4 6; do
		if [ $fam = 4 ]; then url="http://$VIP4/upload"; else url="http://[$VIP6]/upload"; fi
		code=$(in_ns client curl -s -o /dev/null -w '%{http_code}' --max-time 8 \
			--data-binary @"$WORK/body" "$url")
		[ "$code" = 200 ]
		ok $? "$1, IPv$fam: a 60 KB upload through the VIP completes (HTTP $code): path MTU learned"
	done
	n=$(sl status --json | jq '.datapath.icmp_errors_translated')
	[ "$n" -ge 2 ]
	ok $? "$1: ICMP errors about the steered flows were given the VIP back ($n)"
	e=$(csum_errors client p1)
	[ "$e" -eq 0 ]
	ok $? "$1: no checksum error in client or pod, ICMP's included ($e)"
}
uploads "TC"

# The forward half at XDP: the DNAT happens before the skb exists, the ICMP
# error is still the node's, and the reverse half still at TC. The path MTU
# the client learned above is flushed, so that it must learn it again.
stop_agent
in_node "$SLUICE" agent --cleanup --bpffs "$PIN_ROOT" >/dev/null 2>&1
in_ns client ip route flush cache
in_ns client ip -6 route flush cache
AGENT_IFACE_ARGS="--xdp-iface cli0" start_agent "$WORK/spec"
ok $? "a new agent steers both VIPs with the forward half at XDP on cli0"
uploads "XDP"

# Host routing: the client's segments reach the node as GSO packets, which
# the FIB lookup lets through whatever their size. Routed on, they would
# reach the pod whole (a veth takes them) and the client would never learn
# the path's MTU; their segments, checked against the narrow hop, go to the
# stack instead, which answers as above. Once the client sends segments
# that fit, the programs route them.
stop_agent
in_node "$SLUICE" agent --cleanup --bpffs "$PIN_ROOT" >/dev/null 2>&1
in_ns client ip route flush cache
in_ns client ip -6 route flush cache
start_agent "$WORK/spec" --host-routing
ok $? "a new agent steers both VIPs with host routing"
uploads "host routing"
n=$(sl status --json | jq '.datapath.host_routed')
[ "$n" -gt 0 ]
ok $? "host routing: the segments that fit were routed by the programs ($n packets)"
tap_done
