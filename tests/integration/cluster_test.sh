#!/usr/bin/env bash
# Three hosts as network namespaces on a bridge, a real etcd, one agent per host on the Linux
# dataplane, real kernel routes and real pings between pods on different hosts.
# Usage: cluster_test.sh <path-to-agent-binary>
set -uo pipefail

AGENT_BIN=$(readlink -f "$1")
source "$(dirname "$0")/../../scripts/lib/checks.sh"
require_cluster_tools
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
trap cluster_down EXIT

cluster_up 3 || { echo "cannot build the namespace cluster"; exit 1; }
etcd_up || exit 1

# Foreign routes on host 1 that the agent must never touch: another protocol, and a default.
on_host 1 ip link set eth0 up
on_host 1 ip addr add 10.99.0.1/24 dev eth0
on_host 1 ip route add 10.244.200.0/24 via 10.99.0.3 dev eth0 proto static
on_host 1 ip route add default via 10.99.0.254 dev eth0
foreign_intact() {
  [[ -n $(on_host 1 ip -o route show exact 10.244.200.0/24 proto static) ]] &&
    [[ -n $(on_host 1 ip -o route show exact default) ]]
}

# --- the agents start on an EMPTY etcd: nothing exists yet, not even the directories.
agent_start 1; agent_start 2
peers_published() {
  for _ in $(seq 1 100); do
    (($(etcdctl_hub get --prefix /vpp-calico/hosts/ --keys-only | grep -c peerip) >= 4)) && return 0
    sleep 0.1
  done
  return 1
}
check "host-1 and host-2 publish their peer addresses" peers_published
check "uplink brought up with its addresses by the agent" bash -c "
  ip netns exec $CL-h2 ip -o addr show dev eth0 | grep -q '10.99.0.2/24' &&
  ip netns exec $CL-h2 ip -o addr show dev eth0 | grep -q 'fd00:99::2/64'"

# --- blocks created after the agents started
put_block 10.244.1.0/26 host-1 0=host-1 5=host-1
put_block 10.244.2.0/26 host-2 5=host-2
put_block fd00:10:244:1::/122 host-1 5=host-1
put_block fd00:10:244:2::/122 host-2 5=host-2
check "host-1 routes host-2's IPv4 block via host-2" wait_route 1 10.244.2.0/26 10.99.0.2
check "host-2 routes host-1's IPv4 block via host-1" wait_route 2 10.244.1.0/26 10.99.0.1
check "host-1 routes host-2's IPv6 block via host-2" wait_route 1 fd00:10:244:2::/122 fd00:99::2
check "no route for a host's own block" wait_route 1 10.244.1.0/26 none
check "pod on host-1 pings pod on host-2 (IPv4)" pod_ping 1 10.244.2.5
check "pod on host-1 pings pod on host-2 (IPv6)" pod_ping 1 fd00:10:244:2::5

# --- a late peer: host-3's blocks exist before host-3 registers its address
put_block 10.244.3.0/26 host-3 5=host-3
put_block fd00:10:244:3::/122 host-3 5=host-3
sleep 1
check "a block of a host without a peer address waits" wait_route 1 10.244.3.0/26 none 1
agent_start 3
check "host-3 registers late: host-1 gets its route then" wait_route 1 10.244.3.0/26 10.99.0.3
check "host-2 gets host-3's IPv6 route" wait_route 2 fd00:10:244:3::/122 fd00:99::3
check "host-3 has routes to both others" wait_route 3 10.244.1.0/26 10.99.0.1
check "pod on host-3 pings pod on host-1" pod_ping 3 10.244.1.5
check "pod on host-2 pings pod on host-3 (IPv6)" pod_ping 2 fd00:10:244:3::5

# --- a new block on host-2 reaches host-1 and host-3; deleting it removes the routes
put_block 10.244.22.0/26 host-2
check "new block on host-2: route on host-1" wait_route 1 10.244.22.0/26 10.99.0.2
check "new block on host-2: route on host-3" wait_route 3 10.244.22.0/26 10.99.0.2
del_block 10.244.22.0/26
check "deleted block: route gone on host-1" wait_route 1 10.244.22.0/26 none
check "deleted block: route gone on host-3" wait_route 3 10.244.22.0/26 none

# --- moving a block to another host moves the route
put_block 10.244.23.0/26 host-2
check "block on host-2 routed by host-1" wait_route 1 10.244.23.0/26 10.99.0.2
put_block 10.244.23.0/26 host-3
check "block moved to host-3: host-1 follows" wait_route 1 10.244.23.0/26 10.99.0.3
check "block moved to host-3: host-3 drops its route" wait_route 3 10.244.23.0/26 none
check "block moved to host-3: host-2 routes it to host-3" wait_route 2 10.244.23.0/26 10.99.0.3

# --- a borrowed IP: 10.244.1.9 from host-1's block, used by a pod on host-2
on_host 2 ip addr add 10.244.1.9/32 dev pod0
on_host 2 ip addr add fd00:10:244:1::9/128 dev pod0 nodad
put_block 10.244.1.0/26 host-1 0=host-1 5=host-1 9=host-2
put_block fd00:10:244:1::/122 host-1 5=host-1 9=host-2
check "borrowed IP: /32 via the borrower on host-3" wait_route 3 10.244.1.9/32 10.99.0.2
check "borrowed IP: /32 via the borrower on the block's owner" wait_route 1 10.244.1.9/32 10.99.0.2
check "borrowed IP: /128 via the borrower on host-3" wait_route 3 fd00:10:244:1::9/128 fd00:99::2
check "borrowed IP: no /32 on the borrower itself" wait_route 2 10.244.1.9/32 none
check "pod on host-3 pings the borrowed IP on host-2" pod_ping 3 10.244.1.9
check "block owner host-1 pings its borrowed IP on host-2" pod_ping 1 10.244.1.9
check "pod on host-3 pings the borrowed IPv6 on host-2" pod_ping 3 fd00:10:244:1::9

# --- a peer address change moves all its routes (host-2 gets a second uplink address)
on_host 2 ip addr add 10.99.0.22/24 dev eth0
put_peer host-2 ipv4 10.99.0.22
check "peer address change: block route moves" wait_route 1 10.244.2.0/26 10.99.0.22
check "peer address change: borrowed /32 moves" wait_route 3 10.244.1.9/32 10.99.0.22
check "pings still flow after the move" pod_ping 1 10.244.2.5
put_peer host-2 ipv4 10.99.0.2
check "peer address back" wait_route 1 10.244.2.0/26 10.99.0.2

# --- agent restart: routes stay while it is down; changes made meanwhile apply at start, and
# routes whose blocks disappeared meanwhile are removed.
put_block 10.244.24.0/26 host-2
check "block 24 routed on host-1" wait_route 1 10.244.24.0/26 10.99.0.2
agent_stop 1
check "routes stay in place while the agent is stopped" wait_route 1 10.244.2.0/26 10.99.0.2 1
del_block 10.244.24.0/26
put_block 10.244.25.0/26 host-3
put_block 10.244.23.0/26 host-2
agent_start 1
check "after restart: block created while down is routed" wait_route 1 10.244.25.0/26 10.99.0.3
check "after restart: block moved while down follows" wait_route 1 10.244.23.0/26 10.99.0.2
check "after restart: block deleted while down is removed" wait_route 1 10.244.24.0/26 none
check "after restart: pings flow" pod_ping 1 10.244.3.5

# --- drift: a route of ours deleted by hand comes back at the next resync (5 s here)
on_host 1 ip route del 10.244.3.0/26
check "route deleted by hand is repaired by the periodic resync" wait_route 1 10.244.3.0/26 10.99.0.3 20

# --- the uplink is deleted and re-created (new ifindex, down, no address): the resync finds
# the routes gone, the agent re-ensures the uplink and puts everything back
ip -n "$CL-h1" link del eth0
ip -n "$CL-h1" link add eth0 type veth peer name v1 netns "$CL-hub"
hub ip link set v1 master br0 up
check "re-created uplink: the agent brings it back with its address" wait_route 1 10.244.3.0/26 10.99.0.3 30
# (neighbours still know the old MAC for a few seconds)
check "re-created uplink: pings flow again" wait_ping 1 10.244.3.5
# The foreign routes died with the old eth0; put them back for the final check.
on_host 1 ip route replace 10.244.200.0/24 via 10.99.0.3 dev eth0 proto static
on_host 1 ip route replace default via 10.99.0.254 dev eth0

# --- a malformed block value never removes the good route
etcdctl_hub put /calico/ipam/v2/assignment/ipv4/block/10.244.2.0-26 '{"cidr": "10.244.2.0/26", "affinity": ' >/dev/null
sleep 1
check "malformed update keeps the last good route" wait_route 1 10.244.2.0/26 10.99.0.2 1
put_block 10.244.2.0/26 host-2 5=host-2

check "status subcommand reports the programmed routes" bash -c "
  out=\$(ip netns exec $CL-h1 '$AGENT_BIN' status --http-listen 127.0.0.1:9743) &&
  echo \"\$out\" | grep -q 'in-sync' && echo \"\$out\" | grep -q '10.244.2.0/26'"
check "foreign routes (proto static, default) were never touched" foreign_intact

finish_checks
