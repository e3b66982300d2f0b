// Shared by the agent integration tests: a real etcd started for the test, a client to write
// Calico data the way Calico does, and an agent running on its own thread.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "calico/model.h"
#include "tests/support/etcd_server.h"
#include "tests/support/wait.h"

namespace vcra::testing {

inline net::IpPrefix P(const char* s) { return *net::IpPrefix::Parse(s); }
inline net::IpAddress A(const char* s) { return *net::IpAddress::Parse(s); }

class AgentHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    EtcdServerOptions options;
    // Lets a test store a value larger than the agent accepts (etcd's default is 1.5 MiB).
    options.extra_args = {"--max-request-bytes=8388608"};
    auto server = EtcdServer::Start(options);
    if (!server.ok()) GTEST_SKIP() << "SKIPPED: needs /usr/bin/etcd: " << server.status();
    etcd_ = std::move(*server);
    auto client = datastore::EtcdClient::Create(etcd_->ClientConfig());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override { (void)StopAgent(); }

  agent::AgentConfig Config() {
    agent::AgentConfig c;
    c.node_name = "host-a";
    c.etcd = etcd_->ClientConfig();
    c.uplink.name = "eth0";
    c.uplink.addresses = {*net::IpPrefix::ParseInterfaceAddress("10.99.0.1/24")};
    c.resync_interval = std::chrono::seconds(1);
    c.probe_interval = std::chrono::milliseconds(100);
    return c;
  }

  void StartAgent(agent::AgentConfig config, std::unique_ptr<dataplane::Dataplane> dataplane) {
    agent_ = std::make_unique<agent::Agent>(std::move(config), std::move(dataplane));
    run_returned_ = false;
    thread_ = std::thread([this] {
      run_status_ = agent_->Run();
      run_returned_ = true;
    });
  }
  // Returns what Run() returned.
  Status StopAgent() {
    if (!agent_) return run_status_;
    agent_->Stop();
    thread_.join();
    agent_.reset();
    return run_status_;
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(client_->Put(key, value).ok()) << key;
  }
  void Delete(const std::string& key) { ASSERT_TRUE(client_->Delete(key).ok()) << key; }
  static std::string BlockJson(const char* cidr, const char* host,
                               std::vector<std::pair<uint32_t, std::string>> allocs = {}) {
    calico::IpamBlock b;
    b.cidr = P(cidr);
    if (host) {
      b.affinity_type = calico::AffinityType::kHost;
      b.affinity_name = host;
    }
    b.sequence_number = 1772359200000000007ull;
    for (auto& [ord, node] : allocs)
      b.allocations.push_back({ord, b.cidr.address().Plus(ord), node});
    return calico::EncodeBlock(b);
  }
  // host == nullptr writes "affinity": null.
  void PutBlock(const char* cidr, const char* host,
                std::vector<std::pair<uint32_t, std::string>> allocs = {}) {
    Put(calico::BlockKey(P(cidr)), BlockJson(cidr, host, std::move(allocs)));
  }
  void DeleteBlock(const char* cidr) { Delete(calico::BlockKey(P(cidr))); }
  void PutPeer(const char* host, const char* address) {
    Put(calico::PeerKeyFor(host, A(address).family()), address);
  }
  bool WaitReady() {
    return WaitFor([&] { return agent_ && agent_->Ready(); });
  }

  std::unique_ptr<EtcdServer> etcd_;
  std::unique_ptr<datastore::EtcdClient> client_;
  std::unique_ptr<agent::Agent> agent_;
  std::thread thread_;
  Status run_status_;
  std::atomic<bool> run_returned_{false};
};

}  // namespace vcra::testing
