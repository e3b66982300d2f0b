// The metrics-only listener (--metrics-listen) against a running agent (real etcd, fake
// dataplane): /metrics and the probes are served, /status and anything else are not, hostile
// requests are refused, and the full endpoint keeps serving /status beside it.
#include <httplib.h>

#include "agent/http_server.h"
#include "dataplane/fake_dataplane.h"
#include "tests/integration/agent_harness.h"

namespace vcra {
namespace {

class HttpEndpointTest : public testing::AgentHarness {
 protected:
  void StartAgent() {
    AgentHarness::StartAgent(Config(), std::make_unique<dataplane::FakeDataplane>());
  }
};

int StatusOf(httplib::Client& client, const char* path) {
  auto res = client.Get(path);
  return res ? res->status : -1;
}

TEST_F(HttpEndpointTest, MetricsListenerServesMetricsAndProbesButNeverStatus) {
  PutPeer("host-b", "10.99.0.2");
  PutBlock("10.244.2.0/26", "host-b");
  StartAgent();
  agent::HttpServer full(*agent_, agent::HttpServer::Endpoints::kAll);
  agent::HttpServer metrics_only(*agent_, agent::HttpServer::Endpoints::kMetricsAndProbes);
  ASSERT_TRUE(full.Start("127.0.0.1:0").ok());
  ASSERT_TRUE(metrics_only.Start("127.0.0.1:0").ok());
  ASSERT_NE(full.port(), metrics_only.port());
  ASSERT_TRUE(WaitReady());
  httplib::Client scraper("127.0.0.1", metrics_only.port());
  scraper.set_read_timeout(5, 0);
  httplib::Client local("127.0.0.1", full.port());
  local.set_read_timeout(5, 0);

  auto metrics = scraper.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("vcra_routes_programmed 1\n"), std::string::npos) << metrics->body;
  EXPECT_EQ(StatusOf(scraper, "/healthz"), 200);
  EXPECT_EQ(StatusOf(scraper, "/readyz"), 200);
  EXPECT_EQ(StatusOf(scraper, "/status"), 404);
  EXPECT_EQ(StatusOf(scraper, "/status?format=text"), 404);
  EXPECT_EQ(StatusOf(scraper, "/../status"), 404);
  auto post = scraper.Post("/metrics", std::string(100000, 'x'), "text/plain");
  ASSERT_TRUE(post);
  EXPECT_GE(post->status, 400);
  EXPECT_EQ(StatusOf(scraper, "/healthz"), 200) << "still serving";
  EXPECT_EQ(StatusOf(local, "/status"), 200) << "the full endpoint still has /status";
  metrics_only.Stop();
  full.Stop();
}

}  // namespace
}  // namespace vcra
