#include "dataplane/vpp/sim/vpp_sim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "dataplane/vpp/sim/message_table_2606.h"

namespace vcra::dataplane::vpp::sim {

enum class VppSim::Kind {
  kSockclntDelete,
  kControlPing,
  kShowVersion,
  kSwInterfaceDump,
  kSwInterfaceSetFlags,
  kSwInterfaceAddDelAddress,
  kWantInterfaceEvents,
  kIpAddressDump,
  kIpRouteAddDel,
  kIpRouteAddDelV2,
  kIpRouteDump,
  kIpRouteV2Dump,
  kFibSourceAdd,
  kFibSourceDump,
};

struct VppSim::Conn {
  int fd = -1;
  uint32_t handle = 0;
  FrameReassembler rx{1u << 30};
  Bytes tx;
  bool dead = false;
  bool want_events = false;
  uint32_t event_pid = 0;
};

namespace {

constexpr size_t kVppReadChunk = 4096;  // VPP's socket read handler: one read() of <= 4 KB
// Header bytes 0..7 as a real VPP sent them (an internal pointer); clients must ignore them.
constexpr uint8_t kJunkHeader[8] = {0xc0, 0x04, 0x05, 0x30, 0x01, 0x00, 0x00, 0x00};

const std::vector<FibSource>& InitialSources() {
  static const auto* s = new std::vector<FibSource>{{255, 0, "invalid"},
                                                    {0, 1, "special"},
                                                    {1, 2, "classify"},
                                                    {2, 3, "proxy"},
                                                    {3, 4, "interface"},
                                                    {16, 5, "SR"},
                                                    {32, 6, "BIER"},
                                                    {48, 7, "6RD"},
                                                    {128, 8, "API"},
                                                    {129, 9, "CLI"},
                                                    {144, 10, "LISP"},
                                                    {160, 11, "MAP"},
                                                    {176, 12, "DHCP"},
                                                    {192, 13, "IPv6-proxy-nd"},
                                                    {193, 14, "IPv6-nd"},
                                                    {208, 15, "adjacency"},
                                                    {224, 16, "mpls"},
                                                    {240, 17, "attached_export"},
                                                    {251, 18, "recursive-resolution"},
                                                    {252, 19, "urpf-exempt"},
                                                    {253, 20, "default-route"},
                                                    {254, 21, "interpose"},
                                                    {16, 22, "path-mtu"}};
  return *s;
}

WirePrefix Wp(std::string_view text) {
  auto slash = text.find('/');
  auto a = net::IpAddress::Parse(text.substr(0, slash));
  VCRA_CHECK(a.has_value());
  return WirePrefix::FromAddress(*a, std::stoi(std::string(text.substr(slash + 1))));
}

FibPath SpecialPath(uint32_t type, bool v6, uint32_t sw_if_index = kNoInterface) {
  FibPath p;
  p.type = type;
  p.sw_if_index = sw_if_index;
  p.proto = v6 ? kProtoIp6 : kProtoIp4;
  return p;
}

int MaxLen(const WirePrefix& p) { return p.af == 1 ? 128 : 32; }

std::array<uint8_t, 16> Masked(const WirePrefix& p) {
  std::array<uint8_t, 16> out{};
  int bytes = p.af == 1 ? 16 : 4;
  for (int i = 0; i < bytes; ++i) {
    int bits = std::clamp(p.len - i * 8, 0, 8);
    out[i] = static_cast<uint8_t>(p.addr[i] & (bits == 0 ? 0 : (0xFF << (8 - bits))));
  }
  return out;
}

bool SamePath(const FibPath& a, const FibPath& b) {
  return a.sw_if_index == b.sw_if_index && a.nh == b.nh && a.proto == b.proto && a.type == b.type &&
         a.table_id == b.table_id;
}

}  // namespace

std::vector<SimInterface> SimOptions::DefaultInterfaces() {
  SimInterface local0;
  local0.sw_if_index = 0;
  local0.name = "local0";
  local0.dev_type = "local";
  SimInterface up;
  up.sw_if_index = 1;
  up.name = "host-eth0";
  up.dev_type = "af-packet";
  up.mac = {0x02, 0xfe, 0x00, 0x00, 0x00, 0x01};
  up.link_up = true;
  up.link_mtu = 9000;
  up.mtu = {9000, 0, 0, 0};
  return {local0, up};
}

SimOptions SimOptions::Transcript2606(std::string socket_path) {
  SimOptions o;
  o.socket_path = std::move(socket_path);
  o.real_ids = true;
  o.interfaces = DefaultInterfaces();
  o.interfaces[1].name = "host-up0";
  SimInterface loop;
  loop.sw_if_index = 2;
  loop.name = "loop0";
  loop.dev_type = "Loopback";
  loop.mac = {0xde, 0xad, 0, 0, 0, 0};
  loop.admin_up = true;
  loop.link_up = true;
  loop.link_mtu = 9000;
  loop.mtu = {9000, 0, 0, 0};
  loop.addresses = {Wp("10.1.0.1/32"), Wp("fd00:1::1/128")};
  loop.link_follows_admin = true;
  o.interfaces.push_back(loop);
  o.vpe_pid = 8232;
  o.version = "26.06-release";
  o.build_date = "2026-11-26T07:59:34";
  o.build_directory = "";
  return o;
}

SimOptions SimOptions::Loopback(std::string socket_path) {
  SimOptions o;
  o.socket_path = std::move(socket_path);
  o.interfaces = DefaultInterfaces();
  SimInterface& loop = o.interfaces[1];
  loop.name = "loop0";
  loop.dev_type = "Loopback";
  loop.mac = {0xde, 0xad, 0, 0, 0, 0};
  loop.admin_up = false;
  loop.link_up = false;
  loop.link_follows_admin = true;
  loop.link_mtu = 9000;
  loop.mtu = {9000, 0, 0, 0};
  return o;
}

VppSim::VppSim(SimOptions options) : options_(std::move(options)) {
  if (options_.interfaces.empty()) options_.interfaces = SimOptions::DefaultInterfaces();
  std::lock_guard lock(mu_);
  vpe_pid_ = options_.vpe_pid;
  ResetStateLocked();
  BuildTableLocked();
}

VppSim::~VppSim() { Stop(); }

Status VppSim::Start() {
  sockaddr_un addr{};
  if (options_.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long: " + options_.socket_path);
  }
  ::unlink(options_.socket_path.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options_.socket_path.data(), options_.socket_path.size());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    int e = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    return absl::InternalError(
        absl::StrCat("bind/listen ", options_.socket_path, ": ", strerror(e)));
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void VppSim::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  std::lock_guard lock(mu_);
  for (auto& c : conns_) CloseLocked(*c);
  conns_.clear();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  ::unlink(options_.socket_path.c_str());
}

void VppSim::ResetStateLocked() {
  interfaces_.clear();
  fib4_.clear();
  fib6_.clear();
  stale_entries_ = 0;
  sources_ = InitialSources();
  next_stats_ = 1;
  free_stats_.clear();
  // VPP's own entries, in the order (and hence stats indices) a fresh VPP 26.06 creates them.
  AddSourcePathsLocked(Wp("0.0.0.0/0"), kSrcDefaultRoute, {SpecialPath(kPathDrop, false)});
  AddSourcePathsLocked(Wp("0.0.0.0/32"), kSrcDefaultRoute, {SpecialPath(kPathDrop, false)});
  AddSourcePathsLocked(Wp("240.0.0.0/4"), kSrcSpecial, {SpecialPath(kPathDrop, false)});
  AddSourcePathsLocked(Wp("224.0.0.0/4"), kSrcSpecial, {SpecialPath(kPathDrop, false)});
  AddSourcePathsLocked(Wp("255.255.255.255/32"), kSrcDefaultRoute, {SpecialPath(kPathDrop, false)});
  AddSourcePathsLocked(Wp("::/0"), kSrcDefaultRoute, {SpecialPath(kPathDrop, true)});
  AddSourcePathsLocked(Wp("fe80::/10"), kSrcSpecial, {SpecialPath(kPathNormal, true)});
  for (const SimInterface& itf : options_.interfaces) {
    SimInterface copy = itf;
    copy.addresses.clear();
    copy.ip6_enabled = false;
    interfaces_.push_back(copy);
  }
  for (const SimInterface& itf : options_.interfaces) {
    for (const WirePrefix& p : itf.addresses) {
      AddInterfaceAddressLocked(*FindInterfaceLocked(itf.sw_if_index), p);
    }
  }
}

void VppSim::BuildTableLocked() {
  table_.clear();
  for (const auto& [id, name] : MessageTable2606()) {
    std::string n(name);
    std::string base = n.size() > 9 ? n.substr(0, n.size() - 9) : n;
    if (auto it = crc_overrides_.find(base); it != crc_overrides_.end()) {
      if (it->second.empty()) continue;
      n = it->second;
    }
    table_.emplace_back(id, n);
  }
  if (!options_.real_ids) {
    // memclnt ids are fixed by VPP; every other module gets a block whose position depends on
    // the build. Shuffle and offset them so that no fixed guess works.
    std::mt19937 rng(options_.seed * 7919 + generation_);
    std::vector<size_t> dyn;
    for (size_t i = 0; i < table_.size(); ++i) {
      if (table_[i].first > 28) dyn.push_back(i);
    }
    std::vector<uint16_t> ids(dyn.size());
    uint16_t base = static_cast<uint16_t>(29 + 100 + rng() % 2000);
    std::iota(ids.begin(), ids.end(), base);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (size_t k = 0; k < dyn.size(); ++k) table_[dyn[k]].first = ids[k];
  }
  ids_.clear();
  for (const auto& [id, n] : table_) ids_[n] = id;
  static const std::vector<std::pair<std::string_view, Kind>> kKnown = {
      {msg::kSockclntDelete, Kind::kSockclntDelete},
      {msg::kControlPing, Kind::kControlPing},
      {msg::kShowVersion, Kind::kShowVersion},
      {msg::kSwInterfaceDump, Kind::kSwInterfaceDump},
      {msg::kSwInterfaceSetFlags, Kind::kSwInterfaceSetFlags},
      {msg::kSwInterfaceAddDelAddress, Kind::kSwInterfaceAddDelAddress},
      {msg::kWantInterfaceEvents, Kind::kWantInterfaceEvents},
      {msg::kIpAddressDump, Kind::kIpAddressDump},
      {msg::kIpRouteAddDel, Kind::kIpRouteAddDel},
      {msg::kIpRouteAddDelV2, Kind::kIpRouteAddDelV2},
      {msg::kIpRouteDump, Kind::kIpRouteDump},
      {msg::kIpRouteV2Dump, Kind::kIpRouteV2Dump},
      {msg::kFibSourceAdd, Kind::kFibSourceAdd},
      {msg::kFibSourceDump, Kind::kFibSourceDump},
  };
  handlers_.clear();
  for (const auto& [name, kind] : kKnown) {
    if (uint16_t id = IdLocked(name); id != 0) handlers_[id] = kind;
  }
}

uint16_t VppSim::IdLocked(std::string_view name_crc) const {
  auto it = ids_.find(name_crc);
  return it == ids_.end() ? 0 : it->second;
}

// ---- server loop ----

void VppSim::Run() {
  while (!stop_) {
    std::vector<pollfd> fds;
    {
      std::lock_guard lock(mu_);
      fds.push_back({wake_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      for (auto& c : conns_) {
        if (c->dead) continue;
        short ev = paused_ ? 0 : POLLIN;
        if (!c->tx.empty()) ev |= POLLOUT;
        fds.push_back({c->fd, ev, 0});
      }
    }
    int n = ::poll(fds.data(), fds.size(), 200);
    if (n < 0 && errno != EINTR) {
      LOG_ERROR("vpp-sim: poll: {}", strerror(errno));
      return;
    }
    std::unique_lock lock(mu_);
    if (fds[0].revents) {
      uint64_t v;
      while (::read(wake_fd_, &v, sizeof(v)) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) AcceptLocked();
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = std::find_if(conns_.begin(), conns_.end(),
                             [&](const auto& c) { return c->fd == fds[i].fd && !c->dead; });
      if (it == conns_.end()) continue;
      Conn& c = **it;
      if (fds[i].revents & POLLOUT) FlushLocked(c);
      if (!c.dead && !paused_ && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ReadLocked(c, lock);
      }
    }
    std::erase_if(conns_, [](const auto& c) { return c->dead; });
  }
}

void VppSim::AcceptLocked() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    // Registration at accept time; handle = 0x80000000 | lowest free pool index (0 = listener).
    uint32_t idx = 1;
    while (std::any_of(conns_.begin(), conns_.end(), [&](const auto& c) {
      return !c->dead && c->handle == (0x80000000u | idx);
    })) {
      ++idx;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->handle = 0x80000000u | idx;
    conns_.push_back(std::move(c));
  }
}

void VppSim::ReadLocked(Conn& c, std::unique_lock<std::mutex>& lock) {
  uint8_t buf[kVppReadChunk];
  ssize_t n = ::read(c.fd, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    CloseLocked(c);
    return;
  }
  c.rx.Feed(std::span(buf, static_cast<size_t>(n)));
  while (!c.dead) {
    auto next = c.rx.Next();
    if (!next.ok()) {
      CloseLocked(c);
      return;
    }
    if (!next->has_value()) return;
    if (delay_.count() > 0) {
      auto d = delay_;
      lock.unlock();
      std::this_thread::sleep_for(d);
      lock.lock();
      if (c.dead) return;
    }
    HandleLocked(c, std::move(**next));
  }
}

void VppSim::FlushLocked(Conn& c) {
  size_t off = 0;
  while (off < c.tx.size() && !c.dead) {
    size_t chunk = std::min(c.tx.size() - off, kVppReadChunk);
    ssize_t n = ::send(c.fd, c.tx.data() + off, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      CloseLocked(c);
      return;
    }
    off += static_cast<size_t>(n);
  }
  c.tx.erase(c.tx.begin(), c.tx.begin() + static_cast<ptrdiff_t>(off));
}

void VppSim::CloseLocked(Conn& c) {
  if (c.dead) return;
  c.dead = true;
  ::shutdown(c.fd, SHUT_RDWR);
  ::close(c.fd);
  c.tx.clear();
}

void VppSim::Send(Conn& c, const Bytes& body) {
  if (c.dead) return;
  size_t start = c.tx.size();
  AppendFrame(body, &c.tx);
  if (options_.junk_header) std::memcpy(c.tx.data() + start, kJunkHeader, 8);
  FlushLocked(c);
}

VppSim::Conn* VppSim::ConnByHandle(uint32_t handle) {
  for (auto& c : conns_) {
    if (!c->dead && c->handle == handle) return c.get();
  }
  return nullptr;
}

// ---- message handling ----

void VppSim::HandleLocked(Conn& c, Bytes msg) {
  ++handled_;
  auto id = PeekMsgId(msg);
  if (id.ok() && *id == kSockclntCreateId) {
    if (auto m = DecodeSockclntCreate(msg); m.ok()) {
      SockclntCreateReply r;
      r.context = m->context;
      r.index = c.handle;
      r.table = table_;
      Send(c, EncodeSockclntCreateReply(r));
    }
  } else if (id.ok() && handlers_.count(*id)) {
    // Every handled message is request-shaped: client_index at 2 says where the reply goes.
    auto h = DecodeBareRequest(msg);
    Conn* to = h.ok() ? ConnByHandle(h->client_index) : nullptr;
    if (to != nullptr) {
      uint32_t ctx = h->context;
      switch (handlers_[*id]) {
        case Kind::kSockclntDelete: {
          auto m = DecodeSockclntDelete(msg);
          if (!m.ok()) break;
          Conn* victim = ConnByHandle(m->index);
          Send(*to, EncodeSockclntDeleteReply(IdLocked(msg::kSockclntDeleteReply),
                                              {ctx, victim ? 1 : -1}));
          if (victim) {
            FlushLocked(*victim);
            CloseLocked(*victim);
          }
          break;
        }
        case Kind::kControlPing:
          Send(*to,
               EncodeControlPingReply(IdLocked(msg::kControlPingReply), {ctx, 0, 0, vpe_pid_}));
          break;
        case Kind::kShowVersion: {
          ShowVersionReply r{
              ctx, 0, "vpe", options_.version, options_.build_date, options_.build_directory};
          Send(*to, EncodeShowVersionReply(IdLocked(msg::kShowVersionReply), r));
          break;
        }
        case Kind::kSwInterfaceDump:
          HandleSwInterfaceDump(*to, msg);
          break;
        case Kind::kSwInterfaceSetFlags:
          HandleSetFlags(*to, msg);
          break;
        case Kind::kSwInterfaceAddDelAddress:
          HandleAddDelAddress(*to, msg);
          break;
        case Kind::kWantInterfaceEvents: {
          auto m = DecodeWantInterfaceEvents(msg);
          if (!m.ok()) break;
          int32_t rv = 0;
          if ((m->enable_disable != 0) == to->want_events) {
            rv = retval::kInvalidRegistration;
          } else {
            to->want_events = m->enable_disable != 0;
            to->event_pid = m->pid;
          }
          Send(*to, EncodeRetvalReply(IdLocked(msg::kWantInterfaceEventsReply), {ctx, rv}));
          break;
        }
        case Kind::kIpAddressDump: {
          auto m = DecodeIpAddressDump(msg);
          if (!m.ok()) break;
          if (SimInterface* itf = FindInterfaceLocked(m->sw_if_index)) {
            for (const WirePrefix& p : itf->addresses) {
              if ((p.af == 1) != m->is_ipv6) continue;
              Send(*to, EncodeIpAddressDetails(IdLocked(msg::kIpAddressDetails),
                                               {ctx, itf->sw_if_index, p}));
            }
          }
          break;
        }
        case Kind::kIpRouteAddDel:
          HandleRouteAddDel(*to, msg, false);
          break;
        case Kind::kIpRouteAddDelV2:
          HandleRouteAddDel(*to, msg, true);
          break;
        case Kind::kIpRouteDump:
          HandleRouteDump(*to, msg, false);
          break;
        case Kind::kIpRouteV2Dump:
          HandleRouteDump(*to, msg, true);
          break;
        case Kind::kFibSourceAdd: {
          auto m = DecodeFibSourceAdd(msg);
          if (!m.ok()) break;
          FibSourceAddReply r{ctx, 0, 0};
          if (sources_.size() >= 256) {
            r.retval = retval::kInvalidArgument;
          } else {
            r.id = static_cast<uint8_t>(sources_.size());
            sources_.push_back({m->src.priority, r.id, m->src.name});
          }
          Send(*to, EncodeFibSourceAddReply(IdLocked(msg::kFibSourceAddReply), r));
          break;
        }
        case Kind::kFibSourceDump:
          for (const FibSource& s : sources_) {
            Send(*to, EncodeFibSourceDetails(IdLocked(msg::kFibSourceDetails), {ctx, s}));
          }
          break;
      }
    }
  }
  // Unknown ids, short messages and bad client_index fall through here without a reply.
  if (drop_after_ > 0 && --drop_after_ == 0) {
    FlushLocked(c);
    CloseLocked(c);
  }
}

void VppSim::HandleSwInterfaceDump(Conn& to, const Bytes& msg) {
  auto m = DecodeSwInterfaceDump(msg);
  if (!m.ok()) return;
  for (const SimInterface& itf : interfaces_) {
    if (m->name_filter_valid) {
      if (!absl::StrContains(absl::AsciiStrToLower(itf.name),
                             absl::AsciiStrToLower(m->name_filter))) {
        continue;
      }
    } else if (m->sw_if_index != kNoInterface && m->sw_if_index != 0 &&
               m->sw_if_index != itf.sw_if_index) {
      continue;
    }
    SwInterfaceDetails d;
    d.context = m->h.context;
    d.sw_if_index = d.sup_sw_if_index = itf.sw_if_index;
    d.l2_address = itf.mac;
    d.flags = (itf.admin_up ? kIfAdminUp : 0) | (itf.link_up ? kIfLinkUp : 0);
    d.link_mtu = itf.link_mtu;
    d.mtu = itf.mtu;
    d.interface_name = itf.name;
    d.interface_dev_type = itf.dev_type;
    Send(to, EncodeSwInterfaceDetails(IdLocked(msg::kSwInterfaceDetails), d));
  }
}

void VppSim::HandleSetFlags(Conn& to, const Bytes& msg) {
  auto m = DecodeSwInterfaceSetFlags(msg);
  if (!m.ok()) return;
  SimInterface* itf = FindInterfaceLocked(m->sw_if_index);
  int32_t rv = itf ? 0 : retval::kInvalidSwIfIndex;
  bool changed = false;
  if (itf) {
    bool up = (m->flags & kIfAdminUp) != 0;  // LINK_UP is ignored, as in VPP
    changed = up != itf->admin_up;
    itf->admin_up = up;
    if (itf->link_follows_admin) itf->link_up = up;
  }
  Send(to, EncodeRetvalReply(IdLocked(msg::kSwInterfaceSetFlagsReply), {m->h.context, rv}));
  if (!changed) return;
  // One event per change; LINK_UP is reported only with an admin-up (docs/vpp-api.md section 5).
  SwInterfaceEvent ev;
  ev.sw_if_index = itf->sw_if_index;
  ev.flags = itf->admin_up ? (kIfAdminUp | (itf->link_up ? kIfLinkUp : 0)) : 0;
  SendInterfaceEventLocked(ev);
}

void VppSim::SendInterfaceEventLocked(const SwInterfaceEvent& event) {
  SwInterfaceEvent ev = event;
  for (auto& c : conns_) {
    if (c->dead || !c->want_events) continue;
    ev.client_index = c->handle;
    ev.pid = c->event_pid;
    Send(*c, EncodeSwInterfaceEvent(IdLocked(msg::kSwInterfaceEvent), ev));
  }
}

void VppSim::HandleAddDelAddress(Conn& to, const Bytes& msg) {
  auto m = DecodeSwInterfaceAddDelAddress(msg);
  if (!m.ok()) return;
  SimInterface* itf = FindInterfaceLocked(m->sw_if_index);
  int32_t rv = 0;
  if (itf == nullptr) {
    rv = retval::kInvalidSwIfIndex;
  } else if (m->del_all) {
    auto addrs = itf->addresses;
    for (const WirePrefix& p : addrs) DelInterfaceAddressLocked(*itf, p);
  } else if (m->prefix.af > 1 || m->prefix.len > MaxLen(m->prefix)) {
    rv = retval::kInvalidArgument;
  } else if (m->is_add) {
    rv = AddInterfaceAddressLocked(*itf, m->prefix);
  } else {
    rv = DelInterfaceAddressLocked(*itf, m->prefix);
  }
  Send(to, EncodeRetvalReply(IdLocked(msg::kSwInterfaceAddDelAddressReply), {m->h.context, rv}));
}

void VppSim::HandleRouteAddDel(Conn& to, const Bytes& msg, bool v2) {
  auto m = DecodeIpRouteAddDel(msg, v2);
  if (!m.ok()) return;  // truncated: VPP drops it without a reply
  IpRouteAddDelReply r{m->h.context, 0, kNoInterface};
  const IpRoute& route = m->route;
  uint8_t src = v2 && route.src != 0 ? route.src : kSrcApi;
  // VPP's order of checks: the table, each path as it is decoded, then the prefix length and
  // the path count (a request wrong in two ways gets the first error, as from VPP).
  auto rv = [&]() -> int32_t {
    if (route.table_id != 0) return retval::kNoSuchFib;
    for (const FibPath& p : route.paths) {
      if (p.proto > 4) return retval::kUnspecified;
      if (p.sw_if_index != kNoInterface) {
        if (FindInterfaceLocked(p.sw_if_index) == nullptr) return retval::kNoMatchingInterface;
      } else if (p.table_id != 0) {
        return retval::kNoSuchFib;
      }
    }
    if (route.prefix.len > MaxLen(route.prefix)) return retval::kInvalidPrefixLength;
    if ((m->is_add || m->is_multipath) && route.paths.empty()) return retval::kNoPathsInRoute;
    // VPP does not check the source id at all (an unknown one is undefined behaviour there);
    // the simulator refuses it instead of indexing past its table.
    if (src >= sources_.size()) return retval::kInvalidArgument;
    return 0;
  }();
  r.retval = rv;
  if (rv == 0) {
    std::vector<FibPath> paths = route.paths;
    for (FibPath& p : paths) {
      if (p.weight == 0) p.weight = 1;
    }
    auto& fib = Fib(route.prefix.af == 1);
    FibKey key = KeyOf(route.prefix);
    if (m->is_add && !m->is_multipath) {
      AddSourcePathsLocked(route.prefix, src, std::move(paths));
      r.stats_index = fib.at(key).stats_index;
    } else if (m->is_add) {
      auto it = fib.find(key);
      std::vector<FibPath> merged;
      if (it != fib.end() && it->second.sources.count(src)) merged = it->second.sources[src];
      for (const FibPath& p : paths) {
        if (std::none_of(merged.begin(), merged.end(),
                         [&](const FibPath& q) { return SamePath(p, q); })) {
          merged.push_back(p);
        }
      }
      AddSourcePathsLocked(route.prefix, src, std::move(merged));
      r.stats_index = fib.at(key).stats_index;
    } else if (m->is_multipath) {
      auto it = fib.find(key);
      if (it != fib.end() && it->second.sources.count(src)) {
        std::vector<FibPath> left = it->second.sources[src];
        std::erase_if(left, [&](const FibPath& q) {
          return std::any_of(paths.begin(), paths.end(),
                             [&](const FibPath& p) { return SamePath(p, q); });
        });
        if (left.empty()) {
          RemoveSourceLocked(route.prefix, src);
        } else {
          it->second.sources[src] = std::move(left);
        }
      }
    } else {
      RemoveSourceLocked(route.prefix, src);  // absent: still 0
    }
  }
  uint16_t reply_id = IdLocked(v2 ? msg::kIpRouteAddDelV2Reply : msg::kIpRouteAddDelReply);
  Send(to, EncodeIpRouteAddDelReply(reply_id, r));
}

void VppSim::HandleRouteDump(Conn& to, const Bytes& msg, bool v2) {
  auto m = DecodeIpRouteDump(msg, v2);
  if (!m.ok()) return;
  if (m->table_id != 0) return;  // no such table: zero details
  uint16_t id = IdLocked(v2 ? msg::kIpRouteV2Details : msg::kIpRouteDetails);
  for (const auto& [key, e] : Fib(m->is_ip6)) {
    // As VPP (fib_table_walk_w_src): a dump for a source lists only the entries that source is
    // the best of, and every entry with its best source's paths. A source that contributes to
    // an entry a better one also holds is not listed (learnt in VppConformance).
    uint8_t src = BestSource(e);
    if (v2 && m->src != 0 && src != m->src) continue;
    IpRouteDetails d;
    d.context = m->h.context;
    d.route.table_id = 0;
    d.route.stats_index = e.stats_index;
    d.route.prefix = e.raw;
    d.route.src = src;
    d.route.paths = e.sources.at(src);
    Send(to, EncodeIpRouteDetails(id, d, v2));
  }
}

// ---- FIB ----

VppSim::FibKey VppSim::KeyOf(const WirePrefix& p) { return {Masked(p), p.len}; }

uint32_t VppSim::AllocStats() {
  if (!free_stats_.empty()) {
    uint32_t i = free_stats_.back();
    free_stats_.pop_back();
    return i;
  }
  return next_stats_++;
}

void VppSim::FreeStats(uint32_t i) { free_stats_.push_back(i); }

uint8_t VppSim::BestSource(const FibEntry& e) const {
  uint8_t best = e.sources.begin()->first;
  for (const auto& [src, paths] : e.sources) {
    if (sources_[src].priority < sources_[best].priority) best = src;
  }
  return best;
}

void VppSim::AddSourcePathsLocked(const WirePrefix& raw, uint8_t src, std::vector<FibPath> paths) {
  auto& fib = Fib(raw.af == 1);
  FibKey key = KeyOf(raw);
  auto it = fib.find(key);
  if (it == fib.end()) {
    FibEntry e;
    e.raw = raw;
    e.stats_index = AllocStats();
    it = fib.emplace(key, std::move(e)).first;
  }
  // VPP builds the new path list (joining a dead one with the same paths, this entry's own
  // included) before it lets go of the old one.
  bool stale = stale_entries_ > 0 && StalePathSetExistsLocked(paths);
  if (it->second.stale.erase(src) > 0) --stale_entries_;
  if (stale && it->second.stale.insert(src).second) ++stale_entries_;
  it->second.sources[src] = std::move(paths);
}

bool VppSim::StalePathSetExistsLocked(const std::vector<FibPath>& paths) const {
  for (const auto* fib : {&fib4_, &fib6_}) {
    for (const auto& [key, e] : *fib) {
      for (uint8_t s : e.stale) {
        const std::vector<FibPath>& held = e.sources.at(s);
        if (held.size() == paths.size() &&
            std::is_permutation(held.begin(), held.end(), paths.begin())) {
          return true;
        }
      }
    }
  }
  return false;
}

void VppSim::RemoveSourceLocked(const WirePrefix& raw, uint8_t src) {
  auto& fib = Fib(raw.af == 1);
  auto it = fib.find(KeyOf(raw));
  if (it == fib.end()) return;
  it->second.sources.erase(src);
  if (it->second.stale.erase(src) > 0) --stale_entries_;
  if (it->second.sources.empty()) {
    FreeStats(it->second.stats_index);
    fib.erase(it);
  }
}

SimInterface* VppSim::FindInterfaceLocked(uint32_t sw_if_index) {
  for (SimInterface& itf : interfaces_) {
    if (itf.sw_if_index == sw_if_index) return &itf;
  }
  return nullptr;
}

int32_t VppSim::AddInterfaceAddressLocked(SimInterface& itf, const WirePrefix& p) {
  for (const SimInterface& other : interfaces_) {
    for (const WirePrefix& q : other.addresses) {
      if (q.af == p.af && q.addr == p.addr) {
        return &other == &itf ? retval::kAddressInUse : retval::kDuplicateIfAddress;
      }
    }
  }
  bool v6 = p.af == 1;
  if (v6 && !itf.ip6_enabled) {
    // Enabling IPv6 creates link-local state whose three stats entries are not in table 0.
    itf.ip6_enabled = true;
    for (int i = 0; i < 3; ++i) AllocStats();
  }
  itf.addresses.push_back(p);
  WirePrefix host = p;
  host.len = static_cast<uint8_t>(MaxLen(p));
  FibPath local = SpecialPath(kPathLocal, v6, itf.sw_if_index);
  local.nh = p.addr;
  AddSourcePathsLocked(host, kSrcInterface, {local});
  if (p.len < MaxLen(p)) {
    // IPv4 connected entries keep the interface address (unmasked), IPv6 ones are masked.
    WirePrefix conn = p;
    if (v6) conn.addr = Masked(p);
    AddSourcePathsLocked(conn, kSrcInterface, {SpecialPath(kPathNormal, v6, itf.sw_if_index)});
  }
  if (!v6 && p.len < 31) {
    WirePrefix net = p;
    net.addr = Masked(p);
    net.len = 32;
    WirePrefix bcast = net;
    uint32_t host_bits = (p.len == 0) ? 0xFFFFFFFFu : ((1u << (32 - p.len)) - 1);
    for (int i = 0; i < 4; ++i) bcast.addr[i] |= (host_bits >> (24 - 8 * i)) & 0xFF;
    AddSourcePathsLocked(net, kSrcInterface, {SpecialPath(kPathDrop, false)});
    AddSourcePathsLocked(bcast, kSrcInterface, {SpecialPath(kPathDrop, false)});
  }
  return 0;
}

int32_t VppSim::DelInterfaceAddressLocked(SimInterface& itf, const WirePrefix& p) {
  auto it = std::find_if(itf.addresses.begin(), itf.addresses.end(), [&](const WirePrefix& q) {
    return q.af == p.af && q.addr == p.addr && q.len == p.len;
  });
  if (it == itf.addresses.end()) return retval::kAddressNotFoundForInterface;
  itf.addresses.erase(it);
  bool v6 = p.af == 1;
  WirePrefix host = p;
  host.len = static_cast<uint8_t>(MaxLen(p));
  RemoveSourceLocked(host, kSrcInterface);
  if (p.len < MaxLen(p)) RemoveSourceLocked(p, kSrcInterface);
  if (!v6 && p.len < 31) {
    WirePrefix net = p;
    net.addr = Masked(p);
    net.len = 32;
    WirePrefix bcast = net;
    uint32_t host_bits = (p.len == 0) ? 0xFFFFFFFFu : ((1u << (32 - p.len)) - 1);
    for (int i = 0; i < 4; ++i) bcast.addr[i] |= (host_bits >> (24 - 8 * i)) & 0xFF;
    RemoveSourceLocked(net, kSrcInterface);
    RemoveSourceLocked(bcast, kSrcInterface);
  }
  return 0;
}

SimRoute VppSim::ToSimRoute(const FibEntry& e, uint8_t best) {
  SimRoute r;
  WirePrefix masked = e.raw;
  masked.addr = Masked(e.raw);
  r.prefix = *masked.ToPrefix();
  r.raw = e.raw;
  r.stats_index = e.stats_index;
  r.sources = e.sources;
  r.best_source = best;
  r.stale_sources = e.stale;
  return r;
}

// ---- public accessors ----

std::vector<SimRoute> VppSim::Routes(bool ipv6) const {
  std::lock_guard lock(mu_);
  std::vector<SimRoute> out;
  for (const auto& [key, e] : ipv6 ? fib6_ : fib4_) out.push_back(ToSimRoute(e, BestSource(e)));
  return out;
}

std::optional<SimRoute> VppSim::FindRoute(const net::IpPrefix& prefix) const {
  std::lock_guard lock(mu_);
  WirePrefix p = WirePrefix::From(prefix);
  const auto& fib = p.af == 1 ? fib6_ : fib4_;
  auto it = fib.find(KeyOf(p));
  if (it == fib.end()) return std::nullopt;
  return ToSimRoute(it->second, BestSource(it->second));
}

Status VppSim::AddRoute(const net::IpPrefix& prefix, std::vector<FibPath> paths, uint8_t source) {
  std::lock_guard lock(mu_);
  if (source >= sources_.size()) return absl::InvalidArgumentError("unknown FIB source");
  if (paths.empty()) return absl::InvalidArgumentError("no paths");
  AddSourcePathsLocked(WirePrefix::From(prefix), source, std::move(paths));
  return absl::OkStatus();
}

Status VppSim::AddInterfaceAddress(uint32_t sw_if_index, const net::IpAddress& address, int len) {
  std::lock_guard lock(mu_);
  SimInterface* itf = FindInterfaceLocked(sw_if_index);
  if (itf == nullptr) return absl::NotFoundError("no such interface");
  int32_t rv = AddInterfaceAddressLocked(*itf, WirePrefix::FromAddress(address, len));
  if (rv != 0) return absl::InternalError(RetvalToString(rv));
  return absl::OkStatus();
}

Status VppSim::DeleteInterface(uint32_t sw_if_index) {
  std::lock_guard lock(mu_);
  SimInterface* itf = FindInterfaceLocked(sw_if_index);
  if (itf == nullptr || sw_if_index == 0) {
    return absl::NotFoundError(absl::StrCat("no deletable interface ", sw_if_index));
  }
  // VPP removes the addresses (and their connected/local entries) first...
  auto addrs = itf->addresses;
  for (const WirePrefix& p : addrs) DelInterfaceAddressLocked(*itf, p);
  // ...and every path list through the interface becomes a permanent drop (fib_path.c: "the
  // route needs to be removed and readded (and hence the path-list deleted) before it can
  // forward again"). The entries stay, and a dump still lists them with their paths.
  for (auto* fib : {&fib4_, &fib6_}) {
    for (auto& [key, e] : *fib) {
      for (const auto& [src, paths] : e.sources) {
        bool through = std::any_of(paths.begin(), paths.end(), [&](const FibPath& p) {
          return p.sw_if_index == sw_if_index && p.type != kPathLocal;
        });
        if (through && e.stale.insert(src).second) ++stale_entries_;
      }
    }
  }
  std::erase_if(interfaces_, [&](const SimInterface& i) { return i.sw_if_index == sw_if_index; });
  SwInterfaceEvent ev;
  ev.sw_if_index = sw_if_index;
  ev.deleted = true;
  SendInterfaceEventLocked(ev);
  return absl::OkStatus();
}

StatusOr<uint32_t> VppSim::CreateInterface(SimInterface itf) {
  std::lock_guard lock(mu_);
  uint32_t idx = 1;
  while (FindInterfaceLocked(idx) != nullptr) ++idx;
  itf.sw_if_index = idx;
  itf.addresses.clear();
  itf.ip6_enabled = false;
  itf.admin_up = false;
  if (itf.link_follows_admin) itf.link_up = false;
  interfaces_.push_back(std::move(itf));
  std::sort(
      interfaces_.begin(), interfaces_.end(),
      [](const SimInterface& a, const SimInterface& b) { return a.sw_if_index < b.sw_if_index; });
  return idx;
}

std::optional<SimInterface> VppSim::Interface(uint32_t sw_if_index) const {
  std::lock_guard lock(mu_);
  for (const SimInterface& itf : interfaces_) {
    if (itf.sw_if_index == sw_if_index) return itf;
  }
  return std::nullopt;
}

std::vector<FibSource> VppSim::Sources() const {
  std::lock_guard lock(mu_);
  return sources_;
}

StatusOr<uint8_t> VppSim::AddSource(const std::string& name, uint8_t priority) {
  std::lock_guard lock(mu_);
  if (sources_.size() >= 256) return absl::ResourceExhaustedError("FIB source ids exhausted");
  uint8_t id = static_cast<uint8_t>(sources_.size());
  sources_.push_back({priority, id, name});
  return id;
}

std::optional<uint16_t> VppSim::MsgId(std::string_view name_crc) const {
  std::lock_guard lock(mu_);
  uint16_t id = IdLocked(name_crc);
  if (id == 0) return std::nullopt;
  return id;
}

int VppSim::connection_count() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(
      std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->dead; }));
}

uint64_t VppSim::messages_handled() const {
  std::lock_guard lock(mu_);
  return handled_;
}

void VppSim::CloseAllConnections() {
  std::lock_guard lock(mu_);
  for (auto& c : conns_) CloseLocked(*c);
}

void VppSim::Restart() {
  std::lock_guard lock(mu_);
  for (auto& c : conns_) CloseLocked(*c);
  ++generation_;
  ++vpe_pid_;
  ResetStateLocked();
  BuildTableLocked();
}

void VppSim::SetReplyDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delay_ = delay;
}

void VppSim::DropConnectionAfter(uint64_t n) {
  std::lock_guard lock(mu_);
  drop_after_ = n;
}

void VppSim::OverrideNameCrc(const std::string& name, const std::string& replacement) {
  std::lock_guard lock(mu_);
  crc_overrides_[name] = replacement;
  BuildTableLocked();
}

void VppSim::SetPaused(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
}

}  // namespace vcra::dataplane::vpp::sim
