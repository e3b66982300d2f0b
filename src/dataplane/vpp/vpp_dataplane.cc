#include "dataplane/vpp/vpp_dataplane.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"

namespace vcra::dataplane::vpp {

namespace {

// Messages the agent cannot work without.
const std::vector<std::string_view>& BaseMessages() {
  static const auto* v = new std::vector<std::string_view>{
      msg::kSwInterfaceDump,
      msg::kSwInterfaceDetails,
      msg::kSwInterfaceSetFlags,
      msg::kSwInterfaceSetFlagsReply,
      msg::kSwInterfaceAddDelAddress,
      msg::kSwInterfaceAddDelAddressReply,
      msg::kIpAddressDump,
      msg::kIpAddressDetails,
      msg::kIpRouteAddDel,
      msg::kIpRouteAddDelReply,
      msg::kIpRouteDump,
      msg::kIpRouteDetails,
  };
  return *v;
}

// Messages of the FIB-source ownership mode.
const std::vector<std::string_view>& SourceMessages() {
  static const auto* v = new std::vector<std::string_view>{
      msg::kFibSourceAdd,     msg::kFibSourceAddReply, msg::kFibSourceDump,
      msg::kFibSourceDetails, msg::kIpRouteAddDelV2,   msg::kIpRouteAddDelV2Reply,
      msg::kIpRouteV2Dump,    msg::kIpRouteV2Details,
  };
  return *v;
}

// Which connection carries a prefix: FNV-1a over its bytes, so consecutive blocks spread evenly
// and every op on one prefix takes the same connection (VPP keeps each connection's order).
size_t PrefixHash(const WirePrefix& p) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  mix(p.af);
  mix(p.len);
  for (uint8_t b : p.addr) mix(b);
  return static_cast<size_t>(h ^ (h >> 32));
}

Status RetvalStatus(std::string_view what, int32_t rv) {
  if (rv == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("VPP ", std::string(what), ": ", RetvalToString(rv)));
}

}  // namespace

VppDataplane::VppDataplane(VppDataplaneConfig config) : config_(std::move(config)) {}

VppDataplane::~VppDataplane() { Disconnect(); }

std::string VppDataplane::vpp_version() const {
  return client_ ? client_->vpp_version() : "unknown";
}

void VppDataplane::Disconnect() { CloseAll(); }

void VppDataplane::CloseAll() {
  for (auto& c : route_clients_) c->Close();
  route_clients_.clear();
  if (client_) client_->Close();
}

bool VppDataplane::AllConnected() const {
  if (!client_ || !client_->connected()) return false;
  return std::all_of(route_clients_.begin(), route_clients_.end(),
                     [](const auto& c) { return c->connected(); });
}

Status VppDataplane::Probe() {
  if (!AllConnected()) return absl::UnavailableError("VPP API connection is closed");
  if (!last_uplink_ || !uplink_index_) return absl::OkStatus();
  std::string why;
  if (uplink_watch_->deleted.exchange(false)) {
    // The interface may be back already, looking fine, while our routes through it drop.
    why = "VPP reported it deleted";
  } else {
    ASSIGN_OR_RETURN(why, UplinkDrift());
  }
  if (why.empty()) return absl::OkStatus();
  ++uplink_changes_seen_;
  repoint_wanted_ = true;
  // UNAVAILABLE: the agent reconnects, which re-runs EnsureUplink (the repair) and replays.
  return absl::UnavailableError(
      absl::StrCat("VPP uplink '", uplink_name_, "' (sw_if_index ", *uplink_index_,
                   ") is not as the agent left it: ", why,
                   "; setting it up again and re-pointing every route of ours at it"));
}

namespace {

// The address of `have` that is `p`'s address, whatever its length (a different length is the
// operator's), or nullptr.
const WirePrefix* FindAddress(const std::vector<WirePrefix>& have, const net::IpPrefix& p) {
  WirePrefix w = WirePrefix::FromAddress(p.address(), p.len());
  auto same = std::find_if(have.begin(), have.end(),
                           [&](const WirePrefix& h) { return h.af == w.af && h.addr == w.addr; });
  return same == have.end() ? nullptr : &*same;
}

}  // namespace

StatusOr<std::vector<WirePrefix>> VppDataplane::DumpInterfaceAddresses(uint32_t sw_if_index,
                                                                       bool ipv6) {
  IpAddressDump dump;
  dump.sw_if_index = sw_if_index;
  dump.is_ipv6 = ipv6;
  ASSIGN_OR_RETURN(auto details,
                   client_->Dump(EncodeIpAddressDump(*client_->MsgId(msg::kIpAddressDump), dump),
                                 msg::kIpAddressDetails));
  std::vector<WirePrefix> have;
  for (const Bytes& b : details) {
    if (auto d = DecodeIpAddressDetails(b); d.ok()) have.push_back(d->prefix);
  }
  return have;
}

StatusOr<std::string> VppDataplane::UplinkDrift() {
  const uint32_t idx = *uplink_index_;
  SwInterfaceDump dump;
  dump.sw_if_index = idx;
  ASSIGN_OR_RETURN(auto details, client_->Dump(EncodeSwInterfaceDump(
                                                   *client_->MsgId(msg::kSwInterfaceDump), dump),
                                               msg::kSwInterfaceDetails));
  std::optional<SwInterfaceDetails> itf;
  for (const Bytes& b : details) {
    auto d = DecodeSwInterfaceDetails(b);
    if (d.ok() && d->sw_if_index == idx) itf = *d;  // index 0 would mean "all" to VPP
  }
  if (!itf) return std::string("it is gone");
  if (itf->interface_name != uplink_name_) {
    return absl::StrCat("sw_if_index ", idx, " is now '", itf->interface_name, "'");
  }
  if (!(itf->flags & kIfAdminUp)) return std::string("it is admin-down");
  for (bool v6 : {false, true}) {
    bool wanted_any = false;
    for (const net::IpPrefix& p : last_uplink_->addresses) {
      wanted_any |= (p.family() == net::Family::kV6) == v6;
    }
    if (!wanted_any) continue;
    ASSIGN_OR_RETURN(std::vector<WirePrefix> have, DumpInterfaceAddresses(idx, v6));
    for (const net::IpPrefix& p : last_uplink_->addresses) {
      if ((p.family() == net::Family::kV6) != v6) continue;
      if (!FindAddress(have, p))
        return absl::StrCat("its address ", p.address().ToString(), " is missing");
    }
  }
  return std::string();
}

void VppDataplane::SubscribeInterfaceEvents() {
  if (!client_->Has(msg::kWantInterfaceEvents) || !client_->Has(msg::kWantInterfaceEventsReply) ||
      !client_->Has(msg::kSwInterfaceEvent)) {
    return;  // the probe's state checks still see most changes
  }
  client_->SetEventHandler([watch = uplink_watch_](const SwInterfaceEvent& ev) {
    if (ev.deleted && ev.sw_if_index == watch->sw_if_index.load()) watch->deleted = true;
  });
  WantInterfaceEvents want;
  want.enable_disable = 1;
  want.pid = static_cast<uint32_t>(::getpid());
  auto reply =
      client_->Call(EncodeWantInterfaceEvents(*client_->MsgId(msg::kWantInterfaceEvents), want),
                    msg::kWantInterfaceEventsReply);
  Status st = reply.status();
  if (st.ok()) {
    auto r = DecodeRetvalReply(*reply);
    st = r.ok() ? RetvalStatus("want_interface_events", r->retval) : r.status();
  }
  if (!st.ok()) {
    LOG_WARN("no VPP interface events ({}); the uplink is checked by the probe only",
             std::string(st.message()));
  }
}

Status VppDataplane::Connect() {
  if (AllConnected()) return absl::OkStatus();
  // One lost connection means VPP restarted or is going away: start over on all of them.
  CloseAll();
  VppClientOptions o;
  o.socket_path = config_.api_socket;
  o.client_name = config_.client_name;
  o.request_timeout = config_.request_timeout;
  o.max_outstanding = config_.max_outstanding;
  o.reply_batching_pause = config_.reply_batching_pause;
  for (auto m : BaseMessages()) o.required_messages.emplace_back(m);
  if (config_.require_fib_source) {
    for (auto m : SourceMessages()) o.required_messages.emplace_back(m);
  }
  client_ = std::make_unique<VppClient>(o);
  source_id_.reset();
  uplink_index_.reset();
  RETURN_IF_ERROR(client_->Connect());
  if (Status st = SetUpOwnership(); !st.ok()) {
    client_->Close();
    return st;
  }
  uplink_watch_->deleted = false;  // about the previous VPP, if it restarted
  SubscribeInterfaceEvents();
  bool v2 = ownership_ == Ownership::kFibSource;
  for (size_t i = 1; i < std::max<size_t>(1, config_.api_connections); ++i) {
    VppClientOptions ro = o;
    ro.client_name = absl::StrCat(config_.client_name, "-", i + 1);
    ro.required_messages = {
        std::string(v2 ? msg::kIpRouteAddDelV2 : msg::kIpRouteAddDel),
        std::string(v2 ? msg::kIpRouteAddDelV2Reply : msg::kIpRouteAddDelReply)};
    auto c = std::make_unique<VppClient>(ro);
    if (Status st = c->Connect(); !st.ok()) {
      CloseAll();
      return st;
    }
    route_clients_.push_back(std::move(c));
  }
  if (last_uplink_) {
    // A reconnect may follow a VPP restart: interface state and addresses are gone.
    RETURN_IF_ERROR(EnsureUplink(*last_uplink_));
  }
  return absl::OkStatus();
}

Status VppDataplane::SetUpOwnership() {
  std::vector<std::string> missing;
  for (auto m : SourceMessages()) {
    if (!client_->Has(m)) missing.emplace_back(m);
  }
  if (!missing.empty()) {
    if (config_.pools.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "VPP ", client_->vpp_version(), " lacks ", absl::StrJoin(missing, "; "),
          " (FIB source API) and no Calico IP pools are configured, so the agent could not "
          "recognise its own routes"));
    }
    ownership_ = Ownership::kPoolRule;
    LOG_WARN(
        "VPP {} lacks the FIB source API ({}): owning routes by the pool rule (prefix in a "
        "Calico pool and next hop via the uplink)",
        client_->vpp_version(), absl::StrJoin(missing, ", "));
    return absl::OkStatus();
  }
  ownership_ = Ownership::kFibSource;
  // Look the source up first: fib_source_add allocates a new u8 id on every call.
  ASSIGN_OR_RETURN(auto details,
                   client_->Dump(EncodeBareRequest(*client_->MsgId(msg::kFibSourceDump), {}),
                                 msg::kFibSourceDetails));
  for (const Bytes& b : details) {
    auto d = DecodeFibSourceDetails(b);
    if (!d.ok()) {
      LOG_WARN("ignoring malformed fib_source_details: {}", std::string(d.status().message()));
      continue;
    }
    if (d->src.name == config_.fib_source_name && (!source_id_ || d->src.id < *source_id_)) {
      source_id_ = d->src.id;
    }
  }
  if (source_id_) {
    LOG_INFO("reusing VPP FIB source '{}' id {}", config_.fib_source_name, *source_id_);
    return absl::OkStatus();
  }
  FibSourceAdd add;
  add.src.name = config_.fib_source_name;
  add.src.priority = config_.fib_source_priority;
  ASSIGN_OR_RETURN(Bytes reply,
                   client_->Call(EncodeFibSourceAdd(*client_->MsgId(msg::kFibSourceAdd), add),
                                 msg::kFibSourceAddReply));
  ASSIGN_OR_RETURN(FibSourceAddReply r, DecodeFibSourceAddReply(reply));
  RETURN_IF_ERROR(RetvalStatus("fib_source_add", r.retval));
  if (r.id == 0) return absl::InternalError("VPP fib_source_add returned source id 0");
  source_id_ = r.id;
  LOG_INFO("registered VPP FIB source '{}' id {}", config_.fib_source_name, r.id);
  return absl::OkStatus();
}

StatusOr<SwInterfaceDetails> VppDataplane::ResolveUplink(const UplinkConfig& uplink) {
  SwInterfaceDump dump;
  if (uplink.index) {
    dump.sw_if_index = *uplink.index;
  } else {
    if (uplink.name.empty()) return absl::InvalidArgumentError("uplink: no name and no index");
    dump.name_filter_valid = true;  // a substring match: pick the exact name below
    dump.name_filter = uplink.name;
  }
  ASSIGN_OR_RETURN(auto details, client_->Dump(EncodeSwInterfaceDump(
                                                   *client_->MsgId(msg::kSwInterfaceDump), dump),
                                               msg::kSwInterfaceDetails));
  for (const Bytes& b : details) {
    auto d = DecodeSwInterfaceDetails(b);
    if (!d.ok()) continue;
    // sw_if_index 0 in the request means "all" to VPP: filter here.
    if (uplink.index ? d->sw_if_index == *uplink.index : d->interface_name == uplink.name) {
      return *d;
    }
  }
  return absl::NotFoundError(
      uplink.index ? absl::StrCat("VPP has no interface with sw_if_index ", *uplink.index)
                   : absl::StrCat("VPP has no interface named '", uplink.name, "'"));
}

Status VppDataplane::EnsureUplink(const UplinkConfig& uplink) {
  if (!client_ || !client_->connected()) return absl::UnavailableError("not connected to VPP");
  ASSIGN_OR_RETURN(SwInterfaceDetails itf, ResolveUplink(uplink));
  const uint32_t idx = itf.sw_if_index;
  // An uplink that needs repairing may have been deleted and re-created under our routes (at
  // any time, the agent running or not): their paths may drop traffic until re-pointed.
  if (!(itf.flags & kIfAdminUp)) repoint_wanted_ = true;
  if (uplink_index_ && *uplink_index_ != idx) repoint_wanted_ = true;

  SwInterfaceSetFlags up;
  up.sw_if_index = idx;
  up.flags = kIfAdminUp;
  ASSIGN_OR_RETURN(Bytes reply, client_->Call(EncodeSwInterfaceSetFlags(
                                                  *client_->MsgId(msg::kSwInterfaceSetFlags), up),
                                              msg::kSwInterfaceSetFlagsReply));
  ASSIGN_OR_RETURN(RetvalReply r, DecodeRetvalReply(reply));
  RETURN_IF_ERROR(RetvalStatus("sw_interface_set_flags admin-up", r.retval));

  std::vector<net::IpPrefix> present;
  for (bool v6 : {false, true}) {
    std::vector<net::IpPrefix> wanted;
    for (const net::IpPrefix& p : uplink.addresses) {
      if ((p.family() == net::Family::kV6) == v6) wanted.push_back(p);
    }
    ASSIGN_OR_RETURN(std::vector<WirePrefix> have, DumpInterfaceAddresses(idx, v6));
    for (const WirePrefix& h : have) {
      if (auto a = h.ToAddress(); a.ok())
        present.push_back(net::IpPrefix::InterfaceAddress(*a, h.len));
    }
    for (const net::IpPrefix& p : wanted) {
      WirePrefix w = WirePrefix::FromAddress(p.address(), p.len());
      if (const WirePrefix* same = FindAddress(have, p)) {
        if (same->len != w.len) {
          // Never removed, never changed: the operator decides.
          LOG_WARN("uplink already has {} with prefix length {}, not {}; left as it is",
                   p.address().ToString(), int{same->len}, p.len());
        }
        continue;
      }
      SwInterfaceAddDelAddress add;
      add.sw_if_index = idx;
      add.prefix = w;
      ASSIGN_OR_RETURN(Bytes ar,
                       client_->Call(EncodeSwInterfaceAddDelAddress(
                                         *client_->MsgId(msg::kSwInterfaceAddDelAddress), add),
                                     msg::kSwInterfaceAddDelAddressReply));
      ASSIGN_OR_RETURN(RetvalReply arr, DecodeRetvalReply(ar));
      RETURN_IF_ERROR(RetvalStatus(
          absl::StrCat("adding ", p.address().ToString(), "/", p.len(), " to the uplink"),
          arr.retval));
      LOG_INFO("added {}/{} to VPP uplink sw_if_index {}", p.address().ToString(), p.len(), idx);
      present.push_back(p);
      repoint_wanted_ = true;
    }
  }
  uplink_index_ = idx;
  uplink_watch_->sw_if_index = idx;
  uplink_name_ = itf.interface_name;
  uplink_addresses_ = std::move(present);
  last_uplink_ = uplink;
  if (repoint_wanted_) {
    RETURN_IF_ERROR(RepointOwnedRoutes());
    repoint_wanted_ = false;
  }
  return absl::OkStatus();
}

Status VppDataplane::RepointOwnedRoutes() {
  ASSIGN_OR_RETURN(std::vector<net::Route> routes, DumpOwnedRoutes());
  if (routes.empty()) return absl::OkStatus();
  LOG_WARN(
      "re-pointing {} routes of ours at VPP uplink '{}' (sw_if_index {}): a path through a "
      "deleted interface drops traffic until its route leaves VPP's shared path list",
      routes.size(), uplink_name_, *uplink_index_);
  const bool v2 = ownership_ == Ownership::kFibSource;
  ASSIGN_OR_RETURN(uint16_t id, client_->MsgId(v2 ? msg::kIpRouteAddDelV2 : msg::kIpRouteAddDel));
  // A weight none of our routes has held in this VPP (the dump above set path_weight_ to the
  // highest one they carry): a path set no route holds, so VPP builds and resolves a new list,
  // and the old (maybe dead) one goes once nothing holds it. Never back to an earlier weight:
  // another client's route with that very path (the CLI's, say) may keep its dead list alive,
  // and our routes would join it again. An in-place replacement: no gap.
  const uint8_t weight = path_weight_ == 255 ? 1 : path_weight_ + 1;
  std::vector<Bytes> requests;
  requests.reserve(routes.size());
  for (const net::Route& route : routes) {
    IpRouteAddDel m;
    m.is_add = true;
    m.is_multipath = false;
    m.route.prefix = WirePrefix::From(route.dst);
    m.route.src = v2 ? *source_id_ : 0;
    FibPath path = FibPath::Via(route.gateway, *uplink_index_);
    path.weight = weight;
    m.route.paths = {path};
    requests.push_back(EncodeIpRouteAddDel(id, m, v2));
  }
  auto replies = client_->CallMany(std::move(requests),
                                   v2 ? msg::kIpRouteAddDelV2Reply : msg::kIpRouteAddDelReply);
  for (size_t k = 0; k < replies.size(); ++k) {
    Status st = replies[k].status();
    if (st.ok()) {
      auto r = DecodeIpRouteAddDelReply(*replies[k]);
      st = r.ok() ? RetvalStatus(absl::StrCat("re-pointing ", routes[k].ToString()), r->retval)
                  : r.status();
    }
    // The first failure stops the repair; the next connect starts it over.
    if (!st.ok()) return st;
  }
  path_weight_ = weight;  // new routes join the fresh list too
  routes_repointed_ += routes.size();
  return absl::OkStatus();
}

bool VppDataplane::InPools(const net::IpPrefix& p) const {
  if (p.len() == 0) return false;
  return std::any_of(config_.pools.begin(), config_.pools.end(),
                     [&](const net::IpPrefix& pool) { return pool.Contains(p); });
}

std::vector<OpResult> VppDataplane::Apply(std::span<const RouteOp> ops) {
  std::vector<OpResult> results(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) results[i].seq = ops[i].seq;
  auto fail_all = [&](const Status& st) {
    for (OpResult& r : results) r.status = st;
    return results;
  };
  if (!AllConnected()) return fail_all(absl::UnavailableError("not connected to VPP"));
  if (!uplink_index_) return fail_all(absl::FailedPreconditionError("uplink not set up yet"));
  bool v2 = ownership_ == Ownership::kFibSource;
  auto id = client_->MsgId(v2 ? msg::kIpRouteAddDelV2 : msg::kIpRouteAddDel);
  if (!id.ok()) return fail_all(id.status());

  std::vector<Bytes> requests;
  std::vector<size_t> index;  // request -> op
  std::vector<size_t> shard;  // request -> connection
  requests.reserve(ops.size());
  index.reserve(ops.size());
  shard.reserve(ops.size());
  const size_t shards = 1 + route_clients_.size();
  for (size_t i = 0; i < ops.size(); ++i) {
    const net::Route& route = ops[i].route;
    bool upsert = ops[i].type == OpType::kUpsert;
    if (upsert && route.gateway.family() != route.dst.family()) {
      results[i].status = absl::InvalidArgumentError(
          absl::StrCat("next hop family differs from the prefix: ", route.ToString()));
      continue;
    }
    if (!v2 && !InPools(route.dst)) {
      results[i].status = absl::FailedPreconditionError(absl::StrCat(
          route.dst.ToString(), " is outside the Calico pools: not the agent's to touch"));
      continue;
    }
    IpRouteAddDel m;
    m.is_add = upsert;
    m.is_multipath = false;  // add = replace the whole path set, no gap
    m.route.prefix = WirePrefix::From(route.dst);
    m.route.src = v2 ? *source_id_ : 0;
    if (upsert) {
      m.route.paths = {FibPath::Via(route.gateway, *uplink_index_)};
      m.route.paths.front().weight = path_weight_;  // see RepointOwnedRoutes
    }
    requests.push_back(EncodeIpRouteAddDel(*id, m, v2));
    index.push_back(i);
    shard.push_back(shards == 1 ? 0 : PrefixHash(m.route.prefix) % shards);
  }
  // Phases: a run of upserts, then a run of deletes, ... Each finishes on every connection
  // before the next starts, so no delete overtakes an upsert before it (make-before-break).
  std::vector<StatusOr<Bytes>> replies;
  replies.reserve(requests.size());
  auto reply_name = v2 ? msg::kIpRouteAddDelV2Reply : msg::kIpRouteAddDelReply;
  bool lost = false;
  for (size_t begin = 0; begin < requests.size();) {
    size_t end = begin + 1;
    while (end < requests.size() && ops[index[end]].type == ops[index[begin]].type) ++end;
    if (lost) {
      // A connection died in an earlier phase: its upserts may be missing, so the deletes
      // that were to follow them are not sent (they would break before making).
      for (size_t k = begin; k < end; ++k) {
        replies.push_back(
            absl::UnavailableError("not sent: a VPP connection was lost earlier in this batch"));
      }
      begin = end;
      continue;
    }
    std::vector<Bytes> phase(std::make_move_iterator(requests.begin() + begin),
                             std::make_move_iterator(requests.begin() + end));
    std::vector<size_t> phase_shard(shard.begin() + begin, shard.begin() + end);
    for (auto& r : CallSharded(std::move(phase), phase_shard, reply_name)) {
      lost |= !r.ok() && absl::IsUnavailable(r.status());
      replies.push_back(std::move(r));
    }
    begin = end;
  }
  for (size_t k = 0; k < replies.size(); ++k) {
    OpResult& r = results[index[k]];
    const RouteOp& op = ops[index[k]];
    if (!replies[k].ok()) {
      r.status = replies[k].status();
      continue;
    }
    auto rep = DecodeIpRouteAddDelReply(*replies[k]);
    if (!rep.ok()) {
      r.status = rep.status();
      continue;
    }
    if (rep->retval != 0) {  // the text only for failures: this loop runs for every route
      r.status = RetvalStatus(
          absl::StrCat(op.type == OpType::kUpsert ? "upsert " : "delete ", op.route.ToString()),
          rep->retval);
    }
  }
  return results;
}

std::vector<StatusOr<Bytes>> VppDataplane::CallSharded(std::vector<Bytes> requests,
                                                       const std::vector<size_t>& shard,
                                                       std::string_view reply_name_crc) {
  if (route_clients_.empty()) return client_->CallMany(std::move(requests), reply_name_crc);
  const size_t shards = 1 + route_clients_.size();
  std::vector<std::vector<Bytes>> per(shards);
  std::vector<std::vector<StatusOr<Bytes>>> replies(shards);
  for (size_t k = 0; k < requests.size(); ++k) per[shard[k]].push_back(std::move(requests[k]));
  auto client = [&](size_t s) { return s == 0 ? client_.get() : route_clients_[s - 1].get(); };
  bool fits = std::all_of(per.begin(), per.end(),
                          [&](const auto& p) { return p.size() <= config_.max_outstanding; });
  if (fits) {
    // Every share fits its connection's window (the agent's batches do): this thread fills all
    // the sockets, then collects. No thread to start and schedule per batch, which on a busy
    // host delays a connection's first write by a scheduler slice.
    std::vector<std::unique_ptr<VppClient::ManyCall>> calls(shards);
    for (size_t s = 0; s < shards; ++s) {
      if (!per[s].empty()) calls[s] = client(s)->StartMany(std::move(per[s]), reply_name_crc);
    }
    for (size_t s = 0; s < shards; ++s) {
      if (calls[s]) replies[s] = client(s)->FinishMany(std::move(calls[s]));
    }
  } else {
    // A share larger than the window blocks on it: one thread per extra connection keeps every
    // socket full meanwhile.
    std::vector<std::thread> threads;
    for (size_t s = 1; s < shards; ++s) {
      if (per[s].empty()) continue;
      auto run = [&, s] { replies[s] = client(s)->CallMany(std::move(per[s]), reply_name_crc); };
      try {
        threads.emplace_back(run);
      } catch (const std::system_error&) {
        run();  // no thread to be had: slower, still correct (each connection has its reader)
      }
    }
    if (!per[0].empty()) replies[0] = client_->CallMany(std::move(per[0]), reply_name_crc);
    for (auto& t : threads) t.join();
  }
  std::vector<StatusOr<Bytes>> out;
  out.reserve(requests.size());
  std::vector<size_t> next(shards, 0);
  for (size_t k = 0; k < requests.size(); ++k) {
    out.push_back(std::move(replies[shard[k]][next[shard[k]]++]));
  }
  return out;
}

StatusOr<std::vector<IpRoute>> VppDataplane::DumpTable(bool ipv6) {
  bool v2 = ownership_ == Ownership::kFibSource;
  IpRouteDump dump;
  dump.is_ip6 = ipv6;
  dump.src = v2 ? *source_id_ : 0;
  ASSIGN_OR_RETURN(uint16_t id, client_->MsgId(v2 ? msg::kIpRouteV2Dump : msg::kIpRouteDump));
  ASSIGN_OR_RETURN(auto details, client_->Dump(EncodeIpRouteDump(id, dump, v2),
                                               v2 ? msg::kIpRouteV2Details : msg::kIpRouteDetails));
  std::vector<IpRoute> out;
  for (const Bytes& b : details) {
    auto d = DecodeIpRouteDetails(b, v2);
    if (!d.ok()) {
      LOG_WARN_ONCE_PER_KEY("vpp-route-details", "ignoring malformed VPP route details: {}",
                            std::string(d.status().message()));
      continue;
    }
    out.push_back(std::move(d->route));
  }
  return out;
}

StatusOr<std::vector<net::Route>> VppDataplane::DumpOwnedRoutes() {
  if (!client_ || !client_->connected()) return absl::UnavailableError("not connected to VPP");
  bool v2 = ownership_ == Ownership::kFibSource;
  if (!v2 && !uplink_index_) {
    return absl::FailedPreconditionError("the pool rule needs the uplink: call EnsureUplink");
  }
  std::vector<net::Route> out;
  uint8_t max_weight = 0;
  for (bool ipv6 : {false, true}) {
    ASSIGN_OR_RETURN(std::vector<IpRoute> routes, DumpTable(ipv6));
    for (const IpRoute& r : routes) {
      auto dst = r.prefix.ToPrefix();
      if (!dst.ok() || r.paths.empty()) continue;
      const FibPath& path = r.paths.front();
      if (v2) {
        if (r.src != *source_id_) continue;  // a VPP ignoring the filter must not fool us
      } else {
        bool ours = InPools(*dst) && r.paths.size() == 1 && path.type == kPathNormal &&
                    path.sw_if_index == *uplink_index_ && !path.NextHop().IsUnspecified();
        if (!ours) continue;
      }
      net::Route route{*dst, path.NextHop()};
      if (route.gateway.family() != dst->family()) continue;
      out.push_back(route);
      max_weight = std::max(max_weight, path.weight);
    }
  }
  // Upserts keep to the weight our routes carry (they may have been re-pointed by an earlier
  // run of the agent; see RepointOwnedRoutes).
  if (max_weight > 0) path_weight_ = max_weight;
  return out;
}

}  // namespace vcra::dataplane::vpp
