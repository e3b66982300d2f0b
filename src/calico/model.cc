// Decoders for the Calico objects the agent reads from etcd. Everything here is pure and treats its
// input as hostile: values are size-checked and nesting-checked before nlohmann parses them, every
// field is type-checked before use, and no exception leaves this file.
//
// Decisions that go beyond what Calico itself documents (each one is also tested):
// - Block keys must be canonical (exactly what BlockKey() would write, with or without the leading
//   '/'). Calico only writes canonical keys, and accepting aliases such as "10.244.007.0-26" would
//   let two etcd keys claim the same CIDR, so deleting one would withdraw the other's routes.
// - An `affinity` that is not "host:<valid node>" or "virtual:<valid name>" ("host:" with no
//   node, an unknown type, a hostile name) fails the whole block: the record is corrupt, and
//   quietly downgrading it to kNone would turn one block route into per-IP routes.
// - An allocation whose secondary.node is missing, not a string or not a valid node name gets an
//   empty node (no owner), as Felix does for "unclassified" allocations; the block stays usable.
// - Fields the agent does not use (unallocated, sequenceNumberForAllocation, strict_affinity,
//   affinity_claim_time, alternateOwnerAttrs, releasedAt, handle_id, ...) are not type-checked,
//   so a future format change there cannot take routes down.
// - JSON null for an optional field means absent, as in Go's encoding/json.
#include "calico/model.h"

#include <algorithm>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vcra::calico {
namespace {

using Json = nlohmann::json;

// Calico's deepest object (a block attribute's alternateOwnerAttrs) is 4 levels deep; anything
// near this limit is hostile. The limit keeps every later recursive walk (dump, destruction)
// cheap and bounded.
constexpr int kMaxJsonDepth = 64;

// Largest allocations array EncodeBlock writes in full; Calico's smallest blocks (/20 for IPv4,
// /116 for IPv6) have 4096 addresses.
constexpr int kMaxEncodedHostBits = 16;

constexpr std::string_view kHostAffinityPrefix = "host:";
constexpr std::string_view kVirtualAffinityPrefix = "virtual:";

// Input-derived text for an error message: quoted, at most 80 bytes, non-printable bytes escaped,
// so that a hostile key cannot put control characters or invalid UTF-8 into the log.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out += "\"";
  return out;
}

Status Invalid(std::string_view context, std::string_view message) {
  std::string text(context);
  text += ": ";
  text += message;
  return absl::InvalidArgumentError(text);
}

bool HasControlOrNonAscii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    unsigned char c = static_cast<unsigned char>(ch);
    return c < 0x20 || c >= 0x7f;
  });
}

// Strips one leading '/' (keys from etcd always have it; Calico's own regexes make it optional).
std::string_view WithoutLeadingSlash(std::string_view key) {
  if (!key.empty() && key.front() == '/') key.remove_prefix(1);
  return key;
}

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// nlohmann's parser is iterative, but a DOM nested 10^5 deep is still expensive to build, dump and
// destroy. This scan follows the JSON lexer's idea of where strings start and end, so any bracket
// the parser would act on before it stops is counted here too.
Status CheckNesting(std::string_view text, std::string_view context) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > kMaxJsonDepth) {
          return Invalid(context,
                         "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        }
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

// Parses `value` into a JSON object.
StatusOr<Json> ParseObject(std::string_view value, std::string_view context) {
  if (value.size() > kMaxValueBytes) {
    return Invalid(context, "value is " + std::to_string(value.size()) + " bytes, limit is " +
                                std::to_string(kMaxValueBytes));
  }
  RETURN_IF_ERROR(CheckNesting(value, context));
  Json doc;
  try {
    doc = Json::parse(value.begin(), value.end());
  } catch (const Json::parse_error& e) {
    // e.what() quotes the offending input; keep only the position.
    return Invalid(context, "not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  } catch (const std::exception&) {
    return Invalid(context, "not valid JSON");
  }
  if (!doc.is_object()) return Invalid(context, "value is not a JSON object");
  return doc;
}

// The member `name` of `obj`, or nullptr when `obj` is not an object, lacks it or has it as null.
const Json* Find(const Json& obj, const char* name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// A non-negative JSON integer (parsed by nlohmann as exactly 64 bits, never via double).
std::optional<uint64_t> AsUint64(const Json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

StatusOr<bool> OptionalBool(const Json& obj, const char* name, bool default_value,
                            std::string_view context) {
  const Json* j = Find(obj, name);
  if (j == nullptr) return default_value;
  if (!j->is_boolean()) return Invalid(context, std::string(name) + " must be a boolean");
  return j->get<bool>();
}

StatusOr<const std::string*> OptionalString(const Json& obj, const char* name,
                                            std::string_view context) {
  const Json* j = Find(obj, name);
  if (j == nullptr) return static_cast<const std::string*>(nullptr);
  if (!j->is_string()) return Invalid(context, std::string(name) + " must be a string");
  return &j->get_ref<const std::string&>();
}

// "192.0.2.11", or "192.0.2.11/24" whose address (not the masked network) is kept.
std::optional<net::IpAddress> ParseAddressOrCidr(std::string_view text) {
  if (HasControlOrNonAscii(text)) return std::nullopt;
  auto slash = text.find('/');
  std::optional<net::IpAddress> addr = net::IpAddress::Parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3) return std::nullopt;
    int n = 0;
    for (char c : len) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (n > addr->bit_length()) return std::nullopt;
  }
  return addr;
}

StatusOr<net::IpPrefix> ParseJsonCidr(const Json& obj, const char* name, std::string_view context) {
  const Json* j = Find(obj, name);
  if (j == nullptr) return Invalid(context, std::string(name) + " is missing");
  if (!j->is_string()) return Invalid(context, std::string(name) + " must be a string");
  const std::string& text = j->get_ref<const std::string&>();
  std::optional<net::IpPrefix> cidr;
  if (!HasControlOrNonAscii(text)) cidr = net::IpPrefix::Parse(text);
  if (!cidr) return Invalid(context, std::string(name) + " " + Quote(text) + " is not a CIDR");
  return *cidr;
}

StatusOr<std::pair<AffinityType, std::string>> ParseAffinity(const std::string& text,
                                                             std::string_view context) {
  std::string_view rest = text;
  AffinityType type;
  if (ConsumePrefix(rest, kHostAffinityPrefix)) {
    type = AffinityType::kHost;
  } else if (ConsumePrefix(rest, kVirtualAffinityPrefix)) {
    type = AffinityType::kVirtual;
  } else {
    return Invalid(context,
                   "affinity " + Quote(text) + " is neither host:<node> nor virtual:<name>");
  }
  if (!IsValidNodeName(rest)) {
    return Invalid(context, "affinity " + Quote(text) + " does not name a valid node");
  }
  return std::make_pair(type, std::string(rest));
}

// The node each attribute names ("" for none), validating the attribute structure.
StatusOr<std::vector<std::string>> AttributeNodes(const Json& doc, std::string_view context) {
  std::vector<std::string> nodes;
  const Json* attrs = Find(doc, "attributes");
  if (attrs == nullptr) return nodes;
  if (!attrs->is_array()) return Invalid(context, "attributes must be an array");
  nodes.reserve(attrs->size());
  for (size_t i = 0; i < attrs->size(); ++i) {
    const Json& attr = (*attrs)[i];
    std::string node;
    if (!attr.is_null()) {
      if (!attr.is_object()) {
        return Invalid(context, "attributes[" + std::to_string(i) + "] must be an object");
      }
      if (const Json* secondary = Find(attr, "secondary")) {
        if (!secondary->is_object()) {
          return Invalid(context,
                         "attributes[" + std::to_string(i) + "].secondary must be an object");
        }
        const Json* n = Find(*secondary, "node");
        if (n != nullptr && n->is_string() && IsValidNodeName(n->get_ref<const std::string&>())) {
          node = n->get_ref<const std::string&>();
        }
      }
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

StatusOr<IpamBlock> DecodeBlockJson(const net::IpPrefix& key_cidr, const Json& doc,
                                    std::string_view context) {
  IpamBlock block;
  ASSIGN_OR_RETURN(block.cidr, ParseJsonCidr(doc, "cidr", context));
  if (block.cidr != key_cidr) {
    return Invalid(context, "cidr " + block.cidr.ToString() + " does not match the key's " +
                                key_cidr.ToString());
  }

  // `affinity` wins; the 2016 libcalico-go `hostAffinity` (bare node name) is the fallback.
  if (const Json* affinity = Find(doc, "affinity")) {
    if (!affinity->is_string()) return Invalid(context, "affinity must be a string or null");
    ASSIGN_OR_RETURN(auto parsed, ParseAffinity(affinity->get_ref<const std::string&>(), context));
    block.affinity_type = parsed.first;
    block.affinity_name = std::move(parsed.second);
  } else {
    ASSIGN_OR_RETURN(const std::string* host, OptionalString(doc, "hostAffinity", context));
    if (host != nullptr && !host->empty()) {
      if (!IsValidNodeName(*host)) {
        return Invalid(context, "hostAffinity " + Quote(*host) + " is not a valid node name");
      }
      block.affinity_type = AffinityType::kHost;
      block.affinity_name = *host;
    }
  }

  ASSIGN_OR_RETURN(block.deleted, OptionalBool(doc, "deleted", false, context));
  if (const Json* seq = Find(doc, "sequenceNumber")) {
    std::optional<uint64_t> v = AsUint64(*seq);
    if (!v) return Invalid(context, "sequenceNumber must be an unsigned 64-bit integer");
    block.sequence_number = *v;
  }

  ASSIGN_OR_RETURN(std::vector<std::string> nodes, AttributeNodes(doc, context));
  const Json* allocs = Find(doc, "allocations");
  if (allocs == nullptr) return block;
  if (!allocs->is_array()) return Invalid(context, "allocations must be an array");
  int host_bits = block.cidr.address().bit_length() - block.cidr.len();
  if (host_bits < 63 && allocs->size() > (uint64_t{1} << host_bits)) {
    return Invalid(context, "allocations has " + std::to_string(allocs->size()) +
                                " entries, more than the block's " +
                                std::to_string(uint64_t{1} << host_bits) + " addresses");
  }
  for (size_t ordinal = 0; ordinal < allocs->size(); ++ordinal) {
    const Json& entry = (*allocs)[ordinal];
    if (entry.is_null()) continue;
    std::optional<uint64_t> index = AsUint64(entry);
    if (!index) {
      return Invalid(context, "allocations[" + std::to_string(ordinal) +
                                  "] must be null or a non-negative integer");
    }
    if (*index >= nodes.size()) {
      return Invalid(context, "allocations[" + std::to_string(ordinal) +
                                  "] = " + std::to_string(*index) + " but attributes has " +
                                  std::to_string(nodes.size()) + " entries");
    }
    // The array is bounded by kMaxValueBytes, so the ordinal fits in 32 bits.
    block.allocations.push_back(BlockAllocation{static_cast<uint32_t>(ordinal),
                                                block.cidr.address().Plus(ordinal), nodes[*index]});
  }
  return block;
}

}  // namespace

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  // DNS-1123 subdomain: dot-separated labels of [a-z0-9-], each starting and ending with an
  // alphanumeric; '_' is accepted wherever '-' is.
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || !alnum(label.front()) || !alnum(label.back())) return false;
    for (char c : label) {
      if (!alnum(c) && c != '-' && c != '_') return false;
    }
    start = end + 1;
  }
  return true;
}

StatusOr<std::string> NormalizeBlockPrefix(std::string_view prefix) {
  std::string out(prefix);
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  if (out.back() != '/') out.push_back('/');
  if (out.rfind(kBlockPrefix, 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block prefix must be under ", std::string(kBlockPrefix), ": '", std::string(prefix), "'"));
  }
  return out;
}

StatusOr<net::IpPrefix> ParseBlockKey(std::string_view key) {
  constexpr std::string_view kContext = "block key";
  std::string_view rest = WithoutLeadingSlash(key);
  std::optional<net::Family> family;
  if (ConsumePrefix(rest, kBlockPrefix.substr(1))) {
    if (ConsumePrefix(rest, "ipv4/block/")) {
      family = net::Family::kV4;
    } else if (ConsumePrefix(rest, "ipv6/block/")) {
      family = net::Family::kV6;
    }
  }
  if (!family) {
    return Invalid(kContext, Quote(key) + " is not under " + std::string(kBlockPrefix) +
                                 "ipv4/block/ or ipv6/block/");
  }
  auto dash = rest.find('-');
  if (rest.find('/') != std::string_view::npos || dash == std::string_view::npos ||
      HasControlOrNonAscii(rest)) {
    return Invalid(kContext, Quote(key) + " does not end in <address>-<length>");
  }
  std::string text(rest);
  text[dash] = '/';
  std::optional<net::IpPrefix> cidr = net::IpPrefix::Parse(text, /*strict=*/true);
  if (!cidr) {
    if (net::IpPrefix::Parse(text)) return Invalid(kContext, Quote(key) + " has host bits set");
    return Invalid(kContext, Quote(key) + " does not end in a valid CIDR");
  }
  if (cidr->family() != *family) {
    return Invalid(kContext, Quote(key) + " puts an address under the wrong family directory");
  }
  std::string canonical = BlockKey(*cidr);
  if (std::string_view(canonical).substr(1) != WithoutLeadingSlash(key)) {
    return Invalid(kContext, Quote(key) + " is not canonical (Calico writes " + canonical + ")");
  }
  return *cidr;
}

std::string BlockKey(const net::IpPrefix& cidr) {
  std::string key(kBlockPrefix);
  key += net::FamilyName(cidr.family());
  key += "/block/";
  key += cidr.address().ToString();
  key += '-';
  key += std::to_string(cidr.len());
  return key;
}

StatusOr<IpamBlock> DecodeBlock(std::string_view key, std::string_view value) {
  ASSIGN_OR_RETURN(net::IpPrefix key_cidr, ParseBlockKey(key));
  std::string context = "block " + key_cidr.ToString();
  ASSIGN_OR_RETURN(Json doc, ParseObject(value, context));
  try {
    return DecodeBlockJson(key_cidr, doc, context);
  } catch (const std::exception& e) {
    // Unreachable with the checks above; a backstop so that no exception leaves the module.
    return Invalid(context, std::string("unexpected JSON shape: ") + e.what());
  }
}

std::string EncodeBlock(const IpamBlock& block) {
  nlohmann::ordered_json j;
  j["cidr"] = block.cidr.ToString();
  switch (block.affinity_type) {
    case AffinityType::kHost:
      j["affinity"] = std::string(kHostAffinityPrefix) + block.affinity_name;
      break;
    case AffinityType::kVirtual:
      j["affinity"] = std::string(kVirtualAffinityPrefix) + block.affinity_name;
      break;
    case AffinityType::kNone:
      j["affinity"] = nullptr;
      break;
  }
  int host_bits = block.cidr.address().bit_length() - block.cidr.len();
  uint64_t size = 0;
  for (const BlockAllocation& a : block.allocations) {
    VCRA_CHECK(host_bits >= 32 || a.ordinal < (uint64_t{1} << host_bits));
    VCRA_CHECK(a.ordinal < (uint32_t{1} << kMaxEncodedHostBits));
    size = std::max<uint64_t>(size, uint64_t{a.ordinal} + 1);
  }
  // Calico writes one entry per address; beyond /16-sized blocks (never created by Calico) the
  // array stops after the last allocation, which DecodeBlock accepts just the same.
  if (host_bits <= kMaxEncodedHostBits) size = uint64_t{1} << host_bits;

  // One attribute per owner node, in first-use order; Calico shares attributes the same way.
  nlohmann::ordered_json allocations = nlohmann::ordered_json::array();
  for (uint64_t i = 0; i < size; ++i) allocations.push_back(nullptr);
  nlohmann::ordered_json attributes = nlohmann::ordered_json::array();
  nlohmann::ordered_json seq_for_allocation = nlohmann::ordered_json::object();
  std::map<std::string, size_t> attr_index;
  for (const BlockAllocation& a : block.allocations) {
    auto [it, inserted] = attr_index.emplace(a.node, attr_index.size());
    if (inserted) {
      nlohmann::ordered_json attr = nlohmann::ordered_json::object();
      if (!a.node.empty()) {
        attr["handle_id"] = "vcra-encoded." + a.node;
        attr["secondary"] = {{"node", a.node}};
      }
      attributes.push_back(std::move(attr));
    }
    allocations[a.ordinal] = it->second;
    seq_for_allocation[std::to_string(a.ordinal)] = block.sequence_number;
  }
  nlohmann::ordered_json unallocated = nlohmann::ordered_json::array();
  for (uint64_t i = 0; i < size; ++i) {
    if (allocations[i].is_null()) unallocated.push_back(i);
  }
  j["allocations"] = std::move(allocations);
  j["unallocated"] = std::move(unallocated);
  j["attributes"] = std::move(attributes);
  j["sequenceNumber"] = block.sequence_number;
  j["sequenceNumberForAllocation"] = std::move(seq_for_allocation);
  j["deleted"] = block.deleted;
  // Names come from the caller; never throw on invalid UTF-8 in them.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<PeerKey> ParsePeerKey(std::string_view key) {
  std::string_view rest = WithoutLeadingSlash(key);
  if (!ConsumePrefix(rest, kPeerPrefix.substr(1))) return std::nullopt;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view host = rest.substr(0, slash);
  if (!IsValidNodeName(host)) return std::nullopt;
  rest.remove_prefix(slash);
  PeerKey out;
  out.host = std::string(host);
  if (rest == "/peerip/ipv4/1") {
    out.family = net::Family::kV4;
  } else if (rest == "/peerip/ipv6/1") {
    out.family = net::Family::kV6;
  } else {
    return std::nullopt;
  }
  return out;
}

std::string PeerKeyFor(std::string_view host, net::Family family) {
  std::string key(kPeerPrefix);
  key += host;
  key += "/peerip/";
  key += net::FamilyName(family);
  key += "/1";
  return key;
}

StatusOr<net::IpAddress> DecodePeerAddress(std::string_view value, net::Family family) {
  constexpr std::string_view kContext = "peer address";
  // The 2016 prototype wrote values with `etcdctl set`, which may leave a trailing newline. An
  // "address/len" value is accepted too (its address is used), since that is how Calico writes
  // node addresses and an operator may copy one.
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  auto first = value.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return Invalid(kContext, "value is empty");
  std::string_view text = value.substr(first, value.find_last_not_of(kSpace) - first + 1);
  std::optional<net::IpAddress> addr = ParseAddressOrCidr(text);
  if (!addr) return Invalid(kContext, Quote(text) + " is not an IP address");
  if (addr->family() != family) {
    return Invalid(kContext,
                   Quote(text) + " is not an " + std::string(net::FamilyName(family)) + " address");
  }
  if (addr->IsUnspecified()) return Invalid(kContext, Quote(text) + " is unspecified");
  return *addr;
}

namespace {

// "<prefix><name>" with a valid resource name and nothing after it.
std::optional<std::string> ParseResourceKey(std::string_view key, std::string_view prefix) {
  std::string_view rest = WithoutLeadingSlash(key);
  if (!ConsumePrefix(rest, prefix.substr(1)) || !IsValidNodeName(rest)) return std::nullopt;
  return std::string(rest);
}

// Sets `out` (if still empty) from an addresses[] entry's text; the family decides which slot.
Status TakeNodeAddress(std::string_view text, std::string_view field, NodeAddresses& out) {
  if (text.empty()) return absl::OkStatus();
  std::optional<net::IpAddress> addr = ParseAddressOrCidr(text);
  if (!addr) return Invalid("node", std::string(field) + " " + Quote(text) + " is not an address");
  std::optional<net::IpAddress>& slot = addr->is_v4() ? out.v4 : out.v6;
  if (!slot) slot = *addr;
  return absl::OkStatus();
}

StatusOr<NodeAddresses> DecodeNodeJson(const Json& doc) {
  constexpr std::string_view kContext = "node";
  NodeAddresses out;
  const Json* spec = Find(doc, "spec");
  if (spec == nullptr) return out;
  if (!spec->is_object()) return Invalid(kContext, "spec must be an object");

  if (const Json* bgp = Find(*spec, "bgp")) {
    if (!bgp->is_object()) return Invalid(kContext, "spec.bgp must be an object");
    for (net::Family family : {net::Family::kV4, net::Family::kV6}) {
      const char* name = family == net::Family::kV4 ? "ipv4Address" : "ipv6Address";
      std::string field = std::string("spec.bgp.") + name;
      ASSIGN_OR_RETURN(const std::string* text, OptionalString(*bgp, name, kContext));
      if (text == nullptr || text->empty()) continue;
      std::optional<net::IpAddress> addr = ParseAddressOrCidr(*text);
      if (!addr || addr->family() != family) {
        return Invalid(kContext, field + " " + Quote(*text) + " is not an " +
                                     std::string(net::FamilyName(family)) + " address");
      }
      (family == net::Family::kV4 ? out.v4 : out.v6) = *addr;
    }
  }

  const Json* addresses = Find(*spec, "addresses");
  if (addresses == nullptr) return out;
  if (!addresses->is_array()) return Invalid(kContext, "spec.addresses must be an array");
  // Felix's order: BGP address, then the first InternalIP, then the first ExternalIP.
  NodeAddresses internal, external;
  for (size_t i = 0; i < addresses->size(); ++i) {
    const Json& entry = (*addresses)[i];
    std::string field = "spec.addresses[" + std::to_string(i) + "]";
    if (!entry.is_object()) return Invalid(kContext, field + " must be an object");
    ASSIGN_OR_RETURN(const std::string* address, OptionalString(entry, "address", kContext));
    ASSIGN_OR_RETURN(const std::string* type, OptionalString(entry, "type", kContext));
    if (address == nullptr || type == nullptr) continue;
    if (*type == "InternalIP") {
      RETURN_IF_ERROR(TakeNodeAddress(*address, field + ".address", internal));
    } else if (*type == "ExternalIP") {
      RETURN_IF_ERROR(TakeNodeAddress(*address, field + ".address", external));
    }
  }
  if (!out.v4) out.v4 = internal.v4 ? internal.v4 : external.v4;
  if (!out.v6) out.v6 = internal.v6 ? internal.v6 : external.v6;
  return out;
}

StatusOr<IpPool> DecodeIpPoolJson(std::string_view key, const Json& doc) {
  constexpr std::string_view kContext = "ippool";
  IpPool pool;
  if (const Json* metadata = Find(doc, "metadata")) {
    if (!metadata->is_object()) return Invalid(kContext, "metadata must be an object");
    ASSIGN_OR_RETURN(const std::string* name, OptionalString(*metadata, "name", kContext));
    if (name != nullptr && !name->empty()) {
      if (!IsValidNodeName(*name)) {
        return Invalid(kContext, "metadata.name " + Quote(*name) + " is not a valid name");
      }
      pool.name = *name;
    }
  }
  if (pool.name.empty()) {
    std::optional<std::string> from_key = ParsePoolKey(key);
    if (!from_key) return Invalid(kContext, "no metadata.name and the key names no pool");
    pool.name = std::move(*from_key);
  }
  const Json* spec = Find(doc, "spec");
  if (spec == nullptr) return Invalid(kContext, "spec is missing");
  if (!spec->is_object()) return Invalid(kContext, "spec must be an object");
  // Calico masks a pool CIDR with host bits set; so do we.
  ASSIGN_OR_RETURN(pool.cidr, ParseJsonCidr(*spec, "cidr", "ippool spec"));
  ASSIGN_OR_RETURN(pool.disabled, OptionalBool(*spec, "disabled", false, "ippool spec"));
  // Absent or empty allowedUses defaults to [Workload, Tunnel] (Calico's defaulting). A
  // Tunnel-only pool still holds node tunnel addresses that are routed exactly like workload
  // addresses, so it counts as a workload pool; only pools without either (LoadBalancer-only)
  // are excluded from cluster routing, as Felix does.
  if (const Json* uses = Find(*spec, "allowedUses")) {
    if (!uses->is_array()) return Invalid(kContext, "spec.allowedUses must be an array");
    bool workload = uses->empty();
    for (const Json& use : *uses) {
      if (!use.is_string()) return Invalid(kContext, "spec.allowedUses entries must be strings");
      const std::string& s = use.get_ref<const std::string&>();
      if (s == "Workload" || s == "Tunnel") workload = true;
    }
    pool.workload = workload;
  }
  return pool;
}

StatusOr<bool> DecodeDatastoreReadyJson(const Json& doc) {
  const Json* spec = Find(doc, "spec");
  if (spec == nullptr) return true;
  if (!spec->is_object()) return Invalid("clusterinformation", "spec must be an object");
  return OptionalBool(*spec, "datastoreReady", true, "clusterinformation spec");
}

// Runs a decoder over the parsed document; the catch is a backstop that keeps exceptions inside.
template <typename Fn>
auto Guarded(std::string_view context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Invalid(context, std::string("unexpected JSON shape: ") + e.what());
  }
}

}  // namespace

std::optional<std::string> ParseNodeKey(std::string_view key) {
  return ParseResourceKey(key, kNodePrefix);
}

StatusOr<NodeAddresses> DecodeNode(std::string_view value) {
  ASSIGN_OR_RETURN(Json doc, ParseObject(value, "node"));
  return Guarded("node", [&] { return DecodeNodeJson(doc); });
}

std::optional<std::string> ParsePoolKey(std::string_view key) {
  return ParseResourceKey(key, kPoolPrefix);
}

StatusOr<IpPool> DecodeIpPool(std::string_view key, std::string_view value) {
  ASSIGN_OR_RETURN(Json doc, ParseObject(value, "ippool"));
  return Guarded("ippool", [&] { return DecodeIpPoolJson(key, doc); });
}

StatusOr<bool> DecodeDatastoreReady(std::string_view value) {
  ASSIGN_OR_RETURN(Json doc, ParseObject(value, "clusterinformation"));
  return Guarded("clusterinformation", [&] { return DecodeDatastoreReadyJson(doc); });
}

}  // namespace vcra::calico
