#include "agent/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace vcra::agent {
namespace {

StatusOr<Options> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "vpp-calico-route-agent");
  std::string help;
  return ParseOptions(static_cast<int>(args.size()), args.data(), &help);
}

TEST(OptionsTest, FlagsAndDefaults) {
  auto o = Parse({"run", "--nodename", "host-a", "--uplink", "eth0", "--uplink-address",
                  "10.99.0.1/24", "--uplink-address", "fd00:99::1/64", "--etcd-endpoints",
                  "http://10.0.0.1:2379,http://10.0.0.2:2379"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.node_name, "host-a");
  EXPECT_EQ(o->agent.uplink.name, "eth0");
  EXPECT_FALSE(o->agent.uplink.index);
  ASSERT_EQ(o->agent.uplink.addresses.size(), 2u);
  EXPECT_EQ(o->agent.uplink.addresses[0].address().ToString(), "10.99.0.1");
  EXPECT_EQ(o->agent.uplink.addresses[0].len(), 24);
  EXPECT_EQ(o->agent.etcd.endpoints.size(), 2u);
  EXPECT_EQ(o->dataplane, "linux");
  EXPECT_EQ(o->route_protocol, 212u);
  EXPECT_EQ(o->route_metric, 0u);
  EXPECT_EQ(o->agent.resync_interval, std::chrono::seconds(90));
  EXPECT_EQ(o->agent.peer_mode, PeerMode::kPeerKeys);
}

TEST(OptionsTest, PrototypePositionalForm) {
  auto o = Parse({"--nodename", "host-a", "calico/ipam/v2/assignment/ipv4/block", "1", "172.16.0.1",
                  "24", "http", "127.0.0.1", "2379", "root", "secret"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.block_prefix, "/calico/ipam/v2/assignment/ipv4/block/");
  ASSERT_TRUE(o->agent.uplink.index);
  EXPECT_EQ(*o->agent.uplink.index, 1u);
  EXPECT_EQ(o->agent.uplink.addresses[0].ToString(), "172.16.0.1/24");
  EXPECT_EQ(o->agent.etcd.endpoints[0], "http://127.0.0.1:2379");
  EXPECT_EQ(o->agent.etcd.username, "root");
  EXPECT_EQ(o->agent.etcd.password, "secret");
  EXPECT_EQ(o->dataplane, "vpp") << "the prototype programmed VPP";
}

TEST(OptionsTest, PrototypeShortPositionalForm) {
  auto o = Parse(
      {"--nodename", "h", "calico/ipam/v2/assignment/ipv4/block", "eth0", "172.16.0.1", "24"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.uplink.name, "eth0");
}

TEST(OptionsTest, EnvironmentFallbacks) {
  setenv("ETCD_ENDPOINTS", "http://127.0.0.9:2379", 1);
  setenv("NODENAME", "from-env", 1);
  auto o = Parse({"--dry-run"});
  unsetenv("ETCD_ENDPOINTS");
  unsetenv("NODENAME");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.node_name, "from-env");
  EXPECT_EQ(o->agent.etcd.endpoints[0], "http://127.0.0.9:2379");
  EXPECT_TRUE(o->agent.dry_run);
}

TEST(OptionsTest, EtcdPageSize) {
  auto o = Parse({"--nodename", "a", "--dry-run"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.etcd.page_size, datastore::EtcdConfig{}.page_size) << "the default stays";
  o = Parse({"--nodename", "a", "--dry-run", "--etcd-page-size", "1000"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.etcd.page_size, 1000);
  setenv("VCRA_ETCD_PAGE_SIZE", "200", 1);
  o = Parse({"--nodename", "a", "--dry-run"});
  unsetenv("VCRA_ETCD_PAGE_SIZE");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.etcd.page_size, 200);
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--etcd-page-size", "0"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--etcd-page-size", "100001"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--etcd-page-size", "many"}).ok());
}

TEST(OptionsTest, EtcdStartJitter) {
  auto o = Parse({"--nodename", "a", "--dry-run"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.start_jitter.count(), 0) << "off unless asked for";
  o = Parse({"--nodename", "a", "--dry-run", "--etcd-start-jitter-ms", "5000"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.start_jitter, std::chrono::milliseconds(5000));
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--etcd-start-jitter-ms", "-1"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--etcd-start-jitter-ms", "600001"}).ok());
}

TEST(OptionsTest, RejectsBadInput) {
  EXPECT_FALSE(Parse({"--nodename", "a", "--uplink", "eth0", "--uplink-address", "10.0.0.1"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--uplink", "eth0", "--dataplane", "dpdk"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a/b", "--dry-run"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a"}).ok()) << "uplink required";
  EXPECT_FALSE(Parse({"--nodename", "a", "x", "y"}).ok()) << "incomplete positional form";
  EXPECT_FALSE(Parse({"--nodename", "a", "/etc/passwd", "eth0", "10.0.0.1", "24"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--block-prefix", "/calico/"}).ok())
      << "a prefix wider than the assignment tree would read Nodes and pools as blocks";
  EXPECT_FALSE(Parse({"--nodename", "a", "--uplink", "eth0", "--route-protocol", "2"}).ok())
      << "kernel-reserved protocol numbers are refused";
  EXPECT_FALSE(Parse({"--bogus"}).ok());
}

TEST(OptionsTest, HelpIsShown) {
  auto o = Parse({"--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->help_shown);
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(OptionsTest, HelpHasOneUsageBlock) {
  std::vector<const char*> args = {"vpp-calico-route-agent", "--help"};
  std::string help;
  ASSERT_TRUE(ParseOptions(static_cast<int>(args.size()), args.data(), &help).ok());
  EXPECT_EQ(Count(help, "Usage"), 1u) << help;
  EXPECT_EQ(help.find("[OPTIONS]"), std::string::npos) << "CLI11's generated usage line\n" << help;
  EXPECT_EQ(help.find("seed(0x)"), std::string::npos) << help;
  EXPECT_NE(help.find("vpp-calico-route-agent [run] [options]"), std::string::npos) << help;
  EXPECT_NE(help.find("--metrics-listen"), std::string::npos) << help;
}

TEST(OptionsTest, MetricsListenerIsOffByDefaultAndChecked) {
  auto o = Parse({"--nodename", "a", "--dry-run"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->metrics_listen, "");
  EXPECT_EQ(o->http_listen, "127.0.0.1:9743");
  o = Parse({"--nodename", "a", "--dry-run", "--metrics-listen", "10.99.0.1:9091"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->metrics_listen, "10.99.0.1:9091");
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--metrics-listen", "10.99.0.1"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--metrics-listen", "[::1]:99999"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--metrics-listen", "127.0.0.1:9743"}).ok())
      << "the same address as --http-listen would serve /status there";
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--metrics-listen", "[127.0.0.1]:9743"}).ok())
      << "the same address, bracketed";
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--http-listen", "nonsense"}).ok());
  // The DaemonSet writes "[$(HOST_IP)]:9744", which must work for either family of node address.
  for (const char* listen : {"[10.99.0.1]:9744", "[fd00:99::1]:9744"}) {
    o = Parse({"--nodename", "a", "--dry-run", "--metrics-listen", listen});
    EXPECT_TRUE(o.ok()) << listen << ": " << o.status();
  }
}

TEST(OptionsTest, StatusSubcommandFiltersAreCheckedLikeTheEndpointChecksThem) {
  auto o = Parse({"status", "--node", "host-7", "--prefix", "10.244.0.0/16", "--state",
                  "pending,failing", "--limit", "50", "--after", "10.244.3.0/26", "--all"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->status_command);
  EXPECT_TRUE(o->status_all_pages);
  EXPECT_EQ(o->status_query.node, "host-7");
  EXPECT_EQ(o->status_query.within->ToString(), "10.244.0.0/16");
  EXPECT_EQ(o->status_query.states, kStatePending | kStateFailing);
  EXPECT_EQ(o->status_query.limit, 50u);
  EXPECT_EQ(o->status_query.after->ToString(), "10.244.3.0/26");
  auto plain = Parse({"status"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->status_query.limit, kDefaultStatusPageSize);
  EXPECT_FALSE(plain->status_all_pages);
  for (std::vector<const char*> bad : {std::vector<const char*>{"status", "--limit", "0"},
                                       {"status", "--limit", "many"},
                                       {"status", "--state", "lost"},
                                       {"status", "--prefix", "10.244.0.1/16"},
                                       {"status", "--node", "Not A Node"}}) {
    auto refused = Parse(bad);
    EXPECT_FALSE(refused.ok()) << bad[1] << " " << bad[2];
  }
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--node", "host-7"}).ok())
      << "a status filter without the status subcommand";
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--all"}).ok());
}

TEST(OptionsTest, DataplaneLifecycleTimings) {
  auto o = Parse({"--nodename", "a", "--dry-run"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.probe_interval, std::chrono::milliseconds(1000));
  EXPECT_EQ(o->agent.dataplane_call_timeout, std::chrono::seconds(60));
  EXPECT_EQ(o->agent.reconnect_backoff_max, std::chrono::milliseconds(10000));
  o = Parse({"--nodename", "a", "--dry-run", "--probe-interval-ms", "250",
             "--dataplane-call-timeout", "5", "--reconnect-backoff-max-ms", "30000"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->agent.probe_interval, std::chrono::milliseconds(250));
  EXPECT_EQ(o->agent.dataplane_call_timeout, std::chrono::seconds(5));
  EXPECT_EQ(o->agent.reconnect_backoff_max, std::chrono::milliseconds(30000));
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--probe-interval-ms", "0"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--dataplane-call-timeout", "-1"}).ok());
  EXPECT_FALSE(Parse({"--nodename", "a", "--dry-run", "--reconnect-backoff-max-ms", "100"}).ok())
      << "below the initial 200 ms";
}

}  // namespace
}  // namespace vcra::agent
