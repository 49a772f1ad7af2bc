#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# End-to-end rollouts driven by the agent's analysis loop, in a namespace
# cluster with real HTTP pods and a load generator opening a new connection
# per request (so every request is steered by the current weight):
# a healthy canary promoted step by step, a 5xx canary and a slow canary
# rolled back, pause/resume, set-weight, abort with the agent killed, and
# an agent restart mid-rollout that no request notices. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "end-to-end rollouts"
command -v jq >/dev/null || { skip "end-to-end rollouts" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1
wait_http p1 http://198.18.1.2:8080/ && wait_http c1 http://198.18.3.2:8080/
ok $? "pods serve HTTP"

mkdir -p "$WORK/spec"
SPEC=$WORK/spec/web.yaml
# spec VERSION [INTERVAL] [THRESHOLD] [extra analysis yaml]: a new canary version is a new revision
spec() {
	cat >"$SPEC.tmp" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: ${2:-1s}
    threshold: ${3:-2}
    stepWeight: 10
    maxWeight: 30
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}}
    - {name: request-duration, thresholdRange: {max: 300}}
  steering:
    vip: $VIP4
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: $1, endpoints: [198.18.3.2]}
YAML
	mv "$SPEC.tmp" "$SPEC" # whole files only: the agent may be watching
}
control() { in_ns c1 curl -s --max-time 2 "http://127.0.0.1:8080/control?$1" >/dev/null; }
field() { field_of web "$1"; }
wait_for() { wait_field web "$@"; } # JQ_FIELD VALUE SECONDS
load() { # load SECONDS OUT: new connection per request, 200 req/s
	in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 200 --connections 4 \
		--duration "$1" --json >"$2" 2>"$2.err" &
	LOAD_PID=$!
}

# 1. A healthy canary: 10 -> 20 -> 30 -> promoted, one step per 1 s tick.
spec v2-healthy
start_agent "$WORK/spec"
ok $? "agent runs the rollout"
load 12 "$WORK/healthy.json"
t0=$(date +%s%N)
wait_for rollout.phase Succeeded 15
ok $? "healthy canary: Succeeded"
# one thread: the /metrics server runs in the agent's poll loop, and the
# webhook worker starts only with a first call
[ "$(agent_threads | wc -l)" -eq 1 ] && ! agent_threads | grep -qx sl-webhooks
ok $? "no webhooks in the spec: no webhook worker, libcurl never started (threads: $(agent_threads | tr '\n' ' '))"
t1=$(date +%s%N)
w=$(field weight_bp)
[ "$w" = 10000 ]
ok $? "healthy canary: promoted to 100% of new connections (weight $w bp)"
steps=$(sl history web --json | jq -r '.[-1].decisions | map(select(.action=="start" or .action=="step" or .action=="promote") | .weight_pct | tostring) | join(" ")')
[ "$steps" = "10 20 30 100" ]
ok $? "healthy canary: every step recorded in the history (weights: $steps)"
diag "promotion took $(( (t1 - t0) / 1000000 )) ms"
wait $LOAD_PID
f=$(jq '[.failures[]] | add' "$WORK/healthy.json"); n=$(jq '.by_status["200"] // 0' "$WORK/healthy.json")
[ "$f" -eq 0 ] && [ "$n" -gt 1000 ]
ok $? "healthy canary: $n requests answered 200 across every step, $f failed"

# 2. A canary answering 5xx is rolled back within threshold x interval (+ one tick).
spec v2-errors
control "error_rate=1&error_code=503"
wait_for rollout.attempt 2 5
load 10 "$WORK/errors.json"
wait_for rollout.phase Progressing 5
t0=$(date +%s%N)
wait_for rollout.phase Failed 6
r=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
ok $r "5xx canary: rolled back (Failed) $ms ms after its first step (threshold 2 x 1 s)"
[ "$ms" -le 3500 ]
ok $? "5xx canary: within threshold x interval + one tick (+500 ms slack): $ms ms"
[ "$(field weight_bp)" = 0 ]
ok $? "5xx canary: weight back to 0"
reason=$(field rollout.last_reason)
case "$reason" in *request-success-rate*) r=0 ;; *) r=1 ;; esac
ok $r "5xx canary: the reason names the metric ($reason)"
sleep 1
before=$(in_ns c1 curl -s http://127.0.0.1:8080/stats | jq .requests)
sleep 2
after=$(in_ns c1 curl -s http://127.0.0.1:8080/stats | jq .requests)
[ "$before" = "$after" ]
ok $? "5xx canary: no new request reaches it after the rollback ($before -> $after)"
wait $LOAD_PID
control "error_rate=0"
sl history web --svg "$WORK/rollback.svg" --attempt 2 >/dev/null
grep -q '<svg' "$WORK/rollback.svg" && grep -q '>rollback</text>' "$WORK/rollback.svg" &&
	[ "$(grep -c '<polyline' "$WORK/rollback.svg")" -ge 3 ]
ok $? "history --svg draws the rolled-back attempt: weight and metric lines, the rollback marked"
if command -v rsvg-convert >/dev/null; then
	rsvg-convert "$WORK/rollback.svg" -o "$WORK/rollback.png" 2>/dev/null && [ -s "$WORK/rollback.png" ]
	ok $? "the SVG renders (rsvg-convert)"
	cp "$WORK/rollback.png" /tmp/sluice-rollback-timeline.png 2>/dev/null
else
	skip "the SVG renders" "rsvg-convert is not installed (Debian package librsvg2-bin)"
fi

# 3. A slow canary (p99 over 300 ms) is rolled back too.
spec v2-slow
control "latency_ms=400:450"
wait_for rollout.attempt 3 5
load 10 "$WORK/slow.json"
wait_for rollout.phase Failed 10
ok $? "slow canary: rolled back"
reason=$(field rollout.last_reason)
case "$reason" in *request-duration*) r=0 ;; *) r=1 ;; esac
ok $r "slow canary: the reason is the p99 ($reason)"
wait $LOAD_PID
control "latency_ms=0"

# 4. pause holds the weight; resume continues; set-weight holds by hand.
spec v2-pause 1s 5
wait_for rollout.attempt 4 5
load 12 "$WORK/pause.json"
wait_for weight_bp 1000 5
sl pause web >/dev/null
ok $? "pause accepted"
w1=$(field weight_bp); sleep 2.5; w2=$(field weight_bp)
[ "$w1" = "$w2" ] && [ "$(field rollout.phase)" = Waiting ]
ok $? "paused: the weight holds ($w1 -> $w2 bp over 2.5 s), phase Waiting"
sl resume web >/dev/null
wait_for weight_bp 3000 5
ok $? "resumed: the analysis goes on stepping ($(field weight_bp) bp)"
sl set-weight web 5 >/dev/null
w=$(field weight_bp); p=$(field rollout.phase)
[ "$w" = 500 ] && [ "$p" = Waiting ]
ok $? "set-weight 5: weight $w bp, phase $p"
sl set-weight web 150 >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "set-weight 150 is refused as bad usage (exit 2)"
sl pause nosuch >/dev/null 2>&1
[ $? -eq 1 ]
ok $? "a command for an unknown rollout fails with exit 1"
wait $LOAD_PID

# 5. Agent restart mid-rollout (kill -9): resumes at the same weight, no request fails.
spec v2-restart 1s 5
sl resume web >/dev/null 2>&1
wait_for rollout.attempt 5 5
wait_for weight_bp 1000 5
sl pause web >/dev/null
load 6 "$WORK/restart.json"
sleep 1
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
sleep 1
start_agent "$WORK/spec"
ok $? "agent restarted after kill -9"
w=$(field weight_bp); p=$(field rollout.phase); a=$(field rollout.attempt)
[ "$w" = 1000 ] && [ "$p" = Waiting ] && [ "$a" = 5 ]
ok $? "restarted agent resumed the rollout where it was (attempt $a, $p, $w bp)"
wait $LOAD_PID
f=$(jq '[.failures[]] | add' "$WORK/restart.json"); n=$(jq '.by_status["200"] // 0' "$WORK/restart.json")
[ "$f" -eq 0 ] && [ "$n" -gt 100 ]
ok $? "across kill -9 and restart: $n requests answered, $f failed"

# 6. abort with the agent killed: straight on the pinned maps.
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
out=$(sl abort web 2>&1)
r=$?
[ $r -eq 0 ] && [ "$(field weight_bp)" = 0 ] && [ "$(field rollout.phase)" = Failed ]
ok $? "abort with the agent down rolls back in the pinned maps ($out)"
body=$(for i in $(seq 20); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | sort -u | tr '\n' ' ')
case "$body" in *c1*) r=1 ;; *) r=0 ;; esac
ok $r "after the abort no new connection reaches the canary (answers: $body)"
start_agent "$WORK/spec"
[ "$(field rollout.phase)" = Failed ]
ok $? "the next agent keeps the aborted rollout Failed"
sl retry web >/dev/null
ok $? "retry accepted"
wait_for rollout.attempt 6 3
ok $? "retry starts attempt 6"

tap_done
