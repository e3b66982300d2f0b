#include "agent/agent.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>

#include "calico/model.h"
#include "common/log.h"

namespace vcra::agent {
namespace {

std::string_view OpTypeName(dataplane::OpType t) {
  return t == dataplane::OpType::kUpsert ? "upsert" : "delete";
}

enum class OpResultKind : uint8_t { kOk, kUnavailable, kError };

std::string_view OpResultName(OpResultKind kind) {
  switch (kind) {
    case OpResultKind::kOk:
      return "ok";
    case OpResultKind::kUnavailable:
      return "unavailable";
    case OpResultKind::kError:
      return "error";
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

Agent::Agent(AgentConfig config, std::unique_ptr<dataplane::Dataplane> dataplane)
    : config_(std::move(config)),
      dataplane_(std::move(dataplane)),
      calculator_({config_.node_name, AddressesOf(config_.uplink)}) {}

Agent::~Agent() { StopThreads(); }

void Agent::StopThreads() {
  if (watcher_) watcher_->Stop();
  if (dataplane_worker_) dataplane_worker_->Stop();
  if (publisher_) publisher_->Stop();
}

Status Agent::Run() {
  ASSIGN_OR_RETURN(config_.block_prefix, calico::NormalizeBlockPrefix(config_.block_prefix));
  std::vector<std::string> prefixes = {config_.block_prefix};
  if (config_.peer_mode != PeerMode::kCalicoNodes) prefixes.emplace_back(calico::kPeerPrefix);
  if (config_.peer_mode != PeerMode::kPeerKeys) prefixes.emplace_back(calico::kNodePrefix);
  if (config_.watch_pools) prefixes.emplace_back(calico::kPoolPrefix);
  if (config_.watch_cluster_information) prefixes.emplace_back(calico::kClusterInformationKey);

  if (!config_.dry_run) {
    if (!dataplane_) return absl::InvalidArgumentError("no dataplane");
    if (config_.publish_peer_address) {
      auto client = datastore::EtcdClient::Create(config_.etcd);
      if (!client.ok()) return client.status();
      publisher_client_ = std::move(*client);
      publisher_ = std::make_unique<WorkQueue>("vcra-publish");
    }
    dataplane_worker_ = std::make_unique<WorkQueue>("vcra-dataplane");
    loop_.Post([this] {
      StartConnect();
      ScheduleResync();
    });
  }
  LOG_INFO("agent for node {} starting: dataplane {}, etcd {}, watching {}", config_.node_name,
           config_.dry_run ? "none (dry run)" : dataplane_->Name(),
           fmt::join(config_.etcd.endpoints, ","), fmt::join(prefixes, " "));

  datastore::WatchSink sink;
  sink.on_snapshot = [this](datastore::Snapshot&& s) {
    loop_.Post([this, s = std::move(s)]() mutable { OnSnapshot(std::move(s)); });
  };
  sink.on_changes = [this](std::vector<datastore::Change>&& c) {
    loop_.Post([this, c = std::move(c)]() mutable { OnChanges(std::move(c)); });
  };
  sink.on_connection = [this](bool connected, const std::string& reason) {
    loop_.Post([this, connected, reason] { OnEtcdConnection(connected, reason); });
  };
  watcher_ = std::make_unique<datastore::EtcdWatcher>(config_.etcd, prefixes, std::move(sink));
  watcher_->Start();
  running_ = true;
  loop_.Run();
  running_ = false;
  StopThreads();
  if (!fatal_status_.ok()) return fatal_status_;
  LOG_INFO("agent stopped; routes left in place");
  return absl::OkStatus();
}

void Agent::Stop() { loop_.Stop(); }

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

void Agent::OnSnapshot(datastore::Snapshot&& snapshot) {
  auto started = clock_.Now();
  ++metrics_.etcd_snapshots;
  etcd_connected_ = true;
  auto changes = kv_cache_.ApplySnapshot(snapshot);
  LOG_INFO("etcd listing at revision {}: {} keys, {} differences to apply", snapshot.revision,
           snapshot.kvs.size(), changes.size());
  for (const auto& change : changes) HandleChange(change);
  metrics_.etcd_events += changes.size();
  FlushDeltas();
  if (!datastore_synced_) {
    datastore_synced_ = true;
    reconciler_.OnDatastoreSynced();
    LOG_INFO("first etcd listing complete in {} ms: {} blocks, {} routes desired, {} pending",
             std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - started).count(),
             calculator_.block_count(), calculator_.desired().size(), calculator_.pending_count());
    if (config_.dry_run) {
      PrintDryRunAndStop();
      return;
    }
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
      calculator_.OnBlockDelete(key);
      return;
    }
    auto block = calico::DecodeBlock(key, change.value);
    if (!block.ok()) return RejectInput(key, block.status());
    calculator_.OnBlockUpdate(key, *block);
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
    bool programmed = reconciler_.actual().contains(delta.dst);
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
  if (config_.dry_run || !dataplane_connected_ || batch_in_flight_ || resync_in_flight_) return;
  if (resync_wanted_) {
    StartResync();
    return;
  }
  if (!datastore_ready_) return;
  auto now = clock_.Now();
  auto ops = reconciler_.NextBatch(now, config_.batch_size);
  if (ops.empty()) {
    if (retry_timer_ != 0) loop_.Cancel(retry_timer_);
    retry_timer_ = 0;
    if (auto due = reconciler_.NextRetryTime()) {
      retry_timer_ = loop_.RunAt(*due, [this] {
        retry_timer_ = 0;
        Kick();
      });
    }
    if (datastore_synced_ && !first_programming_done_) {
      first_programming_done_ = true;
      LOG_INFO(
          "initial programming complete: {} routes programmed, {} pending a peer address, "
          "{} failing",
          reconciler_.programmed_count(), calculator_.pending_count(), reconciler_.failing_count());
    }
    UpdateReady();
    return;
  }
  batch_in_flight_ = true;
  dataplane_worker_->Post([this, ops = std::move(ops)] {
    auto results = dataplane_->Apply(ops);
    loop_.Post([this, ops = std::move(ops), results = std::move(results)]() mutable {
      OnBatchDone(std::move(ops), std::move(results));
    });
  });
}

void Agent::OnBatchDone(std::vector<dataplane::RouteOp> ops,
                        std::vector<dataplane::OpResult> results) {
  batch_in_flight_ = false;
  auto now = clock_.Now();
  // An upsert that finds no device (ENODEV) means the uplink was deleted and maybe re-created
  // with a new index: reconnecting re-runs EnsureUplink.
  bool device_gone = false;
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    const auto& op = ops[i];
    const auto& result = results[i];
    OpResultKind kind = result.status.ok()                   ? OpResultKind::kOk
                        : absl::IsUnavailable(result.status) ? OpResultKind::kUnavailable
                                                             : OpResultKind::kError;
    ++op_counts_[static_cast<size_t>(op.type)][static_cast<size_t>(kind)];
    device_gone |= op.type == dataplane::OpType::kUpsert && absl::IsNotFound(result.status);
    if (result.status.ok()) {
      auto seen = change_seen_at_.find(op.route.dst);
      if (seen != change_seen_at_.end()) {
        metrics_.event_to_route.Observe(std::chrono::duration<double>(now - seen->second).count());
        change_seen_at_.erase(seen);
      }
    } else if (!absl::IsUnavailable(result.status)) {
      LOG_WARN_ONCE_PER_KEY("op:" + op.route.dst.ToString(), "{} {} failed (will retry): {}",
                            OpTypeName(op.type), op.route.ToString(), result.status.message());
      RecordError(fmt::format("{} {}: {}", OpTypeName(op.type), op.route.ToString(),
                              result.status.message()));
    }
  }
  bool lost = reconciler_.OnResults(results, now);
  // At most every 30 s, so a route that fails this way for another reason cannot spin the
  // connection.
  if (!lost && device_gone && now - last_uplink_recheck_ > std::chrono::seconds(30)) {
    last_uplink_recheck_ = now;
    lost = true;
  }
  if (!first_programming_done_ && datastore_synced_) {
    if (now - last_progress_log_ > std::chrono::seconds(2)) {
      last_progress_log_ = now;
      LOG_INFO("initial sync: {}/{} routes programmed", reconciler_.programmed_count(),
               reconciler_.desired_count());
    }
  }
  if (lost) {
    OnDataplaneLost(device_gone ? "a route found no uplink device"
                                : "dataplane connection lost during a batch");
    return;
  }
  Kick();
}

void Agent::StartConnect() {
  if (connecting_ || dataplane_connected_) return;
  connecting_ = true;
  dataplane_worker_->Post([this] {
    Status status = dataplane_->Connect();
    if (status.ok()) status = dataplane_->EnsureUplink(config_.uplink);
    StatusOr<std::vector<net::Route>> dump =
        status.ok() ? dataplane_->DumpOwnedRoutes() : StatusOr<std::vector<net::Route>>(status);
    std::vector<net::IpPrefix> addresses;
    if (dump.ok()) addresses = dataplane_->UplinkAddresses();
    loop_.Post([this, dump = std::move(dump), addresses = std::move(addresses)]() mutable {
      OnConnected(std::move(dump), std::move(addresses));
    });
  });
}

void Agent::OnConnected(StatusOr<std::vector<net::Route>> dump,
                        std::vector<net::IpPrefix> uplink_addresses) {
  connecting_ = false;
  if (absl::IsFailedPrecondition(dump.status()) || absl::IsInvalidArgument(dump.status())) {
    // Retrying cannot help (e.g. a VPP whose API lacks messages we need, or a bad uplink
    // address): refuse to run, with the reason.
    LOG_ERROR("dataplane {} refused: {}", dataplane_->Name(), dump.status().message());
    fatal_status_ = dump.status();
    loop_.Stop();
    return;
  }
  if (!dump.ok()) {
    auto delay = connect_backoff_.Next();
    LOG_WARN("dataplane {} not ready (retry in {} ms): {}", dataplane_->Name(),
             std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(),
             dump.status().message());
    RecordError(fmt::format("dataplane: {}", dump.status().message()));
    loop_.RunAfter(delay, [this] { StartConnect(); });
    return;
  }
  if (reconciler_.stats().dumps > 0) ++metrics_.dataplane_reconnects;  // not the first connect
  connect_backoff_.Reset();
  dataplane_connected_ = true;
  LOG_INFO("dataplane {} connected, uplink ready; it holds {} routes of ours", dataplane_->Name(),
           dump->size());
  reconciler_.OnDataplaneDump(*dump);
  LearnUplinkAddresses(std::move(uplink_addresses));
  PublishPeerAddresses();
  ScheduleProbe();
  Kick();
  UpdateReady();
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

void Agent::ScheduleProbe() {
  if (probe_timer_ != 0) loop_.Cancel(probe_timer_);
  probe_timer_ = loop_.RunAfter(config_.probe_interval, [this] {
    probe_timer_ = 0;
    if (!dataplane_connected_) return;  // the reconnect path schedules the next probe
    if (batch_in_flight_ || resync_in_flight_ || probing_) {
      ScheduleProbe();  // the dataplane is busy, so it is being exercised anyway
      return;
    }
    probing_ = true;
    dataplane_worker_->Post([this] {
      Status status = dataplane_->Probe();
      loop_.Post([this, status] {
        probing_ = false;
        if (absl::IsUnavailable(status) && dataplane_connected_) {
          OnDataplaneLost(fmt::format("dataplane probe: {}", status.message()));
          return;
        }
        ScheduleProbe();
      });
    });
  });
}

void Agent::PushPoolsToDataplane() {
  if (!dataplane_worker_) return;
  dataplane_worker_->Post(
      [this, pools = calculator_.RoutablePools()]() mutable { dataplane_->SetPools(pools); });
}

void Agent::OnDataplaneLost(const std::string& why) {
  LOG_WARN("{}; reconnecting and replaying the full state", why);
  RecordError(why);
  dataplane_connected_ = false;
  reconciler_.OnDataplaneLost();
  UpdateReady();
  auto delay = connect_backoff_.Next();
  loop_.RunAfter(delay, [this] { StartConnect(); });
}

void Agent::ScheduleResync() {
  if (resync_timer_ != 0) loop_.Cancel(resync_timer_);
  resync_timer_ = loop_.RunAfter(config_.resync_interval, [this] {
    resync_timer_ = 0;
    StartResync();
  });
}

void Agent::StartResync() {
  if (!dataplane_connected_) {
    ScheduleResync();
    return;
  }
  if (batch_in_flight_ || resync_in_flight_) {
    resync_wanted_ = true;
    return;
  }
  resync_wanted_ = false;
  resync_in_flight_ = true;
  dataplane_worker_->Post([this] {
    auto dump = dataplane_->DumpOwnedRoutes();
    loop_.Post([this, dump = std::move(dump)]() mutable { OnResyncDump(std::move(dump)); });
  });
}

void Agent::OnResyncDump(StatusOr<std::vector<net::Route>> dump) {
  resync_in_flight_ = false;
  ++metrics_.resyncs;
  ScheduleResync();
  if (!dump.ok()) {
    if (absl::IsUnavailable(dump.status())) {
      OnDataplaneLost(fmt::format("resync dump failed: {}", dump.status().message()));
      return;
    }
    RecordError(fmt::format("resync: {}", dump.status().message()));
    Kick();
    return;
  }
  uint64_t before = reconciler_.stats().drift_repaired;
  reconciler_.OnDataplaneDump(*dump);
  uint64_t drift = reconciler_.stats().drift_repaired - before;
  if (drift > 0) LOG_WARN("resync found {} routes changed behind our back; repairing", drift);
  Kick();
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
      auto put = publisher_client_->Put(key, value);
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
  if (last_errors_.size() > 20) last_errors_.erase(last_errors_.begin());
}

void Agent::UpdateReady() {
  ready_ = datastore_synced_ && etcd_connected_ && dataplane_connected_ && first_programming_done_;
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

AgentStatus Agent::BuildStatus(bool details) const {
  AgentStatus s;
  s.sync_state = std::string(routing::SyncStateName(reconciler_.state()));
  s.etcd_connected = etcd_connected_;
  s.datastore_synced = datastore_synced_;
  s.dataplane_connected = dataplane_connected_;
  s.first_programming_done = first_programming_done_;
  s.datastore_ready = datastore_ready_;
  s.peer_published = peer_published_;
  s.etcd_revision = kv_cache_.revision();
  s.blocks = calculator_.block_count();
  s.routes_desired = reconciler_.desired_count();
  s.routes_programmed = reconciler_.programmed_count();
  s.routes_pending = calculator_.pending_count();
  s.routes_failing = reconciler_.failing_count();
  s.last_errors = last_errors_;
  s.reconciler = reconciler_.stats();
  for (auto type : {dataplane::OpType::kUpsert, dataplane::OpType::kDelete}) {
    for (auto kind : {OpResultKind::kOk, OpResultKind::kUnavailable, OpResultKind::kError}) {
      uint64_t n = op_counts_[static_cast<size_t>(type)][static_cast<size_t>(kind)];
      if (n == 0) continue;
      s.op_counts[fmt::format("op=\"{}\",result=\"{}\"", OpTypeName(type), OpResultName(kind))] = n;
    }
  }
  if (!details) return s;
  auto failures = reconciler_.Failures();
  for (const auto& [dst, route] : reconciler_.desired()) {
    AgentStatus::RouteInfo info;
    info.route = route;
    if (auto intent = calculator_.IntentFor(dst)) {
      info.node = intent->node;
      info.block_key = intent->block_key;
      info.kind = intent->kind == routing::IntentKind::kBlock ? "block" : "borrowed-ip";
    }
    auto actual = reconciler_.actual().find(dst);
    info.programmed = actual != reconciler_.actual().end() && actual->second == route;
    if (auto f = failures.find(dst); f != failures.end()) info.error = f->second;
    s.routes.push_back(std::move(info));
  }
  std::sort(s.routes.begin(), s.routes.end(),
            [](const auto& a, const auto& b) { return a.route.dst < b.route.dst; });
  for (const auto& p : calculator_.Pending()) s.pending.push_back({p.dst, p.node, p.block_key});
  for (const auto& [node, addrs] : calculator_.Peers()) {
    s.peers[node] = {addrs.first ? addrs.first->ToString() : "",
                     addrs.second ? addrs.second->ToString() : ""};
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

std::string Agent::RenderMetrics() {
  auto status = GetStatus(std::chrono::seconds(5), /*details=*/false);
  std::map<std::string, double> gauges;
  std::map<std::string, uint64_t> ops;
  if (status) {
    gauges["vcra_routes_desired"] = static_cast<double>(status->routes_desired);
    gauges["vcra_routes_programmed"] = static_cast<double>(status->routes_programmed);
    gauges["vcra_routes_pending"] = static_cast<double>(status->routes_pending);
    gauges["vcra_routes_failing"] = static_cast<double>(status->routes_failing);
    gauges["vcra_blocks"] = static_cast<double>(status->blocks);
    gauges["vcra_etcd_connected"] = status->etcd_connected;
    gauges["vcra_dataplane_connected"] = status->dataplane_connected;
    gauges["vcra_in_sync"] = status->sync_state == "in-sync";
    gauges["vcra_drift_repaired"] = static_cast<double>(status->reconciler.drift_repaired);
    gauges["vcra_etcd_revision"] = static_cast<double>(status->etcd_revision);
    ops = std::move(status->op_counts);
  }
  return metrics_.Render(gauges, ops);
}

}  // namespace vcra::agent
