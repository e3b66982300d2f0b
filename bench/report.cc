#include "bench/report.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#ifndef VCRA_BENCH_BUILD_TYPE
#define VCRA_BENCH_BUILD_TYPE "unknown"
#endif

namespace vcra::bench {

Summary Summarize(std::vector<double> values) {
  std::vector<double> v;
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

std::string Num(double x, int digits) {
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return "inf";
  return fmt::format("{:.{}f}", x, digits);
}

std::string Cell(const std::vector<double>& values, int digits) {
  if (values.empty()) return "-";
  Summary s = Summarize(values);
  if (std::isnan(s.median)) return "n/a";
  if (values.size() == 1) return Num(s.median, digits);
  return fmt::format("{} [{} – {}]", Num(s.median, digits), Num(s.min, digits), Num(s.max, digits));
}

namespace {

std::vector<double> Column(const std::vector<RunResult>& runs, double RunResult::*field) {
  std::vector<double> v;
  for (const auto& r : runs) v.push_back(r.*field);
  return v;
}

}  // namespace

std::string MachineLine() {
  utsname u{};
  uname(&u);
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  return fmt::format("{} CPUs ({}), Linux {}, build {}", std::thread::hardware_concurrency(), cpu,
                     u.release, VCRA_BENCH_BUILD_TYPE);
}

namespace {

void PrintHeader(const Settings& s, const std::string& command, const Cluster& cluster,
                 const DataplaneResults& results) {
  size_t routes = cluster.ExpectedRoutes().size();
  std::printf("### vcra-bench results\n\n");
  std::printf("- command: `%s`\n", command.c_str());
  std::printf("- machine: %s\n", MachineLine().c_str());
  std::string stream =
      s.duration_s > 0 ? fmt::format("churn for {} s: block moves, one at a time, at most {:.0f}/s",
                                     s.duration_s, s.update_rate)
      : s.stream == "open"
          ? fmt::format(
                "{} updates (block moves and creations) OPEN loop at {:.0f}/s, "
                "{} writers, never waiting for routes",
                s.updates, s.update_rate, s.writers)
          : fmt::format("{} updates (block moves and creations, one at a time, at most {:.0f}/s)",
                        s.updates, s.update_rate);
  std::printf(
      "- cluster: %d hosts, %d /26 blocks, %s shape (%zu borrowed IPs; block values %zu bytes "
      "on average, median %zu), %zu routes for the agent's host; %s\n",
      s.hosts, s.blocks, s.shape == BlockShape::kRealistic ? "realistic" : "compact",
      cluster.BorrowedCount(), cluster.MeanBlockBytes(), cluster.MedianBlockBytes(), routes,
      stream.c_str());
  int runs = 0;
  for (const auto& [name, r] : results) runs = std::max<int>(runs, static_cast<int>(r.size()));
  std::printf(
      "- %d run(s) per dataplane, interleaved; cells are the median [min – max]; \"programmed\" "
      "seen by %s\n\n",
      runs,
      s.ready_signal == "log" ? "the agent's \"initial programming complete\" log line"
                              : "polling /readyz every 10 ms");
}

// One row per lower bound any run measured (by name).
void PrintBoundRows(const DataplaneResults& results) {
  std::vector<std::string> names;
  for (const auto& [dp, runs] : results)
    for (const auto& r : runs)
      for (const auto& [name, seconds] : r.bounds)
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  for (const auto& name : names) {
    std::printf("| … lower bound: %s (s) |", name.c_str());
    for (const auto& [dp, runs] : results) {
      std::vector<double> v;
      for (const auto& r : runs)
        for (const auto& [n, seconds] : r.bounds)
          if (n == name) v.push_back(seconds);
      std::printf(" %s |", v.empty() ? "-" : Cell(v, 3).c_str());
    }
    std::printf("\n");
  }
}

void PrintRssSamples(const DataplaneResults& results) {
  for (const auto& [name, runs] : results) {
    if (runs.empty() || runs[0].rss_samples.size() < 3) continue;
    std::printf("\nRSS of the agent during the churn, %s, run 1 (seconds after programmed: MiB):",
                name.c_str());
    for (const auto& [t, mib] : runs[0].rss_samples) std::printf(" %.0f: %.1f;", t, mib);
    std::printf("\n");
  }
}

}  // namespace

void PrintReport(const Settings& s, const std::string& command, const Cluster& cluster,
                 const DataplaneResults& results,
                 const std::vector<std::string>& lower_bound_names) {
  PrintHeader(s, command, cluster, results);
  std::printf("| metric |");
  for (const auto& [name, r] : results)
    std::printf(" %s |", name == "vpp" ? "vpp (simulator)" : name.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < results.size(); ++i) std::printf("---|");
  std::printf("\n");
  auto row = [&](const char* label, double RunResult::*field, int digits) {
    std::printf("| %s |", label);
    for (const auto& [name, r] : results)
      std::printf(" %s |", Cell(Column(r, field), digits).c_str());
    std::printf("\n");
  };
  row("routes programmed at start", &RunResult::routes, 0);
  row("agent start → all routes programmed (s)", &RunResult::start_s, 2);
  row("… start → etcd listing received (s)", &RunResult::fetch_s, 2);
  row("… → routes calculated (s)", &RunResult::compute_s, 2);
  row("… → last route acknowledged (s)", &RunResult::program_s, 2);
  row("agent routes/s (routes ÷ start time)", &RunResult::routes_per_s, 0);
  row("reference read: `etcdctl get --prefix` of the same keys to /dev/null (s)",
      &RunResult::reference_read_s, 3);
  std::printf("| lower bound: what |");
  for (const auto& n : lower_bound_names) std::printf(" %s |", n.c_str());
  std::printf("\n");
  PrintBoundRows(results);
  row("lower bound: the fastest (s)", &RunResult::lower_bound_s, 3);
  row("lower bound routes/s", &RunResult::lower_bound_rps, 0);
  row("**full sync ratio: start ÷ (reference read + lower bound)** (target ≤ 1.3)",
      &RunResult::full_sync_ratio, 2);
  row("ratio start ÷ lower bound alone", &RunResult::ratio, 1);
  row("ratio of the programming phase alone ÷ lower bound", &RunResult::program_ratio, 2);
  row("start with --growth-from blocks (s)", &RunResult::growth_small_start_s, 2);
  row("**growth ratio: start ÷ start with --growth-from blocks**", &RunResult::growth_ratio, 1);
  row("updates written per second (achieved)", &RunResult::stream_rate, 0);
  row("event → route p50, Put returned → route visible (ms)", &RunResult::p50_ms, 2);
  row("**event → route p99 (ms)**", &RunResult::p99_ms, 2);
  row("event → route max (ms)", &RunResult::max_ms, 2);
  row("agent's histogram p50, bucket bound (ms)", &RunResult::hist_p50_ms, 1);
  row("agent's histogram p99, bucket bound (ms)", &RunResult::hist_p99_ms, 1);
  row("etcd Put p50 (ms, not included above)", &RunResult::put_p50_ms, 2);
  row("**agent peak RSS, VmHWM of its process (MiB)**", &RunResult::rss_mib, 1);
  row("agent RSS at the end of the run, VmRSS (MiB)", &RunResult::rss_end_mib, 1);
  row("agent RSS when the updates start (MiB)", &RunResult::rss_first_mib, 1);
  row("agent RSS when the updates end (MiB)", &RunResult::rss_last_mib, 1);
  row("**RSS growth over the updates (%)**", &RunResult::rss_growth_pct, 1);
  row("agent CPU user+sys, start → ready (s)", &RunResult::cpu_start_s, 2);
  row("agent CPU user+sys, whole run (s)", &RunResult::cpu_total_s, 2);
  row("one GET /metrics after the run (ms)", &RunResult::metrics_ms, 1);
  PrintRssSamples(results);
  std::fflush(stdout);
}

}  // namespace vcra::bench
