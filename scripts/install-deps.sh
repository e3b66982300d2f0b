#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian 12's own packages only.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libsimdjson-dev libspdlog-dev libfmt-dev libcli11-dev libcpp-httplib-dev libmnl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev libssl-dev zlib1g-dev libbrotli-dev
  etcd-server etcd-client iproute2 iputils-ping procps
  prometheus curl help2man
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts an etcd service on 127.0.0.1:2379 when etcd-server is installed; tests and the
# demo run their own, so stop it where systemd exists.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
