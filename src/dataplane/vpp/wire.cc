#include "dataplane/vpp/wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vcra::dataplane::vpp {

namespace {

Status Short(std::string_view what, size_t need, size_t have) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed ", std::string(what), ": need ", need, " bytes, have ", have));
}

// Checks the fixed part; `what` names the message in the error.
Status NeedFixed(std::span<const uint8_t> b, size_t n, std::string_view what) {
  if (b.size() < n) return Short(what, n, b.size());
  return absl::OkStatus();
}

void WriteHeader(WireWriter& w, const RequestHeader& h) { w.U32(h.client_index).U32(h.context); }

RequestHeader ReadHeader(WireReader& r) {
  RequestHeader h;
  h.client_index = r.U32();
  h.context = r.U32();
  return h;
}

void WritePrefix(WireWriter& w, const WirePrefix& p) { w.U8(p.af).Raw(p.addr).U8(p.len); }

WirePrefix ReadPrefix(WireReader& r) {
  WirePrefix p;
  p.af = r.U8();
  r.Raw(p.addr.data(), 16);
  p.len = r.U8();
  return p;
}

void WritePath(WireWriter& w, const FibPath& p) {
  w.U32(p.sw_if_index).U32(p.table_id).U32(p.rpf_id).U8(p.weight).U8(p.preference);
  w.U32(p.type).U32(p.flags).U32(p.proto).Raw(p.nh).U32(p.via_label).U32(p.obj_id);
  w.U32(p.classify_table_index).U8(p.n_labels);
  for (const MplsLabel& l : p.labels) w.U8(l.is_uniform).U32(l.label).U8(l.ttl).U8(l.exp);
}

FibPath ReadPath(WireReader& r) {
  FibPath p;
  p.sw_if_index = r.U32();
  p.table_id = r.U32();
  p.rpf_id = r.U32();
  p.weight = r.U8();
  p.preference = r.U8();
  p.type = r.U32();
  p.flags = r.U32();
  p.proto = r.U32();
  r.Raw(p.nh.data(), 16);
  p.via_label = r.U32();
  p.obj_id = r.U32();
  p.classify_table_index = r.U32();
  p.n_labels = r.U8();
  for (MplsLabel& l : p.labels) {
    l.is_uniform = r.U8();
    l.label = r.U32();
    l.ttl = r.U8();
    l.exp = r.U8();
  }
  return p;
}

// vl_api_ip_route_t(_v2); REQUIRES: the paths count is written by the caller's layout.
void WriteRoute(WireWriter& w, const IpRoute& route, bool v2) {
  w.U32(route.table_id).U32(route.stats_index);
  WritePrefix(w, route.prefix);
  w.U8(static_cast<uint8_t>(route.paths.size()));
  if (v2) w.U8(route.src);
  for (const FibPath& p : route.paths) WritePath(w, p);
}

// Reads the route that starts at the reader's position; `fixed_before` is the number of message
// bytes before it, for the error text.
StatusOr<IpRoute> ReadRoute(WireReader& r, bool v2, std::string_view what, size_t total) {
  IpRoute route;
  size_t fixed = v2 ? 28 : 27;
  if (!r.Has(fixed)) return Short(what, total - r.remaining() + fixed, total);
  route.table_id = r.U32();
  route.stats_index = r.U32();
  route.prefix = ReadPrefix(r);
  uint8_t n = r.U8();
  if (v2) route.src = r.U8();
  if (!r.Has(size_t{n} * kFibPathSize)) {
    return Short(what, total - r.remaining() + n * kFibPathSize, total);
  }
  route.paths.reserve(n);
  for (int i = 0; i < n; ++i) route.paths.push_back(ReadPath(r));
  return route;
}

}  // namespace

std::string RetvalToString(int32_t rv) {
  std::string_view name;
  switch (rv) {
    case 0:
      name = "OK";
      break;
    case retval::kUnspecified:
      name = "UNSPECIFIED";
      break;
    case retval::kInvalidSwIfIndex:
      name = "INVALID_SW_IF_INDEX";
      break;
    case retval::kNoSuchFib:
      name = "NO_SUCH_FIB";
      break;
    case retval::kNoSuchEntry:
      name = "NO_SUCH_ENTRY";
      break;
    case retval::kInvalidRegistration:
      name = "INVALID_REGISTRATION";
      break;
    case retval::kNoPathsInRoute:
      name = "NO_PATHS_IN_ROUTE";
      break;
    case retval::kNoMatchingInterface:
      name = "NO_MATCHING_INTERFACE";
      break;
    case retval::kAddressNotFoundForInterface:
      name = "ADDRESS_NOT_FOUND_FOR_INTERFACE";
      break;
    case retval::kInvalidArgument:
      name = "INVALID_ARGUMENT";
      break;
    case retval::kAddressInUse:
      name = "ADDRESS_IN_USE";
      break;
    case retval::kDuplicateIfAddress:
      name = "DUPLICATE_IF_ADDRESS";
      break;
    case retval::kInvalidPrefixLength:
      name = "INVALID_PREFIX_LENGTH";
      break;
    default:
      name = "VNET_API_ERROR";
      break;
  }
  return absl::StrCat(rv, " ", std::string(name));
}

// ---- framing ----

void AppendFrame(std::span<const uint8_t> body, Bytes* out) {
  uint32_t n = static_cast<uint32_t>(body.size());
  uint8_t hdr[kFrameHeaderSize] = {};
  hdr[8] = n >> 24;
  hdr[9] = n >> 16;
  hdr[10] = n >> 8;
  hdr[11] = n;
  out->insert(out->end(), hdr, hdr + kFrameHeaderSize);
  out->insert(out->end(), body.begin(), body.end());
}

Bytes Frame(std::span<const uint8_t> body) {
  Bytes out;
  out.reserve(kFrameHeaderSize + body.size());
  AppendFrame(body, &out);
  return out;
}

void FrameReassembler::Feed(std::span<const uint8_t> data) {
  // Compact lazily so that feeding byte by byte stays linear.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

StatusOr<std::optional<Bytes>> FrameReassembler::Next() {
  size_t avail = buf_.size() - pos_;
  if (avail < kFrameHeaderSize) return std::optional<Bytes>();
  const uint8_t* h = buf_.data() + pos_;
  size_t len = (uint32_t{h[8]} << 24) | (uint32_t{h[9]} << 16) | (uint32_t{h[10]} << 8) | h[11];
  if (len > max_message_size_) {
    return absl::DataLossError(absl::StrCat("VPP frame of ", len, " bytes exceeds the cap of ",
                                            max_message_size_, " bytes"));
  }
  if (avail < kFrameHeaderSize + len) return std::optional<Bytes>();
  Bytes body(h + kFrameHeaderSize, h + kFrameHeaderSize + len);
  pos_ += kFrameHeaderSize + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<Bytes>(std::move(body));
}

// ---- primitives ----

WireWriter& WireWriter::U8(uint8_t v) {
  buf_.push_back(v);
  return *this;
}
WireWriter& WireWriter::U16(uint16_t v) {
  buf_.push_back(v >> 8);
  buf_.push_back(v & 0xFF);
  return *this;
}
WireWriter& WireWriter::U32(uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) buf_.push_back((v >> s) & 0xFF);
  return *this;
}
WireWriter& WireWriter::Raw(std::span<const uint8_t> b) {
  buf_.insert(buf_.end(), b.begin(), b.end());
  return *this;
}
WireWriter& WireWriter::Zeros(size_t n) {
  buf_.insert(buf_.end(), n, 0);
  return *this;
}
WireWriter& WireWriter::FixedString(std::string_view s, size_t n) {
  size_t k = std::min(s.size(), n - 1);
  buf_.insert(buf_.end(), s.begin(), s.begin() + static_cast<ptrdiff_t>(k));
  buf_.insert(buf_.end(), n - k, 0);
  return *this;
}

uint8_t WireReader::U8() { return b_[pos_++]; }
uint16_t WireReader::U16() {
  uint16_t v = static_cast<uint16_t>((b_[pos_] << 8) | b_[pos_ + 1]);
  pos_ += 2;
  return v;
}
uint32_t WireReader::U32() {
  uint32_t v = (uint32_t{b_[pos_]} << 24) | (uint32_t{b_[pos_ + 1]} << 16) |
               (uint32_t{b_[pos_ + 2]} << 8) | b_[pos_ + 3];
  pos_ += 4;
  return v;
}
void WireReader::Raw(uint8_t* out, size_t n) {
  std::memcpy(out, b_.data() + pos_, n);
  pos_ += n;
}
std::string WireReader::FixedString(size_t n) {
  const char* p = reinterpret_cast<const char*>(b_.data() + pos_);
  size_t k = 0;
  while (k + 1 < n && p[k] != '\0') ++k;
  pos_ += n;
  return std::string(p, k);
}

StatusOr<uint16_t> PeekMsgId(std::span<const uint8_t> body) {
  if (body.size() < 2) return Short("message", 2, body.size());
  return static_cast<uint16_t>((body[0] << 8) | body[1]);
}

// ---- types ----

WirePrefix WirePrefix::From(const net::IpPrefix& p) { return FromAddress(p.address(), p.len()); }

WirePrefix WirePrefix::FromAddress(const net::IpAddress& a, int len) {
  WirePrefix w;
  w.af = a.is_v4() ? 0 : 1;
  std::memcpy(w.addr.data(), a.bytes().data(), a.is_v4() ? 4 : 16);
  w.len = static_cast<uint8_t>(len);
  return w;
}

StatusOr<net::IpAddress> WirePrefix::ToAddress() const {
  if (af > 1) return absl::InvalidArgumentError(absl::StrCat("bad address family ", af));
  return net::IpAddress::FromBytes(af == 0 ? net::Family::kV4 : net::Family::kV6, addr.data());
}

StatusOr<net::IpPrefix> WirePrefix::ToPrefix() const {
  ASSIGN_OR_RETURN(net::IpAddress a, ToAddress());
  if (len > a.bit_length()) {
    return absl::InvalidArgumentError(absl::StrCat("bad prefix length ", len));
  }
  return net::IpPrefix(a, len);
}

FibPath FibPath::Via(const net::IpAddress& nh, uint32_t sw_if_index) {
  FibPath p;
  p.sw_if_index = sw_if_index;
  p.proto = nh.is_v4() ? kProtoIp4 : kProtoIp6;
  std::memcpy(p.nh.data(), nh.bytes().data(), nh.is_v4() ? 4 : 16);
  return p;
}

net::IpAddress FibPath::NextHop() const {
  return net::IpAddress::FromBytes(proto == kProtoIp6 ? net::Family::kV6 : net::Family::kV4,
                                   nh.data());
}

// ---- messages ----

Bytes EncodeBareRequest(uint16_t id, const RequestHeader& h) {
  WireWriter w(id);
  WriteHeader(w, h);
  return w.Take();
}
StatusOr<RequestHeader> DecodeBareRequest(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 10, "request"));
  WireReader r(b);
  r.Skip(2);
  return ReadHeader(r);
}

Bytes EncodeRetvalReply(uint16_t id, const RetvalReply& m) {
  return WireWriter(id).U32(m.context).I32(m.retval).Take();
}
StatusOr<RetvalReply> DecodeRetvalReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 10, "reply"));
  WireReader r(b);
  r.Skip(2);
  RetvalReply m;
  m.context = r.U32();
  m.retval = r.I32();
  return m;
}

Bytes EncodeSockclntCreate(const SockclntCreate& m) {
  return WireWriter(kSockclntCreateId).U32(m.context).FixedString(m.name, 64).Take();
}
StatusOr<SockclntCreate> DecodeSockclntCreate(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 70, "sockclnt_create"));
  WireReader r(b);
  r.Skip(2);
  SockclntCreate m;
  m.context = r.U32();
  m.name = r.FixedString(64);
  return m;
}

Bytes EncodeSockclntCreateReply(const SockclntCreateReply& m) {
  WireWriter w(kSockclntCreateReplyId);
  w.U32(m.client_index).U32(m.context).I32(m.response).U32(m.index);
  w.U16(static_cast<uint16_t>(m.table.size()));
  for (const auto& [id, name] : m.table) w.U16(id).FixedString(name, 64);
  return w.Take();
}
StatusOr<SockclntCreateReply> DecodeSockclntCreateReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 20, "sockclnt_create_reply"));
  WireReader r(b);
  if (r.U16() != kSockclntCreateReplyId) {
    return absl::InvalidArgumentError("sockclnt_create_reply: wrong message id");
  }
  SockclntCreateReply m;
  m.client_index = r.U32();
  m.context = r.U32();
  m.response = r.I32();
  m.index = r.U32();
  uint16_t count = r.U16();
  if (!r.Has(size_t{count} * 66)) {
    return Short("sockclnt_create_reply table", 20 + size_t{count} * 66, b.size());
  }
  m.table.reserve(count);
  for (int i = 0; i < count; ++i) {
    uint16_t id = r.U16();
    m.table.emplace_back(id, r.FixedString(64));
  }
  return m;
}

Bytes EncodeSockclntDelete(uint16_t id, const SockclntDelete& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  return w.U32(m.index).Take();
}
StatusOr<SockclntDelete> DecodeSockclntDelete(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 14, "sockclnt_delete"));
  WireReader r(b);
  r.Skip(2);
  SockclntDelete m;
  m.h = ReadHeader(r);
  m.index = r.U32();
  return m;
}

Bytes EncodeSockclntDeleteReply(uint16_t id, const SockclntDeleteReply& m) {
  return WireWriter(id).U32(m.context).I32(m.response).Take();
}
StatusOr<SockclntDeleteReply> DecodeSockclntDeleteReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 10, "sockclnt_delete_reply"));
  WireReader r(b);
  r.Skip(2);
  SockclntDeleteReply m;
  m.context = r.U32();
  m.response = r.I32();
  return m;
}

Bytes EncodeControlPingReply(uint16_t id, const ControlPingReply& m) {
  return WireWriter(id).U32(m.context).I32(m.retval).U32(m.client_index).U32(m.vpe_pid).Take();
}
StatusOr<ControlPingReply> DecodeControlPingReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 18, "control_ping_reply"));
  WireReader r(b);
  r.Skip(2);
  ControlPingReply m;
  m.context = r.U32();
  m.retval = r.I32();
  m.client_index = r.U32();
  m.vpe_pid = r.U32();
  return m;
}

Bytes EncodeShowVersionReply(uint16_t id, const ShowVersionReply& m) {
  WireWriter w(id);
  w.U32(m.context).I32(m.retval).FixedString(m.program, 32).FixedString(m.version, 32);
  w.FixedString(m.build_date, 32).FixedString(m.build_directory, 256);
  return w.Take();
}
StatusOr<ShowVersionReply> DecodeShowVersionReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 362, "show_version_reply"));
  WireReader r(b);
  r.Skip(2);
  ShowVersionReply m;
  m.context = r.U32();
  m.retval = r.I32();
  m.program = r.FixedString(32);
  m.version = r.FixedString(32);
  m.build_date = r.FixedString(32);
  m.build_directory = r.FixedString(256);
  return m;
}

Bytes EncodeSwInterfaceDump(uint16_t id, const SwInterfaceDump& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  w.U32(m.sw_if_index).U8(m.name_filter_valid ? 1 : 0);
  w.U32(static_cast<uint32_t>(m.name_filter.size()));
  w.Raw(std::span(reinterpret_cast<const uint8_t*>(m.name_filter.data()), m.name_filter.size()));
  return w.Take();
}
StatusOr<SwInterfaceDump> DecodeSwInterfaceDump(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, kSwInterfaceDumpFixed, "sw_interface_dump"));
  WireReader r(b);
  r.Skip(2);
  SwInterfaceDump m;
  m.h = ReadHeader(r);
  m.sw_if_index = r.U32();
  m.name_filter_valid = r.U8() != 0;
  uint32_t len = r.U32();
  if (!r.Has(len)) return Short("sw_interface_dump name_filter", 19 + size_t{len}, b.size());
  m.name_filter.resize(len);
  r.Raw(reinterpret_cast<uint8_t*>(m.name_filter.data()), len);
  return m;
}

Bytes EncodeSwInterfaceDetails(uint16_t id, const SwInterfaceDetails& m) {
  WireWriter w(id);
  w.U32(m.context).U32(m.sw_if_index).U32(m.sup_sw_if_index).Raw(m.l2_address);
  w.U32(m.flags).U32(m.type).U32(m.link_duplex).U32(m.link_speed).U16(m.link_mtu);
  for (uint32_t v : m.mtu) w.U32(v);
  w.U32(m.sub_id).U8(m.sub_number_of_tags).U16(m.sub_outer_vlan_id).U16(m.sub_inner_vlan_id);
  w.U32(m.sub_if_flags).U32(m.vtr_op).U32(m.vtr_push_dot1q).U32(m.vtr_tag1).U32(m.vtr_tag2);
  w.U16(m.outer_tag).Raw(m.b_dmac).Raw(m.b_smac).U16(m.b_vlanid).U32(m.i_sid);
  w.FixedString(m.interface_name, 64).FixedString(m.interface_dev_type, 64);
  w.FixedString(m.tag, 64);
  return w.Take();
}
StatusOr<SwInterfaceDetails> DecodeSwInterfaceDetails(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 295, "sw_interface_details"));
  WireReader r(b);
  r.Skip(2);
  SwInterfaceDetails m;
  m.context = r.U32();
  m.sw_if_index = r.U32();
  m.sup_sw_if_index = r.U32();
  r.Raw(m.l2_address.data(), 6);
  m.flags = r.U32();
  m.type = r.U32();
  m.link_duplex = r.U32();
  m.link_speed = r.U32();
  m.link_mtu = r.U16();
  for (uint32_t& v : m.mtu) v = r.U32();
  m.sub_id = r.U32();
  m.sub_number_of_tags = r.U8();
  m.sub_outer_vlan_id = r.U16();
  m.sub_inner_vlan_id = r.U16();
  m.sub_if_flags = r.U32();
  m.vtr_op = r.U32();
  m.vtr_push_dot1q = r.U32();
  m.vtr_tag1 = r.U32();
  m.vtr_tag2 = r.U32();
  m.outer_tag = r.U16();
  r.Raw(m.b_dmac.data(), 6);
  r.Raw(m.b_smac.data(), 6);
  m.b_vlanid = r.U16();
  m.i_sid = r.U32();
  m.interface_name = r.FixedString(64);
  m.interface_dev_type = r.FixedString(64);
  m.tag = r.FixedString(64);
  return m;
}

Bytes EncodeSwInterfaceSetFlags(uint16_t id, const SwInterfaceSetFlags& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  return w.U32(m.sw_if_index).U32(m.flags).Take();
}
StatusOr<SwInterfaceSetFlags> DecodeSwInterfaceSetFlags(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 18, "sw_interface_set_flags"));
  WireReader r(b);
  r.Skip(2);
  SwInterfaceSetFlags m;
  m.h = ReadHeader(r);
  m.sw_if_index = r.U32();
  m.flags = r.U32();
  return m;
}

Bytes EncodeSwInterfaceAddDelAddress(uint16_t id, const SwInterfaceAddDelAddress& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  w.U32(m.sw_if_index).U8(m.is_add ? 1 : 0).U8(m.del_all ? 1 : 0);
  WritePrefix(w, m.prefix);
  return w.Take();
}
StatusOr<SwInterfaceAddDelAddress> DecodeSwInterfaceAddDelAddress(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 34, "sw_interface_add_del_address"));
  WireReader r(b);
  r.Skip(2);
  SwInterfaceAddDelAddress m;
  m.h = ReadHeader(r);
  m.sw_if_index = r.U32();
  m.is_add = r.U8() != 0;
  m.del_all = r.U8() != 0;
  m.prefix = ReadPrefix(r);
  return m;
}

Bytes EncodeWantInterfaceEvents(uint16_t id, const WantInterfaceEvents& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  return w.U32(m.enable_disable).U32(m.pid).Take();
}
StatusOr<WantInterfaceEvents> DecodeWantInterfaceEvents(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 18, "want_interface_events"));
  WireReader r(b);
  r.Skip(2);
  WantInterfaceEvents m;
  m.h = ReadHeader(r);
  m.enable_disable = r.U32();
  m.pid = r.U32();
  return m;
}

Bytes EncodeSwInterfaceEvent(uint16_t id, const SwInterfaceEvent& m) {
  return WireWriter(id)
      .U32(m.client_index)
      .U32(m.pid)
      .U32(m.sw_if_index)
      .U32(m.flags)
      .U8(m.deleted ? 1 : 0)
      .Take();
}
StatusOr<SwInterfaceEvent> DecodeSwInterfaceEvent(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 19, "sw_interface_event"));
  WireReader r(b);
  r.Skip(2);
  SwInterfaceEvent m;
  m.client_index = r.U32();
  m.pid = r.U32();
  m.sw_if_index = r.U32();
  m.flags = r.U32();
  m.deleted = r.U8() != 0;
  return m;
}

Bytes EncodeIpAddressDump(uint16_t id, const IpAddressDump& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  return w.U32(m.sw_if_index).U8(m.is_ipv6 ? 1 : 0).Take();
}
StatusOr<IpAddressDump> DecodeIpAddressDump(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 15, "ip_address_dump"));
  WireReader r(b);
  r.Skip(2);
  IpAddressDump m;
  m.h = ReadHeader(r);
  m.sw_if_index = r.U32();
  m.is_ipv6 = r.U8() != 0;
  return m;
}

Bytes EncodeIpAddressDetails(uint16_t id, const IpAddressDetails& m) {
  WireWriter w(id);
  w.U32(m.context).U32(m.sw_if_index);
  WritePrefix(w, m.prefix);
  return w.Take();
}
StatusOr<IpAddressDetails> DecodeIpAddressDetails(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 28, "ip_address_details"));
  WireReader r(b);
  r.Skip(2);
  IpAddressDetails m;
  m.context = r.U32();
  m.sw_if_index = r.U32();
  m.prefix = ReadPrefix(r);
  return m;
}

Bytes EncodeIpRouteAddDel(uint16_t id, const IpRouteAddDel& m, bool v2) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  w.U8(m.is_add ? 1 : 0).U8(m.is_multipath ? 1 : 0);
  WriteRoute(w, m.route, v2);
  return w.Take();
}
StatusOr<IpRouteAddDel> DecodeIpRouteAddDel(std::span<const uint8_t> b, bool v2) {
  std::string_view what = v2 ? "ip_route_add_del_v2" : "ip_route_add_del";
  RETURN_IF_ERROR(NeedFixed(b, 12, what));
  WireReader r(b);
  r.Skip(2);
  IpRouteAddDel m;
  m.h = ReadHeader(r);
  m.is_add = r.U8() != 0;
  m.is_multipath = r.U8() != 0;
  ASSIGN_OR_RETURN(m.route, ReadRoute(r, v2, what, b.size()));
  return m;
}

Bytes EncodeIpRouteAddDelReply(uint16_t id, const IpRouteAddDelReply& m) {
  return WireWriter(id).U32(m.context).I32(m.retval).U32(m.stats_index).Take();
}
StatusOr<IpRouteAddDelReply> DecodeIpRouteAddDelReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 14, "ip_route_add_del_reply"));
  WireReader r(b);
  r.Skip(2);
  IpRouteAddDelReply m;
  m.context = r.U32();
  m.retval = r.I32();
  m.stats_index = r.U32();
  return m;
}

Bytes EncodeIpRouteDump(uint16_t id, const IpRouteDump& m, bool v2) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  if (v2) w.U8(m.src);
  w.U32(m.table_id).U8(m.is_ip6 ? 1 : 0).FixedString(m.table_name, 64);
  return w.Take();
}
StatusOr<IpRouteDump> DecodeIpRouteDump(std::span<const uint8_t> b, bool v2) {
  RETURN_IF_ERROR(NeedFixed(b, v2 ? 80 : 79, v2 ? "ip_route_v2_dump" : "ip_route_dump"));
  WireReader r(b);
  r.Skip(2);
  IpRouteDump m;
  m.h = ReadHeader(r);
  if (v2) m.src = r.U8();
  m.table_id = r.U32();
  m.is_ip6 = r.U8() != 0;
  m.table_name = r.FixedString(64);
  return m;
}

Bytes EncodeIpRouteDetails(uint16_t id, const IpRouteDetails& m, bool v2) {
  WireWriter w(id);
  w.U32(m.context);
  WriteRoute(w, m.route, v2);
  return w.Take();
}
StatusOr<IpRouteDetails> DecodeIpRouteDetails(std::span<const uint8_t> b, bool v2) {
  std::string_view what = v2 ? "ip_route_v2_details" : "ip_route_details";
  RETURN_IF_ERROR(NeedFixed(b, 6, what));
  WireReader r(b);
  r.Skip(2);
  IpRouteDetails m;
  m.context = r.U32();
  ASSIGN_OR_RETURN(m.route, ReadRoute(r, v2, what, b.size()));
  return m;
}

Bytes EncodeFibSourceAdd(uint16_t id, const FibSourceAdd& m) {
  WireWriter w(id);
  WriteHeader(w, m.h);
  return w.U8(m.src.priority).U8(m.src.id).FixedString(m.src.name, 64).Take();
}
StatusOr<FibSourceAdd> DecodeFibSourceAdd(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 76, "fib_source_add"));
  WireReader r(b);
  r.Skip(2);
  FibSourceAdd m;
  m.h = ReadHeader(r);
  m.src.priority = r.U8();
  m.src.id = r.U8();
  m.src.name = r.FixedString(64);
  return m;
}

Bytes EncodeFibSourceAddReply(uint16_t id, const FibSourceAddReply& m) {
  return WireWriter(id).U32(m.context).I32(m.retval).U8(m.id).Take();
}
StatusOr<FibSourceAddReply> DecodeFibSourceAddReply(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 11, "fib_source_add_reply"));
  WireReader r(b);
  r.Skip(2);
  FibSourceAddReply m;
  m.context = r.U32();
  m.retval = r.I32();
  m.id = r.U8();
  return m;
}

Bytes EncodeFibSourceDetails(uint16_t id, const FibSourceDetails& m) {
  return WireWriter(id)
      .U32(m.context)
      .U8(m.src.priority)
      .U8(m.src.id)
      .FixedString(m.src.name, 64)
      .Take();
}
StatusOr<FibSourceDetails> DecodeFibSourceDetails(std::span<const uint8_t> b) {
  RETURN_IF_ERROR(NeedFixed(b, 72, "fib_source_details"));
  WireReader r(b);
  r.Skip(2);
  FibSourceDetails m;
  m.context = r.U32();
  m.src.priority = r.U8();
  m.src.id = r.U8();
  m.src.name = r.FixedString(64);
  return m;
}

}  // namespace vcra::dataplane::vpp
