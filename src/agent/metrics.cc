#include "agent/metrics.h"

#include <fmt/format.h>

#include <functional>
#include <string_view>

namespace vcra::agent {
namespace {

// The values the agent reads from its loop thread at scrape time. Most are levels (gauges); a
// running count among them is exported as a counter with Prometheus' `_total` suffix, so that
// rate() and increase() apply to it (promtool's lint asks for both).
struct SampleDescription {
  std::string_view help;
  bool cumulative = false;
};

const SampleDescription& Describe(const std::string& name) {
  static const std::map<std::string, SampleDescription, std::less<>> kKnown = {
      {"vcra_routes_desired", {"Routes the etcd data implies for this host."}},
      {"vcra_routes_programmed", {"Routes the dataplane holds as desired."}},
      {"vcra_routes_pending", {"Prefixes waiting for their host's peer address (no route yet)."}},
      {"vcra_routes_failing", {"Routes whose last dataplane operation failed (retried)."}},
      {"vcra_routes_conflicting",
       {"Prefixes held by a route that is not the agent's (left alone; ours not installed)."}},
      {"vcra_blocks", {"IPAM blocks known from etcd."}},
      {"vcra_etcd_connected", {"1 while the etcd watch is established."}},
      {"vcra_dataplane_connected", {"1 while the dataplane connection is up."}},
      {"vcra_in_sync", {"1 when the dataplane matches the desired state."}},
      {"vcra_ready",
       {"1 when /readyz answers ready: etcd listed and connected, dataplane connected, first "
        "programming done."}},
      {"vcra_etcd_revision", {"etcd revision of the last change applied."}},
      {"vcra_drift_repaired",
       {"Differences found by dataplane dumps (routes changed behind the agent's back) and "
        "repaired.",
        /*cumulative=*/true}},
  };
  static const SampleDescription kUnknown{"Agent state read at scrape time."};
  auto it = kKnown.find(name);
  return it == kKnown.end() ? kUnknown : it->second;
}

}  // namespace

void LatencyHistogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

double LatencyHistogram::Quantile(double q) const {
  uint64_t total = count_.load();
  if (total == 0) return 0;
  uint64_t target = static_cast<uint64_t>(q * static_cast<double>(total));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    seen += buckets_[i].load();
    if (seen > target) return kBounds[i];
  }
  return kBounds.back();
}

std::string LatencyHistogram::Render(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load();
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], cumulative);
  }
  cumulative += buckets_[kBounds.size()].load();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  out +=
      fmt::format("{}_sum {}\n{}_count {}\n", name, sum_micros_.load() / 1e6, name, count_.load());
  return out;
}

std::string Metrics::Render(const std::map<std::string, double>& gauges,
                            const std::map<std::string, uint64_t>& op_counts) const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  counter("vcra_etcd_events_total", "etcd key changes received.", etcd_events.load());
  counter("vcra_etcd_snapshots_total", "Complete etcd listings applied (start and re-lists).",
          etcd_snapshots.load());
  counter("vcra_etcd_reconnects_total", "Times the etcd watch was lost.", etcd_reconnects.load());
  counter("vcra_parse_errors_total", "etcd values or keys rejected as malformed.",
          parse_errors.load());
  counter("vcra_dataplane_reconnects_total", "Times the dataplane connection was re-established.",
          dataplane_reconnects.load());
  counter("vcra_resyncs_total", "Full dataplane dumps compared with the desired state.",
          resyncs.load());
  counter("vcra_peer_publish_errors_total", "Failed writes of this host's peer address.",
          peer_publish_errors.load());
  out +=
      "# HELP vcra_dataplane_ops_total Dataplane route operations by type and result.\n"
      "# TYPE vcra_dataplane_ops_total counter\n";
  for (const auto& [labels, v] : op_counts)
    out += fmt::format("vcra_dataplane_ops_total{{{}}} {}\n", labels, v);
  for (const auto& [name, v] : gauges) {
    const SampleDescription& d = Describe(name);
    std::string exported = d.cumulative ? name + "_total" : name;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", exported, d.help, exported,
                       d.cumulative ? "counter" : "gauge", exported, v);
  }
  out += event_to_route.Render(
      "vcra_event_to_route_seconds",
      "Time from an etcd event to its route being programmed (after the initial sync).");
  return out;
}

}  // namespace vcra::agent
