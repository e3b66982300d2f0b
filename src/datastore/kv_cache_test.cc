#include "datastore/kv_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vcra::datastore {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Change Put(std::string key, std::string value, int64_t rev) {
  return Change{Change::Type::kPut, std::move(key), std::move(value), rev};
}
Change Del(std::string key, int64_t rev) {
  return Change{Change::Type::kDelete, std::move(key), "", rev};
}

TEST(KvCacheTest, FirstSnapshotIsAllPutsInKeyOrder) {
  KvCache cache;
  auto diff = cache.ApplySnapshot(Snapshot{{{"/b", "2", 3}, {"/a", "1", 2}}, 5});
  EXPECT_THAT(diff, ElementsAre(Put("/a", "1", 2), Put("/b", "2", 3)));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.revision(), 5);
}

TEST(KvCacheTest, SecondSnapshotYieldsOnlyDifferences) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/a", "1", 2}, {"/b", "2", 3}, {"/c", "3", 4}}, 5});
  // /a unchanged, /b rewritten (same value, new revision: reported, consumers are idempotent),
  // /c changed, /d new; removals in a second step below.
  auto diff = cache.ApplySnapshot(
      Snapshot{{{"/a", "1", 2}, {"/b", "2", 7}, {"/c", "33", 8}, {"/d", "4", 9}}, 10});
  EXPECT_THAT(diff, ElementsAre(Put("/b", "2", 7), Put("/c", "33", 8), Put("/d", "4", 9)));
  EXPECT_EQ(cache.ModRevision("/b"), 7);
  EXPECT_EQ(cache.ModRevision("/a"), 2);

  diff = cache.ApplySnapshot(Snapshot{{{"/c", "33", 8}}, 12});
  EXPECT_THAT(diff, ElementsAre(Del("/a", 12), Del("/b", 12), Del("/d", 12)));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.revision(), 12);
}

TEST(KvCacheTest, IdenticalSnapshotYieldsNothing) {
  KvCache cache;
  Snapshot s{{{"/a", "1", 2}}, 5};
  cache.ApplySnapshot(s);
  EXPECT_THAT(cache.ApplySnapshot(s), IsEmpty());
}

TEST(KvCacheTest, EmptySnapshotDeletesEverything) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/a", "1", 2}}, 5});
  EXPECT_THAT(cache.ApplySnapshot(Snapshot{{}, 9}), ElementsAre(Del("/a", 9)));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(KvCacheTest, ApplyPutsAndDeletes) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{}, 5});
  EXPECT_TRUE(cache.Apply(Put("/a", "1", 6)));
  EXPECT_TRUE(cache.Apply(Put("/a", "2", 7)));
  EXPECT_EQ(cache.ModRevision("/a"), 7);
  EXPECT_TRUE(cache.Apply(Del("/a", 8)));
  EXPECT_EQ(cache.ModRevision("/a"), std::nullopt);
  EXPECT_EQ(cache.revision(), 8);
}

TEST(KvCacheTest, StaleOrDuplicateChangesAreIgnored) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/a", "1", 4}}, 5});
  EXPECT_FALSE(cache.Apply(Put("/a", "old", 4)));  // covered by the snapshot
  EXPECT_FALSE(cache.Apply(Put("/x", "old", 5)));  // at the snapshot revision
  EXPECT_TRUE(cache.Apply(Put("/a", "2", 6)));
  EXPECT_FALSE(cache.Apply(Put("/a", "2", 6)));  // delivered twice
  EXPECT_FALSE(cache.Apply(Del("/a", 6)));
  EXPECT_EQ(cache.ModRevision("/a"), 6);
  EXPECT_EQ(cache.revision(), 6);
}

TEST(KvCacheTest, StalePutCannotResurrectDeletedKey) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{}, 5});
  EXPECT_TRUE(cache.Apply(Put("/a", "1", 6)));
  EXPECT_TRUE(cache.Apply(Del("/a", 7)));
  EXPECT_FALSE(cache.Apply(Put("/a", "1", 6)));  // redelivered after a reconnect
  EXPECT_EQ(cache.ModRevision("/a"), std::nullopt);
  EXPECT_TRUE(cache.Apply(Put("/a", "again", 8)));
  EXPECT_EQ(cache.ModRevision("/a"), 8);
}

TEST(KvCacheTest, SnapshotAfterChangesDiffsAgainstChangedState) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/a", "1", 2}}, 5});
  cache.Apply(Put("/b", "2", 6));
  cache.Apply(Del("/a", 7));
  // A re-list (say after compaction) that saw one more change: /b updated at 9.
  auto diff = cache.ApplySnapshot(Snapshot{{{"/b", "22", 9}}, 9});
  EXPECT_THAT(diff, ElementsAre(Put("/b", "22", 9)));
  EXPECT_FALSE(cache.Apply(Put("/b", "2", 6)));
}

TEST(KvCacheTest, DuplicateKeyInSnapshotKeepsNewest) {
  KvCache cache;
  auto diff = cache.ApplySnapshot(Snapshot{{{"/a", "old", 2}, {"/a", "new", 3}}, 5});
  EXPECT_THAT(diff, ElementsAre(Put("/a", "new", 3)));
}

}  // namespace
}  // namespace vcra::datastore
