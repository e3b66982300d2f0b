// VPP binary API wire codec (the socket transport of docs/vpp-api.md): frame header, stream
// reassembly, and packed big-endian encoders/decoders for the messages the agent and the
// simulator use. No I/O, no VPP headers.
//
// Contract:
// - Encode*(id, ...) returns one message body (no frame header) starting with the u16 id. Request
//   encoders write client_index/context from the struct; VppClient overwrites bytes 2..9 with its
//   handle and context, so callers may leave them 0.
// - Decode*(body) checks the fixed size and any variable tail against the bytes present and
//   returns InvalidArgument on short or malformed input. Trailing bytes are tolerated, as VPP
//   does. Decoders never read past the span: every input from VPP is treated as hostile.
// - Structs keep raw wire values (e.g. prefix bytes as sent, fixed strings as text) so that the
//   simulator can reproduce real VPP frames byte for byte; conversions to net:: types are helpers.
//
// Thread safety: pure functions and value types; FrameReassembler is not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "net/ip.h"

namespace vcra::dataplane::vpp {

using Bytes = std::vector<uint8_t>;

// ---- name_crc strings (v21.06 .. v26.06 identical, docs/vpp-api.md section 3; fib_source_* from
// the v26.06 transcript) ----
namespace msg {
inline constexpr std::string_view kSockclntCreate = "sockclnt_create_455fb9c4";
inline constexpr std::string_view kSockclntCreateReply = "sockclnt_create_reply_35166268";
inline constexpr std::string_view kSockclntDelete = "sockclnt_delete_8ac76db6";
inline constexpr std::string_view kSockclntDeleteReply = "sockclnt_delete_reply_8f38b1ee";
inline constexpr std::string_view kControlPing = "control_ping_51077d14";
inline constexpr std::string_view kControlPingReply = "control_ping_reply_f6b0b8ca";
inline constexpr std::string_view kShowVersion = "show_version_51077d14";
inline constexpr std::string_view kShowVersionReply = "show_version_reply_c919bde1";
inline constexpr std::string_view kSwInterfaceDump = "sw_interface_dump_aa610c27";
inline constexpr std::string_view kSwInterfaceDetails = "sw_interface_details_6c221fc7";
inline constexpr std::string_view kSwInterfaceSetFlags = "sw_interface_set_flags_f5aec1b8";
inline constexpr std::string_view kSwInterfaceSetFlagsReply =
    "sw_interface_set_flags_reply_e8d4e804";
inline constexpr std::string_view kSwInterfaceAddDelAddress =
    "sw_interface_add_del_address_5463d73b";
inline constexpr std::string_view kSwInterfaceAddDelAddressReply =
    "sw_interface_add_del_address_reply_e8d4e804";
inline constexpr std::string_view kWantInterfaceEvents = "want_interface_events_476f5a08";
inline constexpr std::string_view kWantInterfaceEventsReply =
    "want_interface_events_reply_e8d4e804";
inline constexpr std::string_view kSwInterfaceEvent = "sw_interface_event_2d3d95a7";
inline constexpr std::string_view kIpAddressDump = "ip_address_dump_2d033de4";
inline constexpr std::string_view kIpAddressDetails = "ip_address_details_ee29b797";
inline constexpr std::string_view kIpRouteAddDel = "ip_route_add_del_b8ecfe0d";
inline constexpr std::string_view kIpRouteAddDelReply = "ip_route_add_del_reply_1992deab";
inline constexpr std::string_view kIpRouteDump = "ip_route_dump_b9d2e09e";
inline constexpr std::string_view kIpRouteDetails = "ip_route_details_bda8f315";
inline constexpr std::string_view kIpRouteAddDelV2 = "ip_route_add_del_v2_521ef330";
inline constexpr std::string_view kIpRouteAddDelV2Reply = "ip_route_add_del_v2_reply_1992deab";
inline constexpr std::string_view kIpRouteV2Dump = "ip_route_v2_dump_d16f72e6";
inline constexpr std::string_view kIpRouteV2Details = "ip_route_v2_details_b09aa6c0";
inline constexpr std::string_view kFibSourceAdd = "fib_source_add_b3ac2aec";
inline constexpr std::string_view kFibSourceAddReply = "fib_source_add_reply_604fd6f1";
inline constexpr std::string_view kFibSourceDump = "fib_source_dump_51077d14";
inline constexpr std::string_view kFibSourceDetails = "fib_source_details_8668acdb";
}  // namespace msg

// The only ids fixed by VPP (memclnt enum); everything else comes from the handshake table.
inline constexpr uint16_t kSockclntCreateId = 15;
inline constexpr uint16_t kSockclntCreateReplyId = 16;

inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint32_t kNoInterface = 0xFFFFFFFF;

// VNET_API_ERROR_* values the agent and simulator use (docs/vpp-api.md section 8).
namespace retval {
inline constexpr int32_t kUnspecified = -1;
inline constexpr int32_t kInvalidSwIfIndex = -2;
inline constexpr int32_t kNoSuchFib = -3;
inline constexpr int32_t kNoSuchEntry = -6;
inline constexpr int32_t kInvalidRegistration = -31;
inline constexpr int32_t kNoPathsInRoute = -52;
inline constexpr int32_t kNoMatchingInterface = -54;
inline constexpr int32_t kAddressNotFoundForInterface = -60;
inline constexpr int32_t kInvalidArgument = -73;
inline constexpr int32_t kAddressInUse = -105;
inline constexpr int32_t kDuplicateIfAddress = -127;
inline constexpr int32_t kInvalidPrefixLength = -171;
}  // namespace retval

// Name of a retval for error messages ("-54 NO_MATCHING_INTERFACE").
std::string RetvalToString(int32_t rv);

// ---- framing ----

// Appends header (q = 0, BE data_len, 0) + body to `out`.
void AppendFrame(std::span<const uint8_t> body, Bytes* out);
Bytes Frame(std::span<const uint8_t> body);

// Splits a byte stream into message bodies, whatever the read boundaries were.
class FrameReassembler {
 public:
  explicit FrameReassembler(size_t max_message_size = 64u << 20)
      : max_message_size_(max_message_size) {}

  void Feed(std::span<const uint8_t> data);
  // The next complete message body, std::nullopt when more bytes are needed, or an error when the
  // announced length exceeds the cap (the stream is then unusable).
  StatusOr<std::optional<Bytes>> Next();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  size_t max_message_size_;
  Bytes buf_;
  size_t pos_ = 0;
};

// ---- primitive readers/writers (exposed for the simulator and tests) ----

class WireWriter {
 public:
  static constexpr size_t kTypicalMessageSize = 256;
  explicit WireWriter(uint16_t msg_id) {
    // One allocation for the common messages (a one-path route is 206 bytes), not one per
    // doubling: encoding is on the agent's path for every route.
    buf_.reserve(kTypicalMessageSize);
    U16(msg_id);
  }
  WireWriter& U8(uint8_t v);
  WireWriter& U16(uint16_t v);
  WireWriter& U32(uint32_t v);
  WireWriter& I32(int32_t v) { return U32(static_cast<uint32_t>(v)); }
  WireWriter& Raw(std::span<const uint8_t> b);
  WireWriter& Zeros(size_t n);
  // At most n-1 bytes of `s`, then zero fill to n.
  WireWriter& FixedString(std::string_view s, size_t n);
  Bytes Take() { return std::move(buf_); }

 private:
  Bytes buf_;
};

class WireReader {
 public:
  explicit WireReader(std::span<const uint8_t> b) : b_(b) {}
  bool Has(size_t n) const { return pos_ + n <= b_.size(); }
  size_t remaining() const { return b_.size() - pos_; }
  // REQUIRES: Has(size) checked by the caller for the whole fixed part.
  uint8_t U8();
  uint16_t U16();
  uint32_t U32();
  int32_t I32() { return static_cast<int32_t>(U32()); }
  void Raw(uint8_t* out, size_t n);
  void Skip(size_t n) { pos_ += n; }
  // Up to the first NUL or n-1 bytes (VPP may leave garbage in the last byte).
  std::string FixedString(size_t n);

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

StatusOr<uint16_t> PeekMsgId(std::span<const uint8_t> body);

// ---- shared types ----

// vl_api_prefix_t as on the wire (18 bytes); af 0 = IPv4, 1 = IPv6.
struct WirePrefix {
  uint8_t af = 0;
  std::array<uint8_t, 16> addr{};
  uint8_t len = 0;

  static WirePrefix From(const net::IpPrefix& p);
  static WirePrefix FromAddress(const net::IpAddress& a, int len);  // host bits kept
  // Host bits are cleared (VPP reports IPv4 connected entries unmasked). Error when af or len
  // is out of range.
  StatusOr<net::IpPrefix> ToPrefix() const;
  StatusOr<net::IpAddress> ToAddress() const;
  friend bool operator==(const WirePrefix&, const WirePrefix&) = default;
};

struct MplsLabel {
  uint8_t is_uniform = 0;
  uint32_t label = 0;
  uint8_t ttl = 0;
  uint8_t exp = 0;
  friend bool operator==(const MplsLabel&, const MplsLabel&) = default;
};

enum FibPathType : uint32_t { kPathNormal = 0, kPathLocal = 1, kPathDrop = 2 };
enum FibPathProto : uint32_t { kProtoIp4 = 0, kProtoIp6 = 1 };

// vl_api_fib_path_t (167 bytes).
struct FibPath {
  uint32_t sw_if_index = kNoInterface;
  uint32_t table_id = 0;
  uint32_t rpf_id = 0;
  uint8_t weight = 1;
  uint8_t preference = 0;
  uint32_t type = kPathNormal;
  uint32_t flags = 0;
  uint32_t proto = kProtoIp4;
  std::array<uint8_t, 16> nh{};
  uint32_t via_label = 0;
  uint32_t obj_id = 0;
  uint32_t classify_table_index = 0;
  uint8_t n_labels = 0;
  std::array<MplsLabel, 16> labels{};

  // A next-hop path out of an interface (the only kind the agent programs).
  static FibPath Via(const net::IpAddress& nh, uint32_t sw_if_index);
  net::IpAddress NextHop() const;  // interpreted by proto
  friend bool operator==(const FibPath&, const FibPath&) = default;
};
inline constexpr size_t kFibPathSize = 167;

// vl_api_ip_route_t / vl_api_ip_route_v2_t (src only on the wire for v2).
struct IpRoute {
  uint32_t table_id = 0;
  uint32_t stats_index = 0;
  WirePrefix prefix;
  uint8_t src = 0;
  std::vector<FibPath> paths;
  friend bool operator==(const IpRoute&, const IpRoute&) = default;
};

struct FibSource {
  uint8_t priority = 0;
  uint8_t id = 0;
  std::string name;
  friend bool operator==(const FibSource&, const FibSource&) = default;
};

// ---- messages ----

// Every request except sockclnt_create: u16 id | u32 client_index | u32 context.
struct RequestHeader {
  uint32_t client_index = 0;
  uint32_t context = 0;
};

// control_ping, show_version, fib_source_dump: a bare request.
Bytes EncodeBareRequest(uint16_t id, const RequestHeader& h);
StatusOr<RequestHeader> DecodeBareRequest(std::span<const uint8_t> b);

// Replies that are just {context, retval} (every autoreply).
struct RetvalReply {
  uint32_t context = 0;
  int32_t retval = 0;
};
Bytes EncodeRetvalReply(uint16_t id, const RetvalReply& m);
StatusOr<RetvalReply> DecodeRetvalReply(std::span<const uint8_t> b);

struct SockclntCreate {
  uint32_t context = 0;
  std::string name;
};
Bytes EncodeSockclntCreate(const SockclntCreate& m);  // id is always 15
StatusOr<SockclntCreate> DecodeSockclntCreate(std::span<const uint8_t> b);

struct SockclntCreateReply {
  uint32_t client_index = 0;
  uint32_t context = 0;
  int32_t response = 0;
  uint32_t index = 0;
  std::vector<std::pair<uint16_t, std::string>> table;  // id, name_crc; wire order
};
Bytes EncodeSockclntCreateReply(const SockclntCreateReply& m);  // id is always 16
StatusOr<SockclntCreateReply> DecodeSockclntCreateReply(std::span<const uint8_t> b);

struct SockclntDelete {
  RequestHeader h;
  uint32_t index = 0;
};
Bytes EncodeSockclntDelete(uint16_t id, const SockclntDelete& m);
StatusOr<SockclntDelete> DecodeSockclntDelete(std::span<const uint8_t> b);

struct SockclntDeleteReply {
  uint32_t context = 0;
  int32_t response = 0;
};
Bytes EncodeSockclntDeleteReply(uint16_t id, const SockclntDeleteReply& m);
StatusOr<SockclntDeleteReply> DecodeSockclntDeleteReply(std::span<const uint8_t> b);

struct ControlPingReply {
  uint32_t context = 0;
  int32_t retval = 0;
  uint32_t client_index = 0;
  uint32_t vpe_pid = 0;
};
Bytes EncodeControlPingReply(uint16_t id, const ControlPingReply& m);
StatusOr<ControlPingReply> DecodeControlPingReply(std::span<const uint8_t> b);

struct ShowVersionReply {
  uint32_t context = 0;
  int32_t retval = 0;
  std::string program;
  std::string version;
  std::string build_date;
  std::string build_directory;
};
Bytes EncodeShowVersionReply(uint16_t id, const ShowVersionReply& m);
StatusOr<ShowVersionReply> DecodeShowVersionReply(std::span<const uint8_t> b);

struct SwInterfaceDump {
  RequestHeader h;
  uint32_t sw_if_index = kNoInterface;
  bool name_filter_valid = false;
  std::string name_filter;
};
Bytes EncodeSwInterfaceDump(uint16_t id, const SwInterfaceDump& m);
StatusOr<SwInterfaceDump> DecodeSwInterfaceDump(std::span<const uint8_t> b);

inline constexpr uint32_t kIfAdminUp = 1;
inline constexpr uint32_t kIfLinkUp = 2;

struct SwInterfaceDetails {
  uint32_t context = 0;
  uint32_t sw_if_index = 0;
  uint32_t sup_sw_if_index = 0;
  std::array<uint8_t, 6> l2_address{};
  uint32_t flags = 0;
  uint32_t type = 0;
  uint32_t link_duplex = 0;
  uint32_t link_speed = 0;
  uint16_t link_mtu = 0;
  std::array<uint32_t, 4> mtu{};
  uint32_t sub_id = 0;
  uint8_t sub_number_of_tags = 0;
  uint16_t sub_outer_vlan_id = 0;
  uint16_t sub_inner_vlan_id = 0;
  uint32_t sub_if_flags = 0;
  uint32_t vtr_op = 0;
  uint32_t vtr_push_dot1q = 0;
  uint32_t vtr_tag1 = 0;
  uint32_t vtr_tag2 = 0;
  uint16_t outer_tag = 0;
  std::array<uint8_t, 6> b_dmac{};
  std::array<uint8_t, 6> b_smac{};
  uint16_t b_vlanid = 0;
  uint32_t i_sid = 0;
  std::string interface_name;
  std::string interface_dev_type;
  std::string tag;
};
Bytes EncodeSwInterfaceDetails(uint16_t id, const SwInterfaceDetails& m);
StatusOr<SwInterfaceDetails> DecodeSwInterfaceDetails(std::span<const uint8_t> b);

struct SwInterfaceSetFlags {
  RequestHeader h;
  uint32_t sw_if_index = 0;
  uint32_t flags = 0;
};
Bytes EncodeSwInterfaceSetFlags(uint16_t id, const SwInterfaceSetFlags& m);
StatusOr<SwInterfaceSetFlags> DecodeSwInterfaceSetFlags(std::span<const uint8_t> b);

struct SwInterfaceAddDelAddress {
  RequestHeader h;
  uint32_t sw_if_index = 0;
  bool is_add = true;
  bool del_all = false;
  WirePrefix prefix;
};
Bytes EncodeSwInterfaceAddDelAddress(uint16_t id, const SwInterfaceAddDelAddress& m);
StatusOr<SwInterfaceAddDelAddress> DecodeSwInterfaceAddDelAddress(std::span<const uint8_t> b);

struct WantInterfaceEvents {
  RequestHeader h;
  uint32_t enable_disable = 1;
  uint32_t pid = 0;
};
Bytes EncodeWantInterfaceEvents(uint16_t id, const WantInterfaceEvents& m);
StatusOr<WantInterfaceEvents> DecodeWantInterfaceEvents(std::span<const uint8_t> b);

// Event: no context; client_index and pid echo the subscriber's values.
struct SwInterfaceEvent {
  uint32_t client_index = 0;
  uint32_t pid = 0;
  uint32_t sw_if_index = 0;
  uint32_t flags = 0;
  bool deleted = false;
};
Bytes EncodeSwInterfaceEvent(uint16_t id, const SwInterfaceEvent& m);
StatusOr<SwInterfaceEvent> DecodeSwInterfaceEvent(std::span<const uint8_t> b);

struct IpAddressDump {
  RequestHeader h;
  uint32_t sw_if_index = 0;
  bool is_ipv6 = false;
};
Bytes EncodeIpAddressDump(uint16_t id, const IpAddressDump& m);
StatusOr<IpAddressDump> DecodeIpAddressDump(std::span<const uint8_t> b);

struct IpAddressDetails {
  uint32_t context = 0;
  uint32_t sw_if_index = 0;
  WirePrefix prefix;
};
Bytes EncodeIpAddressDetails(uint16_t id, const IpAddressDetails& m);
StatusOr<IpAddressDetails> DecodeIpAddressDetails(std::span<const uint8_t> b);

// ip_route_add_del (v2 = false) and ip_route_add_del_v2 (v2 = true, carries route.src).
struct IpRouteAddDel {
  RequestHeader h;
  bool is_add = true;
  bool is_multipath = false;
  IpRoute route;
};
Bytes EncodeIpRouteAddDel(uint16_t id, const IpRouteAddDel& m, bool v2);
StatusOr<IpRouteAddDel> DecodeIpRouteAddDel(std::span<const uint8_t> b, bool v2);

// ip_route_add_del(_v2)_reply.
struct IpRouteAddDelReply {
  uint32_t context = 0;
  int32_t retval = 0;
  uint32_t stats_index = 0;
};
Bytes EncodeIpRouteAddDelReply(uint16_t id, const IpRouteAddDelReply& m);
StatusOr<IpRouteAddDelReply> DecodeIpRouteAddDelReply(std::span<const uint8_t> b);

// ip_route_dump (v2 = false) / ip_route_v2_dump (v2 = true, with src filter; 0 = all).
struct IpRouteDump {
  RequestHeader h;
  uint8_t src = 0;
  uint32_t table_id = 0;
  bool is_ip6 = false;
  std::string table_name;
};
Bytes EncodeIpRouteDump(uint16_t id, const IpRouteDump& m, bool v2);
StatusOr<IpRouteDump> DecodeIpRouteDump(std::span<const uint8_t> b, bool v2);

struct IpRouteDetails {
  uint32_t context = 0;
  IpRoute route;
};
Bytes EncodeIpRouteDetails(uint16_t id, const IpRouteDetails& m, bool v2);
StatusOr<IpRouteDetails> DecodeIpRouteDetails(std::span<const uint8_t> b, bool v2);

struct FibSourceAdd {
  RequestHeader h;
  FibSource src;
};
Bytes EncodeFibSourceAdd(uint16_t id, const FibSourceAdd& m);
StatusOr<FibSourceAdd> DecodeFibSourceAdd(std::span<const uint8_t> b);

struct FibSourceAddReply {
  uint32_t context = 0;
  int32_t retval = 0;
  uint8_t id = 0;
};
Bytes EncodeFibSourceAddReply(uint16_t id, const FibSourceAddReply& m);
StatusOr<FibSourceAddReply> DecodeFibSourceAddReply(std::span<const uint8_t> b);

struct FibSourceDetails {
  uint32_t context = 0;
  FibSource src;
};
Bytes EncodeFibSourceDetails(uint16_t id, const FibSourceDetails& m);
StatusOr<FibSourceDetails> DecodeFibSourceDetails(std::span<const uint8_t> b);

// Minimum sizes VPP computes (docs/vpp-api.md section 2), used by the simulator to drop short
// messages.
inline constexpr size_t kIpRouteAddDelFixed = 39;
inline constexpr size_t kSwInterfaceDumpFixed = 19;

}  // namespace vcra::dataplane::vpp
