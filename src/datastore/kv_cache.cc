#include "datastore/kv_cache.h"

#include <algorithm>
#include <utility>

namespace vcra::datastore {

std::vector<Change> KvCache::ApplySnapshot(const Snapshot& snapshot) {
  std::map<std::string, KeyValue> next;
  for (const KeyValue& kv : snapshot.kvs) {
    auto [it, inserted] = next.emplace(kv.key, kv);
    // A key twice in one listing should not happen; keep its newest version.
    if (!inserted && kv.mod_revision > it->second.mod_revision) it->second = kv;
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
      diff.push_back(Change{Change::Type::kPut, new_it->first, new_it->second.value,
                            new_it->second.mod_revision});
      ++new_it;
    } else {
      // Same key: only a different value is a change; a rewrite of the same value is not.
      if (old_it->second.value != new_it->second.value) {
        diff.push_back(Change{Change::Type::kPut, new_it->first, new_it->second.value,
                              new_it->second.mod_revision});
      }
      ++old_it;
      ++new_it;
    }
  }

  entries_ = std::move(next);
  tombstones_.clear();
  snapshot_revision_ = snapshot.revision;
  revision_ = snapshot.revision;
  for (const auto& [key, kv] : entries_) revision_ = std::max(revision_, kv.mod_revision);
  return diff;
}

bool KvCache::Apply(const Change& change) {
  // The last snapshot already reflects everything up to its revision.
  if (change.revision <= snapshot_revision_) return false;
  auto it = entries_.find(change.key);
  if (it != entries_.end()) {
    if (change.revision <= it->second.mod_revision) return false;
  } else if (auto tomb = tombstones_.find(change.key);
             tomb != tombstones_.end() && change.revision <= tomb->second) {
    return false;
  }

  if (change.type == Change::Type::kPut) {
    tombstones_.erase(change.key);
    KeyValue& kv = entries_[change.key];
    kv.key = change.key;
    kv.value = change.value;
    kv.mod_revision = change.revision;
  } else {
    if (it != entries_.end()) entries_.erase(it);
    tombstones_[change.key] = change.revision;
  }
  revision_ = std::max(revision_, change.revision);
  return true;
}

const KeyValue* KvCache::Find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace vcra::datastore
