// The seam between the agent and a forwarding plane (the Linux kernel, VPP, or a test fake).
//
// Contract: batch in, per-op results out. Ops are self-contained values; each carries a sequence
// number that the result echoes, so the reconciler can drop results of superseded ops.
//
// Ownership: a Dataplane only ever reports, replaces or deletes routes that it recognises as the
// agent's own (Linux: our rtnetlink protocol number; VPP: our FIB source). Everything else in
// the table is invisible to the agent.
//
// Threading: a Dataplane is used from one thread at a time (the dataplane worker); calls block.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "net/ip.h"
#include "net/route_op.h"

namespace vcra::dataplane {

// The interface routes leave through, and the addresses this host's peers reach it on.
struct UplinkConfig {
  // By name ("eth0", "GigabitEthernet0/8/0") or by index (Linux ifindex, VPP sw_if_index);
  // exactly one is set.
  std::string name;
  std::optional<uint32_t> index;
  // Interface addresses WITH their host bits (net::IpPrefix::InterfaceAddress, e.g.
  // 10.99.0.1/24): address() is the uplink's own address, len() its subnet. Added when missing;
  // addresses already there are never removed.
  std::vector<net::IpPrefix> addresses;
};

// The op types live in net/ (below both routing/ and dataplane/); these names keep the backends'
// spelling.
using OpType = net::OpType;
using RouteOp = net::RouteOp;
using OpResult = net::OpResult;

class Dataplane {
 public:
  virtual ~Dataplane() = default;

  // "linux", "vpp", "fake": for logs and metrics.
  virtual std::string Name() const = 0;

  // Opens (or re-opens after a loss) the connection to the dataplane. Idempotent.
  virtual Status Connect() = 0;

  // Brings the uplink admin-up and adds whichever configured addresses it lacks.
  virtual Status EnsureUplink(const UplinkConfig& uplink) = 0;

  // Every route the agent owns in the dataplane right now.
  virtual StatusOr<std::vector<net::Route>> DumpOwnedRoutes() = 0;

  // Applies the ops in order; returns one result per op, in the same order. An UNAVAILABLE
  // result means the connection to the dataplane was lost: the caller reconnects and resyncs.
  // ALREADY_EXISTS for an upsert means the prefix is held by a route that is not ours (e.g. a
  // `proto static` route): nothing was changed, the caller retries later.
  virtual std::vector<OpResult> Apply(std::span<const RouteOp> ops) = 0;

  // The addresses the uplink carries after the last successful EnsureUplink (host bits kept):
  // the configured ones plus whatever the operator put there. The agent publishes them when no
  // address is configured, and never routes to a peer that claims one of them.
  virtual std::vector<net::IpPrefix> UplinkAddresses() const { return {}; }

  // Cheap liveness check the agent runs when idle, so that a dataplane restart is noticed
  // without waiting for the next op or resync. UNAVAILABLE means: reconnect and replay.
  virtual Status Probe() { return absl::OkStatus(); }

  // Calico's enabled IP pools changed. Dataplanes whose ownership rule depends on them (VPP
  // without FIB sources) use them; the others ignore them.
  virtual void SetPools(std::vector<net::IpPrefix> /*pools*/) {}
};

}  // namespace vcra::dataplane
