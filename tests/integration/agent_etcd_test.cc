// The agent end to end against a real etcd (started by the test) and the stateful fake
// dataplane: start on an empty etcd, restart with changes made while down, bad input, drift,
// dataplane loss, retries, datastoreReady.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "agent/http_server.h"
#include "dataplane/fake_dataplane.h"
#include "tests/integration/agent_harness.h"

namespace vcra {
namespace {

using net::IpPrefix;
using std::chrono::milliseconds;
using testing::A;
using testing::P;
using testing::WaitFor;

// Lets several Agent instances (one after another) share one FakeDataplane, the way restarts
// of the agent share one kernel.
class SharedDataplane final : public dataplane::Dataplane {
 public:
  explicit SharedDataplane(dataplane::FakeDataplane& fake) : fake_(fake) {}
  std::string Name() const override { return "fake"; }
  Status Connect() override { return fake_.Connect(); }
  Status EnsureUplink(const dataplane::UplinkConfig& u) override { return fake_.EnsureUplink(u); }
  StatusOr<std::vector<net::Route>> DumpOwnedRoutes() override { return fake_.DumpOwnedRoutes(); }
  std::vector<dataplane::OpResult> Apply(std::span<const dataplane::RouteOp> ops) override {
    return fake_.Apply(ops);
  }
  std::vector<net::IpPrefix> UplinkAddresses() const override { return fake_.UplinkAddresses(); }

 private:
  dataplane::FakeDataplane& fake_;
};

class AgentEtcdTest : public testing::AgentHarness {
 protected:
  void StartAgent(agent::AgentConfig config) {
    AgentHarness::StartAgent(std::move(config), std::make_unique<SharedDataplane>(fake_));
  }
  void StartAgent() { StartAgent(Config()); }
  bool RouteIs(const char* dst, const char* via) {
    auto r = fake_.Lookup(P(dst));
    return r && r->gateway == A(via);
  }
  bool NoRoute(const char* dst) { return !fake_.Lookup(P(dst)); }

  dataplane::FakeDataplane fake_;
};

TEST_F(AgentEtcdTest, EmptyEtcdThenBlocksAppear) {
  StartAgent();
  ASSERT_TRUE(WaitReady()) << "an empty etcd is a valid cluster";
  EXPECT_TRUE(fake_.uplink_up());
  // Our own peer address is published once the uplink is ready.
  ASSERT_TRUE(WaitFor([&] {
    auto got = client_->RangePrefix(calico::PeerKeyFor("host-a", net::Family::kV4));
    return got.ok() && got->kvs.size() == 1 && got->kvs[0].value == "10.99.0.1";
  }));
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b", {{3, "host-c"}});
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }));
  EXPECT_TRUE(NoRoute("10.244.2.3/32")) << "host-c has no address yet";
  auto status = agent_->GetStatus();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->routes_pending, 1u);
  PutPeer("host-c", "10.99.0.3");
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.3/32", "10.99.0.3"); }));
  DeleteBlock("10.244.2.0/26");
  EXPECT_TRUE(WaitFor([&] { return NoRoute("10.244.2.0/26") && NoRoute("10.244.2.3/32"); }));
}

TEST_F(AgentEtcdTest, ChangesWhileStoppedAreAppliedAtStart) {
  PutPeer("host-b", "10.99.0.2");
  PutPeer("host-c", "10.99.0.3");
  PutBlock("10.244.2.0/26", "host-b");
  PutBlock("10.244.3.0/26", "host-c");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] {
    return RouteIs("10.244.2.0/26", "10.99.0.2") && RouteIs("10.244.3.0/26", "10.99.0.3");
  }));
  ASSERT_TRUE(StopAgent().ok());
  EXPECT_EQ(fake_.OwnedRoutes().size(), 2u) << "routes stay while the agent is down";

  DeleteBlock("10.244.2.0/26");
  PutBlock("10.244.4.0/26", "host-b");
  PutBlock("10.244.3.0/26", "host-b");  // moved
  // A stale route from an older run, and a route someone else owns.
  fake_.AddOwnedRouteBehindOurBack({P("10.244.99.0/26"), A("10.99.0.9")});
  fake_.AddForeignRoute({P("0.0.0.0/0"), A("10.99.0.254")});

  StartAgent();
  ASSERT_TRUE(WaitReady());
  EXPECT_TRUE(WaitFor([&] {
    return NoRoute("10.244.2.0/26") && RouteIs("10.244.4.0/26", "10.99.0.2") &&
           RouteIs("10.244.3.0/26", "10.99.0.2") && NoRoute("10.244.99.0/26");
  }));
  EXPECT_EQ(fake_.OwnedRoutes().size(), 2u);
  EXPECT_EQ(fake_.ForeignRoutes().size(), 1u);
}

TEST_F(AgentEtcdTest, BadInputNeverRemovesAGoodRoute) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }));
  std::string key = calico::BlockKey(P("10.244.2.0/26"));
  Put(key, "{\"cidr\": \"10.244.2.0/26\", \"affinity\": ");             // truncated
  Put(key, "{\"cidr\": \"10.244.9.0/26\", \"affinity\": \"host:x\"}");  // disagrees with key
  Put(key, std::string(3 * 1024 * 1024, '['));                          // oversized
  Put(calico::PeerKeyFor("host-b", net::Family::kV4), "not an address");
  Put("/calico/ipam/v2/assignment/ipv4/block/../../../etc", "{}");
  Put("/calico/ipam/v2/assignment/ipv4/block/10.244.5.0-99", "{}");
  Put("/vpp-calico/hosts/../peerip/ipv4/1", "10.99.0.66");
  ASSERT_TRUE(WaitFor([&] { return agent_->metrics().parse_errors.load() >= 7; }))
      << agent_->metrics().parse_errors.load();
  // Give the agent time to do something wrong, then check it did not.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE(RouteIs("10.244.2.0/26", "10.99.0.2"));
  EXPECT_EQ(fake_.OwnedRoutes().size(), 1u);
  // A good value afterwards is applied.
  PutPeer("host-c", "10.99.0.3");
  PutBlock("10.244.2.0/26", "host-c");
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.3"); }));
  auto status = agent_->GetStatus();
  ASSERT_TRUE(status);
  EXPECT_FALSE(status->last_errors.empty());
  EXPECT_NE(agent_->RenderMetrics().find("vcra_parse_errors_total"), std::string::npos);
}

TEST_F(AgentEtcdTest, ResyncRepairsDriftAndDataplaneRestartReplays) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  PutBlock("10.244.3.0/26", "host-b");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return fake_.OwnedRoutes().size() == 2; }));
  fake_.DeleteRouteBehindOurBack(P("10.244.3.0/26"));
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.3.0/26", "10.99.0.2"); }))
      << "the 1 s resync repairs a route deleted by hand";
  EXPECT_GE(agent_->GetStatus()->reconciler.drift_repaired, 1u);

  size_t connects = fake_.connects();
  fake_.Disconnect(/*wipe=*/true);  // the dataplane restarts with an empty table
  EXPECT_TRUE(WaitFor([&] { return fake_.connects() > connects; }));
  EXPECT_TRUE(WaitFor([&] { return fake_.OwnedRoutes().size() == 2 && fake_.uplink_up(); }))
      << "full state replayed after the reconnect";
  EXPECT_GE(agent_->metrics().dataplane_reconnects.load(), 1u);
}

TEST_F(AgentEtcdTest, FailedOperationIsRetried) {
  PutPeer("host-b", "10.99.0.2");
  fake_.FailPrefix(P("10.244.2.0/26"), absl::InternalError("Network is unreachable"));
  StartAgent();
  ASSERT_TRUE(WaitReady());
  PutBlock("10.244.2.0/26", "host-b");
  PutBlock("10.244.3.0/26", "host-b");
  ASSERT_TRUE(WaitFor([&] { return RouteIs("10.244.3.0/26", "10.99.0.2"); }));
  ASSERT_TRUE(WaitFor([&] { return agent_->GetStatus()->routes_failing == 1; }));
  fake_.ClearFailures();
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }))
      << "retried with backoff after the failure cleared";
}

TEST_F(AgentEtcdTest, DataplaneDownAtStartIsRetried) {
  fake_.RefuseConnect(true);
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  StartAgent();
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_FALSE(agent_->Ready());
  fake_.RefuseConnect(false);
  EXPECT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }));
  EXPECT_TRUE(WaitReady());
}

TEST_F(AgentEtcdTest, DatastoreNotReadyPausesProgramming) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return RouteIs("10.244.2.0/26", "10.99.0.2"); }));
  Put(std::string(calico::kClusterInformationKey),
      R"({"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"datastoreReady":false}})");
  ASSERT_TRUE(WaitFor([&] { return !agent_->GetStatus()->datastore_ready; }));
  PutBlock("10.244.3.0/26", "host-b");
  DeleteBlock("10.244.2.0/26");
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_TRUE(NoRoute("10.244.3.0/26")) << "nothing programmed while paused";
  EXPECT_TRUE(RouteIs("10.244.2.0/26", "10.99.0.2")) << "nothing removed while paused";
  Put(std::string(calico::kClusterInformationKey),
      R"({"kind":"ClusterInformation","spec":{"datastoreReady":true}})");
  EXPECT_TRUE(
      WaitFor([&] { return RouteIs("10.244.3.0/26", "10.99.0.2") && NoRoute("10.244.2.0/26"); }));
}

TEST_F(AgentEtcdTest, DryRunPrintsRoutesAndTouchesNothing) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b", {{7, "host-c"}});
  auto config = Config();
  config.dry_run = true;
  std::string printed;
  config.dry_run_output = [&](const std::string& out) { printed = out; };
  agent::Agent agent(config, nullptr);
  ASSERT_TRUE(agent.Run().ok());
  EXPECT_NE(printed.find("10.244.2.0/26 via 10.99.0.2"), std::string::npos) << printed;
  EXPECT_NE(printed.find("10.244.2.7/32 pending"), std::string::npos) << printed;
  EXPECT_EQ(fake_.ops_applied(), 0u);
}

}  // namespace
}  // namespace vcra

namespace vcra {
namespace {

// Calico compacts etcd every 10 minutes: an agent cut off for longer finds its watch revision
// gone. It must re-list and apply only the difference.
TEST_F(AgentEtcdTest, WatchRevisionCompactedWhileCutOffRelistsAndAppliesTheDifference) {
  auto cluster = testing::EtcdServer::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto& etcd3 = **cluster;
  datastore::EtcdConfig others = etcd3.ClientConfig();
  others.endpoints = {etcd3.endpoint(1), etcd3.endpoint(2)};
  auto writer_or = datastore::EtcdClient::Create(others);
  ASSERT_TRUE(writer_or.ok());
  auto& writer = **writer_or;
  auto put = [&](const std::string& k, const std::string& v) {
    ASSERT_TRUE(writer.Put(k, v).ok());
  };
  put(calico::PeerKeyFor("host-b", net::Family::kV4), "10.99.0.2");
  put(calico::BlockKey(P("10.244.2.0/26")), BlockJson("10.244.2.0/26", "host-b"));
  put(calico::BlockKey(P("10.244.3.0/26")), BlockJson("10.244.3.0/26", "host-b"));

  auto config = Config();
  config.etcd = etcd3.ClientConfig();
  config.etcd.endpoints = {etcd3.endpoint(0)};  // the agent only knows the member we cut off
  StartAgent(config);
  ASSERT_TRUE(WaitFor([&] { return fake_.OwnedRoutes().size() == 2; }));
  uint64_t snapshots = agent_->metrics().etcd_snapshots.load();

  ASSERT_TRUE(etcd3.StopMember(0).ok());
  ASSERT_TRUE(writer.Delete(calico::BlockKey(P("10.244.2.0/26"))).ok());
  put(calico::BlockKey(P("10.244.4.0/26")), BlockJson("10.244.4.0/26", "host-b"));
  for (int i = 0; i < 20; ++i) put("/calico/ipam/v2/assignment/ipv4/churn", std::to_string(i));
  ASSERT_TRUE(writer.Delete("/calico/ipam/v2/assignment/ipv4/churn").ok());
  auto latest = writer.Put("/unrelated", "x");
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(etcd3.Compact(*latest).ok());
  ASSERT_TRUE(etcd3.StartMember(0).ok());

  EXPECT_TRUE(WaitFor(
      [&] {
        return NoRoute("10.244.2.0/26") && RouteIs("10.244.3.0/26", "10.99.0.2") &&
               RouteIs("10.244.4.0/26", "10.99.0.2");
      },
      milliseconds(30000)));
  EXPECT_GT(agent_->metrics().etcd_snapshots.load(), snapshots) << "a re-list happened";
  EXPECT_GE(agent_->metrics().etcd_reconnects.load(), 1u);
}

}  // namespace
}  // namespace vcra

namespace vcra {
namespace {

TEST_F(AgentEtcdTest, HttpEndpointServesHealthReadinessMetricsAndStatus) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b", {{7, "host-c"}});
  StartAgent();
  agent::HttpServer http(*agent_);
  ASSERT_TRUE(http.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", http.port());
  client.set_read_timeout(5, 0);
  ASSERT_TRUE(WaitReady());

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("vcra_routes_programmed 1\n"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("vcra_routes_pending 1\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("vcra_dataplane_ops_total{op=\"upsert\",result=\"ok\"} 1\n"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("vcra_event_to_route_seconds_count"), std::string::npos);
  auto status = client.Get("/status");
  ASSERT_TRUE(status);
  auto json = nlohmann::json::parse(status->body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << status->body;
  EXPECT_EQ(json["syncState"], "in-sync");
  ASSERT_EQ(json["routes"].size(), 1u);
  EXPECT_EQ(json["routes"][0]["dst"], "10.244.2.0/26");
  EXPECT_EQ(json["routes"][0]["via"], "10.99.0.2");
  EXPECT_EQ(json["pending"][0]["node"], "host-c");
  auto text = client.Get("/status?format=text");
  ASSERT_TRUE(text);
  EXPECT_NE(text->body.find("10.244.2.0/26"), std::string::npos);
  // Anything else is refused without harm.
  auto missing = client.Get("/../../etc/passwd");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto post = client.Post("/status", std::string(100000, 'x'), "text/plain");
  ASSERT_TRUE(post);
  EXPECT_GE(post->status, 400);
  EXPECT_TRUE(client.Get("/healthz")) << "still serving";
  http.Stop();
}

TEST_F(AgentEtcdTest, ReadyzIsNotReadyWhileTheDataplaneIsDown) {
  fake_.RefuseConnect(true);
  StartAgent();
  agent::HttpServer http(*agent_);
  ASSERT_TRUE(http.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", http.port());
  ASSERT_TRUE(
      WaitFor([&] { return agent_->GetStatus() && agent_->GetStatus()->datastore_synced; }));
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("dataplane connected=false"), std::string::npos) << ready->body;
  http.Stop();
}

}  // namespace
}  // namespace vcra

namespace vcra {
namespace {

TEST_F(AgentEtcdTest, WithoutConfiguredAddressesTheUplinksOwnAreUsed) {
  fake_.AddUplinkAddress(*IpPrefix::ParseInterfaceAddress("fe80::1/64"));  // never published
  fake_.AddUplinkAddress(*IpPrefix::ParseInterfaceAddress("10.99.0.7/24"));
  fake_.AddUplinkAddress(*IpPrefix::ParseInterfaceAddress("fd00:99::7/64"));
  // A peer that claims one of our uplink's addresses gets no route.
  PutPeer("host-x", "10.99.0.7");
  PutBlock("10.244.9.0/26", "host-x");
  auto config = Config();
  config.uplink.addresses.clear();
  StartAgent(config);
  ASSERT_TRUE(WaitReady());
  ASSERT_TRUE(WaitFor([&] {
    auto v4 = client_->RangePrefix(calico::PeerKeyFor("host-a", net::Family::kV4));
    auto v6 = client_->RangePrefix(calico::PeerKeyFor("host-a", net::Family::kV6));
    return v4.ok() && v6.ok() && v4->kvs.size() == 1 && v6->kvs.size() == 1 &&
           v4->kvs[0].value == "10.99.0.7" && v6->kvs[0].value == "fd00:99::7";
  }));
  EXPECT_TRUE(NoRoute("10.244.9.0/26"));
}

}  // namespace
}  // namespace vcra
