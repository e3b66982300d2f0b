#include "net/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vcra::net {

std::string_view FamilyName(Family f) { return f == Family::kV4 ? "ipv4" : "ipv6"; }

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress a;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_.data(), &n, 4);
  return a;
}

IpAddress IpAddress::FromBytes(Family family, const uint8_t* bytes) {
  IpAddress a;
  a.family_ = family;
  std::memcpy(a.bytes_.data(), bytes, family == Family::kV4 ? 4 : 16);
  return a;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton stops at a NUL, so "10.0.0.1\0junk" would otherwise parse.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos)
    return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = Family::kV4;
  } else {
    if (inet_pton(AF_INET6, buf, a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = Family::kV6;
  }
  return a;
}

uint32_t IpAddress::v4_host_order() const {
  uint32_t n;
  std::memcpy(&n, bytes_.data(), 4);
  return ntohl(n);
}

bool IpAddress::IsUnspecified() const {
  for (int i = 0; i < bit_length() / 8; ++i)
    if (bytes_[i] != 0) return false;
  return true;
}

bool IpAddress::IsLinkLocal() const {
  if (is_v4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpAddress::Masked(int prefix_len) const {
  IpAddress out = *this;
  int nbytes = bit_length() / 8;
  for (int i = 0; i < nbytes; ++i) {
    int bits_here = prefix_len - i * 8;
    if (bits_here >= 8) continue;
    if (bits_here <= 0) {
      out.bytes_[i] = 0;
    } else {
      out.bytes_[i] &= static_cast<uint8_t>(0xFF << (8 - bits_here));
    }
  }
  for (int i = nbytes; i < 16; ++i) out.bytes_[i] = 0;
  return out;
}

IpAddress IpAddress::Plus(uint64_t offset) const {
  IpAddress out = *this;
  int i = bit_length() / 8 - 1;
  unsigned carry = 0;
  while (i >= 0 && (offset != 0 || carry != 0)) {
    unsigned sum = out.bytes_[i] + static_cast<unsigned>(offset & 0xFF) + carry;
    out.bytes_[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    offset >>= 8;
    --i;
  }
  return out;
}

IpPrefix::IpPrefix(IpAddress address, int len)
    : address_(address.Masked(len)),
      len_(static_cast<uint8_t>(std::clamp(len, 0, address.bit_length()))) {}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text, bool strict) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddress::Parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  std::string_view len_text = text.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3) return std::nullopt;
  int len = 0;
  for (char c : len_text) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + (c - '0');
  }
  if (len > addr->bit_length()) return std::nullopt;
  IpPrefix p(*addr, len);
  if (strict && p.address() != *addr) return std::nullopt;
  return p;
}

IpPrefix IpPrefix::InterfaceAddress(IpAddress a, int len) {
  IpPrefix p(a, len);
  p.address_ = a;
  return p;
}

std::optional<IpPrefix> IpPrefix::ParseInterfaceAddress(std::string_view text) {
  auto masked = Parse(text);
  if (!masked) return std::nullopt;
  return InterfaceAddress(*IpAddress::Parse(text.substr(0, text.find('/'))), masked->len());
}

bool IpPrefix::Contains(const IpAddress& a) const {
  return a.family() == family() && a.Masked(len_) == address_;
}

bool IpPrefix::Contains(const IpPrefix& p) const {
  return p.family() == family() && p.len() >= len_ && p.address().Masked(len_) == address_;
}

std::string IpPrefix::ToString() const { return address_.ToString() + "/" + std::to_string(len_); }

std::string Route::ToString() const { return dst.ToString() + " via " + gateway.ToString(); }

}  // namespace vcra::net

size_t std::hash<vcra::net::IpAddress>::operator()(const vcra::net::IpAddress& a) const noexcept {
  // FNV-1a over family and bytes: cheap and good enough for hash maps of prefixes.
  uint64_t h = 1469598103934665603ull ^ static_cast<uint8_t>(a.family());
  for (uint8_t b : a.bytes()) h = (h ^ b) * 1099511628211ull;
  return static_cast<size_t>(h);
}

size_t std::hash<vcra::net::IpPrefix>::operator()(const vcra::net::IpPrefix& p) const noexcept {
  return std::hash<vcra::net::IpAddress>()(p.address()) * 31 + static_cast<size_t>(p.len());
}
