#include "agent/http_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/log.h"

// Linux's value (linux/in6.h, since 4.15); glibc's headers do not name it.
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace vcra::agent {

StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& listen) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      return absl::InvalidArgumentError("bad listen address: " + listen);
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError("bad listen address: " + listen);
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  int port = -1;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 0 || port > 65535 ||
      host.empty())
    return absl::InvalidArgumentError("bad listen address: " + listen);
  return std::make_pair(host, port);
}

HttpServer::HttpServer(Agent& agent, Endpoints endpoints) : agent_(agent), endpoints_(endpoints) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& listen) {
  ASSIGN_OR_RETURN(auto host_port, ParseHostPort(listen));
  server_ = std::make_unique<httplib::Server>();
  server_->set_payload_max_length(4096);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_max_count(10);
  // An idle keep-alive connection (a Prometheus scraper) would otherwise hold Stop() for the
  // default 5 s.
  server_->set_keep_alive_timeout(1);
  AddProbeAndMetricsHandlers();
  if (endpoints_ == Endpoints::kAll) {
    AddStatusHandler();
  } else {
    // The metrics listener names the node's address, which may not exist yet: the agent itself
    // adds it to the uplink (--uplink-address) after the listeners start, and a node's address
    // can come late at boot. FREEBIND lets the bind succeed now and serve once it exists.
    server_->set_socket_options([](int fd) {
      int on = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof on);
      setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &on, sizeof on);
    });
  }
  int port = host_port.second;
  if (port == 0) {
    port = server_->bind_to_any_port(host_port.first);
    if (port < 0) return absl::UnavailableError("cannot bind HTTP endpoint " + listen);
  } else if (!server_->bind_to_port(host_port.first, port)) {
    return absl::UnavailableError("cannot bind HTTP endpoint " + listen);
  }
  port_ = port;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  LOG_INFO("HTTP endpoint on {}:{} ({})", host_port.first, port_,
           endpoints_ == Endpoints::kAll ? "/healthz /readyz /metrics /status"
                                         : "metrics only: /healthz /readyz /metrics");
  return absl::OkStatus();
}

void HttpServer::AddProbeAndMetricsHandlers() {
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    // Alive means the loop thread still answers.
    if (agent_.GetStatus(std::chrono::seconds(2), /*details=*/false)) {
      res.set_content("ok\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content("agent loop not responding\n", "text/plain");
    }
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (agent_.Ready()) {
      res.set_content("ready\n", "text/plain");
      return;
    }
    res.status = 503;
    auto s = agent_.GetStatus(std::chrono::seconds(2), /*details=*/false);
    std::string why = "not ready";
    if (s) {
      why = fmt::format(
          "not ready: etcd synced={} connected={}, dataplane connected={}, "
          "first programming done={}",
          s->datastore_synced, s->etcd_connected, s->dataplane_connected,
          s->first_programming_done);
    }
    res.set_content(why + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent_.RenderMetrics(), "text/plain; version=0.0.4");
  });
}

void HttpServer::AddStatusHandler() {
  server_->Get("/status", [this](const httplib::Request& req, httplib::Response& res) {
    // The parameters are someone else's text: parsed and bounded before the loop sees them.
    std::vector<std::pair<std::string, std::string>> params(req.params.begin(), req.params.end());
    auto query = ParseStatusQuery(params);
    if (!query.ok()) {
      res.status = 400;
      nlohmann::json error = {{"error", std::string(query.status().message())}};
      res.set_content(error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                      "application/json");
      return;
    }
    auto s = agent_.GetStatus(std::chrono::seconds(5), *query);
    if (!s) {
      res.status = 503;
      res.set_content("{\"error\":\"agent loop not responding\"}\n", "application/json");
      return;
    }
    // The cursor also as a header, so that a client following pages need not parse the body.
    if (!s->page.next_after.empty()) res.set_header("X-Vcra-Next-After", s->page.next_after);
    if (query->text) {
      res.set_content(s->ToText(/*continuation=*/query->after.has_value()), "text/plain");
    } else {
      res.set_content(s->ToJson() + "\n", "application/json");
    }
  });
}

int RunStatusCommand(const StatusCommand& command, std::string& out, std::string& err) {
  auto host_port = ParseHostPort(command.listen);
  if (!host_port.ok()) {
    err += std::string(host_port.status().message()) + "\n";
    return 2;
  }
  httplib::Client client(host_port->first, host_port->second);
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(10, 0);
  StatusQuery query = command.query;
  // --all: one request per page, each after the last prefix of the one before. Bounded: a
  // cursor that does not move, or more pages than the largest table could fill, ends it.
  const size_t max_pages = command.all_pages ? 1 + 10'000'000 / query.limit : 1;
  for (size_t page = 0; page < max_pages; ++page) {
    std::string path = "/status?format=text";
    if (auto params = query.ToQueryString(); !params.empty()) path += "&" + params;
    auto res = client.Get(path);
    if (!res) {
      err += fmt::format("no agent answers on {}: {}\n", command.listen,
                         httplib::to_string(res.error()));
      return 1;
    }
    out += res->body;
    if (res->status != 200) return 1;
    std::string next = res->get_header_value("X-Vcra-Next-After");
    if (next.empty()) return 0;
    auto cursor = net::IpPrefix::Parse(next, /*strict=*/true);
    if (!cursor || (query.after && !(*query.after < *cursor))) {
      err += "the agent's page cursor does not advance: " + next.substr(0, 64) + "\n";
      return 1;
    }
    query.after = cursor;
  }
  return 0;
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vcra::agent
