#!/usr/bin/env bash
# The agent's main job on an embedded default: three hosts (network namespaces on a bridge), a
# real etcd, one agent per host; Calico IPAM data written the way Calico writes it (IPv4 and
# IPv6 blocks and a borrowed IP); each host's routes and pings between pods on different hosts;
# then a block is deleted and another moved, and the routes follow. Cleans up on exit.
#   scripts/demo.sh                   kernel dataplane
#   scripts/demo.sh --dataplane vpp   VPP dataplane, one VPP API simulator per host (the simulator
#                                     programs a FIB but forwards nothing, so no pings)
#   VPP_BIN=/path/to/vpp scripts/demo.sh --dataplane vpp
#                                     one real VPP per host: its uplink an af_packet interface on
#                                     a data bridge, the host's pod in a namespace behind VPP;
#                                     the agents' routes as VPP shows them, and pings through VPP
#                                     (scripts/lib/vpp.sh; VPP_PLUGIN_PATH, VPPCTL if not next
#                                     to the binary)
set -euo pipefail
source "$(dirname "$0")/lib/as_root.sh"  # before cd: it may re-run "$0" through sudo
cd "$(dirname "$0")/.."
DATAPLANE=linux
if [[ ${1:-} == --dataplane ]]; then DATAPLANE=${2:-}; fi
if [[ $DATAPLANE != linux && $DATAPLANE != vpp ]]; then
  echo "usage: $0 [--dataplane linux|vpp]" >&2; exit 2
fi

scripts/install-deps.sh
BUILD=${VCRA_BUILD_DIR:-build/release}
echo "=== building in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target vpp-calico-route-agent vpp-api-sim >/dev/null
AGENT_BIN=$(pwd)/$BUILD/src/agent/vpp-calico-route-agent
SIM_BIN=$(pwd)/$BUILD/src/dataplane/vpp/sim/vpp-api-sim
CL=vcdemo
if [[ $DATAPLANE == vpp && -n ${VPP_BIN:-} ]]; then
  source scripts/lib/vpp.sh
  require_vpp  # exits with the reason when this VPP cannot run the demo
  VPP_BIN=$(readlink -f "$VPP_BIN")
fi
source scripts/lib/cluster.sh
set +e  # from here on, a failed step is reported, not fatal; the trap cleans up
trap cluster_down EXIT

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
show_routes() {
  if real_vpp; then
    for i in 1 2 3; do
      echo "--- host-$i (VPP's FIB entries of the agent's source, vpp-calico-route-agent):"
      vpp_agent_routes "$i" | sed 's/^/    /'
    done
    return
  fi
  if [[ $DATAPLANE == vpp ]]; then
    for i in 1 2 3; do
      echo "--- host-$i (what its agent programmed into VPP's FIB):"
      agent_status "$i" | grep -E 'via|pending' | sed 's/^ */    /'
    done
    return
  fi
  for i in 1 2 3; do
    echo "--- host-$i (routes with protocol 212, the agent's):"
    on_host "$i" ip -4 route show proto 212 | sed 's/^/    /'
    on_host "$i" ip -6 route show proto 212 | sed 's/^/    /'
  done
}
ping_check() {
  [[ $DATAPLANE == vpp ]] && ! real_vpp && return 0  # the simulator forwards no packets
  # A few tries: VPP drops the packet that makes it resolve a neighbour (the kernel queues it).
  if wait_ping "$1" "$2" 6; then echo "    host-$1 -> $2: reply"; else echo "    host-$1 -> $2: NO REPLY"; fi
}
# ping_gone <from> <to>: a ping that must go unanswered now that its route is gone.
ping_gone() {
  [[ $DATAPLANE == vpp ]] && ! real_vpp && return 0
  if pod_ping "$1" "$2"; then
    echo "    host-$1 -> $2: REPLY, but its block is deleted"
  else
    echo "    host-$1 -> $2: no reply (its block is deleted: no route)"
  fi
}

step "3 hosts as network namespaces on a bridge, and a real etcd"
cluster_down  # leftovers of an interrupted demo
cluster_up 3 && etcd_up || exit 1
if real_vpp; then
  step "one real VPP per host ($VPP_BIN), each host's pod in a namespace behind it"
  vpp_start 1 2 3 || exit 1
  echo "    main thread only, af_packet rx in interrupt mode, small heap, buffers and rings"
  echo "    (startup.conf: $CLUSTER_TMP/vpp-1/startup.conf)"
elif [[ $DATAPLANE == vpp ]]; then
  step "one VPP API simulator per host"
  for i in 1 2 3; do sim_start "$i" || exit 1; done
fi
step "one agent per host ($DATAPLANE dataplane) on an empty etcd"
# Next hops from the agents' own peer keys and from Calico's Node resources (the key wins).
for i in 1 2 3; do agent_start "$i" --peer-source both; done
sleep 1
etcdctl_hub get --prefix /vpp-calico/hosts/ | paste - - | sed 's/^/    /'

step "a Calico v3.32 cluster's etcd data (tests/testdata/calico-v3.32-cluster.etcd): Nodes,"
echo "    IP pools (one disabled, one LoadBalancer-only), blocks per host (IPv4 /26, IPv6 /122),"
echo "    affinities, handles; 10.244.1.9 (host-1's block) is borrowed by a pod on host-2,"
echo "    10.244.2.9 (host-2's block) by a pod on host-3"
pod_addr_add 2 10.244.1.9
pod_addr_add 3 10.244.2.9
load_fixture tests/testdata/calico-v3.32-cluster.etcd
wait_programmed 3 10.244.1.9/32 10.99.0.2 && wait_programmed 1 fd00:10:244:3::/122 fd00:99::3
show_routes

pings_note=""
if real_vpp; then
  pings_note=" (from each pod's namespace, through VPP)"
elif [[ $DATAPLANE == vpp ]]; then
  pings_note=" (skipped: the simulator forwards nothing)"
fi
step "pings between pods on different hosts$pings_note"
ping_check 1 10.244.2.5
ping_check 2 10.244.3.5
ping_check 3 10.244.1.5
ping_check 1 fd00:10:244:3::5
ping_check 2 fd00:10:244:1::5
ping_check 3 fd00:10:244:2::5
ping_check 3 10.244.1.9
ping_check 1 10.244.2.9
echo "    (10.244.1.9 is in host-1's block but lives on host-2: every other host, host-1"
echo "     included, routes it as a /32 via host-2; 10.250.2.0/26 (disabled pool) and the"
echo "     load-balancer block 10.96.100.0/26 get no route)"

step "delete host-3's IPv4 block, and move host-2's IPv6 block to host-3"
del_block 10.244.3.0/26
put_block fd00:10:244:2::/122 host-3
wait_programmed 1 10.244.3.0/26 none && wait_programmed 1 fd00:10:244:2::/122 fd00:99::3
show_routes
ping_gone 1 10.244.3.5

if real_vpp; then
  step "the VPPs at rest: share of one core each over 2 s (poll-sleep-usec $VPP_POLL_SLEEP_USEC)"
  echo "    $(vpp_cpu_report 2 1 2 3)"
fi

step "what the agent on host-1 says it programmed, and why"
agent_status 1

step "done: stopping agents and etcd, deleting the namespaces"
