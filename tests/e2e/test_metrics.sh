#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# /metrics against real Prometheus tools: promtool checks the exposition,
# and a Prometheus server (Debian's, started here in the node's namespace
# with a generated config) scrapes the agent during a rollout whose canary
# fails 10% of requests; the canary success rate PromQL computes over the
# metric's window agrees with what the agent judged at each decision.
# Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
need_root_tools "metrics end to end"
command -v jq >/dev/null || { skip "metrics end to end" "jq is not installed (make deps)"; tap_done; exit 0; }

trap cluster_down EXIT
cluster_up
start_backend p1 p1
start_backend p2 p2
start_backend c1 c1 --error-rate 0.1 --error-code 503
wait_http c1 http://198.18.3.2:8080/

mkdir -p "$WORK/spec"
cat >"$WORK/spec/web.yaml" <<YAML
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: e2e}
spec:
  service: {port: 80, targetPort: 8080}
  analysis:
    interval: 2s
    threshold: 3
    stepWeight: 50
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 4s}
  steering:
    vip: $VIP4
    weight: 0     # held until resumed below, once Prometheus has a few scrapes
    primary: {version: v1, endpoints: [198.18.1.2, 198.18.2.2]}
    canary: {version: v2, endpoints: [198.18.3.2]}
YAML
# Prometheus first, so it has every scrape of the rollout.
have_prom=0
if command -v prometheus >/dev/null; then
	mkdir -p "$WORK/prom"
	cat >"$WORK/prom/prometheus.yml" <<-YAML
	global: {scrape_interval: 1s, evaluation_interval: 1s}
	scrape_configs:
	- job_name: sluice
	  static_configs: [{targets: ["127.0.0.1:9477"]}]
	YAML
	(exec nsenter --net="/run/netns/$(ns node)" prometheus --config.file="$WORK/prom/prometheus.yml" \
		--storage.tsdb.path="$WORK/prom/data" --web.listen-address=127.0.0.1:9090 \
		>"$WORK/prom/log" 2>&1) &
	CLUSTER_PIDS+=($!)
	for i in $(seq 100); do
		in_node curl -sf --max-time 1 http://127.0.0.1:9090/-/ready >/dev/null 2>&1 && break
		sleep 0.2
	done
	in_node curl -sf --max-time 1 http://127.0.0.1:9090/-/ready >/dev/null
	ok $? "a Prometheus server runs in the node's namespace"
	have_prom=1
else
	skip "a Prometheus server" "prometheus is not installed (Debian package prometheus)"
fi

start_agent "$WORK/spec"
ok $? "agent runs with --listen 127.0.0.1:9477 (default)"

body=$(in_node curl -s --max-time 2 http://127.0.0.1:9477/healthz)
[ "$body" = ok ]
ok $? "/healthz answers ok"
code=$(in_node curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:9477/nope)
[ "$code" = 404 ]
ok $? "an unknown path is 404"

in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 50 --duration 1 \
	>/dev/null 2>&1
in_node curl -s --max-time 2 http://127.0.0.1:9477/metrics >"$WORK/metrics.txt"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <"$WORK/metrics.txt" 2>&1)
	ok $? "promtool check metrics passes ${out:+($out)}"
else
	skip "promtool check metrics" "promtool is not installed (Debian package prometheus)"
fi
grep -q '^sluice_requests_total{rollout="e2e/web",role="primary",version="v1",backend="198.18.1.2:8080"} [1-9]' "$WORK/metrics.txt" &&
	grep -q '^sluice_requests_total{rollout="e2e/web",role="canary",version="v2",backend="198.18.3.2:8080"} ' "$WORK/metrics.txt"
ok $? "per-backend request counters carry rollout, role, version and backend labels"
grep -q '^sluice_request_duration_seconds_bucket{.*le="+Inf"} [1-9]' "$WORK/metrics.txt"
ok $? "the request-duration histogram is exported with le buckets"

[ $have_prom = 1 ] || { tap_done; exit 0; }
in_ns client "$LOADGEN_BIN" --url "http://$VIP4/" --mode close --rate 200 --connections 4 \
	--duration 30 >/dev/null 2>&1 &
lg=$!
sleep 5
sl resume web >/dev/null
ok $? "rollout resumed after 5 s of scrapes"
for i in $(seq 300); do
	[ "$(sl status web --json | jq -r '.services[0].rollout.phase')" = Failed ] && break
	sleep 0.1
done
[ "$(sl status web --json | jq -r '.services[0].rollout.phase')" = Failed ]
ok $? "the 10%-failing canary is rolled back (threshold 3)"
sleep 2 # the last scrape after the decision
kill $lg 2>/dev/null; wait $lg 2>/dev/null

up=$(in_node curl -s http://127.0.0.1:9090/api/v1/query --data-urlencode 'query=up{job="sluice"}' | jq -r '.data.result[0].value[1]')
[ "$up" = 1 ]
ok $? "Prometheus scraped the agent (up = $up)"

# The canary success rate as the agent computes it (docs/metrics.md), over the metric's 4s window.
sel='rollout="e2e/web",role="canary"'
q="100 * (1 - (sum(increase(sluice_responses_total{$sel,class=\"5xx\"}[4s])) + sum(increase(sluice_requests_unanswered_total{$sel}[4s])) + sum(increase(sluice_connection_failures_total{$sel,kind=\"refused\"}[4s]))) / (sum(increase(sluice_responses_total{$sel}[4s])) + sum(increase(sluice_requests_unanswered_total{$sel}[4s])) + sum(increase(sluice_connection_failures_total{$sel,kind=\"refused\"}[4s]))))"
n=0 agree=0 detail=""
while read -r t v; do
	ts=$(date -d "$t" +%s.%N)
	p=$(in_node curl -s http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$q" \
		--data-urlencode "time=$ts" | jq -r '.data.result[0].value[1] // "none"')
	n=$((n + 1))
	if [ "$p" != none ] && awk -v a="$p" -v b="$v" 'BEGIN { d = a - b; exit !(d <= 5 && d >= -5) }'; then
		agree=$((agree + 1))
	fi
	detail="$detail agent $(printf '%.1f' "$v") / promql $(printf '%.1f' "$p" 2>/dev/null || echo "$p");"
done < <(sl history web --json | jq -r '.[-1].decisions[] | select(.check) | "\(.time) \(.check.metrics[0].value)"')
diag "decisions:$detail"
[ "$n" -ge 3 ] && [ "$agree" -eq "$n" ]
ok $? "PromQL's canary success rate agrees with the agent's judgement within 5 points at all $n decisions"

tap_done
