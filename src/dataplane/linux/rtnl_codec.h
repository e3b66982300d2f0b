// Encoding and decoding of the few rtnetlink messages the Linux dataplane speaks (links,
// addresses, routes, acks), as pure functions over byte buffers. No sockets here, so every branch
// can be fed hostile bytes by a unit test without root.
//
// Decoders never trust the kernel's bytes: framing is checked with mnl_nlmsg_ok, attributes with
// mnl_attr_parse + mnl_attr_validate, and every length against the family's address size. A
// message that cannot be decoded is skipped and counted, or reported as an error Status; nothing
// here aborts or throws.
//
// Encoders write into caller-provided buffers. REQUIRES for every Put*: `buf` is 4-byte aligned
// and has at least kMaxRequestBytes writable bytes.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/ip.h"

namespace vcra::dataplane::rtnl {

// Upper bound of any message built here (the largest, an IPv6 route, is 92 bytes).
inline constexpr size_t kMaxRequestBytes = 128;

// What marks a route as the agent's: written into every request, matched on every dump.
struct RouteOwner {
  uint8_t protocol = 0;
  uint32_t table = 0;
  // 0 leaves the kernel default (0 for IPv4, 1024 for IPv6) and sends no RTA_PRIORITY.
  uint32_t metric = 0;
};

// How an RTM_NEWROUTE treats a route already at the same kernel key (table, dst, tos, metric;
// the protocol is not part of the key).
enum class RouteWrite {
  // NLM_F_CREATE|NLM_F_EXCL: EEXIST when any route holds the key, whoever it belongs to.
  kCreateExclusive,
  // NLM_F_CREATE|NLM_F_REPLACE: takes the key over whatever holds it. Only for a key known to
  // hold a route of ours.
  kReplace,
};

// RTM_NEWROUTE|NLM_F_ACK: unicast, scope universe, `route.dst` via `route.gateway` out of `oif`.
// Returns the message length.
// REQUIRES: route.dst and route.gateway have the same family.
size_t PutRouteWrite(void* buf, uint32_t seq, const net::Route& route, uint32_t oif,
                     const RouteOwner& owner, RouteWrite mode);

// RTM_DELROUTE|NLM_F_ACK matching dst/len, table and protocol (and the metric when set), so the
// kernel itself refuses to delete a route of any other protocol.
size_t PutRouteDelete(void* buf, uint32_t seq, const net::IpPrefix& dst, const RouteOwner& owner);

// RTM_GETROUTE dump of one family.
size_t PutRouteDump(void* buf, uint32_t seq, net::Family family);

// RTM_GETLINK of one link, by index when `index` is set, else by name (IFLA_IFNAME).
size_t PutGetLink(void* buf, uint32_t seq, std::string_view name, std::optional<uint32_t> index);

// RTM_NEWLINK on an existing link setting IFF_UP only (ifi_change = IFF_UP).
size_t PutSetLinkUp(void* buf, uint32_t seq, uint32_t index);

// RTM_GETADDR dump of all families.
size_t PutAddressDump(void* buf, uint32_t seq);

// RTM_NEWADDR with NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK.
size_t PutNewAddress(void* buf, uint32_t seq, uint32_t index, const net::IpAddress& address,
                     int prefix_len);

struct WalkResult {
  bool done = false;         // the answer is complete (NLMSG_DONE or an ack)
  bool interrupted = false;  // NLM_F_DUMP_INTR: the dump raced with a change and may be
                             // inconsistent; read it to the end, then restart it
};

// Walks the messages of one received datagram that answer request `seq` from the kernel to our
// `portid` (other messages, e.g. late acks of an earlier request, are skipped). Data messages go
// to `on_data`; its error stops the walk.
// Errors: the request's NLMSG_ERROR (its errno, mapped by ErrnoStatus; the answer is then over),
// a truncated or malformed framing (DATA_LOSS), NLMSG_OVERRUN (DATA_LOSS).
StatusOr<WalkResult> WalkReplies(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                                 const std::function<Status(const nlmsghdr&)>& on_data);

struct RouteFilter {
  uint32_t seq = 0;
  uint32_t portid = 0;
  RouteOwner owner;
  // When set, an owned route leaving through another interface is reported with an unspecified
  // gateway, so the caller sees drift and replaces it onto the uplink (or deletes it).
  std::optional<uint32_t> uplink_index;
};

struct RouteDumpChunk {
  std::vector<net::Route> routes;  // owned routes only
  std::vector<uint32_t> metrics;   // metrics[i]: routes[i]'s RTA_PRIORITY (0 when absent)
  bool done = false;               // NLMSG_DONE seen: the dump is complete
  bool interrupted = false;        // see WalkResult
  int malformed = 0;               // route messages skipped because they could not be decoded
};

// Decodes one datagram of an RTM_GETROUTE dump. Keeps only unicast routes with our protocol in
// our table that have a single next hop with a gateway; multipath routes, default routes and
// cloned entries are skipped. Errors as for WalkReplies.
StatusOr<RouteDumpChunk> ParseRouteDump(std::span<const uint8_t> datagram,
                                        const RouteFilter& filter);

// The verdict on one route message (exposed for tests): a route, or nullopt when it is not ours
// or not representable. Errors: the message cannot be decoded.
// `metric`, when given, receives the route's RTA_PRIORITY (0 when absent).
StatusOr<std::optional<net::Route>> ParseRouteMessage(const nlmsghdr& nlh,
                                                      const RouteFilter& filter,
                                                      uint32_t* metric = nullptr);

// Any route of a dump, whoever it belongs to: what finding the holder of a kernel key and
// describing it need.
struct RouteEntry {
  net::IpPrefix dst;
  uint32_t table = 0;
  uint8_t protocol = 0;
  uint8_t type = 0;  // RTN_*
  uint8_t tos = 0;
  uint8_t src_len = 0;  // IPv6 source-specific routes live under another key
  uint32_t metric = 0;  // RTA_PRIORITY; 0 when absent (the IPv4 default)
  std::optional<net::IpAddress> gateway;
  uint32_t oif = 0;
  bool multipath = false;
  bool cloned = false;
};

// Decodes any IPv4 or IPv6 route message; nullopt for other families and message types.
// Errors: the message cannot be decoded.
StatusOr<std::optional<RouteEntry>> ParseRouteEntry(const nlmsghdr& nlh);

// The metric the kernel files a route under when the request names `metric` (0 = none given):
// IPv4 keeps 0, IPv6 uses 1024.
uint32_t KernelMetric(net::Family family, uint32_t metric);

// iproute2's name of a route protocol ("static", "bird"), or its number.
std::string ProtocolName(uint8_t protocol);

// "proto static, via 172.16.0.9" (or "..., blackhole", "..., dev index 3", "..., multipath").
std::string DescribeRouteHolder(const RouteEntry& entry);

struct LinkInfo {
  uint32_t index = 0;
  uint32_t flags = 0;  // IFF_*
  std::string name;
};
StatusOr<LinkInfo> ParseLinkMessage(const nlmsghdr& nlh);

struct AddressInfo {
  uint32_t index = 0;
  net::IpAddress address;  // IFA_LOCAL when present (the local end of a point-to-point link)
  int prefix_len = 0;
};
StatusOr<AddressInfo> ParseAddressMessage(const nlmsghdr& nlh);

// One NLMSG_ERROR for our port: error 0 is an ack.
struct Ack {
  uint32_t seq = 0;
  int error = 0;               // positive errno
  std::string kernel_message;  // NLMSGERR_ATTR_MSG (extended ack), when the kernel gave one
};

// Extracts the acks of one datagram; anything else is skipped. Errors: truncated framing.
StatusOr<std::vector<Ack>> ParseAcks(std::span<const uint8_t> datagram, uint32_t portid);

// "<context>: <strerror>[ (<kernel message>)]" with a code chosen so that UNAVAILABLE is never
// produced: for a Dataplane that code means "the connection is lost", which a per-route errno
// (ENETUNREACH, EAGAIN...) is not.
Status ErrnoStatus(int error, std::string_view context, std::string_view kernel_message = {});

}  // namespace vcra::dataplane::rtnl
