#include "agent/options.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>

#include "agent/http_server.h"
#include "calico/model.h"

namespace vcra::agent {
namespace {

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(start, comma - start);
    if (!part.empty()) out.push_back(part);
    start = comma + 1;
  }
  return out;
}

std::optional<uint32_t> ParseIndex(const std::string& s) {
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// The flags' raw values, before they become an AgentConfig (several need a conversion, and the
// prototype's positional form may override them).
struct RawFlags {
  std::string endpoints = "http://127.0.0.1:2379";
  std::string uplink;
  std::vector<std::string> uplink_addresses;
  std::string peer_source = "keys";
  int resync_seconds = 90;
  std::vector<std::string> seed;
  CLI::Option* dataplane_option = nullptr;
  // The status subcommand's filters, as /status parameters (validated the same way).
  std::vector<std::pair<std::string, std::string>> status_params;
  std::string status_node, status_prefix, status_state, status_limit, status_after;
  bool status_all = false;
  // DataplaneLifecycle's timings (AgentConfig), in the units the flags name.
  int probe_interval_ms = 1000;
  int call_timeout_seconds = 60;
  int reconnect_max_ms = 10000;
  int start_jitter_ms = 0;
};

constexpr const char* kDescription =
    "vpp-calico-route-agent: programs the routes between the hosts of a Calico cluster into "
    "VPP or the Linux kernel, from Calico's IPAM blocks in etcd.\n\n"
    "Usage:\n"
    "  vpp-calico-route-agent [run] [options]\n"
    "  vpp-calico-route-agent [options] <watch-prefix> <uplink> <ip> <prefix-len> "
    "[protocol host port user password]   (the 2016 prototype's form)\n"
    "  vpp-calico-route-agent status [--http-listen ADDR] [--node NODE] [--prefix CIDR] "
    "[--state STATES] [--limit N] [--after CIDR] [--all]   (what the running agent did, and "
    "why)";

// The description above carries the real usage (three forms); CLI11's generated line
// ("Usage: vpp-calico-route-agent [OPTIONS] [seed(0x)]") would contradict it.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override { return ""; }
};

// "status" and "run" are verbs, not flags; everything after them is parsed as usual.
std::vector<std::string> TakeVerb(int argc, const char* const* argv, Options& o) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "status") {
    o.status_command = true;
    args.erase(args.begin());
  } else if (!args.empty() && args[0] == "run") {
    args.erase(args.begin());
  }
  return args;
}

void AddEtcdFlags(CLI::App& app, Options& o, RawFlags& raw) {
  app.add_option("--nodename", o.agent.node_name, "This host's Calico node name")
      ->envname("NODENAME");
  app.add_option("--etcd-endpoints", raw.endpoints, "Comma-separated etcd endpoints")
      ->envname("ETCD_ENDPOINTS")
      ->capture_default_str();
  app.add_option("--etcd-ca-cert-file", o.agent.etcd.ca_cert_file, "CA bundle for etcd TLS")
      ->envname("ETCD_CA_CERT_FILE");
  app.add_option("--etcd-cert-file", o.agent.etcd.cert_file, "Client certificate for etcd TLS")
      ->envname("ETCD_CERT_FILE");
  app.add_option("--etcd-key-file", o.agent.etcd.key_file, "Client key for etcd TLS")
      ->envname("ETCD_KEY_FILE");
  app.add_option("--etcd-username", o.agent.etcd.username, "etcd user (auth enabled clusters)")
      ->envname("ETCD_USERNAME");
  app.add_option("--etcd-password", o.agent.etcd.password, "etcd password")
      ->envname("ETCD_PASSWORD");
  app.add_option("--etcd-page-size", o.agent.etcd.page_size,
                 "Most keys per etcd Range page while listing: pages grow with the listing, "
                 "200 keys up to ~20k keys, this from ~70k; the listing holds a few pages in "
                 "memory at once (a realistic Calico block is ~2 KB)")
      ->envname("VCRA_ETCD_PAGE_SIZE")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  app.add_option("--etcd-start-jitter-ms", raw.start_jitter_ms,
                 "Wait a random time up to this before the first etcd listing, so that agents "
                 "started together (a power cut, a rollout) ask a shared grpc-proxy for their "
                 "pages at different moments; routes already programmed keep working meanwhile")
      ->envname("VCRA_ETCD_START_JITTER_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--peer-source", raw.peer_source,
                 "Next hops from: keys (/vpp-calico/hosts/<host>/peerip/...), nodes (Calico Node "
                 "resources) or both (keys win)")
      ->envname("VCRA_PEER_SOURCE")
      ->check(CLI::IsMember({"keys", "nodes", "both"}))
      ->capture_default_str();
  app.add_option("--block-prefix", o.agent.block_prefix, "etcd prefix of the IPAM blocks")
      ->capture_default_str();
  app.add_flag("!--no-publish-peer-address", o.agent.publish_peer_address,
               "Do not write this host's peer address to etcd");
  app.add_flag("!--no-pools", o.agent.watch_pools, "Ignore Calico IP pools (route every block)");
}

void AddDataplaneFlags(CLI::App& app, Options& o, RawFlags& raw) {
  raw.dataplane_option =
      app.add_option(
             "--dataplane", o.dataplane,
             "Where routes go: linux or vpp (the prototype's positional form defaults to vpp)")
          ->envname("VCRA_DATAPLANE")
          ->check(CLI::IsMember({"linux", "vpp"}))
          ->capture_default_str();
  app.add_option("--uplink", raw.uplink,
                 "Uplink interface: a name, or an index (Linux ifindex / VPP sw_if_index)")
      ->envname("VCRA_UPLINK");
  app.add_option("--uplink-address", raw.uplink_addresses,
                 "Address/len to ensure on the uplink; the first of each family is published as "
                 "this host's peer address (repeat, or comma-separate in VCRA_UPLINK_ADDRESSES)")
      ->envname("VCRA_UPLINK_ADDRESSES")
      ->delimiter(',');
  app.add_option("--route-protocol", o.route_protocol,
                 "Linux: rtnetlink protocol number that marks the agent's routes")
      ->envname("VCRA_ROUTE_PROTOCOL")
      ->check(CLI::Range(5u, 255u))
      ->capture_default_str();
  app.add_option("--route-metric", o.route_metric,
                 "Linux: metric of the agent's routes (0 = kernel default). The kernel keys a "
                 "route by table, prefix and metric: at a metric no other route source uses, "
                 "the agent's route lives beside a foreign route for the same prefix instead "
                 "of being refused as a conflict")
      ->capture_default_str();
  app.add_option("--route-table", o.route_table, "Linux: routing table")
      ->check(CLI::Range(1u, 0xFFFFFFFEu))
      ->capture_default_str();
  app.add_option("--vpp-api-socket", o.vpp_api_socket, "VPP: binary API socket")
      ->envname("VCRA_VPP_API_SOCKET")
      ->capture_default_str();
  app.add_option("--resync-interval", raw.resync_seconds,
                 "Seconds between full dataplane comparisons")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--batch-size", o.agent.batch_size, "Route operations per dataplane batch")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--probe-interval-ms", raw.probe_interval_ms,
                 "How often an idle agent checks that the dataplane connection is alive")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  app.add_option("--dataplane-call-timeout", raw.call_timeout_seconds,
                 "Seconds after which an unanswered dataplane call counts as a lost connection")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--reconnect-backoff-max-ms", raw.reconnect_max_ms,
                 "Longest wait between attempts to reconnect to a lost dataplane (from 200 ms, "
                 "doubling)")
      ->check(CLI::Range(200, 600000))
      ->capture_default_str();
  app.add_flag("--dry-run", o.agent.dry_run,
               "Print the routes that would be programmed, then exit; touches no dataplane");
}

void AddOperatorFlags(CLI::App& app, Options& o) {
  app.add_option("--http-listen", o.http_listen,
                 "HTTP endpoint for /healthz /readyz /metrics /status (empty disables)")
      ->envname("VCRA_HTTP_LISTEN")
      ->capture_default_str();
  app.add_option("--metrics-listen", o.metrics_listen,
                 "Second HTTP listener, e.g. on the node's address for a cluster's Prometheus: "
                 "serves only /metrics /healthz /readyz, never /status (empty: off)")
      ->envname("VCRA_METRICS_LISTEN");
  app.add_option("--log-format", o.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error")
      ->envname("VCRA_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
}

void AddStatusFlags(CLI::App& app, RawFlags& raw) {
  app.add_option("--node", raw.status_node, "status: only the routes via this node");
  app.add_option("--prefix", raw.status_prefix, "status: only the routes inside this CIDR");
  app.add_option("--state", raw.status_state,
                 "status: only these states, comma-separated: programmed, programming, failing, "
                 "conflict, pending");
  app.add_option("--limit", raw.status_limit,
                 fmt::format("status: routes per page (default {}, at most {})",
                             kDefaultStatusPageSize, kMaxStatusPageSize));
  app.add_option("--after", raw.status_after,
                 "status: start after this prefix (the cursor a page ends with)");
  app.add_flag("--all", raw.status_all, "status: every page, one request per page");
}

// The status flags become a StatusQuery through the parser /status itself uses.
Status ResolveStatusQuery(Options& o, RawFlags& raw) {
  bool all = raw.status_all;
  for (auto [name, value] : {std::pair{"node", &raw.status_node},
                             {"prefix", &raw.status_prefix},
                             {"state", &raw.status_state},
                             {"limit", &raw.status_limit},
                             {"after", &raw.status_after}}) {
    if (!value->empty()) raw.status_params.emplace_back(name, *value);
  }
  if (!o.status_command) {
    if (all || !raw.status_params.empty())
      return absl::InvalidArgumentError(
          "--node, --prefix, --state, --limit, --after and --all "
          "belong to the status subcommand");
    return absl::OkStatus();
  }
  auto query = ParseStatusQuery(raw.status_params);
  if (!query.ok())
    return absl::InvalidArgumentError("status --" + std::string(query.status().message()));
  o.status_query = *query;
  o.status_all_pages = all;
  return absl::OkStatus();
}

// <watch-prefix> <uplink> <ip> <prefix-len> [protocol host port [user password]]
Status ApplyPrototypeForm(Options& o, RawFlags& raw) {
  const auto& seed = raw.seed;
  if (seed.empty()) return absl::OkStatus();
  if (seed.size() < 4 || seed.size() == 5 || seed.size() == 6)
    return absl::InvalidArgumentError(
        "positional form: <watch-prefix> <uplink> <ip> <prefix-len> [protocol host port "
        "[user password]]");
  o.agent.block_prefix = seed[0];
  raw.uplink = seed[1];
  raw.uplink_addresses = {seed[2] + "/" + seed[3]};
  if (seed.size() >= 7) raw.endpoints = seed[4] + "://" + seed[5] + ":" + seed[6];
  if (seed.size() >= 8) o.agent.etcd.username = seed[7];
  if (seed.size() >= 9) o.agent.etcd.password = seed[8];
  // The prototype programmed VPP; its command line keeps meaning that.
  if (raw.dataplane_option->count() == 0 && std::getenv("VCRA_DATAPLANE") == nullptr)
    o.dataplane = "vpp";
  return absl::OkStatus();
}

Status ResolveDatastore(Options& o, const RawFlags& raw) {
  // The prototype's prefix named the IPv4 block directory without slashes.
  ASSIGN_OR_RETURN(o.agent.block_prefix, calico::NormalizeBlockPrefix(o.agent.block_prefix));
  o.agent.etcd.endpoints = SplitCommas(raw.endpoints);
  if (o.agent.etcd.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints");
  if (o.agent.node_name.empty()) o.agent.node_name = Hostname();
  if (!calico::IsValidNodeName(o.agent.node_name))
    return absl::InvalidArgumentError("invalid node name: '" + o.agent.node_name + "'");
  o.agent.peer_mode = raw.peer_source == "keys"    ? PeerMode::kPeerKeys
                      : raw.peer_source == "nodes" ? PeerMode::kCalicoNodes
                                                   : PeerMode::kBoth;
  o.agent.resync_interval = std::chrono::seconds(raw.resync_seconds);
  o.agent.probe_interval = std::chrono::milliseconds(raw.probe_interval_ms);
  o.agent.dataplane_call_timeout = std::chrono::seconds(raw.call_timeout_seconds);
  o.agent.reconnect_backoff_max = std::chrono::milliseconds(raw.reconnect_max_ms);
  o.agent.start_jitter = std::chrono::milliseconds(raw.start_jitter_ms);
  return absl::OkStatus();
}

Status ResolveUplink(Options& o, const RawFlags& raw) {
  if (auto index = ParseIndex(raw.uplink)) {
    o.agent.uplink.index = *index;
  } else {
    o.agent.uplink.name = raw.uplink;
  }
  for (const auto& text : raw.uplink_addresses) {
    // "10.99.0.1/24" is the address 10.99.0.1 on a /24, not the /24 network.
    auto address = net::IpPrefix::ParseInterfaceAddress(text);
    if (!address)
      return absl::InvalidArgumentError("bad uplink address (want address/len): " + text);
    o.agent.uplink.addresses.push_back(*address);
  }
  if (!o.status_command && !o.agent.dry_run && raw.uplink.empty())
    return absl::InvalidArgumentError("--uplink is required (or use --dry-run)");
  return absl::OkStatus();
}

// Listeners are checked at start-up, so that a typo fails now and not after etcd is read.
Status CheckListeners(const Options& o) {
  if (!o.http_listen.empty()) RETURN_IF_ERROR(ParseHostPort(o.http_listen).status());
  if (!o.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(auto metrics, ParseHostPort(o.metrics_listen));
    // Compared parsed, so that "[127.0.0.1]:9743" is seen to be "127.0.0.1:9743".
    if (!o.http_listen.empty() && metrics == *ParseHostPort(o.http_listen))
      return absl::InvalidArgumentError("--metrics-listen must differ from --http-listen");
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<Options> ParseOptions(int argc, const char* const* argv, std::string* help_out) {
  Options o;
  RawFlags raw;
  std::vector<std::string> args = TakeVerb(argc, argv, o);

  CLI::App app{kDescription, "vpp-calico-route-agent"};
  app.formatter(std::make_shared<HelpFormatter>());
  app.set_version_flag("--version", "vpp-calico-route-agent 0.1.0");
  AddEtcdFlags(app, o, raw);
  AddDataplaneFlags(app, o, raw);
  AddOperatorFlags(app, o);
  AddStatusFlags(app, raw);
  app.add_option("prototype-args", raw.seed,
                 "The prototype's positional form: <watch-prefix> <uplink> <ip> <prefix-len> "
                 "[protocol host port user password]")
      ->expected(0, 9);

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    *help_out = app.help();
    o.help_shown = true;
    return o;
  } catch (const CLI::CallForVersion&) {
    *help_out = app.version() + "\n";
    o.help_shown = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }

  RETURN_IF_ERROR(ResolveStatusQuery(o, raw));
  RETURN_IF_ERROR(ApplyPrototypeForm(o, raw));
  RETURN_IF_ERROR(ResolveDatastore(o, raw));
  RETURN_IF_ERROR(ResolveUplink(o, raw));
  RETURN_IF_ERROR(CheckListeners(o));
  return o;
}

}  // namespace vcra::agent
