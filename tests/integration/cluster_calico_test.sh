#!/usr/bin/env bash
# The agent dropped into a real Calico cluster's data: a fixture shaped exactly like Calico v3.32
# writes etcd (Nodes, IP pools, blocks, affinities, handles, ClusterInformation). Next hops come
# from Calico Node resources only (no peer keys are written); three hosts as network namespaces,
# real kernel routes and pings.
# Usage: cluster_calico_test.sh <path-to-agent-binary>
set -uo pipefail

AGENT_BIN=$(readlink -f "$1")
FIXTURE=$(dirname "$(readlink -f "$0")")/../testdata/calico-v3.32-cluster.etcd
source "$(dirname "$0")/../../scripts/lib/checks.sh"
require_cluster_tools
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
trap cluster_down EXIT

no_peer_keys() { [[ -z $(etcdctl_hub get --prefix /vpp-calico/ --keys-only) ]]; }
# ping_steady <from> <to>: 40 pings 50 ms apart, none lost (a route change must have no gap).
ping_steady() {
  local src="10.244.$1.5"
  on_host "$1" ping -q -c 40 -i 0.05 -W 1 -I "$src" "$2" 2>&1 | grep -q " 0% packet loss"
}

cluster_up 3 || { echo "cannot build the namespace cluster"; exit 1; }
etcd_up || exit 1
load_fixture "$FIXTURE" || { echo "cannot load $FIXTURE"; exit 1; }
# Pods of the fixture: x.5 on host x; 10.244.1.9 on host-2 and 10.244.2.9 on host-3 (borrowed).
on_host 2 ip addr add 10.244.1.9/32 dev pod0
on_host 3 ip addr add 10.244.2.9/32 dev pod0
for i in 1 2 3; do agent_start "$i" --peer-source nodes --no-publish-peer-address; done
for i in 1 2 3; do check "host-$i's agent is ready" wait_ready "$i"; done

check "host-1 routes host-2's block via host-2's Node address" wait_route 1 10.244.2.0/26 10.99.0.2
check "host-1 routes host-3's IPv6 block via its Node ipv6Address" wait_route 1 fd00:10:244:3::/122 fd00:99::3
check "borrowed IP in host-1's block: /32 via host-2 on host-3" wait_route 3 10.244.1.9/32 10.99.0.2
check "borrowed IP in host-2's block: /32 via host-3 on host-1" wait_route 1 10.244.2.9/32 10.99.0.3
check "pod on host-1 pings pod on host-3" pod_ping 1 10.244.3.5
check "pod on host-3 pings the borrowed IP on host-2" pod_ping 3 10.244.1.9
check "no peer keys were written (Nodes only)" no_peer_keys
check "block in a disabled pool is not routed" wait_route 1 10.250.2.0/26 none 2
put_block 10.96.100.64/26 host-2
check "block in a LoadBalancer-only pool is not routed" wait_route 1 10.96.100.64/26 none 2
check "virtual (load-balancer) block is not routed" wait_route 1 10.96.100.0/26 none 1

# --- a Node's address changes: its routes move without a gap
on_host 2 ip addr add 10.99.0.22/24 dev eth0
on_host 1 ping -q -c 60 -i 0.05 -W 1 -I 10.244.1.5 10.244.2.5 >"$CLUSTER_TMP/ping-move.txt" 2>&1 &
ping_pid=$!
sleep 0.5
put_node host-2 10.99.0.22/24 fd00:99::2/64
check "Node address change: block route moves" wait_route 1 10.244.2.0/26 10.99.0.22
check "Node address change: borrowed /32 moves" wait_route 3 10.244.1.9/32 10.99.0.22
wait "$ping_pid"
check "no ping lost while the next hop moved" grep -q " 0% packet loss" "$CLUSTER_TMP/ping-move.txt"
put_node host-2 10.99.0.2/24 fd00:99::2/64
check "Node address back" wait_route 1 10.244.2.0/26 10.99.0.2

# --- datastoreReady false pauses programming (nothing removed); true resumes
set_datastore_ready false
sleep 1
put_block 10.244.30.0/26 host-2
del_block 10.244.3.0/26
sleep 1
check "datastoreReady=false: a new block is not programmed" wait_route 1 10.244.30.0/26 none 1
check "datastoreReady=false: nothing is removed" wait_route 1 10.244.3.0/26 10.99.0.3 1
set_datastore_ready true
check "datastoreReady=true: the new block is programmed" wait_route 1 10.244.30.0/26 10.99.0.2
check "datastoreReady=true: the deleted block is removed" wait_route 1 10.244.3.0/26 none
put_block 10.244.3.0/26 host-3 5=host-3
check "host-3's block back" wait_route 1 10.244.3.0/26 10.99.0.3

# --- affinity release while IPs are in use (Calico's releaseBlockAffinity): the block route
# gives way to /32s for every IP still allocated, without a gap, then the empty block goes.
check "before release: host-2's block routed on host-1" wait_route 1 10.244.2.0/26 10.99.0.2
on_host 1 ping -q -c 60 -i 0.05 -W 1 -I 10.244.1.5 10.244.2.5 >"$CLUSTER_TMP/ping-release.txt" 2>&1 &
ping_pid=$!
sleep 0.5
put_block 10.244.2.0/26 null 5=host-2 9=host-3
etcdctl_hub del /calico/ipam/v2/host/host-2/ipv4/block/10.244.2.0-26 >/dev/null
check "released block: no block route" wait_route 1 10.244.2.0/26 none
check "released block: /32 via host-2 for its IP still in use" wait_route 1 10.244.2.5/32 10.99.0.2
check "released block: borrowed /32 via host-3 stays" wait_route 1 10.244.2.9/32 10.99.0.3
check "released block: host-3 routes host-2's IP as /32" wait_route 3 10.244.2.5/32 10.99.0.2
wait "$ping_pid"
check "no ping lost during the affinity release" grep -q " 0% packet loss" "$CLUSTER_TMP/ping-release.txt"
put_block 10.244.2.0/26 null 9=host-3
check "IP released: its /32 goes" wait_route 1 10.244.2.5/32 none
del_block 10.244.2.0/26
check "empty block deleted: the last /32 goes" wait_route 1 10.244.2.9/32 none

# --- one IP changes owner (KubeVirt live migration): 10.244.1.9 moves from host-2 to host-3
on_host 3 ip addr add 10.244.1.9/32 dev pod0
put_block 10.244.1.0/26 host-1 5=host-1 9=host-3
on_host 2 ip addr del 10.244.1.9/32 dev pod0
check "migrated IP: /32 follows to host-3 on host-1" wait_route 1 10.244.1.9/32 10.99.0.3
check "migrated IP: host-2 routes it to host-3" wait_route 2 10.244.1.9/32 10.99.0.3
check "migrated IP: host-3 has no route for its own IP" wait_route 3 10.244.1.9/32 none
check "migrated IP answers on host-3 (from the block owner)" pod_ping 1 10.244.1.9

# --- a Node is deleted: routes via it are withdrawn
etcdctl_hub del /calico/resources/v3/projectcalico.org/nodes/host-3 >/dev/null
check "Node deleted: its block route is withdrawn" wait_route 1 10.244.3.0/26 none
check "Node deleted: /32s via it are withdrawn" wait_route 1 10.244.1.9/32 none
check "other routes stay" wait_route 1 10.244.30.0/26 10.99.0.2 1

finish_checks
