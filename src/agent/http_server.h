// The agent's HTTP endpoints. The full one (loopback by default) serves /healthz, /readyz,
// /metrics and /status; the metrics-only one (--metrics-listen, meant for the node's address so
// that a cluster's Prometheus can scrape it, like Felix's metrics port) serves the first three and
// never /status, which lists routes, peers and errors and stays on loopback.
// Runs cpp-httplib's own threads; every handler reads the agent through its thread-safe API.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/status_query.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace vcra::agent {

class HttpServer {
 public:
  enum class Endpoints { kAll, kMetricsAndProbes };
  explicit HttpServer(Agent& agent, Endpoints endpoints = Endpoints::kAll);
  ~HttpServer();
  // "127.0.0.1:9743", "[::1]:9743"; port 0 picks a free port (see port()).
  Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }

 private:
  void AddProbeAndMetricsHandlers();
  void AddStatusHandler();

  Agent& agent_;
  Endpoints endpoints_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The status subcommand: asks the agent listening on `listen` for the query's page (or, with
// all_pages, every page in turn) as text. Appends the answer to `out` and what went wrong to
// `err`; returns the exit code (0 ok, 1 no or a failed answer, 2 a bad address).
struct StatusCommand {
  std::string listen = "127.0.0.1:9743";
  StatusQuery query;
  bool all_pages = false;
};
int RunStatusCommand(const StatusCommand& command, std::string& out, std::string& err);

// Splits "host:port" / "[v6]:port". Errors on anything else.
StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& listen);

}  // namespace vcra::agent
