// RouteTable: prefix -> route, the table the calculator and the reconciler keep their routes in.
// Open addressing (absl's flat_hash_map): one allocation for the whole table instead of one
// node per route, which at 100k routes is most of the difference in memory.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <functional>

#include "net/ip.h"

namespace vcra::routing {

using RouteTable = absl::flat_hash_map<net::IpPrefix, net::Route, std::hash<net::IpPrefix>>;

}  // namespace vcra::routing
