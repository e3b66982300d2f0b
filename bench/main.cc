// vcra-bench: the performance benchmark (docs/performance.md shows results).
//
// What it does, per dataplane (linux, vpp) and per run:
//   1. a cluster of --blocks /26 IPAM blocks over --hosts hosts sits in a real etcd (written once,
//      in Calico's format, with bounded concurrency; setup, not measured);
//   2. the real agent binary (vpp-calico-route-agent) is started as a child process; measured:
//      the time from fork() to its /readyz answering 200 (first etcd listing done and every
//      desired route acknowledged by the dataplane), checked against the dataplane itself
//      (kernel route dump / simulator FIB) and the agent's vcra_routes_programmed;
//   3. --updates block moves and creations are written one at a time (closed loop: the next one
//      only after the previous route is visible, and at most --update-rate per second); measured
//      per update: from the etcd Put returning to the route being visible in the dataplane
//      (Linux: an RTM_NEWROUTE notification on an rtnetlink multicast socket; VPP: the
//      simulator's FIB), plus the agent's own vcra_event_to_route_seconds histogram for the same
//      updates (difference of two /metrics scrapes);
//   4. the agent's peak RSS (VmHWM of ITS process, not of the benchmark) and CPU time;
//   5. a lower bound for the same routes in the same run: Linux `ip -batch` (route replace, one
//      netlink round trip per route, as iproute2 does it); VPP the same ip_route_add_del_v2
//      requests pipelined by our VppClient directly against a fresh simulator (no agent);
//   6. the etcd data is put back as it was, so that every run starts from the same cluster.
// Results go to stdout as a Markdown table (medians with [min - max] over --runs); progress and
// diagnostics go to stderr.
//
// Safety: the Linux part runs only as root, inside a private network namespace the process makes
// for itself at start (unshare(CLONE_NEWNET), before any thread exists); it is never run in the
// machine's own namespace. Everything the benchmark starts (etcd, the agent) dies with it
// (PR_SET_PDEATHSIG), every wait is bounded by a per-step timeout and by --timeout overall, and
// temporary directories are removed on every exit path except SIGKILL.
//
// Files: bench_util (time, processes, /proc), cluster (the cluster and its updates),
// agent_process (the agent as a child, its HTTP and log), kernel_routes (rtnetlink),
// targets (the dataplanes and their lower bounds), run (one run), report (the Markdown table).
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>

#include "bench/fleet.h"
#include "bench/report.h"
#include "bench/run.h"
#include "common/log.h"

namespace vcra::bench {
namespace {

std::string NetnsId() {
  char buf[128] = {};
  ssize_t n = readlink("/proc/self/ns/net", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// The flags of the modes beyond the default start + closed-loop stream.
void AddModeFlags(CLI::App& app, Settings& s, std::string& shape) {
  app.add_option("--block-shape", shape,
                 "compact (the agent's encoder, ~0.9 KB) or realistic (Calico v3's pod blocks: "
                 "handles, attributes, 1.5-3 KB, mean ~2.2 KB)")
      ->check(CLI::IsMember({"compact", "realistic"}))
      ->capture_default_str();
  app.add_option("--stream", s.stream,
                 "closed: one update at a time, the next once the route is visible; open: "
                 "updates on a fixed schedule at --update-rate, never waiting for routes")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  app.add_option("--duration", s.duration_s,
                 "Seconds of churn (block moves at --update-rate, closed loop) instead of "
                 "--updates, with the agent's RSS sampled 30 times")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--growth-from", s.growth_from,
                 "First time starts with only this many blocks, then with --blocks: the growth "
                 "ratio")
      ->check(CLI::Range(0, kMaxBlockIndex / 2))
      ->capture_default_str();
  s.netlink_writer = OwnDirectory() + "/vcra-netlink-writer";
  app.add_option("--netlink-writer", s.netlink_writer,
                 "The bare batched-netlink writer of the kernel lower bound (skipped when absent)")
      ->capture_default_str();
  app.add_option("--netlink-writer-args", s.netlink_writer_args,
                 "Its arguments: {routes} the route file (`<prefix> via <gw> dev <if>` lines), "
                 "{dev} the uplink, {count} the number of routes")
      ->capture_default_str();
  s.etcdctl = FindTool("etcdctl");
  app.add_option("--etcdctl", s.etcdctl,
                 "etcdctl for the reference read (`get --prefix` of the same keys to /dev/null)")
      ->capture_default_str();
  app.add_option("--agents", s.agents,
                 "Fleet mode: cold-start this many agents at once (each with its own VPP "
                 "simulator) against a 3-member etcd, directly and through one grpc-proxy")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--agents-spread", s.agents_spread_s,
                 "Fleet mode: spread the agents' starts evenly over this many seconds (0: all at "
                 "once)")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--agents-start-jitter-ms", s.agents_start_jitter_ms,
                 "Fleet mode: the agents (not the lone one) run with --etcd-start-jitter-ms this")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
}

// Fills `s` from the command line; nullopt to go on, else the exit code.
std::optional<int> ParseFlags(int argc, char** argv, Settings& s) {
  CLI::App app{
      "vcra-bench: agent start-up, throughput, event-to-route latency and memory against "
      "a real etcd and the Linux kernel / the VPP simulator, with lower bounds"};
  app.add_option("--hosts", s.hosts, "Hosts in the cluster (the agent is host 0)")
      ->check(CLI::Range(2, 60000))
      ->capture_default_str();
  app.add_option("--blocks", s.blocks, "/26 IPAM blocks, spread round-robin over the hosts")
      ->check(CLI::Range(1, kMaxBlockIndex / 2))
      ->capture_default_str();
  app.add_option("--updates", s.updates, "Block moves/creations in the latency stream")
      ->check(CLI::Range(0, kMaxBlockIndex / 2))
      ->capture_default_str();
  app.add_option("--runs", s.runs, "Runs per dataplane (medians are reported)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--dataplane", s.dataplane, "linux, vpp or both")
      ->check(CLI::IsMember({"linux", "vpp", "both"}))
      ->capture_default_str();
  app.add_option("--update-rate", s.update_rate, "At most this many updates per second")
      ->check(CLI::Range(0.1, 100000.0))
      ->capture_default_str();
  app.add_option("--writers", s.writers,
                 "Concurrent etcd writers (setup, and the open-loop stream)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--timeout", s.timeout_s, "Overall limit in seconds")
      ->check(CLI::Range(10, 86400))
      ->capture_default_str();
  app.add_option("--start-timeout", s.start_timeout_s, "Limit for one agent start, seconds")
      ->check(CLI::Range(5, 86400))
      ->capture_default_str();
  app.add_option("--ready-signal", s.ready_signal,
                 "How to see the agent is done: its log line (log) or polling /readyz (http)")
      ->check(CLI::IsMember({"log", "http"}))
      ->capture_default_str();
  app.add_option("--agent-binary", s.agent_binary, "The agent to run")->capture_default_str();
  std::string shape = "compact";
  AddModeFlags(app, s, shape);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (s.blocks + s.updates > kMaxBlockIndex) {
    std::fprintf(stderr, "--blocks + --updates must stay below %d\n", kMaxBlockIndex);
    return kExitUsage;
  }
  if (s.agents >= s.hosts) {
    std::fprintf(stderr, "--agents must stay below --hosts\n");
    return kExitUsage;
  }
  s.shape = shape == "realistic" ? BlockShape::kRealistic : BlockShape::kCompact;
  if (access(s.netlink_writer.c_str(), X_OK) != 0) {
    Log("note: no {}: the kernel lower bound is `ip -batch` alone", s.netlink_writer);
    s.netlink_writer.clear();
  }
  if (s.etcdctl.empty()) Log("note: no etcdctl: the reference read is not measured");
  return std::nullopt;
}

// Before any thread exists: unshare(CLONE_NEWNET) moves only the calling thread, and every
// thread and child made later inherits its namespace. Returns iproute2's `ip` once the process
// is in a private namespace with `lo` up; empty when not root or unshare failed.
StatusOr<std::string> EnterPrivateNetns() {
  if (geteuid() != 0) return std::string();
  std::string before = NetnsId();
  if (unshare(CLONE_NEWNET) != 0 || before.empty() || NetnsId() == before) {
    Log("WARNING: unshare(CLONE_NEWNET) failed: {}", strerror(errno));
    return std::string();
  }
  std::string ip_tool = FindTool("ip");
  if (ip_tool.empty()) return absl::NotFoundError("iproute2's `ip` not found");
  RETURN_IF_ERROR(RunChecked({ip_tool, "link", "set", "lo", "up"}));
  Log("running in a private network namespace ({})", NetnsId());
  return ip_tool;
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Runs interleave the dataplanes, so that slow phases of a shared machine hit both alike.
// Returns false when a run failed.
bool RunAll(Bench& bench, const Settings& s, std::vector<std::unique_ptr<Target>>& targets,
            DataplaneResults& results) {
  for (auto& target : targets) results.emplace_back(target->Name(), std::vector<RunResult>{});
  // Growth: the same starts with the first --growth-from blocks, before the rest is written.
  std::vector<std::vector<double>> small_starts(targets.size());
  if (s.growth_from > 0) {
    for (int run = 1; run <= s.runs; ++run) {
      for (size_t t = 0; t < targets.size(); ++t) {
        auto r = bench.MeasureSmallStart(*targets[t], run);
        targets[t]->Finish();
        if (!r.ok()) {
          Log("FAILED: {} growth run {}: {}", targets[t]->Name(), run, r.status().message());
          return false;
        }
        small_starts[t].push_back(*r);
      }
    }
    if (Status st = bench.WriteRemainingBlocks(); !st.ok()) {
      Log("FAILED: writing the rest of the cluster: {}", st.message());
      return false;
    }
  }
  for (int run = 1; run <= s.runs; ++run) {
    for (size_t t = 0; t < targets.size(); ++t) {
      auto r = bench.Run(*targets[t], run);
      targets[t]->Finish();
      if (!r.ok()) {
        Log("FAILED: {} run {}: {}", targets[t]->Name(), run, r.status().message());
        return false;
      }
      if (s.growth_from > 0) {
        r->growth_small_start_s = small_starts[t][run - 1];
        r->growth_ratio = r->start_s / r->growth_small_start_s;
      }
      results[t].second.push_back(*r);
    }
  }
  return true;
}

// The dataplanes to measure, in report order; `skipped` is set when one asked for is missing.
std::vector<std::unique_ptr<Target>> MakeTargets(const Settings& s, const std::string& ip_tool,
                                                 const std::string& dir, bool want_linux,
                                                 bool want_vpp, bool& skipped) {
  std::vector<std::unique_ptr<Target>> targets;
  if (want_linux)
    targets.push_back(MakeLinuxTarget(ip_tool, dir, s.netlink_writer, s.netlink_writer_args));
  if (want_vpp) targets.push_back(MakeVppTarget(dir));
  // With VPP_BIN, a real-VPP column beside the simulator's.
  if (const char* vpp_bin = std::getenv("VPP_BIN"); want_vpp && vpp_bin && *vpp_bin) {
    auto real = MakeRealVppTarget(dir);
    if (real.ok()) {
      targets.push_back(std::move(*real));
    } else {
      std::fprintf(stderr, "\n*** SKIPPED: real-VPP column (VPP_BIN=%s): %s ***\n\n", vpp_bin,
                   std::string(real.status().message()).c_str());
      skipped = true;
    }
  } else if (want_vpp) {
    Log("SKIPPED: real-VPP column: VPP_BIN is not set (simulator only)");
  }
  return targets;
}

int Main(int argc, char** argv) {
  Settings s;
  if (auto code = ParseFlags(argc, argv, s)) return *code;
  std::string command = "vcra-bench";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];

  bool want_linux = s.dataplane != "vpp";
  bool want_vpp = s.dataplane != "linux";
  bool skipped = false;
  auto ip_tool = EnterPrivateNetns();
  if (!ip_tool.ok()) {
    Log("error: {}", ip_tool.status().message());
    return kExitFailure;
  }
  if (want_linux && ip_tool->empty()) {
    std::fprintf(stderr,
                 "\n*** SKIPPED: linux dataplane: needs root to make a private network namespace "
                 "(unshare(CLONE_NEWNET)); nothing is configured in this machine's namespace ***"
                 "\n\n");
    want_linux = false;
    skipped = true;
  }
  if (access(s.agent_binary.c_str(), X_OK) != 0) {
    Log("error: agent binary {} is not executable", s.agent_binary);
    return kExitFailure;
  }
  InstallSignalHandlers();
  SetupLogging(LogFormat::kText, "warn");
  g_deadline = Steady::now() + std::chrono::seconds(s.timeout_s);

  auto dir = TempDir::Make("run");
  if (!dir.ok()) {
    Log("error: {}", dir.status().message());
    return kExitFailure;
  }
  if (s.agents > 0) return RunFleet(s, (*dir)->path(), command);

  testing::EtcdServerOptions eo;
  eo.extra_args = {"--quota-backend-bytes=4294967296"};
  auto etcd = testing::EtcdServer::Start(eo);
  if (!etcd.ok()) {
    std::fprintf(stderr, "\n*** SKIPPED: needs a real etcd (%s): %s ***\n\n",
                 testing::EtcdServer::kEtcdBinary, std::string(etcd.status().message()).c_str());
    return kExitSkipped;
  }

  Bench bench(s, **etcd, (*dir)->path());
  if (Status st = bench.WriteCluster(); !st.ok()) {
    Log("error: writing the cluster: {}", st.message());
    return kExitFailure;
  }
  Log("cluster: {} hosts, {} blocks, {} borrowed IPs, {} routes expected", s.hosts, s.blocks,
      bench.cluster().BorrowedCount(), bench.cluster().ExpectedRoutes().size());

  std::vector<std::unique_ptr<Target>> targets =
      MakeTargets(s, *ip_tool, (*dir)->path(), want_linux, want_vpp, skipped);
  std::vector<std::string> lower_bound_names;
  for (auto& target : targets) lower_bound_names.push_back(target->LowerBoundName());

  DataplaneResults results;
  bool ok = RunAll(bench, s, targets, results);
  bool any =
      std::any_of(results.begin(), results.end(), [](const auto& r) { return !r.second.empty(); });
  if (any) PrintReport(s, command, bench.cluster(), results, lower_bound_names);
  targets.clear();
  if (!ok) return kExitFailure;
  if (skipped) {
    std::fprintf(stderr, "\n*** SKIPPED (partly): see above ***\n");
    return kExitSkipped;
  }
  return 0;
}

}  // namespace
}  // namespace vcra::bench

int main(int argc, char** argv) { return vcra::bench::Main(argc, argv); }
