// GrpcProxy: etcd's own gRPC proxy (`etcd grpc-proxy start`, shipped in Debian's etcd-server)
// in front of an EtcdServer, for tests, on a free 127.0.0.1 port.
//
// Like the members it runs in its own process group with PR_SET_PDEATHSIG(SIGKILL), so it dies
// with the test even when the test crashes; the destructor stops it. The port is kept across
// Stop()/Start(), so clients pointed at endpoint() reconnect to the restarted proxy.
// NOTE: start and restart from the test's main thread (PDEATHSIG follows the forking thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "datastore/etcd_client.h"

namespace vcra::testing {

class GrpcProxy {
 public:
  // Proxies to `etcd_endpoints` ("http://127.0.0.1:port", plain text only) and waits until a
  // Range through the proxy is answered. Fails with FailedPrecondition when etcd is missing.
  static StatusOr<std::unique_ptr<GrpcProxy>> Start(std::vector<std::string> etcd_endpoints);

  ~GrpcProxy();
  GrpcProxy(const GrpcProxy&) = delete;
  GrpcProxy& operator=(const GrpcProxy&) = delete;

  // "http://127.0.0.1:port", what agents get as their only etcd endpoint.
  std::string endpoint() const;
  datastore::EtcdConfig ClientConfig() const;

  // Stops the proxy (SIGTERM, SIGKILL after 5 s) and waits until it is gone.
  void Stop();
  // Starts it again on the same port and waits until it answers.
  Status Start();
  bool IsRunning() const { return pid_ > 0; }
  std::string LogTail(int lines = 30) const;

 private:
  GrpcProxy() = default;
  Status WaitReady();

  std::vector<std::string> etcd_endpoints_;
  std::string dir_;
  std::string log_file_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace vcra::testing
