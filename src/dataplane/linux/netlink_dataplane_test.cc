// NetlinkDataplane against a real kernel, inside a network namespace this process makes for
// itself at start-up (unshare(CLONE_NEWNET)). Everything, including the `ip` commands run through
// popen (children inherit the namespace), happens in that throwaway namespace, which disappears
// with the process: nothing touches the machine's own namespace. Without root the namespace cannot
// be made and every test is skipped loudly.
#include "dataplane/linux/netlink_dataplane.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace vcra::dataplane {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

struct Isolation {
  bool ok = false;
  std::string why;
};

// Runs during static initialisation, while the process still has a single thread: unshare()
// moves only the calling thread, and every later thread and child inherits its namespace.
Isolation Isolate() {
  struct stat before {};
  struct stat after {};
  if (stat("/proc/self/ns/net", &before) != 0) return {false, "cannot stat /proc/self/ns/net"};
  if (unshare(CLONE_NEWNET) != 0) {
    return {false, std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno)};
  }
  if (stat("/proc/self/ns/net", &after) != 0 || after.st_ino == before.st_ino) {
    return {false, "the network namespace did not change after unshare"};
  }
  // Inside the new namespace now; `ip` must exist for the checks.
  if (std::system("ip -V >/dev/null 2>&1") != 0) return {false, "iproute2 `ip` not found"};
  return {true, ""};
}

const Isolation& GetIsolation() {
  static const Isolation isolation = Isolate();
  return isolation;
}
[[maybe_unused]] const bool kIsolatedAtStart = GetIsolation().ok;

class NetnsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!GetIsolation().ok) {
      std::fprintf(stderr,
                   "\n********************************************************************\n"
                   "SKIPPED: needs root for a private network namespace (%s)\n"
                   "********************************************************************\n\n",
                   GetIsolation().why.c_str());
    }
  }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new NetnsEnvironment);

// Runs a shell command (inside the private namespace) and returns its stdout.
std::string Out(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

int Sh(const std::string& cmd) { return std::system(cmd.c_str()); }

int CountLines(const std::string& text, const std::string& needle = "") {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// Every route of the namespace that is not the agent's, sorted: what must never change. IPv6
// link-local routes come and go on their own as links come up, so they are left out.
std::string ForeignSnapshot() {
  return Out(
      "{ ip -o route show table all; ip -o -6 route show table all; } | grep -v 'proto 212 ' | "
      "grep -v 'table local' | grep -v '^fe80::' | sort");
}

net::IpAddress Ip(const char* text) { return *net::IpAddress::Parse(text); }
net::IpPrefix Prefix(const char* text) { return *net::IpPrefix::Parse(text); }

RouteOp Upsert(uint64_t seq, const char* dst, const char* gw) {
  return {seq, OpType::kUpsert, {Prefix(dst), Ip(gw)}};
}
// An upsert of a prefix the caller (the reconciler) holds to be ours, as after an acknowledged
// upsert or a dump that showed it.
RouteOp Replace(uint64_t seq, const char* dst, const char* gw) {
  RouteOp op = Upsert(seq, dst, gw);
  op.replaces_ours = true;
  return op;
}
RouteOp Delete(uint64_t seq, const char* dst) {
  return {seq, OpType::kDelete, {Prefix(dst), net::IpAddress()}};
}

const std::vector<net::IpPrefix> kUplinkAddresses = {
    net::IpPrefix::InterfaceAddress(Ip("10.99.0.1"), 24),
    net::IpPrefix::InterfaceAddress(Ip("fd00:99::1"), 64),
};

UplinkConfig ByName(const std::string& name, std::vector<net::IpPrefix> addresses) {
  UplinkConfig c;
  c.name = name;
  c.addresses = std::move(addresses);
  return c;
}

UplinkConfig ByIndex(uint32_t index, std::vector<net::IpPrefix> addresses) {
  UplinkConfig c;
  c.index = index;
  c.addresses = std::move(addresses);
  return c;
}

class NetlinkDataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!GetIsolation().ok) {
      GTEST_SKIP() << "SKIPPED: needs root for a private network namespace (" << GetIsolation().why
                   << ")";
    }
    // A fresh uplink per test: deleting the link also flushes every route through it.
    Sh("ip link del uplink0 >/dev/null 2>&1");
    Sh("ip link del other0 >/dev/null 2>&1");
    Sh("ip route flush table 100 >/dev/null 2>&1");
    Sh("ip route flush table 1000 >/dev/null 2>&1");
    // The kernel here may lack the dummy driver; a veth pair with its peer up has carrier.
    ASSERT_EQ(Sh("ip link add uplink0 type veth peer name uplink0p"), 0);
    ASSERT_EQ(Sh("ip link set uplink0p up"), 0);
    dp_ = std::make_unique<NetlinkDataplane>();
    ASSERT_TRUE(dp_->Connect().ok());
  }

  void EnsureTestUplink() {
    Status s = dp_->EnsureUplink(ByName("uplink0", kUplinkAddresses));
    ASSERT_TRUE(s.ok()) << s;
  }

  static void ExpectAllOk(const std::vector<OpResult>& results, std::span<const RouteOp> ops) {
    ASSERT_EQ(results.size(), ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      EXPECT_EQ(results[i].seq, ops[i].seq);
      EXPECT_TRUE(results[i].status.ok()) << i << ": " << results[i].status;
    }
  }

  std::vector<net::Route> Dump() {
    StatusOr<std::vector<net::Route>> routes = dp_->DumpOwnedRoutes();
    EXPECT_TRUE(routes.ok()) << routes.status();
    return routes.ok() ? *routes : std::vector<net::Route>{};
  }

  std::unique_ptr<NetlinkDataplane> dp_;
};

TEST_F(NetlinkDataplaneTest, EnsureUplinkByNameBringsItUpAndAddsOnlyMissingAddresses) {
  ASSERT_EQ(Sh("ip addr add 10.99.0.50/24 dev uplink0"), 0);  // already there, not configured
  ASSERT_EQ(Sh("ip addr add 10.99.0.1/24 dev uplink0"), 0);   // configured and already there
  EXPECT_THAT(Out("ip -o link show uplink0"), Not(HasSubstr(",UP")));

  EnsureTestUplink();

  EXPECT_THAT(Out("ip -o link show uplink0"), HasSubstr(",UP"));
  std::string addrs = Out("ip -o addr show dev uplink0");
  EXPECT_THAT(addrs, HasSubstr("inet 10.99.0.1/24"));
  EXPECT_THAT(addrs, HasSubstr("inet 10.99.0.50/24"));
  EXPECT_THAT(addrs, HasSubstr("inet6 fd00:99::1/64"));
  EXPECT_EQ(dp_->uplink_index(), if_nametoindex("uplink0"));

  // Idempotent: a second run changes nothing and removes nothing.
  EnsureTestUplink();
  EXPECT_EQ(CountLines(Out("ip -o addr show dev uplink0 scope global")), 3);
}

TEST_F(NetlinkDataplaneTest, EnsureUplinkByIndex) {
  uint32_t index = if_nametoindex("uplink0");
  ASSERT_NE(index, 0u);
  Status s = dp_->EnsureUplink(ByIndex(index, kUplinkAddresses));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(dp_->uplink_index(), index);
  EXPECT_THAT(Out("ip -o link show uplink0"), HasSubstr(",UP"));
  EXPECT_THAT(Out("ip -o addr show dev uplink0"), HasSubstr("inet 10.99.0.1/24"));
}

TEST_F(NetlinkDataplaneTest, EnsureUplinkRefusesAddressesWithoutHostPart) {
  // IpPrefix::Parse makes the network 10.99.0.0/24 of "10.99.0.1/24": refused, never configured.
  Status s = dp_->EnsureUplink(ByName("uplink0", {Prefix("10.99.0.1/24")}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("10.99.0.0/24"));
  EXPECT_THAT(Out("ip -o addr show dev uplink0"), Not(HasSubstr("10.99.0.0/24")));
  // Host routes are their own host part.
  s = dp_->EnsureUplink(ByName("uplink0", {Prefix("10.99.0.7/32"), Prefix("fd00:99::7/128")}));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(Out("ip -o addr show dev uplink0"), HasSubstr("inet 10.99.0.7/32"));

  UplinkConfig both = ByName("uplink0", {});
  both.index = if_nametoindex("uplink0");
  EXPECT_EQ(dp_->EnsureUplink(both).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dp_->EnsureUplink(ByName("", {})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dp_->EnsureUplink(ByName(std::string(IFNAMSIZ, 'x'), {})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(NetlinkDataplaneTest, MissingUplinkIsNotFound) {
  Status s = dp_->EnsureUplink(ByName("nope0", kUplinkAddresses));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("nope0"));
  s = dp_->EnsureUplink(ByIndex(999999, {}));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("999999"));
  EXPECT_FALSE(dp_->uplink_index().has_value());
}

TEST_F(NetlinkDataplaneTest, UpsertBeforeEnsureUplinkFails) {
  std::vector<RouteOp> ops = {Upsert(1, "10.244.2.0/26", "10.99.0.2")};
  std::vector<OpResult> results = dp_->Apply(ops);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(NetlinkDataplaneTest, UpsertReplaceDelete) {
  EnsureTestUplink();
  std::vector<RouteOp> add = {Upsert(1, "10.244.2.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:244:2::/122", "fd00:99::2")};
  ExpectAllOk(dp_->Apply(add), add);
  std::string v4 = Out("ip -o route show proto 212");
  std::string v6 = Out("ip -o -6 route show proto 212");
  EXPECT_THAT(v4, HasSubstr("10.244.2.0/26 via 10.99.0.2 dev uplink0"));
  EXPECT_THAT(v6, HasSubstr("fd00:244:2::/122 via fd00:99::2 dev uplink0"));
  EXPECT_THAT(Dump(),
              UnorderedElementsAreArray(std::vector<net::Route>{add[0].route, add[1].route}));

  std::vector<RouteOp> replace = {Replace(3, "10.244.2.0/26", "10.99.0.3"),
                                  Replace(4, "fd00:244:2::/122", "fd00:99::3")};
  ExpectAllOk(dp_->Apply(replace), replace);
  v4 = Out("ip -o route show proto 212");
  v6 = Out("ip -o -6 route show proto 212");
  EXPECT_EQ(CountLines(v4), 1) << v4;
  EXPECT_EQ(CountLines(v6), 1) << v6;
  EXPECT_THAT(v4, HasSubstr("10.244.2.0/26 via 10.99.0.3 dev uplink0"));
  EXPECT_THAT(v6, HasSubstr("fd00:244:2::/122 via fd00:99::3 dev uplink0"));

  std::vector<RouteOp> del = {Delete(5, "10.244.2.0/26"), Delete(6, "fd00:244:2::/122")};
  ExpectAllOk(dp_->Apply(del), del);
  EXPECT_EQ(Out("ip -o route show proto 212"), "");
  EXPECT_EQ(Out("ip -o -6 route show proto 212"), "");
  EXPECT_TRUE(Dump().empty());

  // Deleting what is already gone succeeds.
  std::vector<RouteOp> again = {Delete(7, "10.244.2.0/26"), Delete(8, "fd00:244:2::/122")};
  ExpectAllOk(dp_->Apply(again), again);
}

TEST_F(NetlinkDataplaneTest, BatchOf500Routes) {
  EnsureTestUplink();
  std::vector<RouteOp> ops;
  std::vector<net::Route> want;
  for (int i = 0; i < 250; ++i) {
    net::IpPrefix v4(Ip("10.200.0.0").Plus(static_cast<uint64_t>(i) * 64), 26);
    net::IpPrefix v6(Ip("fd00:200::").Plus(static_cast<uint64_t>(i) * 64), 122);
    ops.push_back({static_cast<uint64_t>(2 * i), OpType::kUpsert, {v4, Ip("10.99.0.2")}});
    ops.push_back({static_cast<uint64_t>(2 * i + 1), OpType::kUpsert, {v6, Ip("fd00:99::2")}});
    want.push_back(ops[ops.size() - 2].route);
    want.push_back(ops.back().route);
  }
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_EQ(CountLines(Out("ip -o route show proto 212")), 250);
  EXPECT_EQ(CountLines(Out("ip -o -6 route show proto 212")), 250);
  EXPECT_THAT(Dump(), UnorderedElementsAreArray(want));

  for (RouteOp& op : ops) op.type = OpType::kDelete;
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_TRUE(Dump().empty());
}

TEST_F(NetlinkDataplaneTest, OneBadOpInABatchFailsAlone) {
  EnsureTestUplink();
  std::vector<RouteOp> ops = {
      Upsert(10, "10.244.1.0/26", "10.99.0.2"),
      Upsert(11, "10.244.9.0/24", "192.0.2.1"),  // not on-link: ENETUNREACH
      Upsert(12, "fd00:244:1::/122", "fd00:99::2"),
      Delete(13, "10.244.77.0/26"),  // already gone
      Upsert(14, "10.244.3.0/26", "10.99.0.2"),
  };
  std::vector<OpResult> results = dp_->Apply(ops);
  ASSERT_EQ(results.size(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(results[i].seq, ops[i].seq);
    if (i == 1) continue;
    EXPECT_TRUE(results[i].status.ok()) << i << ": " << results[i].status;
  }
  std::printf("the bad op's result: %s\n", results[1].status.ToString().c_str());
  EXPECT_EQ(results[1].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(results[1].status.message(),
              HasSubstr("add 10.244.9.0/24 via 192.0.2.1: Network is unreachable"));
  EXPECT_EQ(CountLines(Out("ip -o route show proto 212")), 2);
  EXPECT_EQ(Dump().size(), 3u);
}

TEST_F(NetlinkDataplaneTest, RoutesOfOthersAreInvisibleAndSurvive) {
  EnsureTestUplink();
  const std::vector<std::string> foreign = {
      "ip route add 10.50.0.0/24 via 10.99.0.9 proto static",
      "ip route add default via 10.99.0.254",
      "ip route add 10.70.0.0/24 via 10.99.0.9 proto 80",             // Felix
      "ip route add 10.60.0.0/24 via 10.99.0.9 proto 212 table 100",  // ours, other table
      "ip route add 10.244.2.0/26 via 10.99.0.9 proto static metric 5",
      "ip -6 route add fd00:50::/64 via fd00:99::9 proto static",
      "ip -6 route add default via fd00:99::254",
      "ip -6 route add fd00:244:2::/122 via fd00:99::9 proto static metric 100",
  };
  for (const std::string& cmd : foreign) ASSERT_EQ(Sh(cmd), 0) << cmd;
  const std::string before = ForeignSnapshot();
  ASSERT_THAT(before, HasSubstr("default via 10.99.0.254"));

  std::vector<RouteOp> ops = {Upsert(1, "10.244.2.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:244:2::/122", "fd00:99::2")};
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_THAT(Dump(),
              UnorderedElementsAreArray(std::vector<net::Route>{ops[0].route, ops[1].route}));
  // Replacing ours leaves the static route with the same prefix (other metric) alone.
  ops = {Replace(3, "10.244.2.0/26", "10.99.0.3"), Replace(4, "fd00:244:2::/122", "fd00:99::3")};
  ExpectAllOk(dp_->Apply(ops), ops);

  // Deletes of every foreign prefix: "succeed" (nothing of ours there) and delete nothing.
  ops = {Delete(5, "10.244.2.0/26"),  Delete(6, "fd00:244:2::/122"), Delete(7, "10.50.0.0/24"),
         Delete(8, "10.70.0.0/24"),   Delete(9, "10.60.0.0/24"),     Delete(10, "fd00:50::/64"),
         Delete(11, "10.244.2.0/26"), Delete(12, "fd00:244:2::/122")};
  ExpectAllOk(dp_->Apply(ops), ops);
  ops = {Delete(13, "0.0.0.0/0"), Delete(14, "::/0")};
  for (const OpResult& r : dp_->Apply(ops)) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  }
  EXPECT_TRUE(Dump().empty());
  EXPECT_EQ(ForeignSnapshot(), before);
}

TEST_F(NetlinkDataplaneTest, ForeignRouteAtOurKeyIsAConflictAndIsNeverReplaced) {
  EnsureTestUplink();
  // The same kernel key as the agent's routes: table main, default metric (IPv4 0, IPv6 1024).
  ASSERT_EQ(Sh("ip route add 10.2.0.0/26 via 10.99.0.9 proto static"), 0);
  ASSERT_EQ(Sh("ip -6 route add fd00:2::/122 via fd00:99::9 proto static"), 0);
  const std::string before = ForeignSnapshot();

  std::vector<RouteOp> ops = {Upsert(1, "10.2.0.0/26", "10.99.0.2"),
                              Upsert(2, "10.244.1.0/26", "10.99.0.2"),  // free: programmed
                              Upsert(3, "fd00:2::/122", "fd00:99::2")};
  std::vector<OpResult> results = dp_->Apply(ops);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].seq, 1u);
  EXPECT_EQ(results[0].status.code(), absl::StatusCode::kAlreadyExists) << results[0].status;
  EXPECT_EQ(results[0].status.message(),
            "10.2.0.0/26 is held by a foreign route (proto static, via 10.99.0.9)");
  EXPECT_TRUE(results[1].status.ok()) << results[1].status;
  EXPECT_EQ(results[2].status.code(), absl::StatusCode::kAlreadyExists) << results[2].status;
  EXPECT_EQ(results[2].status.message(),
            "fd00:2::/122 is held by a foreign route (proto static, via fd00:99::9, metric 1024)");

  EXPECT_EQ(ForeignSnapshot(), before);
  EXPECT_THAT(Out("ip -o route show 10.2.0.0/26"), Not(HasSubstr("proto 212")));
  EXPECT_EQ(Out("ip -o -6 route show proto 212"), "");
  EXPECT_THAT(Dump(), UnorderedElementsAreArray(std::vector<net::Route>{ops[1].route}));

  // Deleting the contested prefixes removes nothing: the kernel matches on our protocol.
  std::vector<RouteOp> del = {Delete(4, "10.2.0.0/26"), Delete(5, "fd00:2::/122")};
  ExpectAllOk(dp_->Apply(del), del);
  EXPECT_EQ(ForeignSnapshot(), before);

  // The operator removes the static routes: the retried upsert now installs ours.
  ASSERT_EQ(Sh("ip route del 10.2.0.0/26 proto static"), 0);
  ASSERT_EQ(Sh("ip -6 route del fd00:2::/122 proto static"), 0);
  std::vector<RouteOp> retry = {ops[0], ops[2]};
  ExpectAllOk(dp_->Apply(retry), retry);
  EXPECT_THAT(Out("ip -o route show 10.2.0.0/26"),
              HasSubstr("10.2.0.0/26 via 10.99.0.2 dev uplink0 proto 212"));
  EXPECT_THAT(Out("ip -o -6 route show fd00:2::/122"),
              HasSubstr("fd00:2::/122 via fd00:99::2 dev uplink0 proto 212"));
}

TEST_F(NetlinkDataplaneTest, ConflictNamesBlackholesAndOtherProtocols) {
  EnsureTestUplink();
  ASSERT_EQ(Sh("ip route add blackhole 10.3.0.0/26 proto bird"), 0);
  ASSERT_EQ(Sh("ip route add 10.3.1.0/26 via 10.99.0.7 proto 80"), 0);  // Felix
  std::vector<RouteOp> ops = {Upsert(1, "10.3.0.0/26", "10.99.0.2"),
                              Upsert(2, "10.3.1.0/26", "10.99.0.2")};
  std::vector<OpResult> results = dp_->Apply(ops);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status.message(),
            "10.3.0.0/26 is held by a foreign route (proto bird, blackhole)");
  EXPECT_EQ(results[1].status.message(),
            "10.3.1.0/26 is held by a foreign route (proto 80, via 10.99.0.7)");
  EXPECT_THAT(Out("ip -o route show 10.3.0.0/26"), HasSubstr("blackhole 10.3.0.0/26 proto bird"));
  EXPECT_THAT(Out("ip -o route show 10.3.1.0/26"), HasSubstr("via 10.99.0.7 dev uplink0 proto 80"));
}

TEST_F(NetlinkDataplaneTest, ForeignRouteTakingOverOursLaterIsLeftAlone) {
  EnsureTestUplink();
  std::vector<RouteOp> ops = {Upsert(1, "10.2.0.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:2::/122", "fd00:99::2")};
  ExpectAllOk(dp_->Apply(ops), ops);
  // Another route source cannot add at our key (EEXIST, like our own exclusive create)...
  EXPECT_NE(Sh("ip route add 10.2.0.0/26 via 10.99.0.9 proto static 2>/dev/null"), 0);
  // ...but a replace takes the key over: the kernel keeps one route per key, now the static one.
  ASSERT_EQ(Sh("ip route replace 10.2.0.0/26 via 10.99.0.9 proto static"), 0);
  ASSERT_EQ(Sh("ip -6 route replace fd00:2::/122 via fd00:99::9 proto static"), 0);
  const std::string before = ForeignSnapshot();
  ASSERT_THAT(before, HasSubstr("10.2.0.0/26 via 10.99.0.9 dev uplink0 proto static"));

  // A resync's dump no longer shows ours there.
  EXPECT_TRUE(Dump().empty());
  // The next upsert (same or new gateway) reports the conflict and overwrites nothing.
  std::vector<RouteOp> again = {Upsert(3, "10.2.0.0/26", "10.99.0.2"),
                                Upsert(4, "fd00:2::/122", "fd00:99::3")};
  for (const OpResult& r : dp_->Apply(again)) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kAlreadyExists) << r.status;
    EXPECT_THAT(r.status.message(), HasSubstr("is held by a foreign route (proto static"));
  }
  // A delete (the block went away) removes nothing either.
  std::vector<RouteOp> del = {Delete(5, "10.2.0.0/26"), Delete(6, "fd00:2::/122")};
  ExpectAllOk(dp_->Apply(del), del);
  EXPECT_EQ(ForeignSnapshot(), before);
}

TEST_F(NetlinkDataplaneTest, RouteMetricOfOurOwnLivesBesideTheForeignRoute) {
  EnsureTestUplink();
  NetlinkDataplaneConfig config;
  config.route_metric = 50;
  NetlinkDataplane metric50(config);
  ASSERT_TRUE(metric50.Connect().ok());
  ASSERT_TRUE(metric50.EnsureUplink(ByName("uplink0", kUplinkAddresses)).ok());
  ASSERT_EQ(Sh("ip route add 10.2.0.0/26 via 10.99.0.9 proto static"), 0);       // metric 0
  ASSERT_EQ(Sh("ip -6 route add fd00:2::/122 via fd00:99::9 proto static"), 0);  // metric 1024
  const std::string before = ForeignSnapshot();

  std::vector<RouteOp> ops = {Upsert(1, "10.2.0.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:2::/122", "fd00:99::2")};
  ExpectAllOk(metric50.Apply(ops), ops);
  EXPECT_THAT(Out("ip -o route show 10.2.0.0/26"),
              HasSubstr("10.2.0.0/26 via 10.99.0.2 dev uplink0 proto 212 metric 50"));
  EXPECT_THAT(Out("ip -o -6 route show fd00:2::/122"),
              HasSubstr("fd00:2::/122 via fd00:99::2 dev uplink0 proto 212 metric 50"));
  EXPECT_EQ(ForeignSnapshot(), before);
  // A gateway change replaces ours (same key), still beside the foreign one.
  ops = {Replace(3, "10.2.0.0/26", "10.99.0.3"), Replace(4, "fd00:2::/122", "fd00:99::3")};
  ExpectAllOk(metric50.Apply(ops), ops);
  StatusOr<std::vector<net::Route>> ours = metric50.DumpOwnedRoutes();
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_THAT(*ours,
              UnorderedElementsAreArray(std::vector<net::Route>{ops[0].route, ops[1].route}));
  EXPECT_EQ(ForeignSnapshot(), before);

  std::vector<RouteOp> del = {Delete(5, "10.2.0.0/26"), Delete(6, "fd00:2::/122")};
  ExpectAllOk(metric50.Apply(del), del);
  EXPECT_EQ(Out("ip -o route show proto 212") + Out("ip -o -6 route show proto 212"), "");
  EXPECT_EQ(ForeignSnapshot(), before);
}

TEST_F(NetlinkDataplaneTest, RoutesOfOursAtAnOldMetricAreReplacedThenRemoved) {
  EnsureTestUplink();
  std::vector<RouteOp> ops = {Upsert(1, "10.2.0.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:2::/122", "fd00:99::2"),
                              Upsert(3, "10.2.1.0/26", "10.99.0.2")};
  ExpectAllOk(dp_->Apply(ops), ops);  // at the default metric (IPv4 0, IPv6 1024)
  ASSERT_EQ(Sh("ip route add 10.2.0.0/26 via 10.99.0.9 proto static metric 50"), 0);  // not ours

  // Restarted with --route-metric 50: the old routes are reported as drift (no gateway)...
  NetlinkDataplaneConfig config;
  config.route_metric = 50;
  auto metric50 = std::make_unique<NetlinkDataplane>(config);
  ASSERT_TRUE(metric50->Connect().ok());
  ASSERT_TRUE(metric50->EnsureUplink(ByName("uplink0", kUplinkAddresses)).ok());
  StatusOr<std::vector<net::Route>> seen = metric50->DumpOwnedRoutes();
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_EQ(seen->size(), 3u);
  for (const net::Route& r : *seen) EXPECT_TRUE(r.gateway.IsUnspecified()) << r.ToString();

  // ...so the reconciler upserts the wanted ones and deletes the unwanted one: the new route
  // first, then the old one goes. The reconciler holds them to be ours (the dump showed them),
  // but our key at metric 50 is created exclusively: the static route there is a conflict and
  // stays.
  std::vector<RouteOp> resync = {Replace(4, "10.2.0.0/26", "10.99.0.2"),
                                 Replace(5, "fd00:2::/122", "fd00:99::2"),
                                 Delete(6, "10.2.1.0/26")};
  std::vector<OpResult> results = metric50->Apply(resync);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status.code(), absl::StatusCode::kAlreadyExists) << results[0].status;
  EXPECT_TRUE(results[1].status.ok()) << results[1].status;
  EXPECT_TRUE(results[2].status.ok()) << results[2].status;
  EXPECT_THAT(Out("ip -o -6 route show proto 212"),
              HasSubstr("fd00:2::/122 via fd00:99::2 dev uplink0 metric 50"));
  EXPECT_EQ(CountLines(Out("ip -o -6 route show proto 212")), 1);
  EXPECT_THAT(Out("ip -o route show 10.2.1.0/26"), Not(HasSubstr("proto 212")));
  // The conflicted prefix keeps our old route until ours can be written: never a gap.
  EXPECT_THAT(Out("ip -o route show proto 212"), HasSubstr("10.2.0.0/26 via 10.99.0.2"));
  EXPECT_THAT(Out("ip -o route show 10.2.0.0/26"), HasSubstr("proto static metric 50"));

  // Once the static route goes, the retry installs ours at 50 and removes the one at 0.
  ASSERT_EQ(Sh("ip route del 10.2.0.0/26 proto static metric 50"), 0);
  std::vector<RouteOp> retry = {resync[0]};
  ExpectAllOk(metric50->Apply(retry), retry);
  EXPECT_EQ(Out("ip -o route show proto 212"),
            "10.2.0.0/26 via 10.99.0.2 dev uplink0 metric 50 \n");
  seen = metric50->DumpOwnedRoutes();
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_THAT(*seen,
              UnorderedElementsAreArray(std::vector<net::Route>{ops[0].route, ops[1].route}));

  // And back to the default metric: IPv4's old route at 50 goes after the new one at 0.
  ASSERT_TRUE(dp_->Connect().ok());
  ASSERT_EQ(Dump().size(), 2u);
  std::vector<RouteOp> back = {Replace(7, "10.2.0.0/26", "10.99.0.2"),
                               Replace(8, "fd00:2::/122", "fd00:99::2")};
  ExpectAllOk(dp_->Apply(back), back);
  EXPECT_EQ(Out("ip -o route show proto 212"), "10.2.0.0/26 via 10.99.0.2 dev uplink0 \n");
  EXPECT_EQ(CountLines(Out("ip -o -6 route show proto 212"), "metric 1024"), 1);
  EXPECT_EQ(CountLines(Out("ip -o -6 route show proto 212")), 1);
  EXPECT_THAT(Dump(),
              UnorderedElementsAreArray(std::vector<net::Route>{back[0].route, back[1].route}));
}

TEST_F(NetlinkDataplaneTest, GatewayChangesOfManyRoutesReplaceOurs) {
  // An upsert the caller holds to be ours is a plain replace, with no dump. One it does not
  // (a caller that has not dumped yet) meets EEXIST first and is replaced after one lookup dump
  // per batch (in batches larger than one send).
  EnsureTestUplink();
  std::vector<RouteOp> ops;
  for (int i = 0; i < 300; ++i) {
    net::IpPrefix dst(Ip("10.202.0.0").Plus(static_cast<uint64_t>(i) * 64), 26);
    ops.push_back({static_cast<uint64_t>(i), OpType::kUpsert, {dst, Ip("10.99.0.2")}});
  }
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_EQ(dp_->holder_lookups(), 0u);

  for (const std::string gateway : {"10.99.0.3", "10.99.0.4"}) {
    const bool caller_knows = gateway == "10.99.0.4";
    std::vector<net::Route> want;
    for (RouteOp& op : ops) {
      op.route.gateway = Ip(gateway.c_str());
      op.replaces_ours = caller_knows;
      want.push_back(op.route);
    }
    ExpectAllOk(dp_->Apply(ops), ops);
    EXPECT_THAT(Dump(), UnorderedElementsAreArray(want));
    EXPECT_EQ(CountLines(Out("ip -o route show proto 212"), "via " + gateway), 300);
    EXPECT_EQ(dp_->holder_lookups(), 1u) << "only the round the caller did not know looks up";
  }
}

TEST_F(NetlinkDataplaneTest, OtherTableIsSeparate) {
  EnsureTestUplink();
  NetlinkDataplaneConfig config;
  config.route_table = 1000;
  NetlinkDataplane table1000(config);
  ASSERT_TRUE(table1000.Connect().ok());
  ASSERT_TRUE(table1000.EnsureUplink(ByName("uplink0", kUplinkAddresses)).ok());

  std::vector<RouteOp> ops = {Upsert(1, "10.244.5.0/26", "10.99.0.2"),
                              Upsert(2, "fd00:244:5::/122", "fd00:99::2")};
  ExpectAllOk(table1000.Apply(ops), ops);
  EXPECT_THAT(Out("ip -o route show table 1000 proto 212"),
              HasSubstr("10.244.5.0/26 via 10.99.0.2 dev uplink0"));
  EXPECT_THAT(Out("ip -o -6 route show table 1000 proto 212"),
              HasSubstr("fd00:244:5::/122 via fd00:99::2 dev uplink0"));
  EXPECT_EQ(Out("ip -o route show proto 212"), "");

  // The main-table dataplane neither sees nor deletes them.
  EXPECT_TRUE(Dump().empty());
  std::vector<RouteOp> del = {Delete(3, "10.244.5.0/26"), Delete(4, "fd00:244:5::/122")};
  ExpectAllOk(dp_->Apply(del), del);
  StatusOr<std::vector<net::Route>> theirs = table1000.DumpOwnedRoutes();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_THAT(*theirs,
              UnorderedElementsAreArray(std::vector<net::Route>{ops[0].route, ops[1].route}));
}

TEST_F(NetlinkDataplaneTest, OwnedRouteOnAnotherInterfaceShowsAsDrift) {
  EnsureTestUplink();
  ASSERT_EQ(Sh("ip link add other0 type veth peer name other0p"), 0);
  ASSERT_EQ(Sh("ip link set other0 up && ip link set other0p up"), 0);
  ASSERT_EQ(Sh("ip addr add 10.98.0.1/24 dev other0"), 0);
  ASSERT_EQ(Sh("ip route add 10.244.8.0/26 via 10.98.0.2 dev other0 proto 212"), 0);
  std::vector<net::Route> routes = Dump();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_TRUE(routes[0].gateway.IsUnspecified());
  // Upsert moves it onto the uplink.
  std::vector<RouteOp> ops = {Upsert(1, "10.244.8.0/26", "10.99.0.2")};
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_THAT(Dump(), UnorderedElementsAreArray(std::vector<net::Route>{ops[0].route}));
  Sh("ip link del other0");
}

TEST_F(NetlinkDataplaneTest, ReconnectAndDisconnected) {
  EnsureTestUplink();
  ASSERT_TRUE(dp_->Connect().ok());  // re-open: idempotent
  std::vector<RouteOp> ops = {Upsert(1, "10.244.2.0/26", "10.99.0.2")};
  ExpectAllOk(dp_->Apply(ops), ops);

  NetlinkDataplane never_connected;
  std::vector<OpResult> results = never_connected.Apply(ops);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(never_connected.DumpOwnedRoutes().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(NetlinkDataplaneTest, BrokenSocketMakesEveryUnansweredOpUnavailable) {
  EnsureTestUplink();
  std::vector<RouteOp> ops;
  for (int i = 0; i < 300; ++i) {
    net::IpPrefix dst(Ip("10.201.0.0").Plus(static_cast<uint64_t>(i) * 256), 24);
    ops.push_back({static_cast<uint64_t>(i), OpType::kUpsert, {dst, Ip("10.99.0.2")}});
  }
  dp_->BreakSocketForTest();
  std::vector<OpResult> results = dp_->Apply(ops);
  ASSERT_EQ(results.size(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(results[i].seq, ops[i].seq);
    EXPECT_EQ(results[i].status.code(), absl::StatusCode::kUnavailable) << results[i].status;
  }
  EXPECT_EQ(dp_->DumpOwnedRoutes().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(dp_->EnsureUplink(ByName("uplink0", {})).code(), absl::StatusCode::kUnavailable);

  // Reconnect and resync: the same batch now applies.
  ASSERT_TRUE(dp_->Connect().ok());
  ExpectAllOk(dp_->Apply(ops), ops);
  EXPECT_EQ(Dump().size(), ops.size());
}

TEST(NetlinkDataplaneConfigTest, RefusesProtocolsThatAreNotOurs) {
  for (uint8_t proto : {0, 1, 2, 3, 4}) {
    NetlinkDataplaneConfig config;
    config.route_protocol = proto;
    EXPECT_EQ(NetlinkDataplane(config).Connect().code(), absl::StatusCode::kInvalidArgument);
  }
  NetlinkDataplaneConfig local;
  local.route_table = 255;
  EXPECT_EQ(NetlinkDataplane::ValidateConfig(local).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(NetlinkDataplane::ValidateConfig({}).ok());
  EXPECT_EQ(NetlinkDataplane().Name(), "linux");
}

}  // namespace
}  // namespace vcra::dataplane
