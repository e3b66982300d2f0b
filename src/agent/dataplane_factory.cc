#include "agent/dataplane_factory.h"

#include "dataplane/linux/netlink_dataplane.h"
#include "dataplane/vpp/vpp_dataplane.h"

namespace vcra::agent {

StatusOr<std::unique_ptr<dataplane::Dataplane>> MakeDataplane(const Options& options) {
  if (options.dataplane == "linux") {
    dataplane::NetlinkDataplaneConfig config;
    config.route_protocol = static_cast<uint8_t>(options.route_protocol);
    config.route_table = options.route_table;
    config.route_metric = options.route_metric;
    RETURN_IF_ERROR(dataplane::NetlinkDataplane::ValidateConfig(config));
    return std::make_unique<dataplane::NetlinkDataplane>(config);
  }
  if (options.dataplane == "vpp") {
    dataplane::vpp::VppDataplaneConfig config;
    config.api_socket = options.vpp_api_socket;
    return std::make_unique<dataplane::vpp::VppDataplane>(config);
  }
  return absl::InvalidArgumentError("dataplane '" + options.dataplane +
                                    "' is unknown (linux or vpp)");
}

}  // namespace vcra::agent
