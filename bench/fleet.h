// Fleet mode (--agents K): K agents cold-started at once, each its own process with its own VPP
// simulator, against a 3-member etcd directly and then through one `etcd grpc-proxy`, beside a
// single agent alone. Measured: the bytes the etcd members sent (the sum of
// etcd_network_client_grpc_sent_bytes_total over the members' /metrics, before and after) and
// the time until every agent has programmed its routes.
#pragma once

#include <string>

#include "bench/run.h"

namespace vcra::bench {

// Runs the whole mode and prints its report; returns the process exit code.
int RunFleet(const Settings& s, const std::string& dir, const std::string& command);

}  // namespace vcra::bench
