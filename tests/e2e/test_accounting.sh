#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# In-kernel request accounting against ground truth: thousands of requests
# through the VIP with a known mix of 5xx, refused connections and
# latencies; what the datapath counted per backend must equal what the load
# generator saw, exactly, and the p99 from the kernel's histogram must be
# within the histogram's error of the p99 the load generator measured.
# One primary pod is nginx (Debian's), so a real third-party server is in
# the mix. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "request accounting end to end"
command -v jq >/dev/null || { skip "request accounting end to end" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1 --latency-ms 1:4
# c1: 20% 500s, and a slow tail: 3% of requests take 60 ms
start_backend c1 c1 --error-rate 0.2 --error-code 500 --latency-ms 2:10 --slow-rate 0.03 --slow-ms 60

have_nginx=0
if command -v nginx >/dev/null; then
	start_nginx p2 nginx 8080
	have_nginx=1
fi

wait_http p1 http://198.18.1.2:8080/ && wait_http c1 http://198.18.3.2:8080/
ok $? "test-backend pods serve HTTP"
if [ $have_nginx = 1 ] && wait_http p2 http://198.18.2.2:8080/; then
	ok 0 "nginx serves HTTP as pod p2"
	P2=198.18.2.2
else
	skip "nginx as a pod" "nginx is not installed (Debian package nginx-light; make deps)"
	have_nginx=0
	start_backend p2 nginx   # stands in so the rest still runs
	wait_http p2 http://198.18.2.2:8080/
	P2=198.18.2.2
fi

# The canary has a second endpoint where nothing listens: connections to it are refused.
mkdir -p "$WORK/spec"
cat >"$WORK/spec/acct.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: acct, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, stepWeight: 10, maxWeight: 50}
  steering:
    vip: $VIP4
    weight: 40
    primary: {version: v1, endpoints: [198.18.1.2, $P2]}
    canary: {version: v2, endpoints: ["198.18.3.2:8080", "198.18.3.2:8081"]}
YAML
# --latency-samples 200: the sampling check at the end needs only a few
# thousand requests a second; the runs before stay below it and time all
start_agent "$WORK/spec" --latency-samples 200
ok $? "agent steering at a fixed 40% (no analysis moves it)"

in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 800 --connections 8 \
	--requests 4000 --duration 60 --timeout-ms 3000 --json >"$WORK/load.json" 2>"$WORK/load.err"
sleep 0.5 # the last FINs
S=$(sl status acct --json)
L=$WORK/load.json
diag "loadgen: $(jq -c '{requests, by_status, failures}' "$L")"

be() { # be ADDR PORT FIELD: a backend's counter from status
	echo "$S" | jq ".services[0] | (.primary.backends + .canary.backends)[] |
		select(.address == \"$1\" and .port == $2) | $3"
}
lg() { jq "$1 // 0" "$L"; }

total=$(lg '.requests')
[ "$total" -eq 4000 ]
ok $? "loadgen sent 4000 requests"

for pod in p1:198.18.1.2 nginx:$P2 c1:198.18.3.2; do
	name=${pod%%:*} addr=${pod#*:}
	[ $name = nginx ] && [ $have_nginx = 0 ] && name=nginx
	want=$(lg ".by_backend[\"$name\"].requests")
	got=$(be "$addr" 8080 .requests)
	[ "$want" -gt 0 ] && [ "$got" = "$want" ]
	ok $? "$name: requests counted in the kernel ($got) = requests answered by it as loadgen saw ($want)"
	w2=$(lg ".by_backend[\"$name\"].by_status[\"200\"]")
	g2=$(be "$addr" 8080 '.responses["2xx"]')
	[ "$g2" = "$w2" ]
	ok $? "$name: 2xx in the kernel ($g2) = 200s loadgen got ($w2)"
	w5=$(lg ".by_backend[\"$name\"].by_status[\"500\"]")
	g5=$(be "$addr" 8080 '.responses_5xx["500"]')
	[ "$g5" = "$w5" ]
	ok $? "$name: 500s in the kernel ($g5) = 500s loadgen got ($w5)"
	[ "$(be "$addr" 8080 '.unclassified')" = 0 ] && [ "$(be "$addr" 8080 '.unanswered')" = 0 ]
	ok $? "$name: nothing unclassified or unanswered"
done

refused_lg=$(lg '.failures.refused')
refused_k=$(be 198.18.3.2 8081 .conns_refused)
[ "$refused_lg" -gt 0 ] && [ "$refused_k" = "$refused_lg" ]
ok $? "refused connections: kernel $refused_k = loadgen $refused_lg"

# Per version: what the agent judges by.
c_req=$(echo "$S" | jq '[.services[0].canary.backends[].requests] | add')
c_lg=$(lg '.by_backend.c1.requests')
[ "$c_req" = "$c_lg" ]
ok $? "canary version: $c_req requests in the kernel = $c_lg in loadgen"

# p99: a second rollout on another VIP whose only backend is c1, so the
# kernel's histogram of that backend holds exactly this run's requests.
# one_backend NAME INTERVAL VIP ENDPOINT: a rollout whose only backend is ENDPOINT, at
# weight 0, so that backend's counters and histogram hold exactly the VIP's traffic
one_backend() {
	cat >"$WORK/spec/$1.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: $1, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis: {interval: $2, stepWeight: 10}
  steering:
    vip: $3
    weight: 0
    primary: {version: v2, endpoints: [$4]}
    canary: {version: none, endpoints: []}
YAML
}
one_backend acct-p99 1s 198.19.0.11 198.18.3.2
kill -HUP "$AGENT_PID"
for i in $(seq 30); do sl status acct-p99 --json >/dev/null 2>&1 && break; sleep 0.1; done
in_ns client "$LOADGEN_BIN" --url "http://198.19.0.11/" --mode close --rate 500 --connections 8 \
	--requests 3000 --duration 60 --json >"$WORK/p99.json" 2>/dev/null
sleep 0.3
n_lg=$(jq '.by_status["200"] + (.by_status["500"] // 0)' "$WORK/p99.json")
lg_p99=$(jq '.latency_p99_ms' "$WORK/p99.json")
K=$(sl status acct-p99 --json | jq '.services[0].primary.backends[0]')
n_k=$(echo "$K" | jq '.requests'); k_p99=$(echo "$K" | jq '.latency_p99_ms')
[ "$n_k" = "$n_lg" ]
ok $? "p99 run: the backend's histogram holds this run's $n_k requests (loadgen: $n_lg)"
# the kernel times first request byte in to first response byte out at the
# node; loadgen times send to last byte at the client: allow the bucket
# error (3.1%) plus 1% for the network between them
awk -v a="$lg_p99" -v b="$k_p99" 'BEGIN { d = (a > b ? a - b : b - a) / a; exit !(d <= 0.041) }'
ok $? "p99 from the kernel's histogram ($k_p99 ms) is within 4.1% of loadgen's ($lg_p99 ms)"

# Latency sampling: at a high request rate the agent has the datapath time a
# sample (1 in 2^k) of the requests, each counting 2^k in the histogram;
# every request and response is still counted. A fourth VIP to p2 alone,
# with a 60 s interval: a keep-alive run raises the rate until k rises,
# within seconds (the agent follows the rate every second, not only at its
# ticks); the run's connections, opened while every request was timed,
# follow the new k from their next request. A second run, through whatever
# k the agent chooses as it starts and stops, is counted against loadgen
# exactly, and the histogram's weighted count estimates its requests.
one_backend acct-sample 60s 198.19.0.12 "$P2"
kill -HUP "$AGENT_PID"
for i in $(seq 30); do sl status acct-sample --json >/dev/null 2>&1 && break; sleep 0.1; done
sample_of() { sl status acct-sample --json | jq '.services[0].latency_sample_1_in // 1'; }
backend_of() { sl status acct-sample --json | jq -c '.services[0].primary.backends[0] |
	{requests, weighted: ([.latency_histogram[]?.count] | add // 0)}'; }
# exec: $! must be loadgen itself for kill to stop it
(exec ip netns exec "$(ns client)" "$LOADGEN_BIN" --url "http://198.19.0.12/" --connections 16 \
	--duration 20 >/dev/null 2>&1) &
LG=$!
k1=1
for i in $(seq 100); do k1=$(sample_of); [ "$k1" -gt 1 ] && break; sleep 0.1; done
# the first k may come from a second that saw part of the run: two more at
# the full rate
sleep 2.5
k1=$(sample_of)
# binomial: T timed of N requests at 1 in K, within 5 standard deviations
# (and never all of them)
sampled_ok() {
	awk -v n="$1" -v t="$2" -v k="$3" 'BEGIN { m = n / k; sd = sqrt(n * (1 / k) * (1 - 1 / k));
		exit !(n > 1000 && t < n && t >= m - 5 * sd && t <= m + 5 * sd) }'
}
a1=$(backend_of)
sleep 1.5
a2=$(backend_of)
k1b=$(sample_of)
kill "$LG" 2>/dev/null; wait "$LG" 2>/dev/null
[ "$k1" -gt 1 ] && grep -q "acct-sample: timing 1 in $k1 requests" "$WORK/agent.log"
r=$?
per=$(grep -o "acct-sample: timing 1 in $k1 requests ([0-9]*" "$WORK/agent.log" | tail -1 | sed 's/.*(//')
ok $r "at ${per:-?} requests an interval the agent times 1 in $k1 within $((i / 10 + 3)) s of a 60 s interval (status and log agree)"
dreq=$(jq -n "$a2.requests - $a1.requests"); dw=$(jq -n "$a2.weighted - $a1.weighted")
# at one k throughout, the histogram grew by k for each timed request
dtimed=$((dw / k1))
[ "$k1b" = "$k1" ] && [ $((dw % k1)) = 0 ] && sampled_ok "$dreq" "$dtimed" "$k1"
ok $? "connections opened while every request was timed follow the new k: $dtimed of $dreq timed at 1 in $k1, $k1 each in the histogram (1 in $k1b after)"
# silence keeps k (two updates without a request) ...
sleep 2.5
k_idle=$(sample_of)
[ "$k_idle" = "$k1b" ]
ok $? "silence keeps the sampling: 1 in $k_idle 2.5 s after the run (1 in $k1b during it)"
# ... and traffic that comes back slower lowers it at the next update: 5
# requests/s is 300 an interval, under twice the 200 a sample must keep here
in_ns client "$LOADGEN_BIN" --url "http://198.19.0.12/" --connections 2 --rate 5 \
	--duration 3 >/dev/null 2>&1
k_slow=$(sample_of)
[ "$k_slow" = 1 ]
ok $? "traffic back at 5 requests/s times every request again (1 in $k_slow)"
# the second run starts at whatever k that left and moves it with its rate
b1=$(backend_of)
in_ns client "$LOADGEN_BIN" --url "http://198.19.0.12/" --connections 16 --duration 3 \
	--json >"$WORK/sample.json" 2>/dev/null
sleep 0.3
b2=$(backend_of)
dreq=$(jq -n "$b2.requests - $b1.requests"); dw=$(jq -n "$b2.weighted - $b1.weighted")
n_lg=$(jq '[.by_status[]] | add' "$WORK/sample.json")
diag "second run: loadgen $n_lg requests; kernel $dreq requests, histogram $dw weighted"
[ "$dreq" = "$n_lg" ] && [ "$(jq '.failures | add // 0' "$WORK/sample.json")" = 0 ]
ok $? "every request still counted while sampling: kernel $dreq = loadgen $n_lg"
# each timed request stands for 2^k: the weighted count estimates them all,
# within 5 standard deviations at 1 in 16 at most (sd = sqrt(15 n))
awk -v n="$dreq" -v w="$dw" 'BEGIN { d = w - n; if (d < 0) d = -d; exit !(n > 1000 && d <= 5 * sqrt(15 * n)) }'
ok $? "the histogram's weighted count ($dw) estimates the $dreq requests"

tap_done
