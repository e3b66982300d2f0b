#include "agent/dataplane_lifecycle.h"

#include <fmt/format.h>

#include "common/log.h"

namespace vcra::agent {
namespace {

int64_t Millis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

std::string_view DataplaneStateName(DataplaneState state) {
  switch (state) {
    case DataplaneState::kDisconnected:
      return "disconnected";
    case DataplaneState::kConnecting:
      return "connecting";
    case DataplaneState::kIdle:
      return "idle";
    case DataplaneState::kApplying:
      return "applying";
    case DataplaneState::kDumping:
      return "dumping";
    case DataplaneState::kProbing:
      return "probing";
    case DataplaneState::kFailed:
      return "failed";
  }
  return "unknown";
}

DataplaneLifecycle::DataplaneLifecycle(LifecycleConfig config, dataplane::Dataplane& dataplane,
                                       Executor& executor, EventLoop& loop,
                                       routing::RouteReconciler& reconciler, Hooks hooks)
    : config_(std::move(config)),
      dataplane_(dataplane),
      executor_(executor),
      loop_(loop),
      reconciler_(reconciler),
      hooks_(std::move(hooks)),
      reconnect_backoff_(config_.reconnect_initial, config_.reconnect_max,
                         config_.reconnect_jitter) {}

DataplaneLifecycle::~DataplaneLifecycle() { Stop(); }

bool DataplaneLifecycle::connected() const {
  switch (state_) {
    case DataplaneState::kIdle:
    case DataplaneState::kApplying:
    case DataplaneState::kDumping:
    case DataplaneState::kProbing:
      return true;
    default:
      return false;
  }
}

void DataplaneLifecycle::SetState(DataplaneState state) {
  if (state == state_) return;
  state_ = state;
  if (hooks_.on_state_change) hooks_.on_state_change(state);
}

void DataplaneLifecycle::Error(const std::string& what) {
  if (hooks_.on_error) hooks_.on_error(what);
}

void DataplaneLifecycle::CancelTimer(uint64_t& id) {
  if (id != 0) loop_.Cancel(id);
  id = 0;
}

void DataplaneLifecycle::Start() {
  if (stopped_ || state_ != DataplaneState::kDisconnected) return;
  StartConnect();
  ScheduleResync();
}

void DataplaneLifecycle::Stop() {
  stopped_ = true;
  ++generation_;
  for (uint64_t* timer :
       {&reconnect_timer_, &resync_timer_, &probe_timer_, &retry_timer_, &watchdog_timer_}) {
    CancelTimer(*timer);
  }
}

void DataplaneLifecycle::Submit(DataplaneState busy, std::function<std::function<void()>()> call) {
  SetState(busy);
  uint64_t generation = generation_;
  CancelTimer(watchdog_timer_);
  watchdog_timer_ = loop_.RunAfter(config_.call_timeout, [this, generation, busy] {
    watchdog_timer_ = 0;
    if (generation != generation_) return;
    ++stats_.call_timeouts;
    Lose(fmt::format("dataplane {} did not answer within {} ms while {}", dataplane_.Name(),
                     Millis(config_.call_timeout), DataplaneStateName(busy)));
  });
  executor_.Post([this, generation, call = std::move(call)] {
    std::function<void()> done = call();
    loop_.Post([this, generation, done = std::move(done)] {
      if (generation != generation_) {
        // The call outlived its connection (it timed out, or the agent stopped); what it
        // returned describes a connection that is gone. The next dump tells the truth.
        ++stats_.stale_completions;
        return;
      }
      CancelTimer(watchdog_timer_);
      done();
    });
  });
}

void DataplaneLifecycle::StartConnect() {
  if (stopped_ || state_ != DataplaneState::kDisconnected) return;
  Submit(DataplaneState::kConnecting, [this]() -> std::function<void()> {
    Status status = dataplane_.Connect();
    if (status.ok()) status = dataplane_.EnsureUplink(config_.uplink);
    StatusOr<std::vector<net::Route>> dump =
        status.ok() ? dataplane_.DumpOwnedRoutes() : StatusOr<std::vector<net::Route>>(status);
    std::vector<net::IpPrefix> addresses;
    if (dump.ok()) addresses = dataplane_.UplinkAddresses();
    return [this, dump = std::move(dump), addresses = std::move(addresses)]() mutable {
      OnConnected(std::move(dump), std::move(addresses));
    };
  });
}

void DataplaneLifecycle::OnConnected(StatusOr<std::vector<net::Route>> dump,
                                     std::vector<net::IpPrefix> addresses) {
  if (absl::IsFailedPrecondition(dump.status()) || absl::IsInvalidArgument(dump.status())) {
    // Retrying cannot help (e.g. a VPP whose API lacks messages we need, or a bad uplink
    // address): refuse to run, with the reason.
    LOG_ERROR("dataplane {} refused: {}", dataplane_.Name(), dump.status().message());
    SetState(DataplaneState::kFailed);
    Stop();
    if (hooks_.on_fatal) hooks_.on_fatal(dump.status());
    return;
  }
  if (!dump.ok()) {
    ++stats_.connect_failures;
    Lose(fmt::format("dataplane {} not ready: {}", dataplane_.Name(), dump.status().message()));
    return;
  }
  ++stats_.connects;
  reconnect_backoff_.Reset();
  LOG_INFO("dataplane {} connected, uplink ready; it holds {} routes of ours", dataplane_.Name(),
           dump->size());
  reconciler_.OnDataplaneDump(*dump);
  // The connect dumped everything: a resync asked for meanwhile has nothing left to find.
  resync_wanted_ = false;
  SetState(DataplaneState::kIdle);
  if (hooks_.on_connected) hooks_.on_connected(std::move(addresses));
  ScheduleProbe();
  Kick();
}

void DataplaneLifecycle::Kick() {
  if (stopped_ || state_ != DataplaneState::kIdle) return;  // a completion kicks again
  if (resync_wanted_) {
    StartResyncDump();
    return;
  }
  if (paused_) return;
  auto ops = reconciler_.NextBatch(loop_.clock().Now(), config_.batch_size);
  if (ops.empty()) {
    ArmRetryTimer();
    if (hooks_.on_idle) hooks_.on_idle();
    return;
  }
  Submit(DataplaneState::kApplying, [this, ops = std::move(ops)]() mutable {
    auto results = dataplane_.Apply(ops);
    return [this, ops = std::move(ops), results = std::move(results)]() mutable {
      OnBatchDone(std::move(ops), std::move(results));
    };
  });
}

void DataplaneLifecycle::ArmRetryTimer() {
  CancelTimer(retry_timer_);
  if (auto due = reconciler_.NextRetryTime()) {
    retry_timer_ = loop_.RunAt(*due, [this] {
      retry_timer_ = 0;
      Kick();
    });
  }
}

void DataplaneLifecycle::OnBatchDone(std::vector<net::RouteOp> ops,
                                     std::vector<net::OpResult> results) {
  SetState(DataplaneState::kIdle);
  // An upsert that finds no device (NOT_FOUND) means the uplink was deleted and maybe re-created
  // with a new index: reconnecting re-runs EnsureUplink.
  bool device_gone = false;
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    device_gone |= ops[i].type == net::OpType::kUpsert && absl::IsNotFound(results[i].status);
  }
  auto now = loop_.clock().Now();
  bool lost = reconciler_.OnResults(results, now);
  if (hooks_.on_results) hooks_.on_results(ops, results);
  if (lost) {
    Lose("dataplane connection lost during a batch");
    return;
  }
  if (device_gone &&
      (!uplink_rechecked_ || now - last_uplink_recheck_ >= config_.uplink_recheck_interval)) {
    uplink_rechecked_ = true;
    last_uplink_recheck_ = now;
    Lose("a route found no uplink device");
    return;
  }
  Kick();
}

void DataplaneLifecycle::ScheduleResync() {
  CancelTimer(resync_timer_);
  if (stopped_) return;
  resync_timer_ = loop_.RunAfter(config_.resync_interval, [this] {
    resync_timer_ = 0;
    if (state_ == DataplaneState::kIdle) {
      StartResyncDump();
      return;
    }
    if (connected()) {
      resync_wanted_ = true;  // after the call in flight
      return;
    }
    // Disconnected or connecting: the connect dumps everything anyway.
    ScheduleResync();
  });
}

void DataplaneLifecycle::StartResyncDump() {
  resync_wanted_ = false;
  Submit(DataplaneState::kDumping, [this]() -> std::function<void()> {
    auto dump = dataplane_.DumpOwnedRoutes();
    return [this, dump = std::move(dump)]() mutable { OnResyncDump(std::move(dump)); };
  });
}

void DataplaneLifecycle::OnResyncDump(StatusOr<std::vector<net::Route>> dump) {
  ++stats_.resyncs;
  if (hooks_.on_resync) hooks_.on_resync();
  ScheduleResync();
  if (!dump.ok()) {
    if (absl::IsUnavailable(dump.status())) {
      Lose(fmt::format("resync dump failed: {}", dump.status().message()));
      return;
    }
    Error(fmt::format("resync: {}", dump.status().message()));
    SetState(DataplaneState::kIdle);
    Kick();
    return;
  }
  uint64_t before = reconciler_.stats().drift_repaired;
  reconciler_.OnDataplaneDump(*dump);
  uint64_t drift = reconciler_.stats().drift_repaired - before;
  if (drift > 0) LOG_WARN("resync found {} routes changed behind our back; repairing", drift);
  SetState(DataplaneState::kIdle);
  Kick();
}

void DataplaneLifecycle::ScheduleProbe() {
  CancelTimer(probe_timer_);
  if (stopped_) return;
  probe_timer_ = loop_.RunAfter(config_.probe_interval, [this] {
    probe_timer_ = 0;
    if (!connected()) return;  // the next connect schedules the next probe
    if (state_ != DataplaneState::kIdle) {
      ScheduleProbe();  // the dataplane is busy, so it is being exercised anyway
      return;
    }
    Submit(DataplaneState::kProbing, [this]() -> std::function<void()> {
      Status status = dataplane_.Probe();
      return [this, status] { OnProbeDone(status); };
    });
  });
}

void DataplaneLifecycle::OnProbeDone(Status status) {
  if (absl::IsUnavailable(status)) {
    Lose(fmt::format("dataplane probe: {}", status.message()));
    return;
  }
  SetState(DataplaneState::kIdle);
  ScheduleProbe();
  Kick();  // work that arrived while the probe was in flight
}

void DataplaneLifecycle::Lose(const std::string& why) {
  if (stopped_) return;
  bool was_connected = connected();
  ++generation_;
  CancelTimer(watchdog_timer_);
  CancelTimer(probe_timer_);
  CancelTimer(retry_timer_);
  CancelTimer(reconnect_timer_);
  resync_wanted_ = false;
  reconciler_.OnDataplaneLost();
  if (was_connected) ++stats_.losses;
  Duration delay = reconnect_backoff_.Next();
  last_reconnect_delay_ = delay;
  LOG_WARN("{}; reconnecting in {} ms and replaying the full state", why, Millis(delay));
  Error(why);
  SetState(DataplaneState::kDisconnected);
  reconnect_timer_ = loop_.RunAfter(delay, [this] {
    reconnect_timer_ = 0;
    StartConnect();
  });
}

void DataplaneLifecycle::SetPaused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (!paused_) Kick();
}

void DataplaneLifecycle::PushPools(std::vector<net::IpPrefix> pools) {
  executor_.Post([this, pools = std::move(pools)]() mutable { dataplane_.SetPools(pools); });
}

}  // namespace vcra::agent
