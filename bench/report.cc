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

void PrintReport(const Settings& s, const std::string& command, const Cluster& cluster,
                 const DataplaneResults& results,
                 const std::vector<std::string>& lower_bound_names) {
  size_t routes = cluster.ExpectedRoutes().size();
  std::printf("### vcra-bench results\n\n");
  std::printf("- command: `%s`\n", command.c_str());
  std::printf("- machine: %s\n", MachineLine().c_str());
  std::printf(
      "- cluster: %d hosts, %d /26 blocks (%zu borrowed IPs; block values %zu bytes on average), "
      "%zu routes for the agent's host; %d updates (block moves and creations, one at a time, at "
      "most %.0f/s)\n",
      s.hosts, s.blocks, cluster.BorrowedCount(), cluster.MeanBlockBytes(), routes, s.updates,
      s.update_rate);
  int runs = 0;
  for (const auto& [name, r] : results) runs = std::max<int>(runs, static_cast<int>(r.size()));
  std::printf(
      "- %d run(s) per dataplane; cells are the median [min – max]; \"programmed\" seen by %s\n\n",
      runs,
      s.ready_signal == "log" ? "the agent's \"initial programming complete\" log line"
                              : "polling /readyz every 10 ms");

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
  std::printf("| lower bound: what |");
  for (const auto& n : lower_bound_names) std::printf(" %s |", n.c_str());
  std::printf("\n");
  row("lower bound: same routes (s)", &RunResult::lower_bound_s, 3);
  row("lower bound routes/s", &RunResult::lower_bound_rps, 0);
  row("**ratio agent ÷ lower bound** (whole start, time)", &RunResult::ratio, 1);
  row("ratio of the programming phase alone ÷ lower bound", &RunResult::program_ratio, 2);
  row("event → route p50, Put returned → route visible (ms)", &RunResult::p50_ms, 2);
  row("event → route p99 (ms)", &RunResult::p99_ms, 2);
  row("event → route max (ms)", &RunResult::max_ms, 2);
  row("agent's histogram p50, bucket bound (ms)", &RunResult::hist_p50_ms, 1);
  row("agent's histogram p99, bucket bound (ms)", &RunResult::hist_p99_ms, 1);
  row("etcd Put p50 (ms, not included above)", &RunResult::put_p50_ms, 2);
  row("agent peak RSS, VmHWM of its process (MiB)", &RunResult::rss_mib, 1);
  row("agent RSS at the end of the run, VmRSS (MiB)", &RunResult::rss_end_mib, 1);
  row("agent CPU user+sys, start → ready (s)", &RunResult::cpu_start_s, 2);
  row("agent CPU user+sys, whole run (s)", &RunResult::cpu_total_s, 2);
  row("one GET /metrics after the run (ms)", &RunResult::metrics_ms, 1);
  std::fflush(stdout);
}

}  // namespace vcra::bench
