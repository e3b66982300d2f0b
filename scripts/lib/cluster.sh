# A cluster of hosts made of network namespaces, shared by the demo and the integration tests.
#
#   <CL>-hub   a bridge br0 (10.99.0.254/24, fd00:99::254/64) and a real etcd on it
#   <CL>-h<i>  host i: uplink eth0 (veth into the hub's bridge; the AGENT brings it up and adds
#              10.99.0.<i>/24 and fd00:99::<i>/64), a "pod" interface with 10.244.<i>.5/32 and
#              fd00:10:244:<i>::5/128
#
# With DATAPLANE=vpp and VPP_BIN set (real_vpp), each host runs a real VPP instead and its pod
# lives in a namespace of its own, <CL>-p<i>, behind VPP; the hub gets a second bridge br1 for
# the VPPs' uplinks, and the hosts' kernel eth0 on br0 only reaches etcd (scripts/lib/vpp.sh).
#
# Everything lives inside namespaces this script creates; nothing is configured in the
# machine's own namespace and no traffic leaves the machine. cluster_down removes it all (logs
# included) and is safe to call twice (tests call it from an EXIT trap).
#
# Requires: root, iproute2, iputils-ping, etcd-server, etcd-client.

CL=${CL:-vc$$}
ETCD_URL="http://10.99.0.254:2379"
CLUSTER_TMP=${CLUSTER_TMP:-$(mktemp -d /tmp/vcra-cluster.XXXXXX)}
AGENT_BIN=${AGENT_BIN:-}
DATAPLANE=${DATAPLANE:-linux}  # linux, or vpp (a real VPP with VPP_BIN, else the simulator)
SIM_BIN=${SIM_BIN:-}
VPP_BIN=${VPP_BIN:-}
declare -A AGENT_PIDS=()
declare -A SIM_PIDS=()
ETCD_PID=""

hub() { ip netns exec "$CL-hub" "$@"; }
on_host() { local i=$1; shift; ip netns exec "$CL-h$i" "$@"; }
etcdctl_hub() { hub env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" --dial-timeout=3s "$@"; }
# real_vpp: true when the hosts run real VPPs (DATAPLANE=vpp and VPP_BIN set).
real_vpp() { [[ $DATAPLANE == vpp && -n $VPP_BIN ]]; }
source "$(dirname "${BASH_SOURCE[0]}")/vpp.sh"

cluster_up() {
  local hosts=$1
  mkdir -p "$CLUSTER_TMP"
  ip netns add "$CL-hub"
  hub ip link set lo up
  hub ip link add br0 type bridge
  hub sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  hub ip addr add 10.99.0.254/24 dev br0
  hub ip addr add fd00:99::254/64 dev br0 nodad
  hub ip link set br0 up
  if real_vpp; then
    # The VPPs' data network: plain L2, no snooping (VPP sends no MLD reports for its ND groups).
    hub ip link add br1 type bridge mcast_snooping 0
    hub ip link set br1 up
  fi
  for ((i = 1; i <= hosts; i++)); do
    ip netns add "$CL-h$i"
    on_host "$i" ip link set lo up
    # No DAD: the agent adds the uplink's IPv6 address and we want it usable at once.
    on_host "$i" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$CL-h$i" link add eth0 type veth peer name "v$i" netns "$CL-hub"
    hub ip link set "v$i" master br0 up
    if real_vpp; then
      vpp_host_wiring "$i"
      continue
    fi
    # A veth pair stands in for the pod interface (some kernels have no dummy driver).
    on_host "$i" ip link add pod0 type veth peer name pod0p
    on_host "$i" ip link set pod0p up
    on_host "$i" ip addr add "10.244.$i.5/32" dev pod0
    on_host "$i" ip addr add "fd00:10:244:$i::5/128" dev pod0 nodad
    on_host "$i" ip link set pod0 up
  done
}

etcd_up() {
  mkdir -p "$CLUSTER_TMP/etcd"  # recreated: a second cluster_up after cluster_down must work
  # Background processes are started with "ip netns exec" itself, not through hub/on_host: $! of
  # a backgrounded shell function is a subshell, and killing it would leave the process running.
  ip netns exec "$CL-hub" /usr/bin/etcd --name hub --data-dir "$CLUSTER_TMP/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster hub=http://127.0.0.1:2380 >"$CLUSTER_TMP/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 100); do
    etcdctl_hub endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "etcd did not start; its log:" >&2
  cat "$CLUSTER_TMP/etcd.log" >&2
  return 1
}

# sim_start <host>: the VPP API simulator standing in for host i's VPP (socket in CLUSTER_TMP).
sim_start() {
  local i=$1
  # The agent programs the simulator, not the kernel, so the host reaches etcd over a kernel
  # eth0 configured here (the management network).
  on_host "$i" ip link set eth0 up
  on_host "$i" ip addr replace "10.99.0.$i/24" dev eth0
  rm -f "$CLUSTER_TMP/vpp-$i.sock"
  "$SIM_BIN" --socket "$CLUSTER_TMP/vpp-$i.sock" --seed "$i" >>"$CLUSTER_TMP/sim-$i.log" 2>&1 &
  SIM_PIDS[$i]=$!
  for _ in $(seq 1 50); do [[ -S $CLUSTER_TMP/vpp-$i.sock ]] && return 0; sleep 0.1; done
  echo "VPP API simulator $i did not start" >&2
  return 1
}

# agent_start <host> [extra agent flags...]
agent_start() {
  local i=$1; shift
  local dataplane_flags=(--dataplane linux --uplink eth0)
  if real_vpp; then
    dataplane_flags=(--dataplane vpp --vpp-api-socket "$CLUSTER_TMP/vpp-$i.sock" --uplink host-up0)
  elif [[ $DATAPLANE == vpp ]]; then
    dataplane_flags=(--dataplane vpp --vpp-api-socket "$CLUSTER_TMP/vpp-$i.sock" --uplink host-eth0)
  fi
  ip netns exec "$CL-h$i" "$AGENT_BIN" --nodename "host-$i" --etcd-endpoints "$ETCD_URL" \
    "${dataplane_flags[@]}" --uplink-address "10.99.0.$i/24" \
    --uplink-address "fd00:99::$i/64" --resync-interval 5 "$@" \
    >>"$CLUSTER_TMP/agent-$i.log" 2>&1 &
  AGENT_PIDS[$i]=$!
}

# agent_stop <host>: SIGTERM, as systemd would; routes must stay.
agent_stop() {
  local i=$1 pid=${AGENT_PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "AGENT_PIDS[$i]"
}

agent_status() { on_host "$1" "$AGENT_BIN" status --http-listen 127.0.0.1:9743; }

cluster_down() {
  local i
  for i in "${!AGENT_PIDS[@]}"; do agent_stop "$i"; done
  for i in "${!SIM_PIDS[@]}"; do
    kill -TERM "${SIM_PIDS[$i]}" 2>/dev/null || true
    wait "${SIM_PIDS[$i]}" 2>/dev/null || true
    unset "SIM_PIDS[$i]"
  done
  for i in "${!VPP_PIDS[@]}"; do vpp_stop "$i"; done
  if [[ -n $ETCD_PID ]]; then
    kill -TERM "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=""
  fi
  # Anything still running inside our namespaces (e.g. after a crash of this script's parent).
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$CL-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  rm -f /dev/shm/"$CL"-h*-*  # shared memory of VPPs that were killed, not stopped
  rm -rf "$CLUSTER_TMP"
}

# ---------------------------------------------------------------------------------------------
# Calico data, written the way Calico writes it.

# put_block <cidr> <host|null> [ordinal=node ...]
#   An AllocationBlock in Calico's current JSON: full allocations array, attributes with
#   handle_id and secondary.node, 64-bit sequenceNumber.
put_block() {
  local cidr=$1 host=$2; shift 2
  local net=${cidr%/*} len=${cidr#*/} bits=32 fam=ipv4
  if [[ $cidr == *:* ]]; then bits=128; fam=ipv6; fi
  local size=$((1 << (bits - len)))
  local -A attr_of=()
  local attrs="" allocs="" unalloc="" idx=0 a o affinity="null"
  for a in "$@"; do
    attr_of[${a%%=*}]=$idx
    attrs+="${attrs:+,}{\"handle_id\":\"k8s-pod-network.c0ffee$idx\",\"secondary\":{\"namespace\":\"default\",\"node\":\"${a#*=}\",\"pod\":\"pod-$idx\",\"timestamp\":\"2026-11-26 10:00:00.1 +0000 UTC\"}}"
    idx=$((idx + 1))
  done
  for ((o = 0; o < size; o++)); do
    if [[ -n ${attr_of[$o]+x} ]]; then
      allocs+="${allocs:+,}${attr_of[$o]}"
    else
      allocs+="${allocs:+,}null"
      unalloc+="${unalloc:+,}$o"
    fi
  done
  [[ $host == null ]] || affinity="\"host:$host\""
  local json="{\"cidr\":\"$cidr\",\"affinity\":$affinity,\"allocations\":[$allocs],\"unallocated\":[$unalloc],\"attributes\":[$attrs],\"sequenceNumber\":$(date +%s%N),\"sequenceNumberForAllocation\":{},\"deleted\":false}"
  etcdctl_hub put "/calico/ipam/v2/assignment/$fam/block/$net-$len" "$json" >/dev/null
}

del_block() {
  local cidr=$1 fam=ipv4
  [[ $cidr == *:* ]] && fam=ipv6
  etcdctl_hub del "/calico/ipam/v2/assignment/$fam/block/${cidr%/*}-${cidr#*/}" >/dev/null
}

put_peer() { etcdctl_hub put "/vpp-calico/hosts/$1/peerip/$2/1" "$3" >/dev/null; }
del_peer() { etcdctl_hub del "/vpp-calico/hosts/$1/peerip/$2/1" >/dev/null; }

# ---------------------------------------------------------------------------------------------
# Checks

# route_of <host> <prefix>: the agent's route for exactly that prefix, or nothing: the kernel's
# route, or with real VPPs the path of the agent's FIB source in VPP ("<prefix> via <nh> <itf>").
route_of() {
  if real_vpp; then vpp_route_of "$1" "$2"; return; fi
  local fam=-4
  [[ $2 == *:* ]] && fam=-6
  on_host "$1" ip "$fam" -o route show exact "$2" table main 2>/dev/null
}

# wait_route <host> <prefix> <gateway|none> [timeout_s]
wait_route() {
  local host=$1 prefix=$2 want=$3 timeout=${4:-15} got deadline expect="via $3 dev eth0 proto 212"
  real_vpp && expect="$prefix via $want host-up0"
  deadline=$((SECONDS + timeout))
  while true; do
    got=$(route_of "$host" "$prefix")
    if [[ $want == none ]]; then
      [[ -z $got ]] && return 0
    elif [[ $got == *"$expect"* ]]; then
      return 0
    fi
    ((SECONDS >= deadline)) && break
    sleep 0.2
  done
  echo "    host-$host: route for $prefix is '${got:-<none>}', wanted ${want}" >&2
  return 1
}

# pod_ping <from-host> <to-address>: from the source host's pod address to another pod (with
# real VPPs, from the pod's own namespace, through VPP).
pod_ping() {
  local from=$1 to=$2 src="10.244.$1.5"
  [[ $to == *:* ]] && src="fd00:10:244:$1::5"
  if real_vpp; then
    # VPP drops each packet that makes it resolve a neighbour (the kernel would queue it), and
    # a first echo can meet up to four resolutions on its way and back: one echo every 0.2 s
    # until the first reply (-c 1), for at most 2 s (-w), rather than a lone echo and a 2 s wait
    # for a reply that will never come.
    ip netns exec "$CL-p$from" ping -c 1 -i 0.2 -w 2 -I "$src" "$to" >/dev/null 2>&1
    return
  fi
  on_host "$from" ping -c 1 -W 2 -I "$src" "$to" >/dev/null 2>&1
}

# on_pod <host> <command...>: in the namespace where host i's pod addresses live.
on_pod() {
  local i=$1; shift
  if real_vpp; then ip netns exec "$CL-p$i" "$@"; else on_host "$i" "$@"; fi
}

# pod_addr_add <host> <address>: another pod address on host i (e.g. a borrowed IP).
pod_addr_add() {
  if real_vpp; then vpp_pod_addr_add "$1" "$2"; return; fi
  local len=32 nodad=()
  [[ $2 == *:* ]] && { len=128; nodad=(nodad); }
  on_host "$1" ip addr add "$2/$len" dev pod0 "${nodad[@]}"
}

pod_addr_del() {
  if real_vpp; then vpp_pod_addr_del "$1" "$2"; return; fi
  local len=32
  [[ $2 == *:* ]] && len=128
  on_host "$1" ip addr del "$2/$len" dev pod0
}

# wait_programmed <host> <prefix> <gateway|none>: the kernel's or a real VPP's route or, for the
# simulator, what the host's agent reports as programmed.
wait_programmed() {
  if [[ $DATAPLANE != vpp ]] || real_vpp; then wait_route "$@"; return; fi
  local host=$1 prefix=$2 want=$3 deadline=$((SECONDS + ${4:-15})) line
  while ((SECONDS < deadline)); do
    line=$(agent_status "$host" 2>/dev/null | awk -v p="$prefix" '$1 == p')
    if [[ $want == none ]]; then
      [[ -z $line ]] && return 0
    elif [[ $line == *"via $want "* && $line != *"NOT PROGRAMMED"* ]]; then
      return 0
    fi
    sleep 0.2
  done
  echo "    host-$host: $prefix is '${line:-<none>}', wanted $want" >&2
  return 1
}

# load_fixture <file>: "<key> <value>" per line (# comments), as tests/testdata/*.etcd hold.
load_fixture() {
  local key value
  while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    key=${line%% *}
    value=${line#* }
    etcdctl_hub put "$key" "$value" >/dev/null || return 1
  done <"$1"
}

# put_node <host> <ipv4/len> [ipv6/len]: a Calico Node resource as calico/node writes it.
put_node() {
  local n=$1 v4=$2 v6=${3:-} bgp
  bgp="\"ipv4Address\":\"$v4\""
  [[ -n $v6 ]] && bgp+=",\"ipv6Address\":\"$v6\""
  etcdctl_hub put "/calico/resources/v3/projectcalico.org/nodes/$n" \
    "{\"kind\":\"Node\",\"apiVersion\":\"projectcalico.org/v3\",\"metadata\":{\"name\":\"$n\",\"creationTimestamp\":\"2026-11-20T09:00:00Z\"},\"spec\":{\"bgp\":{$bgp},\"addresses\":[{\"address\":\"$v4\",\"type\":\"CalicoNodeIP\"},{\"address\":\"${v4%/*}\",\"type\":\"InternalIP\"}],\"orchRefs\":[{\"nodeName\":\"$n\",\"orchestrator\":\"k8s\"}]},\"status\":{}}" >/dev/null
}

# set_datastore_ready <true|false>
set_datastore_ready() {
  etcdctl_hub put /calico/resources/v3/projectcalico.org/clusterinformations/default \
    "{\"kind\":\"ClusterInformation\",\"apiVersion\":\"projectcalico.org/v3\",\"metadata\":{\"name\":\"default\"},\"spec\":{\"calicoVersion\":\"v3.32.1\",\"clusterType\":\"typha,bgp,kubeadm\",\"datastoreReady\":$1}}" >/dev/null
}

# wait_ready <host> [timeout_s]: until the host's agent answers /readyz with ready (etcd listed
# and every route it wants programmed). A ping needs the routes both ways: an agent whose first
# connection to etcd is slow (a second, once) has not put the way back in yet.
wait_ready() {
  local deadline=$((SECONDS + ${2:-15}))
  while ((SECONDS < deadline)); do
    [[ $(on_host "$1" curl -s -m 2 http://127.0.0.1:9743/readyz) == ready* ]] && return 0
    sleep 0.1
  done
  echo "    host-$1: the agent did not become ready" >&2
  return 1
}

# wait_ping <from-host> <to-address> [timeout_s]: pod_ping until it answers.
wait_ping() {
  local deadline=$((SECONDS + ${3:-15}))
  while ((SECONDS < deadline)); do
    pod_ping "$1" "$2" && return 0
    sleep 0.2  # a ping that fails at once (no route yet) must not spin
  done
  return 1
}
