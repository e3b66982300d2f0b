// vpp-api-sim: the VPP API simulator as a standalone server, for manual use and the demo.
//   vpp-api-sim --socket /tmp/api.sock [--real-ids] [--seed N] [--uplink host-eth0]
#include <csignal>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "dataplane/vpp/sim/vpp_sim.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"VPP binary API simulator (speaks the VPP 26.06 socket protocol)"};
  std::string socket_path;
  bool real_ids = false;
  uint32_t seed = 1;
  std::string uplink = "host-eth0";
  bool transcript = false;
  app.add_option("--socket", socket_path, "UNIX socket path to listen on")->required();
  app.add_flag("--real-ids", real_ids, "use the message ids of the real VPP 26.06 (no shuffle)");
  app.add_option("--seed", seed, "seed of the message-id shuffle");
  app.add_option("--uplink", uplink, "name of the uplink interface (sw_if_index 1)");
  app.add_flag("--transcript", transcript,
               "start in the state of vpp-transcripts/v26.06 (local0, host-up0, loop0)");
  CLI11_PARSE(app, argc, argv);

  using vcra::dataplane::vpp::sim::SimOptions;
  SimOptions options;
  if (transcript) {
    options = SimOptions::Transcript2606(socket_path);
  } else {
    options.socket_path = socket_path;
    options.interfaces = SimOptions::DefaultInterfaces();
    options.interfaces[1].name = uplink;
  }
  options.real_ids = options.real_ids || real_ids;
  options.seed = seed;
  vcra::dataplane::vpp::sim::VppSim sim(options);
  if (auto st = sim.Start(); !st.ok()) {
    std::fprintf(stderr, "vpp-api-sim: %s\n", st.ToString().c_str());
    return 1;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::fprintf(stderr, "vpp-api-sim: listening on %s\n", socket_path.c_str());
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  sim.Stop();
  return 0;
}
