#include "net/ip.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace vcra::net {
namespace {

TEST(IpAddressTest, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddress::Parse("10.244.7.1");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->ToString(), "10.244.7.1");
  auto v6 = IpAddress::Parse("fd00:10:244:0001:0::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), Family::kV6);
  EXPECT_EQ(v6->ToString(), "fd00:10:244:1::1");
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* bad : {"", " 10.0.0.1", "10.0.0.1 ", "10.0.0", "10.0.0.256", "fd00::1%eth0",
                          "::g", "1.2.3.4/32", "hello"}) {
    EXPECT_FALSE(IpAddress::Parse(bad)) << bad;
  }
  EXPECT_FALSE(IpAddress::Parse(std::string(200, '1')));
  EXPECT_FALSE(IpAddress::Parse(std::string_view("10.0.0.1\0junk", 13)));
}

TEST(IpAddressTest, LinkLocal) {
  EXPECT_TRUE(IpAddress::Parse("169.254.1.2")->IsLinkLocal());
  EXPECT_TRUE(IpAddress::Parse("fe80::1")->IsLinkLocal());
  EXPECT_TRUE(IpAddress::Parse("febf::1")->IsLinkLocal());
  EXPECT_FALSE(IpAddress::Parse("fec0::1")->IsLinkLocal());
  EXPECT_FALSE(IpAddress::Parse("10.99.0.1")->IsLinkLocal());
  EXPECT_FALSE(IpAddress::Parse("fd00:99::1")->IsLinkLocal());
}

TEST(IpAddressTest, PlusCarriesAcrossBytes) {
  EXPECT_EQ(IpAddress::Parse("10.0.0.255")->Plus(1).ToString(), "10.0.1.0");
  EXPECT_EQ(IpAddress::Parse("fd00::ffff")->Plus(2).ToString(), "fd00::1:1");
}

TEST(IpPrefixTest, MasksAndContains) {
  auto p = IpPrefix::Parse("10.244.7.9/26");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ToString(), "10.244.7.0/26");
  EXPECT_FALSE(IpPrefix::Parse("10.244.7.9/26", /*strict=*/true));
  EXPECT_TRUE(p->Contains(*IpAddress::Parse("10.244.7.63")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("10.244.7.64")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("::1")));
  EXPECT_TRUE(IpPrefix::Parse("10.0.0.0/8")->Contains(*p));
  EXPECT_FALSE(p->Contains(*IpPrefix::Parse("10.0.0.0/8")));
  auto v6 = IpPrefix::Parse("fd00:10:244:1::/122");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->ToString(), "fd00:10:244:1::/122");
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/33"));
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/"));
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/-1"));
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0"));
}

TEST(IpPrefixTest, InterfaceAddressKeepsHostBits) {
  auto p = IpPrefix::ParseInterfaceAddress("10.99.0.1/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->address().ToString(), "10.99.0.1");
  EXPECT_EQ(p->len(), 24);
  EXPECT_EQ(p->ToString(), "10.99.0.1/24");
  EXPECT_FALSE(IpPrefix::ParseInterfaceAddress("10.99.0.1"));
}

TEST(IpPrefixTest, HashAndEquality) {
  std::unordered_set<IpPrefix> set;
  set.insert(*IpPrefix::Parse("10.0.0.0/24"));
  set.insert(*IpPrefix::Parse("10.0.0.1/24"));
  set.insert(*IpPrefix::Parse("10.0.0.0/25"));
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace vcra::net
