#include "agent/agent_status.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace vcra::agent {

std::string AgentStatus::ToJson() const {
  nlohmann::json j;
  j["syncState"] = sync_state;
  j["dataplaneState"] = dataplane_state;
  j["etcdConnected"] = etcd_connected;
  j["datastoreSynced"] = datastore_synced;
  j["dataplaneConnected"] = dataplane_connected;
  j["firstProgrammingDone"] = first_programming_done;
  j["datastoreReady"] = datastore_ready;
  j["peerPublished"] = peer_published;
  j["etcdRevision"] = etcd_revision;
  j["blocks"] = blocks;
  j["routesDesired"] = routes_desired;
  j["routesProgrammed"] = routes_programmed;
  j["routesPending"] = routes_pending;
  j["routesFailing"] = routes_failing;
  j["routesConflicting"] = routes_conflicting;
  j["routes"] = nlohmann::json::array();
  for (const auto& r : routes) {
    nlohmann::json jr = {{"dst", r.route.dst.ToString()},
                         {"via", r.route.gateway.ToString()},
                         {"node", r.node},
                         {"block", r.block_key},
                         {"kind", r.kind},
                         {"programmed", r.programmed},
                         {"state", r.state}};
    if (!r.error.empty()) jr["error"] = r.error;
    j["routes"].push_back(std::move(jr));
  }
  j["pending"] = nlohmann::json::array();
  for (const auto& p : pending) {
    j["pending"].push_back({{"dst", p.dst.ToString()}, {"node", p.node}, {"block", p.block_key}});
  }
  j["peers"] = nlohmann::json::object();
  for (const auto& [node, a] : peers) j["peers"][node] = {{"ipv4", a.first}, {"ipv6", a.second}};
  j["lastErrors"] = last_errors;
  j["ops"] = {{"ok", reconciler.ops_ok},
              {"failed", reconciler.ops_failed},
              {"conflicting", reconciler.ops_conflicting},
              {"driftRepaired", reconciler.drift_repaired}};
  // Hostile etcd keys may hold invalid UTF-8; replace rather than throw.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AgentStatus::ToText() const {
  std::string out = fmt::format(
      "state {}  etcd {} (revision {})  dataplane {} ({})  datastoreReady {}\n"
      "{} blocks, {} routes desired, {} programmed, {} pending, {} failing, {} conflicting\n",
      sync_state, etcd_connected ? "connected" : "DISCONNECTED", etcd_revision,
      dataplane_connected ? "connected" : "DISCONNECTED", dataplane_state, datastore_ready, blocks,
      routes_desired, routes_programmed, routes_pending, routes_failing, routes_conflicting);
  for (const auto& r : routes) {
    out += fmt::format("  {:<22} via {:<16} {:<11} of {} ({}){}{}\n", r.route.dst.ToString(),
                       r.route.gateway.ToString(), r.kind, r.node, r.block_key,
                       r.state == "conflict" ? "  CONFLICT (foreign route)"
                       : r.programmed        ? ""
                                             : "  NOT PROGRAMMED",
                       r.error.empty() ? "" : "  error: " + r.error);
  }
  for (const auto& p : pending) {
    out += fmt::format("  {:<22} pending: no address for {} yet ({})\n", p.dst.ToString(), p.node,
                       p.block_key);
  }
  for (const auto& e : last_errors) out += "  recent error: " + e + "\n";
  return out;
}

}  // namespace vcra::agent
