#!/usr/bin/env bash
# The performance benchmark (docs/performance.md): installs the dependencies, builds
# RelWithDebInfo in build/perf, runs vcra-bench (defaults: 1000 hosts, 10000 blocks, 2000 updates,
# 5 runs, both dataplanes; extra arguments are passed on, e.g. `--block-shape realistic --stream
# open --update-rate 1000`, `--duration 1800`, `--growth-from 10000`, `--agents 100`) and writes
# its Markdown report to stdout, ready for docs/performance.md. Progress goes to stderr.
# The optional lower-bound tools (vcra-netlink-writer, vcra-vpp-program) are built when the
# source tree has them; vcra-bench uses what it finds beside itself.
#
# The Linux dataplane part needs root: vcra-bench then makes a private network namespace for
# itself and configures nothing in this machine's own. Without root it is SKIPPED (exit 77) and
# only the VPP simulator part runs.
set -euo pipefail
source "$(dirname "$0")/lib/as_root.sh"  # before cd: it may re-run "$0" through sudo
cd "$(dirname "$0")/.."

scripts/install-deps.sh >&2

echo "=== build: RelWithDebInfo in build/perf" >&2
cmake -S . -B build/perf -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build build/perf -j"$(nproc)" --target vcra-bench vpp-calico-route-agent >&2
for tool in vcra-netlink-writer vcra-vpp-program; do
  if cmake --build build/perf --target help | grep -q "^\.\.\. $tool\$"; then
    cmake --build build/perf -j"$(nproc)" --target "$tool" >&2
  fi
done

echo "=== vcra-bench $*" >&2
exec build/perf/bench/vcra-bench "$@"
