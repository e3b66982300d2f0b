#include "routing/route_calculator.h"

#include <algorithm>
#include <iterator>

namespace vcra::routing {

RouteCalculator::RouteCalculator(CalculatorConfig config) : config_(std::move(config)) {}

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

std::vector<RouteIntent> RouteCalculator::IntentsOf(const std::string& key,
                                                    const calico::IpamBlock& block) const {
  std::vector<RouteIntent> out;
  if (block.deleted || !IsRoutable(block.cidr)) return out;
  std::string_view affine = block.AffineHost();
  if (!affine.empty() && affine != config_.my_node) {
    out.push_back({block.cidr, std::string(affine), key, IntentKind::kBlock});
  }
  // A virtual block's allocations are compared against its virtual name, as Calico's
  // NonAffineAllocations does; the name never equals a node, so owned IPs get /32s.
  std::string_view owner = block.affinity_type == calico::AffinityType::kNone
                               ? ""
                               : std::string_view(block.affinity_name);
  for (const auto& alloc : block.allocations) {
    if (alloc.node.empty() || alloc.node == owner || alloc.node == config_.my_node) continue;
    out.push_back({net::IpPrefix::Host(alloc.ip), alloc.node, key, IntentKind::kBorrowedIp});
  }
  return out;
}

void RouteCalculator::OnBlockUpdate(const std::string& key, const calico::IpamBlock& block) {
  auto intents = IntentsOf(key, block);
  blocks_[key].block = block;
  SetBlockIntents(key, std::move(intents));
}

void RouteCalculator::OnBlockDelete(const std::string& key) {
  auto it = blocks_.find(key);
  if (it == blocks_.end()) return;
  SetBlockIntents(key, {});
  blocks_.erase(key);
}

void RouteCalculator::SetBlockIntents(const std::string& key, std::vector<RouteIntent> intents) {
  StoredBlock& stored = blocks_[key];
  std::vector<RouteIntent> old = std::move(stored.intents);
  // Sorted, so the two differences cost O(n log n): a /20 block holds 4096 allocations.
  std::sort(intents.begin(), intents.end());
  stored.intents = std::move(intents);
  std::vector<RouteIntent> added, removed;
  std::set_difference(stored.intents.begin(), stored.intents.end(), old.begin(), old.end(),
                      std::back_inserter(added));
  std::set_difference(old.begin(), old.end(), stored.intents.begin(), stored.intents.end(),
                      std::back_inserter(removed));
  // Add before remove so a prefix that stays (e.g. a block re-written unchanged) never passes
  // through "no intent" and so never emits a spurious delete.
  std::unordered_set<net::IpPrefix> touched;
  for (const auto& intent : added) {
    AddIntent(intent);
    touched.insert(intent.dst);
  }
  for (const auto& intent : removed) {
    RemoveIntent(intent);
    touched.insert(intent.dst);
  }
  for (const auto& dst : touched) Recompute(dst);
}

void RouteCalculator::AddIntent(const RouteIntent& intent) {
  intents_[intent.dst].push_back(intent);
  prefixes_by_node_[intent.node].insert(intent.dst);
}

void RouteCalculator::RemoveIntent(const RouteIntent& intent) {
  auto it = intents_.find(intent.dst);
  if (it == intents_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), intent), list.end());
  bool node_still_used = std::any_of(list.begin(), list.end(),
                                     [&](const RouteIntent& i) { return i.node == intent.node; });
  if (list.empty()) intents_.erase(it);
  if (!node_still_used) {
    auto by_node = prefixes_by_node_.find(intent.node);
    if (by_node != prefixes_by_node_.end()) {
      by_node->second.erase(intent.dst);
      if (by_node->second.empty()) prefixes_by_node_.erase(by_node);
    }
  }
}

std::optional<RouteIntent> RouteCalculator::IntentFor(const net::IpPrefix& dst) const {
  auto it = intents_.find(dst);
  if (it == intents_.end() || it->second.empty()) return std::nullopt;
  return *std::min_element(
      it->second.begin(), it->second.end(),
      [](const RouteIntent& a, const RouteIntent& b) { return a.block_key < b.block_key; });
}

std::optional<net::IpAddress> RouteCalculator::PeerAddress(const std::string& node,
                                                           net::Family family) const {
  auto it = peers_.find(node);
  if (it == peers_.end()) return std::nullopt;
  const PeerAddresses& p = it->second;
  if (family == net::Family::kV4) return p.key_v4 ? p.key_v4 : p.node_v4;
  return p.key_v6 ? p.key_v6 : p.node_v6;
}

void RouteCalculator::Recompute(const net::IpPrefix& dst) {
  std::optional<net::Route> want;
  pending_.erase(dst);
  if (auto intent = IntentFor(dst)) {
    auto gateway = PeerAddress(intent->node, dst.family());
    bool own = gateway && std::find(config_.my_addresses.begin(), config_.my_addresses.end(),
                                    *gateway) != config_.my_addresses.end();
    if (gateway && !own) {
      want = net::Route{dst, *gateway};
    } else if (!gateway) {
      pending_[dst] = intent->node;
    }
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

void RouteCalculator::RecomputeNode(const std::string& node) {
  auto it = prefixes_by_node_.find(node);
  if (it == prefixes_by_node_.end()) return;
  std::vector<net::IpPrefix> prefixes(it->second.begin(), it->second.end());
  for (const auto& dst : prefixes) Recompute(dst);
}

void RouteCalculator::OnPeerUpdate(PeerSource source, const std::string& node, net::Family family,
                                   const net::IpAddress& address) {
  if (address.family() != family) return;  // a peer of the other family routes nothing
  PeerAddresses& p = peers_[node];
  bool v4 = family == net::Family::kV4;
  auto& slot =
      source == PeerSource::kPeerKey ? (v4 ? p.key_v4 : p.key_v6) : (v4 ? p.node_v4 : p.node_v6);
  if (slot == address) return;
  slot = address;
  RecomputeNode(node);
}

void RouteCalculator::OnPeerDelete(PeerSource source, const std::string& node, net::Family family) {
  auto it = peers_.find(node);
  if (it == peers_.end()) return;
  PeerAddresses& p = it->second;
  bool v4 = family == net::Family::kV4;
  auto& slot =
      source == PeerSource::kPeerKey ? (v4 ? p.key_v4 : p.key_v6) : (v4 ? p.node_v4 : p.node_v6);
  if (!slot) return;
  slot.reset();
  if (p.empty()) peers_.erase(it);
  RecomputeNode(node);
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
  all.reserve(intents_.size());
  for (const auto& [dst, list] : intents_) all.push_back(dst);
  for (const auto& dst : all) Recompute(dst);
}

void RouteCalculator::ReevaluateAllBlocks() {
  std::vector<std::string> keys;
  keys.reserve(blocks_.size());
  for (const auto& [key, stored] : blocks_) keys.push_back(key);
  for (const auto& key : keys) SetBlockIntents(key, IntentsOf(key, blocks_[key].block));
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
    if (auto intent = IntentFor(dst)) out.push_back(*intent);
  }
  std::sort(out.begin(), out.end(),
            [](const RouteIntent& a, const RouteIntent& b) { return a.dst < b.dst; });
  return out;
}

std::map<std::string, std::pair<std::optional<net::IpAddress>, std::optional<net::IpAddress>>>
RouteCalculator::Peers() const {
  std::map<std::string, std::pair<std::optional<net::IpAddress>, std::optional<net::IpAddress>>>
      out;
  for (const auto& [node, p] : peers_) {
    out[node] = {PeerAddress(node, net::Family::kV4), PeerAddress(node, net::Family::kV6)};
  }
  return out;
}

}  // namespace vcra::routing
