// Calico's data model as the agent reads it from etcd: key <-> CIDR codec, AllocationBlock JSON
// (every format Calico has written since 2016), the agent's peer-address keys, Node resources,
// IP pools and ClusterInformation. Pure functions, no I/O; every decoder treats its input as
// hostile and returns an error instead of throwing or crashing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/ip.h"

namespace vcra::calico {

inline constexpr std::string_view kBlockPrefix = "/calico/ipam/v2/assignment/";
inline constexpr std::string_view kPeerPrefix = "/vpp-calico/hosts/";
inline constexpr std::string_view kNodePrefix = "/calico/resources/v3/projectcalico.org/nodes/";
inline constexpr std::string_view kPoolPrefix = "/calico/resources/v3/projectcalico.org/ippools/";
inline constexpr std::string_view kClusterInformationKey =
    "/calico/resources/v3/projectcalico.org/clusterinformations/default";

// Every value the agent reads passes one gate before a decoder looks inside it: a size limit for
// its kind, then for JSON kinds valid UTF-8, no control bytes (raw bytes below 0x20 other than
// JSON whitespace), exactly one JSON value with nothing after it, nested at most 64 deep, whose
// root is an object; for peer addresses a short line of printable ASCII with at most one trailing
// newline. Each Decode* function below runs the gate itself.
enum class ValueKind : uint8_t {
  kBlock,        // an AllocationBlock (a /20 IPv4 block with attributes runs to hundreds of KB)
  kPeerAddress,  // an address under kPeerPrefix ("ffff:...:255.255.255.255/128\n" is 51 bytes)
  kResource,     // a Node, IPPool or ClusterInformation (Kubernetes caps annotations at 256 KiB)
};
inline constexpr size_t kMaxBlockValueBytes = 2 * 1024 * 1024;
inline constexpr size_t kMaxPeerValueBytes = 64;
inline constexpr size_t kMaxResourceValueBytes = 512 * 1024;
// The largest value any kind accepts (etcd's own request limit is 1.5 MiB).
inline constexpr size_t kMaxValueBytes = kMaxBlockValueBytes;

// The kind of value stored under `key`, or nullopt for a key the agent does not read.
std::optional<ValueKind> ValueKindOfKey(std::string_view key);
// The gate alone; InvalidArgument naming the first problem.
Status CheckValue(ValueKind kind, std::string_view value);

// Node names as Kubernetes allows them (DNS-1123 subdomain, plus '_' seen in the wild), at most
// 253 bytes. Lower case only: Calico lowercases host names. Anything else in a key position that
// names a node is hostile.
bool IsValidNodeName(std::string_view name);

// "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26" -> 10.244.7.0/26. The family directory
// must match the address; host bits must be clear; IPv6 is RFC 5952 text with the first '/'
// written as '-'. The key must be exactly what BlockKey() writes (the leading '/' is optional), so
// that no two keys can name the same CIDR.
StatusOr<net::IpPrefix> ParseBlockKey(std::string_view key);

// A prefix to watch for blocks, as given on a command line ("calico/ipam/v2/assignment/ipv4/block"
// in the 2016 prototype's form): returned with a leading and a trailing '/'. It must lie under
// kBlockPrefix; anything wider would also match Node, pool and other keys as blocks.
StatusOr<std::string> NormalizeBlockPrefix(std::string_view prefix);
std::string BlockKey(const net::IpPrefix& cidr);

enum class AffinityType : uint8_t {
  kNone,     // "affinity": null (released while IPs were still in use) or absent
  kHost,     // "host:<node>", or the 2016 "hostAffinity": "<node>"
  kVirtual,  // "virtual:<name>" (e.g. load-balancer); never a node
};

struct BlockAllocation {
  uint32_t ordinal = 0;
  net::IpAddress ip;
  std::string node;  // attributes[..].secondary.node; empty when the allocation names no node
  friend bool operator==(const BlockAllocation&, const BlockAllocation&) = default;
};

struct IpamBlock {
  net::IpPrefix cidr;
  AffinityType affinity_type = AffinityType::kNone;
  std::string affinity_name;  // the node for kHost, the name for kVirtual
  bool deleted = false;
  uint64_t sequence_number = 0;
  // Allocations owned by a node other than affinity_name, ascending by ordinal (see DecodeBlock).
  std::vector<BlockAllocation> allocations;

  // The node the block is affine to, or empty for kNone/kVirtual.
  std::string_view AffineHost() const {
    return affinity_type == AffinityType::kHost ? std::string_view(affinity_name) : "";
  }
  friend bool operator==(const IpamBlock&, const IpamBlock&) = default;
};

// Decodes an AllocationBlock value stored under `key`, as libcalico-go's model.AllocationBlock:
// every declared field (cidr, affinity, hostAffinity, affinity_claim_time, strictAffinity,
// allocations, unallocated, attributes[].handle_id/secondary/alternate, sequenceNumber,
// sequenceNumberForAllocation, deleted) must have the type Go declares (null is accepted as Go
// accepts it; names match case-insensitively as in Go; unknown fields are ignored). Errors
// besides the gate's and those types: `cidr` missing or disagreeing with the key, allocations
// longer than the block, an allocation index negative or past attributes[], an `affinity` that is
// not "host:<valid node>" / "virtual:<valid name>", `attributes` named twice (Go would merge the
// two lists element by element; a repeated scalar keeps its last value, as in Go). An allocation
// whose secondary.node is missing, empty or not a valid node name has no owner.
//
// Compact result: `allocations` holds only the allocations a route can come from, i.e. those
// owned by a node other than affinity_name (for kNone: every owned allocation).
StatusOr<IpamBlock> DecodeBlock(std::string_view key, std::string_view value);
// The inverse, in the current Calico format (used by tests, the demo and the benchmark).
// REQUIRES: every ordinal lies in the block and is below 2^16.
std::string EncodeBlock(const IpamBlock& block);

// "/vpp-calico/hosts/<host>/peerip/ipv4/1" (or ipv6).
struct PeerKey {
  std::string host;
  net::Family family = net::Family::kV4;
  friend bool operator==(const PeerKey&, const PeerKey&) = default;
};
std::optional<PeerKey> ParsePeerKey(std::string_view key);
std::string PeerKeyFor(std::string_view host, net::Family family);
// A plain address string, optionally followed by one newline (what `etcdctl put` from a shell
// may leave); no other padding. The family must match the key. "addr/len" is accepted and yields
// addr; the unspecified address is refused.
StatusOr<net::IpAddress> DecodePeerAddress(std::string_view value, net::Family family);

// Calico Node resource: the next hops Calico itself would use (spec.bgp.ipv4Address/ipv6Address in
// CIDR form, else the first InternalIP, then ExternalIP of that family in spec.addresses).
struct NodeAddresses {
  std::optional<net::IpAddress> v4;
  std::optional<net::IpAddress> v6;
  friend bool operator==(const NodeAddresses&, const NodeAddresses&) = default;
};
// "/calico/resources/v3/projectcalico.org/nodes/<name>" -> name.
std::optional<std::string> ParseNodeKey(std::string_view key);
StatusOr<NodeAddresses> DecodeNode(std::string_view value);

// Calico IPPool resource.
struct IpPool {
  std::string name;
  net::IpPrefix cidr;
  bool disabled = false;
  // False for pools whose spec.allowedUses has neither "Workload" nor "Tunnel" (e.g.
  // LoadBalancer-only); tunnel addresses are routed like workload addresses.
  bool workload = true;
  friend bool operator==(const IpPool&, const IpPool&) = default;
};
std::optional<std::string> ParsePoolKey(std::string_view key);
// name is metadata.name, else the key's pool name; spec.cidr is masked like Calico does.
StatusOr<IpPool> DecodeIpPool(std::string_view key, std::string_view value);

// ClusterInformation spec.datastoreReady; absent means ready (Calico's default is true).
StatusOr<bool> DecodeDatastoreReady(std::string_view value);

}  // namespace vcra::calico
