// The Dataplane for fd.io VPP, through VPP's binary API socket (VppClient; no VPP library).
//
// OWNERSHIP RULE (docs/design.md "Ownership: never touch what is not ours")
// -------------------------------------------------------------------
// Routes the agent adds must be recognisable after an agent restart, and nothing else in VPP's
// FIB may ever be changed or removed. Two modes, chosen at Connect() from VPP's message table:
//
// 1. FIB source (preferred; VPP >= 21.06, messages fib_source_add/fib_source_dump,
//    ip_route_add_del_v2, ip_route_v2_dump). The agent owns a FIB source named
//    `fib_source_name` (default "vpp-calico-route-agent", priority 100, i.e. preferred over the
//    API source 128 and the CLI 129). A real VPP allocates a NEW source id on every
//    fib_source_add, even for a name it already has; ids are 8 bits and there is no delete. So
//    Connect() first looks the name up with fib_source_dump and reuses the id (lowest id when
//    several exist), and only calls fib_source_add when the name is absent (first start, or
//    after a VPP restart, which empties the FIB and the source table). Routes are added and
//    deleted with ip_route_add_del_v2 carrying that src, and DumpOwnedRoutes lists only
//    ip_route_v2_dump(src = ours). A delete with our src removes only our source's contribution
//    to a FIB entry: another client's path for the same prefix (API, CLI, interface) stays.
// 2. Pool rule (fallback when VPP lacks any of those messages): a route is the agent's iff
//    its prefix lies inside one of the configured Calico IP pools (`pools`; a /0 never counts)
//    AND it has exactly one path, of type NORMAL, out of the uplink's sw_if_index, via a
//    non-zero next hop. Ops outside the pools are refused (FailedPrecondition) without being
//    sent. Without pools the fallback cannot recognise anything, so Connect() fails.
//    Routes use the API source (ip_route_add_del), so a CLI/interface/other-source entry for the
//    same prefix is never removed by our delete either.
// In both modes: the default route, connected/local/drop entries VPP creates for interface
// addresses, other clients' routes and anything outside the pools are never reported by
// DumpOwnedRoutes and never removed.
//
// Route programming: upsert = ip_route_add_del(_v2) is_add=1, is_multipath=0 with one path
// {sw_if_index = uplink, nh = gateway}; VPP replaces the whole path set of the entry in one
// step (docs/vpp-api.md section 7), so a next-hop change has no gap. Delete = is_add=0,
// is_multipath=0, n_paths=0; deleting a route that is not there returns 0 = success. A batch is
// pipelined with a bounded window, spread over `api_connections` sockets by a hash of the prefix
// (so ops on one prefix keep their order), and cut into phases at every change between upserts
// and deletes, each phase finishing before the next starts (so a batch stays make-before-break
// across connections; once a connection is lost, later phases are not sent); every op gets
// exactly one result. A lost connection (VPP
// restart, socket closed) gives UNAVAILABLE for every op whose reply did not arrive, including
// ops VPP may have executed just before dying: nothing is reported OK that was not confirmed.
// Connect() again re-handshakes (message ids may have changed) and re-runs EnsureUplink.
//
// UPLINK DELETED AND RE-CREATED (docs/design.md "The uplink under a running agent"): VPP keeps
// the routes through a deleted interface, with their paths, as permanent drops, and shares one
// path list between every route with the same paths, so re-adding a route with the same path
// joins the dead list as long as any route still holds it. Probe() therefore also checks that
// the uplink is still what EnsureUplink left (there, same name, admin-up, configured addresses;
// and no sw_interface_event saying it was deleted) and otherwise returns UNAVAILABLE, so the
// agent reconnects; EnsureUplink then repairs the uplink and, whenever it had to repair
// anything, re-points every route of ours onto a path weight they never had (1, 2, 3, ...; one
// path per route, so the weight changes nothing else): a path set no route holds, hence a new,
// working path list. Later upserts use that weight too (DumpOwnedRoutes learns it back after
// an agent restart). Each re-point replaces a path set in place, so no route is ever missing.
//
// Threading: like every Dataplane, used from one thread at a time; calls block. Apply runs the
// extra connections' share of a phase on short-lived threads of its own and joins them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/vpp/vpp_client.h"

namespace vcra::dataplane::vpp {

struct VppDataplaneConfig {
  std::string api_socket = "/run/vpp/api.sock";
  std::string client_name = "vpp-calico-route-agent";
  std::string fib_source_name = "vpp-calico-route-agent";
  uint8_t fib_source_priority = 100;
  // Calico IP pools, used only by the fallback ownership rule (in FIB-source mode the source
  // alone decides).
  std::vector<net::IpPrefix> pools;
  // Fail Connect() instead of falling back to the pool rule when VPP lacks the v2 messages.
  bool require_fib_source = false;
  std::chrono::milliseconds request_timeout{10000};
  // Unanswered requests per API connection (VPP queues replies without bound).
  size_t max_outstanding = 256;
  // API connections route ops are spread over (by prefix; the first one also carries the
  // handshake checks, dumps and uplink calls). A real VPP's main loop reads at most 4 KiB per
  // socket per pass (18 route messages) and sleeps between passes (poll-sleep-usec), so one
  // connection caps route programming far below VPP's own speed; each extra connection adds
  // another 4 KiB read per pass. Against VPP 26.06, 8 was faster than 4 and 12 or 14 were not
  // clearly faster than 8 (VPP takes at most 16 ready files per pass); docs/performance.md "VPP
  // programming" has the figures.
  size_t api_connections = 8;
  // VppClientOptions::reply_batching_pause (0: a read per reply, as VPP sends them).
  std::chrono::microseconds reply_batching_pause{VppClientOptions{}.reply_batching_pause};
};

class VppDataplane final : public Dataplane {
 public:
  enum class Ownership { kFibSource, kPoolRule };

  explicit VppDataplane(VppDataplaneConfig config);
  ~VppDataplane() override;

  std::string Name() const override { return "vpp"; }
  Status Connect() override;
  Status EnsureUplink(const UplinkConfig& uplink) override;
  StatusOr<std::vector<net::Route>> DumpOwnedRoutes() override;
  std::vector<OpResult> Apply(std::span<const RouteOp> ops) override;

  // The reader thread sees VPP close the socket (VPP restart) before any request does.
  Status Probe() override;
  // Pools change when Calico's IPPools do; only the pool rule uses them.
  void SetPools(std::vector<net::IpPrefix> pools) override { config_.pools = std::move(pools); }
  // sockclnt_delete and close; routes stay in VPP.
  void Disconnect();

  Ownership ownership() const { return ownership_; }
  std::optional<uint8_t> fib_source_id() const { return source_id_; }
  std::optional<uint32_t> uplink_sw_if_index() const { return uplink_index_; }
  std::vector<net::IpPrefix> UplinkAddresses() const override { return uplink_addresses_; }
  std::string vpp_version() const;
  // How often a probe found the uplink not as EnsureUplink left it, and how many routes were
  // re-pointed at a repaired uplink since the start.
  uint64_t uplink_changes_seen() const { return uplink_changes_seen_; }
  uint64_t routes_repointed() const { return routes_repointed_; }

 private:
  Status SetUpOwnership();
  bool InPools(const net::IpPrefix& p) const;
  StatusOr<SwInterfaceDetails> ResolveUplink(const UplinkConfig& uplink);
  // Empty when the uplink is as EnsureUplink left it, else what differs (for the log).
  StatusOr<std::string> UplinkDrift();
  // The addresses VPP reports on an interface for one family (malformed details skipped).
  StatusOr<std::vector<WirePrefix>> DumpInterfaceAddresses(uint32_t sw_if_index, bool ipv6);
  // Moves every route of ours off whatever path list it holds, onto a fresh one.
  Status RepointOwnedRoutes();
  // Asks VPP for sw_interface_event on the main connection (best effort).
  void SubscribeInterfaceEvents();
  StatusOr<std::vector<IpRoute>> DumpTable(bool ipv6);
  bool AllConnected() const;
  void CloseAll();
  // Runs requests[k] on connection shard[k] (one thread per extra connection), results in order.
  std::vector<StatusOr<Bytes>> CallSharded(std::vector<Bytes> requests,
                                           const std::vector<size_t>& shard,
                                           std::string_view reply_name_crc);

  VppDataplaneConfig config_;
  std::unique_ptr<VppClient> client_;
  // Connections 2..api_connections: route ops only.
  std::vector<std::unique_ptr<VppClient>> route_clients_;
  Ownership ownership_ = Ownership::kFibSource;
  std::optional<uint8_t> source_id_;
  std::optional<uint32_t> uplink_index_;
  std::vector<net::IpPrefix> uplink_addresses_;
  std::optional<UplinkConfig> last_uplink_;
  std::string uplink_name_;  // as VPP named it at the last EnsureUplink
  // Set when the uplink was found changed (or needed a repair); cleared once every route of
  // ours has been re-pointed.
  bool repoint_wanted_ = false;
  // The weight of the one path of every route we program: 1, one more at each re-point, and
  // the highest our routes carry at each DumpOwnedRoutes.
  uint8_t path_weight_ = 1;
  uint64_t uplink_changes_seen_ = 0;
  uint64_t routes_repointed_ = 0;
  // Written by the client's reader thread (event handler), read by Probe; shared so that a
  // late event after a reconnect never touches freed memory.
  struct UplinkWatch {
    std::atomic<uint32_t> sw_if_index{~0u};
    std::atomic<bool> deleted{false};
  };
  std::shared_ptr<UplinkWatch> uplink_watch_ = std::make_shared<UplinkWatch>();
};

}  // namespace vcra::dataplane::vpp
