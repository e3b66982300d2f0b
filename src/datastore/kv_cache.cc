#include "datastore/kv_cache.h"

#include <algorithm>
#include <utility>

namespace vcra::datastore {
namespace {

// Directory ids are two bytes; id 0 means "the whole key follows", for keys without a '/' and
// for directories beyond this bound (a hostile or odd datastore cannot grow the table forever).
constexpr size_t kMaxDirectories = 0xffff;

}  // namespace

std::string KvCache::Compact(std::string_view key, bool intern) const {
  size_t slash = key.rfind('/');
  uint16_t id = 0;
  if (slash != std::string_view::npos) {
    std::string_view dir = key.substr(0, slash + 1);
    if (auto it = directory_ids_.find(absl::string_view(dir.data(), dir.size()));
        it != directory_ids_.end()) {
      id = it->second;
    } else if (directories_.size() < kMaxDirectories) {
      if (!intern) return {};  // unknown directory: the key cannot be in the cache
      directories_.emplace_back(dir);
      id = static_cast<uint16_t>(directories_.size());
      directory_ids_.emplace(std::string(dir), id);
    }
  }
  std::string out;
  out.push_back(static_cast<char>(id >> 8));
  out.push_back(static_cast<char>(id & 0xff));
  out.append(id == 0 ? key : key.substr(slash + 1));
  return out;
}

std::string KvCache::Expand(const std::string& compact) const {
  uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(compact[0]) << 8) |
                                      static_cast<uint8_t>(compact[1]));
  std::string_view rest = std::string_view(compact).substr(2);
  if (id == 0) return std::string(rest);
  return directories_[id - 1] + std::string(rest);
}

void KvCache::BeginListing(int64_t revision) {
  // A new number: marks of an abandoned listing no longer count as "seen".
  ++listing_;
  listing_open_ = true;
  listing_revision_ = revision;
  revision_ = std::max(revision_, revision);
}

bool KvCache::ListedKey(std::string_view key, int64_t mod_revision) {
  std::string compact = Compact(key, /*intern=*/true);
  auto [it, inserted] = entries_.try_emplace(std::move(compact), Entry{mod_revision, listing_});
  revision_ = std::max(revision_, mod_revision);
  if (inserted) return true;
  Entry& entry = it->second;
  if (entry.listing == listing_) {
    // Listed twice in one listing (should not happen): keep the newest version.
    if (mod_revision <= entry.mod_revision) return false;
    entry.mod_revision = mod_revision;
    return true;
  }
  entry.listing = listing_;
  if (entry.mod_revision == mod_revision) return false;  // same revision, same value
  entry.mod_revision = mod_revision;
  return true;
}

std::vector<Change> KvCache::EndListing() {
  std::vector<Change> deletes;
  if (!listing_open_) return deletes;
  listing_open_ = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.listing != listing_) {
      deletes.push_back(Change{Change::Type::kDelete, Expand(it->first), "", listing_revision_});
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  std::sort(deletes.begin(), deletes.end(),
            [](const Change& a, const Change& b) { return a.key < b.key; });
  tombstones_.clear();
  snapshot_revision_ = listing_revision_;
  return deletes;
}

std::vector<Change> KvCache::ApplySnapshot(const Snapshot& snapshot) {
  BeginListing(snapshot.revision);
  // Newest version of each key first, so that a key listed twice yields one put.
  std::vector<const KeyValue*> order;
  order.reserve(snapshot.kvs.size());
  for (const KeyValue& kv : snapshot.kvs) order.push_back(&kv);
  std::stable_sort(order.begin(), order.end(), [](const KeyValue* a, const KeyValue* b) {
    return a->key != b->key ? a->key < b->key : a->mod_revision > b->mod_revision;
  });
  std::vector<Change> diff;
  for (const KeyValue* kv : order) {
    if (ListedKey(kv->key, kv->mod_revision)) {
      diff.push_back(Change{Change::Type::kPut, kv->key, kv->value, kv->mod_revision});
    }
  }
  auto deletes = EndListing();
  std::vector<Change> merged;
  merged.reserve(diff.size() + deletes.size());
  std::merge(std::make_move_iterator(diff.begin()), std::make_move_iterator(diff.end()),
             std::make_move_iterator(deletes.begin()), std::make_move_iterator(deletes.end()),
             std::back_inserter(merged),
             [](const Change& a, const Change& b) { return a.key < b.key; });
  return merged;
}

bool KvCache::Apply(const Change& change) {
  // The last listing already reflects everything up to its revision.
  if (change.revision <= snapshot_revision_) return false;
  std::string compact = Compact(change.key, /*intern=*/true);
  auto it = entries_.find(compact);
  if (it != entries_.end()) {
    if (change.revision <= it->second.mod_revision) return false;
  } else if (auto tomb = tombstones_.find(compact);
             tomb != tombstones_.end() && change.revision <= tomb->second) {
    return false;
  }

  if (change.type == Change::Type::kPut) {
    tombstones_.erase(compact);
    if (it != entries_.end()) {
      it->second.mod_revision = change.revision;
    } else {
      entries_.emplace(std::move(compact), Entry{change.revision, listing_});
    }
  } else {
    if (it != entries_.end()) entries_.erase(it);
    tombstones_[std::move(compact)] = change.revision;
  }
  revision_ = std::max(revision_, change.revision);
  return true;
}

std::optional<int64_t> KvCache::ModRevision(std::string_view key) const {
  std::string compact = Compact(key, /*intern=*/false);
  if (compact.empty()) return std::nullopt;
  auto it = entries_.find(compact);
  if (it == entries_.end()) return std::nullopt;
  return it->second.mod_revision;
}

}  // namespace vcra::datastore
