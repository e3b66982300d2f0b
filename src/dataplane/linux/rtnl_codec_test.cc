// Codec tests over byte buffers: round trips, ownership filtering, and hostile input (truncated,
// malformed, random). No sockets, no root.
#include "dataplane/linux/rtnl_codec.h"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace vcra::dataplane::rtnl {
namespace {

constexpr uint32_t kSeq = 77;
constexpr uint32_t kPort = 4242;
constexpr uint8_t kProto = 212;
constexpr uint32_t kTable = 254;

net::IpAddress Ip(const char* text) { return *net::IpAddress::Parse(text); }
net::IpPrefix Prefix(const char* text) { return *net::IpPrefix::Parse(text); }

// Builds datagrams as the kernel would send them, one message after another.
class Datagram {
 public:
  nlmsghdr* Begin(uint16_t type, uint16_t flags = NLM_F_MULTI, uint32_t seq = kSeq,
                  uint32_t pid = kPort) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(Tail());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_pid = pid;
    return nlh;
  }
  void End(nlmsghdr* nlh) { used_ += MNL_ALIGN(nlh->nlmsg_len); }

  struct RouteSpec {
    int af = AF_INET;
    const char* dst = "10.244.2.0";
    int dst_len = 26;
    const char* gateway = "10.99.0.2";
    uint8_t protocol = kProto;
    uint32_t table = kTable;
    bool table_attr = true;
    uint8_t type = RTN_UNICAST;
    uint32_t oif = 2;
    bool multipath = false;
    uint32_t metric = 0;  // RTA_PRIORITY when non-zero
  };
  void Route(const RouteSpec& r) {
    nlmsghdr* nlh = Begin(RTM_NEWROUTE);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = static_cast<uint8_t>(r.af);
    rtm->rtm_dst_len = static_cast<uint8_t>(r.dst_len);
    rtm->rtm_protocol = r.protocol;
    rtm->rtm_table = static_cast<uint8_t>(r.table < 256 ? r.table : RT_TABLE_COMPAT);
    rtm->rtm_type = r.type;
    if (r.table_attr) mnl_attr_put_u32(nlh, RTA_TABLE, r.table);
    size_t n = r.af == AF_INET ? 4 : 16;
    if (r.dst_len > 0) mnl_attr_put(nlh, RTA_DST, n, Ip(r.dst).bytes().data());
    if (r.gateway) mnl_attr_put(nlh, RTA_GATEWAY, n, Ip(r.gateway).bytes().data());
    if (r.multipath) {
      uint8_t nexthops[16] = {};
      mnl_attr_put(nlh, RTA_MULTIPATH, sizeof nexthops, nexthops);
    }
    mnl_attr_put_u32(nlh, RTA_OIF, r.oif);
    if (r.metric != 0) mnl_attr_put_u32(nlh, RTA_PRIORITY, r.metric);
    End(nlh);
  }
  void Done(int error = 0) {
    nlmsghdr* nlh = Begin(NLMSG_DONE);
    auto* e = static_cast<int*>(mnl_nlmsg_put_extra_header(nlh, sizeof(int)));
    *e = error;
    End(nlh);
  }
  void Error(int error, uint32_t seq = kSeq, const char* kernel_message = nullptr) {
    nlmsghdr* nlh = Begin(NLMSG_ERROR, 0, seq);
    auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
    err->error = -error;
    err->msg.nlmsg_len = sizeof(nlmsghdr);
    err->msg.nlmsg_seq = seq;
    nlh->nlmsg_flags |= NLM_F_CAPPED;
    if (kernel_message != nullptr) {
      nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
      mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, kernel_message);
    }
    End(nlh);
  }
  // Raw access for corrupting what was built.
  uint8_t* data() { return reinterpret_cast<uint8_t*>(buf_.data()); }
  std::span<const uint8_t> bytes() const {
    return {reinterpret_cast<const uint8_t*>(buf_.data()), used_};
  }
  std::span<const uint8_t> prefix(size_t n) const { return bytes().first(std::min(n, used_)); }

 private:
  void* Tail() { return reinterpret_cast<uint8_t*>(buf_.data()) + used_; }
  std::vector<uint32_t> buf_ = std::vector<uint32_t>(4096);
  size_t used_ = 0;
};

RouteFilter Filter() {
  RouteFilter f;
  f.seq = kSeq;
  f.portid = kPort;
  f.owner = {kProto, kTable, 0};
  return f;
}

TEST(ParseRouteDump, KeepsOnlyOwnedUnicastRoutesWithGateway) {
  Datagram d;
  d.Route({});  // ours, v4
  d.Route({.af = AF_INET6, .dst = "fd00:244:2::", .dst_len = 122, .gateway = "fd00:99::2"});
  d.Route({.dst = "10.1.0.0", .protocol = RTPROT_STATIC});  // static: not ours
  d.Route({.dst = "10.2.0.0", .gateway = nullptr, .protocol = RTPROT_KERNEL});
  d.Route({.dst = "10.3.0.0", .table = 100});           // other table
  d.Route({.dst = "10.4.0.0", .table = 1000});          // other big table
  d.Route({.dst = "0.0.0.0", .dst_len = 0});            // default, even if ours
  d.Route({.dst = "10.5.0.0", .multipath = true});      // multipath: skipped
  d.Route({.dst = "10.6.0.0", .gateway = nullptr});     // no gateway
  d.Route({.dst = "10.7.0.0", .type = RTN_BLACKHOLE});  // not unicast
  d.Route({.dst = "10.8.0.0", .table_attr = false});    // table from rtm_table
  d.Route({.dst = "10.9.0.0", .protocol = 80});         // Felix's
  d.Done();
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_TRUE(chunk->done);
  EXPECT_EQ(chunk->malformed, 0);
  std::vector<net::Route> want = {
      {Prefix("10.244.2.0/26"), Ip("10.99.0.2")},
      {Prefix("fd00:244:2::/122"), Ip("fd00:99::2")},
      {Prefix("10.8.0.0/26"), Ip("10.99.0.2")},
  };
  EXPECT_EQ(chunk->routes, want);
}

TEST(ParseRouteDump, ReportsEachRoutesMetric) {
  Datagram d;
  d.Route({.dst = "10.244.2.0"});
  d.Route({.dst = "10.244.3.0", .metric = 50});
  d.Route({.af = AF_INET6,
           .dst = "fd00:244:2::",
           .dst_len = 122,
           .gateway = "fd00:99::2",
           .metric = 1024});
  d.Done();
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  ASSERT_EQ(chunk->routes.size(), 3u);
  EXPECT_EQ(chunk->metrics, (std::vector<uint32_t>{0, 50, 1024}));
}

TEST(ParseRouteDump, RouteOnAnotherInterfaceIsReportedAsDrift) {
  Datagram d;
  d.Route({.oif = 7});
  d.Route({.af = AF_INET6, .dst = "fd00:1::", .dst_len = 64, .gateway = "fd00:99::2", .oif = 7});
  d.Route({.dst = "10.1.0.0", .oif = 2});
  RouteFilter f = Filter();
  f.uplink_index = 2;
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), f);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_FALSE(chunk->done);
  ASSERT_EQ(chunk->routes.size(), 3u);
  EXPECT_TRUE(chunk->routes[0].gateway.IsUnspecified());
  EXPECT_TRUE(chunk->routes[0].gateway.is_v4());
  EXPECT_TRUE(chunk->routes[1].gateway.IsUnspecified());
  EXPECT_FALSE(chunk->routes[1].gateway.is_v4());
  EXPECT_EQ(chunk->routes[2].gateway, Ip("10.99.0.2"));
}

TEST(ParseRouteDump, SkipsMessagesOfOtherRequestsAndPorts) {
  Datagram d;
  nlmsghdr* other = d.Begin(NLMSG_ERROR, 0, kSeq - 1);  // a late ack of an earlier request
  auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(other, sizeof(nlmsgerr)));
  err->error = -EEXIST;
  d.End(other);
  nlmsghdr* foreign = d.Begin(NLMSG_DONE, 0, kSeq, kPort + 1);
  mnl_nlmsg_put_extra_header(foreign, sizeof(int));
  d.End(foreign);
  d.Route({});
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_FALSE(chunk->done);
  EXPECT_EQ(chunk->routes.size(), 1u);
}

TEST(ParseRouteDump, ErrorInDumpBecomesStatus) {
  Datagram d;
  d.Route({});
  d.Error(EPERM);
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(chunk.status().message().find("Operation not permitted"), std::string::npos);

  Datagram done;
  done.Done(-EBUSY);
  chunk = ParseRouteDump(done.bytes(), Filter());
  ASSERT_FALSE(chunk.ok());
  EXPECT_NE(chunk.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ParseRouteDump, InterruptedDumpIsFlagged) {
  Datagram d;
  d.Route({});
  d.Done();
  reinterpret_cast<nlmsghdr*>(d.data())->nlmsg_flags |= NLM_F_DUMP_INTR;
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_TRUE(chunk->interrupted);
  EXPECT_TRUE(chunk->done);
}

TEST(ParseRouteDump, TruncatedDatagramsNeverCrash) {
  Datagram d;
  d.Route({});
  d.Route({.af = AF_INET6, .dst = "fd00:1::", .dst_len = 64, .gateway = "fd00:99::2"});
  d.Done();
  const size_t first = reinterpret_cast<nlmsghdr*>(d.data())->nlmsg_len;
  for (size_t n = 0; n < d.bytes().size(); ++n) {
    StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.prefix(n), Filter());
    if (n == 0 || n == first) {
      ASSERT_TRUE(chunk.ok()) << n << ": " << chunk.status();
      EXPECT_FALSE(chunk->done);
    } else if (n < first || n < first + sizeof(nlmsghdr)) {
      // A message cut short is a framing error, not a silent end.
      EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDataLoss) << n;
    } else if (!chunk.ok()) {
      EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDataLoss) << n;
    }
  }
}

TEST(ParseRouteDump, MalformedRouteMessagesAreSkippedAndCounted) {
  // Each corruption hits one message; the good route after it must still come through.
  struct Case {
    const char* name;
    void (*corrupt)(uint8_t* msg);
  };
  const Case cases[] = {
      {"dst_len beyond 32",
       [](uint8_t* m) { reinterpret_cast<rtmsg*>(m + sizeof(nlmsghdr))->rtm_dst_len = 40; }},
      {"attribute longer than the message",
       [](uint8_t* m) {
         auto* nla = reinterpret_cast<nlattr*>(m + sizeof(nlmsghdr) + sizeof(rtmsg));
         nla->nla_len = 0x7fff;
       }},
      {"u32 attribute of 2 bytes",
       [](uint8_t* m) {
         auto* nla = reinterpret_cast<nlattr*>(m + sizeof(nlmsghdr) + sizeof(rtmsg));
         nla->nla_len = 6;  // RTA_TABLE comes first
       }},
      {"message shorter than rtmsg",
       [](uint8_t* m) { reinterpret_cast<nlmsghdr*>(m)->nlmsg_len = sizeof(nlmsghdr) + 4; }},
  };
  for (const Case& c : cases) {
    Datagram d;
    d.Route({.dst = "10.1.0.0"});
    d.Route({});
    c.corrupt(d.data());
    StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
    if (!chunk.ok()) {
      // Shrinking nlmsg_len shifts the framing: garbage where the next header should be.
      EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDataLoss) << c.name;
      continue;
    }
    EXPECT_GE(chunk->malformed + static_cast<int>(chunk->routes.size()), 1) << c.name;
    for (const net::Route& r : chunk->routes) EXPECT_NE(r.dst, Prefix("10.1.0.0/26")) << c.name;
  }
}

TEST(ParseRouteDump, WrongAddressLengthIsMalformed) {
  Datagram d;
  nlmsghdr* nlh = d.Begin(RTM_NEWROUTE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 24;
  rtm->rtm_protocol = kProto;
  rtm->rtm_table = kTable;
  rtm->rtm_type = RTN_UNICAST;
  uint8_t three[3] = {10, 0, 0};
  mnl_attr_put(nlh, RTA_DST, sizeof three, three);
  mnl_attr_put(nlh, RTA_GATEWAY, 4, Ip("10.99.0.2").bytes().data());
  d.End(nlh);
  StatusOr<RouteDumpChunk> chunk = ParseRouteDump(d.bytes(), Filter());
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->malformed, 1);
  EXPECT_TRUE(chunk->routes.empty());
}

TEST(ParseRouteDump, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  Datagram valid;
  valid.Route({});
  valid.Route({.af = AF_INET6, .dst = "fd00:1::", .dst_len = 64, .gateway = "fd00:99::2"});
  valid.Error(EINVAL, kSeq, "Nexthop has invalid gateway");
  valid.Done();
  std::vector<uint8_t> buf;
  for (int i = 0; i < 20000; ++i) {
    if (i % 2 == 0) {
      buf.assign(valid.bytes().begin(), valid.bytes().end());
      int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
    } else {
      buf.resize(rng() % 512);
      for (uint8_t& b : buf) b = static_cast<uint8_t>(rng());
    }
    // Includes unaligned starts.
    size_t skip = std::min<size_t>(rng() % 3, buf.size());
    std::span<const uint8_t> bytes(buf.data() + skip, buf.size() - skip);
    (void)ParseRouteDump(bytes, Filter());
    (void)WalkReplies(bytes, kSeq, kPort, [](const nlmsghdr& nlh) {
      (void)ParseRouteEntry(nlh);
      return Status();
    });
    (void)ParseAcks(bytes, kPort);
  }
}

TEST(PutRoute, UpsertRoundTripsThroughTheParser) {
  RouteOwner owner{kProto, 1000, 0};
  std::vector<uint32_t> buf(kMaxRequestBytes);
  net::Route v6{Prefix("fd00:244:2::/122"), Ip("fd00:99::2")};
  size_t len = PutRouteWrite(buf.data(), 9, v6, 3, owner, RouteWrite::kReplace);
  ASSERT_LE(len, kMaxRequestBytes);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  EXPECT_EQ(nlh->nlmsg_len, len);
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWROUTE);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(rtm->rtm_table, RT_TABLE_UNSPEC);  // 1000 only fits RTA_TABLE
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(rtm->rtm_protocol, kProto);

  RouteFilter f = Filter();
  f.owner.table = 1000;
  f.seq = 9;
  f.portid = 0;
  f.uplink_index = 3;
  StatusOr<std::optional<net::Route>> back = ParseRouteMessage(*nlh, f);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, v6);
}

TEST(PutRoute, CreateIsExclusiveAndRoundTripsAsAnEntryWithItsMetric) {
  RouteOwner owner{kProto, kTable, 77};
  std::vector<uint32_t> buf(kMaxRequestBytes);
  net::Route v4{Prefix("10.2.0.0/26"), Ip("172.16.0.2")};
  size_t len = PutRouteWrite(buf.data(), 9, v4, 3, owner, RouteWrite::kCreateExclusive);
  ASSERT_LE(len, kMaxRequestBytes);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  // Never NLM_F_REPLACE: an exclusive create fails with EEXIST on a key someone holds.
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  StatusOr<std::optional<RouteEntry>> entry = ParseRouteEntry(*nlh);
  ASSERT_TRUE(entry.ok()) << entry.status();
  ASSERT_TRUE(entry->has_value());
  const RouteEntry& e = **entry;
  EXPECT_EQ(e.dst, v4.dst);
  EXPECT_EQ(e.gateway, v4.gateway);
  EXPECT_EQ(e.protocol, kProto);
  EXPECT_EQ(e.table, kTable);
  EXPECT_EQ(e.metric, 77u);
  EXPECT_EQ(e.oif, 3u);
  EXPECT_EQ(e.type, RTN_UNICAST);
  EXPECT_FALSE(e.multipath);
  EXPECT_EQ(DescribeRouteHolder(e), "proto 212, via 172.16.0.2, metric 77");
}

TEST(ParseRouteEntry, ReportsForeignRoutesDefaultsAndRejectsBadBytes) {
  Datagram d;
  d.Route({.dst = "10.2.0.0", .gateway = "172.16.0.9", .protocol = RTPROT_STATIC});
  d.Route({.dst = "10.3.0.0", .gateway = nullptr, .protocol = 12, .type = RTN_BLACKHOLE});
  d.Route({.dst = "0.0.0.0", .dst_len = 0, .protocol = RTPROT_BOOT});
  d.Route({.dst = "10.4.0.0", .dst_len = 40});  // longer than an IPv4 address
  std::vector<StatusOr<std::optional<RouteEntry>>> got;
  StatusOr<WalkResult> walk = WalkReplies(d.bytes(), kSeq, kPort, [&](const nlmsghdr& nlh) {
    got.push_back(ParseRouteEntry(nlh));
    return Status();
  });
  ASSERT_TRUE(walk.ok()) << walk.status();
  ASSERT_EQ(got.size(), 4u);
  ASSERT_TRUE(got[0].ok() && got[0]->has_value());
  EXPECT_EQ(DescribeRouteHolder(**got[0]), "proto static, via 172.16.0.9");
  ASSERT_TRUE(got[1].ok() && got[1]->has_value());
  EXPECT_EQ(DescribeRouteHolder(**got[1]), "proto bird, blackhole");
  ASSERT_TRUE(got[2].ok() && got[2]->has_value());
  EXPECT_EQ((*got[2])->dst.len(), 0);
  EXPECT_TRUE((*got[2])->dst.address().IsUnspecified());
  EXPECT_EQ(got[3].status().code(), absl::StatusCode::kDataLoss);
}

TEST(RouteKey, KernelMetricAndProtocolNames) {
  EXPECT_EQ(KernelMetric(net::Family::kV4, 0), 0u);
  EXPECT_EQ(KernelMetric(net::Family::kV6, 0), 1024u);
  EXPECT_EQ(KernelMetric(net::Family::kV6, 50), 50u);
  EXPECT_EQ(ProtocolName(RTPROT_STATIC), "static");
  EXPECT_EQ(ProtocolName(RTPROT_KERNEL), "kernel");
  EXPECT_EQ(ProtocolName(186), "bgp");
  EXPECT_EQ(ProtocolName(80), "80");
}

TEST(PutRoute, DeleteNamesProtocolAndTable) {
  RouteOwner owner{kProto, kTable, 50};
  std::vector<uint32_t> buf(kMaxRequestBytes);
  size_t len = PutRouteDelete(buf.data(), 5, Prefix("10.244.2.0/26"), owner);
  ASSERT_LE(len, kMaxRequestBytes);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  EXPECT_EQ(nlh->nlmsg_type, RTM_DELROUTE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(rtm->rtm_protocol, kProto);
  EXPECT_EQ(rtm->rtm_table, kTable);
  EXPECT_EQ(rtm->rtm_dst_len, 26);
  bool saw_priority = false;
  const char* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(rtmsg)));
       mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr)) {
    if (mnl_attr_get_type(attr) == RTA_PRIORITY) {
      saw_priority = true;
      EXPECT_EQ(mnl_attr_get_u32(attr), 50u);
    }
    EXPECT_NE(mnl_attr_get_type(attr), RTA_GATEWAY);
  }
  EXPECT_TRUE(saw_priority);
}

TEST(ParseAcks, MatchesSeqAndKeepsKernelMessage) {
  Datagram d;
  d.Error(0, 10);
  d.Error(ENETUNREACH, 11, "Nexthop has invalid gateway");
  d.Route({});  // not an ack: skipped
  StatusOr<std::vector<Ack>> acks = ParseAcks(d.bytes(), kPort);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), 2u);
  EXPECT_EQ((*acks)[0].seq, 10u);
  EXPECT_EQ((*acks)[0].error, 0);
  EXPECT_EQ((*acks)[1].seq, 11u);
  EXPECT_EQ((*acks)[1].error, ENETUNREACH);
  EXPECT_EQ((*acks)[1].kernel_message, "Nexthop has invalid gateway");

  EXPECT_EQ(ParseAcks(d.prefix(10), kPort).status().code(), absl::StatusCode::kDataLoss);
  StatusOr<std::vector<Ack>> other_port = ParseAcks(d.bytes(), kPort + 1);
  ASSERT_TRUE(other_port.ok());
  EXPECT_TRUE(other_port->empty());
}

// Found by fuzz/dataplane_fuzz: an error field of INT_MIN (negating it is undefined).
TEST(ParseAcks, HostileErrorValuesAreNotNegatedBlindly) {
  Datagram d;
  d.Error(0, 10);
  reinterpret_cast<nlmsgerr*>(d.data() + NLMSG_HDRLEN)->error = INT32_MIN;
  StatusOr<std::vector<Ack>> acks = ParseAcks(d.bytes(), kPort);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), 1u);
  EXPECT_GT((*acks)[0].error, 0);

  Datagram done;
  done.Done(INT32_MIN);
  EXPECT_FALSE(ParseRouteDump(done.bytes(), Filter()).ok());
}

TEST(ErrnoStatus, CarriesContextAndNeverMeansDisconnected) {
  Status s = ErrnoStatus(ENETUNREACH, "add 10.244.2.0/26 via 10.99.0.2");
  EXPECT_EQ(s.message(), "add 10.244.2.0/26 via 10.99.0.2: Network is unreachable");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  for (int e : {EAGAIN, EBUSY, ENOBUFS, ENETDOWN, EHOSTUNREACH, 9999}) {
    EXPECT_NE(ErrnoStatus(e, "x").code(), absl::StatusCode::kUnavailable) << e;
    EXPECT_FALSE(ErrnoStatus(e, "x").ok());
  }
  EXPECT_EQ(ErrnoStatus(EEXIST, "x", "File exists").message(), "x: File exists (File exists)");
}

TEST(ParseLinkAndAddress, RejectMalformed) {
  Datagram d;
  nlmsghdr* nlh = d.Begin(RTM_NEWLINK);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = 5;
  ifi->ifi_flags = IFF_UP;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, "uplink0");
  d.End(nlh);
  StatusOr<LinkInfo> link = ParseLinkMessage(*nlh);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->index, 5u);
  EXPECT_EQ(link->name, "uplink0");
  // A name without its NUL terminator fails validation instead of being read past its end.
  auto* name = reinterpret_cast<nlattr*>(reinterpret_cast<uint8_t*>(nlh) + sizeof(nlmsghdr) +
                                         sizeof(ifinfomsg));
  reinterpret_cast<char*>(mnl_attr_get_payload(name))[7] = 'X';
  EXPECT_FALSE(ParseLinkMessage(*nlh).ok());
  ifi->ifi_index = -1;
  EXPECT_FALSE(ParseLinkMessage(*nlh).ok());

  Datagram a;
  nlmsghdr* addr = a.Begin(RTM_NEWADDR);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(addr, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 24;
  ifa->ifa_index = 5;
  mnl_attr_put(addr, IFA_ADDRESS, 4, Ip("10.99.0.255").bytes().data());
  mnl_attr_put(addr, IFA_LOCAL, 4, Ip("10.99.0.1").bytes().data());
  a.End(addr);
  StatusOr<AddressInfo> info = ParseAddressMessage(*addr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->address, Ip("10.99.0.1"));  // IFA_LOCAL wins
  EXPECT_EQ(info->prefix_len, 24);
  ifa->ifa_prefixlen = 33;
  EXPECT_FALSE(ParseAddressMessage(*addr).ok());
  ifa->ifa_prefixlen = 24;
  ifa->ifa_family = AF_INET6;  // 4-byte addresses in an IPv6 message
  EXPECT_FALSE(ParseAddressMessage(*addr).ok());
}

}  // namespace
}  // namespace vcra::dataplane::rtnl
