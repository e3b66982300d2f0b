#!/usr/bin/env bash
# The Debian package, installed into a scratch root (dpkg-deb -x: nothing on this machine
# changes): the binary and the defaults file are where the systemd unit says, the defaults file's
# variables reach the agent, the unit passes `systemd-analyze verify` (where systemd is present),
# and the man page made from --help is there.
# Usage: package_test.sh <build-dir>
set -uo pipefail
BUILD=$(readlink -f "$1")
source "$(dirname "$0")/../../scripts/lib/checks.sh"
for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 77; }
done
WORK=$(mktemp -d /tmp/vcra-package.XXXXXX)
CLUSTER_TMP=$WORK  # finish_checks looks for agent logs there (there are none)
trap 'rm -rf "$WORK"' EXIT

if ! (cd "$BUILD" && cpack -G DEB -B "$WORK/out" >"$WORK/cpack.log" 2>&1); then
  echo "not ok - cpack -G DEB"; tail -n 30 "$WORK/cpack.log"; exit 1
fi
DEB=$(ls "$WORK"/out/*.deb 2>/dev/null | head -n 1)
check "cpack built a .deb" test -f "$DEB"
ROOT=$WORK/root
mkdir -p "$ROOT" "$WORK/control"
dpkg-deb -x "$DEB" "$ROOT" && dpkg-deb -e "$DEB" "$WORK/control"

# Debian 12 merges /lib into /usr/lib; systemd reads units from both.
UNIT=""
for dir in usr/lib/systemd/system lib/systemd/system; do
  [[ -f $ROOT/$dir/vpp-calico-route-agent.service ]] && UNIT=$ROOT/$dir/vpp-calico-route-agent.service
done
if [[ -z $UNIT ]]; then
  echo "not ok - the unit is installed where systemd looks (package contents below)"
  dpkg-deb -c "$DEB"
  exit 1
fi
echo "ok - the unit is installed where systemd looks (${UNIT#"$ROOT"})"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT" | awk '{print $1}')
env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$UNIT")
packaged_file() { [[ -n $1 && -f $ROOT$1 ]]; }
check "the unit's ExecStart (${exec_start:-none}) is the packaged binary" \
  bash -c "[[ -n '$exec_start' && -f '$ROOT$exec_start' && -x '$ROOT$exec_start' ]]"
check "the unit's EnvironmentFile (${env_file:-none}) is packaged" packaged_file "$env_file"
[[ -n $exec_start && -n $env_file ]] || { finish_checks; exit 1; }
check "the defaults file is a conffile (kept on upgrade)" grep -qx "$env_file" "$WORK/control/conffiles"
# gRPC, protobuf and Abseil are linked statically in the release build (docs/design.md); OpenSSL,
# cpp-httplib and spdlog are shared in every build.
check "the package depends on the shared libraries the binary links" \
  bash -c "dpkg-deb -f '$DEB' Depends | tr ',' '\n' | grep -q libssl3 &&
           dpkg-deb -f '$DEB' Depends | tr ',' '\n' | grep -q libcpp-httplib &&
           dpkg-deb -f '$DEB' Depends | tr ',' '\n' | grep -q libspdlog"

help_text=$("$ROOT$exec_start" --help)
defaults_named_in_help() {
  local var missing=0 seen=0
  for var in $(sed -n 's/^#\{0,1\}\([A-Z_][A-Z0-9_]*\)=.*/\1/p' "$ROOT$env_file"); do
    seen=$((seen + 1))
    grep -q "Env:$var" <<<"$help_text" || { echo "    $var is not read by the agent" >&2; missing=1; }
  done
  ((seen >= 5)) || { echo "    only $seen variables in the defaults file" >&2; return 1; }
  return $missing
}
check "every variable of the defaults file is one the agent reads" defaults_named_in_help

# The defaults file with its examples switched on, as systemd would load it into the
# environment; one deliberately bad value shows that the file's values reach the parser, after
# all the others were accepted.
defaults_file_is_read() {
  local file=$WORK/defaults out
  sed 's/^#\([A-Z_][A-Z0-9_]*=\)/\1/' "$ROOT$env_file" >"$file"
  echo "VCRA_HTTP_LISTEN=not-an-address-from-the-defaults-file" >>"$file"
  out=$(env -i bash -c "set -a; . '$file'; exec '$ROOT$exec_start' run" 2>&1)
  [[ $? -eq 2 && $out == *"not-an-address-from-the-defaults-file"* ]] ||
    { echo "    agent said: $out" >&2; return 1; }
}
check "the agent reads the packaged defaults file" defaults_file_is_read

MAN=$ROOT/usr/share/man/man1/vpp-calico-route-agent.1.gz
if command -v help2man >/dev/null; then
  check "the man page is packaged" test -f "$MAN"
  check "the man page is --help (flags and the usage block)" bash -c "
    zcat '$MAN' | grep -q '^\\.TH' && zcat '$MAN' | grep -q 'metrics\\\\-listen' &&
    zcat '$MAN' | grep -q 'prototype'"
else
  echo "SKIPPED: help2man is not installed: no man page to check"
fi

if command -v systemd-analyze >/dev/null; then
  # The unit as installed, with its two paths pointing into the scratch root: verify then
  # checks every directive and that ExecStart is executable. It prints problems as warnings
  # (exit status 0), so any line naming the unit fails the check.
  verify() {
    local unit=$WORK/vpp-calico-route-agent.service
    sed -e "s|^ExecStart=$exec_start|ExecStart=$ROOT$exec_start|" \
      -e "s|^EnvironmentFile=\(-\{0,1\}\)$env_file|EnvironmentFile=\1$ROOT$env_file|" "$UNIT" >"$unit"
    systemd-analyze verify "$unit" >"$WORK/verify.log" 2>&1 &&
      ! grep -q "vpp-calico-route-agent" "$WORK/verify.log" || { cat "$WORK/verify.log" >&2; return 1; }
  }
  check "systemd-analyze verify accepts the unit" verify
else
  echo "SKIPPED: systemd-analyze is not installed (package systemd): the unit was not verified"
fi
finish_checks
