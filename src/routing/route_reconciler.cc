#include "routing/route_reconciler.h"

#include <algorithm>
#include <utility>

namespace vcra::routing {

std::string_view SyncStateName(SyncState s) {
  switch (s) {
    case SyncState::kAwaitingDatastore:
      return "awaiting-datastore";
    case SyncState::kAwaitingDataplane:
      return "awaiting-dataplane";
    case SyncState::kSyncing:
      return "syncing";
    case SyncState::kInSync:
      return "in-sync";
  }
  return "unknown";
}

RouteReconciler::RouteReconciler(RetryPolicy retry) : retry_policy_(retry) {}

bool RouteReconciler::Matches(const net::IpPrefix& dst) const {
  return desired_.contains(dst) && !actual_missing_.contains(dst) && !actual_other_.contains(dst);
}

std::optional<net::Route> RouteReconciler::ActualRoute(const net::IpPrefix& dst) const {
  if (auto other = actual_other_.find(dst); other != actual_other_.end()) return other->second;
  if (actual_missing_.contains(dst)) return std::nullopt;
  if (auto d = desired_.find(dst); d != desired_.end()) return d->second;
  return std::nullopt;
}

void RouteReconciler::MarkDirty(const net::IpPrefix& dst) {
  bool differs = desired_.contains(dst) ? !Matches(dst) : actual_other_.contains(dst);
  if (differs) {
    dirty_.insert(dst);
  } else {
    dirty_.erase(dst);
    ClearRetry(dst);
  }
}

void RouteReconciler::ClearRetry(const net::IpPrefix& dst) {
  auto it = retry_.find(dst);
  if (it == retry_.end()) return;
  conflicting_count_ -= it->second.conflict;
  retry_.erase(it);
}

namespace {

// The difference tables fill up during a sync and empty as it completes; an open-addressing
// table emptied by erasures keeps its size and its tombstones, which lengthen every later
// lookup. Shrink once it is mostly empty.
template <typename Table>
void EraseAndShrink(Table& table, const net::IpPrefix& dst) {
  if (table.erase(dst) == 0) return;
  if (table.capacity() > 64 && table.size() * 8 < table.capacity()) table.rehash(0);
}

}  // namespace

void RouteReconciler::Place(const net::IpPrefix& dst, const std::optional<net::Route>& want,
                            const std::optional<net::Route>& actual, bool in_other,
                            bool in_missing) {
  bool to_missing = want && !actual;
  bool to_other = actual && !(want && *actual == *want);
  if (in_missing && !to_missing) EraseAndShrink(actual_missing_, dst);
  if (!in_missing && to_missing) actual_missing_.insert(dst);
  if (to_other) {
    actual_other_.insert_or_assign(dst, *actual);
  } else if (in_other) {
    EraseAndShrink(actual_other_, dst);
  }
}

void RouteReconciler::SetActual(const net::IpPrefix& dst, const std::optional<net::Route>& route) {
  auto d = desired_.find(dst);
  bool in_other = actual_other_.contains(dst);
  bool in_missing = !in_other && actual_missing_.contains(dst);
  bool matched = d != desired_.end() && !in_other && !in_missing;
  std::optional<net::Route> want;
  if (d != desired_.end()) want = d->second;
  Place(dst, want, route, in_other, in_missing);
  programmed_matching_ += want && route == want;
  programmed_matching_ -= matched;
}

void RouteReconciler::SetDesired(const net::IpPrefix& dst, const std::optional<net::Route>& route) {
  auto d = desired_.find(dst);
  auto other = actual_other_.find(dst);
  bool in_other = other != actual_other_.end();
  bool in_missing = !in_other && actual_missing_.contains(dst);
  // What the dataplane holds does not change with what we want: keep it across the change.
  std::optional<net::Route> actual;
  if (in_other) {
    actual = other->second;
  } else if (!in_missing && d != desired_.end()) {
    actual = d->second;
  }
  bool matched = d != desired_.end() && !in_other && !in_missing;
  if (route) {
    if (d != desired_.end()) {
      d->second = *route;
    } else {
      desired_.emplace(dst, *route);
    }
  } else if (d != desired_.end()) {
    desired_.erase(d);
  }
  Place(dst, route, actual, in_other, in_missing);
  bool matches = route && actual == route;
  programmed_matching_ += matches;
  programmed_matching_ -= matched;
  // A new desire supersedes the backoff of an old failure.
  ClearRetry(dst);
  if (route ? !matches : actual.has_value()) {
    dirty_.insert(dst);
  } else {
    dirty_.erase(dst);
  }
}

void RouteReconciler::OnDatastoreSynced() { datastore_synced_ = true; }

void RouteReconciler::OnDataplaneDump(const std::vector<net::Route>& owned) {
  VCRA_CHECK(outstanding_.empty());
  ++stats_.dumps;
  RouteTable dumped;
  dumped.reserve(owned.size());
  for (const auto& r : owned) dumped[r.dst] = r;
  if (dataplane_known_) {
    // Drift: the dataplane disagrees with what our successful ops left there.
    for (const auto& [dst, route] : dumped) {
      if (ActualRoute(dst) != route) ++stats_.drift_repaired;
    }
    auto gone = [&](const net::IpPrefix& dst) {
      if (!dumped.contains(dst) && ActualRoute(dst)) ++stats_.drift_repaired;
    };
    for (const auto& [dst, route] : desired_) gone(dst);
    for (const auto& [dst, route] : actual_other_) {
      if (!desired_.contains(dst)) gone(dst);
    }
  }
  actual_other_.clear();
  actual_missing_.clear();
  for (const auto& [dst, route] : desired_) {
    auto it = dumped.find(dst);
    if (it == dumped.end()) {
      actual_missing_.insert(dst);
    } else if (!(it->second == route)) {
      actual_other_[dst] = it->second;
    }
  }
  for (auto& [dst, route] : dumped) {
    if (!desired_.contains(dst)) actual_other_[dst] = route;
  }
  dumped = {};
  programmed_matching_ = desired_.size() - actual_missing_.size();
  for (const auto& [dst, route] : actual_other_) programmed_matching_ -= desired_.contains(dst);
  dirty_.clear();
  for (const auto& dst : actual_missing_) dirty_.insert(dst);
  for (const auto& [dst, route] : actual_other_) dirty_.insert(dst);
  // A failing op whose route the dump shows in place has nothing left to retry.
  std::vector<net::IpPrefix> settled;
  for (const auto& [dst, r] : retry_) {
    if (!dirty_.contains(dst)) settled.push_back(dst);
  }
  for (const auto& dst : settled) ClearRetry(dst);
  dataplane_known_ = true;
}

void RouteReconciler::OnDataplaneLost() {
  dataplane_known_ = false;
  for (const auto& [seq, op] : outstanding_) dirty_.insert(op.dst);
  outstanding_.clear();
  outstanding_by_prefix_.clear();
}

std::vector<net::RouteOp> RouteReconciler::NextBatch(TimePoint now, size_t max_ops) {
  std::vector<net::RouteOp> upserts, deletes;
  if (!dataplane_known_) return {};
  for (auto it = dirty_.begin(); it != dirty_.end() && deletes.size() + upserts.size() < max_ops;) {
    const net::IpPrefix& dst = *it;
    if (outstanding_by_prefix_.contains(dst)) {
      ++it;
      continue;
    }
    if (auto r = retry_.find(dst); r != retry_.end() && r->second.due > now) {
      ++it;
      continue;
    }
    auto d = desired_.find(dst);
    auto a = actual_other_.find(dst);
    net::RouteOp op;
    if (d != desired_.end()) {
      if (Matches(dst)) {
        it = dirty_.erase(it);
        continue;
      }
      op.type = net::OpType::kUpsert;
      op.route = d->second;
      op.replaces_ours = a != actual_other_.end();  // not missing, not matching: ours differs
    } else if (a != actual_other_.end()) {
      if (!datastore_synced_) {  // stale until proven otherwise by a complete list
        ++it;
        continue;
      }
      op.type = net::OpType::kDelete;
      op.route = a->second;
    } else {
      it = dirty_.erase(it);
      continue;
    }
    op.seq = next_seq_++;
    outstanding_[op.seq] = {dst, op.type, op.route};
    outstanding_by_prefix_[dst] = op.seq;
    (op.type == net::OpType::kDelete ? deletes : upserts).push_back(op);
    ++it;
  }
  // Make before break: when a block route gives way to /32s (affinity released with IPs in
  // use), the /32s are in place before the block route goes.
  upserts.insert(upserts.end(), deletes.begin(), deletes.end());
  return upserts;
}

bool RouteReconciler::OnResults(const std::vector<net::OpResult>& results, TimePoint now) {
  bool lost = false;
  for (const auto& result : results) {
    auto it = outstanding_.find(result.seq);
    if (it == outstanding_.end()) {
      ++stats_.stale_results;
      continue;
    }
    Outstanding op = it->second;
    outstanding_.erase(it);
    outstanding_by_prefix_.erase(op.dst);
    if (result.status.ok()) {
      ++stats_.ops_ok;
      if (op.type == net::OpType::kUpsert) {
        ++stats_.upserts;
        SetActual(op.dst, op.route);
      } else {
        ++stats_.deletes;
        SetActual(op.dst, std::nullopt);
      }
      ClearRetry(op.dst);
      MarkDirty(op.dst);
      continue;
    }
    if (absl::IsUnavailable(result.status)) {
      lost = true;
      dirty_.insert(op.dst);
      continue;
    }
    bool conflict = op.type == net::OpType::kUpsert && absl::IsAlreadyExists(result.status);
    ++(conflict ? stats_.ops_conflicting : stats_.ops_failed);
    Retry& r = retry_[op.dst];
    if (conflict && !r.conflict) new_conflicts_.push_back(op.dst);
    conflicting_count_ += conflict;
    conflicting_count_ -= r.conflict;
    r.conflict = conflict;
    r.delay = r.delay == Duration::zero() ? retry_policy_.initial
                                          : std::min(r.delay * 2, retry_policy_.max);
    r.due = now + r.delay;
    r.last_error = std::string(result.status.message());
    dirty_.insert(op.dst);
  }
  return lost;
}

std::optional<TimePoint> RouteReconciler::NextRetryTime() const {
  std::optional<TimePoint> earliest;
  for (const auto& [dst, r] : retry_) {
    if (!dirty_.contains(dst) || outstanding_by_prefix_.contains(dst)) continue;
    if (!earliest || r.due < *earliest) earliest = r.due;
  }
  return earliest;
}

SyncState RouteReconciler::state() const {
  if (!datastore_synced_) return SyncState::kAwaitingDatastore;
  if (!dataplane_known_) return SyncState::kAwaitingDataplane;
  if (!dirty_.empty() || !outstanding_.empty()) return SyncState::kSyncing;
  return SyncState::kInSync;
}

std::map<net::IpPrefix, std::string> RouteReconciler::Failures() const {
  std::map<net::IpPrefix, std::string> out;
  for (const auto& [dst, r] : retry_) {
    if (!r.conflict) out[dst] = r.last_error;
  }
  return out;
}

std::map<net::IpPrefix, std::string> RouteReconciler::Conflicts() const {
  std::map<net::IpPrefix, std::string> out;
  for (const auto& [dst, r] : retry_) {
    if (r.conflict) out[dst] = r.last_error;
  }
  return out;
}

std::vector<net::IpPrefix> RouteReconciler::TakeNewConflicts() {
  return std::exchange(new_conflicts_, {});
}

}  // namespace vcra::routing
