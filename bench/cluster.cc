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

namespace {

// A fixed pseudo-random number for `index` and `salt` (the same cluster on every run).
uint64_t Mix(uint64_t index, uint64_t salt) {
  uint64_t x = index * 0x9E3779B97F4A7C15ull + salt * 0xBF58476D1CE4E5B9ull + 1;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 29);
}

// Pods of a block (its host's own workloads: no routes, but JSON to decode and hold).
uint32_t PodsInBlock(int index, BlockShape shape) {
  if (shape == BlockShape::kCompact) return static_cast<uint32_t>(1 + index % 8);
  return static_cast<uint32_t>(3 + Mix(index, 1) % 6);  // 3..8 pods: 1.5-2.9 KB, mean ~2.2 KB
}

constexpr uint64_t kSequenceBase = 1772359200000000007ull;

// One block as Calico v3's IPAM writes it for Kubernetes pods.
std::string EncodeRealistic(int index, const BlockState& s) {
  static const char* const kNamespaces[] = {"default", "kube-system", "payments", "web-frontend",
                                            "monitoring"};
  static const char* const kApps[] = {"nginx", "checkout", "redis-cache", "api-gateway",
                                      "prometheus-node"};
  net::IpPrefix cidr = BlockCidr(index);
  std::map<uint32_t, int> owner;  // ordinal -> host
  for (const auto& [ord, host] : s.allocations) owner[ord] = host;
  fmt::memory_buffer out;
  auto put = [&](fmt::string_view format, const auto&... args) {
    fmt::vformat_to(std::back_inserter(out), format, fmt::make_format_args(args...));
  };
  put(R"({{"cidr":"{}","affinity":"host:{}","allocations":[)", cidr.ToString(), HostName(s.host));
  int attr = 0;
  for (uint32_t ord = 0; ord < 64; ++ord) {
    if (ord) put(",");
    if (owner.contains(ord)) {
      put("{}", attr++);
    } else {
      put("null");
    }
  }
  put(R"(],"unallocated":[)");
  bool first = true;
  for (uint32_t ord = 0; ord < 64; ++ord) {
    if (owner.contains(ord)) continue;
    put("{}{}", first ? "" : ",", ord);
    first = false;
  }
  put(R"(],"attributes":[)");
  first = true;
  for (const auto& [ord, host] : owner) {
    uint64_t r = Mix(index * 64 + ord, 2);
    put(R"({}{{"handle_id":"k8s-pod-network.{:016x}{:016x}{:016x}{:016x}","secondary":{{)",
        first ? "" : ",", Mix(r, 3), Mix(r, 4), Mix(r, 5), Mix(r, 6));
    put(R"("namespace":"{}","node":"{}","pod":"{}-{:010x}-{:05x}",)", kNamespaces[r % 5],
        HostName(host), kApps[(r >> 8) % 5], Mix(r, 7) & 0xFFFFFFFFFFull, Mix(r, 8) & 0xFFFFF);
    put(R"("timestamp":"2026-03-01 10:{:02}:{:02}.{:09} +0000 UTC"}}}})", r % 60, (r >> 6) % 60,
        (r >> 12) % 1000000000);
    first = false;
  }
  put(R"(],"deleted":false,"sequenceNumber":{},"sequenceNumberForAllocation":{{)",
      kSequenceBase + static_cast<uint64_t>(index));
  first = true;
  for (const auto& [ord, host] : owner) {
    put(R"({}"{}":{})", first ? "" : ",", ord, kSequenceBase + static_cast<uint64_t>(index) + ord);
    first = false;
  }
  put(R"(}},"strictAffinity":false}})");
  return fmt::to_string(out);
}

}  // namespace

Cluster Cluster::Make(int hosts, int blocks, BlockShape shape) {
  Cluster c;
  c.hosts = hosts;
  c.shape = shape;
  for (int i = 0; i < blocks; ++i) {
    BlockState b;
    b.host = i % hosts;
    for (uint32_t ord = 0; ord < PodsInBlock(i, shape); ++ord)
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
  if (shape == BlockShape::kRealistic) return EncodeRealistic(index, s);
  calico::IpamBlock b;
  b.cidr = BlockCidr(index);
  b.affinity_type = calico::AffinityType::kHost;
  b.affinity_name = HostName(s.host);
  b.sequence_number = kSequenceBase + static_cast<uint64_t>(index);
  for (const auto& [ord, owner] : s.allocations)
    b.allocations.push_back({ord, b.cidr.address().Plus(ord), HostName(owner)});
  return calico::EncodeBlock(b);
}

RouteMap Cluster::ExpectedRoutesFor(int self) const {
  RouteMap out;
  for (const auto& [index, b] : blocks) {
    net::IpPrefix cidr = BlockCidr(index);
    if (b.host != self) out[cidr] = PeerAddress(b.host);
    for (const auto& [ord, owner] : b.allocations) {
      if (owner != b.host && owner != self)
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

size_t Cluster::MedianBlockBytes() const {
  std::vector<double> sizes;
  for (const auto& [index, b] : blocks) {
    if (sizes.size() == 1000) break;
    sizes.push_back(static_cast<double>(Encode(index).size()));
  }
  return static_cast<size_t>(Percentile(sizes, 0.5));
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
                                uint64_t seed, UpdateMix mix) {
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
    bool want_move = mix == UpdateMix::kMovesOnly || u % 2 == 0;
    if (want_move && cluster.hosts >= 3 && original_blocks > 0) {
      std::uniform_int_distribution<int> pick(0, original_blocks - 1);
      for (int tries = 0; tries < 1000 && !moved; ++tries) {
        int b = pick(rng);
        const BlockState& s = cluster.blocks.at(b);
        if (s.host == 0 || s.HasBorrowed()) continue;
        if (mix == UpdateMix::kMovesAndCreations && host_now.contains(b)) continue;
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

namespace vcra::bench {

OpenLoopWriters::OpenLoopWriters(const datastore::EtcdConfig& config, const Cluster& cluster,
                                 const std::vector<Update>& updates, double rate, int writers)
    : cluster_(cluster),
      updates_(updates),
      start_(Steady::now() + std::chrono::milliseconds(50)),
      interval_(1.0 / std::max(0.001, rate)),
      issued_(updates.size()),
      put_done_(updates.size()),
      done_(std::make_unique<std::atomic<bool>[]>(updates.size())) {
  for (int w = 0; w < std::clamp(writers, 1, 32); ++w) {
    threads_.emplace_back([this, config] {
      auto client = datastore::EtcdClient::Create(config);
      if (!client.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (error_.ok()) error_ = client.status();
        return;
      }
      Write(**client);
    });
  }
}

Steady::time_point OpenLoopWriters::end_of_schedule() const {
  return start_ + std::chrono::duration_cast<Steady::duration>(
                      interval_ * static_cast<double>(updates_.size()));
}

void OpenLoopWriters::Write(datastore::EtcdClient& client) {
  for (size_t i = next_++; i < updates_.size() && !stop_ && !Aborted(); i = next_++) {
    auto at =
        start_ + std::chrono::duration_cast<Steady::duration>(interval_ * static_cast<double>(i));
    if (at > Steady::now()) std::this_thread::sleep_until(at);
    const Update& up = updates_[i];
    issued_[i] = Steady::now();
    Status st =
        client.Put(calico::BlockKey(BlockCidr(up.index)), cluster_.Encode(up.index)).status();
    put_done_[i] = Steady::now();
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = st;
      return;
    }
    done_[i].store(true, std::memory_order_release);
  }
}

Status OpenLoopWriters::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void OpenLoopWriters::Stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace vcra::bench
