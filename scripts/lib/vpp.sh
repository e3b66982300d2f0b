# A real VPP (VPP_BIN) per host of the namespace cluster, shared by the demo and the tests.
# Sourced by cluster.sh; needs its CL, CLUSTER_TMP and on_host.
#
# Per host i, inside <CL>-h<i> (never in the machine's own namespace):
#   host-up0   af_packet on veth up0, whose peer is on the hub's data bridge br1: the agent's
#              uplink (the agent brings it up and adds 10.99.0.<i>/24, fd00:99::<i>/64)
#   host-pod0  af_packet on veth pod0, whose peer is eth0 of the pod namespace <CL>-p<i>; VPP is
#              the pod's gateway, as Calico's dataplane is: 169.254.1.1 and fe80::1 on host-pod0,
#              one attached /32 (/128) route per pod address
# The host's kernel keeps eth0 on the hub's management bridge br0 for etcd; it has no address on
# up0 or pod0 (ARP and IPv6 off there), so only VPP answers on the data network.
#
# The VPP runs with a private runtime directory under CLUSTER_TMP (API socket, CLI socket,
# startup files, log), a shared-memory prefix of its own (removed on stop), and settings for a
# small shared machine: one main thread and no workers, interrupt-mode af_packet rx, small
# buffer pool, heap and packet rings. See docs/design.md, "Real VPP in the demo and the tests".
#
# VPP_BIN        path of the vpp binary (required)
# VPP_PLUGIN_PATH  its plugin directory; default: <prefix>/lib/x86_64-linux-gnu/vpp_plugins (or
#                <prefix>/lib/vpp_plugins) next to <prefix>/bin/vpp
# VPPCTL         path of vppctl; default: vppctl next to VPP_BIN

declare -A VPP_PIDS=()
# An idle VPP 26.06 with af_packet interfaces never waits in epoll (its main loop checks for
# events again at once), so the sleep before each check is what bounds its CPU use: 1 ms keeps
# an idle VPP near 1% of a core (100 us: ~7%), at the price of up to 1 ms per packet burst and
# per 4 KiB read from an API socket, nothing a demo or a functional test notices.
VPP_POLL_SLEEP_USEC=${VPP_POLL_SLEEP_USEC:-1000}

vpp_plugin_dir() {
  if [[ -n ${VPP_PLUGIN_PATH:-} ]]; then echo "$VPP_PLUGIN_PATH"; return; fi
  local prefix d
  prefix=$(dirname "$(dirname "$(readlink -f "$VPP_BIN")")")
  for d in "$prefix/lib/x86_64-linux-gnu/vpp_plugins" "$prefix/lib/vpp_plugins" \
    "$prefix/lib64/vpp_plugins"; do
    [[ -d $d ]] && { echo "$d"; return; }
  done
  echo "$prefix/lib/x86_64-linux-gnu/vpp_plugins"
}

vppctl_bin() {
  if [[ -n ${VPPCTL:-} ]]; then echo "$VPPCTL"; return; fi
  local b
  b=$(dirname "$(readlink -f "$VPP_BIN")")/vppctl
  if [[ -x $b ]]; then echo "$b"; else echo vppctl; fi
}

# require_vpp: exit 77 with a SKIPPED line when no usable real VPP is configured.
require_vpp() {
  if [[ -z ${VPP_BIN:-} ]]; then
    echo "SKIPPED: the real-VPP cluster test needs VPP_BIN=/path/to/vpp"; exit 77
  fi
  if [[ ! -x $VPP_BIN ]]; then echo "SKIPPED: VPP_BIN=$VPP_BIN is not executable"; exit 77; fi
  local plugins
  plugins=$(vpp_plugin_dir)
  if [[ ! -e $plugins/af_packet_plugin.so || ! -e $plugins/ping_plugin.so ]]; then
    echo "SKIPPED: no af_packet_plugin.so and ping_plugin.so in $plugins (set VPP_PLUGIN_PATH)"
    exit 77
  fi
  if ! command -v "$(vppctl_bin)" >/dev/null; then
    echo "SKIPPED: vppctl not found next to $VPP_BIN (set VPPCTL)"; exit 77
  fi
}

vpp_dir() { echo "$CLUSTER_TMP/vpp-$1"; }
vpp_api_socket() { echo "$CLUSTER_TMP/vpp-$1.sock"; }
vpp_shm_prefix() { echo "$CL-h$1"; }

# vppctl_host <host> [cli command...] (bounded: a VPP that hangs must not hang the caller);
# without a command, vppctl runs the commands it reads on stdin, one a line.
# VPP's CLI ends its lines with CR LF; the CRs are dropped so that patterns anchored at the end
# of a line match.
vppctl_host() {
  local i=$1; shift
  local rc
  timeout 10 "$(vppctl_bin)" -s "$(vpp_dir "$i")/cli.sock" "$@" | tr -d '\r'
  rc=${PIPESTATUS[0]}
  return "$rc"
}

# vpp_host_wiring <host>: the data veths of host i (called by cluster_up in real-VPP mode).
vpp_host_wiring() {
  local i=$1
  # The management network: the agent reaches etcd through the kernel, not through VPP.
  on_host "$i" ip link set eth0 up
  on_host "$i" ip addr add "10.99.0.$i/24" dev eth0
  ip -n "$CL-h$i" link add up0 type veth peer name "d$i" netns "$CL-hub"
  hub ip link set "d$i" master br1 up
  ip netns add "$CL-p$i"
  ip -n "$CL-p$i" link set lo up
  ip netns exec "$CL-p$i" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
    net.ipv6.conf.default.accept_dad=0
  ip -n "$CL-h$i" link add pod0 type veth peer name eth0 netns "$CL-p$i"
  local dev
  for dev in up0 pod0; do
    # VPP owns these links: the host kernel must neither answer ARP nor speak IPv6 on them.
    on_host "$i" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    on_host "$i" ip link set "$dev" arp off up
  done
  ip -n "$CL-p$i" link set eth0 up
  # The pod's addresses are /32 (/128) with a default route to VPP on the link, like a Calico pod.
  ip -n "$CL-p$i" route add 169.254.1.1 dev eth0 scope link
  ip -n "$CL-p$i" route add default via 169.254.1.1 dev eth0
  ip -n "$CL-p$i" -6 route add default via fe80::1 dev eth0
  : >"$(vpp_dir "$i").pods.cli"
  vpp_pod_addr_add "$i" "10.244.$i.5"
  vpp_pod_addr_add "$i" "fd00:10:244:$i::5"
}

# vpp_pod_addr_add <host> <address>: a pod address on host i: on the pod's eth0, plus VPP's
# attached host route to it (kept in a file so that a restarted VPP gets it back).
vpp_pod_addr_add() {
  local i=$1 addr=$2 len=32
  [[ $addr == *:* ]] && len=128
  ip -n "$CL-p$i" addr add "$addr/$len" dev eth0 nodad 2>/dev/null ||
    ip -n "$CL-p$i" addr add "$addr/$len" dev eth0
  echo "ip route add $addr/$len via host-pod0" >>"$(vpp_dir "$i").pods.cli"
  if [[ -n ${VPP_PIDS[$i]:-} ]]; then vppctl_host "$i" ip route add "$addr/$len" via host-pod0; fi
}

vpp_pod_addr_del() {
  local i=$1 addr=$2 len=32
  [[ $addr == *:* ]] && len=128
  ip -n "$CL-p$i" addr del "$addr/$len" dev eth0
  sed -i "\\|^ip route add $addr/$len via host-pod0\$|d" "$(vpp_dir "$i").pods.cli"
  if [[ -n ${VPP_PIDS[$i]:-} ]]; then
    vppctl_host "$i" ip route del "$addr/$len" via host-pod0
  fi
}

# vpp_start <host>...: start the VPPs of these hosts together, then wait until each one's CLI
# shows its pod interface up (its startup CLI has run; an unknown interface would only be echoed
# in an error message). VPP runs its startup CLI about 2 s after it starts: started together,
# three VPPs are ready in the time of one.
vpp_start() {
  local i
  for i in "$@"; do vpp_launch "$i"; done
  for i in "$@"; do vpp_wait_ready "$i" || return 1; done
}

# vpp_launch <host>: write host i's startup files and start its VPP (no wait).
vpp_launch() {
  local i=$1 dir
  dir=$(vpp_dir "$i")
  mkdir -p "$dir"
  # Fixed MACs: a restarted VPP keeps its neighbours' ARP entries valid.
  local ring="rx-size 2048 rx-per-block 16 tx-size 2048 tx-per-block 256 cksum-gso-disable"
  {
    printf 'create host-interface name up0 hw-addr 02:fe:00:00:%02x:01 %s\n' "$i" "$ring"
    printf 'create host-interface name pod0 hw-addr 02:fe:00:00:%02x:02 %s\n' "$i" "$ring"
    echo "set interface ip address host-pod0 169.254.1.1/32"
    echo "set interface ip address host-pod0 fe80::1/128"
    cat "$dir.pods.cli"
    # Last: "host-pod0 up" is what vpp_wait_ready waits for (the whole startup CLI has run).
    echo "set interface state host-pod0 up"
  } >"$dir/setup.cli"
  cat >"$dir/startup.conf" <<CONF
unix {
  nodaemon nosyslog nocolor cli-no-banner cli-no-pager
  poll-sleep-usec $VPP_POLL_SLEEP_USEC
  runtime-dir $dir
  log $dir/vpp.log
  cli-listen $dir/cli.sock
  startup-config $dir/setup.cli
  coredump-size 0
}
socksvr { socket-name $(vpp_api_socket "$i") }
api-segment { prefix $(vpp_shm_prefix "$i") }
cpu { workers 0 }
memory { main-heap-size 256M main-heap-page-size 4k }
buffers { buffers-per-numa 4096 page-size 4k }
statseg { socket-name $dir/stats.sock size 8M page-size 4k }
plugins {
  path $(vpp_plugin_dir)
  plugin default { disable }
  plugin af_packet_plugin.so { enable }
  plugin ping_plugin.so { enable }
}
CONF
  rm -f "$(vpp_api_socket "$i")" "$dir/cli.sock"
  # "ip netns exec" execs VPP, so $! is VPP itself (not a subshell of on_host).
  ip netns exec "$CL-h$i" "$VPP_BIN" -c "$dir/startup.conf" >>"$dir/stdout.log" 2>&1 &
  VPP_PIDS[$i]=$!
}

# vpp_wait_ready <host>: wait (bounded) until host i's VPP has run its startup CLI.
vpp_wait_ready() {
  local i=$1 dir _
  dir=$(vpp_dir "$i")
  for _ in $(seq 1 150); do
    if ! kill -0 "${VPP_PIDS[$i]}" 2>/dev/null; then break; fi
    if [[ -S $(vpp_api_socket "$i") ]] &&
      vppctl_host "$i" show interface host-pod0 2>/dev/null | grep -Eq '^host-pod0 +[0-9]+ +up'; then
      # VPP pins its main thread to the core it started on; on a small shared machine the
      # scheduler should place it, like the agents and etcd.
      if command -v taskset >/dev/null; then
        taskset -a -p "$(taskset -p $$ | awk '{print $NF}')" "${VPP_PIDS[$i]}" >/dev/null 2>&1
      fi
      return 0
    fi
    sleep 0.1
  done
  echo "VPP $i did not come up; its output:" >&2
  tail -n 20 "$dir/stdout.log" "$dir/vpp.log" >&2 2>/dev/null
  return 1
}

# vpp_cpu_report <seconds> <host>...: what each host's VPP used of one core over that window,
# printed (not judged: the machine is shared, so it is information, not a check).
vpp_cpu_report() {
  local secs=$1 tck i; shift
  tck=$(getconf CLK_TCK)
  local -A before=()
  for i in "$@"; do
    before[$i]=$(awk '{ print $14 + $15 }' "/proc/${VPP_PIDS[$i]}/stat" 2>/dev/null || echo 0)
  done
  sleep "$secs"
  local line="" after
  for i in "$@"; do
    after=$(awk '{ print $14 + $15 }' "/proc/${VPP_PIDS[$i]}/stat" 2>/dev/null || echo 0)
    line+="${line:+, }host-$i $(((after - before[$i]) * 100 / (tck * secs)))%"
  done
  echo "$line"
}

# vpp_stop <host> [signal]: stop host i's VPP (SIGTERM, SIGKILL after 5 s) and remove what it
# leaves behind (a killed VPP does not unlink its shared memory).
vpp_stop() {
  local i=$1 sig=${2:-TERM} pid=${VPP_PIDS[$1]:-}
  if [[ -n $pid ]]; then
    # In braces with stderr dropped: bash's notice of a killed background job ("Killed") is
    # printed wherever it reaps the job, inside the loop or the wait.
    {
      kill "-$sig" "$pid" || true
      for _ in $(seq 1 50); do kill -0 "$pid" || break; sleep 0.1; done
      kill -KILL "$pid" || true
      wait "$pid" || true
    } 2>/dev/null
    unset "VPP_PIDS[$i]"
  fi
  rm -f /dev/shm/"$(vpp_shm_prefix "$i")"-* "$(vpp_api_socket "$i")"
}

# vpp_agent_routes <host>: the routes of the agent's FIB source in host i's VPP, one line each
# ("<prefix> via <next hop> <interface>"), IPv4 then IPv6. VPP's own words, filtered: the rest
# of its FIB (connected, local, multicast, special entries) is not the agent's. "show ip fib"
# names no sources; "show ip fib <prefix>" does, so every prefix is asked about on its own, all
# of them in one vppctl per family (it runs the commands it reads on stdin): one vppctl per
# prefix took seconds on a loaded machine. Each prefix is one the FIB listed, so each answer is
# that very entry.
vpp_agent_routes() {
  local i=$1 fam
  for fam in ip ip6; do
    vppctl_host "$i" show "$fam" fib 2>/dev/null |
      awk -v fam="$fam" '/^[0-9a-f.:]+\/[0-9]+$/ { print "show " fam " fib " $1 }' |
      vppctl_host "$i" 2>/dev/null | vpp_fib_filter_source vpp-calico-route-agent
  done
}

# vpp_fib_filter_source <source>: reads "show ip[6] fib detail" and prints "<prefix> via <next
# hop> <interface>" for each entry that <source> contributes to (one line per path).
vpp_fib_filter_source() {
  awk -v src="$1" '
    /^[0-9a-f.:]+\/[0-9]+ fib:/ { prefix = $1; in_src = 0; next }
    /^  [^ ]/ { in_src = ($1 == src); next }
    in_src && /^        [0-9a-f.:]+ [^ ]+$/ { print prefix " via " $1 " " $2 }
  '
}

# vpp_fib_exact <prefix>: "show ip fib <prefix>" shows the longest match; keep it only when it is
# the entry for exactly <prefix>.
vpp_fib_exact() {
  awk -v p="$1" '/^[0-9a-f.:]+\/[0-9]+ fib:/ { exact = ($1 == p) } exact { print }'
}

# vpp_route_of <host> <prefix>: the agent-source route for exactly <prefix> in host i's VPP.
vpp_route_of() {
  local fam=ip
  [[ $2 == *:* ]] && fam=ip6
  vppctl_host "$1" show "$fam" fib "$2" 2>/dev/null | vpp_fib_exact "$2" | vpp_fib_filter_source vpp-calico-route-agent
}

# vpp_cli_route_of <host> <prefix>: the CLI-source paths for exactly <prefix>.
vpp_cli_route_of() {
  local fam=ip
  [[ $2 == *:* ]] && fam=ip6
  vppctl_host "$1" show "$fam" fib "$2" 2>/dev/null | vpp_fib_exact "$2" | vpp_fib_filter_source CLI
}
