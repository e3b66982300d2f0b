// /status queries: the parameters as hostile input, and the selection (filters, pages, cursor)
// against a real RouteCalculator and RouteReconciler.
#include "agent/status_query.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "calico/model.h"

namespace vcra::agent {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

net::IpPrefix P(const std::string& s) { return *net::IpPrefix::Parse(s); }
net::IpAddress A(const std::string& s) { return *net::IpAddress::Parse(s); }

TEST(StatusQueryParseTest, DefaultsWithoutParameters) {
  auto q = ParseStatusQuery({});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->limit, kDefaultStatusPageSize) << "never the whole table by default";
  EXPECT_EQ(q->states, kAllStates);
  EXPECT_TRUE(q->routes);
  EXPECT_FALSE(q->text);
  EXPECT_EQ(q->ToQueryString(), "");
}

TEST(StatusQueryParseTest, EveryParameterAndItsQueryString) {
  auto q = ParseStatusQuery({{"node", "host-7"},
                             {"prefix", "10.244.0.0/16"},
                             {"state", "failing,conflict"},
                             {"limit", "20"},
                             {"after", "10.244.3.0/26"},
                             {"format", "text"}});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->node, "host-7");
  EXPECT_EQ(q->within, P("10.244.0.0/16"));
  EXPECT_EQ(q->states, kStateFailing | kStateConflict);
  EXPECT_EQ(q->limit, 20u);
  EXPECT_EQ(q->after, P("10.244.3.0/26"));
  EXPECT_TRUE(q->text);
  EXPECT_EQ(q->ToQueryString(),
            "node=host-7&prefix=10.244.0.0%2F16&state=failing,conflict&limit=20&after=10.244.3.0%"
            "2F26");
  auto summary = ParseStatusQuery({{"routes", "0"}});
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->routes);
  EXPECT_EQ(summary->ToQueryString(), "routes=0");
  auto v6 = ParseStatusQuery({{"prefix", "fd00:10::/64"}});
  ASSERT_TRUE(v6.ok()) << v6.status();
}

TEST(StatusQueryParseTest, HostileValuesAreRefusedWithTheParameterNamed) {
  const std::vector<std::pair<Params, std::string>> cases = {
      {{{"limit", "0"}}, "limit"},
      {{{"limit", "-1"}}, "limit"},
      {{{"limit", "10001"}}, "limit"},
      {{{"limit", "99999999999999999999999"}}, "limit"},
      {{{"limit", "12abc"}}, "limit"},
      {{{"limit", ""}}, "limit"},
      {{{"prefix", "10.244.1.5/16"}}, "prefix"},  // host bits: say so, do not guess
      {{{"prefix", "10.244.0.0/33"}}, "prefix"},
      {{{"prefix", "10.244.0.0"}}, "prefix"},
      {{{"prefix", "not-a-prefix"}}, "prefix"},
      {{{"after", "zzz/1"}}, "after"},
      {{{"state", "pending,bogus"}}, "state"},
      {{{"state", ""}}, "state"},
      {{{"state", "programmed,"}}, "state"},
      {{{"node", ""}}, "node"},
      {{{"node", "Host_With Spaces"}}, "node"},
      {{{"node", std::string("host\0x", 6)}}, "node"},
      {{{"node", std::string(300, 'a')}}, "node"},
      {{{"routes", "maybe"}}, "routes"},
      {{{"format", "xml"}}, "format"},
      {{{"limit", "5"}, {"limit", "6"}}, "limit"},
      {{{"sort", "desc"}}, "unknown parameter"},
  };
  for (const auto& [params, named] : cases) {
    auto q = ParseStatusQuery(params);
    ASSERT_FALSE(q.ok()) << params.front().first << "=" << params.front().second;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(q.status().message()).find(named), std::string::npos)
        << q.status().message();
  }
}

// host-b owns 10.244.{0..9}.0/26 (address known), host-c owns 10.245.0.0/26 (no address yet:
// pending). Routes 0..4 are programmed; 10.244.5.0/26 failed, 10.244.6.0/26 is held by a
// foreign route; the rest are still programming.
class SelectRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 10; ++i) AddBlock(fmt::format("10.244.{}.0/26", i), "host-b");
    AddBlock("10.245.0.0/26", "host-c");
    calculator_.OnPeerUpdate(routing::PeerSource::kPeerKey, "host-b", net::Family::kV4,
                             A("10.99.0.2"));
    for (const auto& delta : calculator_.TakeDeltas())
      reconciler_.SetDesired(delta.dst, delta.route);
    reconciler_.OnDatastoreSynced();
    std::vector<net::Route> programmed;
    for (int i = 0; i < 5; ++i)
      programmed.push_back({P(fmt::format("10.244.{}.0/26", i)), A("10.99.0.2")});
    reconciler_.OnDataplaneDump(programmed);
    auto ops = reconciler_.NextBatch(now_, 100);
    std::vector<net::OpResult> results;
    for (const auto& op : ops) {
      Status status;
      if (op.route.dst == P("10.244.5.0/26")) status = absl::InternalError("no buffer space");
      if (op.route.dst == P("10.244.6.0/26")) status = absl::AlreadyExistsError("foreign route");
      // The rest stay outstanding: still "programming".
      if (status.ok()) continue;
      results.push_back({op.seq, status});
    }
    ASSERT_EQ(results.size(), 2u);
    reconciler_.OnResults(results, now_);
  }
  void AddBlock(const std::string& cidr, const std::string& host) {
    calico::IpamBlock b;
    b.cidr = P(cidr);
    b.affinity_type = calico::AffinityType::kHost;
    b.affinity_name = host;
    calculator_.OnBlockUpdate(b);
  }
  AgentStatus Select(const Params& params) {
    auto q = ParseStatusQuery(params);
    EXPECT_TRUE(q.ok()) << q.status();
    AgentStatus s;
    SelectRoutes(*q, calculator_, reconciler_, s);
    return s;
  }
  static std::vector<std::string> Dsts(const AgentStatus& s) {
    std::vector<std::string> out;
    for (const auto& r : s.routes) out.push_back(r.route.dst.ToString() + " " + r.state);
    for (const auto& p : s.pending) out.push_back(p.dst.ToString() + " pending");
    return out;
  }

  routing::RouteCalculator calculator_{{"host-a", {A("10.99.0.1")}}};
  routing::RouteReconciler reconciler_;
  TimePoint now_{};
};

TEST_F(SelectRoutesTest, StateFilters) {
  EXPECT_EQ(Dsts(Select({{"state", "failing"}})),
            (std::vector<std::string>{"10.244.5.0/26 failing"}));
  EXPECT_EQ(Dsts(Select({{"state", "conflict,failing"}})),
            (std::vector<std::string>{"10.244.5.0/26 failing", "10.244.6.0/26 conflict"}));
  EXPECT_EQ(Dsts(Select({{"state", "pending"}})),
            (std::vector<std::string>{"10.245.0.0/26 pending"}));
  auto programmed = Select({{"state", "programmed"}});
  EXPECT_EQ(programmed.routes.size(), 5u);
  EXPECT_EQ(programmed.page.matching, 5u);
  for (const auto& r : programmed.routes) EXPECT_TRUE(r.programmed) << r.route.dst.ToString();
  EXPECT_EQ(Select({{"state", "programming"}}).routes.size(), 3u);
  auto failing = Select({{"state", "failing"}});
  ASSERT_EQ(failing.routes.size(), 1u);
  EXPECT_NE(failing.routes[0].error.find("no buffer space"), std::string::npos);
  EXPECT_EQ(failing.routes[0].node, "host-b");
  EXPECT_EQ(failing.routes[0].kind, "block");
}

TEST_F(SelectRoutesTest, NodeAndPrefixFilters) {
  auto c = Select({{"node", "host-c"}});
  EXPECT_TRUE(c.routes.empty());
  EXPECT_EQ(Dsts(c), (std::vector<std::string>{"10.245.0.0/26 pending"}));
  EXPECT_EQ(Select({{"node", "host-b"}}).page.matching, 10u);
  EXPECT_EQ(Select({{"node", "host-z"}}).page.matching, 0u);
  EXPECT_EQ(Dsts(Select({{"prefix", "10.244.4.0/23"}})),
            (std::vector<std::string>{"10.244.4.0/26 programmed", "10.244.5.0/26 failing"}));
  EXPECT_EQ(Select({{"prefix", "10.0.0.0/8"}}).page.matching, 11u);
  EXPECT_EQ(Select({{"prefix", "fd00::/8"}}).page.matching, 0u) << "other family: nothing";
  EXPECT_EQ(Select({{"prefix", "10.244.0.0/16"}, {"state", "failing"}}).page.matching, 1u);
  EXPECT_EQ(Select({{"prefix", "10.245.0.0/16"}, {"state", "failing"}}).page.matching, 0u);
}

TEST_F(SelectRoutesTest, PagesFollowTheCursorToTheEndWithoutGapsOrRepeats) {
  std::vector<std::string> seen;
  Params params = {{"limit", "3"}};
  for (int page = 0; page < 10; ++page) {
    auto s = Select(params);
    EXPECT_EQ(s.page.matching, 11u);
    EXPECT_LE(s.page.returned, 3u);
    for (const auto& d : Dsts(s)) seen.push_back(d);
    if (s.page.next_after.empty()) break;
    EXPECT_EQ(s.page.returned, 3u);
    params = {{"limit", "3"}, {"after", s.page.next_after}};
  }
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end(), [](const auto& a, const auto& b) {
    return P(a.substr(0, a.find(' '))) < P(b.substr(0, b.find(' ')));
  }));
  EXPECT_EQ(seen.back(), "10.245.0.0/26 pending") << "pending entries are paged with the routes";
  auto last = Select({{"after", "10.245.0.0/26"}});
  EXPECT_EQ(last.page.returned, 0u);
  EXPECT_TRUE(last.page.next_after.empty());
  // A cursor that names no entry still works: the page starts at the next prefix.
  EXPECT_EQ(Dsts(Select({{"after", "10.244.4.128/25"}, {"limit", "1"}})),
            (std::vector<std::string>{"10.244.5.0/26 failing"}));
}

TEST_F(SelectRoutesTest, TheDefaultPageIsBounded) {
  for (int i = 0; i < 1200; ++i)
    AddBlock(fmt::format("10.{}.{}.0/24", 100 + i / 256, i % 256), "host-b");
  for (const auto& delta : calculator_.TakeDeltas()) reconciler_.SetDesired(delta.dst, delta.route);
  auto s = Select({});
  EXPECT_EQ(s.page.matching, 1211u);
  EXPECT_EQ(s.routes.size() + s.pending.size(), kDefaultStatusPageSize);
  EXPECT_FALSE(s.page.next_after.empty());
  EXPECT_NE(s.ToJson().find("\"nextAfter\""), std::string::npos);
  EXPECT_NE(s.ToText().find("next page: --after "), std::string::npos);
}

}  // namespace
}  // namespace vcra::agent
