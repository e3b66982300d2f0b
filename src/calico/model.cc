// Decoders for the Calico objects the agent reads from etcd. Everything here is pure and treats its
// input as hostile: every value first passes one gate (CheckValue: size limit for its kind, UTF-8,
// no control bytes, one strict JSON value with nothing after it, bounded nesting), then a decoder
// that type-checks every field Calico's Go types declare, with Go's encoding/json rules, before
// reading the few it needs. simdjson's DOM parser does the parsing (it validates the whole
// document, which its on-demand API does not); nlohmann only writes blocks (EncodeBlock).
//
// Decisions that go beyond what Calico itself documents (each one is also tested):
// - Block keys must be canonical (exactly what BlockKey() would write, with or without the leading
//   '/'). Calico only writes canonical keys, and accepting aliases such as "10.244.007.0-26" would
//   let two etcd keys claim the same CIDR, so deleting one would withdraw the other's routes.
// - An `affinity` that is not "host:<valid node>" or "virtual:<valid name>" ("host:" with no
//   node, an unknown type, a hostile name) fails the whole block: the record is corrupt, and
//   quietly downgrading it to kNone would turn one block route into per-IP routes.
// - An allocation whose secondary.node is missing, empty or not a valid node name gets no owner,
//   as Felix does for "unclassified" allocations; the block stays usable. (A node that is not a
//   string fails the block: Go cannot decode it into map[string]string.)
// - Negative allocation indexes and indexes past attributes[] fail the block (Go would decode
//   them; libcalico-go then skips or crashes on them).
// - Stricter than Go, by the parser: invalid UTF-8, lone surrogate escapes and numbers outside
//   double's range (1e400) anywhere in a value fail it; Go replaces or tolerates them in fields
//   it ignores. Calico never writes any of them.
#include "calico/model.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vcra::calico {
namespace {

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

// ---------------------------------------------------------------------------------------------
// The gate: every value passes here before any decoder reads a field of it.

size_t MaxValueBytes(ValueKind kind) {
  switch (kind) {
    case ValueKind::kBlock:
      return kMaxBlockValueBytes;
    case ValueKind::kPeerAddress:
      return kMaxPeerValueBytes;
    case ValueKind::kResource:
      return kMaxResourceValueBytes;
  }
  return 0;
}

std::string_view KindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kBlock:
      return "block";
    case ValueKind::kPeerAddress:
      return "peer address";
    case ValueKind::kResource:
      return "resource";
  }
  return "value";
}

// The first raw byte below 0x20 other than JSON's whitespace (tab, LF, CR), if any.
std::optional<size_t> FindControlByte(std::string_view value) {
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return i;
  }
  return std::nullopt;
}

// One parser per thread, reused: its buffers grow to the largest value seen, and are given back
// after a large one, so a single hostile 2 MiB value does not pin memory for the agent's life.
constexpr size_t kParserKeptCapacity = 64 * 1024;

simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser = [] {
    simdjson::dom::parser p;
    // A failed allocation shows up as a parse error (MEMALLOC) on first use.
    simdjson::error_code ignored = p.allocate(kParserKeptCapacity, kMaxJsonDepth);
    (void)ignored;
    return p;
  }();
  if (parser.capacity() > kParserKeptCapacity) {
    simdjson::error_code ignored = parser.allocate(kParserKeptCapacity, kMaxJsonDepth);
    (void)ignored;
  }
  return parser;
}

std::string JsonErrorText(simdjson::error_code error) {
  switch (error) {
    case simdjson::DEPTH_ERROR:
      return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    case simdjson::TAPE_ERROR:
      return "not valid JSON (broken structure, or data after the JSON value)";
    case simdjson::NUMBER_ERROR:
      return "not valid JSON (a number that is malformed or out of range)";
    case simdjson::STRING_ERROR:
      return "not valid JSON (a malformed string or escape)";
    case simdjson::UNESCAPED_CHARS:
      return "not valid JSON (a control character inside a string)";
    case simdjson::EMPTY:
      return "not valid JSON (value is empty)";
    default:
      return std::string("not valid JSON (") + simdjson::error_message(error) + ")";
  }
}

// The gate for JSON values: size, then a strict parse, which refuses invalid UTF-8, raw control
// bytes (inside strings they must be escaped; between tokens only JSON's whitespace is allowed),
// anything after the one JSON value, and nesting deeper than kMaxJsonDepth; the root must be an
// object. The scans for UTF-8 and control bytes run only when the parse failed, to say which
// rule was broken; they keep a correct value's cost at one pass of the parser. The returned
// element lives in the thread's parser until the next parse on this thread.
StatusOr<simdjson::dom::element> GateJson(ValueKind kind, std::string_view value,
                                          std::string_view context) {
  size_t limit = MaxValueBytes(kind);
  if (value.size() > limit) {
    return Invalid(context, "value is " + std::to_string(value.size()) +
                                " bytes, the limit for a " + std::string(KindName(kind)) + " is " +
                                std::to_string(limit));
  }
  simdjson::dom::element root;
  simdjson::error_code error = ThreadParser().parse(value.data(), value.size()).get(root);
  if (error) {
    if (!simdjson::validate_utf8(value.data(), value.size())) {
      return Invalid(context, "value is not valid UTF-8");
    }
    if (std::optional<size_t> at = FindControlByte(value)) {
      return Invalid(context, "value has a control byte (" +
                                  Quote(value.substr(*at, 1)).substr(1, 4) + ") at offset " +
                                  std::to_string(*at));
    }
    return Invalid(context, JsonErrorText(error));
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return Invalid(context, "value is not a JSON object");
  }
  return root;
}

// The gate for a peer address value: a short line of printable ASCII. The one padding accepted
// is a single trailing newline, which `etcdctl put`/`set` with a here-string leaves (the 2016
// prototype's hosts wrote their keys that way); Calico's own parsers trim nothing.
StatusOr<std::string_view> GatePeerText(std::string_view value, std::string_view context) {
  if (value.size() > kMaxPeerValueBytes) {
    return Invalid(context, "value is " + std::to_string(value.size()) +
                                " bytes, the limit for a " +
                                std::string(KindName(ValueKind::kPeerAddress)) + " is " +
                                std::to_string(kMaxPeerValueBytes));
  }
  std::string_view text = value;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) return Invalid(context, "value is empty");
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return Invalid(context, "value " + Quote(value) + " has a space, control or non-ASCII byte" +
                                  " at offset " + std::to_string(i));
    }
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Go's encoding/json rules, for the fields Calico's Go types declare.
//
// - A JSON key names a declared field if it equals the field's name, or else equals it after
//   Go's folding (ASCII case, plus the four non-ASCII runes that fold onto ASCII letters:
//   KELVIN SIGN and LONG S, dotted and dotless I). Other keys are ignored, as Go ignores them.
// - null is accepted for every field and element and means "zero / absent".
// - A declared field of the wrong JSON type fails the whole value, as it fails Go's Unmarshal.
// - Integers must be integer literals in range: an int takes an int64, a uint64 takes 0..2^64-1;
//   1.0, 1e2 and -1 (for a uint64) are refused.
// - A declared field named twice: the last one wins for scalars and lists of scalars, and maps
//   merge key by key, as in Go. One difference on purpose: a struct or list of structs named twice
//   is refused. Go merges those field by field and element by element (even into elements a
//   shorter list had cut off); Calico never writes that, and refusing it is safer than copying it.

char AsciiUpper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// `key` matches the ASCII field name `field` under Go's name folding.
bool GoNameFolds(std::string_view key, std::string_view field) {
  size_t j = 0;
  for (size_t i = 0; i < key.size();) {
    char folded;
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x80) {
      folded = AsciiUpper(static_cast<char>(c));
      i += 1;
    } else if (key.substr(i, 3) == "\xe2\x84\xaa") {  // U+212A KELVIN SIGN
      folded = 'K';
      i += 3;
    } else if (key.substr(i, 2) == "\xc5\xbf") {  // U+017F LATIN SMALL LETTER LONG S
      folded = 'S';
      i += 2;
    } else if (key.substr(i, 2) == "\xc4\xb0" || key.substr(i, 2) == "\xc4\xb1") {  // U+0130/1
      folded = 'I';
      i += 2;
    } else {
      return false;
    }
    if (j >= field.size() || AsciiUpper(field[j]) != folded) return false;
    ++j;
  }
  return j == field.size();
}

// A position in a document, rendered only for an error message.
struct Path {
  const Path* parent = nullptr;
  std::string_view field;  // empty for an array element
  size_t index = 0;

  Path Field(std::string_view name) const { return Path{this, name, 0}; }
  Path Element(size_t i) const { return Path{this, {}, i}; }
  std::string ToString() const {
    std::string out = parent != nullptr ? parent->ToString() : "";
    if (!field.empty()) {
      if (!out.empty()) out += '.';
      out += field;
    } else if (parent != nullptr) {
      out += "[" + std::to_string(index) + "]";
    }
    return out;
  }
};

using Element = simdjson::dom::element;
using ElementType = simdjson::dom::element_type;

enum class GoType : uint8_t {
  kString,      // string, *string
  kBool,        // bool, *bool
  kInt,         // int, int64
  kUint32,      // uint32
  kUint64,      // uint64
  kTime,        // metav1.Time: an RFC 3339 string
  kStringMap,   // map[string]string
  kUint64Map,   // map[string]uint64
  kStringList,  // []string
  kIntList,     // []int
  kObject,      // a struct the caller walks itself (or does not need: its type is still checked)
  kObjectList,  // []struct, elements walked by the caller (or not needed)
  kCustom,      // anything else: the caller checks it
};

struct GoField {
  std::string_view name;
  GoType type;
};

class GoDecoder {
 public:
  explicit GoDecoder(std::string_view context) : context_(context) {}

  Status Error(const Path& path, std::string_view message) const {
    return Invalid(context_, path.ToString() + " " + std::string(message));
  }

  // Checks `value` against `type` (null is always accepted).
  Status Check(Element value, GoType type, const Path& path) const {
    ElementType t = value.type();
    if (t == ElementType::NULL_VALUE) return absl::OkStatus();
    switch (type) {
      case GoType::kString:
        if (t != ElementType::STRING) return Error(path, "must be a string");
        return absl::OkStatus();
      case GoType::kBool:
        if (t != ElementType::BOOL) return Error(path, "must be a boolean");
        return absl::OkStatus();
      case GoType::kInt:
        if (t != ElementType::INT64) return Error(path, "must be an integer in int64 range");
        return absl::OkStatus();
      case GoType::kUint32: {
        int64_t v = 0;
        if (t != ElementType::INT64 || value.get_int64().get(v) || v < 0 || v > 0xffffffffll) {
          return Error(path, "must be an integer in uint32 range");
        }
        return absl::OkStatus();
      }
      case GoType::kUint64:
        return AsUint64(value, path).status();
      case GoType::kTime: {
        std::string_view s;
        if (value.get_string().get(s) || !IsRfc3339(s)) {
          return Error(path, "must be an RFC 3339 time string");
        }
        return absl::OkStatus();
      }
      case GoType::kStringMap:
      case GoType::kUint64Map: {
        simdjson::dom::object map;
        if (value.get_object().get(map)) return Error(path, "must be an object");
        GoType element = type == GoType::kStringMap ? GoType::kString : GoType::kUint64;
        for (simdjson::dom::key_value_pair kv : map) {
          RETURN_IF_ERROR(Check(kv.value, element, path.Field(kv.key)));
        }
        return absl::OkStatus();
      }
      case GoType::kStringList:
      case GoType::kIntList: {
        simdjson::dom::array list;
        if (value.get_array().get(list)) return Error(path, "must be an array");
        GoType element = type == GoType::kStringList ? GoType::kString : GoType::kInt;
        size_t i = 0;
        for (Element e : list) RETURN_IF_ERROR(Check(e, element, path.Element(i++)));
        return absl::OkStatus();
      }
      case GoType::kObject:
        if (t != ElementType::OBJECT) return Error(path, "must be an object");
        return absl::OkStatus();
      case GoType::kObjectList: {
        simdjson::dom::array list;
        if (value.get_array().get(list)) return Error(path, "must be an array");
        size_t i = 0;
        for (Element e : list) {
          ElementType et = e.type();
          if (et != ElementType::OBJECT && et != ElementType::NULL_VALUE) {
            return Error(path.Element(i), "must be an object");
          }
          ++i;
        }
        return absl::OkStatus();
      }
      case GoType::kCustom:
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  // Walks the members of `object` (which must be a JSON object or null) as Go decodes them into
  // a struct declaring `fields`: each declared field is type-checked, then `on_field(index,
  // value)` sees it (null included); unknown members are skipped.
  template <size_t N, typename OnField>
  Status Struct(Element object, const std::array<GoField, N>& fields, const Path& path,
                OnField&& on_field) const {
    static_assert(N <= 64);
    if (object.type() == ElementType::NULL_VALUE) return absl::OkStatus();
    simdjson::dom::object members;
    if (object.get_object().get(members)) return Error(path, "must be an object");
    uint64_t seen = 0;
    for (simdjson::dom::key_value_pair kv : members) {
      size_t index = N;
      for (size_t i = 0; i < N; ++i) {
        if (kv.key == fields[i].name) {
          index = i;
          break;
        }
      }
      if (index == N) {
        for (size_t i = 0; i < N; ++i) {
          if (GoNameFolds(kv.key, fields[i].name)) {
            index = i;
            break;
          }
        }
      }
      if (index == N) continue;
      Path field_path = path.Field(fields[index].name);
      GoType type = fields[index].type;
      if ((seen & (uint64_t{1} << index)) &&
          (type == GoType::kObject || type == GoType::kObjectList)) {
        return Error(field_path, "appears twice");
      }
      seen |= uint64_t{1} << index;
      RETURN_IF_ERROR(Check(kv.value, fields[index].type, field_path));
      RETURN_IF_ERROR(on_field(index, kv.value, field_path));
    }
    return absl::OkStatus();
  }

  StatusOr<uint64_t> AsUint64(Element value, const Path& path) const {
    uint64_t u = 0;
    int64_t i = 0;
    switch (value.type()) {
      case ElementType::UINT64:
        if (value.get_uint64().get(u) == simdjson::SUCCESS) return u;
        break;
      case ElementType::INT64:
        if (value.get_int64().get(i) == simdjson::SUCCESS && i >= 0)
          return static_cast<uint64_t>(i);
        break;
      default:
        break;
    }
    return Error(path, "must be an unsigned 64-bit integer");
  }

  // Go's time.Parse(time.RFC3339, s), which metav1.Time uses: "2006-01-02T15:04:05Z07:00", with
  // optional fractional seconds; fields range-checked.
  static bool IsRfc3339(std::string_view s) {
    auto digits = [&](size_t at, size_t n, int& out) {
      if (at + n > s.size()) return false;
      out = 0;
      for (size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
      }
      return true;
    };
    int year, month, day, hour, minute, second;
    if (!digits(0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(5, 2, month) ||
        s[7] != '-' || !digits(8, 2, day) || s[10] != 'T' || !digits(11, 2, hour) || s[13] != ':' ||
        !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
      return false;
    }
    static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] ||
        (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59) {
      return false;
    }
    size_t at = 19;
    if (s[at] == '.' || s[at] == ',') {
      size_t start = ++at;
      while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
      if (at == start || at - start > 9) return false;
    }
    if (at < s.size() && s[at] == 'Z') return at + 1 == s.size();
    int zone_hour, zone_minute;
    return at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && digits(at + 1, 2, zone_hour) &&
           s[at + 3] == ':' && digits(at + 4, 2, zone_minute) && zone_hour < 24 && zone_minute < 60;
  }

 private:
  std::string_view context_;
};

// String content of an element already checked as kString; "" for null.
std::string_view StringOf(Element value) {
  std::string_view s;
  if (value.get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

// Sets `out` from an element already checked as kBool; null leaves it.
void SetBool(Element value, bool& out) {
  bool b = false;
  if (value.get_bool().get(b) == simdjson::SUCCESS) out = b;
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

std::optional<net::IpPrefix> ParseCidrText(std::string_view text) {
  if (HasControlOrNonAscii(text)) return std::nullopt;
  return net::IpPrefix::Parse(text);
}

StatusOr<std::pair<AffinityType, std::string_view>> ParseAffinity(std::string_view text,
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
  return std::make_pair(type, rest);
}

// libcalico-go's model.AllocationBlock and AllocationAttribute, as stored in etcd.
enum BlockField : size_t {
  kCidr,
  kAffinity,
  kHostAffinity,
  kAffinityClaimTime,
  kStrictAffinity,
  kAllocations,
  kUnallocated,
  kAttributes,
  kSequenceNumber,
  kSequenceNumberForAllocation,
  kDeleted,
};
constexpr std::array<GoField, 11> kBlockFields = {{
    {"cidr", GoType::kCustom},  // net.IPNet: a CIDR string; null is an error
    {"affinity", GoType::kString},
    {"hostAffinity", GoType::kString},
    {"affinity_claim_time", GoType::kTime},
    {"strictAffinity", GoType::kBool},
    {"allocations", GoType::kCustom},  // []*int
    {"unallocated", GoType::kIntList},
    {"attributes", GoType::kObjectList},
    {"sequenceNumber", GoType::kUint64},
    {"sequenceNumberForAllocation", GoType::kUint64Map},
    {"deleted", GoType::kBool},
}};
constexpr std::array<GoField, 3> kAttributeFields = {{
    {"handle_id", GoType::kString},
    {"secondary", GoType::kStringMap},
    {"alternate", GoType::kStringMap},
}};

// The owner node each attribute names ("" for none): secondary["node"] when it is a valid node
// name. Map keys are exact in Go (only struct field names fold); a repeated key keeps its last
// value, and a repeated `secondary` merges into the first, as Go decodes into the same map.
Status AttributeNodes(const GoDecoder& go, Element attributes, const Path& path,
                      std::vector<std::string_view>& nodes) {
  simdjson::dom::array list;
  if (attributes.get_array().get(list)) return absl::OkStatus();  // null
  nodes.reserve(list.size());
  size_t i = 0;
  for (Element attr : list) {
    std::string_view node;
    RETURN_IF_ERROR(go.Struct(attr, kAttributeFields, path.Element(i),
                              [&](size_t field, Element value, const Path&) {
                                if (field != 1) return absl::OkStatus();
                                simdjson::dom::object secondary;
                                if (value.get_object().get(secondary) != simdjson::SUCCESS) {
                                  node = {};  // null: Go sets the map to nil
                                  return absl::OkStatus();
                                }
                                for (simdjson::dom::key_value_pair kv : secondary) {
                                  if (kv.key == "node") node = StringOf(kv.value);
                                }
                                return absl::OkStatus();
                              }));
    nodes.push_back(IsValidNodeName(node) ? node : std::string_view());
    ++i;
  }
  return absl::OkStatus();
}

StatusOr<IpamBlock> DecodeBlockObject(const net::IpPrefix& key_cidr, Element doc,
                                      std::string_view context) {
  GoDecoder go(context);
  const Path root;
  std::optional<Element> cidr, affinity, host_affinity, allocations, attributes;
  IpamBlock block;
  RETURN_IF_ERROR(go.Struct(
      doc, kBlockFields, root, [&](size_t field, Element value, const Path& path) -> Status {
        switch (field) {
          case kCidr:
            cidr = value;
            break;
          case kAffinity:
            affinity = value;
            break;
          case kHostAffinity:
            host_affinity = value;
            break;
          case kAllocations:
            allocations = value;
            break;
          case kAttributes:
            attributes = value;
            break;
          case kDeleted:
            SetBool(value, block.deleted);
            break;
          case kSequenceNumber:
            if (value.type() != ElementType::NULL_VALUE) {
              ASSIGN_OR_RETURN(block.sequence_number, go.AsUint64(value, path));
            }
            break;
          default:
            break;
        }
        return absl::OkStatus();
      }));

  // libcalico-go's IPNet decodes through a string, so null or a non-string fails.
  std::string_view cidr_text;
  if (!cidr || cidr->get_string().get(cidr_text)) {
    bool present = cidr && cidr->type() != ElementType::NULL_VALUE;
    return Invalid(context, present ? "cidr must be a string" : "cidr is missing or null");
  }
  std::optional<net::IpPrefix> parsed_cidr = ParseCidrText(cidr_text);
  if (!parsed_cidr) return Invalid(context, "cidr " + Quote(cidr_text) + " is not a CIDR");
  block.cidr = *parsed_cidr;
  if (block.cidr != key_cidr) {
    return Invalid(context, "cidr " + block.cidr.ToString() + " does not match the key's " +
                                key_cidr.ToString());
  }

  // `affinity` wins; the 2016 libcalico-go `hostAffinity` (bare node name) is the fallback.
  if (affinity && affinity->type() != ElementType::NULL_VALUE) {
    ASSIGN_OR_RETURN(auto parsed, ParseAffinity(StringOf(*affinity), context));
    block.affinity_type = parsed.first;
    block.affinity_name = std::string(parsed.second);
  } else if (host_affinity && !StringOf(*host_affinity).empty()) {
    std::string_view host = StringOf(*host_affinity);
    if (!IsValidNodeName(host)) {
      return Invalid(context, "hostAffinity " + Quote(host) + " is not a valid node name");
    }
    block.affinity_type = AffinityType::kHost;
    block.affinity_name = std::string(host);
  }

  std::vector<std::string_view> nodes;
  if (attributes) RETURN_IF_ERROR(AttributeNodes(go, *attributes, root.Field("attributes"), nodes));

  simdjson::dom::array list;
  if (!allocations || allocations->type() == ElementType::NULL_VALUE) return block;
  if (allocations->get_array().get(list)) return Invalid(context, "allocations must be an array");
  int host_bits = block.cidr.address().bit_length() - block.cidr.len();
  if (host_bits < 63 && list.size() > (uint64_t{1} << host_bits)) {
    return Invalid(context, "allocations has " + std::to_string(list.size()) +
                                " entries, more than the block's " +
                                std::to_string(uint64_t{1} << host_bits) + " addresses");
  }
  // Only allocations a route can come from are kept: those owned by a node other than the one
  // (or the virtual name) the block is affine to. The rest never produce a route.
  std::string_view owner = block.affinity_name;
  uint32_t ordinal = 0;  // the array is bounded by the value size, so it fits in 32 bits
  for (Element entry : list) {
    ElementType t = entry.type();
    if (t != ElementType::NULL_VALUE) {
      int64_t index = -1;
      if (t != ElementType::INT64 || entry.get_int64().get(index) || index < 0) {
        return Invalid(context, "allocations[" + std::to_string(ordinal) +
                                    "] must be null or a non-negative integer");
      }
      if (static_cast<uint64_t>(index) >= nodes.size()) {
        return Invalid(context, "allocations[" + std::to_string(ordinal) +
                                    "] = " + std::to_string(index) + " but attributes has " +
                                    std::to_string(nodes.size()) + " entries");
      }
      std::string_view node = nodes[static_cast<size_t>(index)];
      if (!node.empty() && node != owner) {
        block.allocations.push_back(
            BlockAllocation{ordinal, block.cidr.address().Plus(ordinal), std::string(node)});
      }
    }
    ++ordinal;
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
  ASSIGN_OR_RETURN(Element doc, GateJson(ValueKind::kBlock, value, context));
  return DecodeBlockObject(key_cidr, doc, context);
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
  // An "address/len" value is accepted (its address is used), since that is how Calico writes
  // node addresses and an operator may copy one.
  ASSIGN_OR_RETURN(std::string_view text, GatePeerText(value, kContext));
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

// Kubernetes' metav1.ObjectMeta and TypeMeta, shared by every v3 resource.
constexpr std::array<GoField, 15> kObjectMetaFields = {{
    {"name", GoType::kString},
    {"generateName", GoType::kString},
    {"namespace", GoType::kString},
    {"selfLink", GoType::kString},
    {"uid", GoType::kString},
    {"resourceVersion", GoType::kString},
    {"generation", GoType::kInt},
    {"creationTimestamp", GoType::kTime},
    {"deletionTimestamp", GoType::kTime},
    {"deletionGracePeriodSeconds", GoType::kInt},
    {"labels", GoType::kStringMap},
    {"annotations", GoType::kStringMap},
    {"ownerReferences", GoType::kObjectList},
    {"finalizers", GoType::kStringList},
    {"managedFields", GoType::kObjectList},
}};
enum ResourceField : size_t { kApiVersion, kKind, kMetadata, kSpec, kStatus };
constexpr std::array<GoField, 5> kResourceFields = {{
    {"apiVersion", GoType::kString},
    {"kind", GoType::kString},
    {"metadata", GoType::kObject},
    {"spec", GoType::kObject},
    {"status", GoType::kObject},
}};

// The parts of a v3 resource the decoders read; metadata is checked on the way.
struct ResourceParts {
  std::string_view name;
  std::optional<Element> spec;
  std::optional<Element> status;
};

StatusOr<ResourceParts> WalkResource(const GoDecoder& go, Element doc) {
  const Path root;
  ResourceParts parts;
  RETURN_IF_ERROR(go.Struct(doc, kResourceFields, root,
                            [&](size_t field, Element value, const Path& path) -> Status {
                              if (field == kSpec) parts.spec = value;
                              if (field == kStatus) parts.status = value;
                              if (field != kMetadata) return absl::OkStatus();
                              return go.Struct(value, kObjectMetaFields, path,
                                               [&](size_t meta_field, Element v, const Path&) {
                                                 if (meta_field == 0) parts.name = StringOf(v);
                                                 return absl::OkStatus();
                                               });
                            }));
  return parts;
}

// numorstring.ASNumber: a uint32, or a string "N" / "A.B" (asdot, two 16-bit halves).
Status CheckAsNumber(const GoDecoder& go, Element value, const Path& path) {
  ElementType t = value.type();
  if (t == ElementType::NULL_VALUE) return absl::OkStatus();
  if (t != ElementType::STRING) return go.Check(value, GoType::kUint32, path);
  std::string_view s = StringOf(value);
  auto number = [](std::string_view part, uint64_t max) {
    if (part.empty() || part.size() > 10) return false;
    uint64_t n = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    return n <= max;
  };
  size_t dot = s.find('.');
  bool ok = dot == std::string_view::npos
                ? number(s, 0xffffffffu)
                : number(s.substr(0, dot), 0xffff) && number(s.substr(dot + 1), 0xffff);
  return ok ? absl::OkStatus() : go.Error(path, "must be an AS number");
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

// projectcalico.org/v3 NodeSpec and NodeStatus.
enum NodeSpecField : size_t { kNodeBgp, kNodeAddresses, kNodeOrchRefs, kNodeWireguard };
constexpr std::array<GoField, 8> kNodeSpecFields = {{
    {"bgp", GoType::kObject},
    {"addresses", GoType::kObjectList},
    {"orchRefs", GoType::kObjectList},
    {"wireguard", GoType::kObject},
    {"ipv4VXLANTunnelAddr", GoType::kString},
    {"vxlanTunnelMACAddr", GoType::kString},
    {"ipv6VXLANTunnelAddr", GoType::kString},
    {"vxlanTunnelMACAddrV6", GoType::kString},
}};
constexpr std::array<GoField, 5> kNodeBgpFields = {{
    {"ipv4Address", GoType::kString},
    {"ipv6Address", GoType::kString},
    {"asNumber", GoType::kCustom},
    {"ipv4IPIPTunnelAddr", GoType::kString},
    {"routeReflectorClusterID", GoType::kString},
}};
constexpr std::array<GoField, 2> kNodeAddressFields = {{
    {"address", GoType::kString},
    {"type", GoType::kString},
}};
constexpr std::array<GoField, 2> kOrchRefFields = {{
    {"nodeName", GoType::kString},
    {"orchestrator", GoType::kString},
}};
constexpr std::array<GoField, 2> kWireguardFields = {{
    {"interfaceIPv4Address", GoType::kString},
    {"interfaceIPv6Address", GoType::kString},
}};
constexpr std::array<GoField, 4> kNodeStatusFields = {{
    {"wireguardPublicKey", GoType::kString},
    {"wireguardPublicKeyV6", GoType::kString},
    {"podCIDRs", GoType::kStringList},
    {"bgp", GoType::kObject},
}};
constexpr std::array<GoField, 6> kNodeBgpStatusFields = {{
    {"numberEstablishedV4", GoType::kInt},
    {"numberEstablishedV6", GoType::kInt},
    {"numberNotEstablishedV4", GoType::kInt},
    {"numberNotEstablishedV6", GoType::kInt},
    {"peersV4", GoType::kObjectList},
    {"peersV6", GoType::kObjectList},
}};

// Checks each element of an array of structs (null elements are zero structs in Go).
template <size_t N>
Status CheckStructList(const GoDecoder& go, Element list, const std::array<GoField, N>& fields,
                       const Path& path) {
  simdjson::dom::array array;
  if (list.get_array().get(array)) return absl::OkStatus();  // null
  size_t i = 0;
  for (Element e : array) {
    RETURN_IF_ERROR(go.Struct(e, fields, path.Element(i++),
                              [](size_t, Element, const Path&) { return absl::OkStatus(); }));
  }
  return absl::OkStatus();
}

constexpr auto kIgnore = [](size_t, Element, const Path&) { return absl::OkStatus(); };

StatusOr<NodeAddresses> DecodeNodeObject(Element doc) {
  constexpr std::string_view kContext = "node";
  GoDecoder go(kContext);
  ASSIGN_OR_RETURN(ResourceParts parts, WalkResource(go, doc));
  const Path root;
  if (parts.status) {
    RETURN_IF_ERROR(go.Struct(*parts.status, kNodeStatusFields, root.Field("status"),
                              [&](size_t field, Element value, const Path& path) {
                                if (field != 3) return absl::OkStatus();
                                return go.Struct(value, kNodeBgpStatusFields, path, kIgnore);
                              }));
  }
  NodeAddresses out;
  if (!parts.spec) return out;

  std::string_view bgp_address[2];  // v4, v6
  std::optional<Element> addresses;
  RETURN_IF_ERROR(go.Struct(*parts.spec, kNodeSpecFields, root.Field("spec"),
                            [&](size_t field, Element value, const Path& path) -> Status {
                              switch (field) {
                                case kNodeBgp:
                                  return go.Struct(
                                      value, kNodeBgpFields, path,
                                      [&](size_t bgp_field, Element v, const Path& p) -> Status {
                                        if (bgp_field <= 1) bgp_address[bgp_field] = StringOf(v);
                                        if (bgp_field == 2) return CheckAsNumber(go, v, p);
                                        return absl::OkStatus();
                                      });
                                case kNodeAddresses:
                                  addresses = value;
                                  return CheckStructList(go, value, kNodeAddressFields, path);
                                case kNodeOrchRefs:
                                  return CheckStructList(go, value, kOrchRefFields, path);
                                case kNodeWireguard:
                                  return go.Struct(value, kWireguardFields, path, kIgnore);
                                default:
                                  return absl::OkStatus();
                              }
                            }));

  for (net::Family family : {net::Family::kV4, net::Family::kV6}) {
    std::string_view text = bgp_address[family == net::Family::kV4 ? 0 : 1];
    if (text.empty()) continue;
    std::optional<net::IpAddress> addr = ParseAddressOrCidr(text);
    if (!addr || addr->family() != family) {
      return Invalid(kContext, std::string("spec.bgp.") +
                                   (family == net::Family::kV4 ? "ipv4Address " : "ipv6Address ") +
                                   Quote(text) + " is not an " +
                                   std::string(net::FamilyName(family)) + " address");
    }
    (family == net::Family::kV4 ? out.v4 : out.v6) = *addr;
  }

  simdjson::dom::array list;
  if (!addresses || addresses->get_array().get(list)) return out;
  // Felix's order: BGP address, then the first InternalIP, then the first ExternalIP.
  NodeAddresses internal, external;
  size_t i = 0;
  for (Element entry : list) {
    std::string field = "spec.addresses[" + std::to_string(i++) + "].address";
    std::string_view address, type;
    simdjson::dom::object members;
    if (entry.get_object().get(members)) continue;  // null: a zero NodeAddress
    for (simdjson::dom::key_value_pair kv : members) {
      if (GoNameFolds(kv.key, "address")) address = StringOf(kv.value);
      if (GoNameFolds(kv.key, "type")) type = StringOf(kv.value);
    }
    if (type == "InternalIP") {
      RETURN_IF_ERROR(TakeNodeAddress(address, field, internal));
    } else if (type == "ExternalIP") {
      RETURN_IF_ERROR(TakeNodeAddress(address, field, external));
    }
  }
  if (!out.v4) out.v4 = internal.v4 ? internal.v4 : external.v4;
  if (!out.v6) out.v6 = internal.v6 ? internal.v6 : external.v6;
  return out;
}

// projectcalico.org/v3 IPPoolSpec (with the v1-era fields it still declares).
enum PoolSpecField : size_t { kPoolCidr, kPoolDisabled, kPoolAllowedUses, kPoolIpip };
constexpr std::array<GoField, 12> kPoolSpecFields = {{
    {"cidr", GoType::kString},
    {"disabled", GoType::kBool},
    {"allowedUses", GoType::kStringList},
    {"ipip", GoType::kObject},
    {"vxlanMode", GoType::kString},
    {"ipipMode", GoType::kString},
    {"natOutgoing", GoType::kBool},
    {"disableBGPExport", GoType::kBool},
    {"blockSize", GoType::kInt},
    {"nodeSelector", GoType::kString},
    {"assignmentMode", GoType::kString},
    {"nat-outgoing", GoType::kBool},
}};
constexpr std::array<GoField, 2> kPoolIpipFields = {{
    {"enabled", GoType::kBool},
    {"mode", GoType::kString},
}};

StatusOr<IpPool> DecodeIpPoolObject(std::string_view key, Element doc) {
  constexpr std::string_view kContext = "ippool";
  GoDecoder go(kContext);
  ASSIGN_OR_RETURN(ResourceParts parts, WalkResource(go, doc));
  IpPool pool;
  if (!parts.name.empty()) {
    if (!IsValidNodeName(parts.name)) {
      return Invalid(kContext, "metadata.name " + Quote(parts.name) + " is not a valid name");
    }
    pool.name = std::string(parts.name);
  } else {
    std::optional<std::string> from_key = ParsePoolKey(key);
    if (!from_key) return Invalid(kContext, "no metadata.name and the key names no pool");
    pool.name = std::move(*from_key);
  }
  if (!parts.spec || parts.spec->type() == ElementType::NULL_VALUE) {
    return Invalid(kContext, "spec is missing");
  }
  std::string_view cidr;
  std::optional<Element> uses;
  RETURN_IF_ERROR(go.Struct(*parts.spec, kPoolSpecFields, Path().Field("spec"),
                            [&](size_t field, Element value, const Path& path) -> Status {
                              switch (field) {
                                case kPoolCidr:
                                  cidr = StringOf(value);
                                  break;
                                case kPoolDisabled:
                                  SetBool(value, pool.disabled);
                                  break;
                                case kPoolAllowedUses:
                                  uses = value;
                                  break;
                                case kPoolIpip:
                                  return go.Struct(value, kPoolIpipFields, path, kIgnore);
                                default:
                                  break;
                              }
                              return absl::OkStatus();
                            }));
  // Calico masks a pool CIDR with host bits set; so do we.
  if (cidr.empty()) return Invalid(kContext, "spec.cidr is missing");
  std::optional<net::IpPrefix> parsed = ParseCidrText(cidr);
  if (!parsed) return Invalid(kContext, "spec.cidr " + Quote(cidr) + " is not a CIDR");
  pool.cidr = *parsed;
  // Absent or empty allowedUses defaults to [Workload, Tunnel] (Calico's defaulting). A
  // Tunnel-only pool still holds node tunnel addresses that are routed exactly like workload
  // addresses, so it counts as a workload pool; only pools without either (LoadBalancer-only)
  // are excluded from cluster routing, as Felix does.
  simdjson::dom::array list;
  if (uses && !uses->get_array().get(list)) {
    bool workload = list.size() == 0;
    for (Element use : list) {
      std::string_view s = StringOf(use);
      if (s == "Workload" || s == "Tunnel") workload = true;
    }
    pool.workload = workload;
  }
  return pool;
}

// projectcalico.org/v3 ClusterInformationSpec.
constexpr std::array<GoField, 5> kClusterInformationSpecFields = {{
    {"datastoreReady", GoType::kBool},
    {"clusterGUID", GoType::kString},
    {"clusterType", GoType::kString},
    {"calicoVersion", GoType::kString},
    {"variant", GoType::kString},
}};

StatusOr<bool> DecodeDatastoreReadyObject(Element doc) {
  GoDecoder go("clusterinformation");
  ASSIGN_OR_RETURN(ResourceParts parts, WalkResource(go, doc));
  bool ready = true;  // *bool: absent or null means Calico's default, ready
  if (!parts.spec) return ready;
  RETURN_IF_ERROR(go.Struct(*parts.spec, kClusterInformationSpecFields, Path().Field("spec"),
                            [&](size_t field, Element value, const Path&) {
                              if (field == 0) SetBool(value, ready);
                              return absl::OkStatus();
                            }));
  return ready;
}

}  // namespace

std::optional<std::string> ParseNodeKey(std::string_view key) {
  return ParseResourceKey(key, kNodePrefix);
}

StatusOr<NodeAddresses> DecodeNode(std::string_view value) {
  ASSIGN_OR_RETURN(Element doc, GateJson(ValueKind::kResource, value, "node"));
  return DecodeNodeObject(doc);
}

std::optional<std::string> ParsePoolKey(std::string_view key) {
  return ParseResourceKey(key, kPoolPrefix);
}

StatusOr<IpPool> DecodeIpPool(std::string_view key, std::string_view value) {
  ASSIGN_OR_RETURN(Element doc, GateJson(ValueKind::kResource, value, "ippool"));
  return DecodeIpPoolObject(key, doc);
}

StatusOr<bool> DecodeDatastoreReady(std::string_view value) {
  ASSIGN_OR_RETURN(Element doc, GateJson(ValueKind::kResource, value, "clusterinformation"));
  return DecodeDatastoreReadyObject(doc);
}

std::optional<ValueKind> ValueKindOfKey(std::string_view key) {
  std::string slashed = key.starts_with('/') ? std::string(key) : "/" + std::string(key);
  std::string_view k = slashed;
  if (k.starts_with(kBlockPrefix)) return ValueKind::kBlock;
  if (k.starts_with(kPeerPrefix)) return ValueKind::kPeerAddress;
  if (k.starts_with("/calico/resources/")) return ValueKind::kResource;
  return std::nullopt;
}

Status CheckValue(ValueKind kind, std::string_view value) {
  if (kind == ValueKind::kPeerAddress) return GatePeerText(value, "peer address").status();
  return GateJson(kind, value, KindName(kind)).status();
}

}  // namespace vcra::calico
