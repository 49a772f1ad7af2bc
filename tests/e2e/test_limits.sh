#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Resource limits (docs/datapath.md): a spec file over 1 MiB, more rollouts
# than the node's 1024 services, more backends than its 1024 backend ids, a
# service over 128 endpoints: each refused with a clear message at the
# documented limit, and no crash. Prints TAP.
set -u
CLUSTER_PODS=""
. "$(dirname "$0")/lib.sh"
need_root_tools "resource limits"
trap cluster_down EXIT
cluster_up

canary() { # FILE NAME VIP_LAST_OCTETS N_ENDPOINTS SUBNET
	local eps
	eps=$(seq "$4" | sed "s/^/198.18.$5./" | paste -sd, -)
	cat >"$1" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: $2}
spec:
  service: {port: 80}
  analysis: {interval: 10s, stepWeight: 10}
  steering:
    vip: 198.19.$3
    primary: {version: v1, endpoints: [$eps]}
    canary: {version: v2, endpoints: []}
YAML
}

# a spec file over 1 MiB
canary "$WORK/big.yaml" big 0.1 1 10
head -c 1100000 /dev/zero | tr '\0' '#' >>"$WORK/big.yaml"
out=$("$SLUICE" check "$WORK/big.yaml" 2>&1)
r=$?
case "$out" in *"a spec is at most 1048576"*) ;; *) r=0 ;; esac
[ $r -eq 1 ]
ok $? "a 1.1 MB spec is refused: $out"

# 129 endpoints in one service
canary "$WORK/wide.yaml" wide 0.2 129 10
out=$("$SLUICE" check "$WORK/wide.yaml" 2>&1)
[ $? -eq 1 ] && case "$out" in *128*) true ;; *) false ;; esac
ok $? "129 endpoints in one service are refused: $(echo "$out" | head -1)"

# 1025 rollouts: more than the node's service limit
mkdir -p "$WORK/many"
for i in $(seq 1025); do
	printf 'apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: r%d}\nspec:\n  service: {port: 80}\n  analysis: {interval: 10s, stepWeight: 10}\n  steering:\n    vip: 198.19.%d.%d\n    primary: {version: v1, endpoints: [198.18.1.2]}\n    canary: {version: v2, endpoints: []}\n' \
		"$i" $((i / 250 + 1)) $((i % 250 + 1)) >"$WORK/many/r$i.yaml"
done
out=$(in_node "$SLUICE" agent --spec "$WORK/many" --iface cli0 --bpffs "$PIN_ROOT" \
	--state-dir "$STATE_DIR" --run-dir "$RUN_DIR" --listen none 2>&1)
r=$?
case "$out" in *"more than 1024 rollouts"*) m=0 ;; *) m=1 ;; esac
[ $r -eq 1 ] && [ $m -eq 0 ]
ok $? "1025 rollouts: the agent refuses the spec ($(echo "$out" | grep -m1 'more than'))"

# 9 rollouts of 128 backends: over the node's 1024 backend ids
mkdir -p "$WORK/wide9"
for i in $(seq 9); do canary "$WORK/wide9/w$i.yaml" "w$i" "1.$i" 128 $((20 + i)); done
start_agent "$WORK/wide9" --listen none
ok $? "the agent runs with 9 x 128 backends asked for"
grep -q "no free backend id: 1024 backends is the node's limit" "$WORK/agent.log"
ok $? "the rollout past the limit is refused with the limit named"
n=$(sl status --json | jq '.services | length')
[ "$n" = 8 ]
ok $? "the 8 rollouts within the limit are steered ($n)"
kill -0 "$AGENT_PID"
ok $? "no crash"

tap_done
