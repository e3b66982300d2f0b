#!/usr/bin/env bash
# The agent as a cluster's Prometheus sees it, on the namespace cluster (two hosts, real etcd,
# Linux dataplane):
#   * --metrics-listen on the node's address serves /metrics and the probes, never /status;
#     /status stays on the loopback listener;
#   * `promtool check metrics` accepts the exposition;
#   * a real Prometheus in the hub namespace scrapes host-1's metrics listener (with the alert
#     rules of deploy/ loaded), and the route count and the event-to-route histogram come back
#     through its HTTP API.
# Prometheus' parts say SKIPPED when the Debian package prometheus is absent.
# Usage: prometheus_test.sh <path-to-agent-binary>
set -uo pipefail

AGENT_BIN=$(readlink -f "$1")
DEPLOY=$(readlink -f "$(dirname "$0")/../../deploy")
source "$(dirname "$0")/../../scripts/lib/checks.sh"
require_cluster_tools
if ! command -v curl >/dev/null; then echo "SKIPPED: curl is not installed"; exit 77; fi
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
PROM_PID=""
stop_prometheus() {
  [[ -n $PROM_PID ]] || return 0
  kill -TERM "$PROM_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$PROM_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PROM_PID" 2>/dev/null || true
  wait "$PROM_PID" 2>/dev/null || true
  PROM_PID=""
}
trap 'stop_prometheus; cluster_down' EXIT

cluster_up 2 || { echo "cannot build the namespace cluster"; exit 1; }
etcd_up || exit 1

agent_start 1 --metrics-listen 10.99.0.1:9744
agent_start 2
# Blocks written one at a time once host-1 is ready (its initial sync done), so that each route
# is an event-to-route observation of its own.
check "host-1 is ready" wait_ready 1 10
put_block 10.244.1.0/26 host-1 5=host-1
put_block 10.244.2.0/26 host-2 5=host-2
check "host-1 routes host-2's IPv4 block" wait_route 1 10.244.2.0/26 10.99.0.2
put_block fd00:10:244:2::/122 host-2 5=host-2
check "host-1 routes host-2's IPv6 block" wait_route 1 fd00:10:244:2::/122 fd00:99::2

# http_code <namespace-runner...> <url>: the status code, or 000 when nothing answers.
http_code() {
  local url=${*: -1}
  "${@:1:$#-1}" curl -s -o /dev/null -m 3 -w '%{http_code}' "$url" || true
}
expect_code() {
  local want=$1; shift
  local got
  got=$(http_code "$@")
  [[ $got == "$want" ]] || { echo "    ${*: -1}: HTTP $got, wanted $want" >&2; return 1; }
}
check "metrics listener serves /metrics on the node's address (seen from the hub)" \
  expect_code 200 hub http://10.99.0.1:9744/metrics
check "metrics listener serves /healthz" expect_code 200 hub http://10.99.0.1:9744/healthz
check "metrics listener serves /readyz" expect_code 200 hub http://10.99.0.1:9744/readyz
check "metrics listener does not serve /status" expect_code 404 hub http://10.99.0.1:9744/status
check "metrics listener does not serve /status?format=text" \
  expect_code 404 hub 'http://10.99.0.1:9744/status?format=text'
check "the loopback endpoint is not reachable from the hub" expect_code 000 hub http://10.99.0.1:9743/status
check "/status is still served on loopback" expect_code 200 on_host 1 http://127.0.0.1:9743/status
check "a hostile request to the metrics listener is refused" bash -c "
  code=\$(head -c 100000 /dev/zero | tr '\\0' x | ip netns exec $CL-hub curl -s -o /dev/null -m 3 \
    -w '%{http_code}' --data-binary @- http://10.99.0.1:9744/metrics)
  [[ \$code -ge 400 ]]"
check "metrics listener still serving after it" expect_code 200 hub http://10.99.0.1:9744/healthz

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "SKIPPED: promtool/prometheus are not installed (Debian package prometheus): the" \
    "exposition and scrape checks did not run"
  finish_checks
  exit
fi

lint_metrics() {
  local out
  out=$(hub curl -s -m 3 http://10.99.0.1:9744/metrics) || return 1
  [[ -n $out ]] || return 1
  # promtool exits non-zero and names the metric for every lint problem it finds.
  echo "$out" | promtool check metrics
}
check "promtool check metrics accepts the agent's exposition" lint_metrics

PROM_DIR="$CLUSTER_TMP/prometheus"
mkdir -p "$PROM_DIR/data"
cat >"$PROM_DIR/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$DEPLOY/prometheus-rules.yaml]
scrape_configs:
  - job_name: vpp-calico-route-agent
    static_configs: [{targets: ["10.99.0.1:9744"], labels: {node: host-1}}]
YML
hub prometheus --config.file "$PROM_DIR/prometheus.yml" --storage.tsdb.path "$PROM_DIR/data" \
  --web.listen-address 127.0.0.1:9090 --storage.tsdb.retention.time 1h \
  >"$PROM_DIR/prometheus.log" 2>&1 &
PROM_PID=$!

# prom_value <promql>: the first sample's value of an instant query, or nothing.
prom_value() {
  hub curl -s -m 3 -G --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
# wait_prom <promql> <awk condition on $1> [timeout_s]
wait_prom() {
  local query=$1 cond=$2 deadline=$((SECONDS + ${3:-30})) v=""
  while ((SECONDS < deadline)); do
    v=$(prom_value "$query")
    [[ -n $v ]] && awk -v x="$v" "BEGIN { \$1 = x; exit !($cond) }" && return 0
    sleep 0.5
  done
  echo "    Prometheus: $query = '${v:-<no data>}', wanted $cond" >&2
  return 1
}
check "Prometheus scrapes the agent (up == 1)" \
  wait_prom 'up{job="vpp-calico-route-agent"}' '$1 == 1'
check "route count read back through Prometheus" \
  wait_prom 'vcra_routes_programmed{job="vpp-calico-route-agent",node="host-1"}' '$1 == 2'
check "event-to-route histogram read back through Prometheus (count)" \
  wait_prom 'vcra_event_to_route_seconds_count{job="vpp-calico-route-agent"}' '$1 >= 2'
check "event-to-route p99 computed by Prometheus from the buckets" \
  wait_prom 'histogram_quantile(0.99, sum by (le) (vcra_event_to_route_seconds_bucket))' \
  '$1 > 0 && $1 <= 10'
check "the alert rules are loaded and none fires on a healthy agent" bash -c "
  out=\$(ip netns exec $CL-hub curl -s -m 3 http://127.0.0.1:9090/api/v1/rules) &&
  [[ \$(grep -o '\"type\":\"alerting\"' <<<\"\$out\" | wc -l) -eq 7 ]] &&
  ! grep -q '\"state\":\"firing\"' <<<\"\$out\""
if ((CHECKS_FAILED > 0)); then echo "--- prometheus log (last 20 lines)"; tail -n 20 "$PROM_DIR/prometheus.log"; fi
stop_prometheus
finish_checks
