#!/usr/bin/env bash
# Three hosts as network namespaces, a real etcd, one real VPP (VPP_BIN) and one agent per host
# on the VPP dataplane. Every host's pod lives in a namespace of its own behind its VPP, so a ping
# between pods crosses two VPPs and the routes the agents programmed; the routes are read back
# from VPP's FIB (the agent's FIB source), not from the agent.
# Usage: VPP_BIN=/path/to/vpp cluster_vpp_test.sh <path-to-agent-binary>
set -uo pipefail

AGENT_BIN=$(readlink -f "$1")
source "$(dirname "$0")/../../scripts/lib/checks.sh"
require_cluster_tools
source "$(dirname "$0")/../../scripts/lib/vpp.sh"
require_vpp  # before cluster.sh, which makes the cluster's temporary directory
VPP_BIN=$(readlink -f "$VPP_BIN")
DATAPLANE=vpp
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
trap cluster_down EXIT
started=$SECONDS

cluster_up 3 || { echo "cannot build the namespace cluster"; exit 1; }
etcd_up || exit 1
vpp_start 1 2 3 || exit 1

# --- agents 1 and 2 start on an EMPTY etcd
agent_start 1; agent_start 2
peers_published() {
  for _ in $(seq 1 100); do
    (($(etcdctl_hub get --prefix /vpp-calico/hosts/ --keys-only | grep -c peerip) >= 4)) && return 0
    sleep 0.1
  done
  return 1
}
uplink_configured() {
  local out
  out=$(vppctl_host 2 show interface address host-up0)
  [[ $out == *"host-up0 (up)"* && $out == *10.99.0.2/24* && $out == *fd00:99::2/64* ]]
}
check "host-1 and host-2 publish their peer addresses" peers_published
check "the agent brings VPP's uplink up with its addresses" uplink_configured

# A route of the CLI's FIB source on host 1, for a prefix the agent will also program, and one
# for a prefix of its own: the agent must never remove or change either.
vppctl_host 1 ip route add 10.244.200.0/24 via 10.99.0.3 host-up0
vppctl_host 1 ip route add 10.244.3.0/26 via 10.99.0.3 host-up0
foreign_intact() {
  [[ $(vpp_cli_route_of 1 10.244.200.0/24) == *"via 10.99.0.3 host-up0"* ]] &&
    [[ $(vpp_cli_route_of 1 10.244.3.0/26) == *"via 10.99.0.3 host-up0"* ]]
}

# no_ping <from-host> <to-address>: one ping that must go unanswered (after its route is gone).
no_ping() { ! pod_ping "$@"; }

# --- blocks created after the agents started
put_block 10.244.1.0/26 host-1 0=host-1 5=host-1
put_block 10.244.2.0/26 host-2 5=host-2
put_block fd00:10:244:1::/122 host-1 5=host-1
put_block fd00:10:244:2::/122 host-2 5=host-2
check "host-1's VPP routes host-2's IPv4 block via host-2" wait_route 1 10.244.2.0/26 10.99.0.2
check "host-2's VPP routes host-1's IPv4 block via host-1" wait_route 2 10.244.1.0/26 10.99.0.1
check "host-1's VPP routes host-2's IPv6 block via host-2" wait_route 1 fd00:10:244:2::/122 fd00:99::2
check "no route for a host's own block" wait_route 1 10.244.1.0/26 none 1
check "pod on host-1 pings pod on host-2 through both VPPs (IPv4)" wait_ping 1 10.244.2.5
check "pod on host-1 pings pod on host-2 through both VPPs (IPv6)" wait_ping 1 fd00:10:244:2::5

# --- a late peer: host-3's blocks exist before host-3 registers its address
put_block 10.244.3.0/26 host-3 5=host-3
put_block fd00:10:244:3::/122 host-3 5=host-3
sleep 1
check "a block of a host without a peer address waits" wait_route 1 10.244.3.0/26 none 1
agent_start 3
check "host-3 registers late: host-1 gets its route then" wait_route 1 10.244.3.0/26 10.99.0.3
check "host-2 gets host-3's IPv6 route" wait_route 2 fd00:10:244:3::/122 fd00:99::3
check "host-3 has routes to both others" wait_route 3 10.244.1.0/26 10.99.0.1
check "pod on host-3 pings pod on host-1" wait_ping 3 10.244.1.5
check "pod on host-2 pings pod on host-3 (IPv6)" wait_ping 2 fd00:10:244:3::5

# --- a new block on host-2 reaches host-1 and host-3 (a pod in it answers through VPP);
# deleting the block removes the routes, and VPP then drops what was sent there
pod_addr_add 2 10.244.22.5
put_block 10.244.22.0/26 host-2 5=host-2
check "new block on host-2: route in host-1's VPP" wait_route 1 10.244.22.0/26 10.99.0.2
check "new block on host-2: route in host-3's VPP" wait_route 3 10.244.22.0/26 10.99.0.2
check "new block on host-2: pod on host-3 pings a pod in it" wait_ping 3 10.244.22.5
del_block 10.244.22.0/26
check "deleted block: route gone from host-1's VPP" wait_route 1 10.244.22.0/26 none
check "deleted block: route gone from host-3's VPP" wait_route 3 10.244.22.0/26 none
check "deleted block: host-1's VPP no longer forwards to it" no_ping 1 10.244.22.5
pod_addr_del 2 10.244.22.5

# --- moving a block to another host moves the route (and its pod moves with it)
pod_addr_add 2 10.244.23.5
put_block 10.244.23.0/26 host-2 5=host-2
check "block on host-2 routed by host-1" wait_route 1 10.244.23.0/26 10.99.0.2
check "pod on host-1 pings the pod of that block on host-2" wait_ping 1 10.244.23.5
pod_addr_del 2 10.244.23.5
pod_addr_add 3 10.244.23.5
put_block 10.244.23.0/26 host-3 5=host-3
check "block moved to host-3: host-1 follows" wait_route 1 10.244.23.0/26 10.99.0.3
check "block moved to host-3: host-3 drops its route" wait_route 3 10.244.23.0/26 none
check "block moved to host-3: host-2 routes it to host-3" wait_route 2 10.244.23.0/26 10.99.0.3
check "block moved to host-3: pod on host-1 pings it there" wait_ping 1 10.244.23.5
check "block moved to host-3: so does the pod on host-2, its old host" wait_ping 2 10.244.23.5

# --- an IPv6 block moved and deleted
pod_addr_add 2 fd00:10:244:22::5
put_block fd00:10:244:22::/122 host-2 5=host-2
check "IPv6 block on host-2: route in host-1's VPP" wait_route 1 fd00:10:244:22::/122 fd00:99::2
check "IPv6 block on host-2: pod on host-1 pings a pod in it" wait_ping 1 fd00:10:244:22::5
pod_addr_del 2 fd00:10:244:22::5
pod_addr_add 3 fd00:10:244:22::5
put_block fd00:10:244:22::/122 host-3 5=host-3
check "IPv6 block moved to host-3: host-1 follows" wait_route 1 fd00:10:244:22::/122 fd00:99::3
check "IPv6 block moved to host-3: pod on host-1 pings it there" wait_ping 1 fd00:10:244:22::5
del_block fd00:10:244:22::/122
check "IPv6 block deleted: route gone from host-1's VPP" wait_route 1 fd00:10:244:22::/122 none
check "IPv6 block deleted: host-1's VPP no longer forwards to it" no_ping 1 fd00:10:244:22::5
pod_addr_del 3 fd00:10:244:22::5

# --- a borrowed IP: 10.244.1.9 from host-1's block, used by a pod on host-2
pod_addr_add 2 10.244.1.9
pod_addr_add 2 fd00:10:244:1::9
put_block 10.244.1.0/26 host-1 0=host-1 5=host-1 9=host-2
put_block fd00:10:244:1::/122 host-1 5=host-1 9=host-2
check "borrowed IP: /32 via the borrower on host-3" wait_route 3 10.244.1.9/32 10.99.0.2
check "borrowed IP: /32 via the borrower on the block's owner" wait_route 1 10.244.1.9/32 10.99.0.2
check "borrowed IP: /128 via the borrower on host-3" wait_route 3 fd00:10:244:1::9/128 fd00:99::2
check "borrowed IP: no /32 on the borrower itself" wait_route 2 10.244.1.9/32 none 1
check "pod on host-3 pings the borrowed IP on host-2" wait_ping 3 10.244.1.9
check "block owner host-1 pings its borrowed IP on host-2" wait_ping 1 10.244.1.9
check "pod on host-3 pings the borrowed IPv6 on host-2" wait_ping 3 fd00:10:244:1::9

# --- a peer address change moves all its routes (host-2's VPP gets a second uplink address)
vppctl_host 2 set interface ip address host-up0 10.99.0.22/24
put_peer host-2 ipv4 10.99.0.22
check "peer address change: block route moves" wait_route 1 10.244.2.0/26 10.99.0.22
check "peer address change: borrowed /32 moves" wait_route 3 10.244.1.9/32 10.99.0.22
check "peer address change: pings reach host-2 at its new address" wait_ping 1 10.244.2.5
check "peer address change: and its borrowed IP" wait_ping 3 10.244.1.9
put_peer host-2 ipv4 10.99.0.2
check "peer address back" wait_route 1 10.244.2.0/26 10.99.0.2
check "peer address back: pings flow" wait_ping 1 10.244.2.5
vppctl_host 2 set interface ip address del host-up0 10.99.0.22/24

# --- the borrowed IP released: its /32 goes, the block's route carries its addresses again
put_block 10.244.1.0/26 host-1 0=host-1 5=host-1
check "released IP: /32 gone from host-3's VPP" wait_route 3 10.244.1.9/32 none
check "released IP: /32 gone from the block owner's VPP" wait_route 1 10.244.1.9/32 none
check "released IP: the block's pod still answers" wait_ping 3 10.244.1.5
pod_addr_del 2 10.244.1.9

# --- VPP restart: an empty FIB, new message ids, a new FIB source table; the agent reconnects,
# re-ensures its uplink and replays every route. VPP is killed (a crash: no goodbye on the API
# socket, its shared memory left behind, which vpp_stop removes).
vpp_stop 2 KILL
check "VPP killed: nothing of it left in /dev/shm" \
  bash -c "! ls /dev/shm/$(vpp_shm_prefix 2)-* >/dev/null 2>&1"
vpp_start 2
check "VPP restart: host-2's uplink configured again" wait_for 15 uplink_configured
check "VPP restart: host-2's block routes are back" wait_route 2 10.244.3.0/26 10.99.0.3 30
check "VPP restart: host-2's IPv6 routes are back" wait_route 2 fd00:10:244:3::/122 fd00:99::3
check "VPP restart: pings from host-2's pod flow again" wait_ping 2 10.244.3.5 20
check "VPP restart: host-1 reaches host-2's pod again" wait_ping 1 10.244.2.5 20

# --- agent restart: routes stay in VPP while it is down; changes made meanwhile apply at start,
# and routes whose blocks disappeared meanwhile are removed.
put_block 10.244.24.0/26 host-2
check "block 24 routed on host-1" wait_route 1 10.244.24.0/26 10.99.0.2
agent_stop 1
check "routes stay in VPP while the agent is stopped" wait_route 1 10.244.2.0/26 10.99.0.2 1
check "pings flow while the agent is stopped" pod_ping 1 10.244.2.5
del_block 10.244.24.0/26
put_block 10.244.25.0/26 host-3
pod_addr_del 3 10.244.23.5
pod_addr_add 2 10.244.23.5
put_block 10.244.23.0/26 host-2 5=host-2
agent_start 1
check "after restart: block created while down is routed" wait_route 1 10.244.25.0/26 10.99.0.3
check "after restart: block moved while down follows" wait_route 1 10.244.23.0/26 10.99.0.2
check "after restart: block deleted while down is removed" wait_route 1 10.244.24.0/26 none
check "after restart: pings flow" wait_ping 1 10.244.3.5
check "after restart: the moved block's pod answers on host-2" wait_ping 1 10.244.23.5

# --- drift: a route of ours deleted behind the agent's back (through the API's view, with the
# CLI: the CLI can only remove its own source's path, so the agent's route survives that too)
vppctl_host 1 ip route del 10.244.25.0/26 via 10.99.0.3 host-up0 >/dev/null 2>&1
check "a CLI delete does not remove the agent's route" wait_route 1 10.244.25.0/26 10.99.0.3 1

# --- a malformed block value never removes the good route
etcdctl_hub put /calico/ipam/v2/assignment/ipv4/block/10.244.2.0-26 '{"cidr": "10.244.2.0/26", "affinity": ' >/dev/null
sleep 1
check "malformed update keeps the last good route" wait_route 1 10.244.2.0/26 10.99.0.2 1
check "malformed update: pings still flow" pod_ping 1 10.244.2.5
put_block 10.244.2.0/26 host-2 5=host-2

check "status subcommand reports the programmed routes" bash -c "
  out=\$(ip netns exec $CL-h1 '$AGENT_BIN' status --http-listen 127.0.0.1:9743) &&
  echo \"\$out\" | grep -q 'in-sync' && echo \"\$out\" | grep -q '10.244.2.0/26'"
check "CLI-source routes were never touched" foreign_intact
# The CLI's route still forwards: a pod address behind host-3 only it leads to.
pod_addr_add 3 10.244.200.5
check "the CLI-source route still forwards (host-1's pod pings 10.244.200.5 on host-3)" \
  wait_ping 1 10.244.200.5

# --- host-1's uplink deleted and re-created under the running agent (an operator or a CNI
# re-creating host-up0). VPP gives the new one the same sw_if_index, admin-down and without
# addresses, and keeps every route through the old one as a permanent drop (its path shows
# "if_index:1", not "host-up0"), even once the interface is back up; re-adding such a route
# with the same path does not revive it. The agent's probe notices, sets the uplink up again
# and re-points each of its routes. The CLI's routes on host 1 share a next hop (10.99.0.3)
# with some of the agent's: they stay as they are (dead, not the agent's to repair), and their
# dead path list must not capture the agent's routes.
uplink_up_with_addresses() {
  local out
  out=$(vppctl_host "$1" show interface address host-up0)
  [[ $out == *"host-up0 (up)"* && $out == *"$2/24"* && $out == *"$3/64"* ]]
}
cli_routes_left_alone() {
  [[ $(vpp_cli_route_of 1 10.244.200.0/24) == *"via 10.99.0.3 "* ]] &&
    [[ $(vpp_cli_route_of 1 10.244.3.0/26) == *"via 10.99.0.3 "* ]]
}
vppctl_host 1 delete host-interface name up0
vppctl_host 1 create host-interface name up0 hw-addr 02:fe:00:00:01:01 \
  rx-size 2048 rx-per-block 16 tx-size 2048 tx-per-block 256 cksum-gso-disable
check "re-created uplink: the agent sets it up again" \
  wait_for 15 uplink_up_with_addresses 1 10.99.0.1 fd00:99::1
check "re-created uplink: host-1's routes through it are live again" \
  wait_route 1 10.244.2.0/26 10.99.0.2 20
check "re-created uplink: so are the IPv6 ones" wait_route 1 fd00:10:244:2::/122 fd00:99::2
check "re-created uplink: and those sharing the CLI routes' next hop" \
  wait_route 1 10.244.25.0/26 10.99.0.3
check "re-created uplink: pod on host-1 pings host-2's pod" wait_ping 1 10.244.2.5 20
check "re-created uplink: and over IPv6" wait_ping 1 fd00:10:244:2::5 20
check "re-created uplink: and host-3's pod (the CLI's next hop)" wait_ping 1 10.244.3.5 20
check "re-created uplink: host-2's pod pings host-1's pod" wait_ping 2 10.244.1.5 20
check "re-created uplink: the agent said why" \
  grep -q "is not as the agent left it" "$CLUSTER_TMP/agent-1.log"
check "re-created uplink: the CLI's routes are left as VPP left them" cli_routes_left_alone

echo "# real-VPP cluster scenarios took $((SECONDS - started)) s"
echo "# the VPPs at rest, share of one core over 2 s: $(vpp_cpu_report 2 1 2 3)"
finish_checks
