// DataplaneLifecycle: the one owner of the agent's connection to its dataplane, as an explicit
// state machine (docs/design.md, "Dataplane lifecycle", has the diagram):
//
//   kDisconnected --reconnect timer--> kConnecting --connected, dumped--> kIdle
//   kIdle --ops due--> kApplying --results--> kIdle
//   kIdle --resync timer--> kDumping --dump--> kIdle
//   kIdle --probe timer--> kProbing --alive--> kIdle
//   kConnecting/kApplying/kDumping/kProbing --UNAVAILABLE, or no answer within call_timeout-->
//       kDisconnected (reconnect after a backoff that grows, and resets once connected)
//   kConnecting --refused for good (FAILED_PRECONDITION, INVALID_ARGUMENT)--> kFailed
//
// At most one dataplane call is in flight: a batch, a dump or a probe, never two, so results
// arrive in order and a dump never races with a batch. Every call carries the connection's
// generation; a completion from an earlier generation (a call that outlived the connection it
// was made on) is dropped and counted, never applied.
//
// The reconciler decides WHAT to send (ops, their results, retries); this class decides WHEN a
// dataplane call happens. It runs on the loop thread only; the dataplane calls themselves run on
// the injected executor (a worker thread; a ManualExecutor in tests).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "dataplane/dataplane.h"
#include "net/route_op.h"
#include "routing/route_reconciler.h"

namespace vcra::agent {

enum class DataplaneState : uint8_t {
  kDisconnected,  // no connection; a reconnect is scheduled
  kConnecting,    // Connect, EnsureUplink and the full dump in flight
  kIdle,          // connected, nothing in flight
  kApplying,      // one batch in flight
  kDumping,       // a resync dump in flight
  kProbing,       // a liveness probe in flight
  kFailed,        // refused for good (retrying cannot help); the agent stops
};
std::string_view DataplaneStateName(DataplaneState state);

struct LifecycleConfig {
  dataplane::UplinkConfig uplink;
  size_t batch_size = 1000;
  Duration resync_interval = std::chrono::seconds(90);
  Duration probe_interval = std::chrono::seconds(1);
  // A dataplane call that has not returned by then counts as a lost connection.
  Duration call_timeout = std::chrono::seconds(60);
  // An upsert that finds no uplink device reconnects (re-running EnsureUplink) at most this
  // often, so a route failing that way for another reason cannot spin the connection.
  Duration uplink_recheck_interval = std::chrono::seconds(30);
  Duration reconnect_initial = std::chrono::milliseconds(200);
  Duration reconnect_max = std::chrono::seconds(10);
  double reconnect_jitter = 0.2;
};

struct LifecycleStats {
  uint64_t connects = 0;  // successful connects (the first one included)
  uint64_t connect_failures = 0;
  uint64_t losses = 0;             // connection lost after it was up
  uint64_t call_timeouts = 0;      // calls that did not return within call_timeout
  uint64_t stale_completions = 0;  // completions of calls from a lost connection, dropped
  uint64_t resyncs = 0;            // periodic dumps completed
};

class DataplaneLifecycle {
 public:
  // Calls back into the agent, on the loop thread. Any may be empty.
  struct Hooks {
    // Connected: the uplink is ready and the dump is in the reconciler.
    std::function<void(std::vector<net::IpPrefix> uplink_addresses)> on_connected;
    // A batch's ops and results, once the reconciler has taken them (metrics, logs).
    std::function<void(const std::vector<net::RouteOp>&, const std::vector<net::OpResult>&)>
        on_results;
    // Connected, not paused, and no op due now: what could be sent has been.
    std::function<void()> on_idle;
    // Something went wrong that is worth a line in /status (lost connection, failed resync).
    std::function<void(const std::string&)> on_error;
    // A periodic resync dump came back (whatever its outcome).
    std::function<void()> on_resync;
    // Refused for good; the agent stops with this status.
    std::function<void(const Status&)> on_fatal;
    std::function<void(DataplaneState)> on_state_change;
  };

  // Everything passed by reference must outlive this object, and `executor` must be stopped
  // before it is destroyed.
  DataplaneLifecycle(LifecycleConfig config, dataplane::Dataplane& dataplane, Executor& executor,
                     EventLoop& loop, routing::RouteReconciler& reconciler, Hooks hooks);
  ~DataplaneLifecycle();

  // From kDisconnected: connects now and arms the resync timer.
  void Start();
  // Cancels every timer; later completions are dropped.
  void Stop();
  // New work may be due (desired routes changed, a retry came due).
  void Kick();
  // Calico's datastoreReady=false: no batches are sent (dumps and probes go on); nothing is
  // removed. Resuming kicks.
  void SetPaused(bool paused);
  // Calico's pools changed: handed to the dataplane on the worker, in order with its calls.
  void PushPools(std::vector<net::IpPrefix> pools);

  DataplaneState state() const { return state_; }
  // kIdle, kApplying, kDumping or kProbing.
  bool connected() const;
  const LifecycleStats& stats() const { return stats_; }
  // The delay the last scheduled reconnect waits (zero before the first loss).
  Duration last_reconnect_delay() const { return last_reconnect_delay_; }

 private:
  void SetState(DataplaneState state);
  // Runs `call` on the executor in state `busy`; its result, a closure, runs on the loop if the
  // connection is still the one it was made on. Arms the call watchdog.
  void Submit(DataplaneState busy, std::function<std::function<void()>()> call);
  void StartConnect();
  void OnConnected(StatusOr<std::vector<net::Route>> dump, std::vector<net::IpPrefix> addresses);
  void OnBatchDone(std::vector<net::RouteOp> ops, std::vector<net::OpResult> results);
  void StartResyncDump();
  void OnResyncDump(StatusOr<std::vector<net::Route>> dump);
  void OnProbeDone(Status status);
  // The connection is gone: forget what was in flight, reconnect after a backoff.
  void Lose(const std::string& why);
  void ScheduleResync();
  void ScheduleProbe();
  void ArmRetryTimer();
  void CancelTimer(uint64_t& id);
  void Error(const std::string& what);

  LifecycleConfig config_;
  dataplane::Dataplane& dataplane_;
  Executor& executor_;
  EventLoop& loop_;
  routing::RouteReconciler& reconciler_;
  Hooks hooks_;

  DataplaneState state_ = DataplaneState::kDisconnected;
  uint64_t generation_ = 0;  // bumped on every loss and on Stop
  bool stopped_ = false;
  bool paused_ = false;
  bool resync_wanted_ = false;
  Backoff reconnect_backoff_;
  Duration last_reconnect_delay_{};
  TimePoint last_uplink_recheck_{};
  bool uplink_rechecked_ = false;
  uint64_t reconnect_timer_ = 0;
  uint64_t resync_timer_ = 0;
  uint64_t probe_timer_ = 0;
  uint64_t retry_timer_ = 0;
  uint64_t watchdog_timer_ = 0;
  LifecycleStats stats_;
};

}  // namespace vcra::agent
