#include "agent/status_query.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <queue>

#include "calico/model.h"

namespace vcra::agent {
namespace {

// Longer than any node name, prefix or state list a real query has.
constexpr size_t kMaxValueLength = 256;

constexpr std::pair<std::string_view, RouteStateBit> kStateNames[] = {
    {"programmed", kStateProgrammed}, {"programming", kStateProgramming},
    {"failing", kStateFailing},       {"conflict", kStateConflict},
    {"pending", kStatePending},
};

std::string StateListText(uint32_t states) {
  std::string out;
  for (const auto& [name, bit] : kStateNames) {
    if ((states & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

StatusOr<net::IpPrefix> ParsePrefixParam(std::string_view name, std::string_view value) {
  auto prefix = net::IpPrefix::Parse(value, /*strict=*/true);
  if (!prefix) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: not a prefix with clear host bits (like 10.244.0.0/16 or fd00:10::/64)", name));
  }
  return *prefix;
}

StatusOr<bool> ParseBool(std::string_view name, std::string_view value) {
  if (value == "1" || value == "true") return true;
  if (value == "0" || value == "false") return false;
  return absl::InvalidArgumentError(fmt::format("{}: want 0 or 1", name));
}

// Query strings carry percent-encoding; node names and prefixes need '/' and ':' kept readable.
std::string UrlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == ',') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

StatusOr<uint32_t> ParseStateList(std::string_view text) {
  uint32_t states = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string_view part = text.substr(start, comma - start);
    auto known = std::find_if(std::begin(kStateNames), std::end(kStateNames),
                              [&](const auto& entry) { return entry.first == part; });
    if (known == std::end(kStateNames)) {
      return absl::InvalidArgumentError(
          "state: want a comma-separated list of programmed, programming, failing, conflict, "
          "pending");
    }
    states |= known->second;
    start = comma + 1;
  }
  return states;
}

StatusOr<StatusQuery> ParseStatusQuery(
    const std::vector<std::pair<std::string, std::string>>& params) {
  StatusQuery q;
  std::vector<std::string_view> seen;
  for (const auto& [name, value] : params) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      return absl::InvalidArgumentError(fmt::format("{}: given twice", name));
    seen.push_back(name);
    if (value.size() > kMaxValueLength)
      return absl::InvalidArgumentError(fmt::format("{}: longer than {}", name, kMaxValueLength));
    if (name == "node") {
      if (!calico::IsValidNodeName(value))
        return absl::InvalidArgumentError("node: not a node name");
      q.node = value;
    } else if (name == "prefix") {
      ASSIGN_OR_RETURN(q.within, ParsePrefixParam(name, value));
    } else if (name == "after") {
      ASSIGN_OR_RETURN(q.after, ParsePrefixParam(name, value));
    } else if (name == "state") {
      ASSIGN_OR_RETURN(q.states, ParseStateList(value));
    } else if (name == "limit") {
      size_t limit = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || ptr != value.data() + value.size() || limit == 0 ||
          limit > kMaxStatusPageSize) {
        return absl::InvalidArgumentError(
            fmt::format("limit: want a number from 1 to {}", kMaxStatusPageSize));
      }
      q.limit = limit;
    } else if (name == "routes") {
      ASSIGN_OR_RETURN(q.routes, ParseBool(name, value));
    } else if (name == "format") {
      if (value != "text" && value != "json")
        return absl::InvalidArgumentError("format: want text or json");
      q.text = value == "text";
    } else {
      return absl::InvalidArgumentError(
          "unknown parameter (known: node, prefix, state, limit, after, routes, format)");
    }
  }
  return q;
}

std::string StatusQuery::ToQueryString() const {
  std::vector<std::string> parts;
  if (!node.empty()) parts.push_back("node=" + UrlEncode(node));
  if (within) parts.push_back("prefix=" + UrlEncode(within->ToString()));
  if (states != kAllStates) parts.push_back("state=" + UrlEncode(StateListText(states)));
  if (limit != kDefaultStatusPageSize) parts.push_back(fmt::format("limit={}", limit));
  if (after) parts.push_back("after=" + UrlEncode(after->ToString()));
  if (!routes) parts.push_back("routes=0");
  return fmt::format("{}", fmt::join(parts, "&"));
}

void SelectRoutes(const StatusQuery& query, const routing::RouteCalculator& calculator,
                  const routing::RouteReconciler& reconciler, AgentStatus& status) {
  status.routes_listed = true;
  status.page.limit = query.limit;
  // Copies of the failing and conflicting entries only (few, normally).
  auto failures = reconciler.Failures();
  auto conflicts = reconciler.Conflicts();

  // The page: the `limit` smallest matching prefixes after the cursor, kept in a max-heap so
  // that the scan stays O(table) comparisons with O(limit) memory. A prefix is either desired
  // or pending, never both, so the prefix alone orders the page.
  struct Candidate {
    net::IpPrefix dst;
    uint32_t state;
    bool operator<(const Candidate& other) const { return dst < other.dst; }
  };
  std::priority_queue<Candidate> page;
  size_t matching_after = 0;
  auto consider = [&](const net::IpPrefix& dst, uint32_t state) {
    ++status.page.matching;
    if (query.after && !(*query.after < dst)) return;
    ++matching_after;
    if (page.size() < query.limit) {
      page.push({dst, state});
    } else if (dst < page.top().dst) {
      page.pop();
      page.push({dst, state});
    }
  };
  auto node_matches = [&](const net::IpPrefix& dst) {
    if (query.node.empty()) return true;
    auto intent = calculator.IntentFor(dst);
    return intent && intent->node == query.node;
  };
  auto state_of = [&](const net::IpPrefix& dst, const net::Route& /*route*/) -> uint32_t {
    if (failures.contains(dst)) return kStateFailing;
    if (conflicts.contains(dst)) return kStateConflict;
    return reconciler.IsProgrammed(dst) ? kStateProgrammed : kStateProgramming;
  };

  constexpr uint32_t kRouteStates = kAllStates & ~kStatePending;
  if ((query.states & kRouteStates) == (query.states & (kStateFailing | kStateConflict))) {
    // Only failing and/or conflicting routes asked for: walk those, not the whole table.
    for (const auto* errors : {&failures, &conflicts}) {
      for (const auto& [dst, error] : *errors) {
        auto route = reconciler.desired().find(dst);
        if (route == reconciler.desired().end()) continue;
        if (query.within && !query.within->Contains(dst)) continue;
        uint32_t state = state_of(dst, route->second);
        if ((state & query.states) == 0 || !node_matches(dst)) continue;
        consider(dst, state);
      }
    }
  } else {
    for (const auto& [dst, route] : reconciler.desired()) {
      if (query.within && !query.within->Contains(dst)) continue;
      uint32_t state = state_of(dst, route);
      if ((state & query.states) == 0 || !node_matches(dst)) continue;
      consider(dst, state);
    }
  }
  if (query.states & kStatePending) {
    for (const auto& p : calculator.Pending()) {
      if (query.within && !query.within->Contains(p.dst)) continue;
      if (!query.node.empty() && p.node != query.node) continue;
      consider(p.dst, kStatePending);
    }
  }

  std::vector<Candidate> chosen;
  chosen.reserve(page.size());
  while (!page.empty()) {
    chosen.push_back(page.top());
    page.pop();
  }
  std::reverse(chosen.begin(), chosen.end());
  status.page.returned = chosen.size();
  if (matching_after > chosen.size() && !chosen.empty())
    status.page.next_after = chosen.back().dst.ToString();

  // Only now, for the page, the strings.
  for (const auto& c : chosen) {
    auto intent = calculator.IntentFor(c.dst);
    if (c.state == kStatePending) {
      status.pending.push_back(
          {c.dst, intent ? intent->node : "", intent ? intent->block_key : ""});
      continue;
    }
    AgentStatus::RouteInfo info;
    info.route = reconciler.desired().at(c.dst);
    if (intent) {
      info.node = intent->node;
      info.block_key = intent->block_key;
      info.kind = intent->kind == routing::IntentKind::kBlock ? "block" : "borrowed-ip";
    }
    info.programmed = reconciler.IsProgrammed(c.dst);
    switch (c.state) {
      case kStateFailing:
        info.state = "failing";
        info.error = failures.at(c.dst);
        break;
      case kStateConflict:
        info.state = "conflict";
        info.error = conflicts.at(c.dst);
        break;
      case kStateProgrammed:
        info.state = "programmed";
        break;
      default:
        info.state = "programming";
        break;
    }
    status.routes.push_back(std::move(info));
  }
}

}  // namespace vcra::agent
