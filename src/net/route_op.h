// RouteOp, OpType, OpResult: the unit of work between the reconciler (routing/) and a
// dataplane (dataplane/). They live here, below both, so that neither layer includes the other.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "net/ip.h"

namespace vcra::net {

enum class OpType : uint8_t {
  kUpsert,  // add, or replace the next hop of an existing route without a gap
  kDelete,  // deleting a route that is already gone succeeds
};

// A self-contained op; the result echoes `seq` so that results of superseded ops can be dropped.
struct RouteOp {
  uint64_t seq = 0;
  OpType type = OpType::kUpsert;
  Route route;
  // Upsert only: the caller holds that a route of ours is at this prefix (its last dump of the
  // dataplane and its acknowledged ops say so). A dataplane whose writes could take over someone
  // else's route (the kernel's replace) replaces in place only then, and otherwise creates
  // exclusively. The reconciler already keeps that knowledge; a second copy in the dataplane
  // would be a set of every prefix (3 MiB at 100k routes).
  bool replaces_ours = false;
};

// OK, or why the op failed. UNAVAILABLE: the connection to the dataplane is gone.
// ALREADY_EXISTS (upsert only): the prefix is held by a route that is not ours; nothing changed.
struct OpResult {
  uint64_t seq = 0;
  Status status;
};

}  // namespace vcra::net
