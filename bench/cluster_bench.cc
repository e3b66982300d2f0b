// vcra-bench: the performance benchmark of SPEC.md section 3 (docs/performance.md shows results).
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
// Exit codes: 0 all requested dataplanes measured and every route verified; 1 failure;
// 2 bad flags; 77 something requested was skipped (no root for linux, no etcd), loudly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "calico/model.h"
#include "common/log.h"
#include "common/status.h"
#include "dataplane/vpp/sim/vpp_sim.h"
#include "dataplane/vpp/vpp_client.h"
#include "dataplane/vpp/wire.h"
#include "datastore/etcd_client.h"
#include "net/ip.h"
#include "tests/support/child_process.h"
#include "tests/support/etcd_server.h"

#ifndef VCRA_AGENT_BINARY
#define VCRA_AGENT_BINARY "vpp-calico-route-agent"
#endif
#ifndef VCRA_BENCH_BUILD_TYPE
#define VCRA_BENCH_BUILD_TYPE "unknown"
#endif

namespace vcra::bench {
namespace {

using Steady = std::chrono::steady_clock;
using RouteMap = std::unordered_map<net::IpPrefix, net::IpAddress>;
namespace vpp = dataplane::vpp;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkipped = 77;

// The agent's own rtnetlink protocol and the one the lower bound uses, so the two never mix.
constexpr uint8_t kAgentProtocol = 212;
constexpr uint8_t kLowerBoundProtocol = 213;
constexpr const char* kUplink = "uplink0";
constexpr const char* kUplinkPeer = "uplink0-peer";
constexpr const char* kVppUplink = "host-eth0";  // the simulator's uplink, sw_if_index 1
constexpr uint32_t kVppUplinkIndex = 1;
constexpr const char* kFibSourceName = "vpp-calico-route-agent";
// Peers live on 10.255.0.0/16 (host k is 10.255.0.0 + k + 1; the agent's host is k = 0 with
// 10.255.0.1/16 on its uplink); blocks are /26s from 10.0.0.0 up to 10.254.255.255.
constexpr uint32_t kPeerBase = 0x0AFF0000;
constexpr uint32_t kBlockBase = 0x0A000000;
constexpr int kMaxBlockIndex = 255 * 1024;  // 10.0.0.0 - 10.254.255.255 in /26s

// ---------------------------------------------------------------------------------------------
// Time, interruption, logging

std::atomic<bool> g_interrupted{false};
Steady::time_point g_deadline = Steady::time_point::max();

void OnSignal(int) { g_interrupted = true; }

bool Aborted() { return g_interrupted.load() || Steady::now() > g_deadline; }

// The earlier of `timeout` from now and the overall deadline.
Steady::time_point DeadlineIn(std::chrono::milliseconds timeout) {
  return std::min(Steady::now() + timeout, g_deadline);
}

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

template <typename... Args>
void Log(fmt::format_string<Args...> format, Args&&... args) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::fprintf(stderr, "[bench %s] %s\n", stamp,
               fmt::format(format, std::forward<Args>(args)...).c_str());
  std::fflush(stderr);
}

// Sleeps in short steps so that an interrupt or the overall deadline cuts it short.
void SleepFor(std::chrono::microseconds d) {
  auto until = Steady::now() + d;
  while (!Aborted()) {
    auto left = until - Steady::now();
    if (left <= Steady::duration::zero()) return;
    std::this_thread::sleep_for(std::min<Steady::duration>(left, std::chrono::milliseconds(50)));
  }
}

Status AbortedStatus(std::string_view what) {
  return g_interrupted ? absl::CancelledError(fmt::format("{}: interrupted", what))
                       : absl::DeadlineExceededError(fmt::format("{}: timed out", what));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, int lines) {
  std::vector<std::string> all;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

// A temporary directory removed with everything in it when this goes out of scope.
class TempDir {
 public:
  static StatusOr<std::unique_ptr<TempDir>> Make(const std::string& tag) {
    std::string pattern = "/tmp/vcra-bench-" + tag + "-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr)
      return absl::InternalError(fmt::format("mkdtemp: {}", std::strerror(errno)));
    return std::unique_ptr<TempDir>(new TempDir(pattern));
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// Child processes

// The path of a tool, or empty. Checked before any fork so that the child only execs.
std::string FindTool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = std::string(dir) + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// Waits for `pid` until `deadline`; SIGKILL after it. Returns the exit code (128+sig if killed).
int WaitProcess(pid_t pid, Steady::time_point deadline) {
  int status = 0;
  std::chrono::microseconds step(50);
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (Steady::now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    // Fine-grained at first, since short commands (ip -batch) are timed through this.
    std::this_thread::sleep_for(step);
    step = std::min(step * 2, std::chrono::microseconds(1000));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs a command to completion (bounded by `timeout`); output to `log_file` or /dev/null.
StatusOr<int> RunCommand(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::string& log_file = "") {
  ASSIGN_OR_RETURN(pid_t pid, testing::SpawnChild(args, log_file, /*own_process_group=*/false));
  // The whole timeout even past the overall deadline: a command is short, and cut-off setup or
  // cleanup would leave things half done.
  return WaitProcess(pid, Steady::now() + timeout);
}

Status RunChecked(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(int rc, RunCommand(args));
  if (rc != 0)
    return absl::InternalError(fmt::format("`{}` exited with {}", fmt::join(args, " "), rc));
  return absl::OkStatus();
}

struct ProcStats {
  double vm_hwm_mib = 0;  // peak resident set size
  double vm_rss_mib = 0;
  double cpu_seconds = 0;  // user + system
};

ProcStats ReadProcStats(pid_t pid) {
  ProcStats s;
  std::string status = ReadFile(fmt::format("/proc/{}/status", pid));
  auto field = [&](const char* name) {
    auto pos = status.find(name);
    if (pos == std::string::npos) return 0.0;
    return std::strtod(status.c_str() + pos + std::strlen(name), nullptr) / 1024.0;  // kB
  };
  s.vm_hwm_mib = field("VmHWM:");
  s.vm_rss_mib = field("VmRSS:");
  // /proc/<pid>/stat: fields after the ")" of the command name; utime and stime are 14 and 15.
  std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  auto close_paren = stat.rfind(')');
  if (close_paren != std::string::npos) {
    std::istringstream in(stat.substr(close_paren + 2));
    std::vector<std::string> f;
    std::string x;
    while (in >> x) f.push_back(x);
    // f[0] is field 3 (state): utime is field 14 -> f[11], stime f[12].
    if (f.size() > 12) {
      double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      s.cpu_seconds =
          (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / ticks;
    }
  }
  return s;
}

// The agent under test, as its own process.
class AgentProcess {
 public:
  static StatusOr<std::unique_ptr<AgentProcess>> Start(const std::vector<std::string>& args,
                                                       const std::string& log_file) {
    ASSIGN_OR_RETURN(pid_t pid, testing::SpawnChild(args, log_file, /*own_process_group=*/false));
    return std::unique_ptr<AgentProcess>(new AgentProcess(pid, log_file));
  }
  ~AgentProcess() {
    if (pid_ > 0) Stop();
  }
  pid_t pid() const { return pid_; }
  // True (with the code) once the process has exited on its own.
  std::optional<int> Exited() {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }
  // SIGTERM (the agent leaves its routes in place and exits), SIGKILL after 10 s.
  int Stop() {
    if (pid_ <= 0) return exit_code_.value_or(-1);
    kill(pid_, SIGTERM);
    exit_code_ = WaitProcess(pid_, Steady::now() + std::chrono::seconds(10));
    pid_ = -1;
    return *exit_code_;
  }
  std::string LogTail(int lines = 25) const { return Tail(ReadFile(log_file_), lines); }
  std::string Log() const { return ReadFile(log_file_); }

 private:
  AgentProcess(pid_t pid, std::string log_file) : pid_(pid), log_file_(std::move(log_file)) {}
  pid_t pid_;
  std::string log_file_;
  std::optional<int> exit_code_;
};

StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return absl::InternalError(fmt::format("bind 127.0.0.1:0: {}", strerror(errno)));
  }
  close(fd);
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------------------------
// The agent's HTTP endpoint

class AgentHttp {
 public:
  explicit AgentHttp(int port) : client_("127.0.0.1", port) {
    client_.set_connection_timeout(0, 200000);
    client_.set_read_timeout(10, 0);
    client_.set_keep_alive(true);
  }
  bool Ready() {
    auto res = client_.Get("/readyz");
    return res && res->status == 200;
  }
  StatusOr<std::string> Metrics() {
    auto res = client_.Get("/metrics");
    if (!res) return absl::UnavailableError("GET /metrics: " + httplib::to_string(res.error()));
    if (res->status != 200) return absl::UnavailableError(fmt::format("/metrics: {}", res->status));
    return res->body;
  }

 private:
  httplib::Client client_;
};

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

// Quantile (bucket upper bound, ms) of the observations between two scrapes; +inf past the last
// finite bucket, nullopt without observations.
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

// ---------------------------------------------------------------------------------------------
// The cluster

// The time of the first JSON log line (the agent's --log-format json) whose message contains
// `needle`.
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

std::string HostName(int k) { return fmt::format("bench-host-{}", k); }
net::IpAddress PeerAddress(int k) { return net::IpAddress::V4(kPeerBase + 1 + k); }
net::IpPrefix BlockCidr(int index) {
  return net::IpPrefix(net::IpAddress::V4(kBlockBase + 64u * static_cast<uint32_t>(index)), 26);
}

struct BlockState {
  int host = 0;
  std::vector<std::pair<uint32_t, int>> allocations;  // ordinal -> owning host
  bool HasBorrowed() const {
    return std::any_of(allocations.begin(), allocations.end(),
                       [&](const auto& a) { return a.second != host; });
  }
};

// The benchmark's model of what is in etcd, and the routes the agent of host 0 must program
// (SPEC "Routes": a block of another host via that host; an IP owned by a node other than the
// block's host and other than us as a /32 via that node).
struct Cluster {
  int hosts = 0;
  std::map<int, BlockState> blocks;  // block index -> state

  static Cluster Make(int hosts, int blocks) {
    Cluster c;
    c.hosts = hosts;
    for (int i = 0; i < blocks; ++i) {
      BlockState b;
      b.host = i % hosts;
      // A few workloads of the block's own host (no routes, but realistic JSON to decode).
      for (uint32_t ord = 0; ord < static_cast<uint32_t>(1 + i % 8); ++ord)
        b.allocations.emplace_back(ord, b.host);
      // About 3 borrowed IPs per 100 blocks: an IP of this block used by another host.
      int r = i % 100;
      if (hosts > 1 && (r == 17 || r == 50 || r == 83)) {
        int borrower = (b.host + 1 + (i / 100) % (hosts - 1)) % hosts;
        if (borrower != b.host) b.allocations.emplace_back(63, borrower);
      }
      c.blocks[i] = std::move(b);
    }
    return c;
  }

  std::string Encode(int index) const {
    const BlockState& s = blocks.at(index);
    calico::IpamBlock b;
    b.cidr = BlockCidr(index);
    b.affinity_type = calico::AffinityType::kHost;
    b.affinity_name = HostName(s.host);
    b.sequence_number = 1772359200000000007ull + static_cast<uint64_t>(index);
    for (const auto& [ord, owner] : s.allocations)
      b.allocations.push_back({ord, b.cidr.address().Plus(ord), HostName(owner)});
    return calico::EncodeBlock(b);
  }

  RouteMap ExpectedRoutes() const {
    RouteMap out;
    for (const auto& [index, b] : blocks) {
      net::IpPrefix cidr = BlockCidr(index);
      if (b.host != 0) out[cidr] = PeerAddress(b.host);
      for (const auto& [ord, owner] : b.allocations) {
        if (owner != b.host && owner != 0)
          out[net::IpPrefix::Host(cidr.address().Plus(ord))] = PeerAddress(owner);
      }
    }
    return out;
  }

  // Mean size of a block's etcd value (what the agent reads and keeps), over the first 1000.
  size_t MeanBlockBytes() const {
    size_t n = 0, bytes = 0;
    for (const auto& [index, b] : blocks) {
      if (n++ == 1000) break;
      bytes += Encode(index).size();
    }
    return n ? bytes / std::min<size_t>(n, 1000) : 0;
  }

  size_t BorrowedCount() const {
    size_t n = 0;
    for (const auto& [index, b] : blocks)
      for (const auto& [ord, owner] : b.allocations) n += owner != b.host;
    return n;
  }
};

// A key and its new value (nullopt: delete).
using EtcdOp = std::pair<std::string, std::optional<std::string>>;

// Writes `ops` with `writers` threads, each with its own client.
Status WriteAll(const datastore::EtcdConfig& config, const std::vector<EtcdOp>& ops, int writers) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    auto client = datastore::EtcdClient::Create(config);
    if (!client.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = client.status();
      return;
    }
    while (!g_interrupted) {
      size_t i = next.fetch_add(1);
      if (i >= ops.size()) return;
      const auto& [key, value] = ops[i];
      Status st = value ? (*client)->Put(key, *value).status() : (*client)->Delete(key).status();
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, writers); ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (g_interrupted) return AbortedStatus("writing etcd");
  return first_error;
}

// One update of the stream and what it must produce.
struct Update {
  int index = 0;
  bool create = false;
  BlockState state;
  net::Route expect;
};

// Block moves (an empty block released by one host and claimed by another, so its pods are the
// new host's) and block creations, alternating; never involving host 0 (the agent's own), so
// each update changes exactly one route.
std::vector<Update> MakeUpdates(const Cluster& cluster, int count, int first_new_index,
                                uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Update> out;
  std::map<int, int> host_now;  // block -> host after the updates so far
  int next_new = first_new_index;
  int original_blocks = first_new_index;
  auto other_host = [&](int not_this) {
    std::uniform_int_distribution<int> pick(1, cluster.hosts - 1);
    for (int tries = 0; tries < 1000; ++tries) {
      int h = pick(rng);
      if (h != not_this) return h;
    }
    return -1;
  };
  for (int u = 0; u < count; ++u) {
    Update up;
    bool moved = false;
    if (u % 2 == 0 && cluster.hosts >= 3 && original_blocks > 0) {
      std::uniform_int_distribution<int> pick(0, original_blocks - 1);
      for (int tries = 0; tries < 1000 && !moved; ++tries) {
        int b = pick(rng);
        const BlockState& s = cluster.blocks.at(b);
        if (s.host == 0 || s.HasBorrowed()) continue;
        int current = host_now.contains(b) ? host_now[b] : s.host;
        int h = other_host(current);
        if (h <= 0) continue;
        up.index = b;
        up.state.host = h;
        for (const auto& [ord, owner] : s.allocations) up.state.allocations.emplace_back(ord, h);
        host_now[b] = h;
        moved = true;
      }
    }
    if (!moved) {
      int h = other_host(0);
      if (h <= 0) h = 1;
      up.create = true;
      up.index = next_new++;
      up.state.host = h;
      up.state.allocations = {{0, h}};
    }
    up.expect = net::Route{BlockCidr(up.index), PeerAddress(up.state.host)};
    out.push_back(std::move(up));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Linux: rtnetlink helpers (inside our private namespace)

struct NlRoute {
  uint16_t type = 0;
  uint8_t protocol = 0;
  uint32_t table = 0;
  std::optional<net::IpPrefix> dst;
  std::optional<net::IpAddress> gateway;
};

NlRoute ParseRoute(const nlmsghdr* nlh) {
  NlRoute r;
  r.type = nlh->nlmsg_type;
  if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return r;
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rtm->rtm_family != AF_INET) return r;
  r.protocol = rtm->rtm_protocol;
  r.table = rtm->rtm_table;
  std::optional<net::IpAddress> dst;
  const auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(rtmsg)));
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (; mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr)) {
    uint16_t type = mnl_attr_get_type(attr);
    uint16_t len = mnl_attr_get_payload_len(attr);
    const auto* payload = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
    if (type == RTA_DST && len == 4) dst = net::IpAddress::FromBytes(net::Family::kV4, payload);
    if (type == RTA_GATEWAY && len == 4)
      r.gateway = net::IpAddress::FromBytes(net::Family::kV4, payload);
    if (type == RTA_TABLE && len == 4) r.table = mnl_attr_get_u32(attr);
  }
  if (rtm->rtm_dst_len <= 32)
    r.dst = net::IpPrefix(dst.value_or(net::IpAddress::V4(0)), rtm->rtm_dst_len);
  return r;
}

class NlSocket {
 public:
  ~NlSocket() {
    if (nl_) mnl_socket_close(nl_);
  }
  Status Open(unsigned groups) {
    nl_ = mnl_socket_open(NETLINK_ROUTE);
    if (!nl_) return absl::InternalError(fmt::format("netlink socket: {}", strerror(errno)));
    int size = 8 << 20;
    setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    if (mnl_socket_bind(nl_, groups, MNL_SOCKET_AUTOPID) < 0)
      return absl::InternalError(fmt::format("netlink bind: {}", strerror(errno)));
    return absl::OkStatus();
  }
  int fd() const { return mnl_socket_get_fd(nl_); }
  mnl_socket* get() const { return nl_; }

 private:
  mnl_socket* nl_ = nullptr;
};

// Main-table IPv4 routes of `protocol`, by dump.
StatusOr<RouteMap> DumpKernelRoutes(uint8_t protocol) {
  NlSocket sock;
  RETURN_IF_ERROR(sock.Open(0));
  std::vector<char> buf(1 << 16);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  uint32_t seq = static_cast<uint32_t>(time(nullptr));
  nlh->nlmsg_seq = seq;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
    return absl::InternalError(fmt::format("netlink send: {}", strerror(errno)));
  struct Ctx {
    RouteMap routes;
    uint8_t protocol;
  } ctx{{}, protocol};
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto* c = static_cast<Ctx*>(data);
    NlRoute r = ParseRoute(m);
    if (r.type == RTM_NEWROUTE && r.protocol == c->protocol && r.table == RT_TABLE_MAIN && r.dst &&
        r.gateway)
      c->routes[*r.dst] = *r.gateway;
    return MNL_CB_OK;
  };
  uint32_t portid = mnl_socket_get_portid(sock.get());
  auto deadline = Steady::now() + std::chrono::seconds(30);
  while (Steady::now() < deadline) {
    pollfd p{sock.fd(), POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
    if (n < 0) return absl::InternalError(fmt::format("netlink dump: {}", strerror(errno)));
    int ret = mnl_cb_run(buf.data(), n, seq, portid, cb, &ctx);
    if (ret < 0) return absl::InternalError(fmt::format("netlink dump: {}", strerror(errno)));
    if (ret == MNL_CB_STOP) return std::move(ctx.routes);
  }
  return absl::DeadlineExceededError("netlink dump did not finish");
}

// Route notifications (RTNLGRP_IPV4_ROUTE): when did the kernel tell us about a route.
class RouteMonitor {
 public:
  Status Open() { return sock_.Open(RTMGRP_IPV4_ROUTE); }

  // Waits for an RTM_NEWROUTE of our protocol for `route` read at or after `since`. Returns the
  // time it was read.
  StatusOr<Steady::time_point> WaitFor(const net::Route& route, Steady::time_point since,
                                       Steady::time_point deadline) {
    std::vector<char> buf(1 << 16);
    while (true) {
      auto it = seen_.find(route.dst);
      if (it != seen_.end() && it->second.first == route.gateway && it->second.second >= since)
        return it->second.second;
      if (Steady::now() > deadline) break;
      pollfd p{sock_.fd(), POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = recv(sock_.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
      auto now = Steady::now();
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        if (errno == ENOBUFS) {  // notifications were lost: ask the kernel directly
          ++overruns_;
          ASSIGN_OR_RETURN(RouteMap routes, DumpKernelRoutes(kAgentProtocol));
          for (const auto& [dst, gw] : routes) {
            auto& s = seen_[dst];
            if (s.first != gw) s = {gw, now};
          }
          continue;
        }
        return absl::InternalError(fmt::format("netlink monitor: {}", strerror(errno)));
      }
      struct Ctx {
        RouteMonitor* self;
        Steady::time_point now;
      } ctx{this, now};
      mnl_cb_run(
          buf.data(), n, 0, 0,
          [](const nlmsghdr* m, void* data) -> int {
            auto* c = static_cast<Ctx*>(data);
            NlRoute r = ParseRoute(m);
            if (r.protocol != kAgentProtocol || !r.dst) return MNL_CB_OK;
            if (r.type == RTM_NEWROUTE && r.gateway) {
              c->self->seen_[*r.dst] = {*r.gateway, c->now};
            } else if (r.type == RTM_DELROUTE) {
              c->self->seen_.erase(*r.dst);
            }
            return MNL_CB_OK;
          },
          &ctx);
    }
    return absl::DeadlineExceededError(
        fmt::format("route {} not seen in the kernel", route.ToString()));
  }
  int overruns() const { return overruns_; }

 private:
  NlSocket sock_;
  std::unordered_map<net::IpPrefix, std::pair<net::IpAddress, Steady::time_point>> seen_;
  int overruns_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Dataplane targets

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

class LinuxTarget final : public Target {
 public:
  LinuxTarget(std::string ip, std::string dir) : ip_(std::move(ip)), dir_(std::move(dir)) {}
  ~LinuxTarget() override { Finish(); }
  std::string Name() const override { return "linux"; }
  std::string LowerBoundName() const override { return "`ip -batch` (route replace)"; }

  Status Prepare(int) override {
    finished_ = false;
    (void)RunCommand({ip_, "link", "del", kUplink});  // routes via it go with it
    RETURN_IF_ERROR(
        RunChecked({ip_, "link", "add", kUplink, "type", "veth", "peer", "name", kUplinkPeer}));
    RETURN_IF_ERROR(RunChecked({ip_, "link", "set", kUplinkPeer, "up"}));
    return absl::OkStatus();
  }
  std::vector<std::string> AgentArgs() const override {
    return {"--dataplane", "linux", "--uplink", kUplink};
  }
  StatusOr<RouteMap> OwnedRoutes() override { return DumpKernelRoutes(kAgentProtocol); }
  Status StartWatching() override {
    monitor_ = std::make_unique<RouteMonitor>();
    return monitor_->Open();
  }
  StatusOr<Steady::time_point> WaitVisible(const net::Route& route, Steady::time_point since,
                                           Steady::time_point deadline) override {
    return monitor_->WaitFor(route, since, deadline);
  }
  StatusOr<double> LowerBound(const std::vector<net::Route>& routes) override {
    // The same routes in the same (main) table, after the agent's are flushed; a protocol of
    // its own so that the check below counts exactly these.
    RETURN_IF_ERROR(RunChecked({ip_, "route", "flush", "proto", std::to_string(kAgentProtocol)}));
    std::string file = dir_ + "/routes.batch";
    {
      std::ofstream out(file);
      for (const auto& r : routes) {
        out << "route replace " << r.dst.ToString() << " via " << r.gateway.ToString() << " dev "
            << kUplink << " proto " << int{kLowerBoundProtocol} << "\n";
      }
    }
    auto started = Steady::now();
    ASSIGN_OR_RETURN(int rc, RunCommand({ip_, "-batch", file}, std::chrono::seconds(300),
                                        dir_ + "/ip-batch.log"));
    double elapsed = Seconds(Steady::now() - started);
    if (rc != 0)
      return absl::InternalError(fmt::format("ip -batch exited with {}: {}", rc,
                                             Tail(ReadFile(dir_ + "/ip-batch.log"), 5)));
    ASSIGN_OR_RETURN(RouteMap got, DumpKernelRoutes(kLowerBoundProtocol));
    (void)RunCommand({ip_, "route", "flush", "proto", std::to_string(kLowerBoundProtocol)});
    if (got.size() != routes.size())
      return absl::InternalError(
          fmt::format("ip -batch left {} routes, want {}", got.size(), routes.size()));
    return elapsed;
  }
  void Finish() override {
    monitor_.reset();
    if (!finished_) (void)RunCommand({ip_, "link", "del", kUplink});
    finished_ = true;
  }

 private:
  std::string ip_;
  std::string dir_;
  std::unique_ptr<RouteMonitor> monitor_;
  bool finished_ = false;
};

class VppTarget final : public Target {
 public:
  explicit VppTarget(std::string dir) : dir_(std::move(dir)) {}
  ~VppTarget() override { Finish(); }
  std::string Name() const override { return "vpp"; }
  std::string LowerBoundName() const override {
    return "VppClient pipelined ip_route_add_del_v2, no agent";
  }

  Status Prepare(int run) override {
    Finish();
    vpp::sim::SimOptions o;
    o.socket_path = fmt::format("{}/api-{}.sock", dir_, run);
    sim_ = std::make_unique<vpp::sim::VppSim>(o);
    source_id_.reset();
    return sim_->Start();
  }
  std::vector<std::string> AgentArgs() const override {
    return {"--dataplane", "vpp", "--vpp-api-socket", sim_->socket_path(), "--uplink", kVppUplink};
  }
  StatusOr<RouteMap> OwnedRoutes() override {
    RETURN_IF_ERROR(FindSource());
    RouteMap out;
    for (const auto& r : sim_->Routes(false)) {
      auto it = r.sources.find(*source_id_);
      if (it == r.sources.end() || it->second.size() != 1) continue;
      if (it->second[0].sw_if_index != kVppUplinkIndex) continue;
      out[r.prefix] = it->second[0].NextHop();
    }
    return out;
  }
  Status StartWatching() override { return FindSource(); }
  StatusOr<Steady::time_point> WaitVisible(const net::Route& route, Steady::time_point,
                                           Steady::time_point deadline) override {
    // No notifications from VPP's FIB: poll the simulator, which is cheap (one map lookup under
    // its lock), every 100 us.
    while (Steady::now() <= deadline) {
      auto r = sim_->FindRoute(route.dst);
      if (r) {
        auto it = r->sources.find(*source_id_);
        if (it != r->sources.end() && it->second.size() == 1 &&
            it->second[0].NextHop() == route.gateway)
          return Steady::now();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return absl::DeadlineExceededError(
        fmt::format("route {} not seen in the simulator", route.ToString()));
  }
  StatusOr<double> LowerBound(const std::vector<net::Route>& routes) override {
    vpp::sim::SimOptions o;
    o.socket_path = dir_ + "/lower-bound.sock";
    vpp::sim::VppSim sim(o);
    RETURN_IF_ERROR(sim.Start());
    vpp::VppClientOptions co;
    co.socket_path = o.socket_path;
    co.client_name = "vcra-bench";
    co.required_messages = {
        std::string(vpp::msg::kIpRouteAddDelV2), std::string(vpp::msg::kIpRouteAddDelV2Reply),
        std::string(vpp::msg::kFibSourceAdd), std::string(vpp::msg::kFibSourceAddReply)};
    vpp::VppClient client(co);  // same window (256) as the agent's VppDataplane
    RETURN_IF_ERROR(client.Connect());
    vpp::FibSourceAdd add;
    add.src.name = kFibSourceName;
    add.src.priority = 100;
    ASSIGN_OR_RETURN(vpp::Bytes reply, client.Call(vpp::EncodeFibSourceAdd(
                                                       *client.MsgId(vpp::msg::kFibSourceAdd), add),
                                                   vpp::msg::kFibSourceAddReply));
    ASSIGN_OR_RETURN(vpp::FibSourceAddReply added, vpp::DecodeFibSourceAddReply(reply));
    uint16_t id = *client.MsgId(vpp::msg::kIpRouteAddDelV2);
    std::vector<vpp::Bytes> requests;
    requests.reserve(routes.size());
    for (const auto& r : routes) {
      vpp::IpRouteAddDel m;
      m.is_add = true;
      m.route.prefix = vpp::WirePrefix::From(r.dst);
      m.route.src = added.id;
      m.route.paths = {vpp::FibPath::Via(r.gateway, kVppUplinkIndex)};
      requests.push_back(vpp::EncodeIpRouteAddDel(id, m, true));
    }
    auto started = Steady::now();
    auto replies = client.CallMany(std::move(requests), vpp::msg::kIpRouteAddDelV2Reply);
    double elapsed = Seconds(Steady::now() - started);
    size_t ok = 0;
    for (const auto& rep : replies) {
      if (!rep.ok()) continue;
      auto d = vpp::DecodeIpRouteAddDelReply(*rep);
      ok += d.ok() && d->retval == 0;
    }
    client.Close();
    sim.Stop();
    if (ok != routes.size())
      return absl::InternalError(
          fmt::format("{} of {} raw route adds failed", routes.size() - ok, routes.size()));
    return elapsed;
  }
  void Finish() override {
    if (sim_) sim_->Stop();
    sim_.reset();
  }

 private:
  Status FindSource() {
    if (source_id_) return absl::OkStatus();
    for (const auto& s : sim_->Sources()) {
      if (s.name == kFibSourceName && (!source_id_ || s.id < *source_id_)) source_id_ = s.id;
    }
    if (!source_id_) return absl::NotFoundError("the agent registered no FIB source");
    return absl::OkStatus();
  }

  std::string dir_;
  std::unique_ptr<vpp::sim::VppSim> sim_;
  std::optional<uint8_t> source_id_;
};

// ---------------------------------------------------------------------------------------------
// One run

struct RunResult {
  double routes = 0;
  double start_s = 0;  // fork -> /readyz 200
  // Phases of the start, from the agent's own (JSON, microsecond) log timestamps:
  double fetch_s = NAN;        // fork -> the complete etcd listing reaches the agent's loop
  double compute_s = NAN;      // -> decoded, routes calculated ("first etcd listing complete")
  double program_s = NAN;      // -> the last op acknowledged ("initial programming complete")
  double routes_per_s = 0;     // routes / start_s
  double lower_bound_s = 0;    // same routes, lower bound
  double lower_bound_rps = 0;  // routes / lower_bound_s
  double ratio = 0;            // start_s / lower_bound_s
  double program_ratio = NAN;  // program_s / lower_bound_s
  double metrics_ms = NAN;     // one GET /metrics after the updates
  double p50_ms = NAN, p99_ms = NAN, max_ms = NAN;
  double hist_p50_ms = NAN, hist_p99_ms = NAN;
  double put_p50_ms = NAN;
  double rss_mib = 0;      // peak (VmHWM)
  double rss_end_mib = 0;  // at the end of the run (VmRSS)
  double cpu_start_s = 0;  // agent CPU (user+sys) from start to ready
  double cpu_total_s = 0;  // ... to the end of the update stream
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

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
};

class Bench {
 public:
  Bench(const Settings& settings, testing::EtcdServer& etcd, const std::string& dir)
      : s_(settings), etcd_(etcd), dir_(dir), cluster_(Cluster::Make(s_.hosts, s_.blocks)) {}

  const Cluster& cluster() const { return cluster_; }

  Status WriteCluster() {
    std::vector<EtcdOp> ops;
    for (int k = 0; k < s_.hosts; ++k) {
      ops.emplace_back(calico::PeerKeyFor(HostName(k), net::Family::kV4),
                       PeerAddress(k).ToString());
    }
    for (const auto& [index, b] : cluster_.blocks)
      ops.emplace_back(calico::BlockKey(BlockCidr(index)), cluster_.Encode(index));
    auto started = Steady::now();
    RETURN_IF_ERROR(WriteAll(etcd_.ClientConfig(), ops, s_.writers));
    Log("wrote {} keys to etcd in {:.1f} s (setup, not measured)", ops.size(),
        Seconds(Steady::now() - started));
    return absl::OkStatus();
  }

  StatusOr<RunResult> Run(Target& target, int run) {
    RunResult res;
    RouteMap expected = cluster_.ExpectedRoutes();
    res.routes = static_cast<double>(expected.size());
    RETURN_IF_ERROR(target.Prepare(run));

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
    std::string log_file = fmt::format("{}/agent-{}-{}.log", dir_, target.Name(), run);

    auto started = Steady::now();
    auto started_wall = std::chrono::system_clock::now();
    ASSIGN_OR_RETURN(auto agent, AgentProcess::Start(args, log_file));
    auto http_client = std::make_unique<AgentHttp>(port);
    AgentHttp& http = *http_client;
    auto start_deadline = DeadlineIn(std::chrono::seconds(s_.start_timeout_s));
    // Readiness by the agent's log line by default, which costs the agent nothing; polling
    // /readyz (--ready-signal http) makes its HTTP thread and, while not ready, its loop thread
    // answer every 10 ms, on the same two cores.
    const std::string kDone = "initial programming complete";
    while (true) {
      if (s_.ready_signal == "log" ? ReadFile(log_file).find(kDone) != std::string::npos
                                   : http.Ready())
        break;
      if (auto code = agent->Exited())
        return absl::InternalError(fmt::format("the agent exited with {} before it was ready:\n{}",
                                               *code, agent->LogTail()));
      if (Steady::now() > start_deadline)
        return AbortedStatus(fmt::format("waiting for the agent to program {} routes ({})",
                                         expected.size(), Tail(agent->LogTail(), 3)));
      std::this_thread::sleep_for(std::chrono::milliseconds(s_.ready_signal == "log" ? 2 : 10));
    }
    auto ready_at = Steady::now();
    // The line is written when the last op is acknowledged; /readyz must agree right after.
    auto ready_deadline = DeadlineIn(std::chrono::seconds(10));
    while (!http.Ready()) {
      if (Steady::now() > ready_deadline)
        return absl::InternalError(
            "the agent logged that programming is complete, but /readyz "
            "does not say ready");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    res.start_s = Seconds(ready_at - started);
    res.routes_per_s = static_cast<double>(expected.size()) / res.start_s;
    res.cpu_start_s = ReadProcStats(agent->pid()).cpu_seconds;

    // Ready means the dataplane acknowledged every op; check it against the dataplane itself
    // and the agent's own count.
    ASSIGN_OR_RETURN(std::string metrics_before, http.Metrics());
    auto programmed = MetricValue(metrics_before, "vcra_routes_programmed");
    ASSIGN_OR_RETURN(RouteMap owned, target.OwnedRoutes());
    if (owned != expected)
      return absl::InternalError(
          fmt::format("after start: the dataplane has {} routes, want {}: {}", owned.size(),
                      expected.size(), DescribeDiff(expected, owned)));
    if (!programmed || *programmed != static_cast<double>(expected.size()))
      return absl::InternalError(fmt::format("the agent reports {} routes programmed, want {}",
                                             programmed.value_or(-1), expected.size()));
    Log("{} run {}: {} routes programmed in {:.2f} s ({:.0f} routes/s)", target.Name(), run,
        expected.size(), res.start_s, res.routes_per_s);

    // The update stream.
    Cluster original = cluster_;
    auto updates = MakeUpdates(cluster_, s_.updates, s_.blocks, 1000 + run);
    Status stream = Stream(target, updates, res);
    if (stream.ok()) {
      auto scrape = Steady::now();
      ASSIGN_OR_RETURN(std::string metrics_after, http.Metrics());
      res.metrics_ms = Seconds(Steady::now() - scrape) * 1000;
      res.hist_p50_ms = HistogramQuantileMs(metrics_before, metrics_after, 0.5).value_or(NAN);
      res.hist_p99_ms = HistogramQuantileMs(metrics_before, metrics_after, 0.99).value_or(NAN);
      RouteMap want = cluster_.ExpectedRoutes();
      ASSIGN_OR_RETURN(RouteMap now, target.OwnedRoutes());
      if (now != want)
        stream = absl::InternalError(fmt::format("after the updates: {}", DescribeDiff(want, now)));
    }
    ProcStats proc = ReadProcStats(agent->pid());
    res.rss_mib = proc.vm_hwm_mib;
    res.rss_end_mib = proc.vm_rss_mib;
    res.cpu_total_s = proc.cpu_seconds;
    // Our keep-alive connection would hold the agent's HTTP server (5 s read timeout) on exit.
    http_client.reset();
    auto stopping = Steady::now();
    int code = agent->Stop();
    double stop_s = Seconds(Steady::now() - stopping);
    if (stop_s > 2) Log("note: the agent took {:.1f} s to exit on SIGTERM", stop_s);
    std::string log = agent->Log();
    auto listed = LogTime(log, "etcd listing at revision");
    auto computed = LogTime(log, "first etcd listing complete");
    auto programmed_at = LogTime(log, kDone);
    if (listed && computed && programmed_at) {
      res.fetch_s = Seconds(*listed - started_wall);
      res.compute_s = Seconds(*computed - *listed);
      res.program_s = Seconds(*programmed_at - *computed);
    }
    Status revert = Revert(original, updates);
    RETURN_IF_ERROR(stream);
    RETURN_IF_ERROR(revert);
    if (code != 0) Log("WARNING: the agent exited with {} on SIGTERM", code);

    std::vector<net::Route> routes;
    routes.reserve(expected.size());
    for (const auto& [dst, gw] : expected) routes.push_back({dst, gw});
    std::sort(routes.begin(), routes.end(),
              [](const net::Route& a, const net::Route& b) { return a.dst < b.dst; });
    ASSIGN_OR_RETURN(res.lower_bound_s, target.LowerBound(routes));
    res.lower_bound_rps = static_cast<double>(routes.size()) / res.lower_bound_s;
    res.ratio = res.start_s / res.lower_bound_s;
    res.program_ratio = res.program_s / res.lower_bound_s;
    target.Finish();
    Log("{} run {}: event->route p50 {:.2f} ms p99 {:.2f} ms; lower bound {:.3f} s (x{:.1f}); "
        "agent peak RSS {:.1f} MiB",
        target.Name(), run, res.p50_ms, res.p99_ms, res.lower_bound_s, res.ratio, res.rss_mib);
    return res;
  }

 private:
  Status Stream(Target& target, const std::vector<Update>& updates, RunResult& res) {
    if (updates.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(target.StartWatching());
    ASSIGN_OR_RETURN(auto client, datastore::EtcdClient::Create(etcd_.ClientConfig()));
    std::vector<double> latencies, puts;
    auto interval = std::chrono::duration_cast<Steady::duration>(
        std::chrono::duration<double>(1.0 / std::max(0.001, s_.update_rate)));
    auto next = Steady::now();
    for (const Update& up : updates) {
      if (Aborted()) return AbortedStatus("update stream");
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
    res.p50_ms = Percentile(latencies, 0.5);
    res.p99_ms = Percentile(latencies, 0.99);
    res.max_ms = Percentile(latencies, 1.0);
    res.put_p50_ms = Percentile(puts, 0.5);
    return absl::OkStatus();
  }

  // Puts etcd back as it was before the updates, so that every run starts from one cluster.
  Status Revert(const Cluster& original, const std::vector<Update>& updates) {
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

  Settings s_;
  testing::EtcdServer& etcd_;
  std::string dir_;
  Cluster cluster_;
};

// ---------------------------------------------------------------------------------------------
// Report

struct Summary {
  double median = NAN, min = NAN, max = NAN;
};

Summary Summarize(const std::vector<RunResult>& runs, double RunResult::*field) {
  std::vector<double> v;
  for (const auto& r : runs) {
    double x = r.*field;
    if (!std::isnan(x)) v.push_back(x);
  }
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

std::string Cell(const std::vector<RunResult>& runs, double RunResult::*field, int digits,
                 const std::string& prefix = "") {
  if (runs.empty()) return "-";
  Summary s = Summarize(runs, field);
  if (std::isnan(s.median)) return "n/a";
  if (runs.size() == 1) return prefix + Num(s.median, digits);
  return fmt::format("{}{} [{} – {}]", prefix, Num(s.median, digits), Num(s.min, digits),
                     Num(s.max, digits));
}

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
                 const std::vector<std::pair<std::string, std::vector<RunResult>>>& results,
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
    for (const auto& [name, r] : results) std::printf(" %s |", Cell(r, field, digits).c_str());
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

// ---------------------------------------------------------------------------------------------

std::string NetnsId() {
  char buf[128] = {};
  ssize_t n = readlink("/proc/self/ns/net", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

int Main(int argc, char** argv) {
  Settings s;
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
  app.add_option("--writers", s.writers, "Concurrent etcd writers for the setup")
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (s.blocks + s.updates > kMaxBlockIndex) {
    std::fprintf(stderr, "--blocks + --updates must stay below %d\n", kMaxBlockIndex);
    return kExitUsage;
  }
  std::string command = "vcra-bench";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];

  bool want_linux = s.dataplane != "vpp";
  bool want_vpp = s.dataplane != "linux";
  bool skipped = false;
  // Before any thread exists: unshare(CLONE_NEWNET) moves only the calling thread, and every
  // thread and child made later inherits its namespace.
  std::string ip_tool;
  bool private_netns = false;
  if (geteuid() == 0) {
    std::string before = NetnsId();
    if (unshare(CLONE_NEWNET) == 0 && !before.empty() && NetnsId() != before) {
      private_netns = true;
    } else {
      Log("WARNING: unshare(CLONE_NEWNET) failed: {}", strerror(errno));
    }
  }
  if (private_netns) {
    ip_tool = FindTool("ip");
    if (ip_tool.empty()) {
      Log("error: iproute2's `ip` not found");
      return kExitFailure;
    }
    if (Status st = RunChecked({ip_tool, "link", "set", "lo", "up"}); !st.ok()) {
      Log("error: {}", st.message());
      return kExitFailure;
    }
    Log("running in a private network namespace ({})", NetnsId());
  }
  if (want_linux && !private_netns) {
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

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  SetupLogging(LogFormat::kText, "warn");
  g_deadline = Steady::now() + std::chrono::seconds(s.timeout_s);

  auto dir = TempDir::Make("run");
  if (!dir.ok()) {
    Log("error: {}", dir.status().message());
    return kExitFailure;
  }
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

  std::vector<std::unique_ptr<Target>> targets;
  if (want_linux) targets.push_back(std::make_unique<LinuxTarget>(ip_tool, (*dir)->path()));
  if (want_vpp) targets.push_back(std::make_unique<VppTarget>((*dir)->path()));

  std::vector<std::pair<std::string, std::vector<RunResult>>> results;
  std::vector<std::string> lower_bound_names;
  bool failed = false;
  for (auto& target : targets) {
    results.emplace_back(target->Name(), std::vector<RunResult>{});
    lower_bound_names.push_back(target->LowerBoundName());
  }
  // Runs interleave the dataplanes, so that slow phases of a shared machine hit both alike.
  for (int run = 1; run <= s.runs && !failed; ++run) {
    for (size_t t = 0; t < targets.size() && !failed; ++t) {
      auto r = bench.Run(*targets[t], run);
      targets[t]->Finish();
      if (!r.ok()) {
        Log("FAILED: {} run {}: {}", targets[t]->Name(), run, r.status().message());
        failed = true;
        break;
      }
      results[t].second.push_back(*r);
    }
  }
  bool any =
      std::any_of(results.begin(), results.end(), [](const auto& r) { return !r.second.empty(); });
  if (any) PrintReport(s, command, bench.cluster(), results, lower_bound_names);
  targets.clear();
  if (failed) return kExitFailure;
  if (skipped) {
    std::fprintf(stderr, "\n*** SKIPPED (partly): see above ***\n");
    return kExitSkipped;
  }
  return 0;
}

}  // namespace
}  // namespace vcra::bench

int main(int argc, char** argv) { return vcra::bench::Main(argc, argv); }
