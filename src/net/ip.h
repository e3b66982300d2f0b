// Value types for addresses, prefixes and routes, both families. No I/O.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vcra::net {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

std::string_view FamilyName(Family f);

class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0
  static IpAddress V4(uint32_t host_order);
  static IpAddress FromBytes(Family family, const uint8_t* bytes);
  // Accepts dotted quad or RFC 4291 text; rejects anything else (no zone ids, no whitespace).
  static std::optional<IpAddress> Parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  int bit_length() const { return is_v4() ? 32 : 128; }
  // Network byte order; 4 bytes used for IPv4.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  uint32_t v4_host_order() const;
  bool IsUnspecified() const;
  // 169.254.0.0/16 or fe80::/10: never a next hop for another host.
  bool IsLinkLocal() const;

  // Canonical text (RFC 5952 for IPv6).
  std::string ToString() const;
  IpAddress Masked(int prefix_len) const;
  // Adds `offset` to the address (wraps silently within the family).
  IpAddress Plus(uint64_t offset) const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

class IpPrefix {
 public:
  IpPrefix() = default;
  // REQUIRES: 0 <= len <= address.bit_length(). Host bits are cleared.
  IpPrefix(IpAddress address, int len);
  // "10.0.0.0/8", "fd00::/64"; host bits set is an error when `strict`.
  static std::optional<IpPrefix> Parse(std::string_view text, bool strict = false);
  static IpPrefix Host(IpAddress a) { return IpPrefix(a, a.bit_length()); }
  // An interface address such as 10.99.0.1/24: the host bits are KEPT, so address() is the
  // interface's own address and len() its subnet. Only for interface addresses (UplinkConfig);
  // routes and blocks are always canonical.
  static IpPrefix InterfaceAddress(IpAddress a, int len);
  static std::optional<IpPrefix> ParseInterfaceAddress(std::string_view text);

  const IpAddress& address() const { return address_; }
  int len() const { return len_; }
  Family family() const { return address_.family(); }
  bool Contains(const IpAddress& a) const;
  bool Contains(const IpPrefix& p) const;
  std::string ToString() const;

  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;

 private:
  IpAddress address_;
  // One byte: with the 17-byte address a prefix is 18 bytes, not 24, in every table of routes
  // and blocks (at 100k routes the desired table alone is 2 MiB smaller).
  uint8_t len_ = 0;
};

// A route the agent wants in (or found in) a dataplane: destination via a peer's next hop on the
// uplink. The uplink itself is dataplane configuration, not part of the route.
struct Route {
  IpPrefix dst;
  IpAddress gateway;

  std::string ToString() const;
  friend bool operator==(const Route&, const Route&) = default;
};

// What every table of routes and blocks is made of: a byte here is 100 KiB per table at 100k.
static_assert(sizeof(IpPrefix) == 18 && sizeof(Route) == 35);

}  // namespace vcra::net

template <>
struct std::hash<vcra::net::IpAddress> {
  size_t operator()(const vcra::net::IpAddress& a) const noexcept;
};
template <>
struct std::hash<vcra::net::IpPrefix> {
  size_t operator()(const vcra::net::IpPrefix& p) const noexcept;
};
