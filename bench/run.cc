#include "bench/run.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include "calico/model.h"

namespace vcra::bench {

std::string DescribeDiff(const RouteMap& want, const RouteMap& got) {
  size_t missing = 0, wrong = 0, extra = 0;
  std::string example;
  for (const auto& [dst, gw] : want) {
    auto it = got.find(dst);
    if (it == got.end()) {
      ++missing;
      if (example.empty()) example = "missing " + dst.ToString() + " via " + gw.ToString();
    } else if (!(it->second == gw)) {
      ++wrong;
      if (example.empty()) example = "wrong next hop for " + dst.ToString();
    }
  }
  for (const auto& [dst, gw] : got) extra += !want.contains(dst);
  return fmt::format("{} missing, {} with a wrong next hop, {} extra (e.g. {})", missing, wrong,
                     extra, example.empty() ? "-" : example);
}

Bench::Bench(const Settings& settings, testing::EtcdServer& etcd, const std::string& dir)
    : s_(settings),
      etcd_(etcd),
      dir_(dir),
      cluster_(Cluster::Make(s_.hosts, s_.blocks, s_.shape)) {}

Status Bench::WriteCluster() {
  std::vector<EtcdOp> ops;
  for (int k = 0; k < s_.hosts; ++k) {
    ops.emplace_back(calico::PeerKeyFor(HostName(k), net::Family::kV4), PeerAddress(k).ToString());
  }
  int first = s_.growth_from > 0 ? std::min(s_.growth_from, s_.blocks) : s_.blocks;
  for (int index = 0; index < first; ++index)
    ops.emplace_back(calico::BlockKey(BlockCidr(index)), cluster_.Encode(index));
  auto started = Steady::now();
  RETURN_IF_ERROR(WriteAll(etcd_.ClientConfig(), ops, s_.writers));
  written_blocks_ = first;
  Log("wrote {} keys to etcd in {:.1f} s (setup, not measured)", ops.size(),
      Seconds(Steady::now() - started));
  return absl::OkStatus();
}

Status Bench::WriteRemainingBlocks() {
  std::vector<EtcdOp> ops;
  for (int index = written_blocks_; index < s_.blocks; ++index)
    ops.emplace_back(calico::BlockKey(BlockCidr(index)), cluster_.Encode(index));
  auto started = Steady::now();
  RETURN_IF_ERROR(WriteAll(etcd_.ClientConfig(), ops, s_.writers));
  written_blocks_ = s_.blocks;
  Log("wrote {} more blocks to etcd in {:.1f} s (setup, not measured)", ops.size(),
      Seconds(Steady::now() - started));
  return absl::OkStatus();
}

StatusOr<double> Bench::MeasureSmallStart(Target& target, int run) {
  Cluster small = Cluster::Make(s_.hosts, written_blocks_, s_.shape);
  RouteMap expected = small.ExpectedRoutes();
  RETURN_IF_ERROR(target.Prepare(1000 + run));
  ASSIGN_OR_RETURN(RunningAgent agent, StartAgent(target, 1000 + run));
  RETURN_IF_ERROR(WaitProgrammed(agent, expected.size()));
  double start_s = Seconds(agent.programmed_at - agent.started);
  RETURN_IF_ERROR(VerifyProgrammed(target, *agent.http, expected).status());
  agent.http.reset();
  agent.process->Stop();
  target.Finish();
  Log("{} growth run {}: {} blocks, {} routes programmed in {:.2f} s", target.Name(), run,
      written_blocks_, expected.size(), start_s);
  return start_s;
}

StatusOr<double> Bench::MeasureReferenceRead() {
  // The agent lists the blocks and the peer keys; the reference reads both, one after the
  // other, each in one Range (etcdctl does not paginate).
  std::string endpoints = fmt::format("--endpoints={}", fmt::join(etcd_.endpoints(), ","));
  auto started = Steady::now();
  for (const char* prefix : {"/calico/ipam/v2/assignment/", "/vpp-calico/hosts/"}) {
    ASSIGN_OR_RETURN(int rc, RunCommand({s_.etcdctl, endpoints, "--command-timeout=300s", "get",
                                         "--prefix", prefix},
                                        std::chrono::seconds(300)));
    if (rc != 0) return absl::InternalError(fmt::format("etcdctl get exited with {}", rc));
  }
  return Seconds(Steady::now() - started);
}

StatusOr<Bench::RunningAgent> Bench::StartAgent(Target& target, int run) {
  ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
  std::vector<std::string> args = {s_.agent_binary,
                                   "--nodename",
                                   HostName(0),
                                   "--etcd-endpoints",
                                   fmt::format("{}", fmt::join(etcd_.endpoints(), ",")),
                                   "--uplink-address",
                                   PeerAddress(0).ToString() + "/16",
                                   "--http-listen",
                                   fmt::format("127.0.0.1:{}", port),
                                   "--log-level",
                                   "info",
                                   "--log-format",
                                   "json"};
  for (auto& a : target.AgentArgs()) args.push_back(a);
  RunningAgent agent;
  agent.log_file = fmt::format("{}/agent-{}-{}.log", dir_, target.Name(), run);
  agent.started = Steady::now();
  agent.started_wall = std::chrono::system_clock::now();
  ASSIGN_OR_RETURN(agent.process, AgentProcess::Start(args, agent.log_file));
  agent.http = std::make_unique<AgentHttp>(port);
  return agent;
}

Status Bench::WaitProgrammed(RunningAgent& agent, size_t routes) {
  auto start_deadline = DeadlineIn(std::chrono::seconds(s_.start_timeout_s));
  // Readiness by the agent's log line by default, which costs the agent nothing; polling
  // /readyz (--ready-signal http) makes its HTTP thread and, while not ready, its loop thread
  // answer every 10 ms, on the same two cores.
  bool by_log = s_.ready_signal == "log";
  while (true) {
    if (by_log ? ReadFile(agent.log_file).find(kProgrammedLogLine) != std::string::npos
               : agent.http->Ready())
      break;
    if (auto code = agent.process->Exited())
      return absl::InternalError(fmt::format("the agent exited with {} before it was ready:\n{}",
                                             *code, agent.process->LogTail()));
    if (Steady::now() > start_deadline)
      return AbortedStatus(fmt::format("waiting for the agent to program {} routes ({})", routes,
                                       Tail(agent.process->LogTail(), 3)));
    std::this_thread::sleep_for(std::chrono::milliseconds(by_log ? 2 : 10));
  }
  auto ready_at = Steady::now();
  // The line is written when the last op is acknowledged; /readyz must agree right after.
  auto ready_deadline = DeadlineIn(std::chrono::seconds(10));
  while (!agent.http->Ready()) {
    if (Steady::now() > ready_deadline)
      return absl::InternalError(
          "the agent logged that programming is complete, but /readyz does not say ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  agent.programmed_at = ready_at;
  return absl::OkStatus();
}

StatusOr<std::string> Bench::VerifyProgrammed(Target& target, AgentHttp& http,
                                              const RouteMap& expected) {
  // Ready means the dataplane acknowledged every op; check it against the dataplane itself and
  // the agent's own count.
  ASSIGN_OR_RETURN(std::string metrics, http.Metrics());
  auto programmed = MetricValue(metrics, "vcra_routes_programmed");
  ASSIGN_OR_RETURN(RouteMap owned, target.OwnedRoutes());
  if (owned != expected)
    return absl::InternalError(fmt::format("after start: the dataplane has {} routes, want {}: {}",
                                           owned.size(), expected.size(),
                                           DescribeDiff(expected, owned)));
  if (!programmed || *programmed != static_cast<double>(expected.size()))
    return absl::InternalError(fmt::format("the agent reports {} routes programmed, want {}",
                                           programmed.value_or(-1), expected.size()));
  return metrics;
}

StatusOr<RunResult> Bench::Run(Target& target, int run) {
  RunResult res;
  RouteMap expected = cluster_.ExpectedRoutes();
  res.routes = static_cast<double>(expected.size());
  RETURN_IF_ERROR(target.Prepare(run));
  if (!s_.etcdctl.empty()) {
    ASSIGN_OR_RETURN(res.reference_read_s, MeasureReferenceRead());
  }

  ASSIGN_OR_RETURN(RunningAgent agent, StartAgent(target, run));
  RETURN_IF_ERROR(WaitProgrammed(agent, expected.size()));
  res.start_s = Seconds(agent.programmed_at - agent.started);
  res.routes_per_s = static_cast<double>(expected.size()) / res.start_s;
  res.cpu_start_s = ReadProcStats(agent.process->pid()).cpu_seconds;
  ASSIGN_OR_RETURN(std::string metrics_before, VerifyProgrammed(target, *agent.http, expected));
  Log("{} run {}: {} routes programmed in {:.2f} s ({:.0f} routes/s)", target.Name(), run,
      expected.size(), res.start_s, res.routes_per_s);

  Cluster original = cluster_;
  auto updates = s_.duration_s > 0
                     ? MakeUpdates(cluster_, static_cast<int>(s_.duration_s * s_.update_rate),
                                   s_.blocks, 1000 + run, UpdateMix::kMovesOnly)
                     : MakeUpdates(cluster_, s_.updates, s_.blocks, 1000 + run);
  Status stream = StreamAndVerify(target, agent, metrics_before, updates, res);
  int code = StopAndReadPhases(agent, res);
  Status revert = Revert(original, updates);
  RETURN_IF_ERROR(stream);
  RETURN_IF_ERROR(revert);
  if (code != 0) Log("WARNING: the agent exited with {} on SIGTERM", code);

  RETURN_IF_ERROR(MeasureLowerBound(target, expected, res));
  target.Finish();
  Log("{} run {}: event->route p50 {:.2f} ms p99 {:.2f} ms; lower bound {:.3f} s (x{:.1f}); "
      "agent peak RSS {:.1f} MiB",
      target.Name(), run, res.p50_ms, res.p99_ms, res.lower_bound_s, res.ratio, res.rss_mib);
  return res;
}

Status Bench::StreamAndVerify(Target& target, RunningAgent& agent,
                              const std::string& metrics_before, const std::vector<Update>& updates,
                              RunResult& res) {
  RETURN_IF_ERROR(s_.stream == "open" && s_.duration_s == 0
                      ? StreamOpenLoop(target, agent, updates, res)
                      : StreamClosedLoop(target, agent, updates, res));
  if (!res.rss_samples.empty()) {
    res.rss_first_mib = res.rss_samples.front().second;
    res.rss_last_mib = res.rss_samples.back().second;
    res.rss_growth_pct = (res.rss_last_mib / res.rss_first_mib - 1) * 100;
  }
  auto scrape = Steady::now();
  ASSIGN_OR_RETURN(std::string metrics_after, agent.http->Metrics());
  res.metrics_ms = Seconds(Steady::now() - scrape) * 1000;
  res.hist_p50_ms = HistogramQuantileMs(metrics_before, metrics_after, 0.5).value_or(NAN);
  res.hist_p99_ms = HistogramQuantileMs(metrics_before, metrics_after, 0.99).value_or(NAN);
  RouteMap want = cluster_.ExpectedRoutes();
  ASSIGN_OR_RETURN(RouteMap now, target.OwnedRoutes());
  if (now != want)
    return absl::InternalError(fmt::format("after the updates: {}", DescribeDiff(want, now)));
  return absl::OkStatus();
}

int Bench::StopAndReadPhases(RunningAgent& agent, RunResult& res) {
  ProcStats proc = ReadProcStats(agent.process->pid());
  res.rss_mib = proc.vm_hwm_mib;
  res.rss_end_mib = proc.vm_rss_mib;
  res.cpu_total_s = proc.cpu_seconds;
  // Our keep-alive connection would hold the agent's HTTP server (its read timeout) on exit.
  agent.http.reset();
  auto stopping = Steady::now();
  int code = agent.process->Stop();
  double stop_s = Seconds(Steady::now() - stopping);
  if (stop_s > 2) Log("note: the agent took {:.1f} s to exit on SIGTERM", stop_s);
  std::string log = agent.process->Log();
  auto listed = LogTime(log, "etcd listing at revision");
  auto computed = LogTime(log, "first etcd listing complete");
  auto programmed_at = LogTime(log, kProgrammedLogLine);
  if (listed && computed && programmed_at) {
    res.fetch_s = Seconds(*listed - agent.started_wall);
    res.compute_s = Seconds(*computed - *listed);
    res.program_s = Seconds(*programmed_at - *computed);
  }
  return code;
}

Status Bench::MeasureLowerBound(Target& target, const RouteMap& expected, RunResult& res) {
  std::vector<net::Route> routes;
  routes.reserve(expected.size());
  for (const auto& [dst, gw] : expected) routes.push_back({dst, gw});
  std::sort(routes.begin(), routes.end(),
            [](const net::Route& a, const net::Route& b) { return a.dst < b.dst; });
  ASSIGN_OR_RETURN(res.bounds, target.LowerBounds(routes));
  res.lower_bound_s = INFINITY;
  for (const auto& [name, seconds] : res.bounds)
    res.lower_bound_s = std::min(res.lower_bound_s, seconds);
  res.lower_bound_rps = static_cast<double>(routes.size()) / res.lower_bound_s;
  res.ratio = res.start_s / res.lower_bound_s;
  res.program_ratio = res.program_s / res.lower_bound_s;
  res.full_sync_ratio = res.start_s / (res.reference_read_s + res.lower_bound_s);
  return absl::OkStatus();
}

void Bench::SampleRss(RunningAgent& agent, Steady::duration every, RunResult& res) {
  double since = Seconds(Steady::now() - agent.programmed_at);
  if (!res.rss_samples.empty() && since - res.rss_samples.back().first < Seconds(every)) return;
  res.rss_samples.emplace_back(since, ReadProcStats(agent.process->pid()).vm_rss_mib);
  // A long churn also logs each sample, so that a run cut short still leaves its figures.
  if (s_.duration_s > 0)
    Log("RSS after {:.0f} s: {:.1f} MiB", since, res.rss_samples.back().second);
}

Status Bench::StreamClosedLoop(Target& target, RunningAgent& agent,
                               const std::vector<Update>& updates, RunResult& res) {
  if (updates.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(target.StartWatching());
  ASSIGN_OR_RETURN(auto client, datastore::EtcdClient::Create(etcd_.ClientConfig()));
  std::vector<double> latencies, puts;
  auto interval = std::chrono::duration_cast<Steady::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.001, s_.update_rate)));
  auto next = Steady::now();
  // A churn run samples the RSS 30 times; a short stream only at its start and end.
  auto sample_every = s_.duration_s > 0 ? std::chrono::seconds(std::max(1, s_.duration_s / 30))
                                        : std::chrono::seconds(86400);
  auto first = Steady::now();
  SampleRss(agent, sample_every, res);
  for (const Update& up : updates) {
    if (Aborted()) return AbortedStatus("update stream");
    SampleRss(agent, sample_every, res);
    auto now = Steady::now();
    if (next > now) SleepFor(std::chrono::duration_cast<std::chrono::microseconds>(next - now));
    next = std::max(next + interval, Steady::now());
    cluster_.blocks[up.index] = up.state;
    auto issued = Steady::now();
    RETURN_IF_ERROR(
        client->Put(calico::BlockKey(BlockCidr(up.index)), cluster_.Encode(up.index)).status());
    auto put_done = Steady::now();
    ASSIGN_OR_RETURN(auto seen,
                     target.WaitVisible(up.expect, issued, DeadlineIn(std::chrono::seconds(10))));
    puts.push_back(Seconds(put_done - issued) * 1000);
    latencies.push_back(std::max(0.0, Seconds(seen - put_done) * 1000));
  }
  res.stream_rate = static_cast<double>(updates.size()) / Seconds(Steady::now() - first);
  res.rss_samples.emplace_back(Seconds(Steady::now() - agent.programmed_at),
                               ReadProcStats(agent.process->pid()).vm_rss_mib);
  res.p50_ms = Percentile(latencies, 0.5);
  res.p99_ms = Percentile(latencies, 0.99);
  res.max_ms = Percentile(latencies, 1.0);
  res.put_p50_ms = Percentile(puts, 0.5);
  return absl::OkStatus();
}

Status Bench::StreamOpenLoop(Target& target, RunningAgent& agent,
                             const std::vector<Update>& updates, RunResult& res) {
  if (updates.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(target.StartWatching());
  for (const Update& up : updates) cluster_.blocks[up.index] = up.state;
  // Writers Put on a fixed schedule (update i at t0 + i / rate) and never wait for a route:
  // several of them, since one Put (an fsync) takes longer than the interval at 1000/s.
  OpenLoopWriters writers(etcd_.ClientConfig(), cluster_, updates, s_.update_rate, s_.writers);
  size_t n = updates.size();
  std::vector<double> latencies(n, NAN);
  size_t seen = 0, oldest_unseen = 0;
  SampleRss(agent, std::chrono::seconds(86400), res);
  auto give_up = writers.end_of_schedule() + std::chrono::seconds(10);
  Status st;
  while (seen < n && st.ok()) {
    if (Aborted()) {
      st = AbortedStatus("open-loop stream");
    } else if (Steady::now() > give_up) {
      st = absl::DeadlineExceededError(
          fmt::format("open-loop stream: {} of {} changes never became visible", n - seen, n));
    } else {
      st = writers.error();
    }
    if (st.ok()) st = target.Pump();
    // Which of the written changes became visible, and when.
    for (size_t i = oldest_unseen; i < n && st.ok() && writers.Started(i); ++i) {
      if (!writers.Written(i) || !std::isnan(latencies[i])) continue;
      if (auto t = target.PollVisible(updates[i].expect, writers.issued(i))) {
        latencies[i] = std::max(0.0, Seconds(*t - writers.put_done(i)) * 1000);
        ++seen;
      }
    }
    while (oldest_unseen < n && !std::isnan(latencies[oldest_unseen])) ++oldest_unseen;
  }
  writers.Stop();
  RETURN_IF_ERROR(st);
  std::vector<double> puts;
  for (size_t i = 0; i < n; ++i)
    puts.push_back(Seconds(writers.put_done(i) - writers.issued(i)) * 1000);
  res.stream_rate =
      static_cast<double>(n) / std::max(1e-9, Seconds(writers.issued(n - 1) - writers.issued(0)));
  res.rss_samples.emplace_back(Seconds(Steady::now() - agent.programmed_at),
                               ReadProcStats(agent.process->pid()).vm_rss_mib);
  res.p50_ms = Percentile(latencies, 0.5);
  res.p99_ms = Percentile(latencies, 0.99);
  res.max_ms = Percentile(latencies, 1.0);
  res.put_p50_ms = Percentile(puts, 0.5);
  return absl::OkStatus();
}

Status Bench::Revert(const Cluster& original, const std::vector<Update>& updates) {
  std::set<int> touched;
  for (const auto& up : updates) touched.insert(up.index);
  std::vector<EtcdOp> ops;
  for (int index : touched) {
    if (original.blocks.contains(index)) {
      ops.emplace_back(calico::BlockKey(BlockCidr(index)), original.Encode(index));
    } else {
      ops.emplace_back(calico::BlockKey(BlockCidr(index)), std::nullopt);
    }
  }
  cluster_ = original;
  bool was = g_interrupted.exchange(false);  // cleanup runs even when interrupted
  Status st = WriteAll(etcd_.ClientConfig(), ops, s_.writers);
  g_interrupted = was || g_interrupted;
  return st;
}

}  // namespace vcra::bench
