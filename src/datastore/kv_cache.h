// KvCache: the watched keys as last seen, kept consistent across snapshots and change streams.
//
// Pure (no I/O, no threads). It turns the watcher's output into exact differences:
//   * ApplySnapshot() returns only what a snapshot changes against the cache (puts for new keys
//     and keys whose mod_revision moved, deletes for keys gone), so a re-list after compaction
//     reaches consumers as a difference, never as "forget everything, add everything".
//   * Only each key's mod_revision is kept, never its value: in etcd the same key at the same
//     mod_revision is the same value, so revisions alone make the diff exact, and the cache costs
//     a key and an integer per entry instead of a copy of every block's JSON.
//   * Apply() ignores a change that is not newer than what the cache knows for that key, so a
//     change delivered twice around a reconnect is applied once.
//
// NOTE: a key deleted since the last snapshot keeps a tombstone (its deletion revision) so that
// a stale put redelivered after the delete cannot resurrect it; the next snapshot clears them,
// which bounds their number by the keys deleted between two snapshots. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "datastore/etcd_client.h"

namespace vcra::datastore {

class KvCache {
 public:
  // Replaces the contents with `snapshot`; returns the differences, sorted by key. Puts carry
  // the key's mod_revision, deletes the snapshot revision.
  std::vector<Change> ApplySnapshot(const Snapshot& snapshot);

  // Applies one change; false (and nothing changes) when it is not newer than what the cache
  // has for the key, or not newer than the last snapshot.
  bool Apply(const Change& change);

  // The key's mod_revision, or nullopt when absent.
  std::optional<int64_t> ModRevision(const std::string& key) const;
  size_t size() const { return entries_.size(); }
  // The highest revision seen: the last snapshot's or a later change's.
  int64_t revision() const { return revision_; }

 private:
  std::map<std::string, int64_t> entries_;     // key -> mod_revision
  std::map<std::string, int64_t> tombstones_;  // key -> deletion revision, since last snapshot
  int64_t snapshot_revision_ = 0;
  int64_t revision_ = 0;
};

}  // namespace vcra::datastore
