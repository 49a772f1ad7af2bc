#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# End-to-end steering: a client, a node running `sluice agent`, two primary
# pods and one canary pod with real HTTP servers, all in namespaces made
# here. Checks that every request through the VIPs (IPv4 and IPv6) is
# answered, that the split the servers see follows the weight, that a weight
# change moves no established connection, that the counters in the pinned
# maps agree with what the servers saw, and that the agent leaves nothing
# behind. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "end-to-end steering"
command -v jq >/dev/null || { skip "end-to-end steering" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1

spec() { # spec FILE WEIGHT_PCT
	cat >"$1" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 1, stepWeight: 10, maxWeight: 50}
  steering:
    vip: $VIP4
    weight: $2
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: v2, endpoints: [198.18.3.2]}
---
YAML
	cat >"${1%.yaml}-v6.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web6, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 1, stepWeight: 10, maxWeight: 50}
  steering:
    vip: $VIP6
    weight: $2
    primary: {version: v1, endpoints: ["fd00:5c:1::2", "fd00:5c:2::2"]}
    canary: {version: v2, endpoints: ["fd00:5c:3::2"]}
YAML
}
mkdir -p "$WORK/spec"
spec "$WORK/spec/web.yaml" 20
sed -i '/^---$/d' "$WORK/spec/web.yaml"

wait_http p1 http://198.18.1.2:8080/ && wait_http p2 http://198.18.2.2:8080/ &&
	wait_http c1 http://198.18.3.2:8080/
ok $? "three pods serve HTTP"

start_agent "$WORK/spec"
ok $? "agent loads, attaches to cli0 and steers two rollouts"

body=$(in_ns client curl -s --max-time 3 "http://$VIP4/")
case "$body" in p1|p2|c1) r=0 ;; *) r=1 ;; esac
ok $r "curl through the IPv4 VIP is answered by a pod (got '$body')"
body=$(in_ns client curl -s --max-time 3 "http://[$VIP6]/")
case "$body" in p1|p2|c1) r=0 ;; *) r=1 ;; esac
ok $r "curl through the IPv6 VIP is answered by a pod (got '$body')"
body=$(in_ns client curl -s --max-time 3 "http://198.18.1.2:8080/")
[ "$body" = p1 ]
ok $? "the client still reaches a pod directly, untouched (got '$body')"

stats_conns() { # pod: connections the server accepted, this query's own included
	in_ns "$1" curl -s --max-time 2 http://127.0.0.1:8080/stats | jq '.connections'
}
before_p1=$(stats_conns p1); before_p2=$(stats_conns p2); before_c1=$(stats_conns c1)
status_before=$("$SLUICE" status --json --bpffs "$PIN_ROOT")

# 1000 new connections at 20%: the canary's share is binomial, sd 1.3 points.
for fam in 4 6; do
	if [ $fam = 4 ]; then url="http://$VIP4/"; else url="http://[$VIP6]/"; fi
	in_ns client "$LOADGEN_BIN" --url "$url" --mode close --requests 1000 --connections 4 \
		--duration 60 --json >"$WORK/split$fam.json" 2>"$WORK/split$fam.err"
	total=$(jq '.by_status["200"] // 0' "$WORK/split$fam.json")
	canary=$(jq '.by_backend.c1.requests // 0' "$WORK/split$fam.json")
	p1=$(jq '.by_backend.p1.requests // 0' "$WORK/split$fam.json")
	p2=$(jq '.by_backend.p2.requests // 0' "$WORK/split$fam.json")
	[ "$total" -eq 1000 ]
	ok $? "IPv$fam: 1000 of 1000 new-connection requests answered 200 (got $total)"
	[ "$canary" -ge 150 ] && [ "$canary" -le 250 ]
	ok $? "IPv$fam: canary share at weight 20% is $canary/1000 (accepted 15-25%)"
	[ "$p1" -ge 300 ] && [ "$p2" -ge 300 ]
	ok $? "IPv$fam: primaries share the rest evenly (p1 $p1, p2 $p2)"
done

# The datapath's counters against what the servers saw, connection for connection.
status_after=$("$SLUICE" status --json --bpffs "$PIN_ROOT")
for pod in p1 p2 c1; do
	case $pod in p1) b=$before_p1 ;; p2) b=$before_p2 ;; c1) b=$before_c1 ;; esac
	seen=$(( $(stats_conns $pod) - b - 1 )) # less the first /stats query's connection
	addr4=198.18.${pod#?}.2; [ $pod = p1 ] && addr4=198.18.1.2; [ $pod = p2 ] && addr4=198.18.2.2; [ $pod = c1 ] && addr4=198.18.3.2
	addr6=${addr4/198.18./fd00:5c:}; addr6=${addr6%.2}::2
	counted=0
	for a in $addr4 $addr6; do
		q=".services[] | (.primary.backends + .canary.backends)[] | select(.address == \"$a\") | .conns_opened"
		n1=$(echo "$status_after" | jq "$q"); n0=$(echo "$status_before" | jq "$q")
		counted=$((counted + n1 - n0))
	done
	[ "$seen" -eq "$counted" ] && [ "$seen" -gt 0 ]
	ok $? "$pod: connections counted in sl_stats ($counted) equal those the server accepted ($seen)"
done
opened=$(echo "$status_after" | jq '[.services[] | (.primary.backends + .canary.backends)[] | .conns_opened] | add')
closed=$("$SLUICE" status --json --bpffs "$PIN_ROOT" | jq '[.services[] | (.primary.backends + .canary.backends)[] | .conns_closed] | add')
[ "$opened" -eq "$closed" ]
ok $? "every steered connection was seen closing both ways ($closed of $opened)"

# The rewrites against hosts that check every checksum they receive: the
# client's packets are CHECKSUM_PARTIAL (only the pseudo-header in the field)
# and pods' replies too, and both halves must leave a field the node's
# software checksum then completes right (lib.sh, verify_checksums).
verify_checksums client p1 p2 c1
ok $? "client and pods verify every checksum they receive (ethtool: node tx off, host rx off)"
csum_before=$(csum_errors client p1 p2 c1)
csum_answered=0
for url in "http://$VIP4/" "http://[$VIP6]/"; do
	in_ns client "$LOADGEN_BIN" --url "$url" --mode close --requests 200 --connections 4 \
		--duration 30 --json >"$WORK/csum.json" 2>/dev/null
	csum_answered=$((csum_answered + $(jq '.by_status["200"] // 0' "$WORK/csum.json")))
done
csum_errs=$(($(csum_errors client p1 p2 c1) - csum_before))
[ "$csum_answered" -eq 400 ] && [ "$csum_errs" -eq 0 ]
ok $? "TC halves: $csum_answered of 400 requests answered, $csum_errs checksum errors in client and pods"

# A weight change breaks no established connection: keep-alive clients opened
# at weight 0 stay on primary when the weight goes to 100%.
spec "$WORK/spec/web.yaml" 0; sed -i '/^---$/d' "$WORK/spec/web.yaml"
kill -HUP "$AGENT_PID"; sleep 0.5
in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode keepalive --connections 8 --rate 400 \
	--duration 4 --json >"$WORK/keepalive.json" 2>"$WORK/keepalive.err" &
lg=$!
sleep 1.5
spec "$WORK/spec/web.yaml" 100; sed -i '/^---$/d' "$WORK/spec/web.yaml"
kill -HUP "$AGENT_PID"
sleep 0.5
new=$(in_ns client curl -s --max-time 3 "http://$VIP4/")
wait $lg
w=$("$SLUICE" status --json --bpffs "$PIN_ROOT" | jq '.services[] | select(.name=="e2e/web") | .weight_bp')
[ "$w" = 10000 ]
ok $? "SIGHUP reload moved the weight to 10000 bp (status says $w)"
[ "$new" = c1 ]
ok $? "a new connection after the change goes to the canary (got '$new')"
fails=$(jq '[.failures[]] | add' "$WORK/keepalive.json")
reqs=$(jq '.by_status["200"] // 0' "$WORK/keepalive.json")
conns=$(jq '.connects' "$WORK/keepalive.json")
canary=$(jq '.by_backend.c1.requests // 0' "$WORK/keepalive.json")
[ "$fails" -eq 0 ] && [ "$reqs" -gt 1000 ] && [ "$conns" -eq 8 ]
ok $? "keep-alive load across the change: $reqs answered, $fails failed, $conns connections (no reconnect)"
[ "$canary" -eq 0 ]
ok $? "no request of a connection opened before the change reached the canary ($canary)"

# A bad spec on reload changes nothing.
echo "spec: [broken" >"$WORK/spec/web.yaml"
kill -HUP "$AGENT_PID"; sleep 0.5
grep -q "reload (.*) refused" "$WORK/agent.log"
ok $? "a broken spec reload is refused and logged"
w=$("$SLUICE" status --json --bpffs "$PIN_ROOT" | jq '.services | length')
body=$(in_ns client curl -s --max-time 3 "http://$VIP4/")
[ "$w" = 2 ] && [ "$body" = c1 ]
ok $? "after the refused reload both rollouts still steer ($w services, got '$body')"

if command -v bpftool >/dev/null; then
	bpftool map dump pinned "$PIN_ROOT/sl_services" 2>/dev/null | grep -q '"weight": 10000'
	ok $? "bpftool dumps sl_services with field names (BTF)"
	# bpftool 7.1 shows cls_bpf filters by name; tcx links only as links of their program
	fid=$(in_node "$SLUICE" hooks --json cli0 | jq -r '.[] | select(.program == "sl_tc_forward") | "\(.api) \(.id)"')
	case "$fid" in
	"cls_bpf "*) in_node bpftool net show dev cli0 2>/dev/null | grep -q sl_tc_forward ;;
	"tcx "*) bpftool link show 2>/dev/null | grep -qE "prog ${fid#tcx }( |$)" ;;
	*) false ;;
	esac
	ok $? "bpftool sees sl_tc_forward's attachment on cli0 ($fid)"
else
	skip "bpftool inspection" "bpftool is not installed"
fi

attached cli0
ok $? "sluice hooks: sl_tc_forward at cli0's ingress, sl_tc_reverse at its egress ($(hooks_of cli0 | tr '\n' ';'))"

# SIGTERM: the agent goes, the datapath stays (attached, pinned, at its weights).
stop_agent
body=$(in_ns client curl -s --max-time 3 "http://$VIP4/")
attached cli0 && [ -e "$PIN_ROOT/sl_services" ] && [ "$body" = c1 ]
ok $? "SIGTERM: the agent exits, the datapath keeps steering without it (got '$body')"

# The TC API can change under a running datapath (a kernel upgrade, --tc-api): the
# next agent attaches the other way and takes the old attachment off.
spec "$WORK/spec/web.yaml" 100; sed -i '/^---$/d' "$WORK/spec/web.yaml"
start_agent "$WORK/spec" --tc-api clsact
h=$(hooks_of cli0 | sort | tr '\n' ';')
body=$(in_ns client curl -s --max-time 3 "http://$VIP4/")
[ "$h" = "egress cls_bpf sl_tc_reverse;ingress cls_bpf sl_tc_forward;" ] && [ "$body" = c1 ]
ok $? "--tc-api clsact: cls_bpf filters in place of any tcx link, still steering ($h)"
stop_agent

# A new agent adopts it; with --detach-on-exit it removes everything when it goes.
start_agent "$WORK/spec" --detach-on-exit
ok $? "a new agent adopts the pinned datapath"
h=$(hooks_of cli0 | sort | tr '\n' ';')
if grep -q "attaching through tcx links" "$WORK/agent.log"; then
	[ "$h" = "egress tcx sl_tc_reverse;ingress tcx sl_tc_forward;" ]
	ok $? "back to tcx (the kernel has it): the cls_bpf filters are gone ($h)"
else
	skip "back to tcx" "this kernel has no tcx (Linux 6.6+): clsact throughout"
fi
stop_agent
left=$(hooks_of cli0; in_node tc filter show dev cli0 ingress; in_node tc filter show dev cli0 egress)
[ -z "$left" ] && [ ! -e "$PIN_ROOT" ]
ok $? "--detach-on-exit: the agent detached its filters and removed its pins"
body=$(in_ns client curl -s --max-time 3 "http://198.18.3.2:8080/")
[ "$body" = c1 ]
ok $? "after the agent is gone, direct traffic still flows"

tap_done
