#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sluice must never be the outage. Under load through the VIP, in a
# namespace cluster: three kill -9/restart cycles of the agent cost no
# request; a silent agent makes the datapath send new connections to
# primary (the fail-safe) and leaves established ones alone; a rollback
# with onRollback reset (or drain) moves even keep-alive clients off the
# canary; a rollback drill measures and restores; backends leaving the spec
# drain and come back; --cleanup removes what sluice attached and pinned
# and nothing else. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "reliability end to end"
command -v jq >/dev/null || { skip "reliability end to end" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1
wait_http c1 http://198.18.3.2:8080/

mkdir -p "$WORK/spec"
spec() { # VERSION WEIGHT [extra steering yaml] [primary endpoints]
	cat >"$WORK/spec/web.yaml.tmp" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 2, stepWeight: 10}
  steering:
    vip: $VIP4
    weight: $2
    primary: {version: v1, endpoints: [${4:-198.18.1.2, 198.18.2.2}]}
    canary: {version: $1, endpoints: [198.18.3.2]}
    ${3:-}
YAML
	mv "$WORK/spec/web.yaml.tmp" "$WORK/spec/web.yaml"
}
field() { field_of web "$1"; }
c1_requests() { in_ns c1 curl -s --max-time 2 http://127.0.0.1:8080/stats | jq .requests; }
loadgen() { # OUT MODE SECONDS [CONNECTIONS]: runs in the background, pid in LG
	(exec ip netns exec "$(ns client)" "$LOADGEN_BIN" --url "http://$VIP4/" --mode "$2" \
		--rate 200 --connections "${4:-8}" --duration "$3" --timeout-ms 3000 --json >"$1" \
		2>/dev/null) &
	LG=$!
}
failed() { jq '[.failures[]] | add' "$1"; }

# 1. Three kill -9 / restart cycles under load: not one failed or reset request.
spec v2 30
start_agent "$WORK/spec"
ok $? "agent up, 30% to the canary"
loadgen "$WORK/ka.json" keepalive 12; ka=$LG
loadgen "$WORK/cl.json" close 12 4; cl=$LG
for cycle in 1 2 3; do
	sleep 2
	kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
	sleep 0.5
	start_agent "$WORK/spec" || break
done
w=$(field weight_bp)
wait $ka $cl
fk=$(failed "$WORK/ka.json"); fc=$(failed "$WORK/cl.json")
nk=$(jq '.by_status["200"] // 0' "$WORK/ka.json"); nc=$(jq '.by_status["200"] // 0' "$WORK/cl.json")
[ "$fk" -eq 0 ] && [ "$fc" -eq 0 ] && [ "$nk" -gt 100 ] && [ "$nc" -gt 100 ]
ok $? "3 kill -9/restart cycles: keep-alive $nk ok / $fk failed, new connections $nc ok / $fc failed"
[ "$w" = 3000 ] && [ "$(jq '.connects' "$WORK/ka.json")" = 8 ]
ok $? "the restarted agents kept the weight ($w bp) and no keep-alive connection was lost"

# 2. Fail-safe: the agent goes silent; after the limit new connections go to primary.
stop_agent
start_agent "$WORK/spec" --failsafe-after 2s
loadgen "$WORK/fs.json" keepalive 10 20; ka=$LG
sleep 1
kill -STOP "$AGENT_PID"
before=$(c1_requests)
sleep 3
active=$(sl status --json | jq -r '.agent.failsafe_active')
new=$(for i in $(seq 30); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | sort | uniq -c | tr -s ' \n' ' ')
case "$new" in *c1*) r=1 ;; *) r=0 ;; esac
[ "$active" = true ] && [ $r -eq 0 ]
ok $? "agent silent 3 s (limit 2 s): fail-safe active, 30 new connections all to primary ($new)"
sleep 1
after=$(c1_requests)
[ "$after" -gt "$before" ]
ok $? "established keep-alive connections to the canary are untouched ($before -> $after requests)"
kill -CONT "$AGENT_PID"
sleep 1.5
new=$(for i in $(seq 40); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | sort | uniq -c | tr -s ' \n' ' ')
case "$new" in *c1*) r=0 ;; *) r=1 ;; esac
ok $r "agent back: new connections reach the canary again ($new)"
n=$(sl status --json | jq '.datapath.failsafe_primary_flows')
[ "$n" -ge 30 ]
ok $? "the fail-safe's flows are counted ($n)"
wait $ka
[ "$(failed "$WORK/fs.json")" -eq 0 ]
ok $? "no request failed across the fail-safe"

# 3. onRollback: reset. Keep-alive clients leave the canary at once. The
# resets are built from the client's own packets, CHECKSUM_PARTIAL on its
# veth: from here on the client checks every checksum it receives (lib.sh).
verify_checksums client
ok $? "the client verifies every checksum it receives from here on (ethtool)"
csum_before=$(csum_errors client)
spec v3-reset 50 "onRollback: reset"
kill -HUP "$AGENT_PID"; sleep 0.5
loadgen "$WORK/reset.json" keepalive 6 8; ka=$LG
sleep 1.5
sl abort web >/dev/null
sleep 0.3
before=$(c1_requests); sleep 2; after=$(c1_requests)
[ "$before" = "$after" ]
ok $? "reset: 0.3 s after the rollback no request reaches the canary ($before -> $after)"
wait $ka
ok=$(jq '.by_status["200"] // 0' "$WORK/reset.json")
resets=$(jq '.failures.reset' "$WORK/reset.json")
[ "$ok" -gt 500 ] && [ "$(jq '.failures.refused + .failures.timeout + .failures.other' "$WORK/reset.json")" -eq 0 ]
ok $? "reset: clients recovered on primary ($ok answered; $resets canary connection(s) reset, as asked; $(jq -c .failures "$WORK/reset.json"))"
csum_errs=$(($(csum_errors client) - csum_before))
[ "$resets" -gt 0 ] && [ "$csum_errs" -eq 0 ]
ok $? "reset: the client took $resets reset(s), with no checksum error ($csum_errs)"
grep -q '"action":"reset"' "$STATE_DIR/history.jsonl"
ok $? "reset: recorded in the history"

# 4. onRollback: drain with drainTimeout 2s: existing canary connections finish first.
spec v4-drain 50 "{onRollback: drain, drainTimeout: 2s}"
sed -i 's/^    {onRollback: drain, drainTimeout: 2s}$/    onRollback: drain\n    drainTimeout: 2s/' "$WORK/spec/web.yaml"
kill -HUP "$AGENT_PID"; sleep 0.5
loadgen "$WORK/drain.json" keepalive 7 8; ka=$LG
sleep 1.5
sl abort web >/dev/null
sleep 0.8
d1=$(c1_requests); sleep 0.5; d2=$(c1_requests)
[ "$d2" -gt "$d1" ]
ok $? "drain: within the drain timeout the canary still serves its connections ($d1 -> $d2)"
sleep 2
d3=$(c1_requests); sleep 1.5; d4=$(c1_requests)
[ "$d3" = "$d4" ]
ok $? "drain: after the 2 s drain timeout nothing reaches the canary ($d3 -> $d4)"
wait $ka

# 5. A rollback drill: measured, recorded, restored.
spec v5-drill 30
kill -HUP "$AGENT_PID"; sleep 0.5
loadgen "$WORK/drill.json" keepalive 8 8; ka=$LG
loadgen "$WORK/drill-cl.json" close 8 4; cl=$LG
sleep 1.5
out=$(sl drill web --json)
ms=$(echo "$out" | jq '.canary_quiet_after_ms')
[ "$(echo "$out" | jq -r .ok)" = true ] && [ -n "$ms" ]
ok $? "drill: no connection reached the canary $ms ms after the rollback"
[ "$(field weight_bp)" = 3000 ]
ok $? "drill: the weight is restored (30%)"
sl history web --json | jq -e '.[-1].decisions | map(select(.action == "drill")) | length == 2' >/dev/null
ok $? "drill: start and result recorded in the history"
wait $ka $cl

# 6. A backend leaving the spec: new connections stop at once, existing ones drain; back again.
spec v5-drill 0 "" "198.18.1.2, 198.18.2.2"
kill -HUP "$AGENT_PID"; sleep 0.5
# 16 connections: with 8, all of them land on p1 one run in 256, and there is
# nothing to drain; 12 s: the checks below end well inside the run
loadgen "$WORK/rm.json" keepalive 12 16; ka=$LG
sleep 1
spec v5-drill 0 "" "198.18.1.2"
kill -HUP "$AGENT_PID"; sleep 0.5
p2a=$(in_ns p2 curl -s http://127.0.0.1:8080/stats | jq .connections)
new=$(for i in $(seq 30); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | sort -u | tr '\n' ' ')
p2b=$(in_ns p2 curl -s http://127.0.0.1:8080/stats | jq .connections)
r1=$(in_ns p2 curl -s http://127.0.0.1:8080/stats | jq .requests); sleep 1
r2=$(in_ns p2 curl -s http://127.0.0.1:8080/stats | jq .requests)
[ "$p2a" = "$((p2b - 1))" ] && [ "$new" = "p1 " ]
ok $? "removed backend p2: no new connection reaches it (new ones: $new)"
[ "$r2" -gt "$r1" ]
ok $? "removed backend p2: its established connections drain ($r1 -> $r2 requests)"
spec v5-drill 0 "" "198.18.1.2, 198.18.2.2"
kill -HUP "$AGENT_PID"; sleep 0.5
new=$(for i in $(seq 30); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | sort -u | tr '\n' ' ')
[ "$new" = "p1 p2 " ]
ok $? "re-added backend p2 is used again ($new)"
wait $ka
[ "$(failed "$WORK/rm.json")" -eq 0 ]
ok $? "no request failed while the backend left and came back"

# 7. Another tool's BPF filter on the same interface (the benchmark's do-nothing
# program, at another priority) still sees every packet: sluice passes what it
# lets through on with TC_ACT_UNSPEC, not TC_ACT_OK, which would end the hook.
# Then --cleanup removes sluice's attachments and pins, and nothing else.
FOREIGN=/sys/fs/bpf/sluice-foreign-$$
# (its own clsact: with tcx, sluice needs none)
in_node tc qdisc add dev cli0 clsact 2>/dev/null
bpftool prog loadall "$SLUICE_ROOT/.output/passthru.bpf.o" "$FOREIGN" >/dev/null 2>&1 &&
	in_node tc filter add dev cli0 ingress prio 7 bpf da pinned "$FOREIGN/sl_tc_passthru"
stats_were=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
runs() { bpftool prog show pinned "$FOREIGN/sl_tc_passthru" -j | jq '.run_cnt // 0'; }
r0=$(runs)
answered=$(for i in $(seq 20); do in_ns client curl -s --max-time 2 "http://$VIP4/"; done | grep -c .)
r1=$(runs)
sysctl -qw kernel.bpf_stats_enabled="$stats_were"
# each request is at least 4 client packets (SYN, ACK, request, FIN) through cli0's ingress
[ "$answered" -eq 20 ] && [ $((r1 - r0)) -ge 80 ]
ok $? "another tool's filter after sluice's programs still runs on steered traffic ($((r1 - r0)) packets of 20 requests; $(hooks_of cli0 | head -1))"
stop_agent
out=$(in_node "$SLUICE" agent --cleanup --bpffs "$PIN_ROOT")
left=$(in_node tc filter show dev cli0 ingress; in_node tc filter show dev cli0 egress)
case "$left" in *sl_tc_forward* | *sl_tc_reverse*) r=1 ;; *sl_tc_passthru*) r=0 ;; *) r=1 ;; esac
[ $r -eq 0 ] && [ ! -e "$PIN_ROOT" ]
ok $? "--cleanup: sluice's filters and pins gone, another tool's filter kept ($out)"
rm -rf "$FOREIGN"

tap_done
