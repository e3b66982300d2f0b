// Several in-process agents against one etcd (directly or through a gRPC proxy), each with its
// own FakeDataplane behind a recording wrapper, and the Calico data they all watch. Used by the
// fault and proxy tests, which need to say what every agent applied and in which order.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "calico/model.h"
#include "dataplane/fake_dataplane.h"
#include "tests/support/wait.h"

namespace vcra::testing {

// The route ops one agent's dataplane accepted, in the order it accepted them.
class OpLog {
 public:
  void Record(const dataplane::RouteOp& op) {
    std::lock_guard lock(mu_);
    ops_[op.route.dst].push_back(op);
    ++count_;
  }
  std::map<net::IpPrefix, std::vector<dataplane::RouteOp>> ByPrefix() const {
    std::lock_guard lock(mu_);
    return ops_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::map<net::IpPrefix, std::vector<dataplane::RouteOp>> ops_;
  size_t count_ = 0;
};

// FakeDataplane (owned by the test, outliving the agent) whose successful ops are logged.
class RecordingDataplane final : public dataplane::Dataplane {
 public:
  RecordingDataplane(dataplane::FakeDataplane& fake, OpLog& log) : fake_(fake), log_(log) {}
  std::string Name() const override { return "fake"; }
  Status Connect() override { return fake_.Connect(); }
  Status EnsureUplink(const dataplane::UplinkConfig& u) override { return fake_.EnsureUplink(u); }
  StatusOr<std::vector<net::Route>> DumpOwnedRoutes() override { return fake_.DumpOwnedRoutes(); }
  std::vector<dataplane::OpResult> Apply(std::span<const dataplane::RouteOp> ops) override {
    std::vector<dataplane::OpResult> results = fake_.Apply(ops);
    for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
      if (results[i].status.ok()) log_.Record(ops[i]);
    }
    return results;
  }
  std::vector<net::IpPrefix> UplinkAddresses() const override { return fake_.UplinkAddresses(); }

 private:
  dataplane::FakeDataplane& fake_;
  OpLog& log_;
};

// One agent on its own thread. Stop() (or the destructor) stops and joins it.
class RunningAgent {
 public:
  RunningAgent(std::string node_name, std::string uplink_address, datastore::EtcdConfig etcd) {
    agent::AgentConfig c;
    c.node_name = std::move(node_name);
    c.etcd = std::move(etcd);
    c.uplink.name = "eth0";
    c.uplink.addresses = {*net::IpPrefix::ParseInterfaceAddress(uplink_address)};
    c.resync_interval = std::chrono::seconds(5);
    c.probe_interval = std::chrono::milliseconds(200);
    agent_ = std::make_unique<agent::Agent>(std::move(c),
                                            std::make_unique<RecordingDataplane>(fake_, log_));
    thread_ = std::thread([this] { run_status_ = agent_->Run(); });
  }
  ~RunningAgent() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    agent_->Stop();
    thread_.join();
  }
  agent::Agent& agent() { return *agent_; }
  const dataplane::FakeDataplane& dataplane() const { return fake_; }
  const OpLog& log() const { return log_; }

 private:
  dataplane::FakeDataplane fake_;
  OpLog log_;
  std::unique_ptr<agent::Agent> agent_;
  std::thread thread_;
  Status run_status_;
};

// The routes every agent must end with: a block affine to a host with a peer address is routed
// to that address (these tests write no borrowed IPs unless they say so).
using RouteTable = std::map<net::IpPrefix, net::IpAddress>;

inline RouteTable OwnedRouteTable(const dataplane::FakeDataplane& fake) {
  RouteTable out;
  for (const auto& [dst, route] : fake.OwnedRoutes()) out[dst] = route.gateway;
  return out;
}

inline std::string Describe(const RouteTable& table, size_t limit = 10) {
  std::string out = std::to_string(table.size()) + " routes:";
  size_t n = 0;
  for (const auto& [dst, gw] : table) {
    if (n++ == limit) {
      out += " ...";
      break;
    }
    out += " " + dst.ToString() + "->" + gw.ToString();
  }
  return out;
}

}  // namespace vcra::testing
