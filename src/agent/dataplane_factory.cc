#include "agent/dataplane_factory.h"

#include "dataplane/linux/netlink_dataplane.h"

namespace vcra::agent {

StatusOr<std::unique_ptr<dataplane::Dataplane>> MakeDataplane(const Options& options) {
  if (options.dataplane == "linux") {
    dataplane::NetlinkDataplaneConfig config;
    config.route_protocol = static_cast<uint8_t>(options.route_protocol);
    config.route_table = options.route_table;
    RETURN_IF_ERROR(dataplane::NetlinkDataplane::ValidateConfig(config));
    return std::make_unique<dataplane::NetlinkDataplane>(config);
  }
  return absl::UnimplementedError("dataplane '" + options.dataplane + "' is not available yet");
}

}  // namespace vcra::agent
