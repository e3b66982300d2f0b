// EtcdServer: a real etcd (/usr/bin/etcd) for tests, one member or a small cluster, on free
// 127.0.0.1 ports with a throwaway data directory.
//
// Every member runs in its own process group with PR_SET_PDEATHSIG(SIGKILL), so etcd dies with
// the test even when the test crashes. The destructor stops all members (SIGTERM, then SIGKILL)
// and removes the data directory.
//
// NOTE: PR_SET_PDEATHSIG fires when the *thread* that forked exits; create and restart members
// from the test's main thread. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "datastore/etcd_client.h"

namespace vcra::testing {

// Free 127.0.0.1 TCP ports: binds port 0 and reads what the kernel chose.
StatusOr<std::vector<int>> FreeLoopbackPorts(int count);

struct EtcdServerOptions {
  int members = 1;
  // Appended to every member's command line, e.g. {"--auth-token-ttl=1"}.
  std::vector<std::string> extra_args;
  // TLS: when server_cert_file is set, clients must use https:// and present a certificate
  // signed by ca_file (the server certificate must be valid for 127.0.0.1). The client files
  // are what ClientConfig() hands out and what the readiness check uses.
  std::string ca_file;
  std::string server_cert_file;
  std::string server_key_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::chrono::seconds ready_timeout{20};
};

class EtcdServer {
 public:
  static constexpr const char* kEtcdBinary = "/usr/bin/etcd";

  // Fails (and tests should GTEST_SKIP) when /usr/bin/etcd is missing.
  static StatusOr<std::unique_ptr<EtcdServer>> Start(int members = 1);
  static StatusOr<std::unique_ptr<EtcdServer>> Start(const EtcdServerOptions& options);

  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // "http://127.0.0.1:port" (https with TLS), one per member, in member order.
  std::vector<std::string> endpoints() const;
  std::string endpoint(int member) const;
  int members() const { return static_cast<int>(members_.size()); }
  // A client configuration for all members (with the TLS client files when TLS is on).
  datastore::EtcdConfig ClientConfig() const;

  // Stops member i (SIGTERM, SIGKILL after 5 s) and waits for it to be gone.
  Status StopMember(int member);
  // Starts member i again with the same data directory and ports, and waits until it answers.
  Status StartMember(int member);
  bool IsRunning(int member) const;

  // The member that is the raft leader now (etcd's Maintenance.Status RPC, through etcdctl),
  // or an error when no running member reports one.
  StatusOr<int> LeaderMember() const;

  // Compacts history up to `revision` (KV.Compact through our client).
  Status Compact(int64_t revision);

  // Adds user `user` with role root and enables authentication (through etcdctl). After this
  // every client needs the credentials.
  Status EnableAuth(const std::string& user, const std::string& password);

  // The last lines of member i's log, for failure messages.
  std::string LogTail(int member, int lines = 30) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    std::string log_file;
    pid_t pid = -1;
  };

  EtcdServer() = default;
  Status Spawn(Member& m);
  Status WaitReady(int member);
  void Kill(Member& m);
  std::string Scheme() const { return options_.server_cert_file.empty() ? "http" : "https"; }

  EtcdServerOptions options_;
  std::string base_dir_;
  std::string cluster_token_;
  std::vector<Member> members_;
};

}  // namespace vcra::testing
