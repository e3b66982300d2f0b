#include "routing/route_calculator.h"

#include <algorithm>
#include <iterator>

namespace vcra::routing {

RouteCalculator::RouteCalculator(CalculatorConfig config) : config_(std::move(config)) {}

RouteCalculator::NodeId RouteCalculator::Intern(std::string_view node) {
  if (auto it = node_ids_.find(absl::string_view(node.data(), node.size()));
      it != node_ids_.end()) {
    return it->second;
  }
  NodeId id = static_cast<NodeId>(node_names_.size());
  node_names_.emplace_back(node);
  node_ids_.emplace(std::string(node), id);
  prefixes_by_node_.emplace_back();
  peers_.emplace_back();
  return id;
}

std::optional<RouteCalculator::NodeId> RouteCalculator::FindNode(std::string_view node) const {
  auto it = node_ids_.find(absl::string_view(node.data(), node.size()));
  if (it == node_ids_.end()) return std::nullopt;
  return it->second;
}

bool RouteCalculator::IsRoutable(const net::IpPrefix& block_cidr) const {
  if (pools_.empty()) return true;
  for (const auto& [key, pool] : pools_) {
    if (!pool.disabled && pool.workload && pool.cidr.Contains(block_cidr)) return true;
  }
  return false;
}

std::vector<net::IpPrefix> RouteCalculator::RoutablePools() const {
  std::vector<net::IpPrefix> out;
  for (const auto& [key, pool] : pools_) {
    if (!pool.disabled && pool.workload) out.push_back(pool.cidr);
  }
  return out;
}

RouteCalculator::StoredBlock RouteCalculator::Compact(const calico::IpamBlock& block) {
  StoredBlock out;
  out.deleted = block.deleted;
  out.routable = IsRoutable(block.cidr);
  std::string_view affine = block.AffineHost();
  if (!affine.empty() && affine != config_.my_node) out.affine = Intern(affine);
  // A virtual block's allocations are compared against its virtual name, as Calico's
  // NonAffineAllocations does; the name never equals a node, so owned IPs get /32s.
  std::string_view owner = block.affinity_type == calico::AffinityType::kNone
                               ? ""
                               : std::string_view(block.affinity_name);
  for (const auto& alloc : block.allocations) {
    if (alloc.node.empty() || alloc.node == owner || alloc.node == config_.my_node) continue;
    out.borrowed.push_back({alloc.ip, Intern(alloc.node)});
  }
  out.borrowed.shrink_to_fit();
  return out;
}

void RouteCalculator::ClaimsOf(const net::IpPrefix& cidr, const StoredBlock& block,
                               std::vector<Claim>& out) const {
  if (block.deleted || !block.routable) return;
  if (block.affine != kNoNode) out.push_back({cidr, cidr, block.affine, IntentKind::kBlock});
  for (const auto& b : block.borrowed) {
    out.push_back({net::IpPrefix::Host(b.ip), cidr, b.node, IntentKind::kBorrowedIp});
  }
}

void RouteCalculator::OnBlockUpdate(const calico::IpamBlock& block) {
  StoredBlock next = Compact(block);
  std::vector<Claim> old_claims, new_claims;
  auto [it, inserted] = blocks_.try_emplace(block.cidr);
  if (!inserted) ClaimsOf(block.cidr, it->second, old_claims);
  ClaimsOf(block.cidr, next, new_claims);
  it->second = std::move(next);
  ReplaceClaims(std::move(old_claims), std::move(new_claims));
}

void RouteCalculator::OnBlockDelete(const net::IpPrefix& cidr) {
  auto it = blocks_.find(cidr);
  if (it == blocks_.end()) return;
  std::vector<Claim> old_claims;
  ClaimsOf(cidr, it->second, old_claims);
  blocks_.erase(it);
  ReplaceClaims(std::move(old_claims), {});
}

void RouteCalculator::ReplaceClaims(std::vector<Claim> old_claims, std::vector<Claim> new_claims) {
  if (old_claims == new_claims) return;  // the common rewrite: same routes
  // Sorted, so the two differences cost O(n log n): a /20 block holds 4096 allocations.
  std::sort(old_claims.begin(), old_claims.end());
  std::sort(new_claims.begin(), new_claims.end());
  std::vector<Claim> added, removed;
  std::set_difference(new_claims.begin(), new_claims.end(), old_claims.begin(), old_claims.end(),
                      std::back_inserter(added));
  std::set_difference(old_claims.begin(), old_claims.end(), new_claims.begin(), new_claims.end(),
                      std::back_inserter(removed));
  // Add before remove so a prefix that stays (e.g. a block re-written unchanged) never passes
  // through "no claim" and so never emits a spurious delete.
  std::vector<net::IpPrefix> touched;
  touched.reserve(added.size() + removed.size());
  for (const auto& claim : added) {
    AddClaim(claim);
    touched.push_back(claim.dst);
  }
  for (const auto& claim : removed) {
    RemoveClaim(claim);
    touched.push_back(claim.dst);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (const auto& dst : touched) Recompute(dst);
}

void RouteCalculator::AddClaim(const Claim& claim) {
  // A block route's claim is the block itself (blocks_, already updated): nothing to store.
  if (claim.kind != IntentKind::kBlock) {
    claims_[claim.dst].push_back({claim.block, claim.node, claim.kind});
  }
  prefixes_by_node_[claim.node].insert(claim.dst);
}

void RouteCalculator::RemoveClaim(const Claim& claim) {
  bool node_still_used = false;
  if (auto it = claims_.find(claim.dst); it != claims_.end()) {
    ClaimList& list = it->second;
    if (claim.kind != IntentKind::kBlock) {
      PrefixClaim gone{claim.block, claim.node, claim.kind};
      list.erase(std::remove(list.begin(), list.end(), gone), list.end());
    }
    node_still_used = std::any_of(list.begin(), list.end(),
                                  [&](const PrefixClaim& c) { return c.node == claim.node; });
    if (list.empty()) claims_.erase(it);
  }
  if (auto block = BlockClaim(claim.dst); block && block->node == claim.node) {
    node_still_used = true;
  }
  if (!node_still_used) prefixes_by_node_[claim.node].erase(claim.dst);
}

std::optional<RouteCalculator::PrefixClaim> RouteCalculator::BlockClaim(
    const net::IpPrefix& dst) const {
  auto it = blocks_.find(dst);
  if (it == blocks_.end()) return std::nullopt;
  const StoredBlock& block = it->second;
  // The same conditions as ClaimsOf.
  if (block.deleted || !block.routable || block.affine == kNoNode) return std::nullopt;
  return PrefixClaim{dst, block.affine, IntentKind::kBlock};
}

std::optional<RouteCalculator::PrefixClaim> RouteCalculator::Winner(
    const net::IpPrefix& dst) const {
  std::optional<PrefixClaim> best = BlockClaim(dst);
  auto it = claims_.find(dst);
  if (it == claims_.end()) return best;
  for (const PrefixClaim& claim : it->second) {
    // Rare (several claims: overlapping blocks): compare the keys themselves.
    if (!best || calico::BlockKey(claim.block) < calico::BlockKey(best->block)) best = claim;
  }
  return best;
}

RouteIntent RouteCalculator::ToIntent(const net::IpPrefix& dst, const PrefixClaim& claim) const {
  return {dst, NodeName(claim.node), calico::BlockKey(claim.block), claim.kind};
}

std::optional<RouteIntent> RouteCalculator::IntentFor(const net::IpPrefix& dst) const {
  auto winner = Winner(dst);
  if (!winner) return std::nullopt;
  return ToIntent(dst, *winner);
}

std::optional<net::IpAddress> RouteCalculator::PeerAddressOf(NodeId node,
                                                             net::Family family) const {
  const PeerAddresses& p = peers_[node];
  if (family == net::Family::kV4) return p.key_v4 ? p.key_v4 : p.node_v4;
  return p.key_v6 ? p.key_v6 : p.node_v6;
}

std::optional<net::IpAddress> RouteCalculator::PeerAddress(const std::string& node,
                                                           net::Family family) const {
  auto id = FindNode(node);
  if (!id) return std::nullopt;
  return PeerAddressOf(*id, family);
}

void RouteCalculator::Recompute(const net::IpPrefix& dst) {
  std::optional<net::Route> want;
  pending_.erase(dst);
  if (auto winner = Winner(dst)) {
    auto gateway = PeerAddressOf(winner->node, dst.family());
    bool own = gateway && std::find(config_.my_addresses.begin(), config_.my_addresses.end(),
                                    *gateway) != config_.my_addresses.end();
    if (gateway && !own) {
      want = net::Route{dst, *gateway};
    } else if (!gateway) {
      pending_[dst] = winner->node;
    }
  }
  if (shared_desired_) {
    // What the caller holds is the shared table; a delta not taken yet overrides it.
    std::optional<net::Route> applied;
    if (auto cur = shared_desired_->find(dst); cur != shared_desired_->end()) applied = cur->second;
    auto pending_delta = deltas_.find(dst);
    std::optional<net::Route> have =
        pending_delta != deltas_.end() ? pending_delta->second : applied;
    if (have == want) return;
    if (want == applied) {
      deltas_.erase(pending_delta);  // back to what the caller holds: nothing to tell it
    } else {
      deltas_[dst] = want;
    }
    return;
  }
  auto cur = desired_.find(dst);
  std::optional<net::Route> have;
  if (cur != desired_.end()) have = cur->second;
  if (have == want) return;
  if (want) {
    desired_[dst] = *want;
  } else {
    desired_.erase(dst);
  }
  deltas_[dst] = want;
}

void RouteCalculator::ShareDesiredTable(const RouteTable& applied) {
  VCRA_CHECK(desired_.empty() && deltas_.empty());
  shared_desired_ = &applied;
}

void RouteCalculator::RecomputeNode(NodeId node) {
  const auto& set = prefixes_by_node_[node];
  std::vector<net::IpPrefix> prefixes(set.begin(), set.end());
  for (const auto& dst : prefixes) Recompute(dst);
}

void RouteCalculator::OnPeerUpdate(PeerSource source, const std::string& node, net::Family family,
                                   const net::IpAddress& address) {
  if (address.family() != family) return;  // a peer of the other family routes nothing
  NodeId id = Intern(node);
  PeerAddresses& p = peers_[id];
  bool v4 = family == net::Family::kV4;
  auto& slot =
      source == PeerSource::kPeerKey ? (v4 ? p.key_v4 : p.key_v6) : (v4 ? p.node_v4 : p.node_v6);
  if (slot == address) return;
  slot = address;
  RecomputeNode(id);
}

void RouteCalculator::OnPeerDelete(PeerSource source, const std::string& node, net::Family family) {
  auto id = FindNode(node);
  if (!id) return;
  PeerAddresses& p = peers_[*id];
  bool v4 = family == net::Family::kV4;
  auto& slot =
      source == PeerSource::kPeerKey ? (v4 ? p.key_v4 : p.key_v6) : (v4 ? p.node_v4 : p.node_v6);
  if (!slot) return;
  slot.reset();
  RecomputeNode(*id);
}

void RouteCalculator::OnPoolUpdate(const std::string& key, const calico::IpPool& pool) {
  auto it = pools_.find(key);
  if (it != pools_.end() && it->second == pool) return;
  pools_[key] = pool;
  ReevaluateAllBlocks();
}

void RouteCalculator::OnPoolDelete(const std::string& key) {
  if (pools_.erase(key) == 0) return;
  ReevaluateAllBlocks();
}

void RouteCalculator::SetMyAddresses(std::vector<net::IpAddress> addresses) {
  config_.my_addresses = std::move(addresses);
  std::vector<net::IpPrefix> all;
  all.reserve(claims_.size() + blocks_.size());
  for (const auto& [dst, list] : claims_) all.push_back(dst);
  for (const auto& [cidr, block] : blocks_) {
    if (!claims_.contains(cidr)) all.push_back(cidr);
  }
  for (const auto& dst : all) Recompute(dst);
}

void RouteCalculator::ReevaluateAllBlocks() {
  for (auto& [cidr, block] : blocks_) {
    bool routable = IsRoutable(cidr);
    if (routable == block.routable) continue;
    std::vector<Claim> old_claims, new_claims;
    ClaimsOf(cidr, block, old_claims);
    block.routable = routable;
    ClaimsOf(cidr, block, new_claims);
    ReplaceClaims(std::move(old_claims), std::move(new_claims));
  }
}

std::vector<RouteDelta> RouteCalculator::TakeDeltas() {
  std::vector<RouteDelta> out;
  out.reserve(deltas_.size());
  for (auto& [dst, route] : deltas_) out.push_back({dst, std::move(route)});
  deltas_.clear();
  return out;
}

std::vector<RouteIntent> RouteCalculator::Pending() const {
  std::vector<RouteIntent> out;
  for (const auto& [dst, node] : pending_) {
    if (auto winner = Winner(dst)) out.push_back(ToIntent(dst, *winner));
  }
  std::sort(out.begin(), out.end(),
            [](const RouteIntent& a, const RouteIntent& b) { return a.dst < b.dst; });
  return out;
}

std::map<std::string, std::pair<std::optional<net::IpAddress>, std::optional<net::IpAddress>>>
RouteCalculator::Peers() const {
  std::map<std::string, std::pair<std::optional<net::IpAddress>, std::optional<net::IpAddress>>>
      out;
  for (NodeId id = 0; id < peers_.size(); ++id) {
    if (peers_[id].empty()) continue;
    out[NodeName(id)] = {PeerAddressOf(id, net::Family::kV4), PeerAddressOf(id, net::Family::kV6)};
  }
  return out;
}

}  // namespace vcra::routing
