// The agent's HTTP endpoint (loopback by default): /healthz, /readyz, /metrics, /status.
// Runs cpp-httplib's own threads; every handler reads the agent through its thread-safe API.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace vcra::agent {

class HttpServer {
 public:
  explicit HttpServer(Agent& agent);
  ~HttpServer();
  // "127.0.0.1:9743", "[::1]:9743"; port 0 picks a free port (see port()).
  Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }

 private:
  Agent& agent_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Splits "host:port" / "[v6]:port". Errors on anything else.
StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& listen);

}  // namespace vcra::agent
