// The Linux kernel dataplane: routes programmed over an rtnetlink socket (libmnl).
//
// Ownership: every route the agent writes carries `route_protocol` (rtm_protocol) in
// `route_table`. DumpOwnedRoutes reports only routes with both, and deletes name the protocol so
// the kernel itself refuses to delete anyone else's route (IPv4 and IPv6 match RTM_DELROUTE on
// the protocol when one is given). Kernel, boot, static, DHCP, BIRD or Felix routes, and any
// default route, are invisible to the agent.
//
// The kernel keys a route by (table, dst, tos, metric), not by protocol: NLM_F_REPLACE would take
// over whatever holds the key. So an upsert is a replace only when the caller holds that a route
// of ours is at the prefix (RouteOp::replaces_ours: the reconciler's last dump and acknowledged
// ops); every other upsert creates exclusively (NLM_F_EXCL), and only when that meets an
// existing route does a dump of the family say who holds the key. Ours (a gateway change, drift)
// is replaced; a route that vanished meanwhile is created again, still exclusively; anyone
// else's is left alone and the op fails with ALREADY_EXISTS "<prefix> is held by a foreign route
// (proto static, via 172.16.0.9)", which the caller retries with backoff. rtnetlink has no
// compare-and-swap, so two windows are left: between that dump and the replace (microseconds),
// and a foreign `ip route replace` of a key of ours after the caller's last dump (the next dump
// shows it). A dedicated `route_metric` is a different key, so the agent's route then lives
// beside the foreign one and the lower metric wins.
//
// Metric changes: a route of ours at a metric other than `route_metric` (left by an earlier
// configuration) makes the dump report its prefix with no gateway; the caller's upsert or delete
// of that prefix then removes the old route once the op itself succeeded.
//
// Batching: Apply encodes many ops into one sendmsg (each message with its own sequence number and
// NLM_F_ACK) and matches the kernel's acks back by sequence number. Batches are cut at
// kMaxMessagesPerSend so the acks of one send always fit the receive buffer; an ENOBUFS on receive
// is never silent: the unanswered ops come back UNAVAILABLE.
//
// A broken socket (a send or receive error that is not a per-message errno, or no reply within
// `reply_timeout`) closes it: every unanswered op is UNAVAILABLE and so is every later call until
// Connect() succeeds again. The caller then reconnects and resyncs (Dataplane contract).
//
// Threading: one thread at a time (the dataplane worker); every call blocks on the kernel.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "dataplane/dataplane.h"
#include "dataplane/linux/rtnl_codec.h"
#include "net/ip.h"

struct mnl_socket;
struct nlmsghdr;

namespace vcra::dataplane {

// Route protocol 212 marks the agent's routes. It is free in iproute2's rt_protos (0-4 kernel
// reserved, 8-16 gated..dhcp, 18 keepalived, 42 babel, 99 openr, 186-189 bgp/isis/ospf/rip,
// 192 eigrp) and used by none of the route sources a Calico host is likely to run: Felix (80),
// BIRD (12), zebra/FRR (11, 186-189), babel (42), openr (99), keepalived (18), dhcp (16).
inline constexpr uint8_t kDefaultRouteProtocol = 212;
inline constexpr uint32_t kMainRouteTable = 254;

struct NetlinkDataplaneConfig {
  uint8_t route_protocol = kDefaultRouteProtocol;
  // Tables above 255 are sent as RTA_TABLE. 0 (unspec) and 255 (local) are refused.
  uint32_t route_table = kMainRouteTable;
  // 0 is the kernel default (IPv4 0, IPv6 1024). Part of the kernel's key: see the file comment.
  uint32_t route_metric = 0;
  // SO_RCVBUF(FORCE): dumps of large tables and the acks of a batch queue up here.
  int receive_buffer_bytes = 8 << 20;
  // Bound on any single wait for the kernel; the kernel answers within microseconds, so hitting
  // this means the socket is unusable.
  std::chrono::milliseconds reply_timeout{10000};
};

class NetlinkDataplane final : public Dataplane {
 public:
  // Messages per sendmsg; with capped acks this keeps the replies of one send far below any
  // receive buffer.
  static constexpr size_t kMaxMessagesPerSend = 200;
  static constexpr size_t kMaxSendBytes = 64 * 1024;

  explicit NetlinkDataplane(NetlinkDataplaneConfig config = {});
  ~NetlinkDataplane() override;
  NetlinkDataplane(const NetlinkDataplane&) = delete;
  NetlinkDataplane& operator=(const NetlinkDataplane&) = delete;

  // Refuses configurations that could make the agent touch routes that are not its own
  // (protocol 0 is a wildcard for RTM_DELROUTE; 1-4 belong to the kernel and static routes).
  static Status ValidateConfig(const NetlinkDataplaneConfig& config);

  std::string Name() const override { return "linux"; }

  // Opens a NETLINK_ROUTE socket, closing any previous one. Errors: INVALID_ARGUMENT for a bad
  // config, UNAVAILABLE when the socket cannot be opened.
  Status Connect() override;

  // Resolves the uplink by name or index (NOT_FOUND when missing), sets it up, adds the
  // configured addresses it lacks (never removes one) and remembers its ifindex for routes.
  // Addresses are interface addresses with their host bits (net::IpPrefix::InterfaceAddress,
  // 10.99.0.1/24). One whose host part is all zeros, such as the canonical 10.99.0.0/24 that
  // IpPrefix::Parse makes of "10.99.0.1/24", is refused with INVALID_ARGUMENT, never configured.
  Status EnsureUplink(const UplinkConfig& uplink) override;

  StatusOr<std::vector<net::Route>> DumpOwnedRoutes() override;

  // Upserts need the uplink: before EnsureUplink they fail with FAILED_PRECONDITION.
  std::vector<OpResult> Apply(std::span<const RouteOp> ops) override;

  // The resolved uplink ifindex, once EnsureUplink succeeded.
  std::optional<uint32_t> uplink_index() const { return uplink_index_; }
  std::vector<net::IpPrefix> UplinkAddresses() const override { return uplink_addresses_; }
  // How many table dumps looked for the holder of a key that an exclusive create met (tests).
  uint64_t holder_lookups() const { return holder_lookups_; }
  const NetlinkDataplaneConfig& config() const { return config_; }

  // Points the socket's descriptor at /dev/null, as if the socket had died under us: every later
  // send fails until Connect().
  void BreakSocketForTest();

 private:
  struct Pending;
  // kDeleteStale removes our route of the op's prefix at an old metric (`metric`).
  enum class WriteKind { kCreate, kReplace, kDelete, kDeleteStale };
  struct Write {
    size_t op;  // index in Apply's ops
    WriteKind kind;
    uint32_t metric = 0;
  };

  uint32_t NextSeq();
  void Disconnect();
  Status Send(const void* buf, size_t len);
  // Receives one datagram into recv_buf_; returns its length.
  StatusOr<size_t> Receive();
  // Sends one request and feeds every data message of its answer to `on_data` until the
  // NLMSG_DONE or ack. Socket failures disconnect and return UNAVAILABLE.
  Status Transact(const void* buf, size_t len, uint32_t seq,
                  const std::function<Status(const nlmsghdr&)>& on_data);
  StatusOr<std::vector<net::Route>> DumpFamily(net::Family family);
  rtnl::RouteOwner Owner() const {
    return {config_.route_protocol, config_.route_table, config_.route_metric};
  }

  // EnsureUplink's steps.
  StatusOr<rtnl::LinkInfo> ResolveLink(const UplinkConfig& uplink, const std::string& what);
  Status SetLinkUp(const rtnl::LinkInfo& link, const std::string& what);
  StatusOr<std::vector<net::IpPrefix>> ListLinkAddresses(uint32_t index, const std::string& what);
  // Adds each of `wanted` missing from `present`, and records it there.
  Status AddMissingAddresses(const std::vector<net::IpPrefix>& wanted, uint32_t index,
                             const std::string& what, std::vector<net::IpPrefix>& present);

  // Apply's steps. An op that cannot be sent as it is: its error, before any write.
  Status RefuseUnwritable(const RouteOp& op) const;
  // Writes in batches of kMaxMessagesPerSend and records each op's result.
  void SendWrites(std::span<const Write> writes, std::span<const RouteOp> ops,
                  std::vector<OpResult>& results);
  // For upserts whose exclusive create met a route at the same kernel key: replaces the ones
  // that are ours, creates again the ones that vanished meanwhile, and reports a conflict
  // (ALREADY_EXISTS, naming the holder) for the others.
  void ResolveContested(std::span<const size_t> contested, std::span<const RouteOp> ops,
                        std::vector<OpResult>& results);
  // The routes at our kernel key (table, metric, tos 0) for each of `wanted`, whoever they
  // belong to.
  StatusOr<std::unordered_map<net::IpPrefix, rtnl::RouteEntry>> FindKeyHolders(
      net::Family family, const std::unordered_set<net::IpPrefix>& wanted);
  // After a successful upsert or delete of a prefix that has routes of ours at an old metric
  // (route_metric changed), removes those; their failure fails the op, so it is retried.
  void RemoveStaleMetrics(std::span<const RouteOp> ops, std::vector<OpResult>& results);
  // The dump's answer: routes at the current metric as they are; a prefix with routes of ours
  // at other metrics is remembered in stale_metrics_ and reported with no gateway (drift).
  std::vector<net::Route> SeparateStaleMetrics(net::Family family,
                                               const std::vector<net::Route>& routes,
                                               const std::vector<uint32_t>& metrics);
  // Sends one chunk of encoded ops and records their results; false once the socket broke.
  bool FlushChunk(size_t bytes, Pending& pending, std::span<const RouteOp> ops,
                  std::vector<OpResult>& results);

  NetlinkDataplaneConfig config_;
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::optional<uint32_t> uplink_index_;
  std::vector<net::IpPrefix> uplink_addresses_;
  // Prefixes with routes of ours at metrics other than the configured one (the last dump's).
  std::unordered_map<net::IpPrefix, std::vector<uint32_t>> stale_metrics_;
  uint64_t holder_lookups_ = 0;
  std::vector<uint8_t> send_buf_;
  std::vector<uint8_t> recv_buf_;
};

}  // namespace vcra::dataplane
