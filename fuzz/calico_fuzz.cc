// libFuzzer entry point for every Calico decoder (src/calico/model.h). The input is split at the
// first '\n' into an etcd key and a value (no '\n': the whole input is both), and each decoder
// gets them. Besides "no crash, no sanitizer report", it checks properties a decoder must keep for
// any input: failures are InvalidArgument errors, whatever a decoder accepts passed the value gate
// for its kind, parsed keys re-encode to the same key, decoded blocks are internally consistent
// and survive EncodeBlock -> DecodeBlock unchanged.
//
// Built as a fuzzer by fuzz/CMakeLists.txt (clang only) and, with gcc or clang, linked into
// calico_fuzz_smoke_test, which drives it with a bounded deterministic mutation stream.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "calico/model.h"

namespace {

using vcra::calico::AffinityType;
using vcra::calico::IpamBlock;
using vcra::net::Family;

[[noreturn]] void Fail(const char* what, std::string_view key) {
  std::fprintf(stderr, "calico_fuzz: property violated: %s (key %zu bytes)\n", what, key.size());
  std::abort();
}

#define FUZZ_CHECK(cond, key)        \
  do {                               \
    if (!(cond)) Fail(#cond, (key)); \
  } while (0)

// A decoder may only fail with InvalidArgument: anything else means an internal error escaped.
template <typename T>
bool CheckResult(const vcra::StatusOr<T>& r, std::string_view key) {
  FUZZ_CHECK(r.ok() || r.status().code() == absl::StatusCode::kInvalidArgument, key);
  return r.ok();
}

std::string WithLeadingSlash(std::string_view key) {
  return key.starts_with('/') ? std::string(key) : "/" + std::string(key);
}

void CheckBlock(std::string_view key, std::string_view value) {
  vcra::StatusOr<vcra::net::IpPrefix> cidr = vcra::calico::ParseBlockKey(key);
  if (CheckResult(cidr, key)) {
    FUZZ_CHECK(vcra::calico::BlockKey(*cidr) == WithLeadingSlash(key), key);
  }
  vcra::StatusOr<IpamBlock> block = vcra::calico::DecodeBlock(key, value);
  if (!CheckResult(block, key)) return;
  FUZZ_CHECK(cidr.ok() && block->cidr == *cidr, key);
  FUZZ_CHECK(value.size() <= vcra::calico::kMaxValueBytes, key);
  if (block->affinity_type == AffinityType::kNone) {
    FUZZ_CHECK(block->affinity_name.empty(), key);
  } else {
    FUZZ_CHECK(vcra::calico::IsValidNodeName(block->affinity_name), key);
  }
  const int host_bits = block->cidr.address().bit_length() - block->cidr.len();
  for (size_t i = 0; i < block->allocations.size(); ++i) {
    const vcra::calico::BlockAllocation& a = block->allocations[i];
    FUZZ_CHECK(i == 0 || block->allocations[i - 1].ordinal < a.ordinal, key);
    FUZZ_CHECK(host_bits >= 32 || a.ordinal < (uint64_t{1} << host_bits), key);
    FUZZ_CHECK(block->cidr.Contains(a.ip), key);
    FUZZ_CHECK(a.ip == block->cidr.address().Plus(a.ordinal), key);
    // Only allocations a route can come from are kept: a valid owner other than the affinity.
    FUZZ_CHECK(vcra::calico::IsValidNodeName(a.node), key);
    FUZZ_CHECK(a.node != block->affinity_name, key);
  }
  // Whatever a decoder accepts passed the gate for its kind.
  FUZZ_CHECK(vcra::calico::CheckValue(vcra::calico::ValueKind::kBlock, value).ok(), key);
  // Blocks wider than EncodeBlock's limit cannot be produced by Calico; skip the round trip there.
  if (!block->allocations.empty() && block->allocations.back().ordinal >= (1u << 16)) return;
  vcra::StatusOr<IpamBlock> again =
      vcra::calico::DecodeBlock(key, vcra::calico::EncodeBlock(*block));
  FUZZ_CHECK(again.ok(), key);
  FUZZ_CHECK(*again == *block, key);
}

void CheckPeer(std::string_view key, std::string_view value) {
  std::optional<vcra::calico::PeerKey> peer = vcra::calico::ParsePeerKey(key);
  if (peer) {
    FUZZ_CHECK(vcra::calico::IsValidNodeName(peer->host), key);
    FUZZ_CHECK(vcra::calico::PeerKeyFor(peer->host, peer->family) == WithLeadingSlash(key), key);
  }
  for (Family family : {Family::kV4, Family::kV6}) {
    vcra::StatusOr<vcra::net::IpAddress> addr = vcra::calico::DecodePeerAddress(value, family);
    if (CheckResult(addr, key)) {
      FUZZ_CHECK(addr->family() == family, key);
      FUZZ_CHECK(value.size() <= vcra::calico::kMaxPeerValueBytes, key);
      FUZZ_CHECK(vcra::calico::CheckValue(vcra::calico::ValueKind::kPeerAddress, value).ok(), key);
    }
  }
}

void CheckResources(std::string_view key, std::string_view value) {
  if (std::optional<std::string> node = vcra::calico::ParseNodeKey(key)) {
    FUZZ_CHECK(vcra::calico::IsValidNodeName(*node), key);
  }
  vcra::StatusOr<vcra::calico::NodeAddresses> node = vcra::calico::DecodeNode(value);
  if (CheckResult(node, key)) {
    FUZZ_CHECK(!node->v4 || node->v4->family() == Family::kV4, key);
    FUZZ_CHECK(!node->v6 || node->v6->family() == Family::kV6, key);
  }
  std::optional<std::string> pool_name = vcra::calico::ParsePoolKey(key);
  if (pool_name) FUZZ_CHECK(vcra::calico::IsValidNodeName(*pool_name), key);
  vcra::StatusOr<vcra::calico::IpPool> pool = vcra::calico::DecodeIpPool(key, value);
  if (CheckResult(pool, key)) FUZZ_CHECK(vcra::calico::IsValidNodeName(pool->name), key);
  if (CheckResult(vcra::calico::DecodeDatastoreReady(value), key)) {
    FUZZ_CHECK(value.size() <= vcra::calico::kMaxResourceValueBytes, key);
  }
  // The gate never accepts what a JSON parser would have to stop early on.
  vcra::Status gate = vcra::calico::CheckValue(vcra::calico::ValueKind::kResource, value);
  FUZZ_CHECK(gate.ok() || gate.code() == absl::StatusCode::kInvalidArgument, key);
  if (gate.ok()) FUZZ_CHECK(value.find('\0') == std::string_view::npos, key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view key = input.substr(0, newline);
  std::string_view value = newline == std::string_view::npos ? input : input.substr(newline + 1);
  (void)vcra::calico::IsValidNodeName(key);
  CheckBlock(key, value);
  CheckPeer(key, value);
  CheckResources(key, value);
  return 0;
}
