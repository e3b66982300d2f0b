// RouteCalculator: the desired routes as a pure, incremental function of Calico's data.
//
// Inputs are IPAM blocks (by etcd key), peer addresses (the agent's own peer keys and/or Calico
// Node resources) and IP pools. Output is a stream of per-prefix deltas (TakeDeltas): a prefix
// now wants a route, wants a different next hop, or wants none.
//
// Rules (SPEC.md "Routes"):
//   - block affine to host:H, H not us, peer(H) known           -> block via peer(H)
//   - allocation owned by node N, N != block's affine host, N not us -> /32 or /128 via peer(N),
//     for every block, our own included (the borrowed-IP rule)
//   - nothing for deleted blocks, virtual: affinities (block route), affinity null (block route),
//     allocations without an owner, a peer of the other family, a peer address that is our own,
//     blocks outside every enabled workload pool (once any pool is known)
// A prefix whose node has no address yet is "pending": no route, listed by Pending().
//
// Cost: a block update touches only that block's prefixes; a peer change touches only the
// prefixes routed via that node; a pool change re-evaluates every block (pools change rarely).
//
// Not thread-safe: owned by the agent's loop thread.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "calico/model.h"
#include "net/ip.h"

namespace vcra::routing {

enum class PeerSource : uint8_t {
  kPeerKey,     // /vpp-calico/hosts/<host>/peerip/... (wins when both are known)
  kCalicoNode,  // Calico Node resource spec.bgp.ipv4Address etc.
};

enum class IntentKind : uint8_t { kBlock, kBorrowedIp };

// Why a prefix wants a route: which block, which node.
struct RouteIntent {
  net::IpPrefix dst;
  std::string node;
  std::string block_key;
  IntentKind kind = IntentKind::kBlock;
  friend auto operator<=>(const RouteIntent&, const RouteIntent&) = default;
  friend bool operator==(const RouteIntent&, const RouteIntent&) = default;
};

struct RouteDelta {
  net::IpPrefix dst;
  std::optional<net::Route> route;  // nullopt: no route wanted any more
};

struct CalculatorConfig {
  std::string my_node;
  std::vector<net::IpAddress> my_addresses;
};

class RouteCalculator {
 public:
  explicit RouteCalculator(CalculatorConfig config);

  void OnBlockUpdate(const std::string& key, const calico::IpamBlock& block);
  void OnBlockDelete(const std::string& key);
  void OnPeerUpdate(PeerSource source, const std::string& node, net::Family family,
                    const net::IpAddress& address);
  void OnPeerDelete(PeerSource source, const std::string& node, net::Family family);
  void OnPoolUpdate(const std::string& key, const calico::IpPool& pool);
  void OnPoolDelete(const std::string& key);
  void SetMyAddresses(std::vector<net::IpAddress> addresses);

  // Deltas since the last call, at most one per prefix, in no particular order.
  std::vector<RouteDelta> TakeDeltas();

  // Current desired routes.
  const std::unordered_map<net::IpPrefix, net::Route>& desired() const { return desired_; }
  // Prefixes waiting for their node's address, with the node.
  std::vector<RouteIntent> Pending() const;
  size_t pending_count() const { return pending_.size(); }
  // The intent behind a prefix (for status output).
  std::optional<RouteIntent> IntentFor(const net::IpPrefix& dst) const;
  // Effective peer address of a node, if any.
  std::optional<net::IpAddress> PeerAddress(const std::string& node, net::Family family) const;
  std::map<std::string, std::pair<std::optional<net::IpAddress>, std::optional<net::IpAddress>>>
  Peers() const;
  size_t block_count() const { return blocks_.size(); }
  // Is this block inside an enabled workload pool (always true while no pool is known)?
  bool IsRoutable(const net::IpPrefix& block_cidr) const;
  // CIDRs of the enabled workload pools.
  std::vector<net::IpPrefix> RoutablePools() const;

 private:
  struct PeerAddresses {
    std::optional<net::IpAddress> key_v4, key_v6, node_v4, node_v6;
    bool empty() const { return !key_v4 && !key_v6 && !node_v4 && !node_v6; }
  };
  struct StoredBlock {
    calico::IpamBlock block;
    std::vector<RouteIntent> intents;
  };

  std::vector<RouteIntent> IntentsOf(const std::string& key, const calico::IpamBlock& block) const;
  void SetBlockIntents(const std::string& key, std::vector<RouteIntent> intents);
  void AddIntent(const RouteIntent& intent);
  void RemoveIntent(const RouteIntent& intent);
  void Recompute(const net::IpPrefix& dst);
  void RecomputeNode(const std::string& node);
  void ReevaluateAllBlocks();

  CalculatorConfig config_;
  std::unordered_map<std::string, StoredBlock> blocks_;
  // Every intent for a prefix; normally one. When two blocks claim the same prefix the one with
  // the smallest block key wins, so the result does not depend on event order.
  std::unordered_map<net::IpPrefix, std::vector<RouteIntent>> intents_;
  std::unordered_map<std::string, std::unordered_set<net::IpPrefix>> prefixes_by_node_;
  std::unordered_map<std::string, PeerAddresses> peers_;
  std::map<std::string, calico::IpPool> pools_;
  std::unordered_map<net::IpPrefix, net::Route> desired_;
  std::unordered_map<net::IpPrefix, std::string> pending_;  // prefix -> node
  std::unordered_map<net::IpPrefix, std::optional<net::Route>> deltas_;
};

}  // namespace vcra::routing
