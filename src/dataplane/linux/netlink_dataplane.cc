#include "dataplane/linux/netlink_dataplane.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "dataplane/linux/rtnl_codec.h"

namespace vcra::dataplane {
namespace {

// Kernel dump datagrams are at most 32 KiB (netlink caps max_recvmsg_len there); twice that
// leaves room and never truncates.
constexpr size_t kReceiveBufferBytes = 64 * 1024;
// Bounds on loops that wait for the kernel: a dump of a million routes is ~4k datagrams.
constexpr int kMaxDatagramsPerAnswer = 1 << 20;
constexpr int kDumpAttempts = 3;
constexpr int kMaxEintrRetries = 100;

std::string OpText(const RouteOp& op) {
  if (op.type == OpType::kDelete) return absl::StrCat("delete ", op.route.dst.ToString());
  return absl::StrCat("add ", op.route.ToString());
}

const char* ErrnoText(int error) {
  const char* text = strerrordesc_np(error);
  return text != nullptr ? text : "Unknown error";
}

}  // namespace

struct NetlinkDataplane::Pending {
  std::unordered_map<uint32_t, Write> by_seq;  // message seq -> what it writes
};

NetlinkDataplane::NetlinkDataplane(NetlinkDataplaneConfig config)
    : config_(config), seq_(static_cast<uint32_t>(std::time(nullptr))) {}

NetlinkDataplane::~NetlinkDataplane() { Disconnect(); }

Status NetlinkDataplane::ValidateConfig(const NetlinkDataplaneConfig& config) {
  if (config.route_protocol <= RTPROT_STATIC) {
    return absl::InvalidArgumentError(absl::StrCat(
        "route protocol ", config.route_protocol,
        " is reserved (0 matches every route on delete; 1-4 are the kernel's and static routes)"));
  }
  if (config.route_table == RT_TABLE_UNSPEC || config.route_table == RT_TABLE_LOCAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("route table ", config.route_table, " cannot hold the agent's routes"));
  }
  if (config.receive_buffer_bytes <= 0) {
    return absl::InvalidArgumentError("netlink receive buffer size must be positive");
  }
  if (config.reply_timeout.count() <= 0) {
    return absl::InvalidArgumentError("netlink reply timeout must be positive");
  }
  return Status();
}

Status NetlinkDataplane::Connect() {
  RETURN_IF_ERROR(ValidateConfig(config_));
  Disconnect();
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl == nullptr) {
    return absl::UnavailableError(absl::StrCat("netlink socket: ", ErrnoText(errno)));
  }
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int error = errno;
    mnl_socket_close(nl);
    return absl::UnavailableError(absl::StrCat("netlink bind: ", ErrnoText(error)));
  }
  int fd = mnl_socket_get_fd(nl);
  int size = config_.receive_buffer_bytes;
  // FORCE passes net.core.rmem_max (often 208 KiB) when we have CAP_NET_ADMIN, which an agent
  // programming routes has; fall back to the capped option otherwise.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0) {
    LOG_WARN("netlink: cannot set SO_RCVBUF to {}: {}", size, ErrnoText(errno));
  }
  int one = 1;
  // Both are optional: extended acks only improve error texts, capped acks only save memory.
  if (mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof one) < 0) {
    LOG_DEBUG("netlink: NETLINK_EXT_ACK unsupported: {}", ErrnoText(errno));
  }
  if (mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one) < 0) {
    LOG_DEBUG("netlink: NETLINK_CAP_ACK unsupported: {}", ErrnoText(errno));
  }
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(config_.reply_timeout).count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(usec / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(usec % 1000000);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    int error = errno;
    mnl_socket_close(nl);
    return absl::UnavailableError(absl::StrCat("netlink SO_RCVTIMEO: ", ErrnoText(error)));
  }
  nl_ = nl;
  portid_ = mnl_socket_get_portid(nl);
  send_buf_.assign(kMaxSendBytes + rtnl::kMaxRequestBytes, 0);
  recv_buf_.assign(kReceiveBufferBytes, 0);
  LOG_INFO("netlink: connected (port {}, protocol {}, table {})", portid_, config_.route_protocol,
           config_.route_table);
  return Status();
}

void NetlinkDataplane::Disconnect() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
  nl_ = nullptr;
  portid_ = 0;
}

void NetlinkDataplane::BreakSocketForTest() {
  if (nl_ == nullptr) return;
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return;
  // dup2 keeps the descriptor number owned by the mnl_socket, so its close stays correct.
  dup2(null_fd, mnl_socket_get_fd(nl_));
  close(null_fd);
}

uint32_t NetlinkDataplane::NextSeq() {
  if (++seq_ == 0) ++seq_;
  return seq_;
}

Status NetlinkDataplane::Send(const void* buf, size_t len) {
  if (nl_ == nullptr) return absl::UnavailableError("netlink socket not connected");
  for (int i = 0; i < kMaxEintrRetries; ++i) {
    ssize_t n = mnl_socket_sendto(nl_, buf, len);
    if (n == static_cast<ssize_t>(len)) return Status();
    if (n >= 0) {
      Disconnect();
      return absl::UnavailableError(absl::StrCat("netlink send: short write ", n, " of ", len));
    }
    if (errno == EINTR) continue;
    int error = errno;
    Disconnect();
    return absl::UnavailableError(absl::StrCat("netlink send: ", ErrnoText(error)));
  }
  Disconnect();
  return absl::UnavailableError("netlink send: interrupted too often");
}

StatusOr<size_t> NetlinkDataplane::Receive() {
  if (nl_ == nullptr) return absl::UnavailableError("netlink socket not connected");
  int fd = mnl_socket_get_fd(nl_);
  for (int i = 0; i < kMaxEintrRetries; ++i) {
    sockaddr_nl from{};
    iovec iov{recv_buf_.data(), recv_buf_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) {
      int error = errno;
      if (error == EINTR) continue;
      Disconnect();
      if (error == EAGAIN || error == EWOULDBLOCK) {
        return absl::UnavailableError(absl::StrCat("netlink: no reply from the kernel within ",
                                                   config_.reply_timeout.count(), " ms"));
      }
      if (error == ENOBUFS) {
        return absl::UnavailableError(
            "netlink receive queue overflowed (ENOBUFS): kernel replies were lost");
      }
      return absl::UnavailableError(absl::StrCat("netlink receive: ", ErrnoText(error)));
    }
    if (msg.msg_flags & MSG_TRUNC) {
      Disconnect();
      return absl::UnavailableError("netlink receive: datagram larger than the receive buffer");
    }
    if (msg.msg_namelen != sizeof from || from.nl_pid != 0) {
      // Only root can unicast to a NETLINK_ROUTE socket, but answers come from the kernel only.
      LOG_WARN("netlink: dropping a datagram not sent by the kernel (port {})", from.nl_pid);
      continue;
    }
    return static_cast<size_t>(n);
  }
  Disconnect();
  return absl::UnavailableError("netlink receive: interrupted too often");
}

Status NetlinkDataplane::Transact(const void* buf, size_t len, uint32_t seq,
                                  const std::function<Status(const nlmsghdr&)>& on_data) {
  RETURN_IF_ERROR(Send(buf, len));
  // The answer is always read to its end, even after a bad message or an interruption: the
  // kernel refuses a new dump (EBUSY) while an old one on the socket is unfinished.
  Status first_error;
  bool interrupted = false;
  auto collect = [&](const nlmsghdr& nlh) {
    if (first_error.ok()) first_error = on_data(nlh);
    return Status();
  };
  for (int i = 0; i < kMaxDatagramsPerAnswer; ++i) {
    ASSIGN_OR_RETURN(size_t n, Receive());
    StatusOr<rtnl::WalkResult> walk =
        rtnl::WalkReplies({recv_buf_.data(), n}, seq, portid_, collect);
    if (absl::IsDataLoss(walk.status())) {
      // Framing is lost: the rest of the answer cannot be found reliably on this socket.
      Disconnect();
      return walk.status();
    }
    if (!walk.ok()) return walk.status();  // the request's errno: the answer is over
    interrupted |= walk->interrupted;
    if (walk->done) {
      if (!first_error.ok()) return first_error;
      if (interrupted) return absl::AbortedError("netlink dump interrupted by a concurrent change");
      return Status();
    }
  }
  Disconnect();
  return absl::UnavailableError("netlink: answer never completed");
}

namespace {

// Step 1 of EnsureUplink: the config alone, before any request to the kernel.
Status ValidateUplinkConfig(const UplinkConfig& uplink) {
  const std::string& name = uplink.name;
  const std::optional<uint32_t>& index = uplink.index;
  if (index.has_value() == !name.empty()) {
    return absl::InvalidArgumentError("uplink: set exactly one of name and index");
  }
  if (!index && (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos)) {
    return absl::InvalidArgumentError(
        absl::StrCat("uplink: invalid interface name \"", name, "\""));
  }
  if (index && (*index == 0 || *index > static_cast<uint32_t>(INT32_MAX))) {
    return absl::InvalidArgumentError(absl::StrCat("uplink: invalid ifindex ", *index));
  }
  for (const net::IpPrefix& a : uplink.addresses) {
    if (a.address().IsUnspecified()) {
      return absl::InvalidArgumentError(absl::StrCat("uplink: invalid address ", a.ToString()));
    }
    if (a.len() < a.address().bit_length() - 1 && a.address() == a.address().Masked(a.len())) {
      // Most likely a canonical prefix that lost the host's bits on the way here.
      return absl::InvalidArgumentError(
          absl::StrCat("uplink address ", a.ToString(),
                       " has no host part: give the interface address itself (e.g. 10.99.0.1/24)"));
    }
  }
  return Status();
}

}  // namespace

Status NetlinkDataplane::EnsureUplink(const UplinkConfig& uplink) {
  if (nl_ == nullptr) return absl::UnavailableError("netlink socket not connected");
  RETURN_IF_ERROR(ValidateUplinkConfig(uplink));
  const std::string what = uplink.index ? absl::StrCat("uplink ifindex ", *uplink.index)
                                        : absl::StrCat("uplink \"", uplink.name, "\"");
  ASSIGN_OR_RETURN(rtnl::LinkInfo link, ResolveLink(uplink, what));
  RETURN_IF_ERROR(SetLinkUp(link, what));
  ASSIGN_OR_RETURN(std::vector<net::IpPrefix> present, ListLinkAddresses(link.index, what));
  RETURN_IF_ERROR(AddMissingAddresses(uplink.addresses, link.index, what, present));
  uplink_index_ = link.index;
  uplink_addresses_ = std::move(present);
  return Status();
}

StatusOr<rtnl::LinkInfo> NetlinkDataplane::ResolveLink(const UplinkConfig& uplink,
                                                       const std::string& what) {
  std::optional<rtnl::LinkInfo> link;
  uint32_t seq = NextSeq();
  size_t len = rtnl::PutGetLink(send_buf_.data(), seq, uplink.name, uplink.index);
  Status s = Transact(send_buf_.data(), len, seq, [&](const nlmsghdr& nlh) -> Status {
    ASSIGN_OR_RETURN(rtnl::LinkInfo info, rtnl::ParseLinkMessage(nlh));
    link = std::move(info);
    return Status();
  });
  if (absl::IsNotFound(s)) return absl::NotFoundError(absl::StrCat(what, ": no such interface"));
  if (!s.ok()) return Status(s.code(), absl::StrCat(what, ": ", s.message()));
  if (!link || (uplink.index && link->index != *uplink.index)) {
    return absl::DataLossError(absl::StrCat(what, ": the kernel answered with no such link"));
  }
  return *link;
}

Status NetlinkDataplane::SetLinkUp(const rtnl::LinkInfo& link, const std::string& what) {
  if (link.flags & IFF_UP) return Status();
  uint32_t seq = NextSeq();
  size_t len = rtnl::PutSetLinkUp(send_buf_.data(), seq, link.index);
  Status s = Transact(send_buf_.data(), len, seq, [](const nlmsghdr&) { return Status(); });
  if (!s.ok()) return Status(s.code(), absl::StrCat(what, ": set up: ", s.message()));
  LOG_INFO("netlink: {} ({}) set up", what, link.name);
  return Status();
}

StatusOr<std::vector<net::IpPrefix>> NetlinkDataplane::ListLinkAddresses(uint32_t index,
                                                                         const std::string& what) {
  std::vector<net::IpPrefix> present;
  Status s;
  for (int attempt = 1;; ++attempt) {
    present.clear();
    uint32_t seq = NextSeq();
    size_t len = rtnl::PutAddressDump(send_buf_.data(), seq);
    s = Transact(send_buf_.data(), len, seq, [&](const nlmsghdr& nlh) {
      StatusOr<rtnl::AddressInfo> a = rtnl::ParseAddressMessage(nlh);
      if (!a.ok()) {
        LOG_DEBUG("netlink: skipping address message: {}", a.status().ToString());
      } else if (a->index == index) {
        present.push_back(net::IpPrefix::InterfaceAddress(a->address, a->prefix_len));
      }
      return Status();
    });
    if (!absl::IsAborted(s) || attempt == kDumpAttempts) break;
  }
  if (!s.ok()) return Status(s.code(), absl::StrCat(what, ": list addresses: ", s.message()));
  return present;
}

Status NetlinkDataplane::AddMissingAddresses(const std::vector<net::IpPrefix>& wanted,
                                             uint32_t index, const std::string& what,
                                             std::vector<net::IpPrefix>& present) {
  for (const net::IpPrefix& a : wanted) {
    if (std::find(present.begin(), present.end(), a) != present.end()) continue;
    uint32_t seq = NextSeq();
    size_t len = rtnl::PutNewAddress(send_buf_.data(), seq, index, a.address(), a.len());
    Status s = Transact(send_buf_.data(), len, seq, [](const nlmsghdr&) { return Status(); });
    if (absl::IsAlreadyExists(s)) continue;  // raced with someone else adding it: fine
    if (!s.ok()) {
      return Status(s.code(),
                    absl::StrCat(what, ": add address ", a.ToString(), ": ", s.message()));
    }
    LOG_INFO("netlink: added {} to {}", a.ToString(), what);
    present.push_back(a);
  }
  return Status();
}

StatusOr<std::vector<net::Route>> NetlinkDataplane::DumpFamily(net::Family family) {
  const std::string what = absl::StrCat("dump ", std::string(net::FamilyName(family)), " routes");
  for (int attempt = 1;; ++attempt) {
    rtnl::RouteFilter filter;
    filter.seq = NextSeq();
    filter.portid = portid_;
    filter.owner = Owner();
    filter.uplink_index = uplink_index_;
    size_t len = rtnl::PutRouteDump(send_buf_.data(), filter.seq, family);
    RETURN_IF_ERROR(Send(send_buf_.data(), len));
    std::vector<net::Route> routes;
    std::vector<uint32_t> metrics;
    bool interrupted = false;
    bool done = false;
    for (int i = 0; i < kMaxDatagramsPerAnswer && !done; ++i) {
      ASSIGN_OR_RETURN(size_t n, Receive());
      StatusOr<rtnl::RouteDumpChunk> chunk = rtnl::ParseRouteDump({recv_buf_.data(), n}, filter);
      if (!chunk.ok()) {
        if (absl::IsDataLoss(chunk.status())) Disconnect();  // framing lost mid-dump
        return Status(chunk.status().code(), absl::StrCat(what, ": ", chunk.status().message()));
      }
      for (size_t k = 0; k < chunk->routes.size(); ++k) {
        // A kernel without this family answers with its all-family dump: keep ours only.
        if (chunk->routes[k].dst.family() != family) continue;
        routes.push_back(chunk->routes[k]);
        metrics.push_back(chunk->metrics[k]);
      }
      interrupted |= chunk->interrupted;
      done = chunk->done;
    }
    if (!done) {
      Disconnect();
      return absl::UnavailableError(absl::StrCat(what, ": never completed"));
    }
    if (!interrupted) return SeparateStaleMetrics(family, routes, metrics);
    if (attempt == kDumpAttempts) {
      return absl::AbortedError(
          absl::StrCat(what, ": interrupted by concurrent changes ", kDumpAttempts, " times"));
    }
    LOG_DEBUG("netlink: {} interrupted, restarting", what);
  }
}

std::vector<net::Route> NetlinkDataplane::SeparateStaleMetrics(
    net::Family family, const std::vector<net::Route>& routes,
    const std::vector<uint32_t>& metrics) {
  std::erase_if(stale_metrics_, [&](const auto& entry) { return entry.first.family() == family; });
  const uint32_t current = rtnl::KernelMetric(family, config_.route_metric);
  std::unordered_map<net::IpPrefix, net::Route> current_routes;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (metrics[i] == current) {
      current_routes.emplace(routes[i].dst, routes[i]);
    } else {
      stale_metrics_[routes[i].dst].push_back(metrics[i]);
    }
  }
  // A prefix with a route of ours at an old metric is reported with no gateway, as drift: the
  // caller then upserts it (or deletes it) and Apply removes the old route once that succeeded.
  const net::IpAddress none =
      family == net::Family::kV4 ? net::IpAddress() : *net::IpAddress::Parse("::");
  for (const auto& [dst, old_metrics] : stale_metrics_) {
    if (dst.family() != family) continue;
    LOG_INFO("netlink: our route {} at old metric {} (now {}): to be replaced", dst.ToString(),
             old_metrics.front(), current);
    current_routes[dst] = net::Route{dst, none};
  }
  std::vector<net::Route> reported;
  reported.reserve(current_routes.size());
  for (auto& [dst, route] : current_routes) reported.push_back(route);
  return reported;
}

StatusOr<std::vector<net::Route>> NetlinkDataplane::DumpOwnedRoutes() {
  if (nl_ == nullptr) return absl::UnavailableError("netlink socket not connected");
  ASSIGN_OR_RETURN(std::vector<net::Route> routes, DumpFamily(net::Family::kV4));
  ASSIGN_OR_RETURN(std::vector<net::Route> v6, DumpFamily(net::Family::kV6));
  routes.insert(routes.end(), v6.begin(), v6.end());
  return routes;
}

std::vector<OpResult> NetlinkDataplane::Apply(std::span<const RouteOp> ops) {
  std::vector<OpResult> results(ops.size());
  std::vector<Write> writes;
  writes.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    results[i].seq = ops[i].seq;
    Status refused = RefuseUnwritable(ops[i]);
    if (!refused.ok()) {
      results[i].status = std::move(refused);
      continue;
    }
    // An upsert of a key not known to be ours creates exclusively: it can never take a key
    // over, whoever holds it. A prefix the dump showed at an old metric is created exclusively
    // whatever the caller holds: what it holds is the old route, at another key.
    WriteKind kind = WriteKind::kDelete;
    if (ops[i].type == OpType::kUpsert) {
      bool ours_at_key = ops[i].replaces_ours && !stale_metrics_.contains(ops[i].route.dst);
      kind = ours_at_key ? WriteKind::kReplace : WriteKind::kCreate;
    }
    writes.push_back({i, kind});
  }
  SendWrites(writes, ops, results);

  std::vector<size_t> contested;
  for (const Write& w : writes) {
    if (w.kind == WriteKind::kCreate && absl::IsAlreadyExists(results[w.op].status)) {
      contested.push_back(w.op);
    }
  }
  if (!contested.empty()) ResolveContested(contested, ops, results);
  if (!stale_metrics_.empty()) RemoveStaleMetrics(ops, results);
  return results;
}

void NetlinkDataplane::RemoveStaleMetrics(std::span<const RouteOp> ops,
                                          std::vector<OpResult>& results) {
  // Only after the op itself succeeded: an upsert's route at the current metric is in place
  // before the old one goes, so traffic never lacks a route.
  std::vector<Write> writes;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!results[i].status.ok()) continue;
    auto it = stale_metrics_.find(ops[i].route.dst);
    if (it == stale_metrics_.end()) continue;
    for (uint32_t metric : it->second) writes.push_back({i, WriteKind::kDeleteStale, metric});
  }
  if (writes.empty()) return;
  SendWrites(writes, ops, results);
  for (const Write& w : writes) {
    if (results[w.op].status.ok()) {
      LOG_INFO("netlink: removed our route {} at old metric {}", ops[w.op].route.dst.ToString(),
               w.metric);
      stale_metrics_.erase(ops[w.op].route.dst);
    }
  }
}

Status NetlinkDataplane::RefuseUnwritable(const RouteOp& op) const {
  if (nl_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(OpText(op), ": netlink socket not connected"));
  }
  const net::Route& r = op.route;
  if (r.dst.len() == 0) {
    // Never reported by DumpOwnedRoutes, so never writable either.
    return absl::InvalidArgumentError(
        absl::StrCat(OpText(op), ": the default route is not the agent's"));
  }
  if (op.type != OpType::kUpsert) return Status();
  if (!uplink_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat(OpText(op), ": uplink not resolved (EnsureUplink first)"));
  }
  if (r.gateway.family() != r.dst.family() || r.gateway.IsUnspecified()) {
    return absl::InvalidArgumentError(absl::StrCat(OpText(op), ": invalid gateway"));
  }
  return Status();
}

void NetlinkDataplane::SendWrites(std::span<const Write> writes, std::span<const RouteOp> ops,
                                  std::vector<OpResult>& results) {
  const rtnl::RouteOwner owner = Owner();
  Pending pending;
  size_t used = 0;
  for (const Write& w : writes) {
    const net::Route& r = ops[w.op].route;
    if (nl_ == nullptr) {
      results[w.op].status =
          absl::UnavailableError(absl::StrCat(OpText(ops[w.op]), ": netlink socket not connected"));
      continue;
    }
    uint32_t seq = NextSeq();
    uint8_t* at = send_buf_.data() + used;
    switch (w.kind) {
      case WriteKind::kCreate:
        used += rtnl::PutRouteWrite(at, seq, r, *uplink_index_, owner,
                                    rtnl::RouteWrite::kCreateExclusive);
        break;
      case WriteKind::kReplace:
        used += rtnl::PutRouteWrite(at, seq, r, *uplink_index_, owner, rtnl::RouteWrite::kReplace);
        break;
      case WriteKind::kDelete:
        used += rtnl::PutRouteDelete(at, seq, r.dst, owner);
        break;
      case WriteKind::kDeleteStale: {
        // IPv4 cannot name metric 0 in a delete (0 matches any metric), but the kernel then
        // removes our lowest-metric route of the prefix: the metric-0 one.
        rtnl::RouteOwner stale = owner;
        stale.metric = w.metric;
        used += rtnl::PutRouteDelete(at, seq, r.dst, stale);
        break;
      }
    }
    pending.by_seq[seq] = w;
    if (pending.by_seq.size() >= kMaxMessagesPerSend ||
        used + rtnl::kMaxRequestBytes > kMaxSendBytes) {
      FlushChunk(used, pending, ops, results);
      used = 0;
    }
  }
  if (!pending.by_seq.empty()) FlushChunk(used, pending, ops, results);
}

void NetlinkDataplane::ResolveContested(std::span<const size_t> contested,
                                        std::span<const RouteOp> ops,
                                        std::vector<OpResult>& results) {
  std::vector<Write> retries;
  for (net::Family family : {net::Family::kV4, net::Family::kV6}) {
    std::unordered_set<net::IpPrefix> wanted;
    for (size_t i : contested) {
      if (ops[i].route.dst.family() == family) wanted.insert(ops[i].route.dst);
    }
    if (wanted.empty()) continue;
    ++holder_lookups_;
    StatusOr<std::unordered_map<net::IpPrefix, rtnl::RouteEntry>> holders =
        FindKeyHolders(family, wanted);
    for (size_t i : contested) {
      const RouteOp& op = ops[i];
      if (op.route.dst.family() != family) continue;
      if (!holders.ok()) {
        results[i].status =
            Status(holders.status().code(),
                   absl::StrCat(OpText(op),
                                ": looking up the route in the way: ", holders.status().message()));
        continue;
      }
      auto it = holders->find(op.route.dst);
      if (it == holders->end()) {
        // Gone since our create: create again, still exclusively.
        retries.push_back({i, WriteKind::kCreate});
      } else if (it->second.protocol == config_.route_protocol) {
        retries.push_back({i, WriteKind::kReplace});  // ours: a gateway change or drift
      } else {
        results[i].status = absl::AlreadyExistsError(
            absl::StrCat(op.route.dst.ToString(), " is held by a foreign route (",
                         rtnl::DescribeRouteHolder(it->second), ")"));
        LOG_WARN("netlink: not writing {}: {}", op.route.ToString(), results[i].status.message());
      }
    }
  }
  SendWrites(retries, ops, results);
}

StatusOr<std::unordered_map<net::IpPrefix, rtnl::RouteEntry>> NetlinkDataplane::FindKeyHolders(
    net::Family family, const std::unordered_set<net::IpPrefix>& wanted) {
  // No rtnetlink request reads one exact key (RTM_GETROUTE without a dump is a FIB lookup that
  // answers the best match for an address), so a dump of the family filtered here. Conflicts are
  // rare: this runs only for creates that met an existing route.
  const uint32_t metric = rtnl::KernelMetric(family, config_.route_metric);
  std::unordered_map<net::IpPrefix, rtnl::RouteEntry> holders;
  Status s;
  for (int attempt = 1;; ++attempt) {
    holders.clear();
    uint32_t seq = NextSeq();
    size_t len = rtnl::PutRouteDump(send_buf_.data(), seq, family);
    s = Transact(send_buf_.data(), len, seq, [&](const nlmsghdr& nlh) {
      StatusOr<std::optional<rtnl::RouteEntry>> entry = rtnl::ParseRouteEntry(nlh);
      if (!entry.ok()) {
        LOG_WARN("netlink: skipping undecodable route message: {}", entry.status().ToString());
        return Status();
      }
      if (!entry->has_value()) return Status();
      const rtnl::RouteEntry& e = **entry;
      // The kernel's key: table, dst, tos, metric (and, for IPv6, no source prefix).
      if (e.cloned || e.table != config_.route_table || e.metric != metric || e.tos != 0 ||
          e.src_len != 0 || !wanted.contains(e.dst)) {
        return Status();
      }
      holders.emplace(e.dst, e);
      return Status();
    });
    if (!absl::IsAborted(s) || attempt == kDumpAttempts) break;
  }
  if (!s.ok()) return s;
  return holders;
}

bool NetlinkDataplane::FlushChunk(size_t bytes, Pending& pending, std::span<const RouteOp> ops,
                                  std::vector<OpResult>& results) {
  auto fail_pending = [&](const Status& why) {
    for (const auto& [seq, write] : pending.by_seq) {
      results[write.op].status =
          absl::UnavailableError(absl::StrCat(OpText(ops[write.op]), ": ", why.message()));
    }
    pending.by_seq.clear();
    return false;
  };
  Status sent = Send(send_buf_.data(), bytes);
  if (!sent.ok()) return fail_pending(sent);
  // Every message is answered (NLM_F_ACK), errors included; the kernel processed the whole send
  // before sendmsg returned, so the acks are already queued. Stale datagrams are bounded too.
  const size_t max_datagrams = 4 * pending.by_seq.size() + 1000;
  for (size_t i = 0; i < max_datagrams && !pending.by_seq.empty(); ++i) {
    StatusOr<size_t> n = Receive();
    if (!n.ok()) return fail_pending(n.status());
    StatusOr<std::vector<rtnl::Ack>> acks = rtnl::ParseAcks({recv_buf_.data(), *n}, portid_);
    if (!acks.ok()) {
      Disconnect();
      return fail_pending(acks.status());
    }
    for (const rtnl::Ack& ack : *acks) {
      auto it = pending.by_seq.find(ack.seq);
      if (it == pending.by_seq.end()) {
        LOG_DEBUG("netlink: ignoring ack for unknown seq {}", ack.seq);
        continue;
      }
      const Write& write = it->second;
      const RouteOp& op = ops[write.op];
      Status& status = results[write.op].status;
      const bool deletes =
          write.kind == WriteKind::kDelete || write.kind == WriteKind::kDeleteStale;
      if (ack.error == 0 || (deletes && (ack.error == ENOENT || ack.error == ESRCH))) {
        if (write.kind != WriteKind::kDeleteStale) status = Status();
      } else if (write.kind == WriteKind::kDeleteStale) {
        // The op is not done while a route of ours at an old metric remains: it is retried.
        status = rtnl::ErrnoStatus(
            ack.error, absl::StrCat(OpText(op), ": remove our route at old metric ", write.metric),
            ack.kernel_message);
      } else {
        status = rtnl::ErrnoStatus(ack.error, OpText(op), ack.kernel_message);
      }
      pending.by_seq.erase(it);
    }
  }
  if (!pending.by_seq.empty()) {
    Disconnect();
    return fail_pending(absl::UnavailableError("netlink: acks never arrived"));
  }
  return true;
}

}  // namespace vcra::dataplane
