#include "dataplane/linux/rtnl_codec.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace vcra::dataplane::rtnl {
namespace {

// The kernel sends -errno; a hostile or corrupt value may be INT_MIN, whose negation is UB.
int ErrnoOf(int32_t error) {
  if (error == INT32_MIN) return EINVAL;
  return error < 0 ? -error : error;
}

int FamilyToAf(net::Family f) { return f == net::Family::kV4 ? AF_INET : AF_INET6; }

size_t AddressBytes(net::Family f) { return f == net::Family::kV4 ? 4 : 16; }

nlmsghdr* PutHeader(void* buf, uint16_t type, uint16_t flags, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  return nlh;
}

rtmsg* PutRouteHeader(nlmsghdr* nlh, const net::IpPrefix& dst, const RouteOwner& owner) {
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(FamilyToAf(dst.family()));
  rtm->rtm_dst_len = static_cast<uint8_t>(dst.len());
  // rtm_table is 8 bits; larger ids travel only in RTA_TABLE (iproute2 does the same).
  rtm->rtm_table =
      owner.table < 256 ? static_cast<uint8_t>(owner.table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  rtm->rtm_protocol = owner.protocol;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32(nlh, RTA_TABLE, owner.table);
  // A /0 has no RTA_DST; the kernel treats a missing RTA_DST as the zero address.
  if (dst.len() > 0) {
    mnl_attr_put(nlh, RTA_DST, AddressBytes(dst.family()), dst.address().bytes().data());
  }
  if (owner.metric != 0) mnl_attr_put_u32(nlh, RTA_PRIORITY, owner.metric);
  return rtm;
}

// Validating attribute table filler for mnl_attr_parse. `kinds[type]` says what a known attribute
// must look like; unknown types are ignored (newer kernels add attributes).
template <size_t N>
struct AttrTable {
  std::array<const nlattr*, N> attrs{};
  const std::array<mnl_attr_data_type, N>* kinds = nullptr;
};

template <size_t N>
int ParseAttr(const nlattr* attr, void* data) {
  auto* table = static_cast<AttrTable<N>*>(data);
  uint16_t type = mnl_attr_get_type(attr);
  if (type >= N) return MNL_CB_OK;
  mnl_attr_data_type kind = (*table->kinds)[type];
  if (kind == MNL_TYPE_UNSPEC) return MNL_CB_OK;
  if (mnl_attr_validate(attr, kind) < 0) return MNL_CB_ERROR;
  table->attrs[type] = attr;
  return MNL_CB_OK;
}

template <size_t N>
Status ParseAttrs(const nlmsghdr& nlh, size_t fixed_header, AttrTable<N>& table,
                  std::string_view what) {
  if (nlh.nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(fixed_header)) {
    return absl::DataLossError(
        absl::StrCat(std::string(what), " message too short: ", nlh.nlmsg_len));
  }
  if (mnl_attr_parse(&nlh, static_cast<unsigned>(fixed_header), ParseAttr<N>, &table) !=
      MNL_CB_OK) {
    return absl::DataLossError(
        absl::StrCat(std::string(what), " message has a malformed attribute"));
  }
  return Status();
}

std::optional<net::IpAddress> AddressAttr(const nlattr* attr, int af) {
  if (attr == nullptr) return std::nullopt;
  net::Family family = af == AF_INET ? net::Family::kV4 : net::Family::kV6;
  if (mnl_attr_get_payload_len(attr) != AddressBytes(family)) return std::nullopt;
  return net::IpAddress::FromBytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(attr)));
}

std::array<mnl_attr_data_type, RTA_MAX + 1> RouteAttrKinds() {
  std::array<mnl_attr_data_type, RTA_MAX + 1> k{};
  k.fill(MNL_TYPE_UNSPEC);
  k[RTA_DST] = MNL_TYPE_BINARY;
  k[RTA_GATEWAY] = MNL_TYPE_BINARY;
  k[RTA_OIF] = MNL_TYPE_U32;
  k[RTA_TABLE] = MNL_TYPE_U32;
  k[RTA_MULTIPATH] = MNL_TYPE_BINARY;
  k[RTA_VIA] = MNL_TYPE_BINARY;
  k[RTA_PRIORITY] = MNL_TYPE_U32;
  return k;
}

// Data in a std::span<const uint8_t> may come from anywhere (a test's byte literal); the nlmsghdr
// walk needs 4-byte alignment, so copy when it is not aligned.
std::span<const uint8_t> Aligned(std::span<const uint8_t> in, std::vector<uint32_t>& storage) {
  if (in.empty() || reinterpret_cast<uintptr_t>(in.data()) % alignof(nlmsghdr) == 0) return in;
  storage.assign((in.size() + 3) / 4, 0);
  std::memcpy(storage.data(), in.data(), in.size());
  return {reinterpret_cast<const uint8_t*>(storage.data()), in.size()};
}

// Walks the messages of a datagram. Not mnl_nlmsg_ok/mnl_nlmsg_next: libmnl compares
// (int)nlmsg_len, so a length of 2^31 or more passes its check and the next step jumps out of the
// buffer (found by the fuzz test). Here every comparison is unsigned.
class MessageWalker {
 public:
  explicit MessageWalker(std::span<const uint8_t> bytes) : rest_(bytes) {}

  // The next whole message, or nullptr at the end or at a message cut short (see leftover()).
  const nlmsghdr* Next() {
    if (rest_.size() < sizeof(nlmsghdr)) return nullptr;
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(rest_.data());
    if (nlh->nlmsg_len < sizeof(nlmsghdr) || nlh->nlmsg_len > rest_.size()) return nullptr;
    rest_ = rest_.subspan(std::min<size_t>(MNL_ALIGN(nlh->nlmsg_len), rest_.size()));
    return nlh;
  }
  size_t leftover() const { return rest_.size(); }

 private:
  std::span<const uint8_t> rest_;
};

const char* ErrnoText(int error) {
  const char* text = strerrordesc_np(error);
  return text != nullptr ? text : "Unknown error";
}

std::string KernelMessage(const nlmsghdr& nlh) {
  if (!(nlh.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  // With NETLINK_CAP_ACK the request is not echoed (NLM_F_CAPPED) and TLVs follow nlmsgerr's own
  // header; otherwise they follow the echoed request.
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh.nlmsg_flags & NLM_F_CAPPED)) {
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(&nlh));
    offset += err->msg.nlmsg_len >= MNL_NLMSG_HDRLEN ? err->msg.nlmsg_len - MNL_NLMSG_HDRLEN : 0;
  }
  static const std::array<mnl_attr_data_type, NLMSGERR_ATTR_MAX + 1> kinds = [] {
    std::array<mnl_attr_data_type, NLMSGERR_ATTR_MAX + 1> k{};
    k.fill(MNL_TYPE_UNSPEC);
    k[NLMSGERR_ATTR_MSG] = MNL_TYPE_NUL_STRING;
    return k;
  }();
  AttrTable<NLMSGERR_ATTR_MAX + 1> table;
  table.kinds = &kinds;
  if (!ParseAttrs(nlh, offset, table, "ack").ok() || table.attrs[NLMSGERR_ATTR_MSG] == nullptr) {
    return {};
  }
  return mnl_attr_get_str(table.attrs[NLMSGERR_ATTR_MSG]);
}

}  // namespace

size_t PutRouteWrite(void* buf, uint32_t seq, const net::Route& route, uint32_t oif,
                     const RouteOwner& owner, RouteWrite mode) {
  const uint16_t how = mode == RouteWrite::kCreateExclusive ? NLM_F_EXCL : NLM_F_REPLACE;
  nlmsghdr* nlh = PutHeader(buf, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | how, seq);
  rtmsg* rtm = PutRouteHeader(nlh, route.dst, owner);
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  mnl_attr_put(nlh, RTA_GATEWAY, AddressBytes(route.gateway.family()),
               route.gateway.bytes().data());
  mnl_attr_put_u32(nlh, RTA_OIF, oif);
  return nlh->nlmsg_len;
}

size_t PutRouteDelete(void* buf, uint32_t seq, const net::IpPrefix& dst, const RouteOwner& owner) {
  nlmsghdr* nlh = PutHeader(buf, RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq);
  rtmsg* rtm = PutRouteHeader(nlh, dst, owner);
  // NOWHERE means "any scope" to fib_table_delete, as iproute2 sends for "ip route del".
  rtm->rtm_scope = RT_SCOPE_NOWHERE;
  return nlh->nlmsg_len;
}

size_t PutRouteDump(void* buf, uint32_t seq, net::Family family) {
  nlmsghdr* nlh = PutHeader(buf, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(FamilyToAf(family));
  return nlh->nlmsg_len;
}

size_t PutGetLink(void* buf, uint32_t seq, std::string_view name, std::optional<uint32_t> index) {
  nlmsghdr* nlh = PutHeader(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  if (index) {
    ifi->ifi_index = static_cast<int>(*index);
  } else {
    char ifname[IFNAMSIZ] = {};
    std::memcpy(ifname, name.data(), std::min(name.size(), sizeof ifname - 1));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
  }
  // Skip per-VF stats and the like: we want flags and name only.
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return nlh->nlmsg_len;
}

size_t PutSetLinkUp(void* buf, uint32_t seq, uint32_t index) {
  nlmsghdr* nlh = PutHeader(buf, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return nlh->nlmsg_len;
}

size_t PutAddressDump(void* buf, uint32_t seq) {
  nlmsghdr* nlh = PutHeader(buf, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  return nlh->nlmsg_len;
}

size_t PutNewAddress(void* buf, uint32_t seq, uint32_t index, const net::IpAddress& address,
                     int prefix_len) {
  nlmsghdr* nlh =
      PutHeader(buf, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(FamilyToAf(address.family()));
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = index;
  size_t n = AddressBytes(address.family());
  mnl_attr_put(nlh, IFA_LOCAL, n, address.bytes().data());
  mnl_attr_put(nlh, IFA_ADDRESS, n, address.bytes().data());
  return nlh->nlmsg_len;
}

StatusOr<WalkResult> WalkReplies(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                                 const std::function<Status(const nlmsghdr&)>& on_data) {
  WalkResult result;
  std::vector<uint32_t> storage;
  std::span<const uint8_t> bytes = Aligned(datagram, storage);
  MessageWalker walker(bytes);
  while (const nlmsghdr* nlh = walker.Next()) {
    if (nlh->nlmsg_seq != seq || (portid != 0 && nlh->nlmsg_pid != portid)) {
      LOG_DEBUG("netlink: skipping message type {} seq {} (waiting for seq {})", nlh->nlmsg_type,
                nlh->nlmsg_seq, seq);
      continue;
    }
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) result.interrupted = true;
    switch (nlh->nlmsg_type) {
      case NLMSG_NOOP:
        continue;
      case NLMSG_OVERRUN:
        return absl::DataLossError("netlink overrun");
      case NLMSG_DONE: {
        // Since Linux 4.x NLMSG_DONE carries the dump's own error code.
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
          int error = 0;
          std::memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof error);
          if (error < 0) return ErrnoStatus(ErrnoOf(error), "netlink dump");
        }
        result.done = true;
        return result;
      }
      case NLMSG_ERROR: {
        if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
          return absl::DataLossError("truncated netlink error message");
        }
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error == 0) {
          result.done = true;
          return result;
        }
        int error = ErrnoOf(err->error);
        return ErrnoStatus(error, "netlink request", KernelMessage(*nlh));
      }
      default:
        if (nlh->nlmsg_type < NLMSG_MIN_TYPE) continue;
        RETURN_IF_ERROR(on_data(*nlh));
    }
  }
  if (walker.leftover() > 0) {
    return absl::DataLossError(absl::StrCat("truncated netlink message: ", walker.leftover(),
                                            " bytes left over in the datagram"));
  }
  return result;
}

StatusOr<std::optional<net::Route>> ParseRouteMessage(const nlmsghdr& nlh,
                                                      const RouteFilter& filter, uint32_t* metric) {
  if (nlh.nlmsg_type != RTM_NEWROUTE) return std::optional<net::Route>();
  if (nlh.nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(rtmsg))) {
    return absl::DataLossError(absl::StrCat("route message too short: ", nlh.nlmsg_len));
  }
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(&nlh));
  // Cheap rejections first: most of a host's table is not ours and needs no attribute parsing
  // beyond RTA_TABLE.
  if (rtm->rtm_protocol != filter.owner.protocol) return std::optional<net::Route>();
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) {
    return std::optional<net::Route>();
  }
  static const std::array<mnl_attr_data_type, RTA_MAX + 1> kinds = RouteAttrKinds();
  AttrTable<RTA_MAX + 1> table;
  table.kinds = &kinds;
  RETURN_IF_ERROR(ParseAttrs(nlh, sizeof(rtmsg), table, "route"));

  uint32_t route_table =
      table.attrs[RTA_TABLE] ? mnl_attr_get_u32(table.attrs[RTA_TABLE]) : rtm->rtm_table;
  if (route_table != filter.owner.table) return std::optional<net::Route>();
  if (rtm->rtm_type != RTN_UNICAST || (rtm->rtm_flags & RTM_F_CLONED)) {
    return std::optional<net::Route>();
  }
  net::Family family = rtm->rtm_family == AF_INET ? net::Family::kV4 : net::Family::kV6;
  int bits = family == net::Family::kV4 ? 32 : 128;
  if (rtm->rtm_dst_len > bits) {
    return absl::DataLossError(
        absl::StrCat("route prefix length ", rtm->rtm_dst_len, " exceeds ", bits));
  }
  if (rtm->rtm_dst_len == 0) {
    // Never ours to report, whoever tagged it: the agent must not be able to delete a default.
    LOG_DEBUG("netlink: ignoring a default route with our protocol");
    return std::optional<net::Route>();
  }
  std::optional<net::IpAddress> dst = AddressAttr(table.attrs[RTA_DST], rtm->rtm_family);
  if (!dst) return absl::DataLossError("route without a valid RTA_DST");
  if (table.attrs[RTA_MULTIPATH] != nullptr || table.attrs[RTA_VIA] != nullptr) {
    LOG_DEBUG("netlink: skipping multipath or RTA_VIA route {}/{} with our protocol",
              dst->ToString(), rtm->rtm_dst_len);
    return std::optional<net::Route>();
  }
  std::optional<net::IpAddress> gateway = AddressAttr(table.attrs[RTA_GATEWAY], rtm->rtm_family);
  if (!gateway) {
    LOG_DEBUG("netlink: skipping route {}/{} with our protocol but no gateway", dst->ToString(),
              rtm->rtm_dst_len);
    return std::optional<net::Route>();
  }
  if (metric != nullptr) {
    *metric = table.attrs[RTA_PRIORITY] ? mnl_attr_get_u32(table.attrs[RTA_PRIORITY]) : 0;
  }
  net::Route route{net::IpPrefix(*dst, rtm->rtm_dst_len), *gateway};
  if (filter.uplink_index && table.attrs[RTA_OIF] != nullptr &&
      mnl_attr_get_u32(table.attrs[RTA_OIF]) != *filter.uplink_index) {
    route.gateway = family == net::Family::kV4 ? net::IpAddress() : *net::IpAddress::Parse("::");
  }
  return std::optional<net::Route>(route);
}

StatusOr<std::optional<RouteEntry>> ParseRouteEntry(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWROUTE) return std::optional<RouteEntry>();
  if (nlh.nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(rtmsg))) {
    return absl::DataLossError(absl::StrCat("route message too short: ", nlh.nlmsg_len));
  }
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) {
    return std::optional<RouteEntry>();
  }
  static const std::array<mnl_attr_data_type, RTA_MAX + 1> kinds = RouteAttrKinds();
  AttrTable<RTA_MAX + 1> table;
  table.kinds = &kinds;
  RETURN_IF_ERROR(ParseAttrs(nlh, sizeof(rtmsg), table, "route"));
  net::Family family = rtm->rtm_family == AF_INET ? net::Family::kV4 : net::Family::kV6;
  int bits = family == net::Family::kV4 ? 32 : 128;
  if (rtm->rtm_dst_len > bits) {
    return absl::DataLossError(
        absl::StrCat("route prefix length ", rtm->rtm_dst_len, " exceeds ", bits));
  }
  std::optional<net::IpAddress> dst = AddressAttr(table.attrs[RTA_DST], rtm->rtm_family);
  if (!dst) {
    // Only a /0 may omit RTA_DST (the zero address).
    if (rtm->rtm_dst_len != 0) return absl::DataLossError("route without a valid RTA_DST");
    dst = family == net::Family::kV4 ? *net::IpAddress::Parse("0.0.0.0")
                                     : *net::IpAddress::Parse("::");
  }
  RouteEntry entry;
  entry.dst = net::IpPrefix(*dst, rtm->rtm_dst_len);
  entry.table = table.attrs[RTA_TABLE] ? mnl_attr_get_u32(table.attrs[RTA_TABLE]) : rtm->rtm_table;
  entry.protocol = rtm->rtm_protocol;
  entry.type = rtm->rtm_type;
  entry.tos = rtm->rtm_tos;
  entry.src_len = rtm->rtm_src_len;
  if (table.attrs[RTA_PRIORITY]) entry.metric = mnl_attr_get_u32(table.attrs[RTA_PRIORITY]);
  entry.gateway = AddressAttr(table.attrs[RTA_GATEWAY], rtm->rtm_family);
  if (table.attrs[RTA_OIF]) entry.oif = mnl_attr_get_u32(table.attrs[RTA_OIF]);
  entry.multipath = table.attrs[RTA_MULTIPATH] != nullptr;
  entry.cloned = (rtm->rtm_flags & RTM_F_CLONED) != 0;
  return std::optional<RouteEntry>(entry);
}

uint32_t KernelMetric(net::Family family, uint32_t metric) {
  if (metric != 0) return metric;
  return family == net::Family::kV6 ? 1024 : 0;
}

std::string ProtocolName(uint8_t protocol) {
  // iproute2's rt_protos (plus the kernel's own names for 0-4).
  switch (protocol) {
    case RTPROT_UNSPEC:
      return "unspec";
    case RTPROT_REDIRECT:
      return "redirect";
    case RTPROT_KERNEL:
      return "kernel";
    case RTPROT_BOOT:
      return "boot";
    case RTPROT_STATIC:
      return "static";
    case 8:
      return "gated";
    case 9:
      return "ra";
    case 10:
      return "mrt";
    case 11:
      return "zebra";
    case 12:
      return "bird";
    case 13:
      return "dnrouted";
    case 14:
      return "xorp";
    case 15:
      return "ntk";
    case 16:
      return "dhcp";
    case 18:
      return "keepalived";
    case 42:
      return "babel";
    case 99:
      return "openr";
    case 186:
      return "bgp";
    case 187:
      return "isis";
    case 188:
      return "ospf";
    case 189:
      return "rip";
    case 192:
      return "eigrp";
    default:
      return std::to_string(protocol);
  }
}

std::string DescribeRouteHolder(const RouteEntry& entry) {
  std::string text = absl::StrCat("proto ", ProtocolName(entry.protocol));
  switch (entry.type) {
    case RTN_UNICAST:
      break;
    case RTN_BLACKHOLE:
      absl::StrAppend(&text, ", blackhole");
      break;
    case RTN_UNREACHABLE:
      absl::StrAppend(&text, ", unreachable");
      break;
    case RTN_PROHIBIT:
      absl::StrAppend(&text, ", prohibit");
      break;
    case RTN_LOCAL:
      absl::StrAppend(&text, ", local");
      break;
    default:
      absl::StrAppend(&text, ", type ", entry.type);
  }
  if (entry.gateway) {
    absl::StrAppend(&text, ", via ", entry.gateway->ToString());
  } else if (entry.multipath) {
    absl::StrAppend(&text, ", multipath");
  } else if (entry.oif != 0 && entry.type == RTN_UNICAST) {
    absl::StrAppend(&text, ", dev index ", entry.oif);
  }
  if (entry.metric != 0) absl::StrAppend(&text, ", metric ", entry.metric);
  return text;
}

StatusOr<RouteDumpChunk> ParseRouteDump(std::span<const uint8_t> datagram,
                                        const RouteFilter& filter) {
  RouteDumpChunk chunk;
  auto walk = WalkReplies(datagram, filter.seq, filter.portid, [&](const nlmsghdr& nlh) {
    uint32_t metric = 0;
    StatusOr<std::optional<net::Route>> route = ParseRouteMessage(nlh, filter, &metric);
    if (!route.ok()) {
      ++chunk.malformed;
      LOG_WARN("netlink: skipping undecodable route message: {}", route.status().ToString());
    } else if (route->has_value()) {
      chunk.routes.push_back(**route);
      chunk.metrics.push_back(metric);
    }
    return Status();
  });
  if (!walk.ok()) return walk.status();
  chunk.done = walk->done;
  chunk.interrupted = walk->interrupted;
  return chunk;
}

StatusOr<LinkInfo> ParseLinkMessage(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWLINK) {
    return absl::DataLossError(absl::StrCat("unexpected message type ", nlh.nlmsg_type));
  }
  static const std::array<mnl_attr_data_type, IFLA_MAX + 1> kinds = [] {
    std::array<mnl_attr_data_type, IFLA_MAX + 1> k{};
    k.fill(MNL_TYPE_UNSPEC);
    k[IFLA_IFNAME] = MNL_TYPE_NUL_STRING;
    return k;
  }();
  AttrTable<IFLA_MAX + 1> table;
  table.kinds = &kinds;
  RETURN_IF_ERROR(ParseAttrs(nlh, sizeof(ifinfomsg), table, "link"));
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(&nlh));
  if (ifi->ifi_index <= 0) return absl::DataLossError("link message without an index");
  LinkInfo info;
  info.index = static_cast<uint32_t>(ifi->ifi_index);
  info.flags = ifi->ifi_flags;
  if (table.attrs[IFLA_IFNAME] != nullptr) info.name = mnl_attr_get_str(table.attrs[IFLA_IFNAME]);
  return info;
}

StatusOr<AddressInfo> ParseAddressMessage(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWADDR) {
    return absl::DataLossError(absl::StrCat("unexpected message type ", nlh.nlmsg_type));
  }
  static const std::array<mnl_attr_data_type, IFA_MAX + 1> kinds = [] {
    std::array<mnl_attr_data_type, IFA_MAX + 1> k{};
    k.fill(MNL_TYPE_UNSPEC);
    k[IFA_ADDRESS] = MNL_TYPE_BINARY;
    k[IFA_LOCAL] = MNL_TYPE_BINARY;
    return k;
  }();
  AttrTable<IFA_MAX + 1> table;
  table.kinds = &kinds;
  RETURN_IF_ERROR(ParseAttrs(nlh, sizeof(ifaddrmsg), table, "address"));
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("address family ", ifa->ifa_family));
  }
  std::optional<net::IpAddress> address = AddressAttr(table.attrs[IFA_LOCAL], ifa->ifa_family);
  if (!address) address = AddressAttr(table.attrs[IFA_ADDRESS], ifa->ifa_family);
  if (!address) return absl::DataLossError("address message without a valid address");
  if (ifa->ifa_prefixlen > address->bit_length()) {
    return absl::DataLossError(absl::StrCat("address prefix length ", ifa->ifa_prefixlen));
  }
  return AddressInfo{ifa->ifa_index, *address, ifa->ifa_prefixlen};
}

StatusOr<std::vector<Ack>> ParseAcks(std::span<const uint8_t> datagram, uint32_t portid) {
  std::vector<uint32_t> storage;
  std::span<const uint8_t> bytes = Aligned(datagram, storage);
  std::vector<Ack> acks;
  MessageWalker walker(bytes);
  while (const nlmsghdr* nlh = walker.Next()) {
    if (nlh->nlmsg_type != NLMSG_ERROR || (portid != 0 && nlh->nlmsg_pid != portid)) continue;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
      LOG_WARN("netlink: skipping truncated ack for seq {}", nlh->nlmsg_seq);
      continue;
    }
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    Ack ack;
    ack.seq = nlh->nlmsg_seq;
    ack.error = ErrnoOf(err->error);
    if (ack.error != 0) ack.kernel_message = KernelMessage(*nlh);
    acks.push_back(std::move(ack));
  }
  if (walker.leftover() > 0) {
    return absl::DataLossError(absl::StrCat("truncated netlink message: ", walker.leftover(),
                                            " bytes left over in the datagram"));
  }
  return acks;
}

Status ErrnoStatus(int error, std::string_view context, std::string_view kernel_message) {
  std::string message = absl::StrCat(std::string(context), ": ", ErrnoText(error));
  if (!kernel_message.empty()) absl::StrAppend(&message, " (", std::string(kernel_message), ")");
  absl::StatusCode code;
  switch (error) {
    case EEXIST:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case ENOENT:
    case ESRCH:
    case ENODEV:
    case ENXIO:
      code = absl::StatusCode::kNotFound;
      break;
    case EINVAL:
    case ERANGE:
    case EAFNOSUPPORT:
    case EOPNOTSUPP:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    case EPERM:
    case EACCES:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case EAGAIN:
    case EBUSY:
    case EINTR:
      code = absl::StatusCode::kAborted;
      break;
    default:
      code = absl::StatusCode::kUnknown;
  }
  return Status(code, message);
}

}  // namespace vcra::dataplane::rtnl
