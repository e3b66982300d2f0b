#include "dataplane/vpp/wire.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "dataplane/vpp/test_util.h"

namespace vcra::dataplane::vpp {
namespace {

using testing::FromHex;
using testing::LoadTranscript;
using testing::ToHex;
using testing::TranscriptFiles;

net::IpAddress Ip(std::string_view s) { return *net::IpAddress::Parse(s); }
net::IpPrefix Pfx(std::string_view s) { return *net::IpPrefix::Parse(s); }

// ---- worked examples (docs/vpp-api.md section 9) ----

TEST(WireDocExamples, SockclntCreate) {
  Bytes want = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 46 00 00 00 00"
      "00 0f 00 00 00 01 63 70 70 2d 63 6c 69 65 6e 74"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00");
  EXPECT_EQ(ToHex(Frame(EncodeSockclntCreate({1, "cpp-client"}))), ToHex(want));
  auto m = DecodeSockclntCreate(std::span(want).subspan(16));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->name, "cpp-client");
  EXPECT_EQ(m->context, 1u);
}

TEST(WireDocExamples, SockclntCreateReply) {
  Bytes want = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 98 00 00 00 00"
      "00 10 00 00 00 00 00 00 00 01 00 00 00 00 80 00"
      "00 01 00 02 00 17 63 6f 6e 74 72 6f 6c 5f 70 69"
      "6e 67 5f 35 31 30 37 37 64 31 34 00 00 00 00 00"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 18 63 6f 6e 74 72 6f 6c 5f"
      "70 69 6e 67 5f 72 65 70 6c 79 5f 66 36 62 30 62"
      "38 63 61 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 00 00 00");
  SockclntCreateReply r;
  r.context = 1;
  r.index = 0x80000001;
  r.table = {{0x17, "control_ping_51077d14"}, {0x18, "control_ping_reply_f6b0b8ca"}};
  EXPECT_EQ(ToHex(Frame(EncodeSockclntCreateReply(r))), ToHex(want));
  auto d = DecodeSockclntCreateReply(std::span(want).subspan(16));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->index, 0x80000001u);
  EXPECT_EQ(d->table, r.table);
}

TEST(WireDocExamples, ControlPingAndReply) {
  Bytes ping = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 0a 00 00 00 00"
      "00 17 80 00 00 01 00 00 00 02");
  EXPECT_EQ(ToHex(Frame(EncodeBareRequest(23, {0x80000001, 2}))), ToHex(ping));
  Bytes reply = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 12 00 00 00 00"
      "00 18 00 00 00 02 00 00 00 00 00 00 00 00 00 00"
      "04 d2");
  EXPECT_EQ(ToHex(Frame(EncodeControlPingReply(24, {2, 0, 0, 1234}))), ToHex(reply));
  auto d = DecodeControlPingReply(std::span(reply).subspan(16));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->vpe_pid, 1234u);
}

TEST(WireDocExamples, IpRouteAddDelAndReply) {
  Bytes want = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 ce 00 00 00 00"
      "01 23 80 00 00 01 00 00 00 03 01 00 00 00 00 00"
      "00 00 00 00 00 0a 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 00 18 01 00 00 00 01 00 00 00 00 00"
      "00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 c0 a8 01 01 00 00 00 00 00 00 00 00 00 00 00" +
      std::string(7 * 16 * 2, '0') + "00 00 00 00 00 00 00 00 00 00 00 00 00 00");
  IpRouteAddDel m;
  m.h = {0x80000001, 3};
  m.route.prefix = WirePrefix::From(Pfx("10.0.0.0/24"));
  m.route.paths = {FibPath::Via(Ip("192.168.1.1"), 1)};
  Bytes got = Frame(EncodeIpRouteAddDel(0x0123, m, false));
  EXPECT_EQ(got.size(), 222u);
  EXPECT_EQ(ToHex(got), ToHex(want));
  auto d = DecodeIpRouteAddDel(std::span(want).subspan(16), false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->route, m.route);
  EXPECT_EQ(d->route.paths[0].NextHop(), Ip("192.168.1.1"));

  Bytes reply = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 0e 00 00 00 00"
      "01 24 00 00 00 03 00 00 00 00 00 00 00 11");
  EXPECT_EQ(ToHex(Frame(EncodeIpRouteAddDelReply(0x0124, {3, 0, 0x11}))), ToHex(reply));
}

TEST(WireDocExamples, SwInterfaceDump) {
  Bytes want = FromHex(
      "00 00 00 00 00 00 00 00 00 00 00 13 00 00 00 00"
      "02 00 80 00 00 01 00 00 00 04 ff ff ff ff 00 00"
      "00 00 00");
  SwInterfaceDump m;
  m.h = {0x80000001, 4};
  EXPECT_EQ(ToHex(Frame(EncodeSwInterfaceDump(0x0200, m))), ToHex(want));
}

// ---- every frame of the real VPP 26.06 transcripts: decode, re-encode, compare ----

using Roundtrip = std::function<StatusOr<Bytes>(std::span<const uint8_t>)>;

template <typename Dec, typename Enc>
Roundtrip Rt(Dec dec, Enc enc) {
  return [dec, enc](std::span<const uint8_t> b) -> StatusOr<Bytes> {
    ASSIGN_OR_RETURN(uint16_t id, PeekMsgId(b));
    ASSIGN_OR_RETURN(auto m, dec(b));
    return enc(id, m);
  };
}

std::map<std::string, Roundtrip> Codecs() {
  std::map<std::string, Roundtrip> c;
  c[std::string(msg::kSockclntCreate)] =
      Rt(DecodeSockclntCreate, [](uint16_t, const auto& m) { return EncodeSockclntCreate(m); });
  c[std::string(msg::kSockclntCreateReply)] =
      Rt(DecodeSockclntCreateReply,
         [](uint16_t, const auto& m) { return EncodeSockclntCreateReply(m); });
  c[std::string(msg::kSockclntDelete)] = Rt(DecodeSockclntDelete, EncodeSockclntDelete);
  c[std::string(msg::kSockclntDeleteReply)] =
      Rt(DecodeSockclntDeleteReply, EncodeSockclntDeleteReply);
  for (auto n : {msg::kControlPing, msg::kShowVersion, msg::kFibSourceDump}) {
    c[std::string(n)] = Rt(DecodeBareRequest, EncodeBareRequest);
  }
  c[std::string(msg::kControlPingReply)] = Rt(DecodeControlPingReply, EncodeControlPingReply);
  c[std::string(msg::kShowVersionReply)] = Rt(DecodeShowVersionReply, EncodeShowVersionReply);
  c[std::string(msg::kSwInterfaceDump)] = Rt(DecodeSwInterfaceDump, EncodeSwInterfaceDump);
  c[std::string(msg::kSwInterfaceDetails)] = Rt(DecodeSwInterfaceDetails, EncodeSwInterfaceDetails);
  c[std::string(msg::kSwInterfaceSetFlags)] =
      Rt(DecodeSwInterfaceSetFlags, EncodeSwInterfaceSetFlags);
  for (auto n : {msg::kSwInterfaceSetFlagsReply, msg::kSwInterfaceAddDelAddressReply,
                 msg::kWantInterfaceEventsReply}) {
    c[std::string(n)] = Rt(DecodeRetvalReply, EncodeRetvalReply);
  }
  c[std::string(msg::kSwInterfaceAddDelAddress)] =
      Rt(DecodeSwInterfaceAddDelAddress, EncodeSwInterfaceAddDelAddress);
  c[std::string(msg::kWantInterfaceEvents)] =
      Rt(DecodeWantInterfaceEvents, EncodeWantInterfaceEvents);
  c[std::string(msg::kSwInterfaceEvent)] = Rt(DecodeSwInterfaceEvent, EncodeSwInterfaceEvent);
  c[std::string(msg::kIpAddressDump)] = Rt(DecodeIpAddressDump, EncodeIpAddressDump);
  c[std::string(msg::kIpAddressDetails)] = Rt(DecodeIpAddressDetails, EncodeIpAddressDetails);
  for (bool v2 : {false, true}) {
    auto dec_add = [v2](std::span<const uint8_t> b) { return DecodeIpRouteAddDel(b, v2); };
    auto enc_add = [v2](uint16_t id, const IpRouteAddDel& m) {
      return EncodeIpRouteAddDel(id, m, v2);
    };
    auto dec_dump = [v2](std::span<const uint8_t> b) { return DecodeIpRouteDump(b, v2); };
    auto enc_dump = [v2](uint16_t id, const IpRouteDump& m) {
      return EncodeIpRouteDump(id, m, v2);
    };
    auto dec_det = [v2](std::span<const uint8_t> b) { return DecodeIpRouteDetails(b, v2); };
    auto enc_det = [v2](uint16_t id, const IpRouteDetails& m) {
      return EncodeIpRouteDetails(id, m, v2);
    };
    c[std::string(v2 ? msg::kIpRouteAddDelV2 : msg::kIpRouteAddDel)] = Rt(dec_add, enc_add);
    c[std::string(v2 ? msg::kIpRouteV2Dump : msg::kIpRouteDump)] = Rt(dec_dump, enc_dump);
    c[std::string(v2 ? msg::kIpRouteV2Details : msg::kIpRouteDetails)] = Rt(dec_det, enc_det);
    c[std::string(v2 ? msg::kIpRouteAddDelV2Reply : msg::kIpRouteAddDelReply)] =
        Rt(DecodeIpRouteAddDelReply, EncodeIpRouteAddDelReply);
  }
  c[std::string(msg::kFibSourceAdd)] = Rt(DecodeFibSourceAdd, EncodeFibSourceAdd);
  c[std::string(msg::kFibSourceAddReply)] = Rt(DecodeFibSourceAddReply, EncodeFibSourceAddReply);
  c[std::string(msg::kFibSourceDetails)] = Rt(DecodeFibSourceDetails, EncodeFibSourceDetails);
  return c;
}

TEST(WireTranscript, EveryFrameRoundTripsByteForByte) {
  auto codecs = Codecs();
  std::map<std::string, int> seen;
  int truncated = 0;
  for (const std::string& file : TranscriptFiles()) {
    for (const auto& f : LoadTranscript(file)) {
      auto it = codecs.find(f.name_crc);
      if (it == codecs.end()) continue;
      auto got = it->second(f.body());
      if (!got.ok()) {
        // Step 11 sends deliberately truncated ip_route_add_del frames: they must be rejected.
        EXPECT_TRUE(file.find("11-malformed") != std::string::npos)
            << file << " " << f.name_crc << ": " << got.status();
        ++truncated;
        continue;
      }
      EXPECT_EQ(ToHex(*got), ToHex(f.body())) << file << " " << f.name_crc;
      ++seen[f.name_crc];
    }
  }
  EXPECT_EQ(truncated, 2);
  // Every message of the codec appears in the transcripts at least once.
  for (const auto& [name, rt] : codecs) EXPECT_GT(seen[name], 0) << name;
}

TEST(WireTranscript, DecodedValuesMatchTheCapture) {
  auto frames = LoadTranscript(testing::TestdataDir() + "/07-ip-route-add-del.txt");
  ASSERT_FALSE(frames.empty());
  auto add = DecodeIpRouteAddDel(frames[0].body(), false);
  ASSERT_TRUE(add.ok());
  EXPECT_EQ(add->h.client_index, 0x80000001u);
  EXPECT_EQ(add->h.context, 701u);
  EXPECT_EQ(*add->route.prefix.ToPrefix(), Pfx("10.2.0.0/26"));
  ASSERT_EQ(add->route.paths.size(), 1u);
  EXPECT_EQ(add->route.paths[0].NextHop(), Ip("172.16.0.2"));
  EXPECT_EQ(add->route.paths[0].sw_if_index, 1u);
  auto reply = DecodeIpRouteAddDelReply(frames[1].body());
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->retval, 0);
  EXPECT_EQ(reply->stats_index, 0x16u);

  auto hs = LoadTranscript(testing::TestdataDir() + "/01-handshake.txt");
  auto table = DecodeSockclntCreateReply(hs[1].body());
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->table.size(), 841u);
  EXPECT_EQ(table->index, 0x80000001u);

  auto sv = LoadTranscript(testing::TestdataDir() + "/03-show-version.txt");
  auto v = DecodeShowVersionReply(sv[1].body());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->program, "vpe");
  EXPECT_EQ(v->version, "26.06-release");
}

// ---- framing ----

TEST(FrameReassembler, OneByteAtATime) {
  Bytes stream;
  std::vector<Bytes> bodies;
  for (const std::string& file : TranscriptFiles()) {
    for (const auto& f : LoadTranscript(file)) {
      if (f.from_client) continue;
      stream.insert(stream.end(), f.frame.begin(), f.frame.end());
      bodies.emplace_back(f.body().begin(), f.body().end());
    }
  }
  FrameReassembler rx;
  std::vector<Bytes> got;
  for (uint8_t b : stream) {
    rx.Feed(std::span(&b, 1));
    while (true) {
      auto m = rx.Next();
      ASSERT_TRUE(m.ok());
      if (!m->has_value()) break;
      got.push_back(std::move(**m));
    }
  }
  EXPECT_EQ(got.size(), bodies.size());
  EXPECT_TRUE(got == bodies);
  EXPECT_EQ(rx.buffered(), 0u);
}

TEST(FrameReassembler, ManyFramesInOneReadAndHeaderJunkIgnored) {
  Bytes stream;
  for (int i = 0; i < 5; ++i) AppendFrame(EncodeRetvalReply(7, {uint32_t(i), 0}), &stream);
  stream[0] = 0xc0;  // bytes 0..7 of a real VPP's header are an internal pointer
  stream[15] = 0x99;
  FrameReassembler rx;
  rx.Feed(stream);
  for (int i = 0; i < 5; ++i) {
    auto m = rx.Next();
    ASSERT_TRUE(m.ok() && m->has_value());
    EXPECT_EQ(DecodeRetvalReply(**m)->context, uint32_t(i));
  }
  EXPECT_FALSE(rx.Next()->has_value());
}

TEST(FrameReassembler, OversizedFrameIsAnError) {
  FrameReassembler rx(1024);
  Bytes hdr = FromHex("0000000000000000 00100000 00000000");
  rx.Feed(hdr);
  EXPECT_FALSE(rx.Next().ok());
}

// ---- hostile input ----

TEST(WireHostile, EveryTruncationIsRejected) {
  auto codecs = Codecs();
  for (const std::string& file : TranscriptFiles()) {
    for (const auto& f : LoadTranscript(file)) {
      auto it = codecs.find(f.name_crc);
      if (it == codecs.end() || f.body().size() > 2000) continue;
      if (!it->second(f.body()).ok()) continue;
      for (size_t n = 0; n < f.body().size(); ++n) {
        auto cut = f.body().subspan(0, n);
        auto r = it->second(cut);
        // Variable tails may legitimately end early only if the count says so; our frames
        // are exact, so every cut loses required bytes.
        EXPECT_FALSE(r.ok()) << f.name_crc << " cut at " << n;
      }
    }
  }
}

TEST(WireHostile, LyingCountsAreRejected) {
  IpRouteDetails d;
  d.route.prefix = WirePrefix::From(Pfx("10.0.0.0/8"));
  d.route.paths = {FibPath::Via(Ip("1.2.3.4"), 1)};
  Bytes b = EncodeIpRouteDetails(9, d, false);
  b[32] = 200;  // n_paths says 200
  EXPECT_FALSE(DecodeIpRouteDetails(b, false).ok());
  SockclntCreateReply r;
  r.table = {{30, "x_12345678"}};
  Bytes t = EncodeSockclntCreateReply(r);
  t[18] = 0xFF;  // count
  EXPECT_FALSE(DecodeSockclntCreateReply(t).ok());
  SwInterfaceDump s;
  s.name_filter = "abc";
  Bytes sd = EncodeSwInterfaceDump(5, s);
  sd[15] = 0x7F;  // filter length ~2 GB
  EXPECT_FALSE(DecodeSwInterfaceDump(sd).ok());
  EXPECT_FALSE(PeekMsgId(Bytes{1}).ok());
}

TEST(WireHostile, BadPrefixesAreErrorsNotCrashes) {
  WirePrefix p;
  p.af = 7;
  EXPECT_FALSE(p.ToPrefix().ok());
  p.af = 0;
  p.len = 33;
  EXPECT_FALSE(p.ToPrefix().ok());
  p.af = 1;
  p.len = 129;
  EXPECT_FALSE(p.ToPrefix().ok());
  // VPP reports IPv4 connected entries unmasked: we mask.
  WirePrefix c = WirePrefix::FromAddress(Ip("172.16.0.1"), 24);
  EXPECT_EQ(*c.ToPrefix(), Pfx("172.16.0.0/24"));
}

TEST(WireStrings, FixedStringsStopAtNulOrLastByte) {
  ShowVersionReply v;
  v.version = std::string(40, 'x');  // longer than 31: truncated
  Bytes b = EncodeShowVersionReply(1, v);
  EXPECT_EQ(b.size(), 362u);
  auto d = DecodeShowVersionReply(b);
  EXPECT_EQ(d->version, std::string(31, 'x'));
  b[10 + 31] = 'G';  // garbage in the last byte of `program`, as VPP may leave it
  d = DecodeShowVersionReply(b);
  EXPECT_EQ(d->program.size(), 0u);
}

TEST(WireRetval, Names) {
  EXPECT_EQ(RetvalToString(-54), "-54 NO_MATCHING_INTERFACE");
  EXPECT_EQ(RetvalToString(0), "0 OK");
}

}  // namespace
}  // namespace vcra::dataplane::vpp
