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

TEST(MetricsTest, QuantileFromBuckets) {
  LatencyHistogram h;
  for (int i = 0; i < 99; ++i) h.Observe(0.0005);
  h.Observe(0.7);
  EXPECT_EQ(h.Quantile(0.5), 0.0005);
  EXPECT_EQ(h.Quantile(0.999), 1.0);
}

}  // namespace
}  // namespace vcra::agent
