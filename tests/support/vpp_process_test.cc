// VppProcess against the real VPP named by VPP_BIN (SKIPPED without it): it starts, answers on
// its CLI and API sockets, restarts with an empty FIB, runs inside a namespace the test made, and
// leaves nothing behind.
#include "tests/support/vpp_process.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vcra::testing {
namespace {

namespace fs = std::filesystem;

bool ShmFilesWithPrefix(const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev/shm", ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(VppProcess, RefusesAfPacketOutsideATestNamespace) {
  VppProcessOptions o;
  o.vpp_bin = "/nonexistent/vpp";
  o.startup_cli = {"create host-interface name eth0"};
  auto vpp = VppProcess::Start(o);
  ASSERT_FALSE(vpp.ok());
  EXPECT_EQ(vpp.status().code(), absl::StatusCode::kInvalidArgument) << vpp.status();
}

TEST(VppProcess, RefusesToBusyPoll) {
  VppProcessOptions o;
  o.poll_sleep_usec = 0;
  auto vpp = VppProcess::Start(o);
  ASSERT_FALSE(vpp.ok());
  EXPECT_EQ(vpp.status().code(), absl::StatusCode::kInvalidArgument) << vpp.status();
}

// A network namespace of the test's own, deleted when the test ends (even when it fails).
class ScopedNetns {
 public:
  explicit ScopedNetns(std::string name) : name_(std::move(name)) {
    ok_ = std::system(absl::StrCat("ip netns add ", name_).c_str()) == 0;
  }
  ~ScopedNetns() {
    if (ok_) (void)!std::system(absl::StrCat("ip netns delete ", name_, " 2>/dev/null").c_str());
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST(VppProcess, ReportsWhyItCannotStart) {
  VppProcessOptions o;
  o.vpp_bin = "/nonexistent/vpp";
  EXPECT_NE(VppProcess::UnavailableReason(o).find("not executable"), std::string::npos);
  auto vpp = VppProcess::Start(o);
  ASSERT_FALSE(vpp.ok());
  EXPECT_EQ(vpp.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(VppProcess, StartsAnswersRestartsAndCleansUp) {
  if (std::string why = VppProcess::UnavailableReason(); !why.empty()) {
    GTEST_SKIP() << "SKIPPED: " << why;
  }
  // Test addresses live only in namespaces the test makes (as root); without root, VPP runs in
  // the test's own namespace, where its loopback is VPP's alone (no kernel interface).
  std::unique_ptr<ScopedNetns> netns;
  VppProcessOptions o;
  if (geteuid() == 0) {
    netns = std::make_unique<ScopedNetns>(absl::StrCat("vcra-vppproc-", getpid()));
    ASSERT_TRUE(netns->ok());
    o.netns = netns->name();
  }
  o.poll_sleep_usec = 1000;
  o.startup_cli = {"create loopback interface", "set interface state loop0 up",
                   "set interface ip address loop0 172.16.0.1/24"};
  auto started = VppProcess::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& vpp = *started;
  std::string dir = vpp->dir();
  EXPECT_TRUE(fs::exists(vpp->api_socket()));
  auto version = vpp->Cli("show version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_NE(version->find("vpp"), std::string::npos) << *version;
  auto itf = vpp->Cli("show interface address loop0");
  ASSERT_TRUE(itf.ok()) << itf.status();
  EXPECT_NE(itf->find("172.16.0.1/24"), std::string::npos) << *itf;

  // A route added at run time is gone after a restart; the startup CLI runs again.
  ASSERT_TRUE(vpp->Cli("ip route add 10.1.0.0/24 via 172.16.0.2 loop0").ok());
  ASSERT_NE(vpp->Cli("show ip fib 10.1.0.0/24")->find("172.16.0.2"), std::string::npos);
  pid_t old_pid = vpp->pid();
  ASSERT_TRUE(vpp->Restart().ok()) << vpp->LogTail();
  EXPECT_NE(vpp->pid(), old_pid);
  EXPECT_EQ(vpp->Cli("show ip fib 10.1.0.0/24")->find("172.16.0.2"), std::string::npos);
  EXPECT_NE(vpp->Cli("show interface address loop0")->find("172.16.0.1/24"), std::string::npos);

  pid_t pid = vpp->pid();
  std::string shm_prefix = absl::StrCat("vcra-vpp-", getpid(), "-");
  started->reset();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_NE(::kill(pid, 0), 0) << "VPP still runs after the destructor";
  EXPECT_FALSE(ShmFilesWithPrefix(shm_prefix));
}

TEST(VppProcess, RunsInsideANamespaceWithAnAfPacketInterface) {
  if (std::string why = VppProcess::UnavailableReason(); !why.empty()) {
    GTEST_SKIP() << "SKIPPED: " << why;
  }
  if (geteuid() != 0) GTEST_SKIP() << "SKIPPED: creating a network namespace needs root";
  ScopedNetns netns(absl::StrCat("vcra-vpptest-", getpid()));
  ASSERT_TRUE(netns.ok());
  const std::string& ns = netns.name();
  ASSERT_EQ(
      std::system(absl::StrCat("ip -n ", ns, " link add vpp0 type veth peer name k0 && ip -n ", ns,
                               " link set vpp0 up && ip -n ", ns, " link set k0 up")
                      .c_str()),
      0);
  VppProcessOptions o;
  o.netns = ns;
  o.poll_sleep_usec = 1000;
  // Small rings: VPP's defaults reserve 64 KiB tx frames for GSO (see docs/design.md).
  o.startup_cli = {
      "create host-interface name vpp0 hw-addr 02:fe:00:00:00:01 rx-size 2048 "
      "rx-per-block 16 tx-size 2048 tx-per-block 256 cksum-gso-disable",
      "set interface state host-vpp0 up", "set interface ip address host-vpp0 172.16.9.1/24"};
  auto vpp = VppProcess::Start(o);
  ASSERT_TRUE(vpp.ok()) << vpp.status();
  // VPP answers a ping from the namespace's kernel through the af_packet interface.
  ASSERT_EQ(std::system(absl::StrCat("ip -n ", ns, " addr add 172.16.9.2/24 dev k0").c_str()), 0);
  bool answered = false;
  for (int i = 0; i < 5 && !answered; ++i) {
    answered =
        std::system(absl::StrCat("ip netns exec ", ns, " ping -c 1 -W 1 172.16.9.1 >/dev/null 2>&1")
                        .c_str()) == 0;
  }
  EXPECT_TRUE(answered) << (*vpp)->LogTail();
  auto rx_mode = (*vpp)->Cli("show interface rx-placement");
  ASSERT_TRUE(rx_mode.ok());
  EXPECT_NE(rx_mode->find("interrupt"), std::string::npos) << *rx_mode;
}

}  // namespace
}  // namespace vcra::testing
