#include "agent/metrics.h"

#include <gtest/gtest.h>

namespace vcra::agent {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  Metrics m;
  m.etcd_events += 3;
  m.parse_errors += 1;
  m.event_to_route.Observe(0.003);
  m.event_to_route.Observe(0.2);
  std::string text = m.Render({{"vcra_routes_desired", 7}}, {{"op=\"upsert\",result=\"ok\"", 5}});
  EXPECT_NE(text.find("vcra_etcd_events_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("vcra_parse_errors_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("vcra_routes_desired 7\n"), std::string::npos);
  EXPECT_NE(text.find("vcra_dataplane_ops_total{op=\"upsert\",result=\"ok\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("vcra_event_to_route_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("vcra_event_to_route_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("vcra_event_to_route_seconds_count 2\n"), std::string::npos);
}

// Every family has HELP and TYPE before its samples, and a cumulative value is a counter with
// the `_total` suffix (what `promtool check metrics` asks for; the namespace cluster test runs
// promtool itself on a live agent).
TEST(MetricsTest, EveryFamilyHasHelpAndTypeAndCountersEndInTotal) {
  Metrics m;
  std::string text = m.Render(
      {{"vcra_routes_desired", 1}, {"vcra_drift_repaired", 4}, {"vcra_some_future_gauge", 2}},
      {{"op=\"delete\",result=\"error\"", 1}});
  EXPECT_NE(text.find("# TYPE vcra_drift_repaired_total counter\nvcra_drift_repaired_total 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# HELP vcra_some_future_gauge "), std::string::npos) << text;
  std::string help_of;
  std::string type_of;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "last line unterminated";
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# HELP ", 0) == 0) {
      help_of = line.substr(7, line.find(' ', 7) - 7);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      type_of = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(type_of, help_of) << "TYPE without HELP: " << line;
      if (line.ends_with(" counter")) {
        EXPECT_TRUE(type_of.ends_with("_total")) << line;
      }
    } else {
      EXPECT_EQ(line.rfind(type_of, 0), 0u) << "sample outside its family: " << line;
    }
  }
}

TEST(MetricsTest, QuantileFromBuckets) {
  LatencyHistogram h;
  for (int i = 0; i < 99; ++i) h.Observe(0.0005);
  h.Observe(0.7);
  EXPECT_EQ(h.Quantile(0.5), 0.0005);
  EXPECT_EQ(h.Quantile(0.999), 1.0);
}

}  // namespace
}  // namespace vcra::agent
