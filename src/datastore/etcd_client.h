// etcd v3 over gRPC (Debian's gRPC++ with our own minimal copy of etcd's protos, proto/).
//
// EtcdClient: blocking KV calls (paginated Range, Put, Delete) against one of several endpoints,
// failing over to the next endpoint on UNAVAILABLE. Optional user/password auth (token fetched
// with Auth.Authenticate, refreshed when etcd says it is invalid) and TLS with client
// certificates. Thread-safe.
//
// EtcdWatcher: the list-then-watch loop on its own thread. For a set of key prefixes it lists
// every prefix at one revision R (paginated, never one huge response), hands the listing to the
// sink page by page as it arrives (never holding it whole), then watches all prefixes from R+1 with
// prev_kv. When the watch breaks it reconnects with backoff and resumes from the last seen revision
// + 1; when that revision was compacted it lists again and hands the sink a new listing (the sink
// diffs it, see KvCache).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace vcra::datastore {

struct EtcdConfig {
  // "http://127.0.0.1:2379" or "https://..." or "host:port" (http assumed).
  std::vector<std::string> endpoints;
  std::string username;
  std::string password;
  std::string ca_cert_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds dial_timeout{3000};
  std::chrono::milliseconds request_timeout{10000};
  // Keys per Range page: N² / (2 × listing_walk_budget) for a listing of N keys, from
  // min_page_size up to page_size (etcd_client.cc, NOTE (page size)): 200 keys up to ~20k keys,
  // 2500 from ~70k keys. 2500 realistic ~2 KB blocks are ~5.5 MB: the client accepts replies up
  // to 256 MiB (etcd's own limit is what it sends, 2 GiB by default).
  int64_t page_size = 2500;
  int64_t min_page_size = 200;
  int64_t listing_walk_budget = 1'000'000;
  // A page of fewer bytes than this has page N+1 requested before it is handed over (decoded,
  // queued for the loop); a larger one only after, so that its round trip overlaps the
  // consumer's applying the page but not decoding it, and one page of values is in memory at a
  // time. At 100k realistic blocks (pages of 2500, ~5.5 MB) that is ~62 MiB at the peak instead
  // of ~77, with the per-page trim (docs/performance.md, "Memory, pages and linking"); small
  // pages (200 keys, ~0.4 MB at 10k) cost little to hold one ahead.
  int64_t prefetch_below_bytes = 1 << 20;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

struct Snapshot {
  std::vector<KeyValue> kvs;  // sorted by key, all watched prefixes together
  int64_t revision = 0;
};

// One page of a listing, as it arrives. A listing is every watched prefix at one revision (the
// prefixes in the order the watcher was given them, each in key order), in pages: the first page
// has `first` set (it may hold no keys), the last one `last` (it may hold no keys either: the
// marker that the listing is complete). A listing that breaks midway simply ends without its last
// page; the next listing starts with `first` again.
struct ListingPage {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
  bool first = false;
  bool last = false;
  // On the first page of each prefix: the keys under that prefix at `revision` (etcd's count, so
  // the consumer can size its tables once); 0 on the other pages.
  int64_t prefix_keys = 0;
};

struct Change {
  enum class Type : uint8_t { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  std::string value;  // empty for kDelete
  int64_t revision = 0;
  friend bool operator==(const Change&, const Change&) = default;
};

class EtcdClient {
 public:
  static StatusOr<std::unique_ptr<EtcdClient>> Create(const EtcdConfig& config);
  virtual ~EtcdClient() = default;

  // All keys under `prefix` at `revision`; returns the kvs and the revision read. With 0, the
  // latest revision, learned first with a linearizable read of one key; every page is then a
  // serializable Range pinned at it (see etcd_client.cc, NOTE (listing)).
  virtual StatusOr<Snapshot> RangePrefix(const std::string& prefix, int64_t revision = 0) = 0;
  // The same, page by page: `on_page` gets each page's keys and the listing's revision as they
  // arrive, and on the first page the number of keys in the whole range (etcd's count; 0 on the
  // later pages); an error it returns ends the listing. Returns the revision read. The default
  // implementation hands RangePrefix's result over as one page.
  using PageCallback =
      std::function<Status(std::vector<KeyValue>&& kvs, int64_t revision, int64_t range_keys)>;
  virtual StatusOr<int64_t> RangePrefixPages(const std::string& prefix, int64_t revision,
                                             const PageCallback& on_page);
  virtual StatusOr<int64_t> Put(const std::string& key, const std::string& value) = 0;
  // Puts `value` under `key` unless the key holds it already (a linearizable read first), and
  // returns the revision written or read. A write bumps the store's revision: agents that
  // republish an unchanged peer address at every start would give each other a different
  // listing revision, and a gRPC proxy could then not share one listing's pages among them.
  // The default implementation always puts.
  virtual StatusOr<int64_t> PutIfChanged(const std::string& key, const std::string& value) {
    return Put(key, value);
  }
  virtual StatusOr<int64_t> Delete(const std::string& key) = 0;
  // Deletes every key under prefix (tests and the demo use it).
  virtual StatusOr<int64_t> DeletePrefix(const std::string& prefix) = 0;
  // The endpoint currently in use, for status and logs.
  virtual std::string CurrentEndpoint() const = 0;

  // Compacts the history up to `revision`; tests use it to drive the watcher's re-list path.
  // Not pure so that fakes need not implement it.
  virtual Status Compact(int64_t revision);
  // Range RPCs sent so far (every page counts), so tests can see a listing was paginated.
  virtual int64_t range_rpc_count() const { return 0; }
};

// The range_end that selects every key starting with `prefix`: the prefix with its last byte
// incremented, trailing 0xff bytes dropped first; "\0" (every key >= key) when no such key exists.
std::string PrefixRangeEnd(std::string_view prefix);

// Callbacks run on the watcher's thread; they must be quick (post to the agent's loop).
// on_listing_page may block for a while to hold the watcher back (the agent does, so that at most
// a couple of pages are in memory at once); it must return promptly once the consumer stops.
// Changes come in revision order for each prefix; for different prefixes etcd may interleave
// revisions while a watch catches up after a reconnect, so consumers apply them per key (see
// KvCache). on_connection is called on transitions only, not on every failed retry.
struct WatchSink {
  std::function<void(ListingPage&&)> on_listing_page;
  std::function<void(std::vector<Change>&&)> on_changes;
  // connected=false with a reason whenever the watch is broken, true when it is back.
  std::function<void(bool connected, const std::string& reason)> on_connection;
};

// The datastore as the agent sees it: once started, it feeds a WatchSink (a complete listing,
// then changes, and connection transitions) until stopped. EtcdWatcher is the real one; tests
// drive the agent with a fake that calls the sink directly.
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void Start() = 0;
  // Idempotent; after it returns the sink is not called again.
  virtual void Stop() = 0;
};

// Builds the watcher for a set of key prefixes (the agent decides which).
using WatcherFactory =
    std::function<std::unique_ptr<Watcher>(std::vector<std::string> prefixes, WatchSink sink)>;

class EtcdWatcher final : public Watcher {
 public:
  EtcdWatcher(EtcdConfig config, std::vector<std::string> prefixes, WatchSink sink);
  ~EtcdWatcher() override;  // stops and joins
  void Start() override;
  void Stop() override;

  // Test hook, call before Start(): skip the initial listing and watch from `revision` as if a
  // listing at revision - 1 had been delivered (used to watch from a compacted revision).
  void SetStartRevisionForTest(int64_t revision);

 private:
  void Run();
  EtcdConfig config_;
  std::vector<std::string> prefixes_;
  WatchSink sink_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  struct Impl;
  std::shared_ptr<Impl> impl_;  // holds the live gRPC context so Stop() can cancel it
};

}  // namespace vcra::datastore
