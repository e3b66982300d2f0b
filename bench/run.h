// One measured run of the agent against one dataplane: start, verify, update stream, stop,
// lower bound. Settings are the command line's.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bench/agent_process.h"
#include "bench/cluster.h"
#include "bench/targets.h"
#include "tests/support/etcd_server.h"

#ifndef VCRA_AGENT_BINARY
#define VCRA_AGENT_BINARY "vpp-calico-route-agent"
#endif

namespace vcra::bench {

struct Settings {
  int hosts = 1000;
  int blocks = 10000;
  int updates = 2000;
  int runs = 5;
  double update_rate = 100;
  int writers = 8;
  int timeout_s = 3600;
  int start_timeout_s = 600;
  std::string dataplane = "both";
  std::string ready_signal = "log";
  std::string agent_binary = VCRA_AGENT_BINARY;
  BlockShape shape = BlockShape::kCompact;
  // closed: the next Put only once the previous route is visible; open: Puts on a fixed
  // schedule by several writers, whatever the agent does.
  std::string stream = "closed";
  // > 0: a churn run of this many seconds (block moves only, closed loop, at --update-rate)
  // instead of --updates, with the agent's RSS sampled along the way.
  int duration_s = 0;
  // > 0: first measure starts with only this many blocks, for the growth ratio.
  int growth_from = 0;
  // The bare batched-netlink writer of the kernel lower bound; empty: not run.
  std::string netlink_writer;
  // Its arguments; {routes} is the route file ("<prefix> via <gateway> dev <ifname>" lines),
  // {dev} the uplink, {count} the number of routes.
  std::string netlink_writer_args = "{routes}";
  std::string etcdctl;         // the reference read; empty: not measured
  int agents = 0;              // > 0: the fleet mode (fleet.h)
  double agents_spread_s = 0;  // fleet mode: the agents' starts spread evenly over this long
  // Fleet mode: each fleet agent's --etcd-start-jitter-ms (the lone agent lists at once).
  int agents_start_jitter_ms = 0;
};

struct RunResult {
  double routes = 0;
  double start_s = 0;  // fork -> programmed
  // Phases of the start, from the agent's own (JSON, microsecond) log timestamps:
  double fetch_s = NAN;           // fork -> the complete etcd listing reaches the agent's loop
  double compute_s = NAN;         // -> decoded, routes calculated ("first etcd listing complete")
  double program_s = NAN;         // -> the last op acknowledged ("initial programming complete")
  double routes_per_s = 0;        // routes / start_s
  double reference_read_s = NAN;  // etcdctl get --prefix of the same keys, to /dev/null
  double lower_bound_s = 0;       // same routes, the fastest of the lower bounds
  double lower_bound_rps = 0;     // routes / lower_bound_s
  double ratio = 0;               // start_s / lower_bound_s
  double program_ratio = NAN;     // program_s / lower_bound_s
  double full_sync_ratio = NAN;   // start_s / (reference_read_s + lower_bound_s)
  // Every lower bound measured (name -> seconds); lower_bound_s is the fastest.
  std::vector<std::pair<std::string, double>> bounds;
  double stream_rate = NAN;  // updates per second actually written
  double metrics_ms = NAN;   // one GET /metrics after the updates
  double p50_ms = NAN, p99_ms = NAN, max_ms = NAN;
  double hist_p50_ms = NAN, hist_p99_ms = NAN;
  double put_p50_ms = NAN;
  double rss_mib = 0;      // peak (VmHWM)
  double rss_end_mib = 0;  // at the end of the run (VmRSS)
  double cpu_start_s = 0;  // agent CPU (user+sys) from start to ready
  double cpu_total_s = 0;  // ... to the end of the update stream
  // VmRSS while the updates run: (seconds since the agent was programmed, MiB).
  std::vector<std::pair<double, double>> rss_samples;
  double rss_first_mib = NAN, rss_last_mib = NAN, rss_growth_pct = NAN;
  double growth_small_start_s = NAN;  // start with --growth-from blocks, same dataplane
  double growth_ratio = NAN;          // start_s / growth_small_start_s
};

// "n missing, n with a wrong next hop, n extra (e.g. ...)".
std::string DescribeDiff(const RouteMap& want, const RouteMap& got);

class Bench {
 public:
  Bench(const Settings& settings, testing::EtcdServer& etcd, const std::string& dir);

  const Cluster& cluster() const { return cluster_; }
  // Writes every host's peer key and every block (setup, not measured).
  Status WriteCluster();
  StatusOr<RunResult> Run(Target& target, int run);
  // Writes the blocks of the cluster not written yet (after a --growth-from measurement).
  Status WriteRemainingBlocks();
  // Only the start of the agent on `target` with the first --growth-from blocks (seconds).
  StatusOr<double> MeasureSmallStart(Target& target, int run);

 private:
  // The agent while it runs, and what the run knows about its start.
  struct RunningAgent {
    std::unique_ptr<AgentProcess> process;
    std::unique_ptr<AgentHttp> http;
    std::string log_file;
    Steady::time_point started;
    Steady::time_point programmed_at;  // the "programmed" signal seen
    std::chrono::system_clock::time_point started_wall;
  };

  StatusOr<RunningAgent> StartAgent(Target& target, int run);
  // `etcdctl get --prefix` of every key the agent lists, output to /dev/null (seconds).
  StatusOr<double> MeasureReferenceRead();
  // Waits for the agent's "programmed" signal (--ready-signal) and for /readyz to agree.
  Status WaitProgrammed(RunningAgent& agent, size_t routes);
  // Checks the dataplane and the agent's own count against `expected`; returns /metrics.
  StatusOr<std::string> VerifyProgrammed(Target& target, AgentHttp& http, const RouteMap& expected);
  // The update stream, the agent's histogram for it, and the dataplane checked afterwards.
  Status StreamAndVerify(Target& target, RunningAgent& agent, const std::string& metrics_before,
                         const std::vector<Update>& updates, RunResult& res);
  Status StreamClosedLoop(Target& target, RunningAgent& agent, const std::vector<Update>& updates,
                          RunResult& res);
  Status StreamOpenLoop(Target& target, RunningAgent& agent, const std::vector<Update>& updates,
                        RunResult& res);
  // Appends the agent's VmRSS to res.rss_samples when `every` has passed since the last one.
  void SampleRss(RunningAgent& agent, Steady::duration every, RunResult& res);
  // Stops the agent and reads the phases of its start from its log.
  int StopAndReadPhases(RunningAgent& agent, RunResult& res);
  // The lower bound for the same routes, after the agent stopped.
  Status MeasureLowerBound(Target& target, const RouteMap& expected, RunResult& res);
  // Puts etcd back as it was before the updates, so that every run starts from one cluster.
  Status Revert(const Cluster& original, const std::vector<Update>& updates);

  Settings s_;
  testing::EtcdServer& etcd_;
  std::string dir_;
  Cluster cluster_;
  int written_blocks_ = 0;  // blocks 0 .. written_blocks_-1 are in etcd
};

}  // namespace vcra::bench
