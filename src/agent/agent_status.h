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
  // Which part of the table the answer lists (see status_query.h); set when routes are listed.
  struct Page {
    size_t limit = 0;
    size_t matching = 0;     // entries matching the filters, on every page
    size_t returned = 0;     // routes + pending on this page
    std::string next_after;  // the cursor for the next page; empty on the last page
  };
  // The start-up, until the first programming is done: how far it is and how long it may take.
  struct Progress {
    std::string phase;  // "listing" (reading etcd), "programming", "done"
    size_t blocks = 0;
    size_t routes_calculated = 0;  // desired + pending
    size_t routes_desired = 0;
    size_t routes_programmed = 0;
    double elapsed_seconds = 0;  // since the agent started
    double rate_per_second = 0;  // routes programmed per second since the listing completed
    double eta_seconds = -1;     // time left at that rate; -1 when unknown
  };
  bool ready = false;  // what /readyz says
  Progress progress;
  bool routes_listed = false;  // the answer lists routes (a page); false: a summary
  Page page;
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
  // "initial sync: programming, 1200 blocks, ..." (the start-up's log line).
  static std::string ProgressLine(const Progress& progress);
  // Human-readable summary for the status subcommand. A continuation (a page after the first)
  // has the page's entries and its page line only, so that pages printed one after another
  // read as one listing.
  std::string ToText(bool continuation = false) const;
};

}  // namespace vcra::agent
