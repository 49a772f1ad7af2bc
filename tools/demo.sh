#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make demo`: a namespace cluster (client, node, two primary pods, one
# canary pod), sluice's agent on the node, live load from the client, and a
# rollout walked through its steps: the canary weight goes 0 -> 10 -> 20 ->
# 50 -> 100% by spec reloads while the load generator shows, second by
# second, which version answered. Everything is removed on exit and Ctrl-C.
# (The automatic analysis loop will drive these steps itself; until then
# the demo drives them.)
set -eu
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (network namespaces, BPF)" >&2; exit 1; }
KEEP_WORK=
trap 'cluster_down; echo "demo: cleaned up"' EXIT
trap 'exit 130' INT TERM

STEP_SECONDS=${STEP_SECONDS:-3}
cluster_up
start_backend p1 v1-a
start_backend p2 v1-b
start_backend c1 v2
wait_http p1 http://198.18.1.2:8080/
wait_http c1 http://198.18.3.2:8080/

mkdir -p "$WORK/spec"
write_spec() {
	cat >"$WORK/spec/api.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: api-service, namespace: demo}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 2, maxWeight: 50, stepWeight: 10}
  steering:
    vip: $VIP4
    weight: $1
    primary: {version: v1.3.2, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: v1.4.0, endpoints: [198.18.3.2]}
YAML
}

write_spec 0
start_agent "$WORK/spec"
echo "== agent up on the node's cli0; the VIP $VIP4:80 is steered by sluice"
"$SLUICE" status --bpffs "$PIN_ROOT"

for w in 0 10 20 50 100; do
	write_spec $w
	kill -HUP "$AGENT_PID"
	sleep 0.3
	echo
	echo "== canary weight $w%: $STEP_SECONDS s of new connections at 200 req/s"
	in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 200 \
		--duration "$STEP_SECONDS" --connections 4
done
echo
echo "== final state of the maps"
"$SLUICE" status --bpffs "$PIN_ROOT"
