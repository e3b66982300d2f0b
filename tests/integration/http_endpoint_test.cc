// The agent's HTTP endpoints against a running agent (real etcd, fake dataplane):
// * the metrics-only listener (--metrics-listen): /metrics and the probes are served, /status
//   and anything else are not, hostile requests are refused, and the full endpoint keeps
//   serving /status beside it;
// * /status filters and pages, refuses bad parameters with a 400, and the status subcommand
//   (RunStatusCommand) asks for one page or follows them all.
#include <fmt/format.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

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

class StatusQueryHttpTest : public HttpEndpointTest {
 protected:
  // host-b: 12 blocks 10.244.{0..11}.0/26; host-c: 10.245.0.0/26 and 10.245.1.0/26; host-d:
  // one block and no address (pending).
  void StartWithTable() {
    PutPeer("host-b", "10.99.0.2");
    PutPeer("host-c", "10.99.0.3");
    for (int i = 0; i < 12; ++i) PutBlock(fmt::format("10.244.{}.0/26", i).c_str(), "host-b");
    PutBlock("10.245.0.0/26", "host-c");
    PutBlock("10.245.1.0/26", "host-c");
    PutBlock("10.246.0.0/26", "host-d");
    StartAgent();
    server_ = std::make_unique<agent::HttpServer>(*agent_, agent::HttpServer::Endpoints::kAll);
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    ASSERT_TRUE(WaitReady());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(5, 0);
  }
  void TearDown() override {
    server_.reset();  // before the agent it reads
    HttpEndpointTest::TearDown();
  }
  nlohmann::json GetJson(const std::string& path, int want_status = 200) {
    auto res = client_->Get(path);
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, want_status) << path << ": " << res->body;
    auto json = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(json.is_discarded()) << path << ": " << res->body;
    return json;
  }
  static std::vector<std::string> Dsts(const nlohmann::json& j) {
    std::vector<std::string> out;
    for (const auto& r : j["routes"]) out.push_back(r["dst"]);
    for (const auto& p : j["pending"]) out.push_back(p["dst"]);
    return out;
  }
  std::string RunStatus(agent::StatusQuery query, bool all, int want_code = 0) {
    agent::StatusCommand command;
    command.listen = fmt::format("127.0.0.1:{}", server_->port());
    command.query = query;
    command.all_pages = all;
    std::string out, err;
    EXPECT_EQ(agent::RunStatusCommand(command, out, err), want_code) << out << err;
    return out;
  }

  std::unique_ptr<agent::HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(StatusQueryHttpTest, FiltersPagesAndSummary) {
  StartWithTable();
  auto all = GetJson("/status");
  EXPECT_EQ(all["page"]["matching"], 15);
  EXPECT_EQ(all["page"]["returned"], 15);
  EXPECT_FALSE(all["page"].contains("nextAfter"));
  EXPECT_TRUE(all["ready"]);
  EXPECT_EQ(all["progress"]["phase"], "done");

  EXPECT_EQ(Dsts(GetJson("/status?node=host-c")),
            (std::vector<std::string>{"10.245.0.0/26", "10.245.1.0/26"}));
  EXPECT_EQ(GetJson("/status?node=host-c")["peers"].size(), 1u) << "the node's peer only";
  EXPECT_EQ(Dsts(GetJson("/status?state=pending")), (std::vector<std::string>{"10.246.0.0/26"}));
  EXPECT_EQ(GetJson("/status?state=failing,conflict")["page"]["matching"], 0);
  EXPECT_EQ(Dsts(GetJson("/status?prefix=10.244.8.0/22")),
            (std::vector<std::string>{"10.244.8.0/26", "10.244.9.0/26", "10.244.10.0/26",
                                      "10.244.11.0/26"}));
  auto summary = GetJson("/status?routes=0");
  EXPECT_TRUE(summary["routes"].empty());
  EXPECT_FALSE(summary.contains("page"));
  EXPECT_EQ(summary["routesDesired"], 14);

  // Pages of 4 until the cursor runs out: every entry once, in order.
  std::vector<std::string> paged;
  std::string path = "/status?limit=4";
  for (int page = 0; page < 10; ++page) {
    auto res = client_->Get(path);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    auto j = nlohmann::json::parse(res->body);
    for (const auto& d : Dsts(j)) paged.push_back(d);
    if (!j["page"].contains("nextAfter")) {
      EXPECT_FALSE(res->has_header("X-Vcra-Next-After"));
      break;
    }
    EXPECT_EQ(res->get_header_value("X-Vcra-Next-After"), j["page"]["nextAfter"]);
    path = "/status?limit=4&after=" + httplib::detail::encode_query_param(j["page"]["nextAfter"]);
  }
  EXPECT_EQ(paged, Dsts(all));
}

TEST_F(StatusQueryHttpTest, BadParametersAreA400ThatSaysWhy) {
  StartWithTable();
  for (const char* path : {"/status?limit=0", "/status?limit=100000000", "/status?limit=x",
                           "/status?state=lost", "/status?prefix=10.244.0.1/16",
                           "/status?prefix=%00", "/status?node=%FF%FE", "/status?after=::/129",
                           "/status?limit=1&limit=2", "/status?bogus=1", "/status?format=yaml"}) {
    auto j = GetJson(path, 400);
    EXPECT_TRUE(j.contains("error")) << path;
  }
  EXPECT_TRUE(GetJson("/status?node=" + std::string(300, 'a'), 400).contains("error"));
  EXPECT_EQ(GetJson("/status?state=programmed")["page"]["matching"], 14) << "still serving";
}

TEST_F(StatusQueryHttpTest, StatusSubcommandAsksForAPageOrFollowsThemAll) {
  StartWithTable();
  agent::StatusQuery by_node;
  by_node.node = "host-c";
  auto one = RunStatus(by_node, /*all=*/false);
  EXPECT_NE(one.find("ready"), std::string::npos) << one;
  EXPECT_NE(one.find("10.245.0.0/26"), std::string::npos) << one;
  EXPECT_NE(one.find("10.245.1.0/26"), std::string::npos) << one;
  EXPECT_EQ(one.find("10.244."), std::string::npos) << "host-b's routes are not asked for";
  EXPECT_NE(one.find("2 of 2 matching entries shown\n"), std::string::npos) << one;

  agent::StatusQuery paged;
  paged.limit = 5;
  auto first = RunStatus(paged, /*all=*/false);
  EXPECT_NE(first.find("5 of 15 matching entries shown; next page: --after 10.244.4.0/26"),
            std::string::npos)
      << first;
  auto everything = RunStatus(paged, /*all=*/true);
  for (int i = 0; i < 12; ++i) {
    std::string dst = fmt::format("  10.244.{}.0/26 ", i);
    EXPECT_NE(everything.find(dst), std::string::npos) << dst << everything;
    EXPECT_EQ(everything.find(dst), everything.rfind(dst)) << "listed once: " << dst;
  }
  EXPECT_NE(everything.find("10.246.0.0/26"), std::string::npos);
  EXPECT_EQ(everything.find("blocks,"), everything.rfind("blocks,")) << "one summary";

  agent::StatusQuery pending;
  pending.states = agent::kStatePending;
  auto waiting = RunStatus(pending, false);
  EXPECT_NE(waiting.find("pending: no address for host-d"), std::string::npos) << waiting;

  std::string out, err;
  agent::StatusCommand nobody;
  nobody.listen = "127.0.0.1:1";
  EXPECT_EQ(agent::RunStatusCommand(nobody, out, err), 1);
  EXPECT_NE(err.find("no agent answers"), std::string::npos) << err;
}

}  // namespace
}  // namespace vcra
