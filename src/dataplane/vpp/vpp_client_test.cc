#include "dataplane/vpp/vpp_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "dataplane/vpp/sim/vpp_sim.h"
#include "tests/support/wait.h"

namespace vcra::dataplane::vpp {
namespace {

using sim::SimOptions;
using sim::VppSim;

net::IpAddress Ip(std::string_view s) { return *net::IpAddress::Parse(s); }

std::string TempSocket(const std::string& tag) {
  return "/tmp/vcra-vppc-" + tag + "-" + std::to_string(::getpid()) + ".sock";
}

using vcra::testing::WaitFor;

class VppClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimOptions o;
    o.socket_path = TempSocket(::testing::UnitTest::GetInstance()->current_test_info()->name());
    o.seed = 42;
    sim_ = std::make_unique<VppSim>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }

  VppClientOptions Options() {
    VppClientOptions o;
    o.socket_path = sim_->socket_path();
    o.request_timeout = std::chrono::milliseconds(3000);
    return o;
  }

  Bytes RouteAdd(VppClient& c, const std::string& prefix, bool is_add = true) {
    IpRouteAddDel m;
    m.is_add = is_add;
    m.route.prefix = WirePrefix::From(*net::IpPrefix::Parse(prefix));
    if (is_add) m.route.paths = {FibPath::Via(Ip("172.16.0.2"), 1)};
    return EncodeIpRouteAddDel(*c.MsgId(msg::kIpRouteAddDel), m, false);
  }

  std::unique_ptr<VppSim> sim_;
};

TEST_F(VppClientTest, HandshakeBuildsIdTableFromVpp) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  EXPECT_EQ(c.handle(), 0x80000001u);
  EXPECT_EQ(*c.MsgId(msg::kControlPing), 23);  // memclnt ids are fixed
  auto id = c.MsgId(msg::kIpRouteAddDel);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, *sim_->MsgId(msg::kIpRouteAddDel));
  EXPECT_NE(*id, 362);  // the real 26.06 id: shuffled away on purpose
  EXPECT_EQ(c.vpp_version(), "26.06-sim");
  EXPECT_FALSE(c.MsgId("no_such_message_12345678").ok());
}

TEST_F(VppClientTest, MissingOrDifferentCrcNamesEveryMessageAndTheVersion) {
  sim_->OverrideNameCrc("ip_route_add_del", "ip_route_add_del_deadbeef");
  sim_->OverrideNameCrc("ip_route_add_del_v2", "");
  VppClientOptions o = Options();
  o.required_messages = {std::string(msg::kIpRouteAddDel), std::string(msg::kIpRouteAddDelV2),
                         std::string(msg::kIpRouteDump)};
  VppClient c(o);
  Status st = c.Connect();
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("VPP 26.06-sim lacks ip_route_add_del_b8ecfe0d (it has "
                              "ip_route_add_del_deadbeef); ip_route_add_del_v2_521ef330"),
            std::string::npos)
      << st;
  EXPECT_EQ(st.message().find("ip_route_dump"), std::string::npos) << st;
  EXPECT_FALSE(c.connected());
}

TEST_F(VppClientTest, CallAndDump) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  auto r = c.Call(EncodeBareRequest(*c.MsgId(msg::kControlPing), {}), msg::kControlPingReply);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(DecodeControlPingReply(*r)->vpe_pid, 4242u);
  auto d =
      c.Dump(EncodeSwInterfaceDump(*c.MsgId(msg::kSwInterfaceDump), {}), msg::kSwInterfaceDetails);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(DecodeSwInterfaceDetails((*d)[1])->interface_name, "host-eth0");
  // A dump that matches nothing: only the control_ping_reply comes back.
  SwInterfaceDump none;
  none.sw_if_index = 77;
  d = c.Dump(EncodeSwInterfaceDump(*c.MsgId(msg::kSwInterfaceDump), none),
             msg::kSwInterfaceDetails);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->empty());
}

TEST_F(VppClientTest, DroppedRequestFailsFastWhenALaterReplyArrives) {
  VppClientOptions o = Options();
  o.request_timeout = std::chrono::milliseconds(60000);  // must not be what ends the wait
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  Bytes truncated = RouteAdd(c, "10.9.0.0/26");
  truncated.resize(30);  // VPP drops it without a reply (transcript step 11)
  auto start = std::chrono::steady_clock::now();
  auto res = c.CallMany({truncated, RouteAdd(c, "10.9.1.0/26")}, msg::kIpRouteAddDelReply);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].status().code(), absl::StatusCode::kInternal) << res[0].status();
  ASSERT_TRUE(res[1].ok()) << res[1].status();
  EXPECT_EQ(DecodeIpRouteAddDelReply(*res[1])->retval, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST_F(VppClientTest, TenThousandPipelinedRequestsWithinTheWindow) {
  VppClientOptions o = Options();
  o.max_outstanding = 256;
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  std::vector<Bytes> reqs;
  for (int i = 0; i < 10000; ++i) {
    reqs.push_back(RouteAdd(c, net::IpPrefix(Ip("10.128.0.0").Plus(i), 32).ToString()));
  }
  size_t before = sim_->Routes(false).size();
  auto res = c.CallMany(std::move(reqs), msg::kIpRouteAddDelReply);
  ASSERT_EQ(res.size(), 10000u);
  for (const auto& r : res) {
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(DecodeIpRouteAddDelReply(*r)->retval, 0);
  }
  EXPECT_LE(c.max_in_flight_seen(), 256u);
  EXPECT_GT(c.max_in_flight_seen(), 1u);
  EXPECT_EQ(sim_->Routes(false).size(), before + 10000);
}

TEST_F(VppClientTest, WindowIsNeverExceededWhileVppIsStalled) {
  VppClientOptions o = Options();
  o.max_outstanding = 64;
  o.request_timeout = std::chrono::milliseconds(20000);
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  uint16_t ping = *c.MsgId(msg::kControlPing);
  sim_->SetPaused(true);
  std::vector<StatusOr<Bytes>> res;
  std::thread t([&] {
    std::vector<Bytes> reqs(1000, EncodeBareRequest(ping, {}));
    res = c.CallMany(std::move(reqs), msg::kControlPingReply);
  });
  EXPECT_TRUE(WaitFor([&] { return c.max_in_flight_seen() == 64; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(c.max_in_flight_seen(), 64u);
  sim_->SetPaused(false);
  t.join();
  ASSERT_EQ(res.size(), 1000u);
  for (const auto& r : res) EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(c.max_in_flight_seen(), 64u);
}

// StartMany sends what the window takes and returns without waiting (one thread can then fill
// other connections); FinishMany sends the rest as the window opens and returns every result.
TEST_F(VppClientTest, StartManyFillsTheWindowWithoutWaitingFinishManySendsTheRest) {
  VppClientOptions o = Options();
  o.max_outstanding = 64;
  o.request_timeout = std::chrono::milliseconds(20000);
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  size_t before = sim_->Routes(false).size();
  sim_->SetPaused(true);  // nothing is answered: StartMany must not wait for replies
  std::vector<Bytes> reqs;
  for (int i = 0; i < 200; ++i) {
    reqs.push_back(RouteAdd(c, net::IpPrefix(Ip("10.129.0.0").Plus(i), 32).ToString()));
  }
  auto call = c.StartMany(std::move(reqs), msg::kIpRouteAddDelReply);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->sent.size(), 64u);
  EXPECT_EQ(c.max_in_flight_seen(), 64u);
  sim_->SetPaused(false);
  auto res = c.FinishMany(std::move(call));
  ASSERT_EQ(res.size(), 200u);
  for (const auto& r : res) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(DecodeIpRouteAddDelReply(*r)->retval, 0);
  }
  EXPECT_EQ(c.max_in_flight_seen(), 64u);
  EXPECT_EQ(sim_->Routes(false).size(), before + 200);
}

// An unknown reply name fails every request of the batch, none is sent.
TEST_F(VppClientTest, StartManyWithAnUnknownReplyFailsEveryRequest) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  size_t in_flight_before = c.max_in_flight_seen();  // Connect's own calls
  size_t routes_before = sim_->Routes(false).size();
  std::vector<Bytes> reqs(3, RouteAdd(c, "10.130.0.0/26"));
  auto res = c.FinishMany(c.StartMany(std::move(reqs), "no_such_reply_12345678"));
  ASSERT_EQ(res.size(), 3u);
  for (const auto& r : res) EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c.max_in_flight_seen(), in_flight_before);
  EXPECT_EQ(sim_->Routes(false).size(), routes_before);  // nothing was sent
}

// The reader pauses between reads while many requests are unanswered; Close() must still end
// that pause at once, and every unanswered request fails UNAVAILABLE (none hangs).
TEST_F(VppClientTest, CloseEndsTheReplyBatchingPause) {
  VppClientOptions o = Options();
  o.reply_batching_min_outstanding = 1;
  o.reply_batching_pause = std::chrono::seconds(60);  // far beyond the wait below
  o.request_timeout = std::chrono::milliseconds(120000);
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  sim_->SetReplyDelay(std::chrono::milliseconds(50));  // replies trickle in one by one
  std::vector<Bytes> reqs;
  for (int i = 0; i < 20; ++i) {
    reqs.push_back(RouteAdd(c, net::IpPrefix(Ip("10.131.0.0").Plus(i), 32).ToString()));
  }
  std::atomic<bool> finished{false};
  std::vector<StatusOr<Bytes>> res;
  std::thread t([&] {
    res = c.CallMany(std::move(reqs), msg::kIpRouteAddDelReply);
    finished = true;
  });
  // The simulator answers all 20 within about a second; the reader read the first reply and
  // then paused with 19 unanswered, so the batch is not finished after 1.5 s.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(finished);
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    c.Close();
    closed = true;
  });
  EXPECT_TRUE(WaitFor([&] { return closed.load() && finished.load(); }));
  closer.join();
  t.join();
  ASSERT_EQ(res.size(), 20u);
  size_t unavailable = 0;
  for (const auto& r : res) unavailable += absl::IsUnavailable(r.status());
  EXPECT_GE(unavailable, 1u);  // those never read are not reported as done
  sim_->SetReplyDelay(std::chrono::milliseconds(0));
}

TEST_F(VppClientTest, PerRequestTimeout) {
  VppClientOptions o = Options();
  o.request_timeout = std::chrono::milliseconds(100);
  VppClient c(o);
  ASSERT_TRUE(c.Connect().ok());
  sim_->SetReplyDelay(std::chrono::milliseconds(400));
  auto r = c.Call(EncodeBareRequest(*c.MsgId(msg::kControlPing), {}), msg::kControlPingReply);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  sim_->SetReplyDelay(std::chrono::milliseconds(0));
}

TEST_F(VppClientTest, DisconnectIsUnavailableAndReconnectGetsNewIds) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  uint16_t old_id = *c.MsgId(msg::kIpRouteAddDel);
  sim_->Restart();
  EXPECT_TRUE(WaitFor([&] { return !c.connected(); }));
  auto r = c.Call(EncodeBareRequest(23, {}), msg::kControlPingReply);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  ASSERT_TRUE(c.Connect().ok());
  uint16_t new_id = *c.MsgId(msg::kIpRouteAddDel);
  EXPECT_EQ(new_id, *sim_->MsgId(msg::kIpRouteAddDel));
  EXPECT_NE(new_id, old_id);
  auto res = c.CallMany({RouteAdd(c, "10.7.0.0/26")}, msg::kIpRouteAddDelReply);
  EXPECT_TRUE(res[0].ok());
}

TEST_F(VppClientTest, EventsGoToTheHandler) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  std::mutex mu;
  std::vector<SwInterfaceEvent> events;
  c.SetEventHandler([&](const SwInterfaceEvent& e) {
    std::lock_guard l(mu);
    events.push_back(e);
  });
  WantInterfaceEvents want;
  want.pid = 0x12345678;
  auto r = c.Call(EncodeWantInterfaceEvents(*c.MsgId(msg::kWantInterfaceEvents), want),
                  msg::kWantInterfaceEventsReply);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(DecodeRetvalReply(*r)->retval, 0);
  SwInterfaceSetFlags up;
  up.sw_if_index = 1;
  up.flags = kIfAdminUp;
  r = c.Call(EncodeSwInterfaceSetFlags(*c.MsgId(msg::kSwInterfaceSetFlags), up),
             msg::kSwInterfaceSetFlagsReply);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard l(mu);
    return !events.empty();
  }));
  std::lock_guard l(mu);
  EXPECT_EQ(events[0].sw_if_index, 1u);
  EXPECT_EQ(events[0].flags, kIfAdminUp | kIfLinkUp);
  EXPECT_EQ(events[0].pid, 0x12345678u);
  EXPECT_EQ(events[0].client_index, c.handle());
}

TEST_F(VppClientTest, CleanCloseSendsSockclntDelete) {
  VppClient c(Options());
  ASSERT_TRUE(c.Connect().ok());
  EXPECT_TRUE(WaitFor([&] { return sim_->connection_count() == 1; }));
  uint64_t before = sim_->messages_handled();
  c.Close();
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(sim_->messages_handled(), before + 1);  // the sockclnt_delete
  EXPECT_TRUE(WaitFor([&] { return sim_->connection_count() == 0; }));
}

TEST_F(VppClientTest, ConnectToNothingIsUnavailable) {
  VppClientOptions o = Options();
  o.socket_path = "/tmp/vcra-no-such-vpp.sock";
  VppClient c(o);
  EXPECT_EQ(c.Connect().code(), absl::StatusCode::kUnavailable);
}

// The simulator reassembles requests that arrive one byte per write(), as VPP does.
TEST_F(VppClientTest, SimulatorReassemblesByteByByteWrites) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sim_->socket_path().c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  Bytes out = Frame(EncodeSockclntCreate({7, "bytewise"}));
  AppendFrame(EncodeBareRequest(23, {0x80000001, 8}), &out);
  for (uint8_t b : out) {
    ASSERT_EQ(::write(fd, &b, 1), 1);
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  FrameReassembler rx;
  std::vector<Bytes> got;
  uint8_t buf[4096];
  while (got.size() < 2) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    rx.Feed(std::span(buf, size_t(n)));
    while (auto m = *rx.Next()) got.push_back(*m);
  }
  EXPECT_EQ(*PeekMsgId(got[0]), kSockclntCreateReplyId);
  EXPECT_EQ(DecodeControlPingReply(got[1])->context, 8u);
  ::close(fd);
}

}  // namespace
}  // namespace vcra::dataplane::vpp
