#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, build twice (optimised, and ASan+UBSan),
# clang-format check, then every ctest test in both builds.
set -euo pipefail
source "$(dirname "$0")/lib/as_root.sh"  # before cd: it may re-run "$0" through sudo
cd "$(dirname "$0")/.."
JOBS=$(nproc)

scripts/install-deps.sh

echo "=== clang-format check"
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find src tests bench fuzz -name '*.cc' -o -name '*.h')
clang-format --dry-run --Werror $files

echo "=== build: release"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$JOBS"

echo "=== build: asan+ubsan"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DVCRA_SANITIZE=ON -DVCRA_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j"$JOBS"

status=0
echo "=== tests: release"
ctest --test-dir build/release --output-on-failure -j"$JOBS" || status=1
echo "=== tests: asan+ubsan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$JOBS" || status=1
exit $status
