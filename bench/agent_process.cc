#include "bench/agent_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "bench/bench_util.h"
#include "tests/support/child_process.h"

namespace vcra::bench {

StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(const std::vector<std::string>& args,
                                                            const std::string& log_file) {
  ASSIGN_OR_RETURN(pid_t pid, testing::SpawnChild(args, log_file, /*own_process_group=*/false));
  return std::unique_ptr<AgentProcess>(new AgentProcess(pid, log_file));
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Stop();
}

std::optional<int> AgentProcess::Exited() {
  if (pid_ <= 0) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return exit_code_;
}

int AgentProcess::Stop() {
  if (pid_ <= 0) return exit_code_.value_or(-1);
  kill(pid_, SIGTERM);
  exit_code_ = WaitProcess(pid_, Steady::now() + std::chrono::seconds(10));
  pid_ = -1;
  return *exit_code_;
}

std::string AgentProcess::LogTail(int lines) const { return Tail(ReadFile(log_file_), lines); }
std::string AgentProcess::Log() const { return ReadFile(log_file_); }

AgentHttp::AgentHttp(int port) : client_("127.0.0.1", port) {
  client_.set_connection_timeout(0, 200000);
  client_.set_read_timeout(10, 0);
  client_.set_keep_alive(true);
}

bool AgentHttp::Ready() {
  auto res = client_.Get("/readyz");
  return res && res->status == 200;
}

StatusOr<std::string> AgentHttp::Metrics() {
  auto res = client_.Get("/metrics");
  if (!res) return absl::UnavailableError("GET /metrics: " + httplib::to_string(res.error()));
  if (res->status != 200) return absl::UnavailableError(fmt::format("/metrics: {}", res->status));
  return res->body;
}

std::optional<double> MetricValue(const std::string& metrics, const std::string& name) {
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ')
      return std::strtod(line.c_str() + name.size() + 1, nullptr);
  }
  return std::nullopt;
}

double MetricSum(const std::string& metrics, const std::string& name, const std::string& labels) {
  std::istringstream in(metrics);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.size() <= name.size() || line.compare(0, name.size(), name) != 0) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos || line.find(labels) >= space) continue;
    sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

namespace {

// Cumulative buckets of vcra_event_to_route_seconds: (le, count), in exposition order.
std::vector<std::pair<std::string, double>> HistogramBuckets(const std::string& metrics) {
  static const std::string kPrefix = "vcra_event_to_route_seconds_bucket{le=\"";
  std::vector<std::pair<std::string, double>> out;
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    auto quote = line.find('"', kPrefix.size());
    auto space = line.rfind(' ');
    if (quote == std::string::npos || space == std::string::npos) continue;
    out.emplace_back(line.substr(kPrefix.size(), quote - kPrefix.size()),
                     std::strtod(line.c_str() + space + 1, nullptr));
  }
  return out;
}

}  // namespace

std::optional<double> HistogramQuantileMs(const std::string& before, const std::string& after,
                                          double q) {
  auto b = HistogramBuckets(before);
  auto a = HistogramBuckets(after);
  if (a.empty() || a.size() != b.size()) return std::nullopt;
  double total = a.back().second - b.back().second;
  if (total <= 0) return std::nullopt;
  double rank = std::ceil(q * total);
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].second - b[i].second >= rank) {
      if (a[i].first == "+Inf") return INFINITY;
      return std::strtod(a[i].first.c_str(), nullptr) * 1000.0;
    }
  }
  return INFINITY;
}

std::optional<std::chrono::system_clock::time_point> LogTime(const std::string& log,
                                                             const std::string& needle) {
  auto pos = log.find(needle);
  if (pos == std::string::npos) return std::nullopt;
  auto line_start = log.rfind('\n', pos);
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  auto t = log.find("\"time\":\"", line_start);
  if (t == std::string::npos || t > pos) return std::nullopt;
  std::tm tm{};
  long micros = 0;
  if (std::sscanf(log.c_str() + t + 8, "%d-%d-%dT%d:%d:%d.%ld", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
}

}  // namespace vcra::bench
