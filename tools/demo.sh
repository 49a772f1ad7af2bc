#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make demo`: a namespace cluster (client, node, two primary pods, one
# canary pod), sluice's agent on the node, live load from the client, and
# two real rollouts judged by the agent from in-kernel counters:
#   1. v1.4.0, healthy: stepped 10 -> 20 -> 30 -> 40 -> 50% and promoted;
#   2. v1.5.0, whose pods answer 30% of requests with 503: rolled back.
# A status line a second shows what the agent sees and decides; the audit
# log is printed at the end. Everything is removed on exit and on Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (network namespaces, BPF)" >&2; exit 1; }
command -v jq >/dev/null || { echo "make demo needs jq (make deps installs it)" >&2; exit 1; }
KEEP_WORK=
trap 'cluster_down; echo "demo: cleaned up"' EXIT
trap 'exit 130' INT TERM

INTERVAL=${INTERVAL:-2s}
cluster_up
start_backend p1 v1-a
start_backend p2 v1-b
start_backend c1 v2
wait_http p1 http://198.18.1.2:8080/
wait_http c1 http://198.18.3.2:8080/

mkdir -p "$WORK/spec"
write_spec() { # VERSION
	cat >"$WORK/spec/api.yaml.tmp" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: api-service, namespace: demo}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: $INTERVAL
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}}
    - {name: request-duration, thresholdRange: {max: 500}}
  steering:
    vip: $VIP4
    primary: {version: v1.3.2, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: $1, endpoints: [198.18.3.2]}
YAML
	mv "$WORK/spec/api.yaml.tmp" "$WORK/spec/api.yaml"
}

# One line a second: phase, weight, the last window of each version.
watch_until() { # PHASE...
	local t=0 line phase
	while :; do
		line=$(sl status api-service --json | jq -r '.services[0] |
			def win(w): if w == null or (w.has_data | not) then "-"
				else "\(w.success_rate_pct * 100 | round / 100)% ok of \(w.total)" +
				     (if w.latency_p99_ms then ", p99 \(w.latency_p99_ms * 10 | round / 10) ms" else "" end) end;
			"\(.rollout.phase)\t\(.weight_pct)%\tfailed \(.rollout.failed_checks)/\(.rollout.threshold)\tcanary: \(win(.rollout.last_window.canary))\tprimary: \(win(.rollout.last_window.primary))"')
		phase=${line%%$'\t'*}
		printf '  t=%3ss  %s\n' "$t" "$(echo "$line" | expand -t 14)"
		for p in "$@"; do [ "$phase" = "$p" ] && return 0; done
		sleep 1
		t=$((t + 1))
		[ $t -lt 120 ] || return 1
	done
}

write_spec v1.4.0
start_agent "$WORK/spec"
echo "== sluice agent on the node; VIP $VIP4:80 -> primary v1.3.2 (2 pods), canary v1.4.0 (1 pod)"
echo "== load: 100 new connections a second from the client, for the whole demo"
(exec ip netns exec "$(ns client)" "$LOADGEN_BIN" --url "http://$VIP4/" --mode close \
	--rate 100 --connections 4 --duration 600 --json >"$WORK/load.json" 2>/dev/null) &
CLUSTER_PIDS+=($!)
LOAD_PID=$!

echo
echo "== rollout 1: v1.4.0 is healthy (analysis every $INTERVAL, steps of 10% up to 50%)"
watch_until Succeeded Failed

echo
echo "== rollout 2: v1.5.0, whose pod now answers 30% of requests with 503"
in_ns c1 curl -s "http://127.0.0.1:8080/control?error_rate=0.3&error_code=503" >/dev/null
write_spec v1.5.0
sleep 1.5
watch_until Failed Succeeded

kill -INT "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null || true
echo
echo "== what the clients saw over both rollouts (loadgen):"
jq -c '{requests, by_status, failures, by_backend: (.by_backend | map_values(.requests))}' "$WORK/load.json"
echo
echo "== sluice history api-service"
sl history api-service
echo "== sluice status api-service"
sl status api-service
echo
SVG=${DEMO_SVG:-/tmp/sluice-demo-rollback.svg}
sl history api-service --attempt 2 --svg "$SVG"
echo "== the rolled-back attempt as a picture: $SVG (open it in a browser)"
