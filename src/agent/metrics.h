// Prometheus text exposition for the agent's counters, gauges and one latency histogram.
// Hand-written because Debian 12 packages no Prometheus client library for C++; the format is
// small (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Counters are atomics so any thread may bump them; gauges are set by the loop thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace vcra::agent {

class LatencyHistogram {
 public:
  // Bucket upper bounds in seconds.
  // From 100 µs: a single route change takes a few hundred µs end to end (docs/performance.md).
  static constexpr std::array<double, 15> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  void Observe(double seconds);
  std::string Render(const std::string& name, const std::string& help) const;
  uint64_t count() const { return count_.load(); }
  // Approximate quantile from the buckets (upper bound of the bucket holding it).
  double Quantile(double q) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

struct Metrics {
  std::atomic<uint64_t> etcd_events{0};
  std::atomic<uint64_t> etcd_snapshots{0};
  std::atomic<uint64_t> etcd_reconnects{0};
  std::atomic<uint64_t> parse_errors{0};
  std::atomic<uint64_t> dataplane_reconnects{0};
  std::atomic<uint64_t> resyncs{0};
  std::atomic<uint64_t> peer_publish_errors{0};
  LatencyHistogram event_to_route;

  // Rendered with gauges supplied by the caller (name -> value).
  std::string Render(const std::map<std::string, double>& gauges,
                     const std::map<std::string, uint64_t>& op_counts) const;
};

}  // namespace vcra::agent
