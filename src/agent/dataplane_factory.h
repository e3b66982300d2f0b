// The one place that knows every dataplane backend: a plain switch, no registry.
#pragma once

#include <memory>

#include "agent/options.h"
#include "dataplane/dataplane.h"

namespace vcra::agent {

StatusOr<std::unique_ptr<dataplane::Dataplane>> MakeDataplane(const Options& options);

}  // namespace vcra::agent
