#include "calico/model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "calico/testdata.h"

namespace vcra::calico {
namespace {

using net::Family;
using net::IpAddress;
using net::IpPrefix;

constexpr char kV4Key[] = "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26";
constexpr char kV6Key[] = "/calico/ipam/v2/assignment/ipv6/block/fd00:10:244:1::-122";

IpAddress Ip(std::string_view text) {
  auto a = IpAddress::Parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress());
}

IpPrefix Cidr(std::string_view text) {
  auto p = IpPrefix::Parse(text, /*strict=*/true);
  EXPECT_TRUE(p) << text;
  return p.value_or(IpPrefix());
}

void ExpectInvalid(const Status& s, std::string_view needle) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(std::string(s.message()).find(needle), std::string::npos)
      << "message \"" << s.message() << "\" lacks \"" << needle << "\"";
}

BlockAllocation Alloc(uint32_t ordinal, std::string_view ip, std::string node) {
  return BlockAllocation{ordinal, Ip(ip), std::move(node)};
}

// A minimal current-format block around `body` fields, for focused field tests.
std::string V4Block(std::string_view extra) {
  std::string s = R"({"cidr":"10.244.7.0/26","affinity":"host:node-a")";
  if (!extra.empty()) s += "," + std::string(extra);
  return s + "}";
}

constexpr char kNodeJsonForGate[] = R"({"spec":{"bgp":{"ipv4Address":"192.0.2.11/24"}}})";

// ---------------------------------------------------------------------------------------------
// Node names

TEST(NodeNameTest, AcceptsKubernetesNames) {
  for (const char* ok :
       {"node-a", "a", "0", "node-a.example.com", "ip-10-0-0-1.ec2.internal", "my_host", "x1.y2"}) {
    EXPECT_TRUE(IsValidNodeName(ok)) << ok;
  }
  EXPECT_TRUE(IsValidNodeName(std::string(253, 'a')));
}

TEST(NodeNameTest, RejectsHostileNames) {
  for (const char* bad : {"", ".", "..", "a..b", ".a", "a.", "-a", "a-", "_a", "a/b", "Node-A",
                          "a b", "a\tb", "node\n", "nöde", "a:b", "*", "../etc"}) {
    EXPECT_FALSE(IsValidNodeName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidNodeName(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidNodeName(std::string(254, 'a')));
  EXPECT_FALSE(IsValidNodeName(std::string(300, 'a')));
}

// ---------------------------------------------------------------------------------------------
// Block key codec

TEST(BlockKeyTest, RoundTripsBothFamilies) {
  for (const char* cidr :
       {"10.244.7.0/26", "10.244.0.0/20", "192.0.2.7/32", "0.0.0.0/0", "fd00:10:244:1::/122",
        "2001:db8::/64", "2001:db8:0:1:1:1:1:0/127", "::/0", "fd00::1/128"}) {
    IpPrefix p = Cidr(cidr);
    std::string key = BlockKey(p);
    auto parsed = ParseBlockKey(key);
    ASSERT_TRUE(parsed.ok()) << key << ": " << parsed.status();
    EXPECT_EQ(*parsed, p) << key;
  }
  EXPECT_EQ(BlockKey(Cidr("10.244.7.0/26")), kV4Key);
  EXPECT_EQ(BlockKey(Cidr("fd00:10:244:1::/122")), kV6Key);
  // RFC 5952: a single zero group is not compressed.
  EXPECT_EQ(BlockKey(Cidr("2001:db8:0:1:1:1:1:0/127")),
            "/calico/ipam/v2/assignment/ipv6/block/2001:db8:0:1:1:1:1:0-127");
}

TEST(BlockKeyTest, AcceptsKeyWithoutLeadingSlash) {
  auto p = ParseBlockKey(std::string_view(kV4Key).substr(1));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, Cidr("10.244.7.0/26"));
  auto p6 = ParseBlockKey(std::string_view(kV6Key).substr(1));
  ASSERT_TRUE(p6.ok()) << p6.status();
  EXPECT_EQ(*p6, Cidr("fd00:10:244:1::/122"));
}

TEST(BlockKeyTest, RejectsMalformedKeys) {
  const std::string base = "/calico/ipam/v2/assignment/";
  const std::vector<std::string> bad = {
      "",
      "/",
      "//calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26",
      "/calico/ipam/v2/assignment/ipv4/block/",
      "/calico/ipam/v2/assignment/ipv4/block",
      "/calico/ipam/v1/assignment/ipv4/block/10.244.7.0-26",
      "/calico/ipam/v2/host/node-a/ipv4/block/10.244.7.0-26",
      base + "ipv4/block/10.244.7.0/26",              // '/' instead of '-'
      base + "ipv4/block/10.244.7.0-26/",             // trailing '/'
      base + "ipv4/block/10.244.7.0-26/extra",        // extra segment
      base + "ipv4//block/10.244.7.0-26",             // extra '/'
      base + "ipv4/block/../block/10.244.7.0-26",     // path games
      base + "ipv4/block/..",                         //
      base + "ipv4/block/10.244.7.0",                 // no length
      base + "ipv4/block/10.244.7.0-",                // empty length
      base + "ipv4/block/10.244.7.0-33",              // length too long
      base + "ipv4/block/10.244.7.0--26",             //
      base + "ipv4/block/10.244.7.0-+26",             //
      base + "ipv4/block/10.244.7.0-026",             // non-canonical length
      base + "ipv4/block/10.244.7.1-26",              // host bits set
      base + "ipv4/block/10.244.007.0-26",            // non-canonical address
      base + "ipv4/block/ 10.244.7.0-26",             //
      base + "ipv4/block/10.244.7.0-26 ",             //
      base + "ipv4/block/10.244.7.0-26\n",            //
      base + "ipv4/block/fd00:10:244:1::-122",        // v6 under ipv4
      base + "ipv6/block/10.244.7.0-26",              // v4 under ipv6
      base + "ipv5/block/10.244.7.0-26",              //
      base + "IPV4/block/10.244.7.0-26",              //
      base + "ipv6/block/FD00:10:244:1::-122",        // upper case hex
      base + "ipv6/block/fd00:10:244:1:0:0:0:0-122",  // not RFC 5952 compressed
      base + "ipv6/block/fd00:0010:244:1::-122",      // leading zeros
      base + "ipv6/block/fd00:10:244:1::1-122",       // host bits set
      base + "ipv6/block/fd00:10:244:1::-129",        //
      base + "ipv6/block/fe80::%eth0-64",             // zone id
      base + "ipv4/block/garbage",                    //
      base + "ipv4/block/-",                          //
      std::string(kV4Key).substr(0, 30),              // truncated
      std::string(kV4Key) + std::string(1, '\0'),     // embedded NUL
      base + "ipv4/block/10.244.7.0" + std::string(1, '\0') + "-26",
  };
  for (const std::string& key : bad) {
    auto p = ParseBlockKey(key);
    EXPECT_FALSE(p.ok()) << "accepted \"" << key << "\" as " << p->ToString();
    if (!p.ok()) {
      EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  ExpectInvalid(ParseBlockKey(base + "ipv4/block/10.244.7.1-26").status(), "host bits");
  ExpectInvalid(ParseBlockKey(base + "ipv6/block/10.244.7.0-26").status(), "family");
  ExpectInvalid(ParseBlockKey(base + "ipv6/block/fd00:0010:244:1::-122").status(), "canonical");
  ExpectInvalid(ParseBlockKey(base + "ipv6/block/FD00:10:244:1::-122").status(), "canonical");
}

TEST(BlockKeyTest, ErrorMessagesEscapeHostileBytes) {
  std::string key =
      std::string(kBlockPrefix) + "ipv4/block/\x01\xff\x1b[31m" + std::string(500, 'x');
  auto p = ParseBlockKey(key);
  ASSERT_FALSE(p.ok());
  for (char c : p.status().message()) {
    unsigned char u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "raw byte " << int{u} << " in message";
  }
  EXPECT_LT(p.status().message().size(), 300u);
}

// ---------------------------------------------------------------------------------------------
// Block fixtures: one per format Calico has written.

TEST(BlockFixtureTest, CurrentV332) {
  auto b = DecodeBlock(kV4Key, ReadTestdata("current-v3.32.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->cidr, Cidr("10.244.7.0/26"));
  EXPECT_EQ(b->affinity_type, AffinityType::kHost);
  EXPECT_EQ(b->affinity_name, "node-a");
  EXPECT_EQ(b->AffineHost(), "node-a");
  EXPECT_FALSE(b->deleted);
  EXPECT_EQ(b->sequence_number, 1772359200000000007ull);
  // Only what a route can come from: ordinals 0, 1 and 3 are node-a's own.
  std::vector<BlockAllocation> want = {Alloc(2, "10.244.7.2", "node-b")};
  EXPECT_EQ(b->allocations, want);
}

TEST(BlockFixtureTest, Python2016) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.244.3.0-26",
                       ReadTestdata("python-2016.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->affinity_type, AffinityType::kHost);
  EXPECT_EQ(b->affinity_name, "node-py");
  EXPECT_EQ(b->sequence_number, 0u);
  // Python-era attributes never named a node, so no allocation can route.
  EXPECT_TRUE(b->allocations.empty());
}

TEST(BlockFixtureTest, Python2016PrimaryHandleAsInTheOldDocs) {
  auto b = DecodeBlock(kV4Key, R"({"cidr": "10.244.7.0/26", "affinity": "host:node-py",
      "strict_affinity": true, "allocations": [null, 0],
      "attributes": [{"primary": "handle-1", "secondary": {"node": "node-py"}}],
      "unallocated": [0]})");
  ASSERT_TRUE(b.ok()) << b.status();
  // The one allocation is the affine host's own.
  EXPECT_TRUE(b->allocations.empty());
  b = DecodeBlock(kV4Key, R"({"cidr": "10.244.7.0/26", "affinity": "host:node-py",
      "allocations": [null, 0], "attributes": [{"primary": "h", "secondary": {"node": "node-q"}}]})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(1, "10.244.7.1", "node-q")});
}

TEST(BlockFixtureTest, LibcalicoGo2016HostAffinity) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.244.4.0-26",
                       ReadTestdata("libcalico-go-2016-hostAffinity.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->affinity_type, AffinityType::kHost);
  EXPECT_EQ(b->affinity_name, "node-go");
  EXPECT_TRUE(b->allocations.empty());  // no attribute names a node
}

TEST(BlockFixtureTest, HostAffinityFallbackRules) {
  // Nov 2016 compat: affinity null and hostAffinity set -> host:<hostAffinity>.
  auto b = DecodeBlock(kV4Key, V4Block(R"("affinity":null,"hostAffinity":"node-x")"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->AffineHost(), "node-x");
  // `affinity` wins when both are set.
  b = DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/26","affinity":"host:node-a",
                               "hostAffinity":"node-x"})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->AffineHost(), "node-a");
  // Empty hostAffinity is no owner (Go's omitempty never writes it).
  b = DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/26","hostAffinity":""})");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->affinity_type, AffinityType::kNone);
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/26","hostAffinity":7})").status(),
                "hostAffinity");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/26","hostAffinity":"a/b"})").status(),
                "hostAffinity");
}

TEST(BlockFixtureTest, AffinityNull) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.244.9.0-26",
                       ReadTestdata("affinity-null.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->affinity_type, AffinityType::kNone);
  EXPECT_EQ(b->affinity_name, "");
  EXPECT_EQ(b->AffineHost(), "");
  EXPECT_EQ(b->sequence_number, 1772438400000000042ull);
  // The Windows-reserved entry carries only a note: no owner.
  std::vector<BlockAllocation> want = {Alloc(9, "10.244.9.9", "node-b"),
                                       Alloc(10, "10.244.9.10", "node-c")};
  EXPECT_EQ(b->allocations, want);
}

TEST(BlockFixtureTest, VirtualLoadBalancer) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.96.100.0-26",
                       ReadTestdata("virtual-lb.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->affinity_type, AffinityType::kVirtual);
  EXPECT_EQ(b->affinity_name, "load-balancer");
  EXPECT_EQ(b->AffineHost(), "");       // never a node
  EXPECT_TRUE(b->allocations.empty());  // its allocations name no node
}

TEST(BlockFixtureTest, DeletedTombstone) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.244.12.0-26",
                       ReadTestdata("deleted.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->deleted);
  EXPECT_EQ(b->AffineHost(), "node-d");
  EXPECT_EQ(b->sequence_number, 1772600000000000099ull);
  EXPECT_TRUE(b->allocations.empty());
}

TEST(BlockFixtureTest, Ipv6Block) {
  auto b = DecodeBlock(kV6Key, ReadTestdata("ipv6-block.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->cidr, Cidr("fd00:10:244:1::/122"));
  EXPECT_EQ(b->AffineHost(), "node-a");
  std::vector<BlockAllocation> want = {Alloc(7, "fd00:10:244:1::7", "node-c")};
  EXPECT_EQ(b->allocations, want);
}

TEST(BlockFixtureTest, UnknownFieldsV334) {
  auto b = DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/10.244.20.0-26",
                       ReadTestdata("unknown-fields-v3.34.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->AffineHost(), "node-e");
  EXPECT_EQ(b->sequence_number, 18446744073709551615ull);
  // secondary.node is the active owner (the migration target), not alternateOwnerAttrs; an IP in
  // releasedAt cool-down is still allocated.
  std::vector<BlockAllocation> want = {Alloc(0, "10.244.20.0", "node-f")};
  EXPECT_EQ(b->allocations, want);
}

TEST(BlockFixtureTest, EveryFixtureSurvivesEncodeDecode) {
  const std::vector<std::pair<std::string, std::string>> fixtures = {
      {"current-v3.32.json", kV4Key},
      {"python-2016.json", "/calico/ipam/v2/assignment/ipv4/block/10.244.3.0-26"},
      {"libcalico-go-2016-hostAffinity.json",
       "/calico/ipam/v2/assignment/ipv4/block/10.244.4.0-26"},
      {"affinity-null.json", "/calico/ipam/v2/assignment/ipv4/block/10.244.9.0-26"},
      {"virtual-lb.json", "/calico/ipam/v2/assignment/ipv4/block/10.96.100.0-26"},
      {"deleted.json", "/calico/ipam/v2/assignment/ipv4/block/10.244.12.0-26"},
      {"ipv6-block.json", kV6Key},
      {"unknown-fields-v3.34.json", "/calico/ipam/v2/assignment/ipv4/block/10.244.20.0-26"},
  };
  for (const auto& [file, key] : fixtures) {
    auto b = DecodeBlock(key, ReadTestdata(file));
    ASSERT_TRUE(b.ok()) << file << ": " << b.status();
    auto again = DecodeBlock(key, EncodeBlock(*b));
    ASSERT_TRUE(again.ok()) << file << ": " << again.status();
    EXPECT_EQ(*again, *b) << file;
  }
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers: full uint64, never through double.

TEST(BlockSequenceTest, KeepsAll64Bits) {
  for (uint64_t seq : {uint64_t{0}, uint64_t{1772359200000000007ull},
                       uint64_t{9007199254740993ull},  // 2^53 + 1: not a double
                       uint64_t{9223372036854775808ull}, uint64_t{18446744073709551615ull}}) {
    auto b = DecodeBlock(kV4Key, V4Block("\"sequenceNumber\":" + std::to_string(seq)));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->sequence_number, seq);
    std::string encoded = EncodeBlock(*b);
    EXPECT_NE(encoded.find("\"sequenceNumber\":" + std::to_string(seq)), std::string::npos)
        << encoded;
    auto again = DecodeBlock(kV4Key, encoded);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->sequence_number, seq);
  }
}

TEST(BlockSequenceTest, RejectsWhatIsNotAUint64) {
  for (const char* bad :
       {"-1", "-9223372036854775808", "1.5", "1.0", "1e3", "\"7\"", "true", "[]", "{}"}) {
    ExpectInvalid(DecodeBlock(kV4Key, V4Block(std::string("\"sequenceNumber\":") + bad)).status(),
                  "sequenceNumber");
  }
  // Integers beyond 64 bits are refused by the parser itself, wherever they are.
  for (const char* bad : {"18446744073709551616", "99999999999999999999999999"}) {
    ExpectInvalid(DecodeBlock(kV4Key, V4Block(std::string("\"sequenceNumber\":") + bad)).status(),
                  "number");
  }
  auto b = DecodeBlock(kV4Key, V4Block("\"sequenceNumber\":null"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->sequence_number, 0u);
}

TEST(BlockSequenceTest, SequenceNumberForAllocationMayBeNullOrAbsent) {
  for (const char* extra : {"\"sequenceNumberForAllocation\":null", "",
                            "\"sequenceNumberForAllocation\":{\"0\":18446744073709551615}"}) {
    EXPECT_TRUE(DecodeBlock(kV4Key, V4Block(extra)).ok()) << extra;
  }
}

// ---------------------------------------------------------------------------------------------
// EncodeBlock

TEST(EncodeBlockTest, WritesTheCurrentCalicoFormat) {
  IpamBlock b;
  b.cidr = Cidr("10.244.7.0/26");
  b.affinity_type = AffinityType::kHost;
  b.affinity_name = "node-a";
  b.sequence_number = 1772359200000000007ull;
  b.allocations = {Alloc(0, "10.244.7.0", "node-a"), Alloc(2, "10.244.7.2", "node-b"),
                   Alloc(3, "10.244.7.3", "node-a"), Alloc(63, "10.244.7.63", "")};
  std::string json = EncodeBlock(b);
  EXPECT_EQ(
      json.rfind(R"({"cidr":"10.244.7.0/26","affinity":"host:node-a","allocations":[0,null,1,0,)",
                 0),
      0u)
      << json;
  EXPECT_NE(json.find(R"("unallocated":[1,4,5,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("sequenceNumber":1772359200000000007,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("deleted":false)"), std::string::npos) << json;
  auto again = DecodeBlock(kV4Key, json);
  ASSERT_TRUE(again.ok()) << again.status();
  // Decoding keeps only the allocation a route can come from.
  IpamBlock routable = b;
  routable.allocations = {Alloc(2, "10.244.7.2", "node-b")};
  EXPECT_EQ(*again, routable);
}

TEST(EncodeBlockTest, RoundTripsEveryAffinityAndBothFamilies) {
  for (AffinityType type : {AffinityType::kNone, AffinityType::kHost, AffinityType::kVirtual}) {
    IpamBlock b;
    b.cidr = Cidr("fd00:10:244:1::/122");
    b.affinity_type = type;
    b.affinity_name = type == AffinityType::kNone ? "" : "load-balancer";
    b.deleted = type == AffinityType::kVirtual;
    b.sequence_number = 42;
    b.allocations = {Alloc(5, "fd00:10:244:1::5", "node-z"),
                     Alloc(63, "fd00:10:244:1::3f", "node-y")};
    auto again = DecodeBlock(kV6Key, EncodeBlock(b));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, b);
  }
  IpamBlock host_route;  // a /32 block: one address
  host_route.cidr = Cidr("192.0.2.7/32");
  host_route.allocations = {Alloc(0, "192.0.2.7", "node-a")};
  auto again = DecodeBlock(BlockKey(host_route.cidr), EncodeBlock(host_route));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, host_route);
}

TEST(EncodeBlockTest, NeverThrowsOnInvalidUtf8Names) {
  IpamBlock b;
  b.cidr = Cidr("10.244.7.0/26");
  b.affinity_type = AffinityType::kHost;
  b.affinity_name = "bad\xff\xfe";
  b.allocations = {Alloc(1, "10.244.7.1", "n\xc3")};
  std::string json = EncodeBlock(b);
  // Not a valid node name, so the block is refused, cleanly.
  EXPECT_FALSE(DecodeBlock(kV4Key, json).ok());
}

// ---------------------------------------------------------------------------------------------
// Hostile block values

TEST(BlockHostileTest, RejectsWrongKey) {
  ExpectInvalid(DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/../x", "{}").status(),
                "block key");
  ExpectInvalid(DecodeBlock("", V4Block("")).status(), "block key");
}

TEST(BlockHostileTest, RejectsCidrMismatchOrMissing) {
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.8.0/26"})").status(), "does not match");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/27"})").status(), "does not match");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"fd00:10:244:1::/122"})").status(),
                "does not match");
  ExpectInvalid(DecodeBlock(kV6Key, R"({"cidr":"10.244.7.0/26"})").status(), "does not match");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"affinity":"host:node-a"})").status(), "cidr is missing");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":null})").status(), "cidr is missing");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":167511808})").status(), "cidr must be a string");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0"})").status(), "not a CIDR");
  ExpectInvalid(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.0/26\u0000x"})").status(), "not a CIDR");
  // Host bits in the value's cidr are masked, as Go's net.ParseCIDR does.
  EXPECT_TRUE(DecodeBlock(kV4Key, R"({"cidr":"10.244.7.5/26"})").ok());
}

TEST(BlockHostileTest, RejectsBadAffinity) {
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":"host:")")).status(), "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":"virtual:")")).status(), "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":"node-a")")).status(), "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":"cluster:x")")).status(), "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":"host:../../etc")")).status(),
                "affinity");
  ExpectInvalid(
      DecodeBlock(kV4Key, V4Block(R"("affinity":"host:)" + std::string(300, 'a') + "\"")).status(),
      "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":7)")).status(), "affinity");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("affinity":{"host":"a"})")).status(), "affinity");
  // The later "affinity" wins, as in Go; here it is a valid one.
  EXPECT_TRUE(DecodeBlock(kV4Key, V4Block(R"("affinity":"host:node-b")")).ok());
}

TEST(BlockHostileTest, RejectsWrongTypesEverywhere) {
  struct Case {
    std::string extra;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"("deleted":"false")", "deleted"},
      {R"("deleted":0)", "deleted"},
      {R"("allocations":{})", "allocations"},
      {R"("allocations":"0,1")", "allocations"},
      {R"("allocations":[true])", "allocations[0]"},
      {R"("allocations":["0"],"attributes":[{}])", "allocations[0]"},
      {R"("allocations":[null,1.0],"attributes":[{},{}])", "allocations[1]"},
      {R"("allocations":[[0]],"attributes":[{}])", "allocations[0]"},
      {R"("allocations":[-1],"attributes":[{}])", "allocations[0]"},
      {R"("allocations":[0])", "attributes has 0"},
      {R"("allocations":[null,null,1],"attributes":[{}])", "allocations[2] = 1"},
      {R"("allocations":[18446744073709551615],"attributes":[{}])", "allocations[0]"},
      {R"("allocations":[18446744073709551616],"attributes":[{}])", "number"},
      {R"("allocations":[-9223372036854775808],"attributes":[{}])", "allocations[0]"},
      {R"("allocations":[4294967296],"attributes":[{}])", "allocations[0]"},
      {R"("attributes":{})", "attributes"},
      {R"("attributes":[7])", "attributes[0]"},
      {R"("attributes":[{},"x"])", "attributes[1]"},
      {R"("attributes":[{"secondary":"node-a"}])", "attributes[0].secondary"},
      {R"("attributes":[{"secondary":["node-a"]}])", "attributes[0].secondary"},
  };
  for (const Case& c : cases) {
    auto b = DecodeBlock(kV4Key, V4Block(c.extra));
    EXPECT_FALSE(b.ok()) << c.extra;
    if (!b.ok()) ExpectInvalid(b.status(), c.field);
  }
}

TEST(BlockHostileTest, ToleratesOddOwnerAttributes) {
  // A node string that is not a valid name, or a missing/null node, means "no owner", not a
  // broken block: those allocations route nowhere, and the block's other routes stay.
  auto b = DecodeBlock(kV4Key,
                       V4Block(R"("allocations":[0,1,2,3,4,5,6],"attributes":[
      {"secondary":{"node":null}}, {"secondary":{"node":"../../x"}}, {"secondary":{"node":""}},
      {"secondary":null}, null, {"secondary":{"node":")" +
                               std::string(300, 'n') + R"("}}, {"secondary":{"node":"node-b"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(6, "10.244.7.6", "node-b")});
  // Null for allocations/attributes is "absent"; a -0 index is 0.
  EXPECT_TRUE(DecodeBlock(kV4Key, V4Block(R"("allocations":null,"attributes":null)")).ok());
  b = DecodeBlock(kV4Key,
                  V4Block(R"("allocations":[-0],"attributes":[{"secondary":{"node":"x"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(0, "10.244.7.0", "x")});
}

TEST(BlockHostileTest, RejectsAllocationsLongerThanTheBlock) {
  std::string allocs = "[";
  for (int i = 0; i < 65; ++i) allocs += i ? ",null" : "null";
  allocs += "]";
  ExpectInvalid(DecodeBlock(kV4Key, V4Block("\"allocations\":" + allocs)).status(),
                "more than the block's 64");
  // /32 block: one entry at most.
  ExpectInvalid(DecodeBlock("/calico/ipam/v2/assignment/ipv4/block/192.0.2.7-32",
                            R"({"cidr":"192.0.2.7/32","allocations":[null,null]})")
                    .status(),
                "allocations");
  // A huge array (within the value limit) for a /26 is refused without building allocations.
  std::string huge = "{\"cidr\":\"10.244.7.0/26\",\"attributes\":[{}],\"allocations\":[0";
  for (int i = 0; i < 400000; ++i) huge += ",0";
  huge += "]}";
  ASSERT_LT(huge.size(), kMaxValueBytes);
  ExpectInvalid(DecodeBlock(kV4Key, huge).status(), "allocations");
}

TEST(BlockHostileTest, AcceptsAShortAllocationsArray) {
  auto b = DecodeBlock(
      kV4Key, V4Block(R"("allocations":[null,0],"attributes":[{"secondary":{"node":"b"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(1, "10.244.7.1", "b")});
}

TEST(BlockHostileTest, RejectsBrokenJson) {
  const std::string good = ReadTestdata("current-v3.32.json");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, good.size() / 2, good.size() - 3}) {
    ExpectInvalid(DecodeBlock(kV4Key, good.substr(0, cut)).status(), "JSON");
  }
  for (const char* bad : {"", " ", "null", "[]", "\"x\"", "7", "{", "{\"cidr\":}", "{}{}",
                          "{\"cidr\":\"10.244.7.0/26\"} x", "{'cidr':'10.244.7.0/26'}",
                          "{\"cidr\":\"10.244.7.0/26\",}"}) {
    auto b = DecodeBlock(kV4Key, bad);
    EXPECT_FALSE(b.ok()) << bad;
    if (!b.ok()) {
      EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(BlockHostileTest, RejectsNonUtf8) {
  ExpectInvalid(DecodeBlock(kV4Key, "{\"cidr\":\"10.244.7.0/26\",\"x\":\"\xff\xfe\"}").status(),
                "UTF-8");
  ExpectInvalid(
      DecodeBlock(kV4Key, "{\"cidr\":\"10.244.7.0/26\",\"affinity\":\"host:\xc3\x28\"}").status(),
      "UTF-8");
  ExpectInvalid(DecodeBlock(kV4Key, "\xef\xbb\xbf\xff{}").status(), "UTF-8");
  // A lone surrogate escape is not a character either.
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("x":"\ud800")")).status(), "JSON");
}

TEST(BlockHostileTest, RejectsDeepNestingWithoutRecursing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExpectInvalid(DecodeBlock(kV4Key, deep).status(), "nested");
  std::string deep_field = "{\"cidr\":\"10.244.7.0/26\",\"x\":";
  for (int i = 0; i < 100000; ++i) deep_field += "{\"a\":";
  ExpectInvalid(DecodeBlock(kV4Key, deep_field).status(), "JSON");  // unclosed, too
  deep_field += "1" + std::string(100001, '}');
  ExpectInvalid(DecodeBlock(kV4Key, deep_field).status(), "nested");
  // Brackets inside strings do not count; escaped quotes do not end strings.
  std::string in_string = V4Block("\"x\":\"\\\"" + std::string(1000, '[') + "\"");
  EXPECT_TRUE(DecodeBlock(kV4Key, in_string).ok());
  // 64 levels are fine, 65 are not.
  auto nested = [](int n) {
    return V4Block("\"x\":" + std::string(n - 1, '[') + std::string(n - 1, ']'));
  };
  EXPECT_TRUE(DecodeBlock(kV4Key, nested(64)).ok());
  ExpectInvalid(DecodeBlock(kV4Key, nested(65)).status(), "nested");
}

TEST(BlockHostileTest, RejectsOversizedValueBeforeParsing) {
  std::string big = V4Block("\"pad\":\"" + std::string(kMaxValueBytes, 'x') + "\"");
  ExpectInvalid(DecodeBlock(kV4Key, big).status(), "limit");
  // Not even JSON: the size check comes first.
  ExpectInvalid(DecodeBlock(kV4Key, std::string(kMaxValueBytes + 1, '[')).status(), "limit");
}

// ---------------------------------------------------------------------------------------------
// Peer keys and values

TEST(PeerKeyTest, RoundTrips) {
  for (Family f : {Family::kV4, Family::kV6}) {
    std::string key = PeerKeyFor("node-a.example", f);
    auto p = ParsePeerKey(key);
    ASSERT_TRUE(p) << key;
    EXPECT_EQ(*p, (PeerKey{"node-a.example", f}));
    EXPECT_EQ(ParsePeerKey(key.substr(1)), p);
  }
  EXPECT_EQ(PeerKeyFor("node-a", Family::kV4), "/vpp-calico/hosts/node-a/peerip/ipv4/1");
  EXPECT_EQ(PeerKeyFor("node-a", Family::kV6), "/vpp-calico/hosts/node-a/peerip/ipv6/1");
}

TEST(PeerKeyTest, RejectsEverythingElse) {
  for (const std::string& bad :
       std::vector<std::string>{"",
                                "/",
                                "/vpp-calico/hosts/",
                                "/vpp-calico/hosts/node-a",
                                "/vpp-calico/hosts/node-a/peerip",
                                "/vpp-calico/hosts/node-a/peerip/ipv4",
                                "/vpp-calico/hosts/node-a/peerip/ipv4/2",
                                "/vpp-calico/hosts/node-a/peerip/ipv4/1/",
                                "/vpp-calico/hosts/node-a/peerip/ipv4/1/x",
                                "/vpp-calico/hosts/node-a/peerip/ipv5/1",
                                "/vpp-calico/hosts/node-a//peerip/ipv4/1",
                                "/vpp-calico/hosts//peerip/ipv4/1",
                                "/vpp-calico/hosts/../peerip/ipv4/1",
                                "/vpp-calico/hosts/a/b/peerip/ipv4/1",
                                "/vpp-calico/hosts/Node-A/peerip/ipv4/1",
                                "//vpp-calico/hosts/node-a/peerip/ipv4/1",
                                "/vpp-calico/host/node-a/peerip/ipv4/1",
                                "/vpp-calico/hosts/node-a/peerip/ipv4/1\n",
                                "/vpp-calico/hosts/" + std::string(300, 'a') + "/peerip/ipv4/1",
                                "/vpp-calico/hosts/node\0a/peerip/ipv4/1"}) {
    EXPECT_FALSE(ParsePeerKey(bad)) << bad;
  }
  EXPECT_FALSE(ParsePeerKey(std::string("/vpp-calico/hosts/node\0a/peerip/ipv4/1", 39)));
}

TEST(PeerAddressTest, DecodesPlainAddresses) {
  EXPECT_EQ(DecodePeerAddress("192.0.2.11", Family::kV4).value(), Ip("192.0.2.11"));
  EXPECT_EQ(DecodePeerAddress("192.0.2.11\n", Family::kV4).value(), Ip("192.0.2.11"));
  EXPECT_EQ(DecodePeerAddress("2001:db8::11", Family::kV6).value(), Ip("2001:db8::11"));
  // CIDR form: the address is used, not the network.
  EXPECT_EQ(DecodePeerAddress("192.0.2.11/24", Family::kV4).value(), Ip("192.0.2.11"));
  EXPECT_EQ(DecodePeerAddress("2001:db8::11/64\n", Family::kV6).value(), Ip("2001:db8::11"));
}

TEST(PeerAddressTest, RejectsGarbage) {
  for (const std::string& bad : std::vector<std::string>{
           "", " ", "\n", "192.0.2", "192.0.2.256", "node-a", "192.0.2.11/33", "192.0.2.11/",
           "192.0.2.11/x", "192.0.2.11 192.0.2.12", "\"192.0.2.11\"", "0.0.0.0", "fe80::1%eth0"}) {
    EXPECT_FALSE(DecodePeerAddress(bad, Family::kV4).ok()) << bad;
  }
  EXPECT_FALSE(DecodePeerAddress(std::string("192.0.2.11\0junk", 15), Family::kV4).ok());
  EXPECT_FALSE(DecodePeerAddress(std::string(kMaxValueBytes + 10, ' '), Family::kV4).ok());
  ExpectInvalid(DecodePeerAddress("2001:db8::11", Family::kV4).status(), "ipv4");
  ExpectInvalid(DecodePeerAddress("192.0.2.11", Family::kV6).status(), "ipv6");
  ExpectInvalid(DecodePeerAddress("::", Family::kV6).status(), "unspecified");
}

// Issue 9: a good address padded to 2 MiB with spaces was trimmed, accepted, and replaced the
// host's good next hop. Only one trailing newline is tolerated now; the size limit is a peer's.
TEST(PeerAddressTest, RefusesPaddingGames) {
  std::string padded = "192.0.2.11" + std::string(2 * 1024 * 1024, ' ');
  ExpectInvalid(DecodePeerAddress(padded, Family::kV4).status(), "limit");
  ExpectInvalid(
      DecodePeerAddress(std::string(2 * 1024 * 1024, ' ') + "192.0.2.11", Family::kV4).status(),
      "limit");
  for (const std::string& bad : std::vector<std::string>{
           " 192.0.2.11", "192.0.2.11 ", "\t192.0.2.11", "192.0.2.11\r\n", "192.0.2.11\n\n",
           "192.0.2.11\v", "\n192.0.2.11", std::string("192.0.2.11\0", 11), "192.0.2.11\xc2\xa0"}) {
    ExpectInvalid(DecodePeerAddress(bad, Family::kV4).status(), "peer address");
  }
  // Exactly at the limit is still judged on its content; one byte over is refused unread.
  ExpectInvalid(DecodePeerAddress(std::string(kMaxPeerValueBytes, '1'), Family::kV4).status(),
                "not an IP address");
  ExpectInvalid(DecodePeerAddress(std::string(kMaxPeerValueBytes + 1, '1'), Family::kV4).status(),
                "limit");
  // The longest real value fits.
  EXPECT_TRUE(
      DecodePeerAddress("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128\n", Family::kV6).ok());
}

// ---------------------------------------------------------------------------------------------
// The gate every value passes, whatever its key

TEST(ValueGateTest, KindsOfKeys) {
  EXPECT_EQ(ValueKindOfKey(kV4Key), ValueKind::kBlock);
  EXPECT_EQ(ValueKindOfKey("calico/ipam/v2/assignment/ipv6/block/x"), ValueKind::kBlock);
  EXPECT_EQ(ValueKindOfKey(PeerKeyFor("node-a", Family::kV4)), ValueKind::kPeerAddress);
  EXPECT_EQ(ValueKindOfKey("/calico/resources/v3/projectcalico.org/nodes/a"), ValueKind::kResource);
  EXPECT_EQ(ValueKindOfKey(kClusterInformationKey), ValueKind::kResource);
  EXPECT_EQ(ValueKindOfKey("/registry/pods/x"), std::nullopt);
}

TEST(ValueGateTest, SizeLimitPerKind) {
  auto padded = [](size_t size) {
    std::string v = R"({"cidr":"10.244.7.0/26","pad":")";
    v += std::string(size - v.size() - 2, 'x');
    return v + "\"}";
  };
  EXPECT_TRUE(CheckValue(ValueKind::kBlock, padded(kMaxBlockValueBytes)).ok());
  ExpectInvalid(CheckValue(ValueKind::kBlock, padded(kMaxBlockValueBytes + 1)), "limit");
  EXPECT_TRUE(CheckValue(ValueKind::kResource, padded(kMaxResourceValueBytes)).ok());
  ExpectInvalid(CheckValue(ValueKind::kResource, padded(kMaxResourceValueBytes + 1)), "limit");
  // A Node, pool or ClusterInformation the size of a block is refused by every resource decoder.
  std::string big_node = padded(kMaxResourceValueBytes + 1);
  ExpectInvalid(DecodeNode(big_node).status(), "limit");
  ExpectInvalid(DecodeIpPool("/calico/resources/v3/projectcalico.org/ippools/p", big_node).status(),
                "limit");
  ExpectInvalid(DecodeDatastoreReady(big_node).status(), "limit");
}

// Issue 9: `{...}\0...` was accepted because the parser stopped at the NUL.
TEST(ValueGateTest, RefusesTrailingDataAndNulAfterTheValue) {
  const std::string good = ReadTestdata("current-v3.32.json");
  ASSERT_TRUE(DecodeBlock(kV4Key, good).ok());
  for (const std::string& tail :
       {std::string("\0", 1), std::string("\0garbage", 8), std::string("\0{\"cidr\":1}", 12),
        std::string(" {}"), std::string("x"), std::string("\n\"x\""), std::string("]"),
        std::string("\x1b[0m")}) {
    auto b = DecodeBlock(kV4Key, good + tail);
    EXPECT_FALSE(b.ok()) << testing::PrintToString(tail);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  }
  ExpectInvalid(DecodeBlock(kV4Key, good + std::string("\0", 1)).status(), "control byte");
  ExpectInvalid(DecodeBlock(kV4Key, good + " x").status(), "after the JSON value");
  // Trailing JSON whitespace is fine, as in Go.
  EXPECT_TRUE(DecodeBlock(kV4Key, good + " \r\n\t").ok());
  // The same gate guards every JSON kind.
  ExpectInvalid(DecodeNode(std::string(kNodeJsonForGate) + std::string("\0x", 2)).status(),
                "control byte");
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":{}} {})").status(), "after the JSON value");
  ExpectInvalid(
      DecodeIpPool("/calico/resources/v3/projectcalico.org/ippools/p",
                   std::string(R"({"spec":{"cidr":"10.244.0.0/16"}})") + std::string("\0", 1))
          .status(),
      "control byte");
}

TEST(ValueGateTest, RefusesControlBytesAnywhere) {
  for (char c : {'\0', '\x01', '\x08', '\x0b', '\x0c', '\x1f'}) {
    std::string in_string = V4Block(std::string("\"x\":\"a") + c + "b\"");
    ExpectInvalid(DecodeBlock(kV4Key, in_string).status(), "control byte");
    std::string between = V4Block(std::string("\"x\":") + c + "1");
    ExpectInvalid(DecodeBlock(kV4Key, between).status(), "control byte");
  }
  // Raw tab/LF inside a string are not JSON either (they must be escaped).
  ExpectInvalid(DecodeBlock(kV4Key, V4Block("\"x\":\"a\tb\"")).status(), "JSON");
  // Escaped control characters are ordinary string content.
  EXPECT_TRUE(DecodeBlock(kV4Key, V4Block(R"("x":"a\u0000b\n")")).ok());
}

// ---------------------------------------------------------------------------------------------
// Go's encoding/json rules for the fields Calico's AllocationBlock declares

// Issue 9: secondary is map[string]string; Calico cannot decode a number there, neither do we.
// Calico's own data passes every check: each value of a v3.32 cluster's etcd that the agent
// reads decodes with its decoder.
TEST(ValueGateTest, AcceptsEveryValueOfARealCluster) {
  std::istringstream lines(ReadTestdata("calico-v3.32-cluster.etcd"));
  std::string line;
  int decoded = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    std::string key = line.substr(0, space), value = line.substr(space + 1);
    std::optional<ValueKind> kind = ValueKindOfKey(key);
    if (!kind) continue;
    EXPECT_TRUE(CheckValue(*kind, value).ok()) << key << ": " << CheckValue(*kind, value);
    if (key.starts_with(kBlockPrefix) && key.find("/block/") != std::string::npos) {
      auto b = DecodeBlock(key, value);
      EXPECT_TRUE(b.ok()) << key << ": " << b.status();
      ++decoded;
    } else if (ParseNodeKey(key)) {
      auto n = DecodeNode(value);
      EXPECT_TRUE(n.ok()) << key << ": " << n.status();
      ++decoded;
    } else if (ParsePoolKey(key)) {
      auto p = DecodeIpPool(key, value);
      EXPECT_TRUE(p.ok()) << key << ": " << p.status();
      ++decoded;
    } else if (key == kClusterInformationKey) {
      auto r = DecodeDatastoreReady(value);
      EXPECT_TRUE(r.ok()) << key << ": " << r.status();
      ++decoded;
    }
  }
  EXPECT_EQ(decoded, 16);  // 8 blocks, 3 nodes, 4 pools, 1 ClusterInformation
}

TEST(BlockGoTypesTest, SecondaryValuesMustBeStrings) {
  for (const char* bad : {R"({"node":7})", R"({"node":"node-b","pod":7})", R"({"x":true})",
                          R"({"node":["node-b"]})", R"({"node":{"a":"b"}})", R"({"n":1.5})"}) {
    auto b = DecodeBlock(
        kV4Key,
        V4Block(std::string(R"("allocations":[0],"attributes":[{"secondary":)") + bad + "}]"));
    EXPECT_FALSE(b.ok()) << bad;
    ExpectInvalid(b.status(), "attributes[0].secondary");
  }
  // null values are Go's zero value: no owner.
  auto b = DecodeBlock(
      kV4Key,
      V4Block(R"("allocations":[0],"attributes":[{"secondary":{"node":null,"pod":null}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->allocations.empty());
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("attributes":[{"alternate":{"node":7}}])")).status(),
                "attributes[0].alternate.node");
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("attributes":[{"handle_id":7}])")).status(),
                "attributes[0].handle_id");
}

TEST(BlockGoTypesTest, EveryDeclaredFieldIsTypeChecked) {
  struct Case {
    const char* extra;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {R"("affinity":7)", "affinity"},
           {R"("affinity":["host:node-a"])", "affinity"},
           {R"("strictAffinity":"true")", "strictAffinity"},
           {R"("strictAffinity":1)", "strictAffinity"},
           {R"("affinity_claim_time":7)", "affinity_claim_time"},
           {R"("affinity_claim_time":"yesterday")", "affinity_claim_time"},
           {R"("affinity_claim_time":"2026-02-30T10:00:00Z")", "affinity_claim_time"},
           {R"("affinity_claim_time":"2026-03-01 10:00:00Z")", "affinity_claim_time"},
           {R"("unallocated":{})", "unallocated"},
           {R"("unallocated":[1,"2"])", "unallocated[1]"},
           {R"("unallocated":[1.5])", "unallocated[0]"},
           {R"("unallocated":[9223372036854775808])", "unallocated[0]"},
           {R"("sequenceNumberForAllocation":[])", "sequenceNumberForAllocation"},
           {R"("sequenceNumberForAllocation":{"0":"1"})", "sequenceNumberForAllocation.0"},
           {R"("sequenceNumberForAllocation":{"0":-1})", "sequenceNumberForAllocation.0"},
           {R"("sequenceNumberForAllocation":{"0":1.0})", "sequenceNumberForAllocation.0"},
           {R"("hostAffinity":true)", "hostAffinity"},
           {R"("deleted":null,"deleted":"yes")", "deleted"},
       }) {
    ExpectInvalid(DecodeBlock(kV4Key, V4Block(c.extra)).status(), c.field);
  }
  // What Go accepts is accepted: nulls everywhere, RFC 3339 times with fractions and offsets,
  // unknown fields of any type, null elements of []int and []struct.
  for (const char* ok : {
           R"("strictAffinity":null,"unallocated":null,"sequenceNumberForAllocation":null)",
           R"("affinity_claim_time":"2024-02-29T23:59:59.123456789+05:30")",
           R"("affinity_claim_time":null,"deleted":null,"sequenceNumber":null)",
           R"("unallocated":[null,3],"attributes":[null,{}])",
           R"("strict_affinity":"not a bool","releasedAt":7,"alternateOwnerAttrs":{"node":1})",
           R"("sequenceNumberForAllocation":{"0":null,"x":18446744073709551615})",
       }) {
    auto b = DecodeBlock(kV4Key, V4Block(ok));
    EXPECT_TRUE(b.ok()) << ok << ": " << b.status();
  }
}

TEST(BlockGoTypesTest, FieldNamesMatchCaseInsensitivelyAsInGo) {
  // "Deleted", "DELETED" and "deleted" all name the field; the last one wins.
  auto b = DecodeBlock(kV4Key, V4Block(R"("Deleted":true)"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->deleted);
  b = DecodeBlock(kV4Key, V4Block(R"("deleted":true,"DELETED":false)"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->deleted);
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("DeLeTeD":"yes")")).status(), "deleted");
  // Go folds KELVIN SIGN onto k and LONG S onto s: these name sequenceNumber and strictAffinity.
  ExpectInvalid(DecodeBlock(kV4Key, V4Block("\"\xc5\xbf"
                                            "equenceNumber\":-1"))
                    .status(),
                "sequenceNumber");
  b = DecodeBlock(kV4Key, V4Block("\"\xc5\xbf"
                                  "equenceNumber\":42"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->sequence_number, 42u);
  // A different name is an unknown field, whatever its type.
  EXPECT_TRUE(DecodeBlock(kV4Key, V4Block(R"("deleted_":"yes","sequence_number":"x")")).ok());
  // Map keys are not folded: "Node" in secondary is not the owner.
  b = DecodeBlock(kV4Key,
                  V4Block(R"("allocations":[0],"attributes":[{"secondary":{"Node":"node-b"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->allocations.empty());
  // Field names do fold inside attributes too.
  b = DecodeBlock(kV4Key,
                  V4Block(R"("allocations":[0],"Attributes":[{"SECONDARY":{"node":"node-b"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(0, "10.244.7.0", "node-b")});
}

TEST(BlockGoTypesTest, RepeatedFieldsFollowGoOrAreRefused) {
  // A repeated secondary merges into the same map, as Go decodes it; null resets it.
  auto b = DecodeBlock(kV4Key, V4Block(R"("allocations":[0,1],"attributes":[
      {"secondary":{"node":"node-b"},"secondary":{"pod":"p"}},
      {"secondary":{"node":"node-b"},"secondary":null}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(0, "10.244.7.0", "node-b")});
  // A repeated map key keeps its last value.
  b = DecodeBlock(kV4Key, V4Block(R"("allocations":[0],"attributes":[
      {"secondary":{"node":"node-b","node":"node-c"}}])"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->allocations, std::vector<BlockAllocation>{Alloc(0, "10.244.7.0", "node-c")});
  // Go merges a repeated list of structs element by element; refused instead.
  ExpectInvalid(DecodeBlock(kV4Key, V4Block(R"("attributes":[{}],"ATTRIBUTES":[{}])")).status(),
                "twice");
}

TEST(BlockGoTypesTest, AllocationIndexesAreGoInts) {
  for (const char* bad : {"1.0", "1e0", "\"0\"", "9223372036854775808", "true", "{}"}) {
    ExpectInvalid(
        DecodeBlock(kV4Key,
                    V4Block(std::string(R"("attributes":[{},{}],"allocations":[)") + bad + "]"))
            .status(),
        "allocations[0]");
  }
}

// ---------------------------------------------------------------------------------------------
// Node resources

TEST(NodeKeyTest, ParsesNames) {
  EXPECT_EQ(ParseNodeKey("/calico/resources/v3/projectcalico.org/nodes/node-a.example"),
            "node-a.example");
  EXPECT_EQ(ParseNodeKey("calico/resources/v3/projectcalico.org/nodes/node-a"), "node-a");
  for (const std::string& bad : std::vector<std::string>{
           "/calico/resources/v3/projectcalico.org/nodes/",
           "/calico/resources/v3/projectcalico.org/nodes/a/b",
           "/calico/resources/v3/projectcalico.org/nodes/..",
           "/calico/resources/v3/projectcalico.org/nodes/node-a/",
           "/calico/resources/v3/projectcalico.org/ippools/node-a",
           "/calico/resources/v3/projectcalico.org/nodes/" + std::string(300, 'a')}) {
    EXPECT_FALSE(ParseNodeKey(bad)) << bad;
  }
}

constexpr char kNodeJson[] = R"({"kind":"Node","apiVersion":"projectcalico.org/v3",
 "metadata":{"name":"node-a","uid":"6c1e0c9e-1111-4222-8333-944455556666",
             "creationTimestamp":"2026-03-01T09:00:00Z",
             "labels":{"kubernetes.io/hostname":"node-a"}},
 "spec":{"bgp":{"ipv4Address":"192.0.2.11/24","ipv6Address":"2001:db8::11/64",
                "ipv4IPIPTunnelAddr":"10.244.7.0"},
         "ipv4VXLANTunnelAddr":"10.244.7.1","vxlanTunnelMACAddr":"66:5c:1e:00:00:01",
         "addresses":[{"address":"192.0.2.11/24","type":"CalicoNodeIP"},
                      {"address":"192.0.2.99","type":"InternalIP"}],
         "orchRefs":[{"nodeName":"node-a","orchestrator":"k8s"}]},
 "status":{"wireguardPublicKey":"jlkVyQ7qR4ZQ6N0eWTn9Uo5VQw7bG1bGJj3w2xFZlHk="}})";

TEST(NodeTest, PrefersBgpAddresses) {
  auto n = DecodeNode(kNodeJson);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->v4, Ip("192.0.2.11"));
  EXPECT_EQ(n->v6, Ip("2001:db8::11"));
  // Bare addresses are accepted too.
  n = DecodeNode(R"({"spec":{"bgp":{"ipv4Address":"192.0.2.12"}}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->v4, Ip("192.0.2.12"));
  EXPECT_EQ(n->v6, std::nullopt);
}

TEST(NodeTest, FallsBackToInternalThenExternalPerFamily) {
  auto n = DecodeNode(R"({"spec":{"bgp":{"asNumber":64512},"addresses":[
      {"address":"198.51.100.7","type":"ExternalIP"},
      {"address":"2001:db8::7/64","type":"ExternalIP"},
      {"address":"192.0.2.30/24","type":"CalicoNodeIP"},
      {"address":"192.0.2.31","type":"InternalIP"},
      {"address":"192.0.2.32","type":"InternalIP"},
      {"address":"fd00::9","type":"Hostname"}]}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->v4, Ip("192.0.2.31"));
  EXPECT_EQ(n->v6, Ip("2001:db8::7"));
  // The BGP address of one family does not hide the other family's fallback.
  n = DecodeNode(R"({"spec":{"bgp":{"ipv4Address":"192.0.2.11/24"},
      "addresses":[{"address":"fd00::1","type":"InternalIP"},
                   {"address":"192.0.2.99","type":"InternalIP"}]}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->v4, Ip("192.0.2.11"));
  EXPECT_EQ(n->v6, Ip("fd00::1"));
}

TEST(NodeTest, MissingSpecIsNoAddresses) {
  for (const char* ok :
       {"{}", R"({"kind":"Node"})", R"({"spec":null})", R"({"spec":{}})",
        R"({"spec":{"bgp":null,"addresses":null}})", R"({"spec":{"bgp":{"ipv4Address":""}}})",
        R"({"spec":{"addresses":[{"type":"InternalIP"}]}})"}) {
    auto n = DecodeNode(ok);
    ASSERT_TRUE(n.ok()) << ok << ": " << n.status();
    EXPECT_EQ(*n, NodeAddresses{}) << ok;
  }
}

TEST(NodeTest, RejectsWrongTypes) {
  struct Case {
    const char* json;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"spec":[]})", "spec"},
           {R"({"spec":"x"})", "spec"},
           {R"({"spec":{"bgp":[]}})", "spec.bgp"},
           {R"({"spec":{"bgp":{"ipv4Address":7}}})", "ipv4Address"},
           {R"({"spec":{"bgp":{"ipv4Address":"2001:db8::1/64"}}})", "ipv4Address"},
           {R"({"spec":{"bgp":{"ipv6Address":"192.0.2.1/24"}}})", "ipv6Address"},
           {R"({"spec":{"bgp":{"ipv4Address":"node-a"}}})", "ipv4Address"},
           {R"({"spec":{"bgp":{"ipv4Address":"192.0.2.1/99"}}})", "ipv4Address"},
           {R"({"spec":{"addresses":{}}})", "spec.addresses"},
           {R"({"spec":{"addresses":[7]}})", "spec.addresses[0]"},
           {R"({"spec":{"addresses":[{"address":7,"type":"InternalIP"}]}})", "address"},
           {R"({"spec":{"addresses":[{"address":"1.2.3.4","type":1}]}})", "type"},
           {R"({"spec":{"addresses":[{"address":"bogus","type":"InternalIP"}]}})",
            "spec.addresses[0].address"},
       }) {
    auto n = DecodeNode(c.json);
    EXPECT_FALSE(n.ok()) << c.json;
    if (!n.ok()) ExpectInvalid(n.status(), c.field);
  }
  EXPECT_FALSE(DecodeNode("[]").ok());
  EXPECT_FALSE(DecodeNode("{\"spec\":").ok());
  EXPECT_FALSE(DecodeNode(std::string(100000, '{')).ok());
}

TEST(NodeTest, GoTypesOfEveryDeclaredField) {
  struct Case {
    const char* json;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"kind":7})", "kind"},
           {R"({"apiVersion":true})", "apiVersion"},
           {R"({"metadata":{"labels":{"a":1}}})", "metadata.labels.a"},
           {R"({"metadata":{"annotations":[]}})", "metadata.annotations"},
           {R"({"metadata":{"generation":1.5}})", "metadata.generation"},
           {R"({"metadata":{"creationTimestamp":"today"}})", "metadata.creationTimestamp"},
           {R"({"metadata":{"finalizers":[1]}})", "metadata.finalizers[0]"},
           {R"({"metadata":{"uid":7}})", "metadata.uid"},
           {R"({"spec":{"bgp":{"asNumber":-1}}})", "spec.bgp.asNumber"},
           {R"({"spec":{"bgp":{"asNumber":4294967296}}})", "spec.bgp.asNumber"},
           {R"({"spec":{"bgp":{"asNumber":"65000.70000"}}})", "spec.bgp.asNumber"},
           {R"({"spec":{"bgp":{"ipv4IPIPTunnelAddr":1}}})", "spec.bgp.ipv4IPIPTunnelAddr"},
           {R"({"spec":{"ipv4VXLANTunnelAddr":false}})", "spec.ipv4VXLANTunnelAddr"},
           {R"({"spec":{"orchRefs":[{"nodeName":1}]}})", "spec.orchRefs[0].nodeName"},
           {R"({"spec":{"wireguard":{"interfaceIPv4Address":[]}}})", "spec.wireguard"},
           {R"({"status":{"podCIDRs":"10.0.0.0/24"}})", "status.podCIDRs"},
           {R"({"status":{"bgp":{"numberEstablishedV4":"3"}}})", "status.bgp.numberEstablishedV4"},
           {R"({"spec":{"bgp":{}},"SPEC":{}})", "twice"},
       }) {
    auto n = DecodeNode(c.json);
    EXPECT_FALSE(n.ok()) << c.json;
    if (!n.ok()) ExpectInvalid(n.status(), c.field);
  }
  for (const char* ok :
       {R"({"spec":{"bgp":{"asNumber":64512}}})", R"({"spec":{"bgp":{"asNumber":"65000.100"}}})",
        R"({"metadata":null,"spec":null,"status":null})",
        R"({"spec":{"addresses":[null],"unknownField":[1,{"x":2}]}})"}) {
    auto n = DecodeNode(ok);
    EXPECT_TRUE(n.ok()) << ok << ": " << n.status();
  }
  // Field names fold as in Go.
  auto n = DecodeNode(R"({"SPEC":{"BGP":{"IPv4Address":"192.0.2.11/24"}}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->v4, Ip("192.0.2.11"));
}

// ---------------------------------------------------------------------------------------------
// IP pools

constexpr char kPoolKey[] = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";

TEST(IpPoolTest, DecodesACalicoPool) {
  EXPECT_EQ(ParsePoolKey(kPoolKey), "default-ipv4-ippool");
  auto p = DecodeIpPool(kPoolKey, R"js({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
      "metadata":{"name":"default-ipv4-ippool","uid":"0d6f5c1e-aaaa-4bbb-8ccc-0123456789ab"},
      "spec":{"cidr":"10.244.0.0/16","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,
              "blockSize":26,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}})js");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, (IpPool{"default-ipv4-ippool", Cidr("10.244.0.0/16"), false, true}));
}

TEST(IpPoolTest, DefaultsAndChoices) {
  // No metadata.name: the key names the pool; no allowedUses: Workload+Tunnel.
  auto p = DecodeIpPool(kPoolKey, R"({"spec":{"cidr":"fd00:10:244::/48","disabled":true}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, (IpPool{"default-ipv4-ippool", Cidr("fd00:10:244::/48"), true, true}));
  // metadata.name wins over the key.
  p = DecodeIpPool(kPoolKey, R"({"metadata":{"name":"other"},"spec":{"cidr":"10.0.0.0/8"}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "other");
  // Host bits are masked, as Calico does.
  p = DecodeIpPool(kPoolKey, R"({"spec":{"cidr":"10.244.1.5/16"}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->cidr, Cidr("10.244.0.0/16"));
  struct Uses {
    const char* json;
    bool workload;
  };
  for (const Uses& u : std::vector<Uses>{{"[\"LoadBalancer\"]", false},
                                         {"[\"Tunnel\"]", true},
                                         {"[\"Workload\"]", true},
                                         {"[\"LoadBalancer\",\"Workload\"]", true},
                                         {"[]", true},
                                         {"null", true}}) {
    p = DecodeIpPool(kPoolKey,
                     std::string(R"({"spec":{"cidr":"10.0.0.0/8","allowedUses":)") + u.json + "}}");
    ASSERT_TRUE(p.ok()) << u.json << ": " << p.status();
    EXPECT_EQ(p->workload, u.workload) << u.json;
  }
}

TEST(IpPoolTest, RejectsBadPools) {
  EXPECT_FALSE(ParsePoolKey("/calico/resources/v3/projectcalico.org/ippools/a/b"));
  EXPECT_FALSE(ParsePoolKey("/calico/resources/v3/projectcalico.org/ippools/"));
  EXPECT_FALSE(ParsePoolKey("/calico/resources/v3/projectcalico.org/nodes/a"));
  struct Case {
    std::string key;
    const char* json;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {kPoolKey, "{}", "spec is missing"},
           {kPoolKey, R"({"spec":[]})", "spec"},
           {kPoolKey, R"({"spec":{}})", "cidr is missing"},
           {kPoolKey, R"({"spec":{"cidr":7}})", "cidr"},
           {kPoolKey, R"({"spec":{"cidr":"10.0.0.0"}})", "cidr"},
           {kPoolKey, R"({"spec":{"cidr":"10.0.0.0/8","disabled":"true"}})", "disabled"},
           {kPoolKey, R"({"spec":{"cidr":"10.0.0.0/8","allowedUses":"Workload"}})", "allowedUses"},
           {kPoolKey, R"({"spec":{"cidr":"10.0.0.0/8","allowedUses":[1]}})", "allowedUses"},
           {kPoolKey, R"({"metadata":[],"spec":{"cidr":"10.0.0.0/8"}})", "metadata"},
           {kPoolKey, R"({"metadata":{"name":5},"spec":{"cidr":"10.0.0.0/8"}})", "name"},
           {kPoolKey, R"({"metadata":{"name":"a/b"},"spec":{"cidr":"10.0.0.0/8"}})", "name"},
           {"/elsewhere", R"({"spec":{"cidr":"10.0.0.0/8"}})", "pool"},
       }) {
    auto p = DecodeIpPool(c.key, c.json);
    EXPECT_FALSE(p.ok()) << c.json;
    if (!p.ok()) ExpectInvalid(p.status(), c.field);
  }
}

TEST(IpPoolTest, GoTypesOfEveryDeclaredField) {
  for (const char* bad :
       {R"("natOutgoing":"yes")", R"("blockSize":26.0)", R"("blockSize":"26")", R"("vxlanMode":1)",
        R"("ipipMode":null,"ipip":{"enabled":"x"})", R"("nodeSelector":[])",
        R"("disableBGPExport":0)", R"("assignmentMode":1)", R"("nat-outgoing":"true")"}) {
    auto p = DecodeIpPool(kPoolKey, std::string(R"({"spec":{"cidr":"10.0.0.0/8",)") + bad + "}}");
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) ExpectInvalid(p.status(), "spec.");
  }
  ExpectInvalid(
      DecodeIpPool(kPoolKey, R"({"metadata":{"labels":{"a":1}},"spec":{"cidr":"10.0.0.0/8"}})")
          .status(),
      "metadata.labels.a");
  auto p = DecodeIpPool(kPoolKey, R"({"Spec":{"CIDR":"10.0.0.0/8","Disabled":true}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->disabled);
}

// ---------------------------------------------------------------------------------------------
// ClusterInformation

TEST(DatastoreReadyTest, DecodesTheFlag) {
  EXPECT_EQ(DecodeDatastoreReady(R"({"kind":"ClusterInformation","metadata":{"name":"default"},
      "spec":{"clusterGUID":"a1b2c3","clusterType":"k8s,bgp,kdd","calicoVersion":"v3.32.1",
              "datastoreReady":true}})")
                .value(),
            true);
  EXPECT_EQ(DecodeDatastoreReady(R"({"spec":{"datastoreReady":false}})").value(), false);
  EXPECT_EQ(DecodeDatastoreReady(R"({"spec":{}})").value(), true);
  EXPECT_EQ(DecodeDatastoreReady(R"({"spec":{"datastoreReady":null}})").value(), true);
  EXPECT_EQ(DecodeDatastoreReady("{}").value(), true);
}

TEST(DatastoreReadyTest, RejectsWrongTypes) {
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":{"datastoreReady":"false"}})").status(),
                "datastoreReady");
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":{"datastoreReady":0}})").status(),
                "datastoreReady");
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":true})").status(), "spec");
  ExpectInvalid(DecodeDatastoreReady("true").status(), "object");
  ExpectInvalid(DecodeDatastoreReady("").status(), "JSON");
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":{"clusterGUID":7}})").status(), "spec.clusterGUID");
  ExpectInvalid(DecodeDatastoreReady(R"({"spec":{"calicoVersion":["v3"]}})").status(),
                "spec.calicoVersion");
  ExpectInvalid(DecodeDatastoreReady(R"({"metadata":{"name":1}})").status(), "metadata.name");
  EXPECT_EQ(DecodeDatastoreReady(R"({"Spec":{"DatastoreReady":false}})").value(), false);
}

}  // namespace
}  // namespace vcra::calico

namespace vcra::calico {
namespace {

TEST(NormalizeBlockPrefixTest, AddsSlashesAndStaysUnderTheAssignmentTree) {
  EXPECT_EQ(*NormalizeBlockPrefix("calico/ipam/v2/assignment/ipv4/block"),
            "/calico/ipam/v2/assignment/ipv4/block/");
  EXPECT_EQ(*NormalizeBlockPrefix("/calico/ipam/v2/assignment/"), "/calico/ipam/v2/assignment/");
  EXPECT_EQ(*NormalizeBlockPrefix("/calico/ipam/v2/assignment"), "/calico/ipam/v2/assignment/");
  EXPECT_FALSE(NormalizeBlockPrefix("/calico/").ok());
  EXPECT_FALSE(NormalizeBlockPrefix("").ok());
  EXPECT_FALSE(NormalizeBlockPrefix("/etc/passwd").ok());
}

}  // namespace
}  // namespace vcra::calico
