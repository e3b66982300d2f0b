#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/child_process.h"

namespace vcra::bench {

std::atomic<bool> g_interrupted{false};
Steady::time_point g_deadline = Steady::time_point::max();

bool Aborted() { return g_interrupted.load() || Steady::now() > g_deadline; }

Steady::time_point DeadlineIn(std::chrono::milliseconds timeout) {
  return std::min(Steady::now() + timeout, g_deadline);
}

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

void LogLine(const std::string& message) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::fprintf(stderr, "[bench %s] %s\n", stamp, message.c_str());
  std::fflush(stderr);
}

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

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

StatusOr<std::unique_ptr<TempDir>> TempDir::Make(const std::string& tag) {
  std::string pattern = "/tmp/vcra-bench-" + tag + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    return absl::InternalError(fmt::format("mkdtemp: {}", std::strerror(errno)));
  return std::unique_ptr<TempDir>(new TempDir(pattern));
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string FindTool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = std::string(dir) + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string OwnDirectory() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

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

StatusOr<int> RunCommand(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                         const std::string& log_file) {
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

}  // namespace vcra::bench
