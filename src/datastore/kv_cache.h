// KvCache: the watched keys as last seen, kept consistent across listings and change streams.
//
// Pure (no I/O, no threads). It turns the watcher's output into exact differences:
//   * A listing arrives page by page (BeginListing, ListedKey for each key, EndListing). ListedKey
//     says whether the key is new or its mod_revision moved (the caller then applies the value
//     it holds, and drops it); EndListing returns deletes for the keys the listing did not
//     contain. So a re-list after compaction reaches consumers as a difference, never as
//     "forget everything, add everything", and no listing is ever held in memory whole.
//   * Only each key's mod_revision is kept, never its value: in etcd the same key at the same
//     mod_revision is the same value, so revisions alone make the diff exact, and the cache costs
//     a short key and two integers per entry instead of a copy of every block's JSON.
//   * A listing that breaks midway (BeginListing again before EndListing) deletes nothing: the
//     keys it marked were real keys at its revision, and the restarted listing marks afresh.
//   * Apply() ignores a change that is not newer than what the cache knows for that key, so a
//     change delivered twice around a reconnect is applied once.
//
// Keys are stored compactly: the part up to the last '/' is interned (a 2-byte id), the rest
// kept as is, so a block key ("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26") costs a
// string short enough for the small-string buffer instead of a heap allocation.
//
// NOTE: a key deleted since the last listing keeps a tombstone (its deletion revision) so that
// a stale put redelivered after the delete cannot resurrect it; the next listing clears them,
// which bounds their number by the keys deleted between two listings. Not thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datastore/etcd_client.h"

namespace vcra::datastore {

class KvCache {
 public:
  // A listing at `revision` starts; a listing still open (it broke) is abandoned, deleting
  // nothing.
  void BeginListing(int64_t revision);
  // One key of the open listing: true when the consumer must apply its value (a new key, or a
  // different mod_revision; possibly a rewrite of the same value, which consumers apply
  // idempotently). A key listed twice counts once, with its newest mod_revision.
  bool ListedKey(std::string_view key, int64_t mod_revision);
  // Ends the open listing: the keys it did not contain are deleted, returned sorted by key with
  // the listing's revision. Without an open listing: nothing.
  std::vector<Change> EndListing();
  bool listing_open() const { return listing_open_; }

  // A whole listing at once (tests, small callers): the differences sorted by key. Puts carry
  // the key's mod_revision and value, deletes the snapshot revision.
  std::vector<Change> ApplySnapshot(const Snapshot& snapshot);

  // Applies one change; false (and nothing changes) when it is not newer than what the cache
  // has for the key, or not newer than the last listing.
  bool Apply(const Change& change);

  // The key's mod_revision, or nullopt when absent.
  std::optional<int64_t> ModRevision(std::string_view key) const;
  size_t size() const { return entries_.size(); }
  // Room for `keys` keys in all, so a listing of known size grows the table once.
  void Reserve(size_t keys) { entries_.reserve(keys); }
  // The highest revision seen: the last listing's or a later change's.
  int64_t revision() const { return revision_; }

 private:
  struct Entry {
    int64_t mod_revision = 0;
    uint32_t listing = 0;  // the last listing that contained the key
  };
  // The compact form of `key`; interns its directory when `intern` (else "" if unknown).
  std::string Compact(std::string_view key, bool intern) const;
  std::string Expand(const std::string& compact) const;

  // id -> "/.../" (ids are 1-based, 2 bytes). Mutable: interning is not a visible change.
  mutable std::vector<std::string> directories_;
  mutable absl::flat_hash_map<std::string, uint16_t> directory_ids_;
  absl::flat_hash_map<std::string, Entry> entries_;       // compact key -> entry
  absl::flat_hash_map<std::string, int64_t> tombstones_;  // compact key -> deletion revision
  uint32_t listing_ = 0;                                  // the current (or last) listing's number
  bool listing_open_ = false;
  int64_t listing_revision_ = 0;
  int64_t snapshot_revision_ = 0;  // the last complete listing's
  int64_t revision_ = 0;
};

}  // namespace vcra::datastore
