#include "routing/route_reconciler.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vcra::routing
