// The agent end to end on the VPP dataplane: a real etcd (started by the test), our VppDataplane
// and the byte-exact VPP API simulator. The kernel cluster test's scenarios, plus what only VPP
// has: FIB sources, other clients' routes, VPP restarts, a connection dropped mid-batch, an API
// whose CRCs do not match.
#include <unistd.h>

#include "dataplane/vpp/sim/vpp_sim.h"
#include "dataplane/vpp/vpp_dataplane.h"
#include "tests/integration/agent_harness.h"

namespace vcra {
namespace {

using dataplane::vpp::FibPath;
using dataplane::vpp::sim::SimOptions;
using dataplane::vpp::sim::VppSim;
using std::chrono::milliseconds;
using testing::A;
using testing::P;
using testing::WaitFor;

constexpr const char* kOurSource = "vpp-calico-route-agent";

class AgentVppTest : public testing::AgentHarness {
 protected:
  void SetUp() override {
    AgentHarness::SetUp();
    if (IsSkipped()) return;
    char dir[] = "/tmp/vcra-vpp-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    SimOptions options;
    options.socket_path = dir_ + "/api.sock";
    sim_ = std::make_unique<VppSim>(options);
    ASSERT_TRUE(sim_->Start().ok());
  }
  void TearDown() override {
    (void)StopAgent();
    if (sim_) sim_->Stop();
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  agent::AgentConfig VppConfig() {
    auto c = Config();
    c.uplink.name = "host-eth0";  // the simulator's uplink, sw_if_index 1
    return c;
  }
  void StartAgent(agent::AgentConfig config) {
    dataplane::vpp::VppDataplaneConfig dp;
    dp.api_socket = sim_->socket_path();
    dp.request_timeout = milliseconds(2000);
    AgentHarness::StartAgent(std::move(config), std::make_unique<dataplane::vpp::VppDataplane>(dp));
  }
  void StartAgent() { StartAgent(VppConfig()); }

  std::optional<uint8_t> OurSourceId() {
    for (const auto& s : sim_->Sources())
      if (s.name == kOurSource) return s.id;
    return std::nullopt;
  }
  // The next hop our FIB source gives `dst`, if any.
  std::optional<net::IpAddress> OurNextHop(const char* dst) {
    auto id = OurSourceId();
    auto route = sim_->FindRoute(P(dst));
    if (!id || !route) return std::nullopt;
    auto paths = route->sources.find(*id);
    if (paths == route->sources.end() || paths->second.size() != 1) return std::nullopt;
    const FibPath& path = paths->second[0];
    if (path.sw_if_index != 1) return std::nullopt;  // must leave through the uplink
    return net::IpAddress::FromBytes(route->prefix.family(), path.nh.data());
  }
  bool RouteIs(const char* dst, const char* via) { return OurNextHop(dst) == A(via); }
  bool NoRoute(const char* dst) { return !OurNextHop(dst); }
  size_t OurRouteCount() {
    auto id = OurSourceId();
    size_t n = 0;
    for (bool v6 : {false, true})
      for (const auto& r : sim_->Routes(v6)) n += id && r.sources.contains(*id);
    return n;
  }

  std::string dir_;
  std::unique_ptr<VppSim> sim_;
};

TEST_F(AgentVppTest, BlocksBorrowedIpsLatePeersAndMoves) {
  StartAgent();
  ASSERT_TRUE(WaitReady()) << "an empty etcd is a valid cluster";
  auto uplink = sim_->Interface(1);
  ASSERT_TRUE(uplink);
  EXPECT_TRUE(uplink->admin_up) << "the agent brings the uplink up";
  EXPECT_EQ(uplink->addresses.size(), 1u) << "and adds its address";

  PutPeer("host-b", "10.99.0.2");
  PutPeer("host-b", "fd00:99::2");
  PutBlock("10.244.2.0/26", "host-b");
  PutBlock("fd00:10:244:2::/122", "host-b");
  EXPECT_TRUE(WaitFor([&] {
    return RouteIs("10.244.2.0/26", "10.99.0.2") && RouteIs("fd00:10:244:2::/122", "fd00:99::2");
  }));
  // A borrowed IP from our own block, used on host-b, and one from host-b's block on host-c,
  // whose address arrives late.
  PutBlock("10.244.1.0/26", "host-a", {{0, "host-a"}, {9, "host-b"}});
  PutBlock("10.244.2.0/26", "host-b", {{7, "host-c"}});
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.1.9/32", "10.99.0.2"); }));
  EXPECT_TRUE(NoRoute("10.244.1.0/26")) << "our own block gets no route";
  EXPECT_TRUE(NoRoute("10.244.2.7/32")) << "host-c has no address yet";
  PutPeer("host-c", "10.99.0.3");
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.7/32", "10.99.0.3"); }));
  // Move, peer address change, delete.
  PutBlock("fd00:10:244:2::/122", "host-c");
  PutPeer("host-c", "fd00:99::3");
  EXPECT_TRUE(WaitFor([&] { return RouteIs("fd00:10:244:2::/122", "fd00:99::3"); }));
  PutPeer("host-b", "10.99.0.22");
  EXPECT_TRUE(WaitFor([&] {
    return RouteIs("10.244.2.0/26", "10.99.0.22") && RouteIs("10.244.1.9/32", "10.99.0.22");
  }));
  DeleteBlock("10.244.2.0/26");
  EXPECT_TRUE(WaitFor([&] { return NoRoute("10.244.2.0/26") && NoRoute("10.244.2.7/32"); }));
}

TEST_F(AgentVppTest, ForeignRoutesAreNeverTouched) {
  FibPath via_uplink = FibPath::Via(A("10.99.0.7"), 1);
  auto other = sim_->AddSource("other-client", 100);
  ASSERT_TRUE(other.ok());
  // Another client's route inside the pool, a CLI route for a prefix we will program, the
  // default route, and a route outside every pool.
  ASSERT_TRUE(sim_->AddRoute(P("10.244.7.0/26"), {via_uplink}, *other).ok());
  ASSERT_TRUE(sim_->AddRoute(P("10.244.2.0/26"), {via_uplink}, dataplane::vpp::sim::kSrcCli).ok());
  ASSERT_TRUE(sim_->AddRoute(P("0.0.0.0/0"), {FibPath::Via(A("10.99.0.254"), 1)},
                             dataplane::vpp::sim::kSrcApi)
                  .ok());
  ASSERT_TRUE(
      sim_->AddRoute(P("192.168.50.0/24"), {via_uplink}, dataplane::vpp::sim::kSrcApi).ok());
  Put(std::string(calico::kPoolPrefix) + "default-ipv4-ippool",
      R"({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool"},"spec":{"cidr":"10.244.0.0/16","blockSize":26}})");
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }));
  ASSERT_TRUE(WaitReady());
  DeleteBlock("10.244.2.0/26");
  ASSERT_TRUE(WaitFor([&] { return NoRoute("10.244.2.0/26"); }));
  std::this_thread::sleep_for(milliseconds(1500));  // let a resync pass, too
  auto cli = sim_->FindRoute(P("10.244.2.0/26"));
  ASSERT_TRUE(cli) << "the CLI's route for the same prefix survives our delete";
  EXPECT_TRUE(cli->sources.contains(dataplane::vpp::sim::kSrcCli));
  auto foreign = sim_->FindRoute(P("10.244.7.0/26"));
  ASSERT_TRUE(foreign);
  EXPECT_TRUE(foreign->sources.contains(*other));
  EXPECT_TRUE(sim_->FindRoute(P("0.0.0.0/0")));
  EXPECT_TRUE(sim_->FindRoute(P("192.168.50.0/24")));
}

TEST_F(AgentVppTest, RestartRemovesStaleRoutesAndReusesTheFibSource) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  PutBlock("10.244.3.0/26", "host-b");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return OurRouteCount() == 2; }));
  auto source = OurSourceId();
  ASSERT_TRUE(StopAgent().ok());
  EXPECT_EQ(OurRouteCount(), 2u) << "routes stay in VPP while the agent is down";
  DeleteBlock("10.244.3.0/26");
  PutBlock("10.244.4.0/26", "host-b");
  StartAgent();
  EXPECT_TRUE(WaitFor([&] {
    return NoRoute("10.244.3.0/26") && RouteIs("10.244.4.0/26", "10.99.0.2") &&
           RouteIs("10.244.2.0/26", "10.99.0.2");
  }));
  EXPECT_EQ(OurSourceId(), source);
  size_t named_ours = 0;
  for (const auto& s : sim_->Sources()) named_ours += s.name == kOurSource;
  EXPECT_EQ(named_ours, 1u) << "no new FIB source per restart (ids are 8 bits, never freed)";
}

TEST_F(AgentVppTest, VppRestartIsDetectedAndFullStateReplayed) {
  PutPeer("host-b", "10.99.0.2");
  for (int i = 0; i < 20; ++i) {
    std::string cidr = "10.244." + std::to_string(10 + i) + ".0/26";
    PutBlock(cidr.c_str(), "host-b");
  }
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return OurRouteCount() == 20; }));
  sim_->Restart();  // empty FIB, new message ids, connections closed
  EXPECT_EQ(OurRouteCount(), 0u);
  EXPECT_TRUE(WaitFor([&] { return OurRouteCount() == 20 && sim_->Interface(1)->admin_up; }))
      << "the agent notices the closed socket, reconnects and replays uplink and routes";
  EXPECT_GE(agent_->metrics().dataplane_reconnects.load(), 1u);
}

TEST_F(AgentVppTest, ConnectionDropMidBatchLosesNothing) {
  PutPeer("host-b", "10.99.0.2");
  StartAgent();
  ASSERT_TRUE(WaitReady());
  sim_->DropConnectionAfter(25);
  std::vector<std::pair<std::string, std::string>> kvs;
  for (int i = 0; i < 100; ++i) {
    std::string cidr = "10.245." + std::to_string(i) + ".0/26";
    PutBlock(cidr.c_str(), "host-b");
  }
  EXPECT_TRUE(WaitFor([&] { return OurRouteCount() == 100; }, milliseconds(20000)))
      << OurRouteCount();
  EXPECT_GE(agent_->metrics().dataplane_reconnects.load(), 1u);
}

TEST_F(AgentVppTest, CrcMismatchIsRefusedWithAClearError) {
  sim_->OverrideNameCrc("ip_route_add_del", "ip_route_add_del_deadbeef");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return run_returned_.load(); })) << "the agent stops by itself";
  Status status = StopAgent();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("ip_route_add_del_b8ecfe0d"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("26.06"), absl::string_view::npos) << "names VPP's version";
}

}  // namespace
}  // namespace vcra
