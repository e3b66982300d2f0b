#include "routing/route_reconciler.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

namespace vcra::routing {
namespace {

using net::IpAddress;
using net::IpPrefix;
using net::OpResult;
using net::OpType;
using net::Route;
using net::RouteOp;
using std::chrono::seconds;

Route R(const char* dst, const char* gw) { return {*IpPrefix::Parse(dst), *IpAddress::Parse(gw)}; }

std::vector<OpResult> AllOk(const std::vector<RouteOp>& ops) {
  std::vector<OpResult> out;
  for (const auto& op : ops) out.push_back({op.seq, absl::OkStatus()});
  return out;
}

class RouteReconcilerTest : public ::testing::Test {
 protected:
  TimePoint now_{seconds(100)};
  RouteReconciler rec_;
};

TEST_F(RouteReconcilerTest, StatesProgressFromAwaitingToInSync) {
  EXPECT_EQ(rec_.state(), SyncState::kAwaitingDatastore);
  rec_.SetDesired(R("10.244.2.0/26", "10.99.0.2").dst, R("10.244.2.0/26", "10.99.0.2"));
  EXPECT_TRUE(rec_.NextBatch(now_, 100).empty()) << "nothing before the dataplane is known";
  rec_.OnDatastoreSynced();
  EXPECT_EQ(rec_.state(), SyncState::kAwaitingDataplane);
  rec_.OnDataplaneDump({});
  EXPECT_EQ(rec_.state(), SyncState::kSyncing);
  auto ops = rec_.NextBatch(now_, 100);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].type, OpType::kUpsert);
  EXPECT_TRUE(rec_.NextBatch(now_, 100).empty()) << "an outstanding op is not sent twice";
  rec_.OnResults(AllOk(ops), now_);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
  EXPECT_EQ(rec_.programmed_count(), 1u);
}

TEST_F(RouteReconcilerTest, NoDeleteBeforeFirstCompleteList) {
  rec_.OnDataplaneDump({R("10.244.9.0/26", "10.99.0.9"), R("10.244.2.0/26", "10.99.0.2")});
  rec_.SetDesired(*IpPrefix::Parse("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2"));
  EXPECT_TRUE(rec_.NextBatch(now_, 100).empty()) << "stale route kept until the list completes";
  rec_.OnDatastoreSynced();
  auto ops = rec_.NextBatch(now_, 100);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].type, OpType::kDelete);
  EXPECT_EQ(ops[0].route, R("10.244.9.0/26", "10.99.0.9"));
  rec_.OnResults(AllOk(ops), now_);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
}

TEST_F(RouteReconcilerTest, UpsertsBeforeListAreAllowedOnceDataplaneKnown) {
  rec_.OnDataplaneDump({});
  rec_.SetDesired(*IpPrefix::Parse("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2"));
  EXPECT_EQ(rec_.NextBatch(now_, 100).size(), 1u);
}

TEST_F(RouteReconcilerTest, UpsertsComeBeforeDeletesAndBatchIsBounded) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({R("10.244.9.0/26", "10.99.0.9")});
  for (int i = 0; i < 10; ++i) {
    auto r = R(("10.245." + std::to_string(i) + ".0/24").c_str(), "10.99.0.2");
    rec_.SetDesired(r.dst, r);
  }
  auto ops = rec_.NextBatch(now_, 11);
  ASSERT_EQ(ops.size(), 11u);
  EXPECT_EQ(ops[0].type, OpType::kUpsert);
  EXPECT_EQ(ops[10].type, OpType::kDelete);
  rec_.OnDataplaneLost();
  rec_.OnDataplaneDump({R("10.244.9.0/26", "10.99.0.9")});
  ops = rec_.NextBatch(now_, 4);
  ASSERT_EQ(ops.size(), 4u);
  rec_.OnResults(AllOk(ops), now_);
  size_t total = ops.size();
  while (true) {
    ops = rec_.NextBatch(now_, 4);
    if (ops.empty()) break;
    total += ops.size();
    rec_.OnResults(AllOk(ops), now_);
  }
  EXPECT_EQ(total, 11u);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
}

TEST_F(RouteReconcilerTest, AnUpsertSaysWhetherARouteOfOursIsThere) {
  // The kernel backend replaces in place only where we hold a route of ours; everywhere else it
  // creates exclusively, so a foreign route is never taken over.
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({R("10.244.1.0/26", "10.99.0.9")});
  rec_.SetDesired(*IpPrefix::Parse("10.244.1.0/26"), R("10.244.1.0/26", "10.99.0.2"));  // moved
  rec_.SetDesired(*IpPrefix::Parse("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2"));  // new
  auto ops = rec_.NextBatch(now_, 100);
  ASSERT_EQ(ops.size(), 2u);
  std::map<IpPrefix, bool> replaces;
  for (const auto& op : ops) replaces[op.route.dst] = op.replaces_ours;
  EXPECT_TRUE(replaces[*IpPrefix::Parse("10.244.1.0/26")]) << "the dump showed ours there";
  EXPECT_FALSE(replaces[*IpPrefix::Parse("10.244.2.0/26")]) << "nothing of ours there";

  // Acknowledged: both are ours now, so the next move of either is a replace.
  rec_.OnResults(AllOk(ops), now_);
  rec_.SetDesired(*IpPrefix::Parse("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.3"));
  ops = rec_.NextBatch(now_, 100);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_TRUE(ops[0].replaces_ours);

  // A foreign route took the key over (invisible to the dump): from the next dump on, an upsert
  // of that prefix creates exclusively again.
  rec_.OnDataplaneLost();
  rec_.OnDataplaneDump({R("10.244.1.0/26", "10.99.0.2")});
  ops = rec_.NextBatch(now_, 100);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].route, R("10.244.2.0/26", "10.99.0.3"));
  EXPECT_FALSE(ops[0].replaces_ours);
}

TEST_F(RouteReconcilerTest, FailedOpRetriesWithBackoff) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_FALSE(rec_.OnResults({{ops[0].seq, absl::InternalError("Network is unreachable")}}, now_));
  EXPECT_EQ(rec_.failing_count(), 1u);
  EXPECT_EQ(rec_.Failures().begin()->second, "Network is unreachable");
  EXPECT_TRUE(rec_.NextBatch(now_, 10).empty());
  ASSERT_TRUE(rec_.NextRetryTime());
  EXPECT_EQ(*rec_.NextRetryTime(), now_ + seconds(1));
  now_ += seconds(1);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  rec_.OnResults({{ops[0].seq, absl::InternalError("again")}}, now_);
  EXPECT_EQ(*rec_.NextRetryTime(), now_ + seconds(2)) << "backoff doubles";
  now_ += seconds(2);
  ops = rec_.NextBatch(now_, 10);
  rec_.OnResults(AllOk(ops), now_);
  EXPECT_EQ(rec_.failing_count(), 0u);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
  EXPECT_EQ(rec_.stats().ops_failed, 2u);
}

TEST_F(RouteReconcilerTest, ForeignRouteIsAConflictRetriedWithBackoffNotAFailure) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_FALSE(rec_.OnResults({{ops[0].seq, absl::AlreadyExistsError("proto static")}}, now_))
      << "a conflict is not a lost connection";
  EXPECT_EQ(rec_.conflicting_count(), 1u);
  EXPECT_EQ(rec_.failing_count(), 0u) << "a conflict is not a plain failure";
  EXPECT_TRUE(rec_.Failures().empty());
  EXPECT_EQ(rec_.Conflicts().at(r.dst), "proto static");
  EXPECT_EQ(rec_.stats().ops_failed, 0u);
  EXPECT_EQ(rec_.stats().ops_conflicting, 1u);
  EXPECT_EQ(rec_.TakeNewConflicts(), std::vector<IpPrefix>{r.dst});
  EXPECT_EQ(rec_.state(), SyncState::kSyncing);

  // Retried with the normal per-prefix backoff; a refusal again is the same episode.
  EXPECT_TRUE(rec_.NextBatch(now_, 10).empty());
  EXPECT_EQ(*rec_.NextRetryTime(), now_ + seconds(1));
  now_ += seconds(1);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  rec_.OnResults({{ops[0].seq, absl::AlreadyExistsError("proto static")}}, now_);
  EXPECT_EQ(*rec_.NextRetryTime(), now_ + seconds(2)) << "backoff doubles";
  EXPECT_TRUE(rec_.TakeNewConflicts().empty()) << "reported once per episode";
  EXPECT_EQ(rec_.conflicting_count(), 1u);

  // The foreign route went away: our upsert succeeds and the conflict is over.
  now_ += seconds(2);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  rec_.OnResults(AllOk(ops), now_);
  EXPECT_EQ(rec_.conflicting_count(), 0u);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
  EXPECT_EQ(rec_.programmed_count(), 1u);
}

TEST_F(RouteReconcilerTest, ConflictTurningIntoAFailureIsCountedOnce) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  rec_.OnResults({{ops[0].seq, absl::AlreadyExistsError("foreign")}}, now_);
  now_ += seconds(1);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  rec_.OnResults({{ops[0].seq, absl::InternalError("Network is unreachable")}}, now_);
  EXPECT_EQ(rec_.conflicting_count(), 0u);
  EXPECT_EQ(rec_.failing_count(), 1u);
  // A new desire ends the episode; a later refusal is a new one, reported again.
  (void)rec_.TakeNewConflicts();
  auto r2 = R("10.244.2.0/26", "10.99.0.3");
  rec_.SetDesired(r2.dst, r2);
  EXPECT_EQ(rec_.failing_count(), 0u);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  rec_.OnResults({{ops[0].seq, absl::AlreadyExistsError("foreign")}}, now_);
  EXPECT_EQ(rec_.TakeNewConflicts(), std::vector<IpPrefix>{r.dst});
  rec_.SetDesired(r.dst, std::nullopt);
  EXPECT_EQ(rec_.conflicting_count(), 0u) << "no longer wanted, so no longer in conflict";
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
}

TEST_F(RouteReconcilerTest, NewDesireCancelsBackoff) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  rec_.OnResults({{ops[0].seq, absl::InternalError("boom")}}, now_);
  auto r2 = R("10.244.2.0/26", "10.99.0.3");
  rec_.SetDesired(r2.dst, r2);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].route, r2);
}

TEST_F(RouteReconcilerTest, UnavailableMeansReconnectAndReplay) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  EXPECT_TRUE(rec_.OnResults({{ops[0].seq, absl::UnavailableError("vpp gone")}}, now_));
  rec_.OnDataplaneLost();
  EXPECT_EQ(rec_.state(), SyncState::kAwaitingDataplane);
  EXPECT_TRUE(rec_.NextBatch(now_, 10).empty());
  rec_.OnDataplaneDump({});  // restarted dataplane: empty
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].route, r);
}

TEST_F(RouteReconcilerTest, StaleResultsAreIgnored) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  rec_.OnDataplaneLost();
  rec_.OnResults(AllOk(ops), now_);
  EXPECT_EQ(rec_.stats().stale_results, 1u);
  EXPECT_EQ(rec_.programmed_count(), 0u);
}

TEST_F(RouteReconcilerTest, ChangeWhileOutstandingIsSentAfterResult) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  auto ops = rec_.NextBatch(now_, 10);
  auto r2 = R("10.244.2.0/26", "10.99.0.3");
  rec_.SetDesired(r2.dst, r2);
  EXPECT_TRUE(rec_.NextBatch(now_, 10).empty());
  rec_.OnResults(AllOk(ops), now_);
  ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].route, r2);
  EXPECT_EQ(ops[0].type, OpType::kUpsert);
}

TEST_F(RouteReconcilerTest, ResyncDumpRepairsDrift) {
  rec_.OnDatastoreSynced();
  rec_.OnDataplaneDump({});
  auto r = R("10.244.2.0/26", "10.99.0.2");
  rec_.SetDesired(r.dst, r);
  rec_.OnResults(AllOk(rec_.NextBatch(now_, 10)), now_);
  EXPECT_EQ(rec_.state(), SyncState::kInSync);
  // Someone deleted our route by hand and added one of "ours" that nobody wants.
  rec_.OnDataplaneDump({R("10.244.7.0/26", "10.99.0.7")});
  EXPECT_EQ(rec_.stats().drift_repaired, 2u);
  auto ops = rec_.NextBatch(now_, 10);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].route, r);
  EXPECT_EQ(ops[1].type, OpType::kDelete);
}

// What the dataplane holds is kept only where it differs from the desired routes; this drives the
// reconciler with a random mix of desired changes, batches (some ops failing), lost connections
// and dumps against a model dataplane, and checks after every step that what the reconciler
// believes the dataplane holds, what it counts as programmed and its dirty state agree with the
// model, and that syncing ends with the dataplane equal to the desired routes.
TEST(RouteReconcilerModel, BeliefMatchesAModelDataplane) {
  RouteReconciler rec(RetryPolicy{seconds(1), seconds(4)});
  TimePoint now{seconds(100)};
  std::map<IpPrefix, Route> desired, dataplane;  // the model
  std::map<IpPrefix, Route> believed;            // acknowledged ops since the last dump
  uint32_t seed = 777;
  auto next = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
  };
  auto prefix = [](uint32_t i) {
    return *IpPrefix::Parse("10.244." + std::to_string(i) + ".0/26");
  };
  auto gateway = [](uint32_t g) { return IpAddress::V4(0x0a630000u + 2 + g); };
  auto check = [&](int step) {
    size_t programmed = 0;
    for (uint32_t i = 0; i < 12; ++i) {
      IpPrefix p = prefix(i);
      auto b = believed.find(p);
      std::optional<Route> want_actual;
      if (b != believed.end()) want_actual = b->second;
      ASSERT_EQ(rec.ActualRoute(p), want_actual) << "step " << step << " " << p.ToString();
      auto d = desired.find(p);
      bool match = d != desired.end() && want_actual == d->second;
      ASSERT_EQ(rec.IsProgrammed(p), match) << "step " << step << " " << p.ToString();
      programmed += match;
    }
    ASSERT_EQ(rec.programmed_count(), programmed) << "step " << step;
    ASSERT_EQ(rec.desired_count(), desired.size()) << "step " << step;
  };
  rec.OnDataplaneDump({});
  bool connected = true;
  for (int step = 0; step < 2000; ++step) {
    uint32_t what = next(20);
    if (what < 8) {
      IpPrefix p = prefix(next(12));
      if (next(4) == 0) {
        desired.erase(p);
        rec.SetDesired(p, std::nullopt);
      } else {
        Route r{p, gateway(next(3))};
        desired[p] = r;
        rec.SetDesired(p, r);
      }
    } else if (what < 16 && connected) {
      auto ops = rec.NextBatch(now, 1 + next(6));
      std::vector<OpResult> results;
      for (const auto& op : ops) {
        bool fails = next(5) == 0;
        if (!fails) {
          if (op.type == OpType::kUpsert) {
            dataplane[op.route.dst] = op.route;
            believed[op.route.dst] = op.route;
          } else {
            dataplane.erase(op.route.dst);
            believed.erase(op.route.dst);
          }
        }
        results.push_back({op.seq, fails ? absl::InternalError("refused") : absl::OkStatus()});
      }
      rec.OnResults(results, now);
    } else if (what < 17) {
      rec.OnDataplaneLost();
      connected = false;
      if (next(2) == 0) {  // the dataplane restarted empty, or drifted
        dataplane.erase(prefix(next(12)));
      }
    } else if (what < 18 || !connected) {
      if (rec.outstanding_count() == 0) {
        std::vector<Route> dump;
        for (const auto& [p, r] : dataplane) dump.push_back(r);
        rec.OnDataplaneDump(dump);
        believed = dataplane;
        connected = true;
      }
    } else {
      now += seconds(1 + next(3));
    }
    if (step == 50) rec.OnDatastoreSynced();
    check(step);
    if (HasFatalFailure()) return;
  }
  // Reconnect, let every retry fall due, and sync: the dataplane must end up exactly desired.
  if (!connected) {
    std::vector<Route> dump;
    for (const auto& [p, r] : dataplane) dump.push_back(r);
    rec.OnDataplaneDump(dump);
    believed = dataplane;
  }
  for (int round = 0; round < 100 && rec.state() != SyncState::kInSync; ++round) {
    now += seconds(5);
    auto ops = rec.NextBatch(now, 100);
    for (const auto& op : ops) {
      if (op.type == OpType::kUpsert) {
        dataplane[op.route.dst] = op.route;
      } else {
        dataplane.erase(op.route.dst);
      }
    }
    rec.OnResults(AllOk(ops), now);
  }
  EXPECT_EQ(rec.state(), SyncState::kInSync);
  EXPECT_EQ(dataplane, desired);
  EXPECT_EQ(rec.programmed_count(), desired.size());
  EXPECT_GT(rec.stats().upserts, 100u) << "the sequence must exercise the reconciler";
  EXPECT_GT(rec.stats().deletes, 10u);
}

}  // namespace
}  // namespace vcra::routing
