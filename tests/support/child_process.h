// Starting helper processes (etcd, the agent, ip) from tests and the benchmark so that they never
// outlive the process that started them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace vcra::testing {

// Forks and execs args[0] (an absolute path) with stdin from /dev/null and stdout and stderr
// appended to `log_file` (/dev/null when empty). The child gets PR_SET_PDEATHSIG(SIGKILL) and
// an empty signal mask; with `own_process_group` it leads a new process group, so kill(-pid)
// reaches everything it starts. Between fork and exec only async-signal-safe calls are made,
// as a threaded parent requires.
// NOTE: PDEATHSIG fires when the forking *thread* exits: spawn from a long-lived thread.
StatusOr<pid_t> SpawnChild(std::vector<std::string> args, const std::string& log_file,
                           bool own_process_group);

}  // namespace vcra::testing
