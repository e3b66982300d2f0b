// The real-VPP column: built only when the test support has a real-VPP launcher
// (tests/support/vpp_process.h); otherwise MakeRealVppTarget says why it is unavailable.
#include "bench/targets.h"

#if __has_include("tests/support/vpp_process.h")
#include <fstream>
#include <thread>

#include "dataplane/vpp/vpp_dataplane.h"
#include "tests/support/vpp_process.h"

namespace vcra::bench {
namespace {

namespace vpp = dataplane::vpp;

constexpr const char* kLoopback = "loop0";

class RealVppTarget final : public Target {
 public:
  explicit RealVppTarget(std::string dir) : dir_(std::move(dir)) {}
  ~RealVppTarget() override { Finish(); }
  std::string Name() const override { return "vpp (real)"; }
  std::string LowerBoundName() const override {
    return "faster of VPP's CLI `exec` and the raw pipelined socket";
  }

  // A fresh VPP: an empty FIB, the uplink a loopback with the agent's address already on it.
  Status Prepare(int) override {
    Finish();
    testing::VppProcessOptions o;
    o.startup_cli = {"create loopback interface",
                     fmt::format("set interface state {} up", kLoopback),
                     fmt::format("set interface ip address {} 10.255.0.1/16", kLoopback)};
    ASSIGN_OR_RETURN(vpp_, testing::VppProcess::Start(o));
    return absl::OkStatus();
  }
  std::vector<std::string> AgentArgs() const override {
    return {"--dataplane", "vpp", "--vpp-api-socket", vpp_->api_socket(), "--uplink", kLoopback};
  }
  StatusOr<RouteMap> OwnedRoutes() override {
    // A second client of the agent's FIB source (reused by name, never added twice).
    vpp::VppDataplaneConfig c;
    c.api_socket = vpp_->api_socket();
    c.client_name = "vcra-bench-check";
    c.require_fib_source = true;
    vpp::VppDataplane dp(c);
    RETURN_IF_ERROR(dp.Connect());
    ASSIGN_OR_RETURN(auto routes, dp.DumpOwnedRoutes());
    dp.Disconnect();
    RouteMap out;
    for (const auto& r : routes) out[r.dst] = r.gateway;
    return out;
  }
  Status StartWatching() override { return absl::OkStatus(); }
  // No FIB notifications from VPP: a dump every few milliseconds, so the latency is coarse.
  StatusOr<Steady::time_point> WaitVisible(const net::Route& route, Steady::time_point since,
                                           Steady::time_point deadline) override {
    while (Steady::now() <= deadline) {
      if (auto t = PollVisible(route, since)) return *t;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return absl::DeadlineExceededError(fmt::format("route {} not seen in VPP", route.ToString()));
  }
  Status Pump() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return absl::OkStatus();
  }
  std::optional<Steady::time_point> PollVisible(const net::Route& route,
                                                Steady::time_point) override {
    auto routes = OwnedRoutes();
    if (!routes.ok()) return std::nullopt;
    auto it = routes->find(route.dst);
    if (it == routes->end() || !(it->second == route.gateway)) return std::nullopt;
    return Steady::now();
  }
  StatusOr<Bounds> LowerBounds(const std::vector<net::Route>& routes) override {
    Bounds bounds;
    RETURN_IF_ERROR(vpp_->Restart());  // an empty FIB for each bound
    ASSIGN_OR_RETURN(uint32_t uplink, UplinkIndex());
    // As many connections as the agent opens: VPP reads each socket once per pass.
    size_t connections = vpp::VppDataplaneConfig{}.api_connections;
    ASSIGN_OR_RETURN(double raw,
                     RawVppClientBound(vpp_->api_socket(), uplink, routes, connections));
    bounds.emplace_back(fmt::format("raw VppClient, {} connections (real VPP)", connections), raw);
    RETURN_IF_ERROR(vpp_->Restart());
    ASSIGN_OR_RETURN(double cli, CliExec(routes));
    bounds.emplace_back("VPP CLI exec", cli);
    return bounds;
  }
  void Finish() override { vpp_.reset(); }

 private:
  StatusOr<uint32_t> UplinkIndex() {
    vpp::VppDataplaneConfig c;
    c.api_socket = vpp_->api_socket();
    c.client_name = "vcra-bench-uplink";
    vpp::VppDataplane dp(c);
    RETURN_IF_ERROR(dp.Connect());
    dataplane::UplinkConfig u;
    u.name = kLoopback;
    RETURN_IF_ERROR(dp.EnsureUplink(u));
    auto index = dp.uplink_sw_if_index();
    dp.Disconnect();
    if (!index) return absl::NotFoundError("no sw_if_index for the loopback");
    return *index;
  }

  // VPP's own CLI, in process: `exec <file>` of one `ip route add` per route, timed from the
  // vppctl fork to its exit. VPP prints nothing for a route it added.
  StatusOr<double> CliExec(const std::vector<net::Route>& routes) {
    std::string file = vpp_->dir() + "/routes.cli";
    {
      std::ofstream out(file);
      for (const auto& r : routes)
        out << "ip route add " << r.dst.ToString() << " via " << r.gateway.ToString() << " "
            << kLoopback << "\n";
    }
    auto started = Steady::now();
    ASSIGN_OR_RETURN(std::string printed, vpp_->Cli("exec " + file));
    double elapsed = Seconds(Steady::now() - started);
    if (printed.find_first_not_of(" \r\n") != std::string::npos)
      return absl::InternalError("VPP CLI exec: " + Tail(printed, 5));
    return elapsed;
  }

  std::string dir_;
  std::unique_ptr<testing::VppProcess> vpp_;
};

}  // namespace

StatusOr<std::unique_ptr<Target>> MakeRealVppTarget(const std::string& dir) {
  std::string why = testing::VppProcess::UnavailableReason();
  if (!why.empty()) return absl::UnavailableError(why);
  return std::unique_ptr<Target>(new RealVppTarget(dir));
}

}  // namespace vcra::bench

#else  // no real-VPP launcher in this build

namespace vcra::bench {

StatusOr<std::unique_ptr<Target>> MakeRealVppTarget(const std::string&) {
  return absl::UnimplementedError(
      "this build has no real-VPP launcher (tests/support/vpp_process.h)");
}

}  // namespace vcra::bench

#endif
