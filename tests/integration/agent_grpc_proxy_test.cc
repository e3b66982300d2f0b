// Three agents through etcd's gRPC proxy (`etcd grpc-proxy start`) in front of a 3-member etcd,
// the way a rack or zone of hosts is meant to be deployed (docs/deployment.md): blocks,
// borrowed IPs, peer address changes, deletes, and a proxy restart during which the agents keep
// their routes and after which they converge on what changed meanwhile.
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/multi_agent.h"
#include "tests/support/etcd_server.h"
#include "tests/support/grpc_proxy.h"
#include "tests/support/wait.h"

namespace vcra {
namespace {

using testing::RouteTable;
using testing::RunningAgent;
using testing::WaitFor;

constexpr int kAgents = 3;

net::IpPrefix P(const char* s) { return *net::IpPrefix::Parse(s); }
net::IpAddress A(const char* s) { return *net::IpAddress::Parse(s); }

class AgentGrpcProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::EtcdServer::Start(3);
    if (!server.ok() && absl::IsFailedPrecondition(server.status())) {
      GTEST_SKIP() << "SKIPPED: needs /usr/bin/etcd: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    etcd_ = *std::move(server);
    auto proxy = testing::GrpcProxy::Start(etcd_->endpoints());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    // Calico writes to the members, not through the agents' proxy.
    auto client = datastore::EtcdClient::Create(etcd_->ClientConfig());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  void TearDown() override {
    for (auto& a : agents_) a->Stop();
    agents_.clear();
  }

  void StartAgents() {
    for (int i = 0; i < kAgents; ++i) {
      datastore::EtcdConfig config = proxy_->ClientConfig();
      config.dial_timeout = std::chrono::milliseconds(1000);
      config.request_timeout = std::chrono::milliseconds(3000);
      agents_.push_back(std::make_unique<RunningAgent>(
          absl::StrCat("agent-", i), absl::StrCat("10.99.0.", i + 1, "/24"), config));
    }
  }
  void Put(const std::string& key, const std::string& value) {
    auto r = client_->Put(key, value);
    ASSERT_TRUE(r.ok()) << key << ": " << r.status();
  }
  void PutPeer(const char* host, const char* address) {
    Put(calico::PeerKeyFor(host, net::Family::kV4), address);
  }
  void PutBlock(const char* cidr, const char* host,
                std::vector<std::pair<uint32_t, std::string>> borrowed = {}) {
    calico::IpamBlock b;
    b.cidr = P(cidr);
    b.affinity_type = calico::AffinityType::kHost;
    b.affinity_name = host;
    b.sequence_number = 1;
    for (auto& [ord, node] : borrowed) {
      b.allocations.push_back({ord, b.cidr.address().Plus(ord), node});
    }
    Put(calico::BlockKey(b.cidr), calico::EncodeBlock(b));
  }
  void DeleteBlock(const char* cidr) {
    auto r = client_->Delete(calico::BlockKey(P(cidr)));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // `common` on every agent, plus agent-0's block on the others (agent-0 routes none of its own).
  bool AllAgentsHave(const RouteTable& common, const RouteTable& agent0_block) {
    for (int i = 0; i < kAgents; ++i) {
      RouteTable want = common;
      if (i != 0) want.insert(agent0_block.begin(), agent0_block.end());
      if (testing::OwnedRouteTable(agents_[i]->dataplane()) != want) return false;
    }
    return true;
  }
  std::string Tables() {
    std::string out;
    for (int i = 0; i < kAgents; ++i) {
      absl::StrAppend(&out, "\nagent-", i, ": ",
                      testing::Describe(testing::OwnedRouteTable(agents_[i]->dataplane())));
    }
    return out;
  }

  std::unique_ptr<testing::EtcdServer> etcd_;
  std::unique_ptr<testing::GrpcProxy> proxy_;
  std::unique_ptr<datastore::EtcdClient> client_;
  std::vector<std::unique_ptr<RunningAgent>> agents_;
};

TEST_F(AgentGrpcProxyTest, BlocksBorrowedIpsPeersDeletesAndAProxyRestart) {
  PutPeer("host-b", "10.98.0.2");
  PutPeer("host-c", "10.98.0.3");
  PutBlock("10.244.2.0/26", "host-b", {{3, "host-c"}});
  StartAgents();
  for (auto& a : agents_) ASSERT_TRUE(WaitFor([&] { return a->agent().Ready(); })) << Tables();

  // A block of agent-0: the others route it to the address agent-0 published (a write that
  // went through the proxy).
  PutBlock("10.244.9.0/26", "agent-0");
  RouteTable agent0_block = {{P("10.244.9.0/26"), A("10.99.0.1")}};
  RouteTable common = {{P("10.244.2.0/26"), A("10.98.0.2")}, {P("10.244.2.3/32"), A("10.98.0.3")}};
  ASSERT_TRUE(WaitFor([&] { return AllAgentsHave(common, agent0_block); })) << Tables();

  // Peer address change, a new borrowed IP, a new block, a delete.
  PutPeer("host-b", "10.98.0.12");
  PutBlock("10.244.2.0/26", "host-b", {{3, "host-c"}, {7, "host-c"}});
  PutBlock("10.244.3.0/26", "host-c");
  common = {{P("10.244.2.0/26"), A("10.98.0.12")},
            {P("10.244.2.3/32"), A("10.98.0.3")},
            {P("10.244.2.7/32"), A("10.98.0.3")},
            {P("10.244.3.0/26"), A("10.98.0.3")}};
  ASSERT_TRUE(WaitFor([&] { return AllAgentsHave(common, agent0_block); })) << Tables();
  DeleteBlock("10.244.3.0/26");
  common.erase(P("10.244.3.0/26"));
  ASSERT_TRUE(WaitFor([&] { return AllAgentsHave(common, agent0_block); })) << Tables();

  // The proxy goes away: the agents keep every route while it is down.
  proxy_->Stop();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_TRUE(AllAgentsHave(common, agent0_block)) << "routes lost with the proxy down" << Tables();
  for (auto& a : agents_) {
    EXPECT_TRUE(WaitFor([&] {
      auto status = a->agent().GetStatus();
      return status && !status->etcd_connected;
    })) << "the agent did not notice the proxy is gone";
  }
  // Meanwhile Calico changes things on the members.
  PutPeer("host-c", "10.98.0.13");
  PutBlock("10.244.4.0/26", "host-b");
  DeleteBlock("10.244.2.0/26");
  ASSERT_TRUE(proxy_->Start().ok()) << proxy_->LogTail();
  common = {{P("10.244.4.0/26"), A("10.98.0.12")}};
  EXPECT_TRUE(
      WaitFor([&] { return AllAgentsHave(common, agent0_block); }, std::chrono::seconds(30)))
      << Tables();
}

}  // namespace
}  // namespace vcra
