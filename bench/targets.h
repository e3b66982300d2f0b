// The dataplanes the agent is measured against: the Linux kernel (in the benchmark's private
// network namespace) and the in-tree VPP simulator. Each can say which routes the agent owns,
// when a route became visible, and how fast the same routes go in without the agent.
#pragma once

#include <memory>
#include <string>
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
  // The lower bound for programming `routes` (seconds), after the agent stopped.
  virtual StatusOr<double> LowerBound(const std::vector<net::Route>& routes) = 0;
  virtual std::string LowerBoundName() const = 0;
  virtual void Finish() = 0;
};

// `ip` is iproute2's binary; `dir` holds the batch files.
std::unique_ptr<Target> MakeLinuxTarget(const std::string& ip, const std::string& dir);
// `dir` holds the simulator's sockets.
std::unique_ptr<Target> MakeVppTarget(const std::string& dir);

}  // namespace vcra::bench
