# Shared by the namespace cluster tests: preconditions that skip loudly, and TAP-like checks that
# end with a "N passed, N failed" line.

# require_cluster_tools: exit 77 (ctest's SKIP_RETURN_CODE) with a SKIPPED line when the cluster
# cannot be built here.
require_cluster_tools() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: the namespace cluster test needs root (ip netns)"; exit 77
  fi
  local tool
  for tool in ip ping /usr/bin/etcd etcdctl; do
    if ! command -v "$tool" >/dev/null; then echo "SKIPPED: $tool is not installed"; exit 77; fi
  done
}

# wait_for <timeout_s> command...: true as soon as the command succeeds, polled every 0.2 s.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

CHECKS_PASSED=0
CHECKS_FAILED=0
# check "description" command...
check() {
  local what=$1; shift
  if "$@"; then
    echo "ok - $what"; CHECKS_PASSED=$((CHECKS_PASSED + 1))
  else
    echo "not ok - $what"; CHECKS_FAILED=$((CHECKS_FAILED + 1))
  fi
}

# finish_checks: the agents' logs when something failed, the closing line, the exit status.
finish_checks() {
  echo
  if ((CHECKS_FAILED > 0)); then
    local f
    for f in "$CLUSTER_TMP"/agent-*.log "$CLUSTER_TMP"/vpp-*/vpp.log; do
      [[ -e $f ]] || continue
      echo "--- $f (last 30 lines)"; tail -n 30 "$f"
    done
  fi
  echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"
  ((CHECKS_FAILED == 0))
}
