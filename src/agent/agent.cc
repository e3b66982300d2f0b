#include "agent/agent.h"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <future>
#include <limits>
#include <random>

#include "calico/model.h"
#include "common/log.h"

namespace vcra::agent {
namespace {

std::string_view OpTypeName(dataplane::OpType t) {
  return t == dataplane::OpType::kUpsert ? "upsert" : "delete";
}

enum class OpResultKind : uint8_t { kOk, kUnavailable, kError, kConflict };
constexpr std::array kOpResultKinds = {OpResultKind::kOk, OpResultKind::kUnavailable,
                                       OpResultKind::kError, OpResultKind::kConflict};

OpResultKind KindOf(const net::RouteOp& op, const Status& status) {
  if (status.ok()) return OpResultKind::kOk;
  if (absl::IsUnavailable(status)) return OpResultKind::kUnavailable;
  if (op.type == net::OpType::kUpsert && absl::IsAlreadyExists(status)) {
    return OpResultKind::kConflict;
  }
  return OpResultKind::kError;
}

std::string_view OpResultName(OpResultKind kind) {
  switch (kind) {
    case OpResultKind::kOk:
      return "ok";
    case OpResultKind::kUnavailable:
      return "unavailable";
    case OpResultKind::kError:
      return "error";
    case OpResultKind::kConflict:
      return "conflict";
  }
  return "unknown";
}

std::vector<net::IpAddress> AddressesOf(const dataplane::UplinkConfig& uplink) {
  std::vector<net::IpAddress> out;
  for (const auto& p : uplink.addresses) out.push_back(p.address());
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Agent::Agent(AgentConfig config, std::unique_ptr<dataplane::Dataplane> dataplane, AgentDeps deps)
    : config_(std::move(config)),
      deps_(std::move(deps)),
      dataplane_(std::move(dataplane)),
      clock_(deps_.clock ? *deps_.clock : system_clock_),
      loop_(&clock_),
      calculator_({config_.node_name, AddressesOf(config_.uplink)}),
      reconciler_(routing::RetryPolicy{config_.route_retry_initial, config_.route_retry_max}),
      publish_backoff_(config_.publish_backoff_initial, config_.publish_backoff_max,
                       config_.backoff_jitter) {
  // The reconciler's desired table is the calculator's output (FlushDeltas applies every delta
  // to it): one table of routes, not two.
  calculator_.ShareDesiredTable(reconciler_.desired());
}

Agent::~Agent() { StopThreads(); }

void Agent::StopThreads() {
  if (watcher_) watcher_->Stop();
  if (lifecycle_) lifecycle_->Stop();
  if (dataplane_worker_) dataplane_worker_->Stop();
  if (publisher_) publisher_->Stop();
}

std::unique_ptr<Executor> Agent::MakeExecutor(const std::string& name) {
  if (deps_.executor_factory) return deps_.executor_factory(name);
  return std::make_unique<WorkQueue>(name);
}

DataplaneState Agent::dataplane_state() const {
  return lifecycle_ ? lifecycle_->state() : DataplaneState::kDisconnected;
}

const LifecycleStats* Agent::lifecycle_stats() const {
  return lifecycle_ ? &lifecycle_->stats() : nullptr;
}

Status Agent::Run() {
  // glibc gives each thread that allocates its own arena (gRPC runs several); their free pages
  // stay in the process. Two arenas keep the footprint close to what is in use, and the
  // agent's threads barely contend for malloc.
  mallopt(M_ARENA_MAX, 2);
  RETURN_IF_ERROR(Start());
  running_ = true;
  loop_.Run();
  running_ = false;
  StopThreads();
  if (!fatal_status_.ok()) return fatal_status_;
  LOG_INFO("agent stopped; routes left in place");
  return absl::OkStatus();
}

Status Agent::Start() {
  if (watcher_) return absl::FailedPreconditionError("the agent was started already");
  ASSIGN_OR_RETURN(config_.block_prefix, calico::NormalizeBlockPrefix(config_.block_prefix));
  // Listed in this order: the few keys that every block's routes depend on (peer addresses,
  // pools, datastoreReady) first, so that each page of blocks yields final routes that the
  // dataplane can program while the rest of the listing is still arriving.
  std::vector<std::string> prefixes;
  if (config_.peer_mode != PeerMode::kCalicoNodes) prefixes.emplace_back(calico::kPeerPrefix);
  if (config_.peer_mode != PeerMode::kPeerKeys) prefixes.emplace_back(calico::kNodePrefix);
  if (config_.watch_pools) prefixes.emplace_back(calico::kPoolPrefix);
  if (config_.watch_cluster_information) prefixes.emplace_back(calico::kClusterInformationKey);
  prefixes.push_back(config_.block_prefix);

  if (!config_.dry_run) {
    if (!dataplane_) return absl::InvalidArgumentError("no dataplane");
    if (config_.publish_peer_address) {
      auto client = datastore::EtcdClient::Create(config_.etcd);
      if (!client.ok()) return client.status();
      publisher_client_ = std::move(*client);
      publisher_ = MakeExecutor("vcra-publish");
    }
    dataplane_worker_ = MakeExecutor("vcra-dataplane");
    LifecycleConfig lc;
    lc.uplink = config_.uplink;
    lc.batch_size = config_.batch_size;
    lc.resync_interval = config_.resync_interval;
    lc.probe_interval = config_.probe_interval;
    lc.call_timeout = config_.dataplane_call_timeout;
    lc.uplink_recheck_interval = config_.uplink_recheck_interval;
    lc.reconnect_initial = config_.reconnect_backoff_initial;
    lc.reconnect_max = config_.reconnect_backoff_max;
    lc.reconnect_jitter = config_.backoff_jitter;
    DataplaneLifecycle::Hooks hooks;
    hooks.on_connected = [this](std::vector<net::IpPrefix> addresses) {
      OnDataplaneConnected(std::move(addresses));
    };
    hooks.on_results = [this](const auto& ops, const auto& results) {
      OnBatchResults(ops, results);
    };
    hooks.on_idle = [this] { OnDataplaneIdle(); };
    hooks.on_error = [this](const std::string& error) { RecordError(error); };
    hooks.on_resync = [this] { ++metrics_.resyncs; };
    hooks.on_fatal = [this](const Status& status) { OnFatal(status); };
    hooks.on_state_change = [this](DataplaneState) { UpdateReady(); };
    lifecycle_ = std::make_unique<DataplaneLifecycle>(
        std::move(lc), *dataplane_, *dataplane_worker_, loop_, reconciler_, std::move(hooks));
    loop_.Post([this] { lifecycle_->Start(); });
  }
  LOG_INFO("agent for node {} starting: dataplane {}, etcd {}, watching {}", config_.node_name,
           config_.dry_run ? "none (dry run)" : dataplane_->Name(),
           fmt::join(config_.etcd.endpoints, ","), fmt::join(prefixes, " "));

  datastore::WatchSink sink;
  sink.on_listing_page = [this](datastore::ListingPage&& page) {
    // Blocks are decoded here, on the watcher's thread, while the loop applies the previous
    // page: the two cores share the work, and a queued page holds decoded blocks (a few hundred
    // bytes each) instead of their JSON. DecodeBlock is pure; block_prefix is fixed by now.
    DecodedPage decoded = DecodePage(std::move(page));
    // Hold the watcher back while the loop has a page still to apply: a listing is then in
    // memory a page or two at a time, however fast etcd sends it. Only while the loop runs
    // (a test driving the loop itself runs it after the page is posted), and bounded.
    {
      std::unique_lock lock(listing_mu_);
      for (int i = 0;
           i < kListingWaitRounds && running_ && listing_pages_queued_ >= kMaxListingPagesQueued;
           ++i) {
        listing_cv_.wait_for(lock, std::chrono::milliseconds(50));
      }
      ++listing_pages_queued_;
    }
    loop_.Post([this, decoded = std::move(decoded)]() mutable {
      OnListingPage(std::move(decoded));
      std::lock_guard lock(listing_mu_);
      --listing_pages_queued_;
      listing_cv_.notify_all();
    });
  };
  sink.on_changes = [this](std::vector<datastore::Change>&& c) {
    loop_.Post([this, c = std::move(c)]() mutable { OnChanges(std::move(c)); });
  };
  sink.on_connection = [this](bool connected, const std::string& reason) {
    loop_.Post([this, connected, reason] { OnEtcdConnection(connected, reason); });
  };
  if (deps_.watcher_factory) {
    watcher_ = deps_.watcher_factory(prefixes, std::move(sink));
  } else {
    watcher_ = std::make_unique<datastore::EtcdWatcher>(config_.etcd, prefixes, std::move(sink));
  }
  if (config_.start_jitter.count() > 0) {
    Duration wait = StartDelay();
    LOG_INFO("listing etcd in {} ms (--etcd-start-jitter-ms {})",
             std::chrono::duration_cast<std::chrono::milliseconds>(wait).count(),
             config_.start_jitter.count());
    loop_.RunAfter(wait, [this] { watcher_->Start(); });
  } else {
    watcher_->Start();
  }
  started_at_ = clock_.Now();
  if (!config_.dry_run && config_.progress_log_interval.count() > 0)
    loop_.RunAfter(config_.progress_log_interval, [this] { LogStartProgress(); });
  if (!config_.dry_run && config_.memory_trim_interval.count() > 0)
    loop_.RunAfter(config_.memory_trim_interval, [this] { TrimMemory(); });
  return absl::OkStatus();
}

void Agent::Stop() { loop_.Stop(); }

Duration Agent::StartDelay() const {
  Duration jitter = config_.start_jitter;
  if (deps_.start_delay) return std::clamp(deps_.start_delay(jitter), Duration::zero(), jitter);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<Duration::rep> pick(0, jitter.count());
  return Duration(pick(rng));
}

void Agent::TrimMemory() {
  // An idle agent frees nothing, so it is left alone; a trim walks the arenas' free lists.
  if (metrics_.etcd_events != etcd_events_at_last_trim_) {
    etcd_events_at_last_trim_ = metrics_.etcd_events;
    ReleaseFreeMemory();
  }
  loop_.RunAfter(config_.memory_trim_interval, [this] { TrimMemory(); });
}

void Agent::ReleaseFreeMemory() {
  if (deps_.release_free_memory) {
    deps_.release_free_memory();
  } else {
    malloc_trim(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Datastore side

void Agent::OnEtcdConnection(bool connected, const std::string& reason) {
  if (!connected) {
    if (etcd_connected_) {
      ++metrics_.etcd_reconnects;
      LOG_WARN("etcd watch lost: {}; routes stay, resuming when etcd is back", reason);
    } else {
      LOG_WARN_ONCE_PER_KEY("etcd-unreachable", "etcd not reachable yet: {}", reason);
    }
    RecordError("etcd: " + reason);
  } else if (!etcd_connected_) {
    LOG_INFO("etcd watch connected");
  }
  etcd_connected_ = connected;
  UpdateReady();
}

Agent::DecodedPage Agent::DecodePage(datastore::ListingPage&& page) const {
  DecodedPage out;
  out.revision = page.revision;
  out.first = page.first;
  out.last = page.last;
  out.prefix_keys = page.prefix_keys;
  out.entries.reserve(page.kvs.size());
  for (auto& kv : page.kvs) {
    DecodedEntry entry;
    entry.mod_revision = kv.mod_revision;
    if (StartsWith(kv.key, config_.block_prefix)) {
      entry.block = calico::DecodeBlock(kv.key, kv.value);
    } else {
      entry.value = std::move(kv.value);  // peers, nodes, pools: few, decoded on the loop
    }
    entry.key = std::move(kv.key);
    std::string().swap(kv.value);  // the JSON is not needed any more
    out.entries.push_back(std::move(entry));
  }
  return out;
}

// The first page of a prefix says how many keys the prefix holds: the tables grow to their size
// once, instead of doubling (and holding both copies) while the listing arrives. etcd's count is
// input like any other: bounded here, and a table still grows past it if the count was low.
void Agent::ReserveForListing(const DecodedPage& page) {
  constexpr int64_t kMostKeysReserved = 1'000'000;  // ten times the 100k blocks we measure
  size_t keys = static_cast<size_t>(std::min(page.prefix_keys, kMostKeysReserved));
  listing_reserved_keys_ = std::min<size_t>(listing_reserved_keys_ + keys, kMostKeysReserved);
  kv_cache_.Reserve(listing_reserved_keys_);
  if (!page.entries.empty() && page.entries.front().block) {
    calculator_.ReserveBlocks(keys);
    reconciler_.ReserveDesired(keys);
  }
}

void Agent::OnListingPage(DecodedPage&& page) {
  if (page.first) {
    // A listing that broke midway is abandoned here: the cache deletes nothing for it.
    listing_started_ = clock_.Now();
    listing_keys_ = 0;
    listing_applied_ = 0;
    listing_reserved_keys_ = 0;
    kv_cache_.BeginListing(page.revision);
    etcd_connected_ = true;
  }
  if (!kv_cache_.listing_open()) return;  // a page without its first one: nothing to diff it to
  if (page.prefix_keys > 0) ReserveForListing(page);
  listing_keys_ += page.entries.size();
  for (auto& entry : page.entries) {
    if (!kv_cache_.ListedKey(entry.key, entry.mod_revision)) continue;
    ++listing_applied_;
    if (entry.block) {
      if (!entry.block->ok()) {
        RejectInput(entry.key, entry.block->status());
      } else {
        calculator_.OnBlockUpdate(**entry.block);
      }
      continue;
    }
    // The page is ours: its key and value move into the change and are dropped after it.
    datastore::Change change{datastore::Change::Type::kPut, std::move(entry.key),
                             std::move(entry.value), entry.mod_revision};
    HandleChange(change);
  }
  page.entries = {};  // release the page before the routes go out
  FlushDeltas();
  if (!page.last) {
    // The page's JSON and gRPC's buffers for it were freed on the watcher's and gRPC's threads,
    // into their arenas, which keep them: handed back now, before the next page comes, a listing
    // costs the process about one page at a time (-6 to -12 MiB at 100k blocks; a trim is a few
    // ms, once a page).
    ReleaseFreeMemory();
    // Routes known so far may go out while the rest of the listing arrives (the reconciler
    // deletes nothing before the listing is complete).
    Kick();
    return;
  }

  ++metrics_.etcd_snapshots;
  auto deletes = kv_cache_.EndListing();
  for (const auto& change : deletes) HandleChange(change);
  LOG_INFO("etcd listing at revision {}: {} keys, {} differences applied", page.revision,
           listing_keys_, listing_applied_ + deletes.size());
  metrics_.etcd_events += listing_applied_ + deletes.size();
  FlushDeltas();
  if (!reconciler_.datastore_synced()) {
    reconciler_.OnDatastoreSynced();
    listed_at_ = clock_.Now();
    programmed_at_listing_ = reconciler_.programmed_count();
    LOG_INFO("first etcd listing complete in {} ms: {} blocks, {} routes desired, {} pending",
             std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - listing_started_)
                 .count(),
             calculator_.block_count(), calculator_.desired().size(), calculator_.pending_count());
    if (config_.dry_run) {
      PrintDryRunAndStop();
      return;
    }
    // The listing's transient memory (pages, gRPC buffers on other threads' arenas) is free
    // now; hand it back to the system rather than keep it as the process's high-water mark.
    ReleaseFreeMemory();
  }
  Kick();
  UpdateReady();
}

void Agent::OnChanges(std::vector<datastore::Change>&& changes) {
  for (const auto& change : changes) {
    if (!kv_cache_.Apply(change)) continue;  // duplicate delivery after a reconnect
    ++metrics_.etcd_events;
    HandleChange(change);
  }
  FlushDeltas();
  Kick();
}

void Agent::HandleChange(const datastore::Change& change) {
  const std::string& key = change.key;
  if (StartsWith(key, config_.block_prefix)) {
    if (change.type == datastore::Change::Type::kDelete) {
      // A key that names no block can never have been stored (its put was refused).
      if (auto cidr = calico::ParseBlockKey(key); cidr.ok()) calculator_.OnBlockDelete(*cidr);
      return;
    }
    auto block = calico::DecodeBlock(key, change.value);
    if (!block.ok()) return RejectInput(key, block.status());
    calculator_.OnBlockUpdate(*block);
  } else if (StartsWith(key, calico::kPeerPrefix)) {
    HandlePeerKey(change);
  } else if (StartsWith(key, calico::kNodePrefix)) {
    HandleNode(change);
  } else if (StartsWith(key, calico::kPoolPrefix)) {
    HandlePool(change);
  } else if (key == calico::kClusterInformationKey) {
    HandleClusterInformation(change);
  }
}

void Agent::RejectInput(const std::string& key, const Status& why) {
  ++metrics_.parse_errors;
  LOG_WARN_ONCE_PER_KEY(key, "ignoring malformed {}; its last good state is kept: {}", key,
                        why.message());
  RecordError(fmt::format("{}: {}", key, why.message()));
}

void Agent::HandlePeerKey(const datastore::Change& change) {
  auto peer = calico::ParsePeerKey(change.key);
  if (!peer) {
    // Other keys under /vpp-calico/hosts/ are not ours to read, but one that tries to be a peer
    // key and fails is hostile or broken.
    if (change.key.find("/peerip/") != std::string::npos) {
      RejectInput(change.key, absl::InvalidArgumentError("not a peer key"));
    }
    return;
  }
  if (change.type == datastore::Change::Type::kDelete) {
    calculator_.OnPeerDelete(routing::PeerSource::kPeerKey, peer->host, peer->family);
    return;
  }
  auto address = calico::DecodePeerAddress(change.value, peer->family);
  if (!address.ok()) return RejectInput(change.key, address.status());
  calculator_.OnPeerUpdate(routing::PeerSource::kPeerKey, peer->host, peer->family, *address);
}

void Agent::HandleNode(const datastore::Change& change) {
  auto name = calico::ParseNodeKey(change.key);
  if (!name) return;
  if (change.type == datastore::Change::Type::kDelete) {
    calculator_.OnPeerDelete(routing::PeerSource::kCalicoNode, *name, net::Family::kV4);
    calculator_.OnPeerDelete(routing::PeerSource::kCalicoNode, *name, net::Family::kV6);
    return;
  }
  auto node = calico::DecodeNode(change.value);
  if (!node.ok()) return RejectInput(change.key, node.status());
  // Update before withdraw, so that a changed address moves routes without a gap.
  for (auto [family, address] :
       {std::pair{net::Family::kV4, node->v4}, std::pair{net::Family::kV6, node->v6}}) {
    if (address) {
      calculator_.OnPeerUpdate(routing::PeerSource::kCalicoNode, *name, family, *address);
    } else {
      calculator_.OnPeerDelete(routing::PeerSource::kCalicoNode, *name, family);
    }
  }
}

void Agent::HandlePool(const datastore::Change& change) {
  if (change.type == datastore::Change::Type::kDelete) {
    calculator_.OnPoolDelete(change.key);
    PushPoolsToDataplane();
    return;
  }
  auto pool = calico::DecodeIpPool(change.key, change.value);
  if (!pool.ok()) return RejectInput(change.key, pool.status());
  calculator_.OnPoolUpdate(change.key, *pool);
  PushPoolsToDataplane();
}

void Agent::HandleClusterInformation(const datastore::Change& change) {
  bool ready = true;
  if (change.type == datastore::Change::Type::kPut) {
    auto decoded = calico::DecodeDatastoreReady(change.value);
    if (!decoded.ok()) return RejectInput(change.key, decoded.status());
    ready = *decoded;
  }
  if (ready == datastore_ready_) return;
  datastore_ready_ = ready;
  if (lifecycle_) lifecycle_->SetPaused(!ready);
  if (ready) {
    LOG_INFO("Calico datastoreReady is true again: programming resumes");
  } else {
    LOG_WARN("Calico datastoreReady is false: programming paused, nothing is removed");
  }
  UpdateReady();
}

void Agent::FlushDeltas() {
  auto now = clock_.Now();
  for (auto& delta : calculator_.TakeDeltas()) {
    bool programmed = reconciler_.ActualRoute(delta.dst).has_value();
    reconciler_.SetDesired(delta.dst, delta.route);
    // The histogram is about steady state: the initial sync has its own log line and would
    // otherwise dominate it for the agent's whole life.
    if (first_programming_done_ && (delta.route || programmed))
      change_seen_at_.try_emplace(delta.dst, now);
  }
}

// ---------------------------------------------------------------------------------------------
// Dataplane side

void Agent::Kick() {
  if (lifecycle_) lifecycle_->Kick();
}

void Agent::OnDataplaneIdle() {
  if (reconciler_.datastore_synced() && !first_programming_done_) {
    first_programming_done_ = true;
    LOG_INFO(
        "initial programming complete: {} routes programmed, {} pending a peer address, "
        "{} failing, {} held by foreign routes",
        reconciler_.programmed_count(), calculator_.pending_count(), reconciler_.failing_count(),
        reconciler_.conflicting_count());
  }
  UpdateReady();
}

void Agent::OnBatchResults(const std::vector<net::RouteOp>& ops,
                           const std::vector<net::OpResult>& results) {
  auto now = clock_.Now();
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    const auto& op = ops[i];
    const auto& result = results[i];
    OpResultKind kind = KindOf(op, result.status);
    ++op_counts_[static_cast<size_t>(op.type)][static_cast<size_t>(kind)];
    if (kind == OpResultKind::kOk) {
      auto seen = change_seen_at_.find(op.route.dst);
      if (seen != change_seen_at_.end()) {
        metrics_.event_to_route.Observe(std::chrono::duration<double>(now - seen->second).count());
        change_seen_at_.erase(seen);
      }
    } else if (kind == OpResultKind::kError) {
      LOG_WARN_ONCE_PER_KEY("op:" + op.route.dst.ToString(), "{} {} failed (will retry): {}",
                            OpTypeName(op.type), op.route.ToString(), result.status.message());
      RecordError(fmt::format("{} {}: {}", OpTypeName(op.type), op.route.ToString(),
                              result.status.message()));
    }
  }
  // A foreign route holding one of our prefixes: logged once when the conflict starts, not on
  // every retry; /status and vcra_routes_conflicting show it for as long as it lasts.
  if (auto started = reconciler_.TakeNewConflicts(); !started.empty()) {
    auto conflicts = reconciler_.Conflicts();
    for (const auto& dst : started) {
      auto it = conflicts.find(dst);
      std::string why = it != conflicts.end() ? it->second : "held by another route";
      LOG_WARN("{} is held by a route that is not ours; ours goes in when it is removed: {}",
               dst.ToString(), why);
      RecordError(fmt::format("conflict {}: {}", dst.ToString(), why));
    }
  }
}

void Agent::OnDataplaneConnected(std::vector<net::IpPrefix> uplink_addresses) {
  if (lifecycle_->stats().connects > 1) ++metrics_.dataplane_reconnects;  // not the first connect
  LearnUplinkAddresses(std::move(uplink_addresses));
  PublishPeerAddresses();
}

void Agent::OnFatal(const Status& status) {
  fatal_status_ = status;
  loop_.Stop();
}

void Agent::LearnUplinkAddresses(std::vector<net::IpPrefix> addresses) {
  // Link-local addresses are no next hop for another host's routes.
  std::erase_if(addresses, [](const net::IpPrefix& a) { return a.address().IsLinkLocal(); });
  uplink_addresses_ = std::move(addresses);
  std::vector<net::IpAddress> mine = AddressesOf(config_.uplink);
  for (const auto& a : uplink_addresses_) {
    if (std::find(mine.begin(), mine.end(), a.address()) == mine.end()) mine.push_back(a.address());
  }
  calculator_.SetMyAddresses(std::move(mine));
  FlushDeltas();
}

void Agent::PushPoolsToDataplane() {
  if (lifecycle_) lifecycle_->PushPools(calculator_.RoutablePools());
}

void Agent::PublishPeerAddresses() {
  if (!config_.publish_peer_address || peer_published_ || publishing_ || !publisher_) return;
  std::vector<std::pair<std::string, std::string>> kvs;
  bool have_v4 = false, have_v6 = false;
  // The configured addresses; without any, what the uplink already carries.
  const auto& addresses =
      config_.uplink.addresses.empty() ? uplink_addresses_ : config_.uplink.addresses;
  for (const auto& prefix : addresses) {
    bool& have = prefix.address().is_v4() ? have_v4 : have_v6;
    if (have) continue;  // the first address of each family is the next hop peers use
    have = true;
    kvs.emplace_back(calico::PeerKeyFor(config_.node_name, prefix.family()),
                     prefix.address().ToString());
  }
  if (kvs.empty()) return;
  publishing_ = true;
  publisher_->Post([this, kvs = std::move(kvs)] {
    Status status;
    for (const auto& [key, value] : kvs) {
      auto put = publisher_client_->PutIfChanged(key, value);
      if (!put.ok()) status = put.status();
    }
    loop_.Post([this, status, kvs] {
      publishing_ = false;
      if (status.ok()) {
        peer_published_ = true;
        publish_backoff_.Reset();
        for (const auto& [key, value] : kvs) LOG_INFO("published {} = {}", key, value);
        UpdateReady();
        return;
      }
      ++metrics_.peer_publish_errors;
      RecordError(fmt::format("publishing peer address: {}", status.message()));
      loop_.RunAfter(publish_backoff_.Next(), [this] { PublishPeerAddresses(); });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Status

void Agent::RecordError(std::string error) {
  last_errors_.push_back(std::move(error));
  if (last_errors_.size() > config_.max_recent_errors) last_errors_.erase(last_errors_.begin());
}

void Agent::UpdateReady() {
  ready_ = reconciler_.datastore_synced() && etcd_connected_ && lifecycle_ &&
           lifecycle_->connected() && first_programming_done_;
}

void Agent::PrintDryRunAndStop() {
  std::vector<net::Route> routes;
  for (const auto& [dst, route] : calculator_.desired()) routes.push_back(route);
  std::sort(routes.begin(), routes.end(),
            [](const net::Route& a, const net::Route& b) { return a.dst < b.dst; });
  std::string out;
  for (const auto& route : routes) {
    auto intent = calculator_.IntentFor(route.dst);
    out += fmt::format(
        "{} via {}  # {} of {} ({})\n", route.dst.ToString(), route.gateway.ToString(),
        intent && intent->kind == routing::IntentKind::kBorrowedIp ? "borrowed IP" : "block",
        intent ? intent->node : "?", intent ? intent->block_key : "?");
  }
  for (const auto& pending : calculator_.Pending()) {
    out += fmt::format("{} pending  # waiting for the address of {} ({})\n", pending.dst.ToString(),
                       pending.node, pending.block_key);
  }
  out += fmt::format("# {} routes, {} pending\n", routes.size(), calculator_.pending_count());
  if (config_.dry_run_output) {
    config_.dry_run_output(out);
  } else {
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }
  loop_.Stop();
}

AgentStatus::Progress Agent::StartProgress() const {
  AgentStatus::Progress p;
  auto now = clock_.Now();
  p.phase = first_programming_done_ ? "done" : listed_at_ ? "programming" : "listing";
  p.blocks = calculator_.block_count();
  p.routes_desired = reconciler_.desired_count();
  p.routes_calculated = p.routes_desired + calculator_.pending_count();
  p.routes_programmed = reconciler_.programmed_count();
  p.elapsed_seconds = std::chrono::duration<double>(now - started_at_).count();
  if (listed_at_ && !first_programming_done_) {
    double programming = std::chrono::duration<double>(now - *listed_at_).count();
    size_t done = p.routes_programmed - std::min(p.routes_programmed, programmed_at_listing_);
    if (programming > 0 && done > 0) {
      p.rate_per_second = static_cast<double>(done) / programming;
      size_t left = p.routes_desired - std::min(p.routes_desired, p.routes_programmed);
      p.eta_seconds = static_cast<double>(left) / p.rate_per_second;
    }
  }
  return p;
}

void Agent::LogStartProgress() {
  if (first_programming_done_) return;  // the "initial programming complete" line said it all
  auto progress = StartProgress();
  LOG_INFO("{}, dataplane {}", AgentStatus::ProgressLine(progress),
           DataplaneStateName(dataplane_state()));
  loop_.RunAfter(config_.progress_log_interval, [this] { LogStartProgress(); });
}

AgentStatus Agent::BuildStatus(bool details) const {
  if (!details) return BuildSummary();
  // In-process callers (tests, tools) get every route: no page limit.
  StatusQuery everything;
  everything.limit = std::numeric_limits<size_t>::max();
  return BuildStatusFor(everything);
}

AgentStatus Agent::BuildStatusFor(const StatusQuery& query) const {
  AgentStatus s = BuildSummary();
  if (!query.routes) return s;
  SelectRoutes(query, calculator_, reconciler_, s);
  for (const auto& [node, addrs] : calculator_.Peers()) {
    if (!query.node.empty() && node != query.node) continue;
    s.peers[node] = {addrs.first ? addrs.first->ToString() : "",
                     addrs.second ? addrs.second->ToString() : ""};
  }
  return s;
}

AgentStatus Agent::BuildSummary() const {
  AgentStatus s;
  s.ready = ready_.load();
  s.progress = StartProgress();
  s.sync_state = std::string(routing::SyncStateName(reconciler_.state()));
  s.etcd_connected = etcd_connected_;
  s.in_sync = reconciler_.state() == routing::SyncState::kInSync;
  s.dataplane_state = std::string(DataplaneStateName(dataplane_state()));
  s.datastore_synced = reconciler_.datastore_synced();
  s.dataplane_connected = lifecycle_ && lifecycle_->connected();
  s.first_programming_done = first_programming_done_;
  s.datastore_ready = datastore_ready_;
  s.peer_published = peer_published_;
  s.etcd_revision = kv_cache_.revision();
  s.blocks = calculator_.block_count();
  s.routes_desired = reconciler_.desired_count();
  s.routes_programmed = reconciler_.programmed_count();
  s.routes_pending = calculator_.pending_count();
  s.routes_failing = reconciler_.failing_count();
  s.routes_conflicting = reconciler_.conflicting_count();
  s.last_errors = last_errors_;
  s.reconciler = reconciler_.stats();
  for (auto type : {dataplane::OpType::kUpsert, dataplane::OpType::kDelete}) {
    for (auto kind : kOpResultKinds) {
      uint64_t n = op_counts_[static_cast<size_t>(type)][static_cast<size_t>(kind)];
      if (n == 0) continue;
      s.op_counts[fmt::format("op=\"{}\",result=\"{}\"", OpTypeName(type), OpResultName(kind))] = n;
    }
  }
  return s;
}

std::optional<AgentStatus> Agent::GetStatus(std::chrono::milliseconds timeout, bool details) {
  if (!running_) return std::nullopt;
  auto promise = std::make_shared<std::promise<AgentStatus>>();
  auto future = promise->get_future();
  loop_.Post([this, promise, details] { promise->set_value(BuildStatus(details)); });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

std::optional<AgentStatus> Agent::GetStatus(std::chrono::milliseconds timeout,
                                            const StatusQuery& query) {
  if (!running_) return std::nullopt;
  auto promise = std::make_shared<std::promise<AgentStatus>>();
  auto future = promise->get_future();
  loop_.Post([this, promise, query] { promise->set_value(BuildStatusFor(query)); });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

std::string Agent::RenderMetrics() {
  return RenderMetricsFor(GetStatus(config_.status_timeout, /*details=*/false));
}

std::string Agent::RenderMetricsFor(std::optional<AgentStatus> status) const {
  std::map<std::string, double> gauges;
  std::map<std::string, uint64_t> ops;
  // What /readyz answers; known without the loop, so it is there even when the loop is stuck.
  gauges["vcra_ready"] = ready_.load();
  if (status) {
    gauges["vcra_routes_desired"] = static_cast<double>(status->routes_desired);
    gauges["vcra_routes_programmed"] = static_cast<double>(status->routes_programmed);
    gauges["vcra_routes_pending"] = static_cast<double>(status->routes_pending);
    gauges["vcra_routes_failing"] = static_cast<double>(status->routes_failing);
    gauges["vcra_blocks"] = static_cast<double>(status->blocks);
    gauges["vcra_etcd_connected"] = status->etcd_connected;
    gauges["vcra_dataplane_connected"] = status->dataplane_connected;
    gauges["vcra_routes_conflicting"] = static_cast<double>(status->routes_conflicting);
    gauges["vcra_in_sync"] = status->in_sync;
    gauges["vcra_drift_repaired"] = static_cast<double>(status->reconciler.drift_repaired);
    gauges["vcra_etcd_revision"] = static_cast<double>(status->etcd_revision);
    ops = std::move(status->op_counts);
  }
  return metrics_.Render(gauges, ops);
}

}  // namespace vcra::agent
