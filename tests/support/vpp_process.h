// VppProcess: a real VPP (the binary named by VPP_BIN) for tests and the benchmark, with a
// private runtime directory (API socket, CLI socket, startup.conf, log) under /tmp and settings
// that share a small machine politely: main thread only (no workers, not pinned to a core),
// af_packet rx in interrupt mode, small heap, buffer pool and statistics segment.
//
// It runs in a given network namespace (one the test created) or in the test's own. An
// af_packet interface ("create host-interface") is refused in the test's own namespace, where it
// could attach VPP to a real interface of the machine.
//
// VPP runs in its own process group with PR_SET_PDEATHSIG(SIGKILL), so it dies with the test
// even when the test crashes; the destructor stops it (SIGTERM, then SIGKILL) and removes its
// directory and its shared-memory files. Each Start also sweeps what crashed tests left behind.
//
// NOTE: PR_SET_PDEATHSIG fires when the *thread* that forked exits: start VPP from the test's
// main thread (or another thread that outlives it). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace vcra::testing {

struct VppProcessOptions {
  // The vpp binary; empty: $VPP_BIN.
  std::string vpp_bin;
  // Its plugin directory; empty: $VPP_PLUGIN_PATH, else <prefix>/lib/x86_64-linux-gnu/vpp_plugins
  // (or <prefix>/lib/vpp_plugins) next to <prefix>/bin/vpp.
  std::string plugin_path;
  // vppctl; empty: $VPPCTL, else vppctl next to the vpp binary.
  std::string vppctl;
  // Network namespace (a name under /run/netns) to run in; empty: the caller's own.
  std::string netns;
  // CLI commands VPP runs at startup, e.g. {"create loopback interface"}.
  std::vector<std::string> startup_cli;
  std::chrono::seconds ready_timeout{30};
  // VPP's "unix { poll-sleep-usec }": how long its main loop sleeps before each check for
  // events. An idle VPP 26.06 with af_packet interfaces never waits in epoll, so this is what
  // bounds its CPU use: 100 us costs ~7% of a core idle (the benchmark's setting, which its
  // figures assume), 1000 us ~1% (tests and the demo, where API throughput does not matter).
  int poll_sleep_usec = 100;
};

class VppProcess {
 public:
  // Why VPP cannot be started here ("" when it can): no VPP_BIN, not executable, no plugins, no
  // vppctl. Tests print it with GTEST_SKIP.
  static std::string UnavailableReason(const VppProcessOptions& options = {});

  // Starts VPP and waits until its API socket exists and its startup CLI has run (the last line
  // of setup.cli tags local0 "vcra-startup-done"; a line VPP cannot parse times the wait out).
  static StatusOr<std::unique_ptr<VppProcess>> Start(VppProcessOptions options = {});

  ~VppProcess();
  VppProcess(const VppProcess&) = delete;
  VppProcess& operator=(const VppProcess&) = delete;

  const std::string& api_socket() const { return api_socket_; }
  const std::string& cli_socket() const { return cli_socket_; }
  const std::string& dir() const { return dir_; }
  const std::string& startup_conf() const { return startup_conf_; }
  pid_t pid() const { return pid_; }
  bool IsRunning() const;

  // Runs one CLI command through vppctl and returns what VPP printed.
  StatusOr<std::string> Cli(const std::string& command) const;

  // Stops VPP (SIGTERM, SIGKILL after 5 s; `kill` sends SIGKILL at once) and removes its
  // sockets and shared memory; the directory stays for Restart and logs.
  void Stop(bool kill = false);
  // Stop, then start again with the same configuration (an empty FIB, new message ids).
  Status Restart();

  // The last lines of VPP's log and output, for failure messages.
  std::string LogTail(int lines = 30) const;

 private:
  VppProcess() = default;
  Status Spawn();
  Status WaitReady();

  VppProcessOptions options_;
  std::string dir_;
  std::string api_socket_;
  std::string cli_socket_;
  std::string startup_conf_;
  std::string shm_prefix_;
  pid_t pid_ = -1;
};

}  // namespace vcra::testing
