// FakeDataplane: a stateful in-memory dataplane for tests. It keeps a route table with an owner
// tag per route (ours or foreign), and can fail ops on demand, lose its connection, or "restart"
// with an empty table. Like the real backends, it refuses (ALREADY_EXISTS) to replace a foreign
// route with one of ours, and a delete of ours leaves a foreign route alone. Thread-safe: the
// agent's worker calls it while the test inspects it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "dataplane/dataplane.h"

namespace vcra::dataplane {

class FakeDataplane final : public Dataplane {
 public:
  std::string Name() const override { return "fake"; }
  Status Connect() override;
  Status EnsureUplink(const UplinkConfig& uplink) override;
  StatusOr<std::vector<net::Route>> DumpOwnedRoutes() override;
  std::vector<OpResult> Apply(std::span<const RouteOp> ops) override;
  std::vector<net::IpPrefix> UplinkAddresses() const override { return uplink_addresses(); }
  // UNAVAILABLE when disconnected, or the status set by FailProbes.
  Status Probe() override;

  // Test controls.
  void AddForeignRoute(const net::Route& route);
  void RemoveForeignRoute(const net::IpPrefix& dst);
  void AddOwnedRouteBehindOurBack(const net::Route& route);  // e.g. left by a previous run
  void DeleteRouteBehindOurBack(const net::IpPrefix& dst);
  void FailPrefix(const net::IpPrefix& dst, Status status);  // until ClearFailures
  void ClearFailures();
  // The connection drops: every call returns UNAVAILABLE until Connect() succeeds again.
  // With `wipe`, the table is emptied as after a dataplane restart.
  void Disconnect(bool wipe);
  void RefuseConnect(bool refuse);
  // The next `count` dumps return `status` (OK: none fails).
  void FailDumps(Status status, int count = 1);
  // Probes return `status` until called again with OK.
  void FailProbes(Status status);
  size_t dumps() const;
  size_t probes() const;
  // An address the operator configured on the uplink before the agent started.
  void AddUplinkAddress(const net::IpPrefix& address);

  std::map<net::IpPrefix, net::Route> OwnedRoutes() const;
  std::map<net::IpPrefix, net::Route> ForeignRoutes() const;
  std::optional<net::Route> Lookup(const net::IpPrefix& dst) const;
  size_t ops_applied() const;
  size_t connects() const;
  bool uplink_up() const;
  std::vector<net::IpPrefix> uplink_addresses() const;

 private:
  mutable std::mutex mu_;
  bool connected_ = false;
  bool refuse_connect_ = false;
  bool uplink_up_ = false;
  std::vector<net::IpPrefix> uplink_addresses_;
  std::map<net::IpPrefix, net::Route> owned_;
  std::map<net::IpPrefix, net::Route> foreign_;
  std::map<net::IpPrefix, Status> failures_;
  Status dump_failure_;
  int dump_failures_left_ = 0;
  Status probe_failure_;
  size_t ops_applied_ = 0;
  size_t connects_ = 0;
  size_t dumps_ = 0;
  size_t probes_ = 0;
};

}  // namespace vcra::dataplane
