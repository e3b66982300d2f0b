#include "bench/kernel_routes.h"

#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <vector>

namespace vcra::bench {
namespace {

struct NlRoute {
  uint16_t type = 0;
  uint8_t protocol = 0;
  uint32_t table = 0;
  std::optional<net::IpPrefix> dst;
  std::optional<net::IpAddress> gateway;
};

NlRoute ParseRoute(const nlmsghdr* nlh) {
  NlRoute r;
  r.type = nlh->nlmsg_type;
  if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return r;
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rtm->rtm_family != AF_INET) return r;
  r.protocol = rtm->rtm_protocol;
  r.table = rtm->rtm_table;
  std::optional<net::IpAddress> dst;
  const auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(rtmsg)));
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (; mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr)) {
    uint16_t type = mnl_attr_get_type(attr);
    uint16_t len = mnl_attr_get_payload_len(attr);
    const auto* payload = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
    if (type == RTA_DST && len == 4) dst = net::IpAddress::FromBytes(net::Family::kV4, payload);
    if (type == RTA_GATEWAY && len == 4)
      r.gateway = net::IpAddress::FromBytes(net::Family::kV4, payload);
    if (type == RTA_TABLE && len == 4) r.table = mnl_attr_get_u32(attr);
  }
  if (rtm->rtm_dst_len <= 32)
    r.dst = net::IpPrefix(dst.value_or(net::IpAddress::V4(0)), rtm->rtm_dst_len);
  return r;
}

// Calls `each` for every main-table IPv4 route of a dump.
template <typename Each>
Status DumpMainTable(Each each) {
  NlSocket sock;
  RETURN_IF_ERROR(sock.Open(0));
  std::vector<char> buf(1 << 16);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  uint32_t seq = static_cast<uint32_t>(time(nullptr));
  nlh->nlmsg_seq = seq;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
    return absl::InternalError(fmt::format("netlink send: {}", strerror(errno)));
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    NlRoute r = ParseRoute(m);
    if (r.type == RTM_NEWROUTE && r.table == RT_TABLE_MAIN && r.dst) (*static_cast<Each*>(data))(r);
    return MNL_CB_OK;
  };
  uint32_t portid = mnl_socket_get_portid(sock.get());
  auto deadline = Steady::now() + std::chrono::seconds(30);
  while (Steady::now() < deadline) {
    pollfd p{sock.fd(), POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
    if (n < 0) return absl::InternalError(fmt::format("netlink dump: {}", strerror(errno)));
    int ret = mnl_cb_run(buf.data(), n, seq, portid, cb, &each);
    if (ret < 0) return absl::InternalError(fmt::format("netlink dump: {}", strerror(errno)));
    if (ret == MNL_CB_STOP) return absl::OkStatus();
  }
  return absl::DeadlineExceededError("netlink dump did not finish");
}

}  // namespace

NlSocket::~NlSocket() {
  if (nl_) mnl_socket_close(nl_);
}

Status NlSocket::Open(unsigned groups) {
  nl_ = mnl_socket_open(NETLINK_ROUTE);
  if (!nl_) return absl::InternalError(fmt::format("netlink socket: {}", strerror(errno)));
  int size = 8 << 20;
  setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  if (mnl_socket_bind(nl_, groups, MNL_SOCKET_AUTOPID) < 0)
    return absl::InternalError(fmt::format("netlink bind: {}", strerror(errno)));
  return absl::OkStatus();
}

StatusOr<RouteMap> DumpKernelRoutes(std::optional<uint8_t> protocol) {
  RouteMap routes;
  RETURN_IF_ERROR(DumpMainTable([&](const NlRoute& r) {
    bool wanted = protocol ? r.protocol == *protocol : r.protocol != kAgentProtocol;
    if (wanted && r.gateway) routes[*r.dst] = *r.gateway;
  }));
  return routes;
}

StatusOr<std::vector<uint8_t>> ForeignGatewayProtocols() {
  std::set<uint8_t> protocols;
  RETURN_IF_ERROR(DumpMainTable([&](const NlRoute& r) {
    if (r.gateway && r.protocol != kAgentProtocol) protocols.insert(r.protocol);
  }));
  return std::vector<uint8_t>(protocols.begin(), protocols.end());
}

StatusOr<bool> RouteMonitor::ReadOnce() {
  std::vector<char> buf(1 << 16);
  pollfd p{sock_.fd(), POLLIN, 0};
  if (poll(&p, 1, 20) <= 0) return false;
  ssize_t n = recv(sock_.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
  auto now = Steady::now();
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return false;
    if (errno == ENOBUFS) {  // notifications were lost: ask the kernel directly
      ++overruns_;
      ASSIGN_OR_RETURN(RouteMap routes, DumpKernelRoutes(kAgentProtocol));
      for (const auto& [dst, gw] : routes) {
        auto& s = seen_[dst];
        if (s.first != gw) s = {gw, now};
      }
      return true;
    }
    return absl::InternalError(fmt::format("netlink monitor: {}", strerror(errno)));
  }
  struct Ctx {
    RouteMonitor* self;
    Steady::time_point now;
  } ctx{this, now};
  mnl_cb_run(
      buf.data(), n, 0, 0,
      [](const nlmsghdr* m, void* data) -> int {
        auto* c = static_cast<Ctx*>(data);
        NlRoute r = ParseRoute(m);
        if (r.protocol != kAgentProtocol || !r.dst) return MNL_CB_OK;
        if (r.type == RTM_NEWROUTE && r.gateway) {
          c->self->seen_[*r.dst] = {*r.gateway, c->now};
        } else if (r.type == RTM_DELROUTE) {
          c->self->seen_.erase(*r.dst);
        }
        return MNL_CB_OK;
      },
      &ctx);
  return true;
}

std::optional<Steady::time_point> RouteMonitor::SeenAt(const net::Route& route) const {
  auto it = seen_.find(route.dst);
  if (it == seen_.end() || !(it->second.first == route.gateway)) return std::nullopt;
  return it->second.second;
}

StatusOr<Steady::time_point> RouteMonitor::WaitFor(const net::Route& route,
                                                   Steady::time_point since,
                                                   Steady::time_point deadline) {
  while (true) {
    auto seen = SeenAt(route);
    if (seen && *seen >= since) return *seen;
    if (Steady::now() > deadline) break;
    RETURN_IF_ERROR(ReadOnce().status());
  }
  return absl::DeadlineExceededError(
      fmt::format("route {} not seen in the kernel", route.ToString()));
}

Status RouteMonitor::Drain(Steady::time_point until) {
  while (Steady::now() < until) {
    ASSIGN_OR_RETURN(bool got, ReadOnce());
    if (!got) break;
  }
  return absl::OkStatus();
}

}  // namespace vcra::bench
