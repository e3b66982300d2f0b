#include "tests/support/grpc_proxy.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/child_process.h"
#include "tests/support/etcd_server.h"

namespace vcra::testing {

StatusOr<std::unique_ptr<GrpcProxy>> GrpcProxy::Start(std::vector<std::string> etcd_endpoints) {
  if (access(EtcdServer::kEtcdBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(EtcdServer::kEtcdBinary, " is not installed (apt-get install etcd-server)"));
  }
  if (etcd_endpoints.empty()) return absl::InvalidArgumentError("GrpcProxy: no etcd endpoints");
  std::unique_ptr<GrpcProxy> proxy(new GrpcProxy());
  proxy->etcd_endpoints_ = std::move(etcd_endpoints);
  char tmpl[] = "/tmp/vcra-etcd-proxy-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  proxy->dir_ = tmpl;
  std::ofstream(proxy->dir_ + "/owner.pid") << getpid() << "\n";
  proxy->log_file_ = proxy->dir_ + "/proxy.log";
  ASSIGN_OR_RETURN(std::vector<int> ports, FreeLoopbackPorts(1));
  proxy->port_ = ports[0];
  RETURN_IF_ERROR(proxy->Start());
  return proxy;
}

GrpcProxy::~GrpcProxy() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string GrpcProxy::endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

datastore::EtcdConfig GrpcProxy::ClientConfig() const {
  datastore::EtcdConfig config;
  config.endpoints = {endpoint()};
  return config;
}

Status GrpcProxy::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("grpc-proxy is running");
  std::vector<std::string> args = {
      EtcdServer::kEtcdBinary,
      "grpc-proxy",
      "start",
      "--endpoints=" + absl::StrJoin(etcd_endpoints_, ","),
      absl::StrCat("--listen-addr=127.0.0.1:", port_),
      absl::StrCat("--advertise-client-url=127.0.0.1:", port_),
  };
  ASSIGN_OR_RETURN(pid_t pid, SpawnChild(std::move(args), log_file_, /*own_process_group=*/true));
  pid_ = pid;
  Status ready = WaitReady();
  if (!ready.ok()) Stop();
  return ready;
}

Status GrpcProxy::WaitReady() {
  datastore::EtcdConfig config = ClientConfig();
  config.dial_timeout = std::chrono::milliseconds(500);
  config.request_timeout = std::chrono::milliseconds(1000);
  ASSIGN_OR_RETURN(auto client, datastore::EtcdClient::Create(config));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("grpc-proxy exited at startup:\n", LogTail()));
    }
    auto r = client->RangePrefix("/vcra-ready-probe/");
    if (r.ok()) return absl::OkStatus();
    last = std::string(r.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("grpc-proxy not ready within 20 s: ", last, "\n", LogTail()));
}

void GrpcProxy::Stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      kill(-pid_, SIGKILL);  // anything else left in its group
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string GrpcProxy::LogTail(int lines) const {
  std::ifstream in(log_file_);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  return absl::StrJoin(tail, "\n");
}

}  // namespace vcra::testing
