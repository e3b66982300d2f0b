// /status queries: which routes an answer lists (filters and a page), parsed from the request's
// parameters as hostile input, and the selection that runs on the loop thread.
//
// At 100k routes the whole table is tens of megabytes of JSON built on the loop thread, so no
// answer lists more than one page (kDefaultStatusPageSize unless ?limit= says otherwise, at most
// kMaxStatusPageSize). The selection scans the tables without formatting anything and keeps the
// `limit` smallest matching prefixes after the cursor (a bounded heap): only the page is
// formatted. The answer's page.nextAfter is the cursor for the next page.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/agent_status.h"
#include "common/status.h"
#include "net/ip.h"
#include "routing/route_calculator.h"
#include "routing/route_reconciler.h"

namespace vcra::agent {

inline constexpr size_t kDefaultStatusPageSize = 500;
inline constexpr size_t kMaxStatusPageSize = 10000;

// One bit per route state; a query may ask for several (?state=failing,conflict).
enum RouteStateBit : uint32_t {
  kStateProgrammed = 1u << 0,
  kStateProgramming = 1u << 1,
  kStateFailing = 1u << 2,
  kStateConflict = 1u << 3,
  kStatePending = 1u << 4,  // no address for the node yet: not a route, listed under "pending"
  kAllStates = (1u << 5) - 1,
};

struct StatusQuery {
  std::string node;                     // only this node's routes; empty: every node
  std::optional<net::IpPrefix> within;  // only routes inside this prefix (?prefix=)
  uint32_t states = kAllStates;         // RouteStateBit set
  size_t limit = kDefaultStatusPageSize;
  std::optional<net::IpPrefix> after;  // the page starts after this prefix (exclusive)
  bool routes = true;                  // false (?routes=0): counters and progress only
  bool text = false;                   // ?format=text: the status subcommand's rendering

  // The query's parameters, URL-encoded ("node=host-7&limit=100"); "" for the defaults.
  // format is left out: the caller chooses it.
  std::string ToQueryString() const;
};

// Parameters as they came (name, value), in order. Unknown names, repeated names, empty or
// oversized values, and values that do not parse are errors that name the parameter.
StatusOr<StatusQuery> ParseStatusQuery(
    const std::vector<std::pair<std::string, std::string>>& params);

// "programmed,failing" -> bits; an unknown name is an error.
StatusOr<uint32_t> ParseStateList(std::string_view text);

// Fills status.routes, status.pending and status.page with the query's page. Loop thread: reads
// the calculator's and the reconciler's tables, formats nothing.
void SelectRoutes(const StatusQuery& query, const routing::RouteCalculator& calculator,
                  const routing::RouteReconciler& reconciler, AgentStatus& status);

}  // namespace vcra::agent
