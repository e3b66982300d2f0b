// Agent: wiring. Owns the loop thread's state (KvCache, RouteCalculator, RouteReconciler), the
// datastore watcher, the dataplane worker and the peer-address publisher. When and how the
// dataplane is called (connect, batches, resync dumps, probes, reconnect backoff) is
// DataplaneLifecycle's job, one explicit state machine; the agent only feeds it and reports.
//
// Data flow (docs/design.md has the picture):
//   EtcdWatcher thread (listing pages: blocks decoded there) --Post--> loop: KvCache diff ->
//   decode (changes) -> RouteCalculator -> deltas
//   -> RouteReconciler -> DataplaneLifecycle: NextBatch --Post--> dataplane worker:
//   Dataplane::Apply --Post--> loop: OnResults -> next batch.
//
// Seams for tests (AgentDeps): the clock (the event loop's timers too), the datastore watcher
// and the executors the blocking calls run on. With a FakeClock, a fake watcher and a
// ManualExecutor, a test drives every interleaving on its own thread, in milliseconds.
//
// Threading: every member below marked (loop) is touched only on the loop thread. Public methods
// are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/agent_status.h"
#include "agent/dataplane_lifecycle.h"
#include "agent/metrics.h"
#include "agent/status_query.h"
#include "calico/model.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "dataplane/dataplane.h"
#include "datastore/etcd_client.h"
#include "datastore/kv_cache.h"
#include "routing/route_calculator.h"
#include "routing/route_reconciler.h"

namespace vcra::agent {

enum class PeerMode : uint8_t {
  kPeerKeys,     // /vpp-calico/hosts/<host>/peerip/... only (the prototype's keys)
  kCalicoNodes,  // Calico Node resources only
  kBoth,         // both; the peer key wins where both exist
};

struct AgentConfig {
  std::string node_name;
  datastore::EtcdConfig etcd;
  dataplane::UplinkConfig uplink;
  // Where IPAM blocks live; the prototype's positional form may narrow it to one family.
  std::string block_prefix = "/calico/ipam/v2/assignment/";
  PeerMode peer_mode = PeerMode::kPeerKeys;
  bool publish_peer_address = true;
  bool watch_pools = true;
  bool watch_cluster_information = true;
  std::chrono::seconds resync_interval{90};
  // How often an idle agent checks that the dataplane connection is alive (VPP restarts).
  std::chrono::milliseconds probe_interval{1000};
  size_t batch_size = 1000;
  // Reconnecting to a lost dataplane: exponential backoff between these bounds, +-jitter
  // (a fraction), reset once connected.
  std::chrono::milliseconds reconnect_backoff_initial{200};
  std::chrono::milliseconds reconnect_backoff_max{10000};
  double backoff_jitter = 0.2;  // also for publishing the peer address
  // The first etcd listing waits a random time in [0, start_jitter]: a fleet started at once
  // then reaches a shared grpc-proxy spread out, and the proxy's cache answers most pages (it
  // does not merge identical requests in flight). 0: list at once.
  std::chrono::milliseconds start_jitter{0};
  // A dataplane call (connect, batch, dump, probe) that has not returned by then counts as a lost
  // connection; whatever it returns later is dropped.
  std::chrono::milliseconds dataplane_call_timeout{60000};
  // An upsert finding no uplink device reconnects (re-running the uplink setup) at most this
  // often.
  std::chrono::seconds uplink_recheck_interval{30};
  // A route op that failed is retried after this, doubling up to the max (per prefix).
  std::chrono::milliseconds route_retry_initial{1000};
  std::chrono::milliseconds route_retry_max{60000};
  // Publishing the peer address to etcd: retry backoff.
  std::chrono::milliseconds publish_backoff_initial{500};
  std::chrono::milliseconds publish_backoff_max{30000};
  // How often the initial sync logs its progress.
  std::chrono::seconds progress_log_interval{2};
  // While etcd changes arrive, the heap's free pages are handed back to the system this often:
  // glibc keeps what the watcher's and gRPC's threads freed in their arena (10-15 MiB after a
  // few minutes of churn at 10k blocks), so without it the RSS steps up and stays. 0: never.
  std::chrono::seconds memory_trim_interval{30};
  // How long /metrics waits for the loop to answer.
  std::chrono::milliseconds status_timeout{5000};
  // Recent errors kept for /status.
  size_t max_recent_errors = 20;
  // Print the routes that would be programmed once the first list is complete, then stop.
  bool dry_run = false;
  std::function<void(const std::string&)> dry_run_output;
};

// What the agent is built on; every field has the production default when left empty.
struct AgentDeps {
  // Time for every timer and measurement; must outlive the agent. nullptr: the steady clock.
  const Clock* clock = nullptr;
  // The datastore. Empty: an EtcdWatcher on AgentConfig::etcd.
  datastore::WatcherFactory watcher_factory;
  // Where blocking calls run ("vcra-dataplane", "vcra-publish"). Empty: a WorkQueue thread each.
  std::function<std::unique_ptr<Executor>(const std::string& name)> executor_factory;
  // Hands the heap's free pages back to the system. Empty: glibc's malloc_trim(0).
  std::function<void()> release_free_memory;
  // The wait before the first listing, given AgentConfig::start_jitter. Empty: uniform at random.
  std::function<Duration(Duration jitter)> start_delay;
};

class Agent {
 public:
  Agent(AgentConfig config, std::unique_ptr<dataplane::Dataplane> dataplane, AgentDeps deps = {});
  ~Agent();

  // Runs until Stop() (or, in dry-run, until the routes are printed). Routes are left in the
  // dataplane on return: traffic keeps flowing while the agent restarts.
  Status Run();
  void Stop();

  // Run() in two halves, for tests that drive the loop themselves: Start() builds the watcher
  // and the workers and posts the first work, without running the loop; the test then runs
  // loop() (RunUntilIdle/RunFor on a FakeClock) on its own thread.
  Status Start();
  EventLoop& loop() { return loop_; }
  // What Run() would return so far: the reason the agent gave up, or OK.
  Status fatal_status() const { return fatal_status_; }
  // Loop thread only (a test driving the loop is the loop thread).
  AgentStatus StatusOnLoop(bool details = true) const { return BuildStatus(details); }
  DataplaneState dataplane_state() const;
  const LifecycleStats* lifecycle_stats() const;

  // Thread-safe; waits for the loop (returns nullopt if the loop is not running).
  // With `details` false the route, pending and peer lists stay empty: cheap enough for every
  // health check and metrics scrape at 100k routes.
  std::optional<AgentStatus> GetStatus(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                       bool details = true);
  // /status: the counters, the start-up's progress and the query's page of routes
  // (status_query.h); with query.routes false, no routes at all.
  std::optional<AgentStatus> GetStatus(std::chrono::milliseconds timeout, const StatusQuery& query);
  std::string RenderMetrics();
  // The exposition for a status taken earlier (without one: counters only).
  std::string RenderMetricsFor(std::optional<AgentStatus> status) const;
  bool Ready() const { return ready_.load(); }
  const Metrics& metrics() const { return metrics_; }

 private:
  // (loop) handlers
  // A listing page with its blocks decoded (DecodePage runs on the watcher's thread).
  struct DecodedEntry {
    std::string key;
    int64_t mod_revision = 0;
    std::optional<StatusOr<calico::IpamBlock>> block;  // set for keys under block_prefix
    std::string value;                                 // the raw value of any other key
  };
  struct DecodedPage {
    std::vector<DecodedEntry> entries;
    int64_t revision = 0;
    bool first = false;
    bool last = false;
    int64_t prefix_keys = 0;  // see datastore::ListingPage
  };
  DecodedPage DecodePage(datastore::ListingPage&& page) const;
  // One page of a listing: applied to the calculator at once, never kept (see KvCache).
  void OnListingPage(DecodedPage&& page);
  void ReserveForListing(const DecodedPage& page);
  void OnChanges(std::vector<datastore::Change>&& changes);
  void OnEtcdConnection(bool connected, const std::string& reason);
  void HandleChange(const datastore::Change& change);
  // A malformed key or value: counted, logged (rate limited), recorded; the key keeps its last
  // good state.
  void RejectInput(const std::string& key, const Status& why);
  void HandlePeerKey(const datastore::Change& change);
  void HandleNode(const datastore::Change& change);
  void HandlePool(const datastore::Change& change);
  void HandleClusterInformation(const datastore::Change& change);
  void FlushDeltas();
  void Kick();
  // DataplaneLifecycle hooks.
  void OnDataplaneConnected(std::vector<net::IpPrefix> uplink_addresses);
  void OnBatchResults(const std::vector<net::RouteOp>& ops,
                      const std::vector<net::OpResult>& results);
  void OnDataplaneIdle();
  void OnFatal(const Status& status);
  void LearnUplinkAddresses(std::vector<net::IpPrefix> addresses);
  void PushPoolsToDataplane();
  std::unique_ptr<Executor> MakeExecutor(const std::string& name);
  void PublishPeerAddresses();
  void RecordError(std::string error);
  // Stops the etcd watcher and the worker threads (idempotent); routes stay.
  void StopThreads();
  void PrintDryRunAndStop();
  AgentStatus BuildStatus(bool details) const;
  // Counters and progress, no lists: what every answer starts from.
  AgentStatus BuildSummary() const;
  AgentStatus BuildStatusFor(const StatusQuery& query) const;
  // The start-up's progress, logged every progress_log_interval until the first programming is
  // done (a timer, so that a long etcd read or a slow dataplane still shows up in the log).
  AgentStatus::Progress StartProgress() const;
  void LogStartProgress();
  // Every memory_trim_interval: releases free heap pages if etcd changes came since last time.
  void TrimMemory();
  void ReleaseFreeMemory();
  // How long the first listing waits (AgentConfig::start_jitter).
  Duration StartDelay() const;
  void UpdateReady();

  AgentConfig config_;
  AgentDeps deps_;
  std::unique_ptr<dataplane::Dataplane> dataplane_;
  SystemClock system_clock_;
  const Clock& clock_;
  EventLoop loop_;
  Metrics metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> running_{false};

  // (loop)
  datastore::KvCache kv_cache_;
  routing::RouteCalculator calculator_;
  routing::RouteReconciler reconciler_;
  // Whether the datastore is complete is the reconciler's (datastore_synced()); whether the
  // dataplane is connected is the lifecycle's (connected()). These are what neither knows.
  bool etcd_connected_ = false;
  bool datastore_ready_ = true;
  Status fatal_status_;
  bool first_programming_done_ = false;
  bool peer_published_ = false;
  bool publishing_ = false;
  Backoff publish_backoff_;
  TimePoint started_at_{};
  std::optional<TimePoint> listed_at_;  // the first complete etcd listing
  size_t programmed_at_listing_ = 0;
  uint64_t etcd_events_at_last_trim_ = 0;
  std::unordered_map<net::IpPrefix, TimePoint> change_seen_at_;
  TimePoint listing_started_{};
  size_t listing_keys_ = 0;
  size_t listing_applied_ = 0;
  size_t listing_reserved_keys_ = 0;  // the listing's prefixes' counts so far

  // Listing pages posted to the loop and not yet decoded; the watcher's thread waits while
  // there are kMaxListingPagesQueued (each wait bounded: kListingWaitRounds x 50 ms).
  static constexpr int kMaxListingPagesQueued = 1;
  static constexpr int kListingWaitRounds = 1200;
  std::mutex listing_mu_;
  std::condition_variable listing_cv_;
  int listing_pages_queued_ = 0;  // guarded by listing_mu_
  // [OpType][OpResultKind in agent.cc]; labelled only when rendered, not on every op.
  std::array<std::array<uint64_t, 4>, 2> op_counts_{};
  std::vector<std::string> last_errors_;
  std::vector<net::IpPrefix> uplink_addresses_;  // as the dataplane last reported them

  // Declared last: destroyed first, so their threads stop before the state they post into
  // (the lifecycle's calls run on dataplane_worker_, which is stopped before it goes).
  std::unique_ptr<datastore::EtcdClient> publisher_client_;
  std::unique_ptr<Executor> publisher_;
  std::unique_ptr<Executor> dataplane_worker_;
  std::unique_ptr<DataplaneLifecycle> lifecycle_;
  std::unique_ptr<datastore::Watcher> watcher_;
};

}  // namespace vcra::agent
