// The benchmark's cluster: its addresses, the benchmark's model of what is in etcd, the routes
// the agent of host 0 must program, the stream of updates, and writing all of it to etcd.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
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
struct Cluster {
  int hosts = 0;
  std::map<int, BlockState> blocks;  // block index -> state

  static Cluster Make(int hosts, int blocks);
  // The block's etcd value.
  std::string Encode(int index) const;
  RouteMap ExpectedRoutes() const;
  // Mean size of a block's etcd value (what the agent reads), over the first 1000.
  size_t MeanBlockBytes() const;
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

// Block moves (an empty block released by one host and claimed by another, so its pods are the
// new host's) and block creations, alternating; never involving host 0 (the agent's own), so
// each update changes exactly one route.
std::vector<Update> MakeUpdates(const Cluster& cluster, int count, int first_new_index,
                                uint64_t seed);

}  // namespace vcra::bench
