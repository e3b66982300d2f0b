// The agent's dataplane lifecycle, hermetic: a FakeClock drives every timer, a fake datastore
// feeds the agent's watch sink, the FakeDataplane holds the routes, and a ManualExecutor holds
// every dataplane call until the test runs it. No etcd, no root, no sleeping: each interleaving
// (a loss during a batch, a dump or a probe; a listing arriving mid-resync; a result arriving
// after its connection was lost) happens exactly where the test puts it.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/agent.h"
#include "calico/model.h"
#include "dataplane/fake_dataplane.h"

namespace vcra::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

net::IpPrefix P(const char* s) { return *net::IpPrefix::Parse(s); }
net::IpAddress A(const char* s) { return *net::IpAddress::Parse(s); }
net::Route R(const char* dst, const char* via) { return {P(dst), A(via)}; }

// What the fake datastore shares with the test: the agent's sink, once it built the watcher.
struct FakeDatastore {
  datastore::WatchSink sink;
  std::vector<std::string> prefixes;
  bool started = false;
  bool stopped = false;
  int64_t revision = 100;
};

class FakeWatcher final : public datastore::Watcher {
 public:
  explicit FakeWatcher(std::shared_ptr<FakeDatastore> ds) : ds_(std::move(ds)) {}
  void Start() override { ds_->started = true; }
  void Stop() override { ds_->stopped = true; }

 private:
  std::shared_ptr<FakeDatastore> ds_;
};

std::string BlockJson(const char* cidr, const char* host) {
  calico::IpamBlock b;
  b.cidr = P(cidr);
  b.affinity_type = calico::AffinityType::kHost;
  b.affinity_name = host;
  return calico::EncodeBlock(b);
}

class AgentLifecycleTest : public ::testing::Test {
 protected:
  void TearDown() override { agent_.reset(); }

  AgentConfig Config() {
    AgentConfig c;
    c.node_name = "host-a";
    c.uplink.name = "eth0";
    c.uplink.addresses = {*net::IpPrefix::ParseInterfaceAddress("10.99.0.1/24")};
    c.publish_peer_address = false;  // no etcd here
    c.resync_interval = seconds(90);
    c.probe_interval = milliseconds(1000);
    c.reconnect_backoff_initial = milliseconds(200);
    c.reconnect_backoff_max = milliseconds(1000);
    c.backoff_jitter = 0;  // exact delays, so the test can assert them
    c.dataplane_call_timeout = seconds(5);
    // No start-up progress timer: these tests read the lifecycle's own next timer. The
    // progress test turns it on.
    c.progress_log_interval = seconds(0);
    c.memory_trim_interval = seconds(0);  // likewise; its own test turns it on
    return c;
  }

  void StartAgent(AgentConfig config = {}, bool use_default = true) {
    if (use_default) config = Config();
    auto dataplane = std::make_unique<dataplane::FakeDataplane>();
    fake_ = dataplane.get();
    for (const auto& r : preexisting_owned_) fake_->AddOwnedRouteBehindOurBack(r);
    for (const auto& r : foreign_) fake_->AddForeignRoute(r);
    AgentDeps deps;
    deps.clock = &clock_;
    deps.watcher_factory = [ds = ds_](std::vector<std::string> prefixes,
                                      datastore::WatchSink sink) {
      ds->prefixes = std::move(prefixes);
      ds->sink = std::move(sink);
      return std::make_unique<FakeWatcher>(ds);
    };
    deps.executor_factory = [this](const std::string&) {
      auto executor = std::make_unique<ManualExecutor>();
      worker_ = executor.get();
      return executor;
    };
    deps.release_free_memory = [this] { ++memory_releases_; };
    deps.start_delay = [this](Duration) { return start_delay_; };
    bool listing_waits = config.start_jitter.count() > 0;
    agent_ = std::make_unique<Agent>(std::move(config), std::move(dataplane), std::move(deps));
    ASSERT_TRUE(agent_->Start().ok());
    ASSERT_EQ(ds_->started, !listing_waits);
    ASSERT_NE(worker_, nullptr);
  }

  // Runs the loop and the dataplane worker until neither has anything to do at this instant.
  void Settle() {
    for (int i = 0; i < 1000; ++i) {
      EXPECT_LE(worker_->pending(), 1u) << "at most one dataplane call in flight";
      size_t ran = agent_->loop().RunUntilIdle();
      ran += worker_->RunAll();
      if (ran == 0) return;
    }
    FAIL() << "the agent never settled";
  }
  // Only the loop: dataplane calls stay queued on the worker (held).
  void RunLoop() { agent_->loop().RunUntilIdle(); }
  // Lets `d` pass, stopping at every timer due on the way; dataplane calls answer at once.
  void Advance(Duration d) {
    TimePoint end = clock_.Now() + d;
    Settle();
    for (int i = 0; i < 10000; ++i) {
      auto next = agent_->loop().NextTimerTime();
      if (!next || *next > end) break;
      if (*next > clock_.Now()) clock_.Advance(*next - clock_.Now());
      Settle();
    }
    if (clock_.Now() < end) clock_.Advance(end - clock_.Now());
    Settle();
  }
  // Lets `d` pass with the dataplane call in flight held (nobody answers).
  void AdvanceHeld(Duration d) { agent_->loop().RunFor(clock_, d); }

  datastore::KeyValue Kv(std::string key, std::string value) {
    return {std::move(key), std::move(value), ++ds_->revision};
  }
  datastore::KeyValue BlockKv(const char* cidr, const char* host) {
    return Kv(calico::BlockKey(P(cidr)), BlockJson(cidr, host));
  }
  datastore::KeyValue PeerKv(const char* host, const char* address) {
    return Kv(calico::PeerKeyFor(host, A(address).family()), address);
  }
  void Snapshot(std::vector<datastore::KeyValue> kvs) {
    std::sort(kvs.begin(), kvs.end(), [](auto& a, auto& b) { return a.key < b.key; });
    ds_->sink.on_connection(true, "");
    ds_->sink.on_listing_page({std::move(kvs), ds_->revision, /*first=*/true, /*last=*/true});
  }
  // One page of a listing at the current revision (see datastore::ListingPage).
  void ListingPage(std::vector<datastore::KeyValue> kvs, bool first, bool last) {
    ds_->sink.on_connection(true, "");
    ds_->sink.on_listing_page({std::move(kvs), ds_->revision, first, last});
  }
  void PutKey(const std::string& key, const std::string& value) {
    ds_->sink.on_changes({{datastore::Change::Type::kPut, key, value, ++ds_->revision}});
  }
  void PutBlock(const char* cidr, const char* host) {
    PutKey(calico::BlockKey(P(cidr)), BlockJson(cidr, host));
  }
  void DeleteBlock(const char* cidr) {
    ds_->sink.on_changes(
        {{datastore::Change::Type::kDelete, calico::BlockKey(P(cidr)), "", ++ds_->revision}});
  }
  // host-b's block and address: one route, 10.244.2.0/26 via 10.99.0.2.
  void SnapshotOneRoute() {
    Snapshot({BlockKv("10.244.2.0/26", "host-b"), PeerKv("host-b", "10.99.0.2")});
  }

  DataplaneState State() const { return agent_->dataplane_state(); }
  // How long until the loop's next timer (while disconnected: the reconnect).
  int64_t NextTimerInMs() {
    auto next = agent_->loop().NextTimerTime();
    EXPECT_TRUE(next.has_value());
    return next ? std::chrono::duration_cast<milliseconds>(*next - clock_.Now()).count() : -1;
  }
  const LifecycleStats& Stats() const { return *agent_->lifecycle_stats(); }
  AgentStatus Status() const { return agent_->StatusOnLoop(); }
  std::map<net::IpPrefix, net::Route> Programmed() const { return fake_->OwnedRoutes(); }

  FakeClock clock_;
  std::shared_ptr<FakeDatastore> ds_ = std::make_shared<FakeDatastore>();
  std::vector<net::Route> preexisting_owned_;
  std::vector<net::Route> foreign_;
  dataplane::FakeDataplane* fake_ = nullptr;  // owned by the agent
  ManualExecutor* worker_ = nullptr;          // owned by the agent
  int memory_releases_ = 0;
  Duration start_delay_{};  // what the agent's random start delay comes out as
  std::unique_ptr<Agent> agent_;
};

const std::map<net::IpPrefix, net::Route> kOneRoute = {
    {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")}};

TEST_F(AgentLifecycleTest, ConnectsDumpsProgramsAndBecomesReady) {
  StartAgent();
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kConnecting);
  EXPECT_EQ(worker_->pending(), 1u);
  Settle();
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_FALSE(agent_->Ready()) << "etcd not listed yet";
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(Programmed(), kOneRoute);
  EXPECT_TRUE(agent_->Ready());
  auto s = Status();
  EXPECT_EQ(s.sync_state, "in-sync");
  EXPECT_TRUE(s.in_sync);
  EXPECT_EQ(s.dataplane_state, "idle");
  ASSERT_EQ(s.routes.size(), 1u);
  EXPECT_EQ(s.routes[0].state, "programmed");
}

TEST_F(AgentLifecycleTest, AStartJitterDelaysTheFirstListingButNotTheDataplane) {
  AgentConfig config = Config();
  config.start_jitter = milliseconds(5000);
  start_delay_ = milliseconds(3000);
  StartAgent(config, /*use_default=*/false);
  Advance(milliseconds(2999));
  EXPECT_FALSE(ds_->started) << "the listing waits";
  EXPECT_EQ(State(), DataplaneState::kIdle) << "the dataplane does not";
  Advance(milliseconds(1));
  EXPECT_TRUE(ds_->started);
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(Programmed(), kOneRoute);
  EXPECT_TRUE(agent_->Ready());
}

TEST_F(AgentLifecycleTest, AStartDelayIsNeverLongerThanTheJitter) {
  AgentConfig config = Config();
  config.start_jitter = milliseconds(500);
  start_delay_ = seconds(3600);  // a chooser gone wrong
  StartAgent(config, /*use_default=*/false);
  Advance(milliseconds(500));
  EXPECT_TRUE(ds_->started);
}

TEST_F(AgentLifecycleTest, DatastoreNotListedYetDeletesNothingAndIsNotReady) {
  preexisting_owned_ = {R("10.244.9.0/26", "10.99.0.9")};  // left by a previous run
  StartAgent();
  ds_->sink.on_connection(false, "connection refused");
  Advance(seconds(30));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Status().sync_state, "awaiting-datastore");
  EXPECT_EQ(Programmed().size(), 1u) << "nothing is removed before a complete etcd list";
  EXPECT_FALSE(agent_->Ready());
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(Programmed(), kOneRoute) << "the stale route goes once the list is complete";
  EXPECT_TRUE(agent_->Ready());
}

TEST_F(AgentLifecycleTest, CalicoDatastoreNotReadyPausesProgrammingRemovingNothing) {
  preexisting_owned_ = {R("10.244.9.0/26", "10.99.0.9")};
  StartAgent();
  Snapshot(
      {BlockKv("10.244.2.0/26", "host-b"), PeerKv("host-b", "10.99.0.2"),
       Kv(std::string(calico::kClusterInformationKey), R"({"spec":{"datastoreReady":false}})")});
  Advance(seconds(5));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_FALSE(Status().datastore_ready);
  EXPECT_EQ(
      Programmed(),
      (std::map<net::IpPrefix, net::Route>{{P("10.244.9.0/26"), R("10.244.9.0/26", "10.99.0.9")}}))
      << "paused: nothing added, nothing removed";
  EXPECT_GE(fake_->probes(), 4u) << "probes go on while paused";
  PutKey(std::string(calico::kClusterInformationKey), R"({"spec":{"datastoreReady":true}})");
  Settle();
  EXPECT_EQ(Programmed(), kOneRoute);
  EXPECT_TRUE(agent_->Ready());
}

TEST_F(AgentLifecycleTest, DataplaneLostDuringABatchReconnectsAfterBackoffAndReplays) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  PutBlock("10.244.3.0/26", "host-b");
  RunLoop();
  ASSERT_EQ(State(), DataplaneState::kApplying);
  fake_->Disconnect(/*wipe=*/true);  // VPP restarted under the batch
  worker_->RunAll();
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  EXPECT_FALSE(agent_->Ready());
  EXPECT_EQ(Stats().losses, 1u);
  EXPECT_EQ(agent_->loop().NextTimerTime(), clock_.Now() + milliseconds(200));
  Advance(milliseconds(199));
  EXPECT_EQ(State(), DataplaneState::kDisconnected) << "waits for the backoff";
  EXPECT_EQ(fake_->connects(), 1u);
  Advance(milliseconds(1));
  EXPECT_EQ(fake_->connects(), 2u);
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), (std::map<net::IpPrefix, net::Route>{
                              {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")},
                              {P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}))
      << "the wiped table is replayed in full";
  EXPECT_TRUE(Status().in_sync);
  EXPECT_TRUE(agent_->Ready());
  EXPECT_EQ(agent_->metrics().dataplane_reconnects.load(), 1u);
}

TEST_F(AgentLifecycleTest, DataplaneLostDuringAResyncDump) {
  StartAgent();
  SnapshotOneRoute();
  Advance(seconds(89));
  AdvanceHeld(seconds(1));  // the resync timer fires; its dump is held
  ASSERT_EQ(State(), DataplaneState::kDumping);
  fake_->Disconnect(/*wipe=*/true);
  worker_->RunAll();
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  Advance(milliseconds(200));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), kOneRoute);
  EXPECT_EQ(Stats().losses, 1u);
}

TEST_F(AgentLifecycleTest, DataplaneLostDuringTheConnectDumpRetries) {
  StartAgent();
  fake_->FailDumps(absl::UnavailableError("socket closed"));
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  EXPECT_EQ(Stats().connect_failures, 1u);
  EXPECT_TRUE(Programmed().empty());
  Advance(milliseconds(200));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), kOneRoute);
}

TEST_F(AgentLifecycleTest, DataplaneLostDuringAProbe) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  AdvanceHeld(seconds(1));
  ASSERT_EQ(State(), DataplaneState::kProbing);
  fake_->Disconnect(/*wipe=*/true);
  worker_->RunAll();
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  EXPECT_FALSE(Status().dataplane_connected);
  Advance(milliseconds(200));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), kOneRoute) << "a restart noticed by the probe is replayed";
}

TEST_F(AgentLifecycleTest, AProbeErrorOtherThanUnavailableKeepsTheConnection) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  fake_->FailProbes(absl::InternalError("odd reply"));
  Advance(seconds(3));
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(fake_->connects(), 1u);
  EXPECT_GE(fake_->probes(), 3u);
}

TEST_F(AgentLifecycleTest, EtcdListingArrivingMidResyncWaitsForTheDump) {
  StartAgent();
  Snapshot({BlockKv("10.244.2.0/26", "host-b"), BlockKv("10.244.4.0/26", "host-b"),
            PeerKv("host-b", "10.99.0.2")});
  Settle();
  ASSERT_EQ(Programmed().size(), 2u);
  Advance(seconds(89));
  AdvanceHeld(seconds(1));
  ASSERT_EQ(State(), DataplaneState::kDumping);
  // The watch was compacted away: a new listing, where 10.244.4.0/26 is gone and
  // 10.244.3.0/26 is new.
  Snapshot({BlockKv("10.244.2.0/26", "host-b"), BlockKv("10.244.3.0/26", "host-b"),
            PeerKv("host-b", "10.99.0.2")});
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kDumping) << "no batch while the dump is in flight";
  EXPECT_EQ(worker_->pending(), 1u);
  fake_->DeleteRouteBehindOurBack(P("10.244.2.0/26"));  // drift the dump must see
  Settle();
  EXPECT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), (std::map<net::IpPrefix, net::Route>{
                              {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")},
                              {P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}));
  EXPECT_EQ(Status().reconciler.drift_repaired, 1u);
  EXPECT_EQ(agent_->metrics().resyncs.load(), 1u);
  EXPECT_TRUE(Status().in_sync);
}

TEST_F(AgentLifecycleTest, AListingInPagesProgramsAsItArrivesAndDeletesOnlyOnceComplete) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  ASSERT_EQ(Programmed().size(), 1u);
  // A re-list (the watch was compacted away) in three pages: 10.244.2.0/26 is gone,
  // 10.244.3.0/26 is new.
  ListingPage({PeerKv("host-b", "10.99.0.2")}, /*first=*/true, /*last=*/false);
  ListingPage({BlockKv("10.244.3.0/26", "host-b")}, /*first=*/false, /*last=*/false);
  Settle();
  EXPECT_EQ(Programmed(), (std::map<net::IpPrefix, net::Route>{
                              {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")},
                              {P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}))
      << "the new block goes out at once, the old one stays until the listing is complete";
  ListingPage({}, /*first=*/false, /*last=*/true);
  Settle();
  EXPECT_EQ(
      Programmed(),
      (std::map<net::IpPrefix, net::Route>{{P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}));
  EXPECT_EQ(agent_->metrics().etcd_snapshots.load(), 2u);
}

TEST_F(AgentLifecycleTest, AListingsKeyCountSizesTheTablesAndAWildOneIsBounded) {
  StartAgent();
  // etcd's count comes on each prefix's first page: a plain one for the peers, then one no table
  // could hold for the blocks. The agent reserves within its bound and carries on.
  auto page = [&](std::vector<datastore::KeyValue> kvs, bool first, bool last, int64_t keys) {
    ds_->sink.on_connection(true, "");
    ds_->sink.on_listing_page({std::move(kvs), ds_->revision, first, last, keys});
  };
  page({PeerKv("host-b", "10.99.0.2")}, /*first=*/true, /*last=*/false, 3);
  page({BlockKv("10.244.2.0/26", "host-b")}, /*first=*/false, /*last=*/false,
       std::numeric_limits<int64_t>::max());
  page({BlockKv("10.244.3.0/26", "host-b")}, /*first=*/false, /*last=*/false, 0);
  page({}, /*first=*/false, /*last=*/true, 0);
  Settle();
  EXPECT_EQ(Programmed(), (std::map<net::IpPrefix, net::Route>{
                              {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")},
                              {P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}));
  EXPECT_EQ(Status().blocks, 2u);
}

TEST_F(AgentLifecycleTest, AMalformedBlockInAListingIsCountedAndTheRestIsProgrammed) {
  StartAgent();
  // Blocks are decoded before the loop sees the page; a bad one must still be refused there.
  Snapshot({Kv(calico::BlockKey(P("10.244.9.0/26")), "{not json"),
            BlockKv("10.244.2.0/26", "host-b"), PeerKv("host-b", "10.99.0.2")});
  Settle();
  EXPECT_EQ(agent_->metrics().parse_errors.load(), 1u);
  EXPECT_EQ(
      Programmed(),
      (std::map<net::IpPrefix, net::Route>{{P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")}}));
  EXPECT_EQ(Status().blocks, 1u);
}

TEST_F(AgentLifecycleTest, AListingThatBreaksMidwayRemovesNothing) {
  StartAgent();
  // The very first listing breaks after its first page: no route may be removed, and the
  // datastore does not count as synced.
  ListingPage({PeerKv("host-b", "10.99.0.2")}, /*first=*/true, /*last=*/false);
  Settle();
  EXPECT_FALSE(Status().datastore_synced);
  SnapshotOneRoute();
  Settle();
  ASSERT_EQ(Programmed().size(), 1u);
  // A re-list breaks after a page without the block; the next one completes with it.
  ListingPage({PeerKv("host-b", "10.99.0.2")}, /*first=*/true, /*last=*/false);
  Settle();
  ASSERT_EQ(Programmed().size(), 1u);
  ListingPage({BlockKv("10.244.2.0/26", "host-b"), PeerKv("host-b", "10.99.0.2")},
              /*first=*/true, /*last=*/true);
  Settle();
  EXPECT_EQ(
      Programmed(),
      (std::map<net::IpPrefix, net::Route>{{P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")}}));
  EXPECT_EQ(Status().reconciler.deletes, 0u);
  EXPECT_TRUE(Status().in_sync);
}

TEST_F(AgentLifecycleTest, ResyncDueDuringABatchRunsRightAfterIt) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  Advance(seconds(89));
  PutBlock("10.244.3.0/26", "host-b");
  RunLoop();
  ASSERT_EQ(State(), DataplaneState::kApplying);
  AdvanceHeld(seconds(1));  // the resync timer fires with the batch in flight
  EXPECT_EQ(State(), DataplaneState::kApplying);
  EXPECT_EQ(worker_->pending(), 1u);
  size_t dumps = fake_->dumps();
  worker_->RunNext();
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kDumping) << "the postponed resync goes next";
  Settle();
  EXPECT_EQ(fake_->dumps(), dumps + 1);
  EXPECT_EQ(State(), DataplaneState::kIdle);
}

TEST_F(AgentLifecycleTest, ReconnectBackoffGrowsToItsMaxAndResetsOnceConnected) {
  StartAgent();
  fake_->RefuseConnect(true);
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(Stats().connect_failures, 1u);
  std::vector<int64_t> delays;
  for (int i = 0; i < 5; ++i) {
    delays.push_back(NextTimerInMs());
    uint64_t failures = Stats().connect_failures;
    Advance(milliseconds(NextTimerInMs() - 1));
    EXPECT_EQ(Stats().connect_failures, failures) << "no attempt before the backoff ends";
    Advance(milliseconds(1));
    EXPECT_EQ(Stats().connect_failures, failures + 1);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{200, 400, 800, 1000, 1000}));
  fake_->RefuseConnect(false);
  Advance(seconds(1));
  ASSERT_EQ(State(), DataplaneState::kIdle);
  EXPECT_EQ(Programmed(), kOneRoute);
  // Connected: the next loss starts again from the initial delay.
  fake_->Disconnect(/*wipe=*/false);
  for (int i = 0; i < 200 && State() != DataplaneState::kDisconnected; ++i) {
    Advance(milliseconds(10));  // until the probe notices
  }
  ASSERT_EQ(State(), DataplaneState::kDisconnected);
  EXPECT_EQ(Stats().losses, 1u);
  EXPECT_EQ(NextTimerInMs(), 200);
}

TEST_F(AgentLifecycleTest, BatchResultArrivingAfterTheConnectionWasLostIsDropped) {
  StartAgent();
  SnapshotOneRoute();
  Settle();
  PutBlock("10.244.3.0/26", "host-b");
  RunLoop();
  ASSERT_EQ(State(), DataplaneState::kApplying);
  // The dataplane does not answer: after the call timeout the connection counts as lost, and
  // the reconnect queues behind the hung call.
  AdvanceHeld(seconds(5));
  EXPECT_EQ(Stats().call_timeouts, 1u);
  EXPECT_EQ(State(), DataplaneState::kDisconnected);
  AdvanceHeld(milliseconds(200));
  EXPECT_EQ(State(), DataplaneState::kConnecting);
  EXPECT_EQ(worker_->pending(), 2u) << "the hung batch, then the reconnect";
  // The hung call finally returns; its result belongs to the lost connection.
  ASSERT_TRUE(worker_->RunNext());
  RunLoop();
  EXPECT_EQ(Stats().stale_completions, 1u);
  EXPECT_EQ(State(), DataplaneState::kConnecting) << "a stale result changes nothing";
  ASSERT_TRUE(worker_->RunNext());
  RunLoop();
  EXPECT_EQ(State(), DataplaneState::kIdle);
  Settle();
  EXPECT_EQ(Programmed(), (std::map<net::IpPrefix, net::Route>{
                              {P("10.244.2.0/26"), R("10.244.2.0/26", "10.99.0.2")},
                              {P("10.244.3.0/26"), R("10.244.3.0/26", "10.99.0.2")}}));
  EXPECT_TRUE(Status().in_sync);
}

TEST_F(AgentLifecycleTest, ForeignRouteIsAConflictUntilItGoes) {
  foreign_ = {R("10.244.2.0/26", "192.0.2.1")};  // e.g. an operator's `proto static` route
  StartAgent();
  SnapshotOneRoute();
  Settle();
  EXPECT_TRUE(Programmed().empty());
  EXPECT_EQ(fake_->ForeignRoutes().at(P("10.244.2.0/26")).gateway, A("192.0.2.1"))
      << "the foreign route is left alone";
  auto s = Status();
  EXPECT_EQ(s.routes_conflicting, 1u);
  EXPECT_EQ(s.routes_failing, 0u) << "a conflict is not a failure";
  ASSERT_EQ(s.routes.size(), 1u);
  EXPECT_EQ(s.routes[0].state, "conflict");
  EXPECT_TRUE(agent_->Ready()) << "everything that can be programmed is";
  EXPECT_NE(s.ToJson().find(R"("routesConflicting": 1)"), std::string::npos);
  EXPECT_NE(s.ToJson().find(R"("state": "conflict")"), std::string::npos);
  std::string metrics = agent_->RenderMetricsFor(s);
  EXPECT_NE(metrics.find("vcra_routes_conflicting 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(op="upsert",result="conflict")"), std::string::npos) << metrics;

  // Retried with the per-prefix backoff (1 s, 2 s, 4 s), logged and recorded once.
  Advance(seconds(7));
  EXPECT_EQ(Status().reconciler.ops_conflicting, 4u);
  EXPECT_EQ(Status().reconciler.ops_failed, 0u);
  size_t recorded = 0;
  for (const auto& e : Status().last_errors) recorded += e.starts_with("conflict ");
  EXPECT_EQ(recorded, 1u);

  // The operator removes their route: ours goes in at the next retry (8 s later).
  fake_->RemoveForeignRoute(P("10.244.2.0/26"));
  Advance(seconds(8));
  EXPECT_EQ(Programmed(), kOneRoute);
  s = Status();
  EXPECT_EQ(s.routes_conflicting, 0u);
  EXPECT_EQ(s.routes[0].state, "programmed");
  EXPECT_TRUE(s.in_sync);
}

TEST_F(AgentLifecycleTest, RefusedForGoodStopsWithTheReason) {
  StartAgent();
  fake_->FailDumps(absl::FailedPreconditionError("VPP lacks ip_route_add_del_v2"));
  Settle();
  EXPECT_EQ(State(), DataplaneState::kFailed);
  EXPECT_TRUE(agent_->loop().stopping());
  EXPECT_TRUE(absl::IsFailedPrecondition(agent_->fatal_status()));
}

// The start-up's progress: a log line every progress_log_interval while etcd is read and while
// the routes go in (so a long listing or a slow dataplane shows), with the rate and the time
// left, the same figures in /status, and silence once the first programming is done.
TEST_F(AgentLifecycleTest, InitialSyncLogsItsProgressAtASteadyRateUntilDone) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  sink->set_pattern("%v");
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  auto old_level = logger->level();
  logger->set_level(spdlog::level::info);
  auto progress_lines = [&] {
    std::vector<std::string> lines;
    std::istringstream in(log.str());
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("initial sync:")) lines.push_back(line);
    return lines;
  };

  AgentConfig config = Config();
  config.batch_size = 10;
  config.progress_log_interval = seconds(2);
  StartAgent(config, /*use_default=*/false);
  Settle();  // connected and dumped; etcd has not answered yet
  EXPECT_EQ(Status().progress.phase, "listing");
  Advance(seconds(2));
  ASSERT_EQ(progress_lines().size(), 1u) << log.str();
  EXPECT_NE(progress_lines()[0].find("listing after 2.0 s: 0 blocks"), std::string::npos)
      << progress_lines()[0];

  std::vector<datastore::KeyValue> kvs = {PeerKv("host-b", "10.99.0.2")};
  std::vector<std::string> cidrs;
  for (int i = 0; i < 30; ++i) cidrs.push_back("10.244." + std::to_string(i) + ".0/26");
  for (const auto& cidr : cidrs) kvs.push_back(BlockKv(cidr.c_str(), "host-b"));
  Snapshot(std::move(kvs));
  RunLoop();
  ASSERT_EQ(worker_->pending(), 1u) << "the first batch of 10";
  worker_->RunAll();
  RunLoop();  // 10 programmed, the second batch goes out and is held
  ASSERT_EQ(worker_->pending(), 1u);
  AdvanceHeld(seconds(2));  // 2 s after the listing: 10 routes in 2 s, 20 left
  auto p = Status().progress;
  EXPECT_EQ(p.phase, "programming");
  EXPECT_EQ(p.blocks, 30u);
  EXPECT_EQ(p.routes_calculated, 30u);
  EXPECT_EQ(p.routes_desired, 30u);
  EXPECT_EQ(p.routes_programmed, 10u);
  EXPECT_DOUBLE_EQ(p.rate_per_second, 5.0);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 4.0);
  EXPECT_DOUBLE_EQ(p.elapsed_seconds, 4.0);
  ASSERT_EQ(progress_lines().size(), 2u) << log.str();
  EXPECT_NE(progress_lines()[1].find("programming after 4.0 s: 30 blocks, 30 routes calculated, "
                                     "10/30 programmed, 5 routes/s, about 4 s left"),
            std::string::npos)
      << progress_lines()[1];
  auto json = nlohmann::json::parse(Status().ToJson());
  EXPECT_EQ(json["progress"]["phase"], "programming");
  EXPECT_EQ(json["progress"]["etaSeconds"], 4.0);
  EXPECT_FALSE(json["ready"]);

  Settle();
  EXPECT_EQ(Programmed().size(), 30u);
  EXPECT_TRUE(agent_->Ready());
  EXPECT_EQ(Status().progress.phase, "done");
  EXPECT_TRUE(Status().ready);
  Advance(seconds(20));
  EXPECT_EQ(progress_lines().size(), 2u) << "quiet once the first programming is done";
  EXPECT_NE(agent_->RenderMetrics().find("vcra_ready 1\n"), std::string::npos);

  logger->set_level(old_level);
  logger->sinks().pop_back();
}

// Free heap pages go back to the system once the first listing is in, then every
// memory_trim_interval while etcd changes arrive, and never while nothing happens (an idle agent
// frees nothing, and a trim is not free).
TEST_F(AgentLifecycleTest, FreeMemoryIsReleasedAfterTheListingAndPeriodicallyWhileChangesArrive) {
  AgentConfig config = Config();
  config.memory_trim_interval = seconds(30);
  StartAgent(config, /*use_default=*/false);
  Settle();
  SnapshotOneRoute();
  Settle();
  EXPECT_EQ(memory_releases_, 1) << "the listing's transient memory";
  Advance(seconds(30));
  EXPECT_EQ(memory_releases_, 2) << "the listing's events count as changes once";
  Advance(seconds(90));
  EXPECT_EQ(memory_releases_, 2) << "no change, no trim";
  PutBlock("10.244.3.0/26", "host-b");
  PutBlock("10.244.4.0/26", "host-b");
  Advance(seconds(29));
  EXPECT_EQ(memory_releases_, 2) << "not before the interval";
  Advance(seconds(1));
  EXPECT_EQ(memory_releases_, 3);
  Advance(seconds(60));
  EXPECT_EQ(memory_releases_, 3);
  EXPECT_EQ(Programmed().size(), 3u);

  // A listing in pages hands memory back after each page but the last, so that it costs about
  // one page at a time.
  ListingPage({PeerKv("host-b", "10.99.0.2")}, /*first=*/true, /*last=*/false);
  ListingPage({BlockKv("10.244.2.0/26", "host-b")}, /*first=*/false, /*last=*/false);
  ListingPage({}, /*first=*/false, /*last=*/true);
  Settle();
  EXPECT_EQ(memory_releases_, 5);
}

}  // namespace
}  // namespace vcra::agent
