// The dataplanes the agent is measured against: the Linux kernel (in the benchmark's private
// network namespace) and the in-tree VPP simulator. Each can say which routes the agent owns,
// when a route became visible, and how fast the same routes go in without the agent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "common/status.h"
#include "net/ip.h"

namespace vcra::bench {

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string Name() const = 0;
  // A fresh, empty dataplane for one run.
  virtual Status Prepare(int run) = 0;
  virtual std::vector<std::string> AgentArgs() const = 0;
  // The routes the agent owns in the dataplane now.
  virtual StatusOr<RouteMap> OwnedRoutes() = 0;
  // Called once the agent is ready, before the update stream.
  virtual Status StartWatching() = 0;
  // Waits until `route` is in the dataplane; returns when it was first seen.
  virtual StatusOr<Steady::time_point> WaitVisible(const net::Route& route,
                                                   Steady::time_point since,
                                                   Steady::time_point deadline) = 0;
  // Open-loop stream: waits a little for news from the dataplane (at most ~20 ms).
  virtual Status Pump() = 0;
  // Open-loop stream: when `route` became visible, if it is and not before `since`.
  virtual std::optional<Steady::time_point> PollVisible(const net::Route& route,
                                                        Steady::time_point since) = 0;
  // The lower bounds for programming `routes`, after the agent stopped: (name, seconds) each,
  // every one verified against the dataplane.
  using Bounds = std::vector<std::pair<std::string, double>>;
  virtual StatusOr<Bounds> LowerBounds(const std::vector<net::Route>& routes) = 0;
  // What the lower bounds are, for the report.
  virtual std::string LowerBoundName() const = 0;
  virtual void Finish() = 0;
};

// `ip` is iproute2's binary; `dir` holds the batch files. `netlink_writer` (optional, empty:
// not run) is the bare batched-netlink writer, run with `writer_args` ({routes}: the route
// file, {dev}: the uplink, {count}: the number of routes).
std::unique_ptr<Target> MakeLinuxTarget(const std::string& ip, const std::string& dir,
                                        const std::string& netlink_writer,
                                        const std::string& writer_args);
// `dir` holds the simulator's sockets.
std::unique_ptr<Target> MakeVppTarget(const std::string& dir);

// A real VPP (VPP_BIN) started for each run in the benchmark's namespace, with a loopback
// interface as the uplink; lower bounds: VPP's in-process CLI `exec` of the same routes and the
// raw pipelined socket. Unavailable (with the reason) when this build has no real-VPP launcher
// (tests/support/vpp_process) or VPP cannot be started here.
StatusOr<std::unique_ptr<Target>> MakeRealVppTarget(const std::string& dir);

// The raw VppClient bound: a FIB source of its own, then the routes as ip_route_add_del_v2
// requests pipelined with the agent's window on `connections` sockets (routes dealt round-robin,
// a thread each); only the sending and the replies are timed; every reply checked.
StatusOr<double> RawVppClientBound(const std::string& socket, uint32_t uplink_index,
                                   const std::vector<net::Route>& routes, size_t connections = 1);

}  // namespace vcra::bench
