#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The XDP forward half with the client outside the node: the agent puts
# sl_xdp_forward on the node's client-facing link (as on a NIC; native mode
# on veth) and only the reverse half at TC, so every steered request proves
# the XDP program did the DNAT. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "XDP forward half"
command -v jq >/dev/null || { skip "XDP forward half" "jq is not installed (make deps)"; tap_done; exit 0; }
trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1
wait_http c1 http://198.18.3.2:8080/
mkdir -p "$WORK/spec"
cat >"$WORK/spec/web.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 10s, stepWeight: 10}
  steering:
    vip: $VIP4
    weight: 30
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: v2, endpoints: [198.18.3.2]}
YAML
sed -e 's/name: web,/name: web6,/' -e "s/vip: .*/vip: $VIP6/" \
	-e 's/\[198.18.1.2, 198.18.2.2\]/["fd00:5c:1::2", "fd00:5c:2::2"]/' \
	-e 's/\[198.18.3.2\]/["fd00:5c:3::2"]/' "$WORK/spec/web.yaml" >"$WORK/spec/web6.yaml"
AGENT_IFACE_ARGS="--xdp-iface cli0" start_agent "$WORK/spec" --listen none
mode=$(grep -o "forward as XDP in [a-z]* mode" "$WORK/agent.log")
[ -n "$mode" ]
ok $? "agent attached the forward half to cli0 ($mode)"
net=$(in_node bpftool net show dev cli0 2>/dev/null)
xdp_id=$(echo "$net" | sed -n 's/^cli0.* \(driver\|generic\) id \([0-9]*\).*/\2/p')
name=$(bpftool prog show id "${xdp_id:-0}" 2>/dev/null | grep -o "name [a-z_]*")
[ "$name" = "name sl_xdp_forward" ]
ok $? "bpftool: $name at XDP on cli0"
h=$(hooks_of cli0)
echo "$h" | grep -qE "^xdp (native|generic) sl_xdp_forward$" && echo "$h" | grep -q "^egress .* sl_tc_reverse$" &&
	! echo "$h" | grep -q "sl_tc_forward"
ok $? "sluice hooks: XDP forward half, TC reverse half, no TC forward half ($(echo "$h" | tr '\n' ';'))"

in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 400 --requests 1000 \
	--duration 30 --json >"$WORK/xdp.json" 2>/dev/null
n=$(jq '.by_status["200"] // 0' "$WORK/xdp.json")
c=$(jq '.by_backend.c1.requests // 0' "$WORK/xdp.json")
[ "$n" -eq 1000 ]
ok $? "1000 of 1000 new-connection requests through the VIP answered ($n)"
[ "$c" -ge 230 ] && [ "$c" -le 370 ]
ok $? "the split follows the weight: $c of 1000 to the canary at 30%"
k=$(sl status --json | jq '[.services[] | select(.name == "e2e/web") | (.primary.backends + .canary.backends)[] | .requests] | add')
[ "$k" -eq 1000 ]
ok $? "the requests are counted by the XDP forward half and TC reverse half together ($k)"

# The client's frames reach XDP as its veth hands them over: CHECKSUM_PARTIAL,
# which XDP cannot read off an skb (bpf/lib/nat.h). With every host checking
# what it receives, a rewrite that treats them as full shows as errors.
grep -q "cli0.*checksums may arrive partial" "$WORK/agent.log"
ok $? "the agent knows a veth's frames may carry partial checksums (log)"
verify_checksums client p1 p2 c1
ok $? "client and pods verify every checksum they receive (ethtool: node tx off, host rx off)"
csum_run() { # WHAT MAX_ERRORS: requests through both VIPs, all answered, errors at most MAX
	local fam url n e=0 h
	declare -A before
	for h in client p1 p2 c1; do before[$h]=$(csum_errors $h); done
	for fam in 4 6; do
		if [ $fam = 4 ]; then url="http://$VIP4/"; else url="http://[$VIP6]/"; fi
		in_ns client "$LOADGEN_BIN" --url "$url" --mode close --rate 400 --requests 200 \
			--duration 30 --json >"$WORK/csum$fam.json" 2>/dev/null
		n=$(jq '.by_status["200"] // 0' "$WORK/csum$fam.json")
		[ "$n" -eq 200 ] || { diag "$1, IPv$fam: $n of 200 answered"; e=1; }
	done
	for h in client p1 p2 c1; do
		n=$(($(csum_errors $h) - before[$h]))
		[ "$n" -le "$2" ] || { diag "$1: $h counted $n checksum errors"; e=1; }
	done
	return $e
}
csum_run "partial from the client" 0
ok $? "partial checksums from the client: 2 x 200 requests answered, no checksum error in client or pods"
# A full checksum equal to the pseudo-header sum (1 frame in 65536) reads as
# partial (nat.h): of the ~2000 frames here, one may be (P(3 or more) is
# 5e-6). Full checksums misread as a rule would make one error a frame.
in_ns client ethtool -K eth0 tx off >/dev/null 2>&1
csum_run "full from the client" 2
ok $? "full checksums from the client (its tx offload off, as from a NIC): all answered, at most 2 frames (of ~2000) misread"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
out=$(in_node "$SLUICE" agent --cleanup --bpffs "$PIN_ROOT" 2>&1)
! in_node bpftool net show dev cli0 2>/dev/null | grep -q "sl_" && [ -z "$(hooks_of cli0)" ]
ok $? "--cleanup removes the XDP program too ($out)"
tap_done
