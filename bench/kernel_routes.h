// rtnetlink for the benchmark's Linux part (inside its private network namespace): dumping the
// routes of one protocol, and seeing when the kernel announces a route.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>

#include "bench/bench_util.h"
#include "common/status.h"
#include "net/ip.h"

namespace vcra::bench {

// The agent's own rtnetlink protocol and the one the `ip -batch` lower bound uses, so the two
// never mix.
constexpr uint8_t kAgentProtocol = 212;
constexpr uint8_t kLowerBoundProtocol = 213;

class NlSocket {
 public:
  NlSocket() = default;
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  ~NlSocket();
  Status Open(unsigned groups);
  int fd() const { return mnl_socket_get_fd(nl_); }
  mnl_socket* get() const { return nl_; }

 private:
  mnl_socket* nl_ = nullptr;
};

// Main-table IPv4 routes with a gateway of `protocol` (any protocol but the agent's when
// nullopt), by dump.
StatusOr<RouteMap> DumpKernelRoutes(std::optional<uint8_t> protocol);
// The protocols of the main-table IPv4 routes with a gateway, other than the agent's.
StatusOr<std::vector<uint8_t>> ForeignGatewayProtocols();

// Route notifications (RTNLGRP_IPV4_ROUTE): when did the kernel tell us about a route.
class RouteMonitor {
 public:
  Status Open() { return sock_.Open(RTMGRP_IPV4_ROUTE); }

  // Waits for an RTM_NEWROUTE of the agent's protocol for `route` read at or after `since`.
  // Returns the time it was read.
  StatusOr<Steady::time_point> WaitFor(const net::Route& route, Steady::time_point since,
                                       Steady::time_point deadline);
  // Reads what has arrived until `until`, without waiting for any route in particular.
  Status Drain(Steady::time_point until);
  // When `route` was last announced with its gateway, if it was.
  std::optional<Steady::time_point> SeenAt(const net::Route& route) const;
  int overruns() const { return overruns_; }

 private:
  // Reads one datagram (waiting at most 20 ms); false when nothing came.
  StatusOr<bool> ReadOnce();

  NlSocket sock_;
  std::unordered_map<net::IpPrefix, std::pair<net::IpAddress, Steady::time_point>> seen_;
  int overruns_ = 0;
};

}  // namespace vcra::bench
