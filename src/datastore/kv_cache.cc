#include "datastore/kv_cache.h"

#include <algorithm>
#include <utility>

namespace vcra::datastore {

std::vector<Change> KvCache::ApplySnapshot(const Snapshot& snapshot) {
  // key -> the snapshot entry to use (by index, so no value is copied).
  std::map<std::string_view, size_t> next;
  for (size_t i = 0; i < snapshot.kvs.size(); ++i) {
    const KeyValue& kv = snapshot.kvs[i];
    auto [it, inserted] = next.emplace(kv.key, i);
    // A key twice in one listing should not happen; keep its newest version.
    if (!inserted && kv.mod_revision > snapshot.kvs[it->second].mod_revision) it->second = i;
  }

  // Both maps are sorted: one merge pass yields the differences in key order.
  std::vector<Change> diff;
  auto old_it = entries_.begin();
  auto new_it = next.begin();
  while (old_it != entries_.end() || new_it != next.end()) {
    if (new_it == next.end() || (old_it != entries_.end() && old_it->first < new_it->first)) {
      diff.push_back(Change{Change::Type::kDelete, old_it->first, "", snapshot.revision});
      ++old_it;
    } else if (old_it == entries_.end() || new_it->first < old_it->first) {
      const KeyValue& kv = snapshot.kvs[new_it->second];
      diff.push_back(Change{Change::Type::kPut, kv.key, kv.value, kv.mod_revision});
      ++new_it;
    } else {
      // Same key: a different mod_revision is a change (possibly a rewrite of the same value,
      // which consumers apply idempotently); the same mod_revision is the same value.
      const KeyValue& kv = snapshot.kvs[new_it->second];
      if (old_it->second != kv.mod_revision) {
        diff.push_back(Change{Change::Type::kPut, kv.key, kv.value, kv.mod_revision});
      }
      ++old_it;
      ++new_it;
    }
  }

  entries_.clear();
  revision_ = snapshot.revision;
  for (const auto& [key, index] : next) {
    int64_t mod_revision = snapshot.kvs[index].mod_revision;
    entries_.emplace_hint(entries_.end(), std::string(key), mod_revision);
    revision_ = std::max(revision_, mod_revision);
  }
  tombstones_.clear();
  snapshot_revision_ = snapshot.revision;
  return diff;
}

bool KvCache::Apply(const Change& change) {
  // The last snapshot already reflects everything up to its revision.
  if (change.revision <= snapshot_revision_) return false;
  auto it = entries_.find(change.key);
  if (it != entries_.end()) {
    if (change.revision <= it->second) return false;
  } else if (auto tomb = tombstones_.find(change.key);
             tomb != tombstones_.end() && change.revision <= tomb->second) {
    return false;
  }

  if (change.type == Change::Type::kPut) {
    tombstones_.erase(change.key);
    entries_[change.key] = change.revision;
  } else {
    if (it != entries_.end()) entries_.erase(it);
    tombstones_[change.key] = change.revision;
  }
  revision_ = std::max(revision_, change.revision);
  return true;
}

std::optional<int64_t> KvCache::ModRevision(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

}  // namespace vcra::datastore
