// The message table (id, name_crc) of a real VPP 26.06-release, in the wire order of its
// sockclnt_create_reply, so that the simulator can reproduce that frame byte for byte.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace vcra::dataplane::vpp::sim {

const std::vector<std::pair<uint16_t, std::string_view>>& MessageTable2606();

}  // namespace vcra::dataplane::vpp::sim
