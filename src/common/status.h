// Errors are values: anything the environment can cause (etcd down, netlink EEXIST, a VPP
// disconnect, bad JSON) is an absl::Status. Broken internal invariants abort (VCRA_CHECK).
#pragma once

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vcra {

using absl::Status;
using absl::StatusOr;

}  // namespace vcra

#define VCRA_CONCAT_INNER(a, b) a##b
#define VCRA_CONCAT(a, b) VCRA_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status vcra_status_ = (expr);        \
    if (!vcra_status_.ok()) return vcra_status_; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(VCRA_CONCAT(vcra_statusor_, __LINE__), lhs, expr)

// An internal invariant; failing it is a bug, never a consequence of input.
#define VCRA_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
