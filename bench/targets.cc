#include "bench/targets.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/kernel_routes.h"
#include "dataplane/vpp/sim/vpp_sim.h"
#include "dataplane/vpp/vpp_client.h"
#include "dataplane/vpp/wire.h"

namespace vcra::bench {
namespace {

namespace vpp = dataplane::vpp;

constexpr const char* kUplink = "uplink0";
constexpr const char* kUplinkPeer = "uplink0-peer";
constexpr const char* kVppUplink = "host-eth0";  // the simulator's uplink, sw_if_index 1
constexpr uint32_t kVppUplinkIndex = 1;
constexpr const char* kFibSourceName = "vpp-calico-route-agent";

class LinuxTarget final : public Target {
 public:
  LinuxTarget(std::string ip, std::string dir, std::string writer, std::string writer_args)
      : ip_(std::move(ip)),
        dir_(std::move(dir)),
        writer_(std::move(writer)),
        writer_args_(std::move(writer_args)) {}
  ~LinuxTarget() override { Finish(); }
  std::string Name() const override { return "linux"; }
  std::string LowerBoundName() const override {
    return writer_.empty() ? "`ip -batch` (route replace)"
                           : "faster of `ip -batch` and vcra-netlink-writer";
  }

  Status Prepare(int) override {
    finished_ = false;
    (void)RunCommand({ip_, "link", "del", kUplink});  // routes via it go with it
    RETURN_IF_ERROR(
        RunChecked({ip_, "link", "add", kUplink, "type", "veth", "peer", "name", kUplinkPeer}));
    RETURN_IF_ERROR(RunChecked({ip_, "link", "set", kUplinkPeer, "up"}));
    return absl::OkStatus();
  }
  std::vector<std::string> AgentArgs() const override {
    return {"--dataplane", "linux", "--uplink", kUplink};
  }
  StatusOr<RouteMap> OwnedRoutes() override { return DumpKernelRoutes(kAgentProtocol); }
  Status StartWatching() override {
    monitor_ = std::make_unique<RouteMonitor>();
    return monitor_->Open();
  }
  StatusOr<Steady::time_point> WaitVisible(const net::Route& route, Steady::time_point since,
                                           Steady::time_point deadline) override {
    return monitor_->WaitFor(route, since, deadline);
  }
  Status Pump() override { return monitor_->Drain(Steady::now() + std::chrono::milliseconds(1)); }
  std::optional<Steady::time_point> PollVisible(const net::Route& route,
                                                Steady::time_point since) override {
    auto seen = monitor_->SeenAt(route);
    if (seen && *seen >= since) return seen;
    return std::nullopt;
  }
  StatusOr<Bounds> LowerBounds(const std::vector<net::Route>& routes) override {
    // The same routes in the same (main) table, after the agent's are flushed.
    RETURN_IF_ERROR(RunChecked({ip_, "route", "flush", "proto", std::to_string(kAgentProtocol)}));
    Bounds bounds;
    ASSIGN_OR_RETURN(double ip_batch, IpBatch(routes));
    bounds.emplace_back("ip -batch", ip_batch);
    if (!writer_.empty()) {
      ASSIGN_OR_RETURN(double writer, NetlinkWriter(routes));
      bounds.emplace_back("vcra-netlink-writer", writer);
    }
    return bounds;
  }
  void Finish() override {
    monitor_.reset();
    if (!finished_) (void)RunCommand({ip_, "link", "del", kUplink});
    finished_ = true;
  }

 private:
  // iproute2 in batch mode: one netlink round trip per route, protocol 213 so that the check
  // counts exactly these.
  StatusOr<double> IpBatch(const std::vector<net::Route>& routes) {
    std::string file = dir_ + "/routes.batch";
    {
      std::ofstream out(file);
      for (const auto& r : routes) {
        out << "route replace " << r.dst.ToString() << " via " << r.gateway.ToString() << " dev "
            << kUplink << " proto " << int{kLowerBoundProtocol} << "\n";
      }
    }
    auto started = Steady::now();
    ASSIGN_OR_RETURN(int rc, RunCommand({ip_, "-batch", file}, std::chrono::seconds(300),
                                        dir_ + "/ip-batch.log"));
    double elapsed = Seconds(Steady::now() - started);
    if (rc != 0)
      return absl::InternalError(fmt::format("ip -batch exited with {}: {}", rc,
                                             Tail(ReadFile(dir_ + "/ip-batch.log"), 5)));
    return VerifyAndFlush("ip -batch", routes, elapsed);
  }

  // The bare batched-netlink writer (its own protocol, whatever it is: every gateway route
  // that is not the agent's counts).
  StatusOr<double> NetlinkWriter(const std::vector<net::Route>& routes) {
    std::string file = dir_ + "/routes.txt";
    {
      std::ofstream out(file);
      for (const auto& r : routes)
        out << r.dst.ToString() << " via " << r.gateway.ToString() << " dev " << kUplink << "\n";
    }
    std::vector<std::string> args = {writer_};
    std::istringstream words(writer_args_);
    for (std::string w; words >> w;) {
      if (w == "{routes}") w = file;
      if (w == "{dev}") w = kUplink;
      if (w == "{count}") w = std::to_string(routes.size());
      args.push_back(w);
    }
    std::string log = dir_ + "/netlink-writer.log";
    auto started = Steady::now();
    ASSIGN_OR_RETURN(int rc, RunCommand(args, std::chrono::seconds(300), log));
    double elapsed = Seconds(Steady::now() - started);
    if (rc != 0)
      return absl::InternalError(
          fmt::format("`{}` exited with {}: {}", fmt::join(args, " "), rc, Tail(ReadFile(log), 5)));
    return VerifyAndFlush("vcra-netlink-writer", routes, elapsed);
  }

  // Every route must be there with its gateway (in any protocol but the agent's); then they
  // are removed, protocol by protocol, so that the next bound starts from the same table.
  StatusOr<double> VerifyAndFlush(const std::string& what, const std::vector<net::Route>& routes,
                                  double elapsed) {
    ASSIGN_OR_RETURN(RouteMap got, DumpKernelRoutes(std::nullopt));
    size_t present = 0;
    for (const auto& r : routes) {
      auto it = got.find(r.dst);
      present += it != got.end() && it->second == r.gateway;
    }
    ASSIGN_OR_RETURN(auto protocols, ForeignGatewayProtocols());
    for (uint8_t p : protocols)
      (void)RunCommand({ip_, "route", "flush", "proto", std::to_string(p)});
    if (present != routes.size())
      return absl::InternalError(
          fmt::format("{} left {} of the {} routes", what, present, routes.size()));
    return elapsed;
  }

  std::string ip_;
  std::string dir_;
  std::string writer_;
  std::string writer_args_;
  std::unique_ptr<RouteMonitor> monitor_;
  bool finished_ = false;
};

class VppTarget final : public Target {
 public:
  explicit VppTarget(std::string dir) : dir_(std::move(dir)) {}
  ~VppTarget() override { Finish(); }
  std::string Name() const override { return "vpp"; }
  std::string LowerBoundName() const override {
    return "VppClient pipelined ip_route_add_del_v2, no agent";
  }

  Status Prepare(int run) override {
    Finish();
    vpp::sim::SimOptions o;
    o.socket_path = fmt::format("{}/api-{}.sock", dir_, run);
    sim_ = std::make_unique<vpp::sim::VppSim>(o);
    source_id_.reset();
    return sim_->Start();
  }
  std::vector<std::string> AgentArgs() const override {
    return {"--dataplane", "vpp", "--vpp-api-socket", sim_->socket_path(), "--uplink", kVppUplink};
  }
  StatusOr<RouteMap> OwnedRoutes() override {
    RETURN_IF_ERROR(FindSource());
    RouteMap out;
    for (const auto& r : sim_->Routes(false)) {
      auto it = r.sources.find(*source_id_);
      if (it == r.sources.end() || it->second.size() != 1) continue;
      if (it->second[0].sw_if_index != kVppUplinkIndex) continue;
      out[r.prefix] = it->second[0].NextHop();
    }
    return out;
  }
  Status StartWatching() override { return FindSource(); }
  StatusOr<Steady::time_point> WaitVisible(const net::Route& route, Steady::time_point,
                                           Steady::time_point deadline) override {
    // No notifications from VPP's FIB: poll the simulator, which is cheap (one map lookup under
    // its lock), every 100 us.
    while (Steady::now() <= deadline) {
      auto r = sim_->FindRoute(route.dst);
      if (r) {
        auto it = r->sources.find(*source_id_);
        if (it != r->sources.end() && it->second.size() == 1 &&
            it->second[0].NextHop() == route.gateway)
          return Steady::now();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return absl::DeadlineExceededError(
        fmt::format("route {} not seen in the simulator", route.ToString()));
  }
  void Finish() override {
    if (sim_) sim_->Stop();
    sim_.reset();
  }
  Status Pump() override {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    return absl::OkStatus();
  }
  std::optional<Steady::time_point> PollVisible(const net::Route& route,
                                                Steady::time_point) override {
    auto r = sim_->FindRoute(route.dst);
    if (!r) return std::nullopt;
    auto it = r->sources.find(*source_id_);
    if (it != r->sources.end() && it->second.size() == 1 &&
        it->second[0].NextHop() == route.gateway)
      return Steady::now();
    return std::nullopt;
  }
  StatusOr<Bounds> LowerBounds(const std::vector<net::Route>& routes) override {
    ASSIGN_OR_RETURN(double raw, RawClient(routes));
    return Bounds{{"raw VppClient", raw}};
  }

 private:
  // A fresh simulator and our VppClient alone (no agent): the same ip_route_add_del_v2
  // requests pipelined through CallMany (the agent's window of 256); only CallMany is timed.
  StatusOr<double> RawClient(const std::vector<net::Route>& routes) {
    vpp::sim::SimOptions o;
    o.socket_path = dir_ + "/lower-bound.sock";
    vpp::sim::VppSim sim(o);
    RETURN_IF_ERROR(sim.Start());
    auto elapsed = RawVppClientBound(o.socket_path, kVppUplinkIndex, routes);
    sim.Stop();
    return elapsed;
  }
  Status FindSource() {
    if (source_id_) return absl::OkStatus();
    for (const auto& s : sim_->Sources()) {
      if (s.name == kFibSourceName && (!source_id_ || s.id < *source_id_)) source_id_ = s.id;
    }
    if (!source_id_) return absl::NotFoundError("the agent registered no FIB source");
    return absl::OkStatus();
  }

  std::string dir_;
  std::unique_ptr<vpp::sim::VppSim> sim_;
  std::optional<uint8_t> source_id_;
};

}  // namespace

StatusOr<double> RawVppClientBound(const std::string& socket, uint32_t uplink_index,
                                   const std::vector<net::Route>& routes, size_t connections) {
  vpp::VppClientOptions co;
  co.socket_path = socket;
  co.client_name = "vcra-bench";
  co.required_messages = {
      std::string(vpp::msg::kIpRouteAddDelV2), std::string(vpp::msg::kIpRouteAddDelV2Reply),
      std::string(vpp::msg::kFibSourceAdd), std::string(vpp::msg::kFibSourceAddReply)};
  // The agent's window of 256 outstanding requests per connection.
  std::vector<std::unique_ptr<vpp::VppClient>> clients;
  for (size_t k = 0; k < std::max<size_t>(1, connections); ++k) {
    clients.push_back(std::make_unique<vpp::VppClient>(co));
    RETURN_IF_ERROR(clients.back()->Connect());
  }
  vpp::VppClient& client = *clients.front();
  vpp::FibSourceAdd add;
  add.src.name = "vcra-bench-lower-bound";
  add.src.priority = 100;
  ASSIGN_OR_RETURN(vpp::Bytes reply,
                   client.Call(vpp::EncodeFibSourceAdd(*client.MsgId(vpp::msg::kFibSourceAdd), add),
                               vpp::msg::kFibSourceAddReply));
  ASSIGN_OR_RETURN(vpp::FibSourceAddReply added, vpp::DecodeFibSourceAddReply(reply));
  uint16_t id = *client.MsgId(vpp::msg::kIpRouteAddDelV2);  // the same on every connection
  std::vector<std::vector<vpp::Bytes>> per(clients.size());
  for (auto& p : per) p.reserve(routes.size() / clients.size() + 1);
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    vpp::IpRouteAddDel m;
    m.is_add = true;
    m.route.prefix = vpp::WirePrefix::From(r.dst);
    m.route.src = added.id;
    m.route.paths = {vpp::FibPath::Via(r.gateway, uplink_index)};
    per[i % clients.size()].push_back(vpp::EncodeIpRouteAddDel(id, m, true));
  }
  auto started = Steady::now();
  std::vector<std::vector<StatusOr<vpp::Bytes>>> replies(clients.size());
  if (clients.size() == 1) {
    replies[0] = client.CallMany(std::move(per[0]), vpp::msg::kIpRouteAddDelV2Reply);
  } else {
    // Each share is far larger than the window: a thread per connection keeps every socket full.
    std::vector<std::thread> threads;
    for (size_t k = 0; k < clients.size(); ++k) {
      threads.emplace_back([&, k] {
        replies[k] = clients[k]->CallMany(std::move(per[k]), vpp::msg::kIpRouteAddDelV2Reply);
      });
    }
    for (auto& t : threads) t.join();
  }
  double elapsed = Seconds(Steady::now() - started);
  size_t ok = 0;
  for (const auto& per_client : replies) {
    for (const auto& rep : per_client) {
      if (!rep.ok()) continue;
      auto d = vpp::DecodeIpRouteAddDelReply(*rep);
      ok += d.ok() && d->retval == 0;
    }
  }
  for (auto& c : clients) c->Close();
  if (ok != routes.size())
    return absl::InternalError(
        fmt::format("{} of {} raw route adds failed", routes.size() - ok, routes.size()));
  return elapsed;
}

std::unique_ptr<Target> MakeLinuxTarget(const std::string& ip, const std::string& dir,
                                        const std::string& netlink_writer,
                                        const std::string& writer_args) {
  return std::make_unique<LinuxTarget>(ip, dir, netlink_writer, writer_args);
}

std::unique_ptr<Target> MakeVppTarget(const std::string& dir) {
  return std::make_unique<VppTarget>(dir);
}

}  // namespace vcra::bench
