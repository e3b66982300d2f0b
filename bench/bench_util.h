// Shared plumbing of vcra-bench: time limits and interruption, logging, files, child processes,
// /proc statistics. Nothing here knows about Calico or a dataplane.
#pragma once

#include <fmt/format.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "net/ip.h"

namespace vcra::bench {

using Steady = std::chrono::steady_clock;
using RouteMap = std::unordered_map<net::IpPrefix, net::IpAddress>;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkipped = 77;

// Set by SIGINT/SIGTERM; every loop of the benchmark checks it through Aborted().
extern std::atomic<bool> g_interrupted;
// The overall --timeout.
extern Steady::time_point g_deadline;

bool Aborted();
// The earlier of `timeout` from now and the overall deadline.
Steady::time_point DeadlineIn(std::chrono::milliseconds timeout);
double Seconds(Steady::duration d);
// Sleeps in short steps so that an interrupt or the overall deadline cuts it short.
void SleepFor(std::chrono::microseconds d);
Status AbortedStatus(std::string_view what);

void LogLine(const std::string& message);
template <typename... Args>
void Log(fmt::format_string<Args...> format, Args&&... args) {
  LogLine(fmt::format(format, std::forward<Args>(args)...));
}

std::string ReadFile(const std::string& path);
// The last `lines` lines of `text`.
std::string Tail(const std::string& text, int lines);
// Quantile q (0..1) of `v` by rank (the smallest value with at least q of the values at or
// below it); NaN when empty.
double Percentile(std::vector<double> v, double q);

// A temporary directory removed with everything in it when this goes out of scope.
class TempDir {
 public:
  static StatusOr<std::unique_ptr<TempDir>> Make(const std::string& tag);
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The path of a system tool (/usr/sbin, /sbin, /usr/bin, /bin), or empty. Checked before any
// fork so that the child only execs.
std::string FindTool(const std::string& name);
// The directory of this executable, where the benchmark's helper tools are built.
std::string OwnDirectory();
// Waits for `pid` until `deadline`; SIGKILL after it. Returns the exit code (128+sig if killed).
int WaitProcess(pid_t pid, Steady::time_point deadline);
// Runs a command to completion (bounded by `timeout`); output to `log_file` or /dev/null.
StatusOr<int> RunCommand(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::string& log_file = "");
// RunCommand, and an error unless it exits with 0.
Status RunChecked(const std::vector<std::string>& args);

struct ProcStats {
  double vm_hwm_mib = 0;  // peak resident set size
  double vm_rss_mib = 0;
  double cpu_seconds = 0;  // user + system
};
ProcStats ReadProcStats(pid_t pid);

StatusOr<int> FreeLoopbackPort();

}  // namespace vcra::bench
