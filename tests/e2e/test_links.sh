#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Following the node's interfaces: with `--iface cli*`, a client namespace
# created while the agent runs (its veth appears on the node as cli9) is
# steered within a second, its connections counted; when it is deleted the
# agent forgets it and nothing of it is left. Prints TAP.
set -u
CLUSTER_PODS="p1:1 c1:3"
. "$(dirname "$0")/lib.sh"
need_root_tools "following interfaces"
command -v jq >/dev/null || { skip "following interfaces" "jq is not installed (make deps)"; tap_done; exit 0; }
trap 'ip netns del "$(ns client9)" 2>/dev/null; cluster_down' EXIT
cluster_up
start_backend p1 p1
start_backend c1 c1
wait_http c1 http://198.18.3.2:8080/
cat >"$WORK/spec.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 10s, stepWeight: 10}
  steering:
    vip: $VIP4
    weight: 50
    primary: {version: v1, endpoints: [198.18.1.2]}
    canary: {version: v2, endpoints: [198.18.3.2]}
YAML
# the agent follows "cli*" rather than a fixed name
(exec nsenter --net="/run/netns/$(ns node)" "$SLUICE" agent --spec "$WORK/spec.yaml" \
	--iface 'cli*' --bpffs "$PIN_ROOT" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR" \
	--listen none >"$WORK/agent.log" 2>&1) &
AGENT_PID=$!
CLUSTER_PIDS+=($AGENT_PID)
for i in $(seq 50); do grep -q "agent running" "$WORK/agent.log" && break; sleep 0.1; done
grep -q "attached to cli0" "$WORK/agent.log"
ok $? "--iface 'cli*': the agent attached to cli0"

# a new client appears: namespace, veth cli9 on the node, addresses, routes
t0=$(date +%s%N)
ip netns add "$(ns client9)"
ip -n "$(ns node)" link add cli9 type veth peer name eth0 netns "$(ns client9)"
ip -n "$(ns node)" addr add 198.18.9.1/24 dev cli9
ip -n "$(ns node)" link set cli9 up
ip -n "$(ns client9)" link set lo up
ip -n "$(ns client9)" addr add 198.18.9.2/24 dev eth0
ip -n "$(ns client9)" link set eth0 up
ip -n "$(ns client9)" route add default via 198.18.9.1
for i in $(seq 100); do
	attached cli9 && break
	sleep 0.01
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
attached cli9
ok $? "the new interface cli9 is attached $ms ms after it was created"
idx9=$(in_node ip -o link show cli9 | cut -d: -f1)
[ "$ms" -lt 1000 ]
ok $? "within a second ($ms ms)"
before=$(sl status --json | jq '[.services[0] | (.primary.backends + .canary.backends)[] | .conns_opened] | add')
answers=$(for i in $(seq 10); do ip netns exec "$(ns client9)" curl -s --max-time 2 "http://$VIP4/"; done | sort | uniq -c | tr -s ' \n' ' ')
after=$(sl status --json | jq '[.services[0] | (.primary.backends + .canary.backends)[] | .conns_opened] | add')
case "$answers" in *p1*|*c1*) r=0 ;; *) r=1 ;; esac
[ $r -eq 0 ] && [ $((after - before)) -eq 10 ]
ok $? "the new client's traffic to the VIP is steered ($answers) and counted ($((after - before)) connections)"

# the client goes away
ip netns del "$(ns client9)"
for i in $(seq 100); do grep -q "cli9" <(grep -E "forgot|detached" "$WORK/agent.log") && break; sleep 0.01; done
grep -qE "(forgot|detached from) cli9" "$WORK/agent.log"
ok $? "the agent forgot cli9 when it disappeared"
kill -0 "$AGENT_PID" && ! in_node ip link show cli9 >/dev/null 2>&1 &&
	! in_node bpftool net show 2>/dev/null | grep -q cli9 &&
	[ ! -e "$PIN_ROOT/tcx_ingress_$idx9" ] && [ ! -e "$PIN_ROOT/tcx_egress_$idx9" ]
ok $? "the agent runs on, nothing of cli9 is left (bpftool net show, no tcx pins of ifindex $idx9)"
answers=$(in_ns client curl -s --max-time 2 "http://$VIP4/")
case "$answers" in p1|c1) r=0 ;; *) r=1 ;; esac
ok $r "the other client is still steered ($answers)"
tap_done
