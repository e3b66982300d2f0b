#include "routing/route_calculator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace vcra::routing {
namespace {

using calico::AffinityType;
using calico::IpamBlock;
using net::Family;
using net::IpAddress;
using net::IpPrefix;

IpPrefix P(const char* s) { return *IpPrefix::Parse(s); }
IpAddress A(const char* s) { return *IpAddress::Parse(s); }

IpamBlock Block(const char* cidr, AffinityType type, const char* name,
                std::vector<std::pair<uint32_t, std::string>> allocs = {}) {
  IpamBlock b;
  b.cidr = P(cidr);
  b.affinity_type = type;
  b.affinity_name = name;
  for (auto& [ord, node] : allocs) b.allocations.push_back({ord, b.cidr.address().Plus(ord), node});
  return b;
}

class RouteCalculatorTest : public ::testing::Test {
 protected:
  RouteCalculatorTest() : calc_({"host-a", {A("10.99.0.1"), A("fd00:99::1")}}) {
    calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV4, A("10.99.0.2"));
    calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-c", Family::kV4, A("10.99.0.3"));
    calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV6, A("fd00:99::2"));
    calc_.TakeDeltas();
  }
  std::optional<IpAddress> Via(const char* dst) {
    auto it = calc_.desired().find(P(dst));
    if (it == calc_.desired().end()) return std::nullopt;
    return it->second.gateway;
  }
  RouteCalculator calc_;
};

TEST_F(RouteCalculatorTest, RemoteBlockRoutedViaItsHost) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  EXPECT_EQ(Via("10.244.2.0/26"), A("10.99.0.2"));
  auto deltas = calc_.TakeDeltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].route->gateway, A("10.99.0.2"));
  calc_.OnBlockDelete(P("10.244.2.0/26"));
  EXPECT_FALSE(Via("10.244.2.0/26"));
  deltas = calc_.TakeDeltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].route);
}

TEST_F(RouteCalculatorTest, OwnBlockGetsNoRoute) {
  calc_.OnBlockUpdate(Block("10.244.1.0/26", AffinityType::kHost, "host-a"));
  EXPECT_TRUE(calc_.desired().empty());
}

TEST_F(RouteCalculatorTest, BorrowedIpInOwnBlockGetsHostRouteViaBorrower) {
  calc_.OnBlockUpdate(
      Block("10.244.1.0/26", AffinityType::kHost, "host-a", {{0, "host-a"}, {5, "host-b"}}));
  EXPECT_EQ(calc_.desired().size(), 1u);
  EXPECT_EQ(Via("10.244.1.5/32"), A("10.99.0.2"));
}

TEST_F(RouteCalculatorTest, BorrowedIpInRemoteBlock) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b",
                            {{1, "host-b"}, {7, "host-c"}, {9, "host-a"}}));
  EXPECT_EQ(Via("10.244.2.0/26"), A("10.99.0.2"));
  EXPECT_EQ(Via("10.244.2.7/32"), A("10.99.0.3"));
  EXPECT_FALSE(Via("10.244.2.9/32")) << "an IP borrowed by this host is local";
  EXPECT_FALSE(Via("10.244.2.1/32")) << "an affine IP is covered by the block route";
}

TEST_F(RouteCalculatorTest, Ipv6BlockAndBorrowedIp) {
  calc_.OnBlockUpdate(Block("fd00:10:244:2::/122", AffinityType::kHost, "host-b", {{3, "host-c"}}));
  EXPECT_EQ(Via("fd00:10:244:2::/122"), A("fd00:99::2"));
  EXPECT_FALSE(Via("fd00:10:244:2::3/128")) << "host-c has no IPv6 peer address yet";
  EXPECT_EQ(calc_.pending_count(), 1u);
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-c", Family::kV6, A("fd00:99::3"));
  EXPECT_EQ(Via("fd00:10:244:2::3/128"), A("fd00:99::3"));
  EXPECT_EQ(calc_.pending_count(), 0u);
}

TEST_F(RouteCalculatorTest, VirtualAffinityGetsNoBlockRoute) {
  calc_.OnBlockUpdate(Block("10.96.100.0/26", AffinityType::kVirtual, "load-balancer"));
  EXPECT_TRUE(calc_.desired().empty());
}

TEST_F(RouteCalculatorTest, NullAffinityGetsOnlyPerIpRoutes) {
  calc_.OnBlockUpdate(
      Block("10.244.2.0/26", AffinityType::kNone, "", {{4, "host-b"}, {6, "host-c"}, {8, ""}}));
  EXPECT_FALSE(Via("10.244.2.0/26"));
  EXPECT_EQ(Via("10.244.2.4/32"), A("10.99.0.2"));
  EXPECT_EQ(Via("10.244.2.6/32"), A("10.99.0.3"));
  EXPECT_EQ(calc_.desired().size(), 2u) << "an IP without an owner node gets nothing";
}

TEST_F(RouteCalculatorTest, DeletedBlockGetsNothing) {
  auto b = Block("10.244.2.0/26", AffinityType::kHost, "host-b", {{7, "host-c"}});
  calc_.OnBlockUpdate(b);
  EXPECT_EQ(calc_.desired().size(), 2u);
  b.deleted = true;
  calc_.OnBlockUpdate(b);
  EXPECT_TRUE(calc_.desired().empty());
}

TEST_F(RouteCalculatorTest, PeerOfOtherFamilyRoutesNothing) {
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-d", Family::kV4, A("fd00:99::4"));
  calc_.OnBlockUpdate(Block("10.244.4.0/26", AffinityType::kHost, "host-d"));
  EXPECT_TRUE(calc_.desired().empty());
  calc_.OnBlockUpdate(Block("fd00:10:244:4::/122", AffinityType::kHost, "host-c"));
  EXPECT_TRUE(calc_.desired().empty()) << "host-c has only an IPv4 address";
}

TEST_F(RouteCalculatorTest, PeerAddressThatIsOurOwnRoutesNothing) {
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-x", Family::kV4, A("10.99.0.1"));
  calc_.OnBlockUpdate(Block("10.244.9.0/26", AffinityType::kHost, "host-x"));
  EXPECT_TRUE(calc_.desired().empty());
}

TEST_F(RouteCalculatorTest, LatePeerGetsItsRoutesThen) {
  calc_.OnBlockUpdate(Block("10.244.5.0/26", AffinityType::kHost, "host-e"));
  EXPECT_TRUE(calc_.desired().empty());
  ASSERT_EQ(calc_.Pending().size(), 1u);
  EXPECT_EQ(calc_.Pending()[0].node, "host-e");
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-e", Family::kV4, A("10.99.0.5"));
  EXPECT_EQ(Via("10.244.5.0/26"), A("10.99.0.5"));
}

TEST_F(RouteCalculatorTest, PeerAddressChangeMovesAllItsRoutes) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  calc_.OnBlockUpdate(Block("10.244.3.0/26", AffinityType::kHost, "host-c", {{2, "host-b"}}));
  calc_.TakeDeltas();
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV4, A("10.99.0.22"));
  EXPECT_EQ(Via("10.244.2.0/26"), A("10.99.0.22"));
  EXPECT_EQ(Via("10.244.3.2/32"), A("10.99.0.22"));
  EXPECT_EQ(Via("10.244.3.0/26"), A("10.99.0.3"));
  auto deltas = calc_.TakeDeltas();
  EXPECT_EQ(deltas.size(), 2u);
  for (auto& d : deltas) EXPECT_TRUE(d.route) << "a move is a replace, never a delete";
}

TEST_F(RouteCalculatorTest, PeerDeleteWithdrawsRoutes) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  calc_.OnPeerDelete(PeerSource::kPeerKey, "host-b", Family::kV4);
  EXPECT_TRUE(calc_.desired().empty());
  EXPECT_EQ(calc_.pending_count(), 1u);
}

TEST_F(RouteCalculatorTest, BlockMoveMovesRoute) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  calc_.TakeDeltas();
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-c"));
  EXPECT_EQ(Via("10.244.2.0/26"), A("10.99.0.3"));
  auto deltas = calc_.TakeDeltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].route);
}

TEST_F(RouteCalculatorTest, BlockMovedToUsRemovesRoute) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-a"));
  EXPECT_TRUE(calc_.desired().empty());
}

TEST_F(RouteCalculatorTest, OwnerChangeOfOneIpMovesOnlyThatRoute) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b", {{7, "host-c"}}));
  calc_.TakeDeltas();
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b", {{7, "host-d"}}));
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-d", Family::kV4, A("10.99.0.4"));
  EXPECT_EQ(Via("10.244.2.7/32"), A("10.99.0.4"));
}

TEST_F(RouteCalculatorTest, UnchangedRewriteEmitsNothing) {
  auto b = Block("10.244.2.0/26", AffinityType::kHost, "host-b", {{7, "host-c"}});
  calc_.OnBlockUpdate(b);
  calc_.TakeDeltas();
  b.sequence_number++;
  calc_.OnBlockUpdate(b);
  EXPECT_TRUE(calc_.TakeDeltas().empty());
}

TEST_F(RouteCalculatorTest, CalicoNodeAddressUsedWhenNoPeerKeyAndPeerKeyWins) {
  calc_.OnBlockUpdate(Block("10.244.6.0/26", AffinityType::kHost, "host-f"));
  calc_.OnPeerUpdate(PeerSource::kCalicoNode, "host-f", Family::kV4, A("10.99.0.6"));
  EXPECT_EQ(Via("10.244.6.0/26"), A("10.99.0.6"));
  calc_.OnPeerUpdate(PeerSource::kPeerKey, "host-f", Family::kV4, A("10.99.0.66"));
  EXPECT_EQ(Via("10.244.6.0/26"), A("10.99.0.66"));
  calc_.OnPeerDelete(PeerSource::kPeerKey, "host-f", Family::kV4);
  EXPECT_EQ(Via("10.244.6.0/26"), A("10.99.0.6"));
}

TEST_F(RouteCalculatorTest, PoolsRestrictRoutedBlocks) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  calc_.OnBlockUpdate(Block("10.96.0.0/26", AffinityType::kHost, "host-b"));
  EXPECT_EQ(calc_.desired().size(), 2u) << "no pools known: everything is routable";
  calc_.OnPoolUpdate("p1", {"p1", P("10.244.0.0/16"), false, true});
  EXPECT_EQ(calc_.desired().size(), 1u);
  EXPECT_TRUE(Via("10.244.2.0/26"));
  calc_.OnPoolUpdate("p2", {"p2", P("10.96.0.0/16"), false, false});
  EXPECT_FALSE(Via("10.96.0.0/26")) << "LoadBalancer-only pool";
  calc_.OnPoolUpdate("p1", {"p1", P("10.244.0.0/16"), true, true});
  EXPECT_FALSE(Via("10.244.2.0/26")) << "disabled pool";
  calc_.OnPoolUpdate("p1", {"p1", P("10.244.0.0/16"), false, true});
  EXPECT_TRUE(Via("10.244.2.0/26"));
}

TEST_F(RouteCalculatorTest, OverlappingClaimsResolveDeterministically) {
  // Two overlapping blocks both hand out 10.244.2.7 to another node: the smallest block key
  // (".../10.244.2.0-25" < ".../10.244.2.0-26") wins, whatever the order of events.
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-d", {{7, "host-c"}}));
  calc_.OnBlockUpdate(Block("10.244.2.0/25", AffinityType::kHost, "host-d", {{7, "host-b"}}));
  EXPECT_EQ(Via("10.244.2.7/32"), A("10.99.0.2")) << "smallest block key wins";
  auto intent = calc_.IntentFor(P("10.244.2.7/32"));
  ASSERT_TRUE(intent);
  EXPECT_EQ(intent->block_key, calico::BlockKey(P("10.244.2.0/25")));
  EXPECT_EQ(intent->node, "host-b");
  EXPECT_EQ(intent->kind, IntentKind::kBorrowedIp);
  calc_.OnBlockDelete(P("10.244.2.0/25"));
  EXPECT_EQ(Via("10.244.2.7/32"), A("10.99.0.3"));
  calc_.OnBlockDelete(P("10.244.2.0/26"));
  EXPECT_FALSE(Via("10.244.2.7/32"));
  EXPECT_EQ(calc_.block_count(), 0u);
}

TEST_F(RouteCalculatorTest, StatusViewNamesNodeAndBlockOfEveryPrefix) {
  calc_.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b", {{3, "host-e"}}));
  auto intent = calc_.IntentFor(P("10.244.2.0/26"));
  ASSERT_TRUE(intent);
  EXPECT_EQ(intent->node, "host-b");
  EXPECT_EQ(intent->block_key, "/calico/ipam/v2/assignment/ipv4/block/10.244.2.0-26");
  EXPECT_EQ(intent->kind, IntentKind::kBlock);
  auto pending = calc_.Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].dst, P("10.244.2.3/32"));
  EXPECT_EQ(pending[0].node, "host-e");
  EXPECT_EQ(pending[0].block_key, "/calico/ipam/v2/assignment/ipv4/block/10.244.2.0-26");
  auto peers = calc_.Peers();
  EXPECT_EQ(peers.size(), 2u) << "host-b and host-c; host-e has no address";
  EXPECT_EQ(peers["host-b"].second, A("fd00:99::2"));
}

// With a shared table (the agent's wiring: the reconciler's desired routes), the calculator keeps
// no table of its own; after every TakeDeltas applied to the shared table, that table must equal
// what a calculator with its own table holds, and no delta may be a no-op. Several events between
// two takes include a route that changes and changes back (its delta must vanish).
// The rules of route_calculator.h recomputed from scratch (no incremental state): the oracle the
// incremental calculator is compared with.
RouteTable RoutesFromScratch(const std::map<IpPrefix, IpamBlock>& blocks,
                             const std::map<std::string, IpAddress>& peers,
                             const std::string& my_node, const IpAddress& my_address,
                             size_t* pending) {
  std::map<IpPrefix, std::pair<std::string, std::string>> winners;  // dst -> (block key, node)
  auto claim = [&](const IpPrefix& dst, const IpamBlock& block, const std::string& node) {
    std::string key = calico::BlockKey(block.cidr);
    auto it = winners.find(dst);
    if (it == winners.end() || key < it->second.first) winners[dst] = {key, node};
  };
  for (const auto& [cidr, block] : blocks) {
    if (block.deleted) continue;
    std::string affine(block.AffineHost());
    if (!affine.empty() && affine != my_node) claim(cidr, block, affine);
    std::string owner = block.affinity_type == AffinityType::kNone ? "" : block.affinity_name;
    for (const auto& alloc : block.allocations) {
      if (alloc.node.empty() || alloc.node == owner || alloc.node == my_node) continue;
      claim(IpPrefix::Host(alloc.ip), block, alloc.node);
    }
  }
  RouteTable out;
  *pending = 0;
  for (const auto& [dst, winner] : winners) {
    auto peer = peers.find(winner.second);
    if (peer == peers.end()) {
      ++*pending;
    } else if (peer->second != my_address) {
      out[dst] = net::Route{dst, peer->second};
    }
  }
  return out;
}

TEST(RouteCalculatorSharedTable, SameRoutesAsAnOwnTableWithoutNoOpDeltas) {
  CalculatorConfig config{"host-a", {A("10.99.0.1")}};
  RouteCalculator own(config);
  RouteCalculator shared(config);
  RouteTable applied;
  shared.ShareDesiredTable(applied);
  const char* nodes[] = {"host-a", "host-b", "host-c", "host-d"};
  uint32_t seed = 12345;
  auto next = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
  };
  size_t deltas_seen = 0;
  std::map<IpPrefix, IpamBlock> blocks;
  std::map<std::string, IpAddress> peers;
  for (int round = 0; round < 1000; ++round) {
    int events = 1 + static_cast<int>(next(4));
    for (int e = 0; e < events; ++e) {
      uint32_t what = next(10);
      // /26s, a /25 over two of them and a /32 inside one: overlapping claims on a prefix.
      uint32_t which = next(8);
      std::string cidr = which < 6   ? "10.244." + std::to_string(which) + ".0/26"
                         : which < 7 ? "10.244.0.0/25"
                                     : "10.244.1.5/32";
      uint32_t size = which < 6 ? 64 : which < 7 ? 128 : 1;
      if (what < 6) {
        std::vector<std::pair<uint32_t, std::string>> allocs;
        for (uint32_t i = next(3); i > 0; --i) {
          uint32_t ordinal = next(size);  // ordinals are unique within a block
          if (std::none_of(allocs.begin(), allocs.end(),
                           [&](const auto& a) { return a.first == ordinal; })) {
            allocs.push_back({ordinal, nodes[next(4)]});
          }
        }
        auto block = Block(cidr.c_str(), next(6) == 0 ? AffinityType::kNone : AffinityType::kHost,
                           nodes[next(4)], allocs);
        block.deleted = next(10) == 0;
        own.OnBlockUpdate(block);
        shared.OnBlockUpdate(block);
        blocks[block.cidr] = block;
      } else if (what < 8) {
        own.OnBlockDelete(P(cidr.c_str()));
        shared.OnBlockDelete(P(cidr.c_str()));
        blocks.erase(P(cidr.c_str()));
      } else if (what < 9) {
        const char* node = nodes[1 + next(3)];
        auto address = IpAddress::V4(0x0a630000u + 1 + next(3));  // .1 is our own address
        own.OnPeerUpdate(PeerSource::kPeerKey, node, Family::kV4, address);
        shared.OnPeerUpdate(PeerSource::kPeerKey, node, Family::kV4, address);
        peers[node] = address;
      } else {
        const char* node = nodes[1 + next(3)];
        own.OnPeerDelete(PeerSource::kPeerKey, node, Family::kV4);
        shared.OnPeerDelete(PeerSource::kPeerKey, node, Family::kV4);
        peers.erase(node);
      }
    }
    own.TakeDeltas();
    for (const auto& delta : shared.TakeDeltas()) {
      auto it = applied.find(delta.dst);
      std::optional<net::Route> before;
      if (it != applied.end()) before = it->second;
      ASSERT_NE(before, delta.route) << "a no-op delta for " << delta.dst.ToString();
      if (delta.route) {
        applied[delta.dst] = *delta.route;
      } else {
        applied.erase(delta.dst);
      }
      ++deltas_seen;
    }
    size_t pending = 0;
    RouteTable expected = RoutesFromScratch(blocks, peers, "host-a", A("10.99.0.1"), &pending);
    ASSERT_EQ(own.desired(), expected) << "round " << round;
    ASSERT_EQ(own.pending_count(), pending) << "round " << round;
    ASSERT_EQ(applied, own.desired()) << "round " << round;
    ASSERT_EQ(&shared.desired(), &applied);
    ASSERT_EQ(shared.pending_count(), own.pending_count());
  }
  EXPECT_GT(deltas_seen, 100u) << "the sequence must exercise the tables";
}

TEST(RouteCalculatorSharedTable, ChangedAndChangedBackBeforeTheTakeIsNoDelta) {
  RouteCalculator calc({"host-a", {A("10.99.0.1")}});
  RouteTable applied;
  calc.ShareDesiredTable(applied);
  calc.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV4, A("10.99.0.2"));
  calc.OnBlockUpdate(Block("10.244.2.0/26", AffinityType::kHost, "host-b"));
  auto deltas = calc.TakeDeltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(calc.desired().empty()) << "the shared table is the caller's to fill";
  applied[deltas[0].dst] = *deltas[0].route;
  EXPECT_EQ(calc.desired().size(), 1u);
  calc.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV4, A("10.99.0.9"));
  calc.OnPeerUpdate(PeerSource::kPeerKey, "host-b", Family::kV4, A("10.99.0.2"));
  EXPECT_TRUE(calc.TakeDeltas().empty());
  calc.OnBlockDelete(P("10.244.2.0/26"));
  deltas = calc.TakeDeltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].route);
}

}  // namespace
}  // namespace vcra::routing
