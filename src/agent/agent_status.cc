#include "agent/agent_status.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace vcra::agent {

std::string AgentStatus::ToJson() const {
  nlohmann::json j;
  j["ready"] = ready;
  j["progress"] = {{"phase", progress.phase},
                   {"blocks", progress.blocks},
                   {"routesCalculated", progress.routes_calculated},
                   {"routesDesired", progress.routes_desired},
                   {"routesProgrammed", progress.routes_programmed},
                   {"elapsedSeconds", progress.elapsed_seconds},
                   {"ratePerSecond", progress.rate_per_second}};
  if (progress.eta_seconds >= 0) j["progress"]["etaSeconds"] = progress.eta_seconds;
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
  if (routes_listed) {
    j["page"] = {{"limit", page.limit}, {"matching", page.matching}, {"returned", page.returned}};
    // The cursor for the next page (?after=); absent on the last one.
    if (!page.next_after.empty()) j["page"]["nextAfter"] = page.next_after;
  }
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

std::string AgentStatus::ToText(bool continuation) const {
  std::string out;
  if (!continuation) {
    out = fmt::format(
        "state {}  etcd {} (revision {})  dataplane {} ({})  datastoreReady {}  {}\n"
        "{} blocks, {} routes desired, {} programmed, {} pending, {} failing, {} conflicting\n",
        sync_state, etcd_connected ? "connected" : "DISCONNECTED", etcd_revision,
        dataplane_connected ? "connected" : "DISCONNECTED", dataplane_state, datastore_ready,
        ready ? "ready" : "NOT READY", blocks, routes_desired, routes_programmed, routes_pending,
        routes_failing, routes_conflicting);
    if (progress.phase != "done") out += ProgressLine(progress) + "\n";
  }
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
  if (routes_listed) {
    out += fmt::format("{} of {} matching entries shown", page.returned, page.matching);
    if (!page.next_after.empty()) out += fmt::format("; next page: --after {}", page.next_after);
    out += "\n";
  }
  if (continuation) return out;
  for (const auto& e : last_errors) out += "  recent error: " + e + "\n";
  return out;
}

std::string AgentStatus::ProgressLine(const Progress& p) {
  std::string out = fmt::format(
      "initial sync: {} after {:.1f} s: {} blocks, {} routes calculated, {}/{} programmed", p.phase,
      p.elapsed_seconds, p.blocks, p.routes_calculated, p.routes_programmed, p.routes_desired);
  if (p.rate_per_second > 0) out += fmt::format(", {:.0f} routes/s", p.rate_per_second);
  if (p.eta_seconds >= 0) out += fmt::format(", about {:.0f} s left", p.eta_seconds);
  return out;
}

}  // namespace vcra::agent
