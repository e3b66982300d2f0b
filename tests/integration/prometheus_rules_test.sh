#!/usr/bin/env bash
# deploy/prometheus-rules.yaml: valid for Prometheus (`promtool check rules`), and every alert
# fires on series shaped like the agent's metrics and stays quiet on a healthy agent
# (`promtool test rules deploy/prometheus-rules.test.yaml`).
set -uo pipefail
deploy="$(dirname "$0")/../../deploy"
if ! command -v promtool >/dev/null; then
  echo "SKIPPED: promtool is not installed (Debian package prometheus)"; exit 77
fi
promtool check rules "$deploy/prometheus-rules.yaml" || exit 1
promtool test rules "$deploy/prometheus-rules.test.yaml" || exit 1
echo "ok - alert rules checked and unit-tested by promtool"
