#include "dataplane/vpp/vpp_dataplane.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "dataplane/vpp/sim/vpp_sim.h"
#include "dataplane/vpp/vpp_client.h"
#include "tests/support/vpp_process.h"
#include "tests/support/wait.h"

namespace vcra::dataplane::vpp {
namespace {

using sim::SimOptions;
using sim::VppSim;

net::IpAddress Ip(std::string_view s) { return *net::IpAddress::Parse(s); }
net::IpPrefix Pfx(std::string_view s) { return *net::IpPrefix::Parse(s); }
net::Route R(std::string_view dst, std::string_view gw) { return {Pfx(dst), Ip(gw)}; }

RouteOp Upsert(uint64_t seq, std::string_view dst, std::string_view gw) {
  return {seq, OpType::kUpsert, R(dst, gw)};
}
RouteOp Delete(uint64_t seq, std::string_view dst) {
  return {seq, OpType::kDelete, {Pfx(dst), net::IpAddress()}};
}

UplinkConfig UplinkByIndex(uint32_t idx) {
  UplinkConfig u;
  u.index = idx;
  u.addresses = {*net::IpPrefix::ParseInterfaceAddress("172.16.0.1/24"),
                 *net::IpPrefix::ParseInterfaceAddress("fd00:ffff::1/64")};
  return u;
}

std::vector<net::Route> Sorted(std::vector<net::Route> v) {
  std::sort(v.begin(), v.end(), [](const net::Route& a, const net::Route& b) {
    return std::tie(a.dst, a.gateway) < std::tie(b.dst, b.gateway);
  });
  return v;
}

void ExpectAllOk(const std::vector<OpResult>& res) {
  for (const OpResult& r : res) EXPECT_TRUE(r.status.ok()) << r.seq << ": " << r.status;
}

using vcra::testing::WaitFor;

class VppDataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimOptions o;
    o.socket_path = "/tmp/vcra-vppdp-" + std::to_string(::getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".sock";
    o.seed = 7;
    sim_ = std::make_unique<VppSim>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }

  VppDataplaneConfig Config() {
    VppDataplaneConfig c;
    c.api_socket = sim_->socket_path();
    c.pools = {Pfx("10.0.0.0/16"), Pfx("fd00:2::/48")};
    c.request_timeout = std::chrono::milliseconds(5000);
    return c;
  }

  std::unique_ptr<VppDataplane> Ready(VppDataplaneConfig c) {
    auto dp = std::make_unique<VppDataplane>(c);
    Status st = dp->Connect();
    EXPECT_TRUE(st.ok()) << st;
    st = dp->EnsureUplink(UplinkByIndex(1));
    EXPECT_TRUE(st.ok()) << st;
    return dp;
  }

  std::unique_ptr<VppSim> sim_;
};

TEST_F(VppDataplaneTest, ConnectRegistersAFibSourceAndEnsureUplinkByIndex) {
  auto dp = Ready(Config());
  EXPECT_EQ(dp->Name(), "vpp");
  EXPECT_EQ(dp->ownership(), VppDataplane::Ownership::kFibSource);
  ASSERT_TRUE(dp->fib_source_id().has_value());
  EXPECT_EQ(sim_->Sources()[*dp->fib_source_id()].name, "vpp-calico-route-agent");
  auto itf = sim_->Interface(1);
  ASSERT_TRUE(itf.has_value());
  EXPECT_TRUE(itf->admin_up);
  ASSERT_EQ(itf->addresses.size(), 2u);
  // Idempotent: a second EnsureUplink adds nothing and fails nothing.
  ASSERT_TRUE(dp->EnsureUplink(UplinkByIndex(1)).ok());
  EXPECT_EQ(sim_->Interface(1)->addresses.size(), 2u);
  // Connected/local entries exist but are not the agent's.
  EXPECT_TRUE(sim_->FindRoute(Pfx("172.16.0.0/24")).has_value());
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
}

TEST_F(VppDataplaneTest, EnsureUplinkByNameAddsOnlyMissingAddresses) {
  ASSERT_TRUE(sim_->AddInterfaceAddress(1, Ip("172.16.0.1"), 24).ok());
  VppDataplane dp(Config());
  ASSERT_TRUE(dp.Connect().ok());
  UplinkConfig u = UplinkByIndex(0);
  u.index.reset();
  u.name = "host-eth0";
  ASSERT_TRUE(dp.EnsureUplink(u).ok());
  EXPECT_EQ(dp.uplink_sw_if_index(), 1u);
  EXPECT_EQ(sim_->Interface(1)->addresses.size(), 2u);
  u.name = "host";  // VPP's filter is a substring match; we want the exact name
  EXPECT_EQ(dp.EnsureUplink(u).code(), absl::StatusCode::kNotFound);
  u.name.clear();
  u.index = 9;
  EXPECT_EQ(dp.EnsureUplink(u).code(), absl::StatusCode::kNotFound);
}

TEST_F(VppDataplaneTest, UpsertReplaceDeleteBothFamilies) {
  auto dp = Ready(Config());
  uint8_t src = *dp->fib_source_id();
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2"),
                                             Upsert(2, "fd00:2::/122", "fd00:ffff::2")}));
  auto r4 = sim_->FindRoute(Pfx("10.0.2.0/26"));
  ASSERT_TRUE(r4.has_value());
  ASSERT_EQ(r4->sources.size(), 1u);
  ASSERT_TRUE(r4->sources.count(src));
  ASSERT_EQ(r4->best_paths().size(), 1u);
  EXPECT_EQ(r4->best_paths()[0].sw_if_index, 1u);
  EXPECT_EQ(r4->best_paths()[0].NextHop(), Ip("172.16.0.2"));
  auto r6 = sim_->FindRoute(Pfx("fd00:2::/122"));
  ASSERT_TRUE(r6.has_value());
  EXPECT_EQ(r6->best_paths()[0].NextHop(), Ip("fd00:ffff::2"));
  EXPECT_EQ(r6->best_paths()[0].proto, kProtoIp6);

  // Replace: the entry (and its stats index) stays, the path set is swapped in one message.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(3, "10.0.2.0/26", "172.16.0.9")}));
  auto moved = sim_->FindRoute(Pfx("10.0.2.0/26"));
  ASSERT_EQ(moved->best_paths().size(), 1u);
  EXPECT_EQ(moved->best_paths()[0].NextHop(), Ip("172.16.0.9"));
  EXPECT_EQ(moved->stats_index, r4->stats_index);

  auto owned = dp->DumpOwnedRoutes();
  ASSERT_TRUE(owned.ok()) << owned.status();
  EXPECT_EQ(Sorted(*owned),
            Sorted({R("10.0.2.0/26", "172.16.0.9"), R("fd00:2::/122", "fd00:ffff::2")}));

  auto res = dp->Apply(std::vector<RouteOp>{Delete(4, "10.0.2.0/26"), Delete(5, "fd00:2::/122"),
                                            Delete(6, "10.0.9.0/26")});  // 6: never existed
  ExpectAllOk(res);
  EXPECT_EQ(res[2].seq, 6u);
  EXPECT_FALSE(sim_->FindRoute(Pfx("10.0.2.0/26")).has_value());
  EXPECT_FALSE(sim_->FindRoute(Pfx("fd00:2::/122")).has_value());
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
}

TEST_F(VppDataplaneTest, ForeignRoutesAreNeverTouchedNorReported) {
  auto dp = Ready(Config());
  FibPath via_uplink = FibPath::Via(Ip("172.16.0.7"), 1);
  // Another client's API route, a CLI route, both inside the pools; a default route; a route
  // outside the pools; the connected routes of the uplink already exist.
  ASSERT_TRUE(sim_->AddRoute(Pfx("10.0.3.0/26"), {via_uplink}, sim::kSrcApi).ok());
  ASSERT_TRUE(sim_->AddRoute(Pfx("10.0.4.0/26"), {via_uplink}, sim::kSrcCli).ok());
  ASSERT_TRUE(
      sim_->AddRoute(Pfx("0.0.0.0/0"), {FibPath::Via(Ip("172.16.0.254"), 1)}, sim::kSrcApi).ok());
  ASSERT_TRUE(sim_->AddRoute(Pfx("192.168.50.0/24"), {via_uplink}, sim::kSrcApi).ok());
  auto before4 = sim_->Routes(false);
  auto before6 = sim_->Routes(true);

  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
  // Our route for a prefix a CLI route also has: adding and deleting ours leaves theirs.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.4.0/26", "172.16.0.2")}));
  EXPECT_EQ(*dp->DumpOwnedRoutes(), std::vector<net::Route>{R("10.0.4.0/26", "172.16.0.2")});
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(2, "10.0.4.0/26")}));
  auto cli = sim_->FindRoute(Pfx("10.0.4.0/26"));
  ASSERT_TRUE(cli.has_value());
  EXPECT_EQ(cli->sources.size(), 1u);
  EXPECT_TRUE(cli->sources.count(sim::kSrcCli));
  // Deleting a foreign prefix "by mistake" only removes our (absent) source: no effect.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(3, "10.0.3.0/26"), Delete(4, "0.0.0.0/0")}));

  auto after4 = sim_->Routes(false);
  auto after6 = sim_->Routes(true);
  ASSERT_EQ(after4.size(), before4.size());
  ASSERT_EQ(after6.size(), before6.size());
  for (size_t i = 0; i < after4.size(); ++i) {
    EXPECT_EQ(after4[i].prefix, before4[i].prefix);
    EXPECT_EQ(after4[i].sources, before4[i].sources) << after4[i].prefix.ToString();
  }
}

TEST_F(VppDataplaneTest, FibSourceIsReusedAcrossAgentRestarts) {
  uint8_t first;
  {
    auto dp = Ready(Config());
    first = *dp->fib_source_id();
    ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.5.0/26", "172.16.0.5")}));
  }  // agent exits: routes stay
  size_t sources = sim_->Sources().size();
  auto dp = Ready(Config());
  EXPECT_EQ(*dp->fib_source_id(), first);
  EXPECT_EQ(sim_->Sources().size(), sources);  // no new id allocated
  EXPECT_EQ(*dp->DumpOwnedRoutes(), std::vector<net::Route>{R("10.0.5.0/26", "172.16.0.5")});
  // Connect() while connected is a no-op.
  ASSERT_TRUE(dp->Connect().ok());
  EXPECT_EQ(sim_->Sources().size(), sources);
}

TEST_F(VppDataplaneTest, VppRestartIsUnavailableThenReconnectWorksWithNewIds) {
  auto dp = Ready(Config());
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.6.0/26", "172.16.0.6")}));
  uint16_t old_id = *sim_->MsgId(msg::kIpRouteAddDelV2);
  sim_->Restart();
  ASSERT_NE(*sim_->MsgId(msg::kIpRouteAddDelV2), old_id);
  auto res = dp->Apply(std::vector<RouteOp>{Upsert(2, "10.0.7.0/26", "172.16.0.7")});
  // Either the loss was already seen, or this batch sees it: UNAVAILABLE in both cases.
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kUnavailable) << res[0].status;
  EXPECT_EQ(dp->DumpOwnedRoutes().status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(dp->Connect().ok());
  // The restarted VPP had an empty FIB and no address on the uplink: Connect redid the uplink.
  EXPECT_TRUE(sim_->Interface(1)->admin_up);
  EXPECT_EQ(sim_->Interface(1)->addresses.size(), 2u);
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(3, "10.0.6.0/26", "172.16.0.6")}));
  EXPECT_EQ(*dp->DumpOwnedRoutes(), std::vector<net::Route>{R("10.0.6.0/26", "172.16.0.6")});
}

TEST_F(VppDataplaneTest, ConnectionDropMidBatchNeverReportsUnappliedOpsAsOk) {
  VppDataplaneConfig c = Config();
  c.api_connections = 1;  // exact counts: every op on the connection that drops
  auto dp = Ready(c);
  sim_->DropConnectionAfter(5);
  std::vector<RouteOp> ops;
  for (int i = 0; i < 20; ++i) {
    ops.push_back(
        Upsert(100 + i, net::IpPrefix(Ip("10.0.64.0").Plus(64 * i), 26).ToString(), "172.16.0.2"));
  }
  auto res = dp->Apply(ops);
  ASSERT_EQ(res.size(), 20u);
  int ok = 0, unavailable = 0;
  for (size_t i = 0; i < res.size(); ++i) {
    EXPECT_EQ(res[i].seq, ops[i].seq);
    if (res[i].status.ok()) {
      ++ok;
      EXPECT_TRUE(sim_->FindRoute(ops[i].route.dst).has_value()) << ops[i].route.ToString();
    } else {
      EXPECT_EQ(res[i].status.code(), absl::StatusCode::kUnavailable) << res[i].status;
      ++unavailable;
    }
  }
  // The simulator flushes its 5 replies before closing; the client reads them before the EOF.
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(unavailable, 15);
  // Reconnect, replay: everything lands.
  ASSERT_TRUE(dp->Connect().ok());
  ExpectAllOk(dp->Apply(ops));
  EXPECT_EQ(dp->DumpOwnedRoutes()->size(), 20u);
}

TEST_F(VppDataplaneTest, OneOfSeveralConnectionsDroppingFailsOnlyItsUnconfirmedOps) {
  VppDataplaneConfig c = Config();
  c.api_connections = 4;
  auto dp = Ready(c);
  EXPECT_EQ(sim_->connection_count(), 4);
  sim_->DropConnectionAfter(30);
  std::vector<RouteOp> ops;
  for (int i = 0; i < 200; ++i) {
    ops.push_back(
        Upsert(100 + i, net::IpPrefix(Ip("10.0.64.0").Plus(64 * i), 26).ToString(), "172.16.0.2"));
  }
  auto res = dp->Apply(ops);
  ASSERT_EQ(res.size(), ops.size());
  int ok = 0, unavailable = 0;
  for (size_t i = 0; i < res.size(); ++i) {
    EXPECT_EQ(res[i].seq, ops[i].seq);
    if (res[i].status.ok()) {
      ++ok;
      EXPECT_TRUE(sim_->FindRoute(ops[i].route.dst).has_value()) << ops[i].route.ToString();
    } else {
      EXPECT_EQ(res[i].status.code(), absl::StatusCode::kUnavailable) << res[i].status;
      ++unavailable;
    }
  }
  EXPECT_GE(ok, 30);  // the other connections carried on
  EXPECT_GT(unavailable, 0);
  // One lost connection is enough to be reported and to reconnect all of them.
  EXPECT_EQ(dp->Probe().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(dp->Connect().ok());
  EXPECT_TRUE(dp->Probe().ok());
  ExpectAllOk(dp->Apply(ops));
  EXPECT_EQ(dp->DumpOwnedRoutes()->size(), ops.size());
}

TEST_F(VppDataplaneTest, AfterALostConnectionTheBatchSendsNoMoreDeletes) {
  VppDataplaneConfig c = Config();
  c.api_connections = 4;
  auto dp = Ready(c);
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.9.0/26", "172.16.0.2")}));
  // The /32s replacing the block; one connection dies while they are sent.
  std::vector<RouteOp> ops;
  for (int i = 0; i < 60; ++i) {
    ops.push_back(
        Upsert(10 + i, net::IpPrefix(Ip("10.0.9.0").Plus(i), 32).ToString(), "172.16.0.3"));
  }
  ops.push_back(Delete(99, "10.0.9.0/26"));
  sim_->DropConnectionAfter(10);
  auto res = dp->Apply(ops);
  ASSERT_EQ(res.size(), ops.size());
  EXPECT_EQ(res.back().status.code(), absl::StatusCode::kUnavailable) << res.back().status;
  // The block's route stays until every /32 is in: no gap for the IPs that missed theirs.
  EXPECT_TRUE(sim_->FindRoute(Pfx("10.0.9.0/26")).has_value());
}

TEST_F(VppDataplaneTest, BatchSpreadOverConnectionsStaysMakeBeforeBreak) {
  VppDataplaneConfig c = Config();
  c.api_connections = 4;
  auto dp = Ready(c);
  // A block's route replaced by /32s of its IPs: every /32 upsert must be done before the /26
  // delete, whichever connections they travel on. VPP (and the simulator) hand a freed stats
  // index to the next new entry, so a /32 added after the delete would carry the block's old
  // index. The simulator is paused while the batch is written, so that everything the client
  // sends before waiting is executed together; several blocks, because which connection the
  // delete takes depends on the prefix.
  for (int block = 0; block < 8; ++block) {
    std::string base = "10.0." + std::to_string(10 + block) + ".0";
    ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, base + "/26", "172.16.0.2")}));
    uint32_t block_stats = sim_->FindRoute(Pfx(base + "/26"))->stats_index;
    std::vector<RouteOp> ops;
    for (int i = 0; i < 40; ++i) {
      ops.push_back(Upsert(10 + i, net::IpPrefix(Ip(base).Plus(i), 32).ToString(), "172.16.0.3"));
    }
    ops.push_back(Delete(99, base + "/26"));
    sim_->SetPaused(true);
    std::vector<OpResult> res;
    std::thread apply([&] { res = dp->Apply(ops); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sim_->SetPaused(false);
    apply.join();
    ExpectAllOk(res);
    EXPECT_FALSE(sim_->FindRoute(Pfx(base + "/26")).has_value());
    for (int i = 0; i < 40; ++i) {
      auto r = sim_->FindRoute(net::IpPrefix(Ip(base).Plus(i), 32));
      ASSERT_TRUE(r.has_value());
      EXPECT_NE(r->stats_index, block_stats) << r->prefix.ToString() << " added after the delete";
    }
  }
  EXPECT_EQ(dp->DumpOwnedRoutes()->size(), 8u * 40u);
}

// Both ways a batch goes out over several connections: shares within the window are put in
// flight by the calling thread (StartMany on each, then FinishMany), shares larger than the
// window get a thread per connection. Either way every op gets its own result, in op order.
TEST_F(VppDataplaneTest, BatchesWithinAndBeyondTheWindowOnSeveralConnections) {
  for (size_t window : {size_t{16}, size_t{1024}}) {
    VppDataplaneConfig c = Config();
    c.api_connections = 4;
    c.max_outstanding = window;
    auto dp = Ready(c);
    std::vector<RouteOp> ops;
    for (int i = 0; i < 2000; ++i) {
      ops.push_back(
          Upsert(i + 1, net::IpPrefix(Ip("10.96.0.0").Plus(64 * i), 26).ToString(), "172.16.0.2"));
    }
    auto res = dp->Apply(ops);
    ASSERT_EQ(res.size(), ops.size());
    for (size_t i = 0; i < res.size(); ++i) {
      ASSERT_EQ(res[i].seq, ops[i].seq);
      ASSERT_TRUE(res[i].status.ok()) << "window " << window << ": " << res[i].status;
    }
    EXPECT_EQ(dp->DumpOwnedRoutes()->size(), 2000u) << "window " << window;
    for (RouteOp& op : ops) op.type = OpType::kDelete;
    ExpectAllOk(dp->Apply(ops));
    EXPECT_TRUE(dp->DumpOwnedRoutes()->empty()) << "window " << window;
  }
}

TEST_F(VppDataplaneTest, SlowVppStillCompletesAndTimeoutsAreReported) {
  auto dp = Ready(Config());
  sim_->SetReplyDelay(std::chrono::milliseconds(20));
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2"),
                                             Upsert(2, "10.0.3.0/26", "172.16.0.2")}));
  VppDataplaneConfig c = Config();
  c.request_timeout = std::chrono::milliseconds(50);
  VppDataplane impatient(c);
  sim_->SetReplyDelay(std::chrono::milliseconds(0));
  ASSERT_TRUE(impatient.Connect().ok());
  ASSERT_TRUE(impatient.EnsureUplink(UplinkByIndex(1)).ok());
  sim_->SetReplyDelay(std::chrono::milliseconds(300));
  auto res = impatient.Apply(std::vector<RouteOp>{Upsert(3, "10.0.4.0/26", "172.16.0.2")});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kDeadlineExceeded) << res[0].status;
  sim_->SetReplyDelay(std::chrono::milliseconds(0));
}

TEST_F(VppDataplaneTest, CloseAllConnectionsThenReconnect) {
  auto dp = Ready(Config());
  sim_->CloseAllConnections();
  EXPECT_EQ(dp->DumpOwnedRoutes().status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(dp->Connect().ok());
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2")}));
  EXPECT_EQ(sim_->Sources().size(), 24u);  // the source was found again, not re-added
}

TEST_F(VppDataplaneTest, CrcMismatchFailsConnectWithAClearError) {
  sim_->OverrideNameCrc("ip_route_add_del", "ip_route_add_del_deadbeef");
  sim_->OverrideNameCrc("sw_interface_dump", "");
  VppDataplane dp(Config());
  Status st = dp.Connect();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  std::string m(st.message());
  EXPECT_NE(m.find("VPP 26.06-sim lacks"), std::string::npos) << m;
  EXPECT_NE(m.find("ip_route_add_del_b8ecfe0d (it has ip_route_add_del_deadbeef)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("sw_interface_dump_aa610c27"), std::string::npos) << m;
}

TEST_F(VppDataplaneTest, PoolRuleWhenVppLacksTheFibSourceApi) {
  sim_->OverrideNameCrc("ip_route_add_del_v2", "");
  auto dp = Ready(Config());
  ASSERT_EQ(dp->ownership(), VppDataplane::Ownership::kPoolRule);
  FibPath via_uplink = FibPath::Via(Ip("172.16.0.7"), 1);
  ASSERT_TRUE(sim_->AddRoute(Pfx("0.0.0.0/0"), {via_uplink}, sim::kSrcApi).ok());
  ASSERT_TRUE(sim_->AddRoute(Pfx("192.168.50.0/24"), {via_uplink}, sim::kSrcApi).ok());
  ASSERT_TRUE(
      sim_->AddRoute(Pfx("10.0.8.0/26"), {FibPath::Via(Ip("10.9.9.9"), 0)}, sim::kSrcApi).ok());
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2"),
                                             Upsert(2, "fd00:2::/122", "fd00:ffff::2")}));
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()),
            Sorted({R("10.0.2.0/26", "172.16.0.2"), R("fd00:2::/122", "fd00:ffff::2")}));
  // Outside the pools: refused, not sent.
  auto res = dp->Apply(std::vector<RouteOp>{Delete(3, "192.168.50.0/24"), Delete(4, "0.0.0.0/0"),
                                            Upsert(5, "192.168.60.0/24", "172.16.0.2")});
  for (const OpResult& r : res) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition) << r.status;
  }
  EXPECT_TRUE(sim_->FindRoute(Pfx("192.168.50.0/24")).has_value());
  EXPECT_TRUE(sim_->FindRoute(Pfx("0.0.0.0/0"))->sources.count(sim::kSrcApi));
  EXPECT_FALSE(sim_->FindRoute(Pfx("192.168.60.0/24")).has_value());

  // Without pools the rule recognises nothing: refuse to run.
  VppDataplaneConfig no_pools = Config();
  no_pools.pools.clear();
  VppDataplane dp2(no_pools);
  Status st = dp2.Connect();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("ip_route_add_del_v2_521ef330"), std::string::npos) << st;
}

TEST_F(VppDataplaneTest, ApplyBeforeConnectOrUplink) {
  VppDataplane dp(Config());
  auto res = dp.Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2")});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(dp.Connect().ok());
  res = dp.Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2")});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(dp.EnsureUplink(UplinkByIndex(1)).ok());
  res = dp.Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "fd00:ffff::2")});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(dp.Apply({}).empty());
}

// ---- one set of expectations, run against the simulator and, when installed, a real VPP ----
// Whatever a real VPP does here, the simulator must do too (timings aside): this is where the
// simulator learns from VPP.

// A real VPP (tests/support VppProcess) in a network namespace of its own, never the
// machine's: a private run directory, a loopback uplink (loop0, sw_if_index 1), main thread only,
// af_packet and ping only, and a main loop that sleeps 1 ms between passes (the machine is
// shared; nothing here measures speed).
class RealVpp {
 public:
  ~RealVpp() {
    vpp_.reset();  // before the namespace it runs in
    if (!netns_.empty()) (void)!std::system(("ip netns delete " + netns_ + " 2>/dev/null").c_str());
  }
  Status Start() {
    std::string name = "vcra-conf-vpp-" + std::to_string(::getpid());
    if (std::system(("ip netns add " + name).c_str()) != 0) {
      return absl::UnavailableError("ip netns add " + name + " failed");
    }
    netns_ = name;
    vcra::testing::VppProcessOptions o;
    o.netns = netns_;
    o.poll_sleep_usec = 1000;
    o.startup_cli = {"create loopback interface"};
    ASSIGN_OR_RETURN(vpp_, vcra::testing::VppProcess::Start(o));
    return absl::OkStatus();
  }
  std::string api_socket() const { return vpp_->api_socket(); }
  StatusOr<std::string> Cli(const std::string& command) const { return vpp_->Cli(command); }

 private:
  std::string netns_;
  std::unique_ptr<vcra::testing::VppProcess> vpp_;
};

enum class Backend { kSimulator, kRealVpp };

class VppConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kRealVpp) {
      if (std::string why = vcra::testing::VppProcess::UnavailableReason(); !why.empty()) {
        GTEST_SKIP() << "SKIPPED: the real VPP half: " << why;
      }
      if (::geteuid() != 0) {
        GTEST_SKIP() << "SKIPPED: the real VPP half needs root (VPP runs in its own netns)";
      }
      vpp_ = std::make_unique<RealVpp>();
      Status st = vpp_->Start();
      ASSERT_TRUE(st.ok()) << st;
      socket_ = vpp_->api_socket();
    } else {
      std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::replace(name.begin(), name.end(), '/', '_');
      SimOptions o = SimOptions::Loopback("/tmp/vcra-vppconf-" + std::to_string(::getpid()) + "-" +
                                          name.substr(0, 40) + ".sock");
      sim_ = std::make_unique<VppSim>(o);
      ASSERT_TRUE(sim_->Start().ok());
      socket_ = o.socket_path;
    }
  }

  VppDataplaneConfig Config() const {
    VppDataplaneConfig c;
    c.api_socket = socket_;
    return c;
  }

  // VPP creates its socket before it answers: retry for a bounded time.
  std::unique_ptr<VppDataplane> Ready(VppDataplaneConfig c) {
    auto dp = std::make_unique<VppDataplane>(c);
    Status st;
    WaitFor([&] { return (st = dp->Connect()).ok(); });
    EXPECT_TRUE(st.ok()) << st;
    UplinkConfig u;
    u.name = "loop0";
    u.addresses = {*net::IpPrefix::ParseInterfaceAddress("172.16.0.1/24")};
    // A real VPP runs its startup CLI (which creates loop0) about 2 s after it starts answering
    // on its API socket: retry, bounded, until the interface exists.
    WaitFor([&] { return (st = dp->EnsureUplink(u)).ok(); });
    EXPECT_TRUE(st.ok()) << st;
    return dp;
  }

  std::unique_ptr<VppClient> RawClient(size_t window = 256) {
    VppClientOptions o;
    o.socket_path = socket_;
    o.client_name = "conformance-raw";
    o.max_outstanding = window;
    auto c = std::make_unique<VppClient>(o);
    Status st = c->Connect();
    EXPECT_TRUE(st.ok()) << st;
    return c;
  }

  std::unique_ptr<RealVpp> vpp_;
  std::unique_ptr<VppSim> sim_;
  std::string socket_;
};

INSTANTIATE_TEST_SUITE_P(Backends, VppConformance,
                         ::testing::Values(Backend::kSimulator, Backend::kRealVpp),
                         [](const auto& info) {
                           return info.param == Backend::kSimulator ? "Simulator" : "RealVpp";
                         });

TEST_P(VppConformance, LoopbackUplinkUpsertReplaceDeleteAndSourceReuse) {
  auto dp = Ready(Config());
  ASSERT_FALSE(HasFailure());
  // `create loopback interface` on a VPP with only local0 gives loop0 = sw_if_index 1, and a
  // loopback's link comes up with its admin state.
  EXPECT_EQ(dp->uplink_sw_if_index(), 1u);
  {
    auto c = RawClient();
    SwInterfaceDump d;
    d.sw_if_index = 1;
    auto details = c->Dump(EncodeSwInterfaceDump(*c->MsgId(msg::kSwInterfaceDump), d),
                           msg::kSwInterfaceDetails);
    ASSERT_TRUE(details.ok()) << details.status();
    ASSERT_EQ(details->size(), 1u);
    auto itf = DecodeSwInterfaceDetails(details->front());
    ASSERT_TRUE(itf.ok());
    EXPECT_EQ(itf->interface_name, "loop0");
    EXPECT_EQ(itf->interface_dev_type, "Loopback");
    EXPECT_EQ(itf->flags, kIfAdminUp | kIfLinkUp);
  }
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2")}));
  EXPECT_EQ(*dp->DumpOwnedRoutes(), std::vector<net::Route>{R("10.0.2.0/26", "172.16.0.2")});
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(2, "10.0.2.0/26", "172.16.0.9")}));
  EXPECT_EQ(*dp->DumpOwnedRoutes(), std::vector<net::Route>{R("10.0.2.0/26", "172.16.0.9")});
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(3, "10.0.2.0/26"), Delete(4, "10.0.3.0/26")}));
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
  auto id = dp->fib_source_id();
  dp->Disconnect();
  VppDataplane dp2(Config());
  ASSERT_TRUE(dp2.Connect().ok());
  EXPECT_EQ(dp2.fib_source_id(), id);
}

TEST_P(VppConformance, RetvalsForDuplicatesMissingRoutesAndBadRequests) {
  auto dp = Ready(Config());
  ASSERT_FALSE(HasFailure());
  auto c = RawClient();
  uint16_t id = *c->MsgId(msg::kIpRouteAddDel);
  auto send = [&](std::string_view prefix, bool add, uint32_t sw_if_index = 1, uint32_t table = 0,
                  int len_override = -1) {
    IpRouteAddDel m;
    m.is_add = add;
    m.route.table_id = table;
    m.route.prefix = WirePrefix::From(Pfx(prefix));
    if (len_override >= 0) m.route.prefix.len = static_cast<uint8_t>(len_override);
    if (add) m.route.paths = {FibPath::Via(Ip("172.16.0.2"), sw_if_index)};
    auto reply = c->Call(EncodeIpRouteAddDel(id, m, false), msg::kIpRouteAddDelReply);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *DecodeIpRouteAddDelReply(*reply) : IpRouteAddDelReply{};
  };
  auto first = send("10.0.5.0/26", true);
  EXPECT_EQ(first.retval, 0);
  auto again = send("10.0.5.0/26", true);  // the same add twice: no error, same entry
  EXPECT_EQ(again.retval, 0);
  EXPECT_EQ(again.stats_index, first.stats_index);
  auto del = send("10.0.5.0/26", false);
  EXPECT_EQ(del.retval, 0);
  EXPECT_EQ(del.stats_index, kNoInterface);
  EXPECT_EQ(send("10.0.5.0/26", false).retval, 0);  // already gone: still 0
  EXPECT_EQ(send("10.0.6.0/26", true, 77).retval, retval::kNoMatchingInterface);
  EXPECT_EQ(send("10.0.6.0/26", true, 1, 5).retval, retval::kNoSuchFib);
  EXPECT_EQ(send("10.0.6.0/26", true, 1, 0, 33).retval, retval::kInvalidPrefixLength);
  // Checked in VPP's order: the path before the prefix length.
  EXPECT_EQ(send("10.0.6.0/26", true, 77, 0, 33).retval, retval::kNoMatchingInterface);
  // An API-source route is not the agent's: a delete with the agent's source leaves it alone.
  EXPECT_EQ(send("10.0.7.0/26", true).retval, 0);
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(1, "10.0.7.0/26")}));
  IpRouteDump all;
  auto details =
      c->Dump(EncodeIpRouteDump(*c->MsgId(msg::kIpRouteDump), all, false), msg::kIpRouteDetails);
  ASSERT_TRUE(details.ok());
  bool api_route_kept = false;
  for (const Bytes& b : *details) {
    auto d = DecodeIpRouteDetails(b, false);
    if (d.ok() && d->route.prefix.ToPrefix().ok() &&
        *d->route.prefix.ToPrefix() == Pfx("10.0.7.0/26")) {
      api_route_kept = true;
    }
  }
  EXPECT_TRUE(api_route_kept);
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
}

TEST_P(VppConformance, DeepPipelinesOnSeveralConnectionsStayInOrder) {
  VppDataplaneConfig config = Config();
  config.api_connections = 3;
  config.max_outstanding = 2000;  // far more than one 4 KiB read of VPP's
  auto dp = Ready(config);
  ASSERT_FALSE(HasFailure());
  std::vector<RouteOp> ops;
  for (int i = 0; i < 6000; ++i) {
    ops.push_back({static_cast<uint64_t>(i + 1), OpType::kUpsert,
                   R(net::IpPrefix(Ip("10.64.0.0").Plus(64 * i), 26).ToString(), "172.16.0.2")});
  }
  // Every reply carries the context it answers; the client fails any request whose reply is
  // overtaken, so all-OK means each connection's replies came back in request order.
  ExpectAllOk(dp->Apply(ops));
  auto owned = dp->DumpOwnedRoutes();
  ASSERT_TRUE(owned.ok()) << owned.status();
  EXPECT_EQ(owned->size(), ops.size());
  for (RouteOp& op : ops) op.type = OpType::kDelete;
  ExpectAllOk(dp->Apply(ops));
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
}

// IPv6 routes, and the FIB source rules the agent's ownership stands on: every fib_source_add
// allocates a new id (a name already known included, so the agent looks its name up first); a
// dump for a source lists only the entries that source is the BEST of (lowest priority value),
// with the best source's paths; a delete with our source removes only our paths.
TEST_P(VppConformance, Ipv6RoutesAndFibSourcesOfOtherClients) {
  VppDataplaneConfig config = Config();
  auto dp = std::make_unique<VppDataplane>(config);
  Status st;
  WaitFor([&] { return (st = dp->Connect()).ok(); });
  ASSERT_TRUE(st.ok()) << st;
  UplinkConfig u;
  u.name = "loop0";
  u.addresses = {*net::IpPrefix::ParseInterfaceAddress("172.16.0.1/24"),
                 *net::IpPrefix::ParseInterfaceAddress("fd00:ffff::1/64")};
  ASSERT_TRUE(dp->EnsureUplink(u).ok());

  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "fd00:2::/122", "fd00:ffff::2"),
                                             Upsert(2, "10.0.2.0/26", "172.16.0.2")}));
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()),
            Sorted({R("fd00:2::/122", "fd00:ffff::2"), R("10.0.2.0/26", "172.16.0.2")}));
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(3, "fd00:2::/122", "fd00:ffff::9")}));
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()),
            Sorted({R("fd00:2::/122", "fd00:ffff::9"), R("10.0.2.0/26", "172.16.0.2")}));

  auto c = RawClient();
  auto add_source = [&](std::string_view name, uint8_t priority) -> uint8_t {
    FibSourceAdd add;
    add.src.name = std::string(name);
    add.src.priority = priority;
    auto reply =
        c->Call(EncodeFibSourceAdd(*c->MsgId(msg::kFibSourceAdd), add), msg::kFibSourceAddReply);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return 0;
    auto r = DecodeFibSourceAddReply(*reply);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->retval, 0);
    return r->id;
  };
  // The agent's source has priority 100: "worse" (150) and "better" (50) than it.
  uint8_t worse = add_source("conformance-worse", 150);
  uint8_t worse_again = add_source("conformance-worse", 150);
  uint8_t better = add_source("conformance-better", 50);
  EXPECT_NE(worse, 0);
  EXPECT_NE(worse_again, worse) << "the same name twice: VPP allocates a second id";
  auto sources =
      c->Dump(EncodeBareRequest(*c->MsgId(msg::kFibSourceDump), {}), msg::kFibSourceDetails);
  ASSERT_TRUE(sources.ok()) << sources.status();
  int named = 0;
  for (const Bytes& b : *sources) {
    auto d = DecodeFibSourceDetails(b);
    ASSERT_TRUE(d.ok()) << d.status();
    if (d->src.name == "conformance-worse") {
      ++named;
      EXPECT_TRUE(d->src.id == worse || d->src.id == worse_again) << int{d->src.id};
      EXPECT_EQ(d->src.priority, 150);
    }
  }
  EXPECT_EQ(named, 2);

  auto route_of_source = [&](uint8_t src, std::string_view prefix, std::string_view nh, bool add) {
    IpRouteAddDel m;
    m.is_add = add;
    m.route.src = src;
    m.route.prefix = WirePrefix::From(Pfx(prefix));
    m.route.paths = {FibPath::Via(Ip(nh), *dp->uplink_sw_if_index())};
    auto reply = c->Call(EncodeIpRouteAddDel(*c->MsgId(msg::kIpRouteAddDelV2), m, true),
                         msg::kIpRouteAddDelV2Reply);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(DecodeIpRouteAddDelReply(*reply)->retval, 0);
  };
  // What ip_route_v2_dump(src) lists, each path as a route; every entry names the source.
  auto dump_source = [&](uint8_t src, bool ip6) {
    IpRouteDump d;
    d.src = src;
    d.is_ip6 = ip6;
    std::vector<net::Route> routes;
    auto details =
        c->Dump(EncodeIpRouteDump(*c->MsgId(msg::kIpRouteV2Dump), d, true), msg::kIpRouteV2Details);
    EXPECT_TRUE(details.ok()) << details.status();
    if (!details.ok()) return routes;
    for (const Bytes& b : *details) {
      auto r = DecodeIpRouteDetails(b, true);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) continue;
      EXPECT_EQ(r->route.src, src);
      for (const FibPath& p : r->route.paths) {
        routes.push_back({*r->route.prefix.ToPrefix(), p.NextHop()});
      }
    }
    return routes;
  };
  const std::vector<net::Route> ours = {R("10.0.2.0/26", "172.16.0.2")};
  const std::vector<net::Route> ours6 = {R("fd00:2::/122", "fd00:ffff::9")};

  // A worse source's paths for our prefixes: hidden under ours, which stay as they are.
  route_of_source(worse, "fd00:2::/122", "fd00:ffff::7", true);
  route_of_source(worse, "10.0.2.0/26", "172.16.0.7", true);
  EXPECT_TRUE(dump_source(worse, true).empty());
  EXPECT_TRUE(dump_source(worse, false).empty());
  EXPECT_EQ(dump_source(*dp->fib_source_id(), false), ours);
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()), Sorted({ours6[0], ours[0]}));
  // Our deletes remove our paths only: theirs are the best now, and listed.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(4, "fd00:2::/122"), Delete(5, "10.0.2.0/26")}));
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
  EXPECT_EQ(dump_source(worse, true), std::vector<net::Route>{R("fd00:2::/122", "fd00:ffff::7")});
  EXPECT_EQ(dump_source(worse, false), std::vector<net::Route>{R("10.0.2.0/26", "172.16.0.7")});
  route_of_source(worse, "fd00:2::/122", "fd00:ffff::7", false);
  route_of_source(worse, "10.0.2.0/26", "172.16.0.7", false);
  EXPECT_TRUE(dump_source(worse, true).empty());

  // A better source hides OUR route from our own dump while it holds the prefix; our path is
  // still there underneath and is listed again once theirs goes.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(6, "10.0.2.0/26", "172.16.0.2")}));
  route_of_source(better, "10.0.2.0/26", "172.16.0.8", true);
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
  EXPECT_EQ(dump_source(better, false), std::vector<net::Route>{R("10.0.2.0/26", "172.16.0.8")});
  route_of_source(better, "10.0.2.0/26", "172.16.0.8", false);
  EXPECT_EQ(*dp->DumpOwnedRoutes(), ours);
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(7, "10.0.2.0/26")}));
  EXPECT_TRUE(dp->DumpOwnedRoutes()->empty());
}

// A client that writes far faster than VPP reads and reads nothing until it is done: VPP keeps
// reading 4 KiB at a time, queues every reply (nothing is dropped, nothing blocks VPP), and the
// replies come back complete and in request order.
TEST_P(VppConformance, RepliesQueueWithoutBoundWhileTheClientDoesNotRead) {
  auto dp = Ready(Config());  // waits until VPP answers; also gives loop0 its address
  ASSERT_FALSE(HasFailure());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));  // bounded, even if VPP stalls
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  FrameReassembler rx;
  auto next = [&]() -> std::optional<Bytes> {
    uint8_t buf[65536];
    while (true) {
      auto m = rx.Next();
      if (!m.ok()) return std::nullopt;
      if (m->has_value()) return std::move(**m);
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;
      rx.Feed(std::span(buf, static_cast<size_t>(n)));
    }
  };
  Bytes hello = Frame(EncodeSockclntCreate({1, "conformance-flood"}));
  ASSERT_EQ(::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(hello.size()));
  auto reply_bytes = next();
  ASSERT_TRUE(reply_bytes.has_value());
  auto reply = DecodeSockclntCreateReply(*reply_bytes);
  ASSERT_TRUE(reply.ok()) << reply.status();
  uint16_t add_id = 0, add_reply_id = 0;
  for (const auto& [id, name] : reply->table) {
    if (name == msg::kIpRouteAddDel) add_id = id;
    if (name == msg::kIpRouteAddDelReply) add_reply_id = id;
  }
  ASSERT_NE(add_id, 0);
  constexpr int kRequests = 5000;  // ~1.1 MB of requests, ~150 KB of replies
  Bytes all;
  for (int i = 0; i < kRequests; ++i) {
    IpRouteAddDel m;
    m.h = {reply->index, static_cast<uint32_t>(1000 + i)};
    m.route.prefix = WirePrefix::From(net::IpPrefix(Ip("10.128.0.0").Plus(64 * i), 26));
    m.route.paths = {FibPath::Via(Ip("172.16.0.2"), 1)};
    AppendFrame(EncodeIpRouteAddDel(add_id, m, false), &all);
  }
  // Blocking writes: they finish only as VPP reads, 4 KiB per pass, while no reply is read.
  for (size_t off = 0; off < all.size();) {
    ssize_t n = ::send(fd, all.data() + off, all.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << strerror(errno);
    off += static_cast<size_t>(n);
  }
  for (int i = 0; i < kRequests; ++i) {
    auto body = next();
    ASSERT_TRUE(body.has_value()) << "reply " << i << " missing";
    ASSERT_EQ(*PeekMsgId(*body), add_reply_id);
    auto r = DecodeIpRouteAddDelReply(*body);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->context, static_cast<uint32_t>(1000 + i));
    EXPECT_EQ(r->retval, 0);
  }
  ::close(fd);
}

// `delete` + `create` of the uplink under our routes (a host-interface re-created by an operator
// or a CNI). What a real VPP does, and the simulator must do too: the new interface gets the
// same sw_if_index, admin-down and without addresses; our routes stay (the dump lists them with
// their paths) but drop traffic for good, and re-adding one with the same path, or deleting and
// adding it, does not help while another route still holds the dead path list. The agent's
// probe notices (here only by VPP's sw_interface_event: the "operator" has already put the
// interface back up with its address), and EnsureUplink re-points every route of ours, leaving
// another client's route alone.
class UplinkRecreation : public VppConformance {
 protected:
  void DeleteAndRecreateLoop0() {
    if (sim_) {
      ASSERT_TRUE(sim_->DeleteInterface(1).ok());
      sim::SimInterface loop = SimOptions::Loopback("").interfaces.at(1);
      auto idx = sim_->CreateInterface(loop);
      ASSERT_TRUE(idx.ok());
      ASSERT_EQ(*idx, 1u);
      return;
    }
    ASSERT_TRUE(vpp_->Cli("delete loopback interface intfc loop0").ok());
    ASSERT_TRUE(vpp_->Cli("create loopback interface").ok());
  }
  // Does VPP forward to `prefix` (rather than drop)?
  bool Forwards(const std::string& prefix) {
    if (sim_) {
      auto r = sim_->FindRoute(*net::IpPrefix::Parse(prefix));
      return r && r->forwards();
    }
    auto out = vpp_->Cli("show ip fib " + prefix);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return false;
    // The entry's forwarding chain: a live path resolves to an adjacency ("arp-ipv4: via ..."),
    // a dead one to "dpo-drop".
    return out->find("dpo-drop") == std::string::npos && out->find(" via ") != std::string::npos;
  }
  // The operator's quick repair (`set interface state loop0 up`, the address back), through a
  // client of its own.
  void OperatorRestoresLoop0() {
    auto c = RawClient();
    SwInterfaceSetFlags up;
    up.sw_if_index = 1;
    up.flags = kIfAdminUp;
    auto r = c->Call(EncodeSwInterfaceSetFlags(*c->MsgId(msg::kSwInterfaceSetFlags), up),
                     msg::kSwInterfaceSetFlagsReply);
    ASSERT_TRUE(r.ok()) << r.status();
    SwInterfaceAddDelAddress add;
    add.sw_if_index = 1;
    add.is_add = true;
    add.prefix = WirePrefix::FromAddress(*net::IpAddress::Parse("172.16.0.1"), 24);
    r = c->Call(EncodeSwInterfaceAddDelAddress(*c->MsgId(msg::kSwInterfaceAddDelAddress), add),
                msg::kSwInterfaceAddDelAddressReply);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(DecodeRetvalReply(*r)->retval, 0);
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, UplinkRecreation,
                         ::testing::Values(Backend::kSimulator, Backend::kRealVpp),
                         [](const auto& info) {
                           return info.param == Backend::kSimulator ? "Simulator" : "RealVpp";
                         });

TEST_P(UplinkRecreation, ProbeNoticesAndEnsureUplinkRepointsEveryRouteOfOurs) {
  auto dp = Ready(Config());
  ASSERT_FALSE(HasFailure());
  UplinkConfig u;
  u.name = "loop0";
  u.addresses = {*net::IpPrefix::ParseInterfaceAddress("172.16.0.1/24")};
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2"),
                                             Upsert(2, "10.0.3.0/26", "172.16.0.2"),
                                             Upsert(3, "10.0.4.0/26", "172.16.0.2")}));
  // Another client's route through the uplink, with the API source.
  auto other = RawClient();
  {
    IpRouteAddDel m;
    m.is_add = true;
    m.route.prefix = WirePrefix::From(*net::IpPrefix::Parse("10.0.9.0/26"));
    m.route.paths = {FibPath::Via(*net::IpAddress::Parse("172.16.0.3"), 1)};
    auto r = other->Call(EncodeIpRouteAddDel(*other->MsgId(msg::kIpRouteAddDel), m, false),
                         msg::kIpRouteAddDelReply);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(DecodeIpRouteAddDelReply(*r)->retval, 0);
  }
  {
    // ...and one with our very path (as the CLI's `ip route add ... via 172.16.0.2 loop0`):
    // it keeps the dead path list alive after our routes have left it.
    IpRouteAddDel m;
    m.is_add = true;
    m.route.prefix = WirePrefix::From(*net::IpPrefix::Parse("10.0.8.0/26"));
    m.route.paths = {FibPath::Via(*net::IpAddress::Parse("172.16.0.2"), 1)};
    auto r = other->Call(EncodeIpRouteAddDel(*other->MsgId(msg::kIpRouteAddDel), m, false),
                         msg::kIpRouteAddDelReply);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(DecodeIpRouteAddDelReply(*r)->retval, 0);
  }
  for (auto p : {"10.0.2.0/26", "10.0.3.0/26", "10.0.4.0/26", "10.0.8.0/26", "10.0.9.0/26"}) {
    EXPECT_TRUE(Forwards(p)) << p;
  }
  EXPECT_TRUE(dp->Probe().ok());

  DeleteAndRecreateLoop0();
  ASSERT_FALSE(HasFailure());
  // Our routes are still listed, with their paths, but drop.
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()),
            Sorted({R("10.0.2.0/26", "172.16.0.2"), R("10.0.3.0/26", "172.16.0.2"),
                    R("10.0.4.0/26", "172.16.0.2")}));
  OperatorRestoresLoop0();
  ASSERT_FALSE(HasFailure());
  for (auto p : {"10.0.2.0/26", "10.0.3.0/26", "10.0.4.0/26", "10.0.9.0/26"}) {
    EXPECT_FALSE(Forwards(p)) << p << ": routes through a deleted interface stay dead";
  }
  // What does not bring a route back: the same path again; delete and add.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(4, "10.0.2.0/26", "172.16.0.2")}));
  EXPECT_FALSE(Forwards("10.0.2.0/26")) << "same path: it joins the dead path list again";
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Delete(5, "10.0.3.0/26")}));
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(6, "10.0.3.0/26", "172.16.0.2")}));
  EXPECT_FALSE(Forwards("10.0.3.0/26")) << "delete + add: other routes still hold the dead list";

  // The probe notices: the interface looks right again, but VPP said it was deleted.
  Status probe;
  WaitFor([&] { return !(probe = dp->Probe()).ok(); });
  EXPECT_TRUE(absl::IsUnavailable(probe)) << probe;
  EXPECT_NE(probe.message().find("deleted"), std::string_view::npos) << probe;
  EXPECT_EQ(dp->uplink_changes_seen(), 1u);
  // What the agent does on UNAVAILABLE: Connect (still connected: nothing to do), EnsureUplink.
  ASSERT_TRUE(dp->Connect().ok());
  Status st = dp->EnsureUplink(u);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(dp->routes_repointed(), 3u);
  for (auto p : {"10.0.2.0/26", "10.0.3.0/26", "10.0.4.0/26"}) {
    EXPECT_TRUE(Forwards(p)) << p << " after the repair";
  }
  EXPECT_EQ(Sorted(*dp->DumpOwnedRoutes()),
            Sorted({R("10.0.2.0/26", "172.16.0.2"), R("10.0.3.0/26", "172.16.0.2"),
                    R("10.0.4.0/26", "172.16.0.2")}));
  // The other client's routes are not ours to repair: untouched, still dead.
  EXPECT_FALSE(Forwards("10.0.9.0/26"));
  EXPECT_FALSE(Forwards("10.0.8.0/26"));
  // A new route of ours through the same next hop joins our fresh list, not the dead one.
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(7, "10.0.5.0/26", "172.16.0.2")}));
  EXPECT_TRUE(Forwards("10.0.5.0/26"));
  EXPECT_TRUE(dp->Probe().ok());
  EXPECT_EQ(dp->uplink_changes_seen(), 1u);

  // Next: re-created and left as VPP creates it (admin-down, no address), no event needed.
  DeleteAndRecreateLoop0();
  ASSERT_FALSE(HasFailure());
  WaitFor([&] { return !(probe = dp->Probe()).ok(); });
  EXPECT_TRUE(absl::IsUnavailable(probe)) << probe;
  st = dp->EnsureUplink(u);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(dp->uplink_changes_seen(), 2u);
  EXPECT_EQ(dp->routes_repointed(), 7u);
  for (auto p : {"10.0.2.0/26", "10.0.3.0/26", "10.0.4.0/26", "10.0.5.0/26"}) {
    EXPECT_TRUE(Forwards(p)) << p << " after the second repair";
  }
  // The probe may have seen the interface gone before VPP's delete event reached the client:
  // the event then asks for one more repair, which changes nothing that matters.
  WaitFor([&] {
    if (dp->Probe().ok()) return true;
    (void)dp->EnsureUplink(u);
    return false;
  });
  EXPECT_TRUE(dp->Probe().ok());
  EXPECT_LE(dp->uplink_changes_seen(), 3u);
  for (auto p : {"10.0.2.0/26", "10.0.3.0/26", "10.0.4.0/26", "10.0.5.0/26"}) {
    EXPECT_TRUE(Forwards(p)) << p << " at the end";
  }
}

// The probe's read-back without any delete: an operator takes the configured address away, or
// sets the uplink down. Both are noticed, repaired, and the route re-pointed (harmless here).
TEST_P(UplinkRecreation, ProbeNoticesAMissingAddressAndAnAdminDownUplink) {
  auto dp = Ready(Config());
  ASSERT_FALSE(HasFailure());
  UplinkConfig u;
  u.name = "loop0";
  u.addresses = {*net::IpPrefix::ParseInterfaceAddress("172.16.0.1/24")};
  ExpectAllOk(dp->Apply(std::vector<RouteOp>{Upsert(1, "10.0.2.0/26", "172.16.0.2")}));
  EXPECT_TRUE(dp->Probe().ok());
  auto c = RawClient();
  SwInterfaceAddDelAddress del;
  del.sw_if_index = 1;
  del.is_add = false;
  del.prefix = WirePrefix::FromAddress(*net::IpAddress::Parse("172.16.0.1"), 24);
  auto r = c->Call(EncodeSwInterfaceAddDelAddress(*c->MsgId(msg::kSwInterfaceAddDelAddress), del),
                   msg::kSwInterfaceAddDelAddressReply);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(DecodeRetvalReply(*r)->retval, 0);
  Status probe = dp->Probe();
  EXPECT_TRUE(absl::IsUnavailable(probe)) << probe;
  EXPECT_NE(probe.message().find("172.16.0.1 is missing"), std::string_view::npos) << probe;
  ASSERT_TRUE(dp->EnsureUplink(u).ok());
  EXPECT_TRUE(dp->Probe().ok());
  EXPECT_EQ(dp->routes_repointed(), 1u);
  EXPECT_TRUE(Forwards("10.0.2.0/26"));

  SwInterfaceSetFlags down;
  down.sw_if_index = 1;
  down.flags = 0;
  r = c->Call(EncodeSwInterfaceSetFlags(*c->MsgId(msg::kSwInterfaceSetFlags), down),
              msg::kSwInterfaceSetFlagsReply);
  ASSERT_TRUE(r.ok()) << r.status();
  probe = dp->Probe();
  EXPECT_TRUE(absl::IsUnavailable(probe)) << probe;
  EXPECT_NE(probe.message().find("admin-down"), std::string_view::npos) << probe;
  ASSERT_TRUE(dp->EnsureUplink(u).ok());
  EXPECT_TRUE(dp->Probe().ok());
  EXPECT_EQ(dp->uplink_changes_seen(), 2u);
  EXPECT_EQ(dp->routes_repointed(), 2u);
  EXPECT_TRUE(Forwards("10.0.2.0/26"));
}

}  // namespace
}  // namespace vcra::dataplane::vpp
