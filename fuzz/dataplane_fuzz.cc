// libFuzzer entry points for the bytes a dataplane sends us: VPP binary API frames (the
// reassembler and every reply decoder the client uses) and rtnetlink datagrams (dump walker,
// ack parser). Hostile input must give an error, never a crash, a leak or UB.
#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/linux/rtnl_codec.h"
#include "dataplane/vpp/wire.h"

namespace {

namespace vpp = vcra::dataplane::vpp;
namespace rtnl = vcra::dataplane::rtnl;

void FuzzVpp(std::span<const uint8_t> data) {
  // Stream side: split the input at arbitrary points as reads would.
  vpp::FrameReassembler reassembler(1 << 20);
  size_t cut = data.empty() ? 0 : data[0] % (data.size() + 1);
  reassembler.Feed(data.subspan(0, cut));
  reassembler.Feed(data.subspan(cut));
  for (int i = 0; i < 64; ++i) {
    auto next = reassembler.Next();
    if (!next.ok() || !next->has_value()) break;
  }
  // Message side: every decoder of what VPP sends the client.
  (void)vpp::PeekMsgId(data);
  (void)vpp::DecodeRetvalReply(data);
  (void)vpp::DecodeSockclntCreateReply(data);
  (void)vpp::DecodeSockclntDeleteReply(data);
  (void)vpp::DecodeControlPingReply(data);
  (void)vpp::DecodeShowVersionReply(data);
  (void)vpp::DecodeSwInterfaceDetails(data);
  (void)vpp::DecodeSwInterfaceEvent(data);
  (void)vpp::DecodeIpAddressDetails(data);
  (void)vpp::DecodeIpRouteAddDelReply(data);
  (void)vpp::DecodeIpRouteDetails(data, false);
  (void)vpp::DecodeIpRouteDetails(data, true);
  (void)vpp::DecodeFibSourceAddReply(data);
  // And what the simulator decodes from clients.
  (void)vpp::DecodeIpRouteAddDel(data, false);
  (void)vpp::DecodeIpRouteAddDel(data, true);
  (void)vpp::DecodeSockclntCreate(data);
}

void FuzzNetlink(std::span<const uint8_t> data) {
  rtnl::RouteFilter filter;
  filter.seq = 7;
  filter.portid = 4242;
  filter.owner.protocol = 212;
  filter.owner.table = 254;
  filter.uplink_index = 2;
  (void)rtnl::ParseRouteDump(data, filter);
  (void)rtnl::ParseAcks(data, 4242);
  (void)rtnl::WalkReplies(data, 7, 4242, [](const nlmsghdr& nlh) {
    (void)rtnl::ParseLinkMessage(nlh);
    (void)rtnl::ParseAddressMessage(nlh);
    return absl::OkStatus();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> input(data + 1, size - 1);
  // Netlink parsers expect the kernel's 4-byte alignment: copy into aligned storage.
  alignas(8) static uint8_t aligned[1 << 16];
  if (input.size() > sizeof aligned) input = input.subspan(0, sizeof aligned);
  std::copy(input.begin(), input.end(), aligned);
  std::span<const uint8_t> copy(aligned, input.size());
  if (data[0] & 1) {
    FuzzVpp(copy);
  } else {
    FuzzNetlink(copy);
  }
  return 0;
}
