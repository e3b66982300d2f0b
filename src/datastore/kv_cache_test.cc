#include "datastore/kv_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

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

TEST(KvCacheTest, ListingPageByPageAppliesOnlyNewOrMovedKeysAndDeletesTheUnseenAtTheEnd) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/d/a", "1", 2}, {"/d/b", "2", 3}, {"/e/c", "3", 4}}, 5});
  cache.BeginListing(10);
  EXPECT_TRUE(cache.listing_open());
  EXPECT_FALSE(cache.ListedKey("/d/a", 2)) << "same mod_revision: same value";
  EXPECT_TRUE(cache.ListedKey("/d/b", 8)) << "moved";
  // Page boundary: nothing is deleted before the listing ends.
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.ListedKey("/f/new", 9));
  EXPECT_THAT(cache.EndListing(), ElementsAre(Del("/e/c", 10)));
  EXPECT_FALSE(cache.listing_open());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.ModRevision("/d/b"), 8);
  EXPECT_EQ(cache.ModRevision("/e/c"), std::nullopt);
  EXPECT_EQ(cache.revision(), 10);
  EXPECT_THAT(cache.EndListing(), IsEmpty()) << "no listing open";
}

TEST(KvCacheTest, AListingThatBreaksMidwayDeletesNothingAndTheRestartDiffsCorrectly) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{{"/a", "1", 2}, {"/b", "2", 3}, {"/c", "3", 4}}, 5});
  cache.BeginListing(10);
  EXPECT_TRUE(cache.ListedKey("/a", 7));
  // The listing broke: a new one starts; /b and /c were not seen by the broken one and must
  // not count as gone, /a (already applied at 7) must not be applied again.
  cache.BeginListing(12);
  EXPECT_FALSE(cache.ListedKey("/a", 7));
  EXPECT_FALSE(cache.ListedKey("/b", 3));
  EXPECT_THAT(cache.EndListing(), ElementsAre(Del("/c", 12)));
  EXPECT_FALSE(cache.Apply(Put("/b", "x", 11))) << "older than the listing";
  EXPECT_TRUE(cache.Apply(Put("/b", "x", 13)));
}

TEST(KvCacheTest, KeysInManyDirectoriesAndWithoutSlashRoundTrip) {
  KvCache cache;
  std::vector<KeyValue> kvs;
  for (int i = 0; i < 100; ++i) {
    kvs.push_back({"/hosts/h" + std::to_string(i) + "/peerip/ipv4/1", "x", i + 1});
  }
  kvs.push_back({"noslash", "y", 200});
  kvs.push_back(
      {"/a-key-that-is-much-longer-than-any-small-string-buffer/leaf-also-long-xx", "z", 201});
  cache.ApplySnapshot(Snapshot{kvs, 300});
  EXPECT_EQ(cache.size(), 102u);
  EXPECT_EQ(cache.ModRevision("noslash"), 200);
  EXPECT_EQ(cache.ModRevision("/hosts/h7/peerip/ipv4/1"), 8);
  EXPECT_EQ(cache.ModRevision("/hosts/h7/peerip/ipv4/2"), std::nullopt);
  EXPECT_EQ(cache.ModRevision("/unknown/dir/k"), std::nullopt);
  // Every key comes back whole in the deletes of an empty listing.
  auto diff = cache.ApplySnapshot(Snapshot{{}, 400});
  ASSERT_EQ(diff.size(), 102u);
  std::vector<std::string> keys;
  for (const auto& c : diff) keys.push_back(c.key);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_NE(std::find(keys.begin(), keys.end(), "/hosts/h99/peerip/ipv4/1"), keys.end());
  EXPECT_NE(std::find(keys.begin(), keys.end(), "noslash"), keys.end());
  EXPECT_EQ(keys.front(),
            "/a-key-that-is-much-longer-than-any-small-string-buffer/leaf-also-long-xx");
}

TEST(KvCacheTest, ADeleteOfAKeyNeverSeenStillBlocksAStaleResurrection) {
  KvCache cache;
  cache.ApplySnapshot(Snapshot{{}, 5});
  EXPECT_TRUE(cache.Apply(Del("/new/k", 8)));
  EXPECT_FALSE(cache.Apply(Put("/new/k", "stale", 7)));
  EXPECT_TRUE(cache.Apply(Put("/new/k", "fresh", 9)));
}

}  // namespace
}  // namespace vcra::datastore
