// RouteReconciler: desired routes vs what the dataplane holds, turned into batches of ops.
//
// Sync states (explicit, shown in status and metrics):
//   kAwaitingDatastore  no complete etcd list yet: nothing is deleted; routes already known are
//                       programmed only once the dataplane view is known too
//   kAwaitingDataplane  no dump of the dataplane yet (start, or after the connection was lost)
//   kSyncing            both known, ops outstanding or waiting for retry
//   kInSync             dataplane == desired
// Deletes of routes we own but no longer want happen only after the first complete datastore
// list (OnDatastoreSynced): a restarted agent must not flush the routes that keep traffic
// flowing just because it has not read etcd yet.
//
// The reconciler does no I/O. The agent asks NextBatch() for ops, hands them to the dataplane
// worker, and feeds results back with OnResults(). Each op carries a sequence number; results
// whose number is not outstanding (e.g. from before a dataplane loss) are ignored. A failed op is
// retried with exponential backoff per prefix; UNAVAILABLE is not the op's fault, so it is
// retried after the agent reconnects, without backoff. ALREADY_EXISTS on an upsert means a route
// that is not ours holds the prefix: a **conflict**, not a failure. It is counted apart, retried
// with the same per-prefix backoff (so our route goes in once the foreign one is removed), and
// reported once per episode through TakeNewConflicts().
//
// Not thread-safe: owned by the agent's loop thread.
#pragma once

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "net/ip.h"
#include "net/route_op.h"
#include "routing/route_table.h"

namespace vcra::routing {

enum class SyncState : uint8_t { kAwaitingDatastore, kAwaitingDataplane, kSyncing, kInSync };
std::string_view SyncStateName(SyncState s);

struct ReconcilerStats {
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_conflicting = 0;  // upserts refused because a foreign route holds the prefix
  uint64_t upserts = 0;
  uint64_t deletes = 0;
  uint64_t drift_repaired = 0;  // differences a dump found against what we believed was there
  uint64_t stale_results = 0;
  uint64_t dumps = 0;
};

struct RetryPolicy {
  Duration initial = std::chrono::seconds(1);
  Duration max = std::chrono::seconds(60);
};

class RouteReconciler {
 public:
  explicit RouteReconciler(RetryPolicy retry = {});

  // Desired state from the calculator.
  void SetDesired(const net::IpPrefix& dst, const std::optional<net::Route>& route);
  void OnDatastoreSynced();
  bool datastore_synced() const { return datastore_synced_; }

  // The dataplane's complete set of owned routes (start, reconnect, periodic resync). Anything
  // that differs from our belief counts as drift and is repaired.
  // REQUIRES: no batch outstanding.
  void OnDataplaneDump(const std::vector<net::Route>& owned);
  // The dataplane connection is gone: outstanding ops are forgotten, nothing is sent until the
  // next dump.
  void OnDataplaneLost();

  // Up to max_ops ops that are due at `now`, upserts before deletes. Marks them outstanding.
  std::vector<net::RouteOp> NextBatch(TimePoint now, size_t max_ops);
  // Results of a batch. Returns true if any result said UNAVAILABLE (connection lost).
  bool OnResults(const std::vector<net::OpResult>& results, TimePoint now);

  // When the earliest backed-off retry becomes due, if any op waits for one.
  std::optional<TimePoint> NextRetryTime() const;

  SyncState state() const;
  size_t desired_count() const { return desired_.size(); }
  // Desired routes that the dataplane holds exactly.
  size_t programmed_count() const { return programmed_matching_; }
  size_t outstanding_count() const { return outstanding_.size(); }
  size_t dirty_count() const { return dirty_.size(); }
  // Prefixes waiting for a retry after a plain failure (conflicts not included).
  size_t failing_count() const { return retry_.size() - conflicting_count_; }
  // Prefixes whose upsert a foreign route refused (see ALREADY_EXISTS above).
  size_t conflicting_count() const { return conflicting_count_; }
  const ReconcilerStats& stats() const { return stats_; }
  const RouteTable& desired() const { return desired_; }
  // Room for `routes` desired routes in all (see RouteCalculator::ReserveBlocks).
  void ReserveDesired(size_t routes) { desired_.reserve(routes); }
  // What the dataplane holds for `dst` as far as we know (our last dump and our acknowledged ops).
  std::optional<net::Route> ActualRoute(const net::IpPrefix& dst) const;
  // The dataplane holds exactly the desired route for `dst`.
  bool IsProgrammed(const net::IpPrefix& dst) const { return Matches(dst); }
  // The last error for each failing prefix (conflicts not included).
  std::map<net::IpPrefix, std::string> Failures() const;
  // The last error for each conflicting prefix.
  std::map<net::IpPrefix, std::string> Conflicts() const;
  // Prefixes that entered the conflict state since the last call: each episode is reported
  // once (to be logged once), however often its retry is refused again.
  std::vector<net::IpPrefix> TakeNewConflicts();

 private:
  struct Retry {
    TimePoint due;
    Duration delay{};
    std::string last_error;
    bool conflict = false;
  };
  struct Outstanding {
    net::IpPrefix dst;
    net::OpType type;
    net::Route route;
  };

  void MarkDirty(const net::IpPrefix& dst);
  // Records what the dataplane holds for `dst` (against desired_ as it is now), keeping
  // programmed_matching_ exact.
  void SetActual(const net::IpPrefix& dst, const std::optional<net::Route>& route);
  // Files `dst` in the difference tables for what we want and what the dataplane holds, given
  // where it was (in_other, in_missing): a handful of lookups per route, not a dozen.
  void Place(const net::IpPrefix& dst, const std::optional<net::Route>& want,
             const std::optional<net::Route>& actual, bool in_other, bool in_missing);
  bool Matches(const net::IpPrefix& dst) const;
  // Drops the retry state of `dst`, keeping conflicting_count_ exact.
  void ClearRetry(const net::IpPrefix& dst);

  RetryPolicy retry_policy_;
  bool datastore_synced_ = false;
  bool dataplane_known_ = false;
  uint64_t next_seq_ = 1;
  RouteTable desired_;
  // What the dataplane holds is kept only where it differs from desired_ (once in sync that is
  // almost nowhere, so there is no second table of every route): a desired prefix holds its
  // desired route unless it is in actual_missing_ (holds nothing of ours) or in actual_other_
  // (holds that route instead); a prefix not desired holds actual_other_'s route, if any.
  // Before the first dump every desired prefix is missing.
  RouteTable actual_other_;
  absl::flat_hash_set<net::IpPrefix, std::hash<net::IpPrefix>> actual_missing_;
  size_t programmed_matching_ = 0;  // |{p : desired_[p] is what the dataplane holds}|
  // Ordered, so batches are deterministic; a B-tree, because during the first sync it holds
  // every prefix (100k red-black tree nodes would be ~6 MB, the B-tree about a third of that).
  absl::btree_set<net::IpPrefix> dirty_;
  std::unordered_map<uint64_t, Outstanding> outstanding_;
  std::unordered_map<net::IpPrefix, uint64_t> outstanding_by_prefix_;
  std::unordered_map<net::IpPrefix, Retry> retry_;
  size_t conflicting_count_ = 0;  // |{p in retry_ : conflict}|
  std::vector<net::IpPrefix> new_conflicts_;
  ReconcilerStats stats_;
};

}  // namespace vcra::routing
