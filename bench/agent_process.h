// The agent under test as a child process, and what the benchmark reads from it: its HTTP
// endpoint (/readyz, /metrics), its Prometheus metrics and the timestamps of its JSON log.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace vcra::bench {

class AgentProcess {
 public:
  static StatusOr<std::unique_ptr<AgentProcess>> Start(const std::vector<std::string>& args,
                                                       const std::string& log_file);
  ~AgentProcess();
  pid_t pid() const { return pid_; }
  // The exit code once the process has exited on its own.
  std::optional<int> Exited();
  // SIGTERM (the agent leaves its routes in place and exits), SIGKILL after 10 s.
  int Stop();
  std::string LogTail(int lines = 25) const;
  std::string Log() const;

 private:
  AgentProcess(pid_t pid, std::string log_file) : pid_(pid), log_file_(std::move(log_file)) {}
  pid_t pid_;
  std::string log_file_;
  std::optional<int> exit_code_;
};

class AgentHttp {
 public:
  explicit AgentHttp(int port);
  bool Ready();
  StatusOr<std::string> Metrics();

 private:
  httplib::Client client_;
};

// The value of an unlabelled sample `name` in a Prometheus exposition.
std::optional<double> MetricValue(const std::string& metrics, const std::string& name);
// The sum of every sample of `name`, labelled or not.
double MetricSum(const std::string& metrics, const std::string& name,
                 const std::string& labels = "");

// Quantile (bucket upper bound, ms) of vcra_event_to_route_seconds observations between two
// scrapes; +inf past the last finite bucket, nullopt without observations.
std::optional<double> HistogramQuantileMs(const std::string& before, const std::string& after,
                                          double q);

// The time of the first JSON log line (the agent's --log-format json) whose message contains
// `needle`.
std::optional<std::chrono::system_clock::time_point> LogTime(const std::string& log,
                                                             const std::string& needle);

// The agent's log line once the dataplane acknowledged every op of the first listing.
inline constexpr const char* kProgrammedLogLine = "initial programming complete";

}  // namespace vcra::bench
