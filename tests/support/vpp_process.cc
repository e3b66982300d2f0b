#include "tests/support/vpp_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace vcra::testing {

namespace {

namespace fs = std::filesystem;

constexpr const char* kDirPrefix = "vcra-vpp-";
constexpr const char* kStartupDoneTag = "vcra-startup-done";

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

struct Paths {
  std::string vpp_bin;
  std::string plugin_path;
  std::string vppctl;
};

Paths Resolve(const VppProcessOptions& options) {
  Paths p;
  p.vpp_bin = options.vpp_bin.empty() ? EnvOr("VPP_BIN", "") : options.vpp_bin;
  if (p.vpp_bin.empty()) return p;
  std::error_code ec;
  fs::path bin = fs::canonical(p.vpp_bin, ec);
  if (ec) bin = p.vpp_bin;
  fs::path prefix = bin.parent_path().parent_path();
  std::string derived = (prefix / "lib/x86_64-linux-gnu/vpp_plugins").string();
  for (const char* candidate : {"lib/x86_64-linux-gnu/vpp_plugins", "lib/vpp_plugins"}) {
    if (fs::is_directory(prefix / candidate, ec)) {
      derived = (prefix / candidate).string();
      break;
    }
  }
  p.plugin_path =
      !options.plugin_path.empty() ? options.plugin_path : EnvOr("VPP_PLUGIN_PATH", derived);
  p.vppctl = !options.vppctl.empty() ? options.vppctl
                                     : EnvOr("VPPCTL", (bin.parent_path() / "vppctl").string());
  return p;
}

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

bool ProcessGone(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

// A test that crashed never ran its destructors: its VPP died with it (PR_SET_PDEATHSIG), but its
// directory and shared memory stayed. Each start removes those whose owner is gone.
void RemoveLeftoversOfDeadTests() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, kDirPrefix) || !entry.is_directory(ec)) continue;
    pid_t owner = 0;
    std::ifstream(entry.path() / "owner.pid") >> owner;
    if (ProcessGone(owner)) fs::remove_all(entry.path(), ec);
  }
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, kDirPrefix)) continue;
    // "vcra-vpp-<owner pid>-<n>-<segment>"
    pid_t owner = std::atoi(name.c_str() + std::strlen(kDirPrefix));
    if (ProcessGone(owner)) fs::remove(entry.path(), ec);
  }
}

// Runs argv (absolute path first) and returns its stdout and stderr; fails on a non-zero exit.
StatusOr<std::string> RunCapture(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(args[0], " failed: ", out));
  }
  return out;
}

// VPP pins its main thread to the core it started on; on a small shared machine the scheduler
// should place it instead, like every other process of the test.
void UnpinThreads(pid_t pid) {
  cpu_set_t mine;
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0) return;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    pid_t tid = std::atoi(task.path().filename().c_str());
    if (tid > 0) sched_setaffinity(tid, sizeof(mine), &mine);
  }
}

std::string TailOf(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) absl::StrAppend(&out, l, "\n");
  return out;
}

}  // namespace

std::string VppProcess::UnavailableReason(const VppProcessOptions& options) {
  Paths p = Resolve(options);
  if (p.vpp_bin.empty()) return "needs VPP_BIN=/path/to/vpp";
  if (access(p.vpp_bin.c_str(), X_OK) != 0) {
    return absl::StrCat("VPP_BIN=", p.vpp_bin, " is not executable");
  }
  for (const char* plugin : {"af_packet_plugin.so", "ping_plugin.so"}) {
    if (access((fs::path(p.plugin_path) / plugin).c_str(), R_OK) != 0) {
      return absl::StrCat("no ", plugin, " in ", p.plugin_path, " (set VPP_PLUGIN_PATH)");
    }
  }
  if (access(p.vppctl.c_str(), X_OK) != 0) {
    return absl::StrCat("no vppctl at ", p.vppctl, " (set VPPCTL)");
  }
  if (!options.netns.empty() && IpBinary().empty()) return "ip (iproute2) is not installed";
  return "";
}

StatusOr<std::unique_ptr<VppProcess>> VppProcess::Start(VppProcessOptions options) {
  if (options.netns.empty()) {
    for (const auto& line : options.startup_cli) {
      if (absl::StrContains(line, "host-interface")) {
        return absl::InvalidArgumentError(
            "af_packet interfaces only in a network namespace the test created (set netns)");
      }
    }
  } else if (access(absl::StrCat("/run/netns/", options.netns).c_str(), F_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("no network namespace ", options.netns));
  }
  if (options.poll_sleep_usec <= 0) {
    return absl::InvalidArgumentError(
        "poll_sleep_usec must be positive: without it an idle VPP spins on a core");
  }
  if (std::string why = UnavailableReason(options); !why.empty()) {
    return absl::FailedPreconditionError(why);
  }
  RemoveLeftoversOfDeadTests();
  Paths paths = Resolve(options);
  options.vpp_bin = paths.vpp_bin;
  options.plugin_path = paths.plugin_path;
  options.vppctl = paths.vppctl;

  std::unique_ptr<VppProcess> vpp(new VppProcess());
  vpp->options_ = std::move(options);
  std::string tmpl = absl::StrCat("/tmp/", kDirPrefix, "XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  vpp->dir_ = tmpl;
  std::ofstream(vpp->dir_ + "/owner.pid") << getpid() << "\n";
  static std::atomic<int> counter{0};
  vpp->shm_prefix_ = absl::StrCat(kDirPrefix, getpid(), "-", counter++);
  vpp->api_socket_ = vpp->dir_ + "/api.sock";
  vpp->cli_socket_ = vpp->dir_ + "/cli.sock";
  vpp->startup_conf_ = vpp->dir_ + "/startup.conf";
  {
    std::ofstream cli(vpp->dir_ + "/setup.cli");
    for (const auto& line : vpp->options_.startup_cli) cli << line << "\n";
    // VPP runs its startup CLI about 2 s after its CLI socket answers (and stops at a line it
    // cannot parse): this last line marks "the whole startup CLI ran" for WaitReady.
    cli << "set interface tag local0 " << kStartupDoneTag << "\n";
  }
  std::ofstream conf(vpp->startup_conf_);
  const std::string& d = vpp->dir_;
  // Why each line: docs/design.md, "Real VPP in the demo and the tests".
  conf << "unix {\n"
       << "  nodaemon nosyslog nocolor cli-no-banner cli-no-pager\n"
       << "  poll-sleep-usec " << vpp->options_.poll_sleep_usec << "\n"
       << "  runtime-dir " << d << "\n"
       << "  log " << d << "/vpp.log\n"
       << "  cli-listen " << vpp->cli_socket_ << "\n"
       << "  startup-config " << d << "/setup.cli\n"
       << "  coredump-size 0\n"
       << "}\n"
       << "socksvr { socket-name " << vpp->api_socket_ << " }\n"
       << "api-segment { prefix " << vpp->shm_prefix_ << " }\n"
       << "cpu { workers 0 }\n"
       << "memory { main-heap-size 256M main-heap-page-size 4k }\n"
       << "buffers { buffers-per-numa 4096 page-size 4k }\n"
       << "statseg { socket-name " << d << "/stats.sock size 8M page-size 4k }\n"
       << "plugins {\n"
       << "  path " << vpp->options_.plugin_path << "\n"
       << "  plugin default { disable }\n"
       << "  plugin af_packet_plugin.so { enable }\n"
       << "  plugin ping_plugin.so { enable }\n"
       << "}\n";
  conf.close();
  if (!conf) return absl::InternalError(absl::StrCat("cannot write ", vpp->startup_conf_));
  RETURN_IF_ERROR(vpp->Spawn());
  return vpp;
}

Status VppProcess::Spawn() {
  std::vector<std::string> args;
  if (!options_.netns.empty()) args = {IpBinary(), "netns", "exec", options_.netns};
  args.insert(args.end(), {options_.vpp_bin, "-c", startup_conf_});
  ASSIGN_OR_RETURN(pid_, SpawnChild(args, dir_ + "/stdout.log", /*own_process_group=*/true));
  Status ready = WaitReady();
  if (!ready.ok()) {
    std::string tail = LogTail();
    Stop(/*kill=*/true);
    return absl::UnavailableError(absl::StrCat(ready.message(), "\n", tail));
  }
  UnpinThreads(pid_);
  return absl::OkStatus();
}

Status VppProcess::WaitReady() {
  auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError("VPP exited during startup");
    }
    if (access(api_socket_.c_str(), F_OK) == 0 && access(cli_socket_.c_str(), F_OK) == 0) {
      auto tag = Cli("show interface local0 tag");
      if (tag.ok() && absl::StrContains(*tag, kStartupDoneTag)) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(
      "VPP did not answer on its CLI socket, or did not finish its startup CLI, in time");
}

bool VppProcess::IsRunning() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }

StatusOr<std::string> VppProcess::Cli(const std::string& command) const {
  return RunCapture({options_.vppctl, "-s", cli_socket_, command});
}

void VppProcess::Stop(bool kill) {
  if (pid_ > 0) {
    ::kill(-pid_, kill ? SIGKILL : SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }
  std::error_code ec;
  fs::remove(api_socket_, ec);
  fs::remove(cli_socket_, ec);
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    if (absl::StartsWith(entry.path().filename().string(), shm_prefix_ + "-")) {
      fs::remove(entry.path(), ec);
    }
  }
}

Status VppProcess::Restart() {
  Stop();
  return Spawn();
}

std::string VppProcess::LogTail(int lines) const {
  return absl::StrCat("--- ", dir_, "/vpp.log\n", TailOf(dir_ + "/vpp.log", lines), "--- ", dir_,
                      "/stdout.log\n", TailOf(dir_ + "/stdout.log", lines));
}

VppProcess::~VppProcess() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

}  // namespace vcra::testing
