// The benchmark's cluster: its addresses, the benchmark's model of what is in etcd, the routes
// the agent of host 0 must program, the stream of updates, and writing all of it to etcd.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "common/status.h"
#include "datastore/etcd_client.h"
#include "net/ip.h"

namespace vcra::bench {

// Peers live on 10.255.0.0/16 (host k is 10.255.0.0 + k + 1; the agent's host is k = 0 with
// 10.255.0.1/16 on its uplink); blocks are /26s from 10.0.0.0 up to 10.254.255.255.
constexpr uint32_t kPeerBase = 0x0AFF0000;
constexpr uint32_t kBlockBase = 0x0A000000;
constexpr int kMaxBlockIndex = 255 * 1024;  // 10.0.0.0 - 10.254.255.255 in /26s

std::string HostName(int k);
net::IpAddress PeerAddress(int k);
net::IpPrefix BlockCidr(int index);

struct BlockState {
  int host = 0;
  std::vector<std::pair<uint32_t, int>> allocations;  // ordinal -> owning host
  bool HasBorrowed() const;
};

// The benchmark's model of what is in etcd, and the routes the agent of host 0 must program
// (a block of another host via that host; an IP owned by a node other than the block's host and
// other than us as a /32 via that node).
// compact: the agent's own encoder (calico::EncodeBlock: one attribute per owner node, ~0.9 KB).
// realistic: what Calico v3 writes for pods (an attribute per pod with handle_id
// "k8s-pod-network.<64 hex>" and secondary {namespace, node, pod, timestamp}, unallocated,
// sequenceNumberForAllocation, strictAffinity): 3 to 8 pods a block, 1.5-2.9 KB (3.2 KB with a
// borrowed IP), mean ~2.2 KB.
enum class BlockShape { kCompact, kRealistic };

struct Cluster {
  int hosts = 0;
  BlockShape shape = BlockShape::kCompact;
  std::map<int, BlockState> blocks;  // block index -> state

  static Cluster Make(int hosts, int blocks, BlockShape shape = BlockShape::kCompact);
  // The block's etcd value.
  std::string Encode(int index) const;
  // The routes the agent of host `self` must program.
  RouteMap ExpectedRoutesFor(int self) const;
  // ... of host 0, the agent of the single-agent runs.
  RouteMap ExpectedRoutes() const { return ExpectedRoutesFor(0); }
  // Mean size of a block's etcd value (what the agent reads), over the first 1000.
  size_t MeanBlockBytes() const;
  // Median size of a block's etcd value, over the first 1000.
  size_t MedianBlockBytes() const;
  size_t BorrowedCount() const;
};

// A key and its new value (nullopt: delete).
using EtcdOp = std::pair<std::string, std::optional<std::string>>;

// Writes `ops` with `writers` threads, each with its own client.
Status WriteAll(const datastore::EtcdConfig& config, const std::vector<EtcdOp>& ops, int writers);

// One update of the stream and what it must produce.
struct Update {
  int index = 0;
  bool create = false;
  BlockState state;
  net::Route expect;
};

enum class UpdateMix {
  // Block moves and creations, alternating; a block moves at most once, so every update has a
  // route of its own (the open-loop stream tells updates apart by their route).
  kMovesAndCreations,
  // Block moves only, any block any number of times: churn that does not grow the cluster.
  kMovesOnly,
};

// Block moves (an empty block released by one host and claimed by another, so its pods are the
// new host's) and block creations; never involving host 0 (the agent's own), so each update
// changes exactly one route.
std::vector<Update> MakeUpdates(const Cluster& cluster, int count, int first_new_index,
                                uint64_t seed, UpdateMix mix = UpdateMix::kMovesAndCreations);

// The writers of an open-loop stream: update i is Put at start + i / rate by one of `writers`
// threads (each with its own etcd client), whether or not earlier routes are visible yet.
class OpenLoopWriters {
 public:
  OpenLoopWriters(const datastore::EtcdConfig& config, const Cluster& cluster,
                  const std::vector<Update>& updates, double rate, int writers);
  ~OpenLoopWriters() { Stop(); }
  // True once update i's Put was started / has returned successfully.
  bool Started(size_t i) const { return i < next_.load(); }
  bool Written(size_t i) const { return done_[i].load(std::memory_order_acquire); }
  // Valid once Written(i).
  Steady::time_point issued(size_t i) const { return issued_[i]; }
  Steady::time_point put_done(size_t i) const { return put_done_[i]; }
  Steady::time_point end_of_schedule() const;
  // The first failed Put, if any.
  Status error();
  void Stop();

 private:
  void Write(datastore::EtcdClient& client);

  const Cluster& cluster_;
  const std::vector<Update>& updates_;
  Steady::time_point start_;
  std::chrono::duration<double> interval_;
  std::vector<Steady::time_point> issued_, put_done_;
  std::unique_ptr<std::atomic<bool>[]> done_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Status error_;
  std::vector<std::thread> threads_;
};

}  // namespace vcra::bench
