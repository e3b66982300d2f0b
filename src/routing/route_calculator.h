// RouteCalculator: the desired routes as a pure, incremental function of Calico's data.
//
// Inputs are IPAM blocks (by CIDR, which names the etcd key), peer addresses (the agent's own peer
// keys and/or Calico Node resources) and IP pools. Output is a stream of per-prefix deltas
// (TakeDeltas): a prefix now wants a route, wants a different next hop, or wants none.
//
// Rules (docs/design.md, "Route calculation"):
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

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/inlined_vector.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calico/model.h"
#include "net/ip.h"
#include "routing/route_table.h"

namespace vcra::routing {

enum class PeerSource : uint8_t {
  kPeerKey,     // /vpp-calico/hosts/<host>/peerip/... (wins when both are known)
  kCalicoNode,  // Calico Node resource spec.bgp.ipv4Address etc.
};

enum class IntentKind : uint8_t { kBlock, kBorrowedIp };

// Why a prefix wants a route: which block, which node (built on demand for status and dry-run;
// the calculator itself keeps interned ids).
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

  // Blocks are identified by their CIDR: etcd keys and CIDRs are one-to-one (calico::BlockKey).
  void OnBlockUpdate(const calico::IpamBlock& block);
  // Room for `blocks` blocks in all (a listing's count): a table grown by doubling holds the old
  // and the new copy at once, half again its size, at the worst moment (the listing's end).
  void ReserveBlocks(size_t blocks) { blocks_.reserve(blocks); }
  void OnBlockDelete(const net::IpPrefix& cidr);
  void OnPeerUpdate(PeerSource source, const std::string& node, net::Family family,
                    const net::IpAddress& address);
  void OnPeerDelete(PeerSource source, const std::string& node, net::Family family);
  void OnPoolUpdate(const std::string& key, const calico::IpPool& pool);
  void OnPoolDelete(const std::string& key);
  void SetMyAddresses(std::vector<net::IpAddress> addresses);

  // Deltas since the last call, at most one per prefix, in no particular order.
  std::vector<RouteDelta> TakeDeltas();

  // Keep no desired table of its own: `applied` is where the caller applies every delta it takes
  // (the reconciler's desired routes), so the calculator computes its deltas against that table
  // plus the deltas not taken yet. At 100k routes that is one table of routes instead of two.
  // Call before the first input; `applied` must outlive the calculator.
  void ShareDesiredTable(const RouteTable& applied);

  // Current desired routes. With a shared table: as of the last TakeDeltas applied to it.
  const RouteTable& desired() const { return shared_desired_ ? *shared_desired_ : desired_; }
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
  // Node names are interned: every table below holds a 4-byte id, never a string. Ids are not
  // reused (the table grows with the distinct node names ever seen, which Calico bounds by the
  // cluster's hosts).
  using NodeId = uint32_t;
  static constexpr NodeId kNoNode = ~NodeId{0};

  struct PeerAddresses {
    std::optional<net::IpAddress> key_v4, key_v6, node_v4, node_v6;
    bool empty() const { return !key_v4 && !key_v6 && !node_v4 && !node_v6; }
  };
  // An allocation that routes to another node than the block's owner (and not to us).
  struct Borrowed {
    net::IpAddress ip;
    NodeId node = kNoNode;
    friend bool operator==(const Borrowed&, const Borrowed&) = default;
  };
  // Per block only what its routes need; the block's routes follow from it and from
  // `routable` (the pools as last evaluated), so they are not stored.
  struct StoredBlock {
    NodeId affine = kNoNode;  // the affine host when a route to the block is wanted
    bool deleted = false;
    bool routable = false;
    std::vector<Borrowed> borrowed;
  };
  // One block's wish for a prefix.
  struct Claim {
    net::IpPrefix dst;
    net::IpPrefix block;
    NodeId node = kNoNode;
    IntentKind kind = IntentKind::kBlock;
    friend auto operator<=>(const Claim&, const Claim&) = default;
    friend bool operator==(const Claim&, const Claim&) = default;
  };
  // A claim on one prefix (dst left out, it is the map's key).
  struct PrefixClaim {
    net::IpPrefix block;
    NodeId node = kNoNode;
    IntentKind kind = IntentKind::kBlock;
    friend bool operator==(const PrefixClaim&, const PrefixClaim&) = default;
  };
  using ClaimList = absl::InlinedVector<PrefixClaim, 1>;

  NodeId Intern(std::string_view node);
  std::optional<NodeId> FindNode(std::string_view node) const;
  const std::string& NodeName(NodeId id) const { return node_names_[id]; }
  StoredBlock Compact(const calico::IpamBlock& block);
  void ClaimsOf(const net::IpPrefix& cidr, const StoredBlock& block, std::vector<Claim>& out) const;
  void ReplaceClaims(std::vector<Claim> old_claims, std::vector<Claim> new_claims);
  void AddClaim(const Claim& claim);
  void RemoveClaim(const Claim& claim);
  // The block route claim on `dst`: the block whose CIDR it is, when that block wants a route.
  std::optional<PrefixClaim> BlockClaim(const net::IpPrefix& dst) const;
  // The claim that wins a prefix: the smallest block key when several blocks claim it, so the
  // result does not depend on event order.
  std::optional<PrefixClaim> Winner(const net::IpPrefix& dst) const;
  RouteIntent ToIntent(const net::IpPrefix& dst, const PrefixClaim& claim) const;
  std::optional<net::IpAddress> PeerAddressOf(NodeId node, net::Family family) const;
  void Recompute(const net::IpPrefix& dst);
  void RecomputeNode(NodeId node);
  void ReevaluateAllBlocks();

  CalculatorConfig config_;
  std::vector<std::string> node_names_;  // NodeId -> name
  absl::flat_hash_map<std::string, NodeId> node_ids_;
  absl::flat_hash_map<net::IpPrefix, StoredBlock, std::hash<net::IpPrefix>> blocks_;
  // The borrowed-IP claims per prefix (normally one). A block route's claim is not stored: it
  // is the block itself (BlockClaim), so at 100k blocks this table holds only the few /32s.
  absl::flat_hash_map<net::IpPrefix, ClaimList, std::hash<net::IpPrefix>> claims_;
  // NodeId -> the prefixes some claim routes via that node.
  std::vector<absl::flat_hash_set<net::IpPrefix, std::hash<net::IpPrefix>>> prefixes_by_node_;
  std::vector<PeerAddresses> peers_;  // NodeId -> addresses (empty: none)
  std::map<std::string, calico::IpPool> pools_;
  RouteTable desired_;  // empty when shared_desired_ is set
  const RouteTable* shared_desired_ = nullptr;
  absl::flat_hash_map<net::IpPrefix, NodeId, std::hash<net::IpPrefix>> pending_;
  absl::flat_hash_map<net::IpPrefix, std::optional<net::Route>, std::hash<net::IpPrefix>> deltas_;
};

}  // namespace vcra::routing
