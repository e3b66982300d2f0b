// The benchmark's cluster model: what it writes must be what the agent reads, in both shapes,
// and its route expectations must follow the routing rules.
#include "bench/cluster.h"

#include <gtest/gtest.h>

#include "bench/agent_process.h"
#include "calico/model.h"

namespace vcra::bench {
namespace {

TEST(ClusterTest, BothShapesDecodeToTheModelledBlock) {
  for (BlockShape shape : {BlockShape::kCompact, BlockShape::kRealistic}) {
    Cluster c = Cluster::Make(7, 300, shape);
    for (const auto& [index, state] : c.blocks) {
      std::string key = calico::BlockKey(BlockCidr(index));
      auto block = calico::DecodeBlock(key, c.Encode(index));
      ASSERT_TRUE(block.ok()) << index << ": " << block.status();
      EXPECT_EQ(block->AffineHost(), HostName(state.host));
      // The decoder keeps only the borrowed allocations: those a route can come from.
      std::vector<std::pair<uint32_t, int>> borrowed;
      for (const auto& allocation : state.allocations)
        if (allocation.second != state.host) borrowed.push_back(allocation);
      ASSERT_EQ(block->allocations.size(), borrowed.size()) << index;
      for (size_t i = 0; i < borrowed.size(); ++i) {
        EXPECT_EQ(block->allocations[i].ordinal, borrowed[i].first);
        EXPECT_EQ(block->allocations[i].node, HostName(borrowed[i].second));
      }
    }
  }
}

TEST(ClusterTest, RealisticBlocksHaveCalicosSize) {
  Cluster c = Cluster::Make(1000, 2000, BlockShape::kRealistic);
  size_t smallest = SIZE_MAX, largest = 0;
  for (const auto& [index, state] : c.blocks) {
    size_t n = c.Encode(index).size();
    smallest = std::min(smallest, n);
    largest = std::max(largest, n);
  }
  EXPECT_GE(smallest, 1000u);
  EXPECT_LE(largest, 3300u);  // 8 pods and a borrowed IP
  EXPECT_GE(c.MedianBlockBytes(), 2000u);
  EXPECT_LE(c.MedianBlockBytes(), 2500u);
  std::string value = c.Encode(17);
  for (const char* field : {"\"unallocated\"", "\"handle_id\":\"k8s-pod-network.", "\"namespace\"",
                            "\"pod\"", "\"timestamp\"", "\"sequenceNumberForAllocation\"",
                            "\"strictAffinity\":false", "\"affinity\":\"host:"})
    EXPECT_NE(value.find(field), std::string::npos) << field;
}

TEST(ClusterTest, ExpectedRoutesFollowTheRules) {
  Cluster c;
  c.hosts = 3;
  c.blocks[0] = BlockState{0, {{0, 0}, {5, 2}}};  // ours, one IP borrowed by host 2
  c.blocks[1] = BlockState{1, {{0, 1}, {9, 0}}};  // host 1's, one IP borrowed by us
  RouteMap for0 = c.ExpectedRoutesFor(0);
  EXPECT_EQ(for0.size(), 2u);  // block 1 via host 1, our IP 0.5 via host 2
  EXPECT_EQ(for0.at(BlockCidr(1)), PeerAddress(1));
  EXPECT_EQ(for0.at(net::IpPrefix::Host(BlockCidr(0).address().Plus(5))), PeerAddress(2));
  RouteMap for2 = c.ExpectedRoutesFor(2);
  EXPECT_EQ(for2.size(), 3u);  // both blocks, and the IP host 1's block lent to host 0
  EXPECT_EQ(for2.at(net::IpPrefix::Host(BlockCidr(1).address().Plus(9))), PeerAddress(0));
}

TEST(ClusterTest, OpenLoopUpdatesEachHaveARouteOfTheirOwn) {
  Cluster c = Cluster::Make(50, 500);
  auto updates = MakeUpdates(c, 400, 500, 7);
  std::set<net::IpPrefix> seen;
  for (const auto& up : updates) {
    EXPECT_TRUE(seen.insert(up.expect.dst).second) << up.expect.ToString();
    EXPECT_NE(up.state.host, 0);
  }
  auto churn = MakeUpdates(c, 400, 500, 7, UpdateMix::kMovesOnly);
  for (const auto& up : churn) EXPECT_FALSE(up.create);
}

TEST(MetricsTest, SumAddsLabelledSamplesOfOneNameOnly) {
  std::string text =
      "# TYPE etcd_network_client_grpc_sent_bytes_total counter\n"
      "etcd_network_client_grpc_sent_bytes_total 1.5e+06\n"
      "etcd_network_client_grpc_sent_bytes_total{a=\"b\"} 500\n"
      "etcd_network_client_grpc_sent_bytes_total_other 7\n";
  EXPECT_DOUBLE_EQ(MetricSum(text, "etcd_network_client_grpc_sent_bytes_total"), 1500500);
  EXPECT_EQ(MetricValue(text, "etcd_network_client_grpc_sent_bytes_total"), 1.5e6);
  EXPECT_DOUBLE_EQ(MetricSum(text, "etcd_network_client_grpc_sent_bytes_total", "a=\"b\""), 500);
}

}  // namespace
}  // namespace vcra::bench
