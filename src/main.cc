// vpp-calico-route-agent: flags -> Agent; signals -> Agent::Stop. Routes stay in the dataplane
// when the agent exits (restart doctrine in docs/design.md).
#include <signal.h>

#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "agent/agent.h"
#include "agent/dataplane_factory.h"
#include "agent/http_server.h"
#include "agent/options.h"
#include "common/log.h"

namespace {

int RunStatusCommand(const vcra::agent::Options& options) {
  vcra::agent::StatusCommand command;
  command.listen = options.http_listen;
  command.query = options.status_query;
  command.all_pages = options.status_all_pages;
  std::string out, err;
  int code = vcra::agent::RunStatusCommand(command, out, err);
  std::fputs(out.c_str(), stdout);
  std::fputs(err.c_str(), stderr);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string help;
  auto options = vcra::agent::ParseOptions(argc, argv, &help);
  if (!options.ok()) {
    std::fprintf(stderr, "error: %s\nTry --help.\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  if (options->help_shown) {
    std::fputs(help.c_str(), stdout);
    return 0;
  }
  vcra::SetupLogging(
      options->log_format == "json" ? vcra::LogFormat::kJson : vcra::LogFormat::kText,
      options->log_level);
  if (options->status_command) return RunStatusCommand(*options);

  // Signals are taken by one thread with sigwait, so no handler ever runs inside agent code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<vcra::dataplane::Dataplane> dataplane;
  if (!options->agent.dry_run) {
    auto made = vcra::agent::MakeDataplane(*options);
    if (!made.ok()) {
      LOG_ERROR("{}", made.status().message());
      return 1;
    }
    dataplane = std::move(*made);
  }
  vcra::agent::Agent agent(options->agent, std::move(dataplane));
  // /status (routes, peers, errors) only on --http-listen (loopback); --metrics-listen (the
  // node's address, for a cluster's Prometheus) serves only /metrics and the probes.
  using Endpoints = vcra::agent::HttpServer::Endpoints;
  std::vector<std::unique_ptr<vcra::agent::HttpServer>> http_servers;
  if (!options->agent.dry_run) {
    for (auto [listen, endpoints] :
         {std::pair{options->http_listen, Endpoints::kAll},
          std::pair{options->metrics_listen, Endpoints::kMetricsAndProbes}}) {
      if (listen.empty()) continue;
      auto server = std::make_unique<vcra::agent::HttpServer>(agent, endpoints);
      if (auto s = server->Start(listen); !s.ok()) {
        LOG_ERROR("{}", s.message());
        return 1;
      }
      http_servers.push_back(std::move(server));
    }
  }
  std::thread signal_thread([&agent, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != 0) {
      LOG_INFO("signal {} received: stopping, routes stay in place", sig);
      agent.Stop();
    }
  });
  auto status = agent.Run();
  for (auto& server : http_servers) server->Stop();
  // Wake the signal thread if the agent stopped by itself (dry run).
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (!status.ok()) {
    LOG_ERROR("{}", status.message());
    return 1;
  }
  return 0;
}
