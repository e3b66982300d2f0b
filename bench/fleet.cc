#include "bench/fleet.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/report.h"
#include "common/log.h"
#include "tests/support/child_process.h"

namespace vcra::bench {
namespace {

// What one cold start of a group of agents cost.
struct FleetStart {
  double last_s = NAN;               // fork of the first agent -> the last one programmed
  double median_s = NAN;             // ... the median agent programmed
  double sent_bytes = NAN;           // sent by all etcd members meanwhile
  double agent_cpu_s = NAN;          // median CPU (user + system) of one agent until programmed
  double agents_cpu_s = NAN;         // all agents' CPU together
  double revisions = NAN;            // distinct revisions the agents listed at
  double member_watchers = NAN;      // watchers the members hold once every agent watches
  double member_ranges = NAN;        // Range requests the members answered meanwhile
  double member_range_errors = NAN;  // ... of which they refused (e.g. a future revision)
};

// The sum over the members' /metrics of the samples of `metric` whose labels contain
// `labels` (empty: every sample).
StatusOr<double> MembersMetric(const testing::EtcdServer& etcd, const std::string& metric,
                               const std::string& labels = "") {
  double sum = 0;
  for (const std::string& endpoint : etcd.endpoints()) {
    httplib::Client client(endpoint);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200)
      return absl::UnavailableError(fmt::format("GET {}/metrics failed", endpoint));
    sum += MetricSum(res->body, metric, labels);
  }
  return sum;
}

StatusOr<double> MembersSentBytes(const testing::EtcdServer& etcd) {
  return MembersMetric(etcd, "etcd_network_client_grpc_sent_bytes_total");
}

// Range requests the members have answered so far (etcd's gRPC server metrics), and those
// answered with an error.
struct RangeCounts {
  double all = 0;
  double errors = 0;
};
StatusOr<RangeCounts> MembersRanges(const testing::EtcdServer& etcd) {
  RangeCounts out;
  ASSIGN_OR_RETURN(out.all,
                   MembersMetric(etcd, "grpc_server_handled_total", "grpc_method=\"Range\""));
  ASSIGN_OR_RETURN(double ok, MembersMetric(etcd, "grpc_server_handled_total",
                                            "grpc_code=\"OK\",grpc_method=\"Range\""));
  out.errors = out.all - ok;
  return out;
}

// CPU seconds (user + system) a running process has used so far, from /proc/<pid>/stat.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return NAN;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double utime = NAN, stime = NAN;
  // state is field 3; utime and stime are fields 14 and 15.
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) utime = std::stod(field);
    if (n == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The revision of the agent's (first) complete listing, from its log; 0 when absent.
int64_t ListedRevision(const std::string& log) {
  static const std::regex kListed("listed [0-9]+ keys at revision ([0-9]+)");
  std::smatch m;
  if (!std::regex_search(log, m, kListed)) return 0;
  return std::stoll(m[1].str());
}

// "host:port" of a "http://host:port" endpoint (grpc-proxy's --endpoints form).
std::string HostPort(const std::string& endpoint) {
  auto pos = endpoint.find("://");
  return pos == std::string::npos ? endpoint : endpoint.substr(pos + 3);
}

class Fleet {
 public:
  Fleet(const Settings& s, testing::EtcdServer& etcd, const Cluster& cluster, std::string dir)
      : s_(s), etcd_(etcd), cluster_(cluster), dir_(std::move(dir)) {}

  // Starts agents for hosts 1..count against `endpoints`, waits until all are programmed,
  // verifies every one's simulator, and stops them.
  StatusOr<FleetStart> ColdStart(const std::string& label, int count,
                                 const std::string& endpoints) {
    Group g;
    RETURN_IF_ERROR(PrepareDataplanes(label, count, g));
    ASSIGN_OR_RETURN(double before, MembersSentBytes(etcd_));
    ASSIGN_OR_RETURN(RangeCounts ranges_before, MembersRanges(etcd_));
    auto started = Steady::now();
    Status st = StartAgents(label, endpoints, g, started);
    if (st.ok()) st = WaitAllProgrammed(g, started);
    FleetStart out;
    if (st.ok()) {
      ASSIGN_OR_RETURN(double after, MembersSentBytes(etcd_));
      out.sent_bytes = after - before;
      std::vector<double> cpu;
      for (auto& a : g.agents) cpu.push_back(ProcessCpuSeconds(a->pid()));
      out.agent_cpu_s = Percentile(cpu, 0.5);
      out.agents_cpu_s = std::accumulate(cpu.begin(), cpu.end(), 0.0);
      std::set<int64_t> revisions;
      for (const auto& log : g.logs) revisions.insert(ListedRevision(ReadFile(log)));
      out.revisions = static_cast<double>(revisions.size());
      // A figure that cannot be read stays n/a; the agents must still be stopped below.
      if (auto ranges = MembersRanges(etcd_); ranges.ok()) {
        out.member_ranges = ranges->all - ranges_before.all;
        out.member_range_errors = ranges->errors - ranges_before.errors;
      }
      st = VerifyAll(g);
      // Every agent is watching by now (it reports programmed only once in sync).
      if (st.ok()) {
        auto watchers = MembersMetric(etcd_, "etcd_debugging_mvcc_watcher_total");
        if (watchers.ok()) out.member_watchers = *watchers;
      }
    }
    StopAll(g);
    RETURN_IF_ERROR(st);
    out.last_s = *std::max_element(g.programmed_s.begin(), g.programmed_s.end());
    out.median_s = Percentile(g.programmed_s, 0.5);
    Log("fleet {}: {} agent(s) programmed, the last after {:.2f} s; the etcd members sent "
        "{:.1f} MiB; {:.2f} CPU-s per agent (median), {:.1f} CPU-s in all; {} listing "
        "revision(s); members hold {} watchers and answered {} Range requests ({} with an error)",
        label, count, out.last_s, out.sent_bytes / (1 << 20), out.agent_cpu_s, out.agents_cpu_s,
        out.revisions, out.member_watchers, out.member_ranges, out.member_range_errors);
    return out;
  }

 private:
  struct Group {
    std::vector<std::unique_ptr<Target>> dataplanes;  // agent i is host i + 1
    std::vector<std::unique_ptr<AgentProcess>> agents;
    std::vector<std::string> logs;
    std::vector<double> programmed_s;
  };

  Status PrepareDataplanes(const std::string& label, int count, Group& g) {
    for (int i = 0; i < count; ++i) {
      g.dataplanes.push_back(MakeVppTarget(fmt::format("{}/{}-{}", dir_, label, i)));
      std::filesystem::create_directories(fmt::format("{}/{}-{}", dir_, label, i));
      RETURN_IF_ERROR(g.dataplanes.back()->Prepare(0));
    }
    return absl::OkStatus();
  }

  Status StartAgents(const std::string& label, const std::string& endpoints, Group& g,
                     Steady::time_point started) {
    const size_t n = g.dataplanes.size();
    for (size_t i = 0; i < n; ++i) {
      if (s_.agents_spread_s > 0 && n > 1) {
        auto at = started +
                  std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(
                      s_.agents_spread_s * static_cast<double>(i) / static_cast<double>(n - 1)));
        std::this_thread::sleep_until(at);
      }
      int host = static_cast<int>(i) + 1;
      ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
      std::vector<std::string> args = {s_.agent_binary,
                                       "--nodename",
                                       HostName(host),
                                       "--etcd-endpoints",
                                       endpoints,
                                       "--uplink-address",
                                       PeerAddress(host).ToString() + "/16",
                                       "--http-listen",
                                       fmt::format("127.0.0.1:{}", port),
                                       "--log-level",
                                       "info",
                                       "--log-format",
                                       "json"};
      for (auto& a : g.dataplanes[i]->AgentArgs()) args.push_back(a);
      if (s_.agents_start_jitter_ms > 0 && n > 1) {
        args.push_back("--etcd-start-jitter-ms");
        args.push_back(std::to_string(s_.agents_start_jitter_ms));
      }
      g.logs.push_back(fmt::format("{}/agent-{}-{}.log", dir_, label, host));
      ASSIGN_OR_RETURN(auto agent, AgentProcess::Start(args, g.logs.back()));
      g.agents.push_back(std::move(agent));
    }
    return absl::OkStatus();
  }

  Status WaitAllProgrammed(Group& g, Steady::time_point started) {
    size_t n = g.agents.size();
    g.programmed_s.assign(n, NAN);
    size_t done = 0;
    auto deadline = DeadlineIn(std::chrono::seconds(s_.start_timeout_s));
    while (done < n) {
      for (size_t i = 0; i < n; ++i) {
        if (!std::isnan(g.programmed_s[i])) continue;
        if (ReadFile(g.logs[i]).find(kProgrammedLogLine) != std::string::npos) {
          g.programmed_s[i] = Seconds(Steady::now() - started);
          ++done;
        } else if (auto code = g.agents[i]->Exited()) {
          return absl::InternalError(
              fmt::format("agent {} exited with {}:\n{}", i + 1, *code, g.agents[i]->LogTail()));
        }
      }
      if (Steady::now() > deadline)
        return AbortedStatus(fmt::format("waiting for {} agents ({} programmed)", n, done));
      if (done < n) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return absl::OkStatus();
  }

  Status VerifyAll(Group& g) {
    for (size_t i = 0; i < g.dataplanes.size(); ++i) {
      RouteMap want = cluster_.ExpectedRoutesFor(static_cast<int>(i) + 1);
      ASSIGN_OR_RETURN(RouteMap got, g.dataplanes[i]->OwnedRoutes());
      if (got != want)
        return absl::InternalError(fmt::format("agent {}: {}", i + 1, DescribeDiff(want, got)));
    }
    return absl::OkStatus();
  }

  void StopAll(Group& g) {
    // SIGTERM to all first, so that they exit side by side.
    for (auto& a : g.agents)
      if (a->pid() > 0) kill(a->pid(), SIGTERM);
    for (auto& a : g.agents) a->Stop();
    for (auto& d : g.dataplanes) d->Finish();
  }

  const Settings& s_;
  testing::EtcdServer& etcd_;
  const Cluster& cluster_;
  std::string dir_;
};

// `etcd grpc-proxy start` in front of the members, on a free loopback port.
class GrpcProxy {
 public:
  static StatusOr<std::unique_ptr<GrpcProxy>> Start(const testing::EtcdServer& etcd,
                                                    const std::string& dir) {
    ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
    std::vector<std::string> members;
    for (const auto& e : etcd.endpoints()) members.push_back(HostPort(e));
    std::vector<std::string> args = {testing::EtcdServer::kEtcdBinary,
                                     "grpc-proxy",
                                     "start",
                                     fmt::format("--endpoints={}", fmt::join(members, ",")),
                                     fmt::format("--listen-addr=127.0.0.1:{}", port),
                                     fmt::format("--data-dir={}/proxy", dir)};
    ASSIGN_OR_RETURN(pid_t pid, testing::SpawnChild(args, dir + "/grpc-proxy.log", false));
    auto proxy = std::unique_ptr<GrpcProxy>(new GrpcProxy(pid, port));
    // Ready once a Range through it answers.
    datastore::EtcdConfig config = etcd.ClientConfig();
    config.endpoints = {proxy->endpoint()};
    auto deadline = DeadlineIn(std::chrono::seconds(20));
    while (true) {
      auto client = datastore::EtcdClient::Create(config);
      if (client.ok() && (*client)->RangePrefix("/vpp-calico/hosts/bench-host-0/").ok()) break;
      if (Steady::now() > deadline)
        return absl::UnavailableError("grpc-proxy did not answer: " +
                                      Tail(ReadFile(dir + "/grpc-proxy.log"), 5));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return proxy;
  }
  ~GrpcProxy() {
    kill(pid_, SIGTERM);
    WaitProcess(pid_, Steady::now() + std::chrono::seconds(10));
  }
  std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }

 private:
  GrpcProxy(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
};

void PrintFleetReport(const Settings& s, const std::string& command, const Cluster& cluster,
                      const std::vector<FleetStart>& single, const std::vector<FleetStart>& direct,
                      const std::vector<FleetStart>& proxied) {
  std::printf("### vcra-bench fleet results\n\n");
  std::printf("- command: `%s`\n", command.c_str());
  std::printf("- machine: %s\n", MachineLine().c_str());
  std::printf(
      "- cluster: %d hosts, %d /26 blocks, %s shape (block values %zu bytes on average); a "
      "3-member etcd; agents on hosts 1..%d, each with its own VPP simulator; %zu run(s), cells "
      "are the median [min – max]\n\n",
      s.hosts, s.blocks, s.shape == BlockShape::kRealistic ? "realistic" : "compact",
      cluster.MeanBlockBytes(), s.agents, single.size());
  auto col = [](const std::vector<FleetStart>& v, double FleetStart::*f, double scale) {
    std::vector<double> out;
    for (const auto& x : v) out.push_back(x.*f * scale);
    return out;
  };
  auto ratio = [](const std::vector<FleetStart>& v, const std::vector<FleetStart>& base,
                  double FleetStart::*f) {
    std::vector<double> out;
    for (size_t i = 0; i < v.size() && i < base.size(); ++i) out.push_back(v[i].*f / base[i].*f);
    return out;
  };
  std::printf(
      "| metric | 1 agent, direct | %d agents, direct to the members | %d agents, "
      "through one grpc-proxy |\n|---|---|---|---|\n",
      s.agents, s.agents);
  auto row = [&](const char* label, double FleetStart::*f, double scale, int digits) {
    std::printf("| %s | %s | %s | %s |\n", label, Cell(col(single, f, scale), digits).c_str(),
                Cell(col(direct, f, scale), digits).c_str(),
                Cell(col(proxied, f, scale), digits).c_str());
  };
  row("time until the last agent is programmed (s)", &FleetStart::last_s, 1, 2);
  row("median agent programmed (s)", &FleetStart::median_s, 1, 2);
  row("bytes sent by the etcd members (MiB)", &FleetStart::sent_bytes, 1.0 / (1 << 20), 1);
  row("agent CPU until programmed, per agent (s, median of the agents)", &FleetStart::agent_cpu_s,
      1, 2);
  row("all agents' CPU together (s)", &FleetStart::agents_cpu_s, 1, 1);
  row("distinct revisions the agents listed at", &FleetStart::revisions, 1, 0);
  row("watchers held by the members, all agents watching", &FleetStart::member_watchers, 1, 0);
  row("Range requests the members answered", &FleetStart::member_ranges, 1, 0);
  row("... of which with an error", &FleetStart::member_range_errors, 1, 0);
  std::printf("| **members' bytes ÷ one listing** (target ≤ 3 through the proxy) | 1 | %s | %s |\n",
              Cell(ratio(direct, single, &FleetStart::sent_bytes), 1).c_str(),
              Cell(ratio(proxied, single, &FleetStart::sent_bytes), 1).c_str());
  std::printf("| **last agent ÷ a single agent's time** (target ≤ 2) | 1 | %s | %s |\n",
              Cell(ratio(direct, single, &FleetStart::last_s), 1).c_str(),
              Cell(ratio(proxied, single, &FleetStart::last_s), 1).c_str());
  std::fflush(stdout);
}

}  // namespace

int RunFleet(const Settings& s, const std::string& dir, const std::string& command) {
  testing::EtcdServerOptions eo;
  eo.members = 3;
  eo.extra_args = {"--quota-backend-bytes=4294967296"};
  auto etcd = testing::EtcdServer::Start(eo);
  if (!etcd.ok()) {
    std::fprintf(stderr, "\n*** SKIPPED: needs a real etcd (%s): %s ***\n\n",
                 testing::EtcdServer::kEtcdBinary, std::string(etcd.status().message()).c_str());
    return kExitSkipped;
  }
  Bench bench(s, **etcd, dir);
  if (Status st = bench.WriteCluster(); !st.ok()) {
    Log("error: writing the cluster: {}", st.message());
    return kExitFailure;
  }
  Fleet fleet(s, **etcd, bench.cluster(), dir);
  std::string direct_endpoints = fmt::format("{}", fmt::join((*etcd)->endpoints(), ","));
  std::vector<FleetStart> single, direct, proxied;
  Status st;
  // Runs interleave the three shapes, so that slow phases of a shared machine hit all alike.
  for (int run = 1; run <= s.runs && st.ok(); ++run) {
    auto one = fleet.ColdStart(fmt::format("single-{}", run), 1, direct_endpoints);
    if (!one.ok()) {
      st = one.status();
      break;
    }
    single.push_back(*one);
    auto many = fleet.ColdStart(fmt::format("direct-{}", run), s.agents, direct_endpoints);
    if (!many.ok()) {
      st = many.status();
      break;
    }
    direct.push_back(*many);
    auto proxy = GrpcProxy::Start(**etcd, dir);
    if (!proxy.ok()) {
      st = proxy.status();
      break;
    }
    auto through = fleet.ColdStart(fmt::format("proxy-{}", run), s.agents, (*proxy)->endpoint());
    if (!through.ok()) {
      st = through.status();
      break;
    }
    proxied.push_back(*through);
  }
  if (!single.empty()) PrintFleetReport(s, command, bench.cluster(), single, direct, proxied);
  if (!st.ok()) {
    Log("FAILED: fleet: {}", std::string(st.message()));
    return kExitFailure;
  }
  return 0;
}

}  // namespace vcra::bench
