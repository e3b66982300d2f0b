// AgentStatus: a consistent copy of what the agent knows and did, for /status, the status
// subcommand and tests. A plain value; rendering only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/ip.h"
#include "routing/route_reconciler.h"

namespace vcra::agent {

struct AgentStatus {
  struct RouteInfo {
    net::Route route;
    std::string node;
    std::string block_key;
    std::string kind;  // "block" or "borrowed-ip"
    bool programmed = false;
    // "programmed", "programming" (not yet, or being replaced), "failing" (retried with
    // backoff), "conflict" (a route that is not ours holds the prefix; retried with backoff).
    std::string state;
    std::string error;
  };
  struct PendingInfo {
    net::IpPrefix dst;
    std::string node;
    std::string block_key;
  };
  std::string sync_state;       // routing::SyncStateName
  bool in_sync = false;         // sync_state is "in-sync"
  std::string dataplane_state;  // DataplaneStateName
  bool etcd_connected = false;
  bool datastore_synced = false;
  bool dataplane_connected = false;
  bool first_programming_done = false;
  bool datastore_ready = true;  // Calico's ClusterInformation.datastoreReady
  bool peer_published = false;
  int64_t etcd_revision = 0;
  size_t blocks = 0;
  size_t routes_desired = 0;
  size_t routes_programmed = 0;
  size_t routes_pending = 0;
  size_t routes_failing = 0;
  size_t routes_conflicting = 0;
  std::vector<RouteInfo> routes;
  std::vector<PendingInfo> pending;
  std::map<std::string, std::pair<std::string, std::string>> peers;  // node -> (v4, v6)
  std::vector<std::string> last_errors;
  routing::ReconcilerStats reconciler;
  std::map<std::string, uint64_t> op_counts;  // Prometheus labels -> dataplane ops

  std::string ToJson() const;
  // Human-readable summary for the status subcommand.
  std::string ToText() const;
};

}  // namespace vcra::agent
