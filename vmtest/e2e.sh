#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A short end-to-end rollout for vmtest: on the kernel under test, the agent
# promotes a healthy canary and rolls back one answering 503, judged from
# the in-kernel counters, while a client keeps opening connections through
# the VIP; and the forward program uses the checksum path that kernel
# allows (the csum helpers before Linux 6.3, bpf_cast_to_kern_ctx() from
# 6.3 on). The timing is loose (2 s intervals, low rates) because under
# TCG everything runs tens of times slower than on the host. Same
# namespace cluster and address rules as tests/e2e (lib.sh). Prints TAP.
set -u
. "$(dirname "$0")/../tests/e2e/lib.sh"
need_root_tools "vmtest rollout"
need_tools "vmtest rollout" jq bpftool

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1
wait_http p1 http://198.18.1.2:8080/ && wait_http p2 http://198.18.2.2:8080/ &&
	wait_http c1 http://198.18.3.2:8080/
ok $? "three pods serve HTTP"

mkdir -p "$WORK/spec"
SPEC=$WORK/spec/web.yaml
spec() { # spec CANARY_VERSION
	cat >"$SPEC.tmp" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: vmtest}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: 2s
    threshold: 2
    stepWeight: 25
    maxWeight: 50
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}}
  steering:
    vip: $VIP4
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: $1, endpoints: [198.18.3.2]}
YAML
	mv "$SPEC.tmp" "$SPEC" # whole files only: the agent may be watching
}
field() { sl status web --json 2>/dev/null | jq -r ".services[0].$1"; }
wait_for() { # wait_for JQ_FIELD VALUE SECONDS (wall clock: one status call is slow under TCG)
	local end=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$end" ]; do
		[ "$(field "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
load() { # load SECONDS OUT: a new connection per request, 40 req/s
	in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 40 --connections 2 \
		--duration "$1" --json >"$2" 2>"$2.err" &
	LOAD_PID=$!
}

spec v2-healthy
start_agent "$WORK/spec"
ok $? "agent loads the datapath on $(uname -r) and runs the rollout"

# Which rewrite the kernel verified: the dead path is removed by the
# verifier, so the translated program shows only the one that runs.
id=$(in_node bpftool -j net show dev cli0 | jq '[.[0].tc[]? | select(.name | startswith("sl_tc_forward")) | .id][0]')
xlated=$(bpftool prog dump xlated id "$id" 2>/dev/null)
[ -n "$xlated" ]
r=$?
ok $r "bpftool shows the forward program attached to cli0 (id $id, $(echo "$xlated" | wc -l) lines)"
# Not attached: the agent's log says why (a kernel feature it lacks, say).
[ $r -eq 0 ] || grep -E ' (warn|error) ' "$WORK/agent.log" | sed 's/^/# agent: /'
helpers=$(echo "$xlated" | grep -c 'call bpf_l4_csum_replace')
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
if [ "$kmaj" -lt 6 ] || { [ "$kmaj" -eq 6 ] && [ "${kmin%%[!0-9]*}" -lt 3 ]; }; then
	[ "$helpers" -gt 0 ]
	ok $? "Linux $kmaj.$kmin: the forward program rewrites through the csum helpers ($helpers calls)"
else
	[ "$helpers" -eq 0 ]
	ok $? "Linux $kmaj.$kmin: the forward program rewrites in BPF, no csum helper call ($helpers)"
fi

# 1. Healthy: 25 -> 50 -> promoted, one step per 2 s tick.
load 14 "$WORK/healthy.json"
wait_for rollout.phase Succeeded 30
ok $? "healthy canary promoted (phase $(field rollout.phase))"
[ "$(field weight_bp)" = 10000 ]
ok $? "after promotion every new connection goes to the canary ($(field weight_bp) bp)"
wait "$LOAD_PID"
f=$(jq '[.failures[]] | add' "$WORK/healthy.json")
n=$(jq '.by_status["200"] // 0' "$WORK/healthy.json")
c=$(jq '.by_backend.c1.requests // 0' "$WORK/healthy.json")
[ "$f" -eq 0 ] && [ "$n" -gt 100 ] && [ "$c" -gt 0 ]
ok $? "healthy rollout: $n requests answered 200 ($c by the canary), $f failed"

# 2. A canary answering 503 to every request: rolled back to weight 0.
spec v2-errors
in_ns c1 curl -s --max-time 2 "http://127.0.0.1:8080/control?error_rate=1&error_code=503" >/dev/null
wait_for rollout.attempt 2 10
load 14 "$WORK/errors.json"
wait_for rollout.phase Failed 30
ok $? "503 canary rolled back (phase $(field rollout.phase), $(field rollout.last_reason))"
[ "$(field weight_bp)" = 0 ]
ok $? "after the rollback no new connection goes to the canary ($(field weight_bp) bp)"
wait "$LOAD_PID"
s5=$(jq '.by_status["503"] // 0' "$WORK/errors.json")
n=$(jq '.by_status["200"] // 0' "$WORK/errors.json")
[ "$s5" -gt 0 ] && [ "$n" -gt 0 ]
ok $? "the client saw the canary's 503s ($s5) and primaries' 200s ($n) during the attempt"

tap_done
