// Faults under load: a 3-member etcd loses its leader (killed) and later has a second member
// restarted while a writer churns IPAM blocks and three agents watch. Afterwards every agent's
// dataplane must equal what etcd holds, and for every prefix the next hops each agent applied
// must follow etcd's revision order (no older value applied after a newer one).
//
// How order is observable: block b's k-th version is affine to host-k, whose peer address is
// 10.98.0.k, so an applied next hop names the version it came from.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/multi_agent.h"
#include "tests/support/etcd_server.h"
#include "tests/support/wait.h"

namespace vcra {
namespace {

using testing::RouteTable;
using testing::RunningAgent;
using testing::WaitFor;

constexpr int kBlocks = 60;
constexpr int kVersions = 20;  // kBlocks * kVersions = 1,200 block changes
constexpr int kAgents = 3;

net::IpPrefix BlockCidr(int b) {
  return *net::IpPrefix::Parse(absl::StrCat("10.244.", b / 4, ".", (b % 4) * 64, "/26"));
}
std::string HostName(int version) { return absl::StrCat("host-", version); }
net::IpAddress PeerAddress(int version) {
  return *net::IpAddress::Parse(absl::StrCat("10.98.0.", version));
}
std::string BlockValue(int b, int version) {
  calico::IpamBlock block;
  block.cidr = BlockCidr(b);
  block.affinity_type = calico::AffinityType::kHost;
  block.affinity_name = HostName(version);
  block.sequence_number = static_cast<uint64_t>(version);
  return calico::EncodeBlock(block);
}

// A Put that failed with a timeout may still have been committed, so the writer retries until
// etcd acknowledges it (bounded), and the final state is read back from etcd, never assumed.
struct Writer {
  datastore::EtcdClient& client;
  std::atomic<int> acknowledged{0};
  std::atomic<int> failed_attempts{0};
  std::atomic<bool> gave_up{false};

  bool PutWithRetry(const std::string& key, const std::string& value) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (client.Put(key, value).ok()) {
        acknowledged.fetch_add(1);
        return true;
      }
      failed_attempts.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    gave_up = true;
    return false;
  }
  void Churn() {
    for (int v = 1; v <= kVersions && !gave_up; ++v) {
      for (int b = 0; b < kBlocks && !gave_up; ++b) {
        PutWithRetry(calico::BlockKey(BlockCidr(b)), BlockValue(b, v));
      }
    }
  }
};

class AgentEtcdFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::EtcdServer::Start(3);
    if (!server.ok() && absl::IsFailedPrecondition(server.status())) {
      GTEST_SKIP() << "SKIPPED: needs /usr/bin/etcd: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    etcd_ = *std::move(server);
    datastore::EtcdConfig config = etcd_->ClientConfig();
    config.dial_timeout = std::chrono::milliseconds(1000);
    config.request_timeout = std::chrono::milliseconds(3000);
    auto client = datastore::EtcdClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // What etcd holds now, as the routes an agent must have.
  RouteTable ExpectedFromEtcd() {
    RouteTable out;
    auto blocks = client_->RangePrefix("/calico/ipam/v2/assignment/");
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    if (!blocks.ok()) return out;
    for (const auto& kv : blocks->kvs) {
      auto block = calico::DecodeBlock(kv.key, kv.value);
      EXPECT_TRUE(block.ok()) << kv.key << ": " << block.status();
      if (!block.ok()) continue;
      out[block->cidr] = PeerAddress(static_cast<int>(block->sequence_number));
    }
    return out;
  }

  std::unique_ptr<testing::EtcdServer> etcd_;
  std::unique_ptr<datastore::EtcdClient> client_;
};

TEST_F(AgentEtcdFaultsTest, LeaderKilledAndMemberRestartedUnderChurn) {
  for (int v = 1; v <= kVersions; ++v) {
    ASSERT_TRUE(
        client_->Put(calico::PeerKeyFor(HostName(v), net::Family::kV4), PeerAddress(v).ToString())
            .ok());
  }
  // The agents talk to the leader first (an agent uses its first endpoint until it fails), so
  // killing the leader breaks their watches, and then to the member restarted second.
  auto leader = etcd_->LeaderMember();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int second = (*leader + 1) % 3;
  std::vector<std::unique_ptr<RunningAgent>> agents;
  for (int i = 0; i < kAgents; ++i) {
    datastore::EtcdConfig config = etcd_->ClientConfig();
    config.endpoints = {etcd_->endpoint(*leader), etcd_->endpoint(second),
                        etcd_->endpoint((*leader + 2) % 3)};
    config.dial_timeout = std::chrono::milliseconds(1000);
    config.request_timeout = std::chrono::milliseconds(3000);
    agents.push_back(std::make_unique<RunningAgent>(
        absl::StrCat("agent-", i), absl::StrCat("10.99.0.", i + 1, "/24"), config));
  }
  for (auto& a : agents) ASSERT_TRUE(WaitFor([&] { return a->agent().Ready(); }));

  Writer writer{*client_};
  std::thread writer_thread([&] { writer.Churn(); });
  struct JoinWriter {
    std::thread& t;
    ~JoinWriter() {
      if (t.joinable()) t.join();
    }
  } join_writer{writer_thread};

  // Fault 1: the leader is killed a quarter of the way in, and comes back at the middle.
  const int total = kBlocks * kVersions;
  ASSERT_TRUE(WaitFor([&] { return writer.acknowledged >= total / 4; }, std::chrono::seconds(60)));
  auto still_leader = etcd_->LeaderMember();
  ASSERT_TRUE(still_leader.ok()) << still_leader.status();
  ASSERT_EQ(*still_leader, *leader) << "leadership moved before the fault";
  ASSERT_TRUE(etcd_->StopMember(*leader).ok());
  const int killed_at = writer.acknowledged;
  ASSERT_TRUE(WaitFor([&] { return writer.acknowledged >= total / 2 || writer.gave_up; },
                      std::chrono::seconds(60)));
  ASSERT_TRUE(etcd_->StartMember(*leader).ok()) << etcd_->LogTail(*leader);
  // Fault 2: another member is restarted at three quarters.
  ASSERT_TRUE(WaitFor([&] { return writer.acknowledged >= 3 * total / 4 || writer.gave_up; },
                      std::chrono::seconds(60)));
  ASSERT_TRUE(etcd_->StopMember(second).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(etcd_->StartMember(second).ok()) << etcd_->LogTail(second);
  writer_thread.join();
  ASSERT_FALSE(writer.gave_up) << "etcd did not accept a write for 5 s";

  // A tenth of the blocks go away at the end.
  int deletes = 0;
  for (int b = 0; b < kBlocks; b += 10) {
    ASSERT_TRUE(client_->Delete(calico::BlockKey(BlockCidr(b))).ok());
    ++deletes;
  }

  RouteTable expected = ExpectedFromEtcd();
  ASSERT_EQ(expected.size(), static_cast<size_t>(kBlocks - deletes));
  for (int i = 0; i < kAgents; ++i) {
    const auto& fake = agents[i]->dataplane();
    EXPECT_TRUE(WaitFor([&] { return testing::OwnedRouteTable(fake) == expected; },
                        std::chrono::seconds(60)))
        << "agent " << i << " has " << testing::Describe(testing::OwnedRouteTable(fake))
        << "\netcd says " << testing::Describe(expected);
  }

  // Order: per prefix, the versions an agent applied never go back.
  for (int i = 0; i < kAgents; ++i) {
    size_t upserts = 0;
    size_t deleted = 0;
    for (const auto& [dst, ops] : agents[i]->log().ByPrefix()) {
      int last_version = 0;
      for (const auto& op : ops) {
        if (op.type == dataplane::OpType::kDelete) {
          ++deleted;
          continue;
        }
        ++upserts;
        auto gw = op.route.gateway.ToString();
        ASSERT_TRUE(absl::StartsWith(gw, "10.98.0.")) << dst.ToString() << " via " << gw;
        int version = std::stoi(gw.substr(8));
        EXPECT_GE(version, last_version)
            << "agent " << i << " applied version " << version << " of " << dst.ToString()
            << " after version " << last_version;
        last_version = version;
      }
    }
    const auto& m = agents[i]->agent().metrics();
    std::printf(
        "[ counts   ] agent-%d: etcd events seen %llu, snapshots %llu, reconnects %llu; "
        "route ops applied %zu (%zu upserts, %zu deletes)\n",
        i, static_cast<unsigned long long>(m.etcd_events.load()),
        static_cast<unsigned long long>(m.etcd_snapshots.load()),
        static_cast<unsigned long long>(m.etcd_reconnects.load()), agents[i]->log().count(),
        upserts, deleted);
    EXPECT_GE(deleted, static_cast<size_t>(deletes));
    EXPECT_GE(m.etcd_reconnects.load(), 1u) << "agent " << i << " never lost its member";
  }
  std::printf(
      "[ counts   ] written: %d block puts acknowledged (%d failed attempts retried), %d deletes; "
      "leader m%d killed after %d puts, m%d restarted later\n",
      writer.acknowledged.load(), writer.failed_attempts.load(), deletes, *leader, killed_at,
      second);
  for (auto& a : agents) a->Stop();
}

}  // namespace
}  // namespace vcra
