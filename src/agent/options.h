// Command line and environment → AgentConfig. Kept apart from main() so that tests can parse
// every accepted form, including the 2016 prototype's positional one.
#pragma once

#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/status_query.h"
#include "common/status.h"

namespace vcra::agent {

struct Options {
  AgentConfig agent;
  std::string dataplane = "linux";  // "linux" or "vpp"
  uint32_t route_protocol = 212;
  uint32_t route_table = 254;
  uint32_t route_metric = 0;  // 0: the kernel's default
  std::string vpp_api_socket = "/run/vpp/api.sock";
  std::string http_listen = "127.0.0.1:9743";  // everything, /status included: loopback
  std::string metrics_listen;  // e.g. the node's address: /metrics and the probes only
  std::string log_format = "text";
  std::string log_level = "info";
  bool status_command = false;
  // The status subcommand's filters (--node, --prefix, --state, --limit, --after) and --all.
  StatusQuery status_query;
  bool status_all_pages = false;
  bool help_shown = false;  // --help/--version printed; exit 0
};

// Parses argv (without the program name's special meaning). Reads NODENAME, ETCD_ENDPOINTS,
// ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, ETCD_USERNAME, ETCD_PASSWORD and the
// VCRA_* variables named in --help as fallbacks.
StatusOr<Options> ParseOptions(int argc, const char* const* argv, std::string* help_out);

}  // namespace vcra::agent
