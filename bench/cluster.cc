#include "bench/cluster.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "calico/model.h"

namespace vcra::bench {

std::string HostName(int k) { return fmt::format("bench-host-{}", k); }
net::IpAddress PeerAddress(int k) { return net::IpAddress::V4(kPeerBase + 1 + k); }
net::IpPrefix BlockCidr(int index) {
  return net::IpPrefix(net::IpAddress::V4(kBlockBase + 64u * static_cast<uint32_t>(index)), 26);
}

bool BlockState::HasBorrowed() const {
  return std::any_of(allocations.begin(), allocations.end(),
                     [&](const auto& a) { return a.second != host; });
}

Cluster Cluster::Make(int hosts, int blocks) {
  Cluster c;
  c.hosts = hosts;
  for (int i = 0; i < blocks; ++i) {
    BlockState b;
    b.host = i % hosts;
    // A few workloads of the block's own host (no routes, but realistic JSON to decode).
    for (uint32_t ord = 0; ord < static_cast<uint32_t>(1 + i % 8); ++ord)
      b.allocations.emplace_back(ord, b.host);
    // About 3 borrowed IPs per 100 blocks: an IP of this block used by another host.
    int r = i % 100;
    if (hosts > 1 && (r == 17 || r == 50 || r == 83)) {
      int borrower = (b.host + 1 + (i / 100) % (hosts - 1)) % hosts;
      if (borrower != b.host) b.allocations.emplace_back(63, borrower);
    }
    c.blocks[i] = std::move(b);
  }
  return c;
}

std::string Cluster::Encode(int index) const {
  const BlockState& s = blocks.at(index);
  calico::IpamBlock b;
  b.cidr = BlockCidr(index);
  b.affinity_type = calico::AffinityType::kHost;
  b.affinity_name = HostName(s.host);
  b.sequence_number = 1772359200000000007ull + static_cast<uint64_t>(index);
  for (const auto& [ord, owner] : s.allocations)
    b.allocations.push_back({ord, b.cidr.address().Plus(ord), HostName(owner)});
  return calico::EncodeBlock(b);
}

RouteMap Cluster::ExpectedRoutes() const {
  RouteMap out;
  for (const auto& [index, b] : blocks) {
    net::IpPrefix cidr = BlockCidr(index);
    if (b.host != 0) out[cidr] = PeerAddress(b.host);
    for (const auto& [ord, owner] : b.allocations) {
      if (owner != b.host && owner != 0)
        out[net::IpPrefix::Host(cidr.address().Plus(ord))] = PeerAddress(owner);
    }
  }
  return out;
}

size_t Cluster::MeanBlockBytes() const {
  size_t n = 0, bytes = 0;
  for (const auto& [index, b] : blocks) {
    if (n++ == 1000) break;
    bytes += Encode(index).size();
  }
  return n ? bytes / std::min<size_t>(n, 1000) : 0;
}

size_t Cluster::BorrowedCount() const {
  size_t n = 0;
  for (const auto& [index, b] : blocks)
    for (const auto& [ord, owner] : b.allocations) n += owner != b.host;
  return n;
}

// Writes `ops` with `writers` threads, each with its own client.
Status WriteAll(const datastore::EtcdConfig& config, const std::vector<EtcdOp>& ops, int writers) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    auto client = datastore::EtcdClient::Create(config);
    if (!client.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = client.status();
      return;
    }
    while (!g_interrupted) {
      size_t i = next.fetch_add(1);
      if (i >= ops.size()) return;
      const auto& [key, value] = ops[i];
      Status st = value ? (*client)->Put(key, *value).status() : (*client)->Delete(key).status();
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, writers); ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (g_interrupted) return AbortedStatus("writing etcd");
  return first_error;
}

// Block moves (an empty block released by one host and claimed by another, so its pods are the
// new host's) and block creations, alternating; never involving host 0 (the agent's own), so
// each update changes exactly one route.
std::vector<Update> MakeUpdates(const Cluster& cluster, int count, int first_new_index,
                                uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Update> out;
  std::map<int, int> host_now;  // block -> host after the updates so far
  int next_new = first_new_index;
  int original_blocks = first_new_index;
  auto other_host = [&](int not_this) {
    std::uniform_int_distribution<int> pick(1, cluster.hosts - 1);
    for (int tries = 0; tries < 1000; ++tries) {
      int h = pick(rng);
      if (h != not_this) return h;
    }
    return -1;
  };
  for (int u = 0; u < count; ++u) {
    Update up;
    bool moved = false;
    if (u % 2 == 0 && cluster.hosts >= 3 && original_blocks > 0) {
      std::uniform_int_distribution<int> pick(0, original_blocks - 1);
      for (int tries = 0; tries < 1000 && !moved; ++tries) {
        int b = pick(rng);
        const BlockState& s = cluster.blocks.at(b);
        if (s.host == 0 || s.HasBorrowed()) continue;
        int current = host_now.contains(b) ? host_now[b] : s.host;
        int h = other_host(current);
        if (h <= 0) continue;
        up.index = b;
        up.state.host = h;
        for (const auto& [ord, owner] : s.allocations) up.state.allocations.emplace_back(ord, h);
        host_now[b] = h;
        moved = true;
      }
    }
    if (!moved) {
      int h = other_host(0);
      if (h <= 0) h = 1;
      up.create = true;
      up.index = next_new++;
      up.state.host = h;
      up.state.allocations = {{0, h}};
    }
    up.expect = net::Route{BlockCidr(up.index), PeerAddress(up.state.host)};
    out.push_back(std::move(up));
  }
  return out;
}

}  // namespace vcra::bench
