// Agent: wiring only. Owns the loop thread's state (KvCache, RouteCalculator, RouteReconciler),
// the etcd watcher, the dataplane worker and the peer-address publisher.
//
// Data flow (docs/design.md has the picture):
//   EtcdWatcher thread --Post--> loop: KvCache diff -> decode -> RouteCalculator -> deltas
//   -> RouteReconciler -> NextBatch --Post--> dataplane WorkQueue: Dataplane::Apply
//   --Post--> loop: OnResults -> next batch.
//
// Threading: every member below marked (loop) is touched only on the loop thread. Public methods
// are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/agent_status.h"
#include "agent/metrics.h"
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
  // Print the routes that would be programmed once the first list is complete, then stop.
  bool dry_run = false;
  std::function<void(const std::string&)> dry_run_output;
};

class Agent {
 public:
  Agent(AgentConfig config, std::unique_ptr<dataplane::Dataplane> dataplane);
  ~Agent();

  // Runs until Stop() (or, in dry-run, until the routes are printed). Routes are left in the
  // dataplane on return: traffic keeps flowing while the agent restarts.
  Status Run();
  void Stop();

  // Thread-safe; waits for the loop (returns nullopt if the loop is not running).
  // With `details` false the route, pending and peer lists stay empty: cheap enough for every
  // health check and metrics scrape at 100k routes.
  std::optional<AgentStatus> GetStatus(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                       bool details = true);
  std::string RenderMetrics();
  bool Ready() const { return ready_.load(); }
  const Metrics& metrics() const { return metrics_; }

 private:
  // (loop) handlers
  void OnSnapshot(datastore::Snapshot&& snapshot);
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
  void OnBatchDone(std::vector<dataplane::RouteOp> ops, std::vector<dataplane::OpResult> results);
  void StartConnect();
  void OnConnected(StatusOr<std::vector<net::Route>> dump,
                   std::vector<net::IpPrefix> uplink_addresses);
  void LearnUplinkAddresses(std::vector<net::IpPrefix> addresses);
  void OnDataplaneLost(const std::string& why);
  void StartResync();
  void OnResyncDump(StatusOr<std::vector<net::Route>> dump);
  void ScheduleResync();
  void ScheduleProbe();
  void PushPoolsToDataplane();
  void PublishPeerAddresses();
  void RecordError(std::string error);
  // Stops the etcd watcher and the worker threads (idempotent); routes stay.
  void StopThreads();
  void PrintDryRunAndStop();
  AgentStatus BuildStatus(bool details) const;
  void UpdateReady();

  AgentConfig config_;
  std::unique_ptr<dataplane::Dataplane> dataplane_;
  SystemClock clock_;
  EventLoop loop_;
  Metrics metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> running_{false};

  // (loop)
  datastore::KvCache kv_cache_;
  routing::RouteCalculator calculator_;
  routing::RouteReconciler reconciler_;
  bool etcd_connected_ = false;
  bool datastore_synced_ = false;
  bool datastore_ready_ = true;
  bool dataplane_connected_ = false;
  bool connecting_ = false;
  bool batch_in_flight_ = false;
  bool resync_in_flight_ = false;
  bool resync_wanted_ = false;
  bool probing_ = false;
  Status fatal_status_;
  bool first_programming_done_ = false;
  bool peer_published_ = false;
  bool publishing_ = false;
  uint64_t retry_timer_ = 0;
  uint64_t resync_timer_ = 0;
  uint64_t probe_timer_ = 0;
  Backoff connect_backoff_{std::chrono::milliseconds(200), std::chrono::seconds(10)};
  Backoff publish_backoff_{std::chrono::milliseconds(500), std::chrono::seconds(30)};
  TimePoint last_progress_log_{};
  TimePoint last_uplink_recheck_{};
  std::unordered_map<net::IpPrefix, TimePoint> change_seen_at_;
  // [OpType][OpResultKind in agent.cc]; labelled only when rendered, not on every op.
  std::array<std::array<uint64_t, 3>, 2> op_counts_{};
  std::vector<std::string> last_errors_;
  std::vector<net::IpPrefix> uplink_addresses_;  // as the dataplane last reported them

  // Declared last: destroyed first, so their threads stop before the state they post into.
  std::unique_ptr<datastore::EtcdClient> publisher_client_;
  std::unique_ptr<WorkQueue> publisher_;
  std::unique_ptr<WorkQueue> dataplane_worker_;
  std::unique_ptr<datastore::EtcdWatcher> watcher_;
};

}  // namespace vcra::agent
