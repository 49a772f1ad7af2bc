#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Flagger-style webhooks against real local HTTP servers (test-backend
# instances in the node's namespace, recording what they are sent): each
# confirm-* gate holds and releases the rollout as Flagger's do, a failing
# rollout hook counts as failed checks, a rollback hook answering 2xx rolls
# back at once, post-rollout and event hooks are called with Flagger's
# payload. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "webhooks end to end"
command -v jq >/dev/null || { skip "webhooks end to end" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1
wait_http c1 http://198.18.3.2:8080/

# hook NAME PORT: a receiver on the node's loopback, logging to $WORK/hook-NAME.log
hook() {
	(exec nsenter --net="/run/netns/$(ns node)" "$BACKEND_BIN" --listen "127.0.0.1:$2" \
		--name "$1" --quiet --log "$WORK/hook-$1.log" >/dev/null 2>&1) &
	CLUSTER_PIDS+=($!)
}
# gate PORT open|closed
gate() {
	if [ "$2" = open ]; then q="error_rate=0"; else q="error_rate=1&error_code=403"; fi
	in_node curl -s --max-time 2 "http://127.0.0.1:$1/control?$q" >/dev/null
}
hook start 9601; hook smoke 9602; hook step 9603; hook promote 9604
hook acceptance 9605; hook done 9606; hook rollback 9607; hook events 9608
touch "$WORK"/hook-{start,smoke,step,promote,acceptance,done,rollback,events}.log
for p in 9601 9602 9603 9604 9605 9606 9607 9608; do
	for i in $(seq 50); do in_node curl -s --max-time 1 "http://127.0.0.1:$p/stats" >/dev/null && break; sleep 0.1; done
done
gate 9601 closed; gate 9603 closed; gate 9604 closed
in_node curl -s "http://127.0.0.1:9607/control?error_rate=1&error_code=404" >/dev/null

mkdir -p "$WORK/spec"
spec() { # VERSION
	cat >"$WORK/spec/web.yaml.tmp" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: 1s
    threshold: 2
    stepWeight: 20
    maxWeight: 40
    metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]
    webhooks:
    - {name: gate-start, type: confirm-rollout, url: "http://127.0.0.1:9601/gate"}
    - {name: smoke, type: pre-rollout, url: "http://127.0.0.1:9602/smoke", timeout: 2s}
    - {name: gate-step, type: confirm-traffic-increase, url: "http://127.0.0.1:9603/gate"}
    - {name: gate-promote, type: confirm-promotion, url: "http://127.0.0.1:9604/gate"}
    - name: acceptance
      type: rollout
      url: "http://127.0.0.1:9605/test"
      timeout: 1s
      retries: 1
      metadata: {cmd: "hey -z 1m http://web-canary/"}
    - {name: done, type: post-rollout, url: "http://127.0.0.1:9606/done"}
    - {name: undo, type: rollback, url: "http://127.0.0.1:9607/undo"}
    - {name: events, type: event, url: "http://127.0.0.1:9608/events"}
  steering:
    vip: $VIP4
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: $1, endpoints: [198.18.3.2]}
YAML
	mv "$WORK/spec/web.yaml.tmp" "$WORK/spec/web.yaml"
}
field() { field_of web "$1"; }
wait_for() { wait_field web "$@"; } # FIELD VALUE SECONDS

spec v2
start_agent "$WORK/spec"
ok $? "agent runs a rollout with eight webhooks"
in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 100 --connections 4 \
	--duration 60 >/dev/null 2>&1 &
LOAD=$!
CLUSTER_PIDS+=($LOAD)

sleep 3
[ "$(field weight_bp)" = 0 ] && [ "$(field rollout.phase)" = Initialized ] && [ "$(field rollout.failed_checks)" = 0 ]
ok $? "confirm-rollout closed: the rollout waits at 0% without failing ($(field rollout.last_reason))"
gate 9601 open
wait_for weight_bp 2000 6
ok $? "confirm-rollout open: the first step goes (pre-rollout answered 200)"
agent_threads | grep -qx sl-webhooks
ok $? "the webhook worker started with the first call ($(agent_threads | tr '\n' ' '))"
grep -q '^/smoke {"name":"web","namespace":"e2e","phase":"' "$WORK/hook-smoke.log"
ok $? "pre-rollout got Flagger's payload ($(head -c 120 "$WORK/hook-smoke.log"))"

sleep 3
[ "$(field weight_bp)" = 2000 ] && [ "$(field rollout.failed_checks)" = 0 ]
ok $? "confirm-traffic-increase closed: the weight holds at 20% without failed checks"
gate 9603 open
wait_for weight_bp 4000 6
ok $? "confirm-traffic-increase open: the next step goes (40%)"
sleep 3
[ "$(field weight_bp)" = 4000 ] && [ "$(field rollout.phase)" = Progressing ]
ok $? "confirm-promotion closed: held at the max weight, still Progressing"
gate 9604 open
wait_for rollout.phase Succeeded 6
ok $? "confirm-promotion open: promoted"
grep -q '"cmd":"hey -z 1m http://web-canary/"' "$WORK/hook-acceptance.log"
ok $? "the rollout hook was called every tick with its metadata ($(wc -l <"$WORK/hook-acceptance.log") calls)"
sleep 0.5
grep -q '"phase":"Succeeded"' "$WORK/hook-done.log"
ok $? "post-rollout was called after the promotion"
ev=$(wc -l <"$WORK/hook-events.log")
dec=$(sl history web --json | jq '.[-1].decisions | length')
[ "$ev" -ge "$dec" ] && grep -q '"eventMessage":"checks passed at the max weight' "$WORK/hook-events.log"
ok $? "an event for every decision ($ev events, $dec decisions), with eventMessage"

# A failing rollout hook is a failed check: threshold 2 rolls the canary back.
in_node curl -s "http://127.0.0.1:9605/control?error_rate=1&error_code=500" >/dev/null
spec v3
wait_for rollout.phase Failed 12
ok $? "a rollout hook answering 500 is counted as failed checks until rollback"
reason=$(field rollout.last_reason)
case "$reason" in *"rollout webhook acceptance answered HTTP 500"*) r=0 ;; *) r=1 ;; esac
ok $r "the reason names the hook ($reason)"

# A rollback hook answering 2xx rolls back at once.
in_node curl -s "http://127.0.0.1:9605/control?error_rate=0" >/dev/null
spec v4
wait_for weight_bp 2000 8
ok $? "a new revision starts again (20%)"
t0=$(date +%s%N)
in_node curl -s "http://127.0.0.1:9607/control?error_rate=0" >/dev/null
wait_for rollout.phase Failed 4
r=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok $r "the rollback hook answering 200 rolled back in $ms ms"
[ "$(field weight_bp)" = 0 ] && [ "$(sl history web --json | jq -r '.[-1].decisions[-1].by')" = webhook ]
ok $? "weight 0, recorded as decided by the webhook"

kill $LOAD 2>/dev/null
tap_done
