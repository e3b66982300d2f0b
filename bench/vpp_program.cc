// vcra-vpp-program: how fast the agent's VPP dataplane programs routes into a real VPP, beside
// the raw API socket and VPP's own CLI, for the same routes (docs/performance.md "VPP
// programming"). It talks to a VPP the caller started; it starts nothing itself except, when
// asked (--vppctl), the `vppctl` client.
//
// Measurements (--measure, in this order, each starting from a FIB without the routes):
//   raw     our VppClient alone: fib_source_add'ed source, every route as one pipelined
//           ip_route_add_del_v2 through CallMany (the bounded window) on --raw-connections
//           connections (default one; routes dealt round-robin, a thread each), every reply
//           checked; then the same routes deleted (timed apart);
//   apply   VppDataplane::Connect + EnsureUplink, then Apply in the agent's batch shape
//           (--batch-size ops per call, one call at a time, as the agent's dataplane worker
//           does), every result checked; then a full DumpOwnedRoutes (the agent's resync and
//           restart read) and the deletes, also in batches;
//   replay  what the agent does after a VPP restart: Connect, DumpOwnedRoutes, Apply of every
//           route the dump lacks; the routes are left in place (use it on a VPP that just
//           restarted, after `apply --keep`, or on a fresh one);
//   cli     (with --vppctl and --cli-socket) `vppctl exec` of the CLI script below, timed from
//           fork to exit, then a CLI script of `ip route del` lines.
// --keep leaves the routes of the last add in VPP. --cli-script writes the equivalent script of
// `ip route add <prefix> via <gateway> <interface>` lines for the caller to time.
//
// Output: one JSON line on stdout; logs on stderr. Exit 0 when every measured route was
// confirmed, 1 otherwise, 2 on bad flags.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/log.h"
#include "dataplane/vpp/vpp_client.h"
#include "dataplane/vpp/vpp_dataplane.h"
#include "dataplane/vpp/wire.h"
#include "net/ip.h"

namespace {

using namespace vcra;
using namespace vcra::dataplane;
using namespace vcra::dataplane::vpp;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::string socket;
  uint32_t uplink = 0;
  size_t routes = 100000;
  size_t hosts = 2000;
  std::string route_file;
  size_t batch_size = 1000;
  size_t connections = VppDataplaneConfig{}.api_connections;
  size_t window = VppDataplaneConfig{}.max_outstanding;
  size_t raw_connections = 1;
  int reply_batching_pause_us = static_cast<int>(VppClientOptions{}.reply_batching_pause.count());
  std::string measure = "raw,apply";
  std::string cli_script;
  std::string vppctl;
  std::string cli_socket;
  std::string fib_source_name = "vcra-vpp-program";
  bool keep = false;
  int vpp_pid = 0;
  std::string log_level = "warn";
};

// The cluster of the benchmark, scaled to `n` routes: /26 blocks from 10.0.0.0 up, and
// every 20th route a borrowed /32 inside an earlier block; next hops spread over `hosts` peers
// on 10.255.0.0/16 (peer k is 10.255.0.0 + k + 2; .1 is this host).
std::vector<net::Route> GenerateRoutes(size_t n, size_t hosts) {
  std::vector<net::Route> out;
  out.reserve(n);
  uint32_t block = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t peer = 0x0AFF0000u + 2 + static_cast<uint32_t>(i % std::max<size_t>(1, hosts));
    if (i % 20 == 19 && block > 0) {
      uint32_t inside = 0x0A000000u + ((block - 1) << 6) + 5;
      out.push_back({net::IpPrefix(net::IpAddress::V4(inside), 32), net::IpAddress::V4(peer)});
    } else {
      out.push_back({net::IpPrefix(net::IpAddress::V4(0x0A000000u + (block << 6)), 26),
                     net::IpAddress::V4(peer)});
      ++block;
    }
  }
  return out;
}

// "<prefix> <gateway>" or "<prefix> via <gateway>" per line; '#' starts a comment.
StatusOr<std::vector<net::Route>> ReadRoutes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::vector<net::Route> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string dst, gw;
    if (!(words >> dst)) continue;
    words >> gw;
    if (gw == "via") words >> gw;
    auto p = net::IpPrefix::Parse(dst);
    auto g = net::IpAddress::Parse(gw);
    if (!p || !g || g->family() != p->family()) {
      return absl::InvalidArgumentError(path + ":" + std::to_string(lineno) +
                                        ": expected '<prefix> [via] <gateway>'");
    }
    out.push_back({*p, *g});
  }
  return out;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double CpuSeconds(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

// utime + stime of another process (VPP), from /proc/<pid>/stat; -1 when unreadable.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = all.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(all.substr(rp + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Runs a command, returns its stdout (bounded) and whether it exited 0.
std::pair<bool, std::string> Run(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return {false, ""};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) {
    if (out.size() < (1u << 20)) out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) && WEXITSTATUS(status) == 0, out};
}

class Tool {
 public:
  explicit Tool(Settings s) : s_(std::move(s)) {}

  int Main() {
    if (!s_.route_file.empty()) {
      auto r = ReadRoutes(s_.route_file);
      if (!r.ok()) return Fail(r.status());
      routes_ = std::move(*r);
    } else {
      routes_ = GenerateRoutes(s_.routes, s_.hosts);
    }
    j_["routes"] = routes_.size();
    j_["batch_size"] = s_.batch_size;
    j_["api_connections"] = s_.connections;
    j_["window"] = s_.window;
    j_["reply_batching_pause_us"] = s_.reply_batching_pause_us;
    std::set<std::string> want;
    for (auto w : absl::StrSplit(s_.measure, ',', absl::SkipEmpty())) {
      want.insert(std::string(w));
    }
    for (const auto& w : want) {
      if (w != "raw" && w != "apply" && w != "replay" && w != "cli") {
        return Fail(absl::InvalidArgumentError("unknown --measure " + w));
      }
    }
    if (Status st = LookUpUplinkName(); !st.ok()) return Fail(st);
    if (!s_.cli_script.empty()) {
      if (Status st = WriteCliScript(s_.cli_script, true); !st.ok()) return Fail(st);
      j_["cli_script"] = s_.cli_script;
    }
    Heap("heap_start");
    bool ok = true;
    if (want.count("raw")) ok &= MeasureRaw(want.size() == 1 && s_.keep);
    if (want.count("apply")) ok &= MeasureApply(s_.keep && !want.count("cli"));
    if (want.count("replay")) ok &= MeasureReplay();
    if (want.count("cli")) ok &= MeasureCli();
    j_["ok"] = ok;
    std::cout << j_.dump() << std::endl;
    return ok ? 0 : 1;
  }

 private:
  int Fail(const Status& st) {
    j_["ok"] = false;
    j_["error"] = std::string(st.message());
    std::cout << j_.dump() << std::endl;
    return 1;
  }

  VppDataplaneConfig DataplaneConfig() const {
    VppDataplaneConfig c;
    c.api_socket = s_.socket;
    c.client_name = "vcra-vpp-program";
    c.fib_source_name = s_.fib_source_name;
    c.require_fib_source = true;
    c.api_connections = s_.connections;
    c.max_outstanding = s_.window;
    c.reply_batching_pause = std::chrono::microseconds(s_.reply_batching_pause_us);
    c.request_timeout = std::chrono::milliseconds(60000);
    return c;
  }

  Status LookUpUplinkName() {
    VppClientOptions o;
    o.socket_path = s_.socket;
    o.client_name = "vcra-vpp-program-lookup";
    VppClient c(o);
    RETURN_IF_ERROR(c.Connect());
    j_["vpp_version"] = c.vpp_version();
    SwInterfaceDump d;
    d.sw_if_index = s_.uplink;
    ASSIGN_OR_RETURN(auto details, c.Dump(EncodeSwInterfaceDump(*c.MsgId(msg::kSwInterfaceDump), d),
                                          msg::kSwInterfaceDetails));
    for (const Bytes& b : details) {
      auto x = DecodeSwInterfaceDetails(b);
      if (x.ok() && x->sw_if_index == s_.uplink) uplink_name_ = x->interface_name;
    }
    c.Close();
    if (uplink_name_.empty()) {
      return absl::NotFoundError("VPP has no interface with sw_if_index " +
                                 std::to_string(s_.uplink));
    }
    j_["uplink"] = uplink_name_;
    return absl::OkStatus();
  }

  Status WriteCliScript(const std::string& path, bool add) {
    std::ofstream out(path);
    for (const net::Route& r : routes_) {
      out << "ip route " << (add ? "add " : "del ") << r.dst.ToString();
      if (add) out << " via " << r.gateway.ToString() << " " << uplink_name_;
      out << "\n";
    }
    out.close();
    if (!out) return absl::InternalError("cannot write " + path);
    return absl::OkStatus();
  }

  // `show memory main-heap` "used" bytes through vppctl, when it is available.
  void Heap(const std::string& key) {
    if (s_.vppctl.empty() || s_.cli_socket.empty()) return;
    auto [ok, out] = Run({s_.vppctl, "-s", s_.cli_socket, "show", "memory", "main-heap"});
    if (!ok) return;
    // "  total: 512.00M, used: 25.31M, free: 486.69M, trimmable: 486.68M"
    auto at = out.find("used: ");
    if (at == std::string::npos) return;
    double v = std::strtod(out.c_str() + at + 6, nullptr);
    char unit = out[out.find_first_not_of("0123456789.", at + 6)];
    double scale = unit == 'G' ? 1 << 30 : unit == 'M' ? 1 << 20 : unit == 'K' ? 1 << 10 : 1;
    j_[key + "_used_bytes"] = v * scale;
  }

  struct Phase {
    Clock::time_point t0;
    double cpu0, vpp0;
  };
  Phase Begin() const {
    return {Clock::now(), CpuSeconds(RUSAGE_SELF), ProcessCpuSeconds(s_.vpp_pid)};
  }
  double End(const Phase& p, const std::string& key) {
    double wall = Seconds(Clock::now() - p.t0);
    j_[key + "_s"] = wall;
    j_[key + "_routes_per_s"] = wall > 0 ? routes_.size() / wall : 0;
    j_[key + "_client_cpu_s"] = CpuSeconds(RUSAGE_SELF) - p.cpu0;
    if (s_.vpp_pid > 0) j_[key + "_vpp_cpu_s"] = ProcessCpuSeconds(s_.vpp_pid) - p.vpp0;
    return wall;
  }

  // Requests for routes first, first + step, ... (one connection's share).
  std::vector<Bytes> RawRequests(VppClient& c, uint8_t src, bool add, size_t first,
                                 size_t step) const {
    std::vector<Bytes> reqs;
    reqs.reserve(routes_.size() / step + 1);
    uint16_t id = *c.MsgId(msg::kIpRouteAddDelV2);
    for (size_t i = first; i < routes_.size(); i += step) {
      const net::Route& r = routes_[i];
      IpRouteAddDel m;
      m.is_add = add;
      m.route.prefix = WirePrefix::From(r.dst);
      m.route.src = src;
      if (add) m.route.paths = {FibPath::Via(r.gateway, s_.uplink)};
      reqs.push_back(EncodeIpRouteAddDel(id, m, true));
    }
    return reqs;
  }

  static size_t CountOk(const std::vector<StatusOr<Bytes>>& replies, std::string* first_error) {
    size_t ok = 0;
    for (const auto& r : replies) {
      Status st = r.status();
      if (st.ok()) {
        auto rep = DecodeIpRouteAddDelReply(*r);
        st = !rep.ok()          ? rep.status()
             : rep->retval != 0 ? absl::InternalError(RetvalToString(rep->retval))
                                : absl::OkStatus();
      }
      if (st.ok()) {
        ++ok;
      } else if (first_error->empty()) {
        *first_error = std::string(st.message());
      }
    }
    return ok;
  }

  // All routes through `clients` (route i on client i mod n), each client's share pipelined
  // by CallMany on a thread of its own; returns the number confirmed.
  size_t RawOnAll(std::vector<std::unique_ptr<VppClient>>& clients, uint8_t src, bool add,
                  std::string* err) {
    size_t n = clients.size();
    std::vector<std::vector<Bytes>> per(n);
    for (size_t k = 0; k < n; ++k) per[k] = RawRequests(*clients[k], src, add, k, n);
    std::vector<std::vector<StatusOr<Bytes>>> replies(n);
    std::vector<std::thread> threads;
    for (size_t k = 0; k < n; ++k) {
      threads.emplace_back([&, k] {
        replies[k] = clients[k]->CallMany(std::move(per[k]), msg::kIpRouteAddDelV2Reply);
      });
    }
    for (auto& t : threads) t.join();
    size_t ok = 0;
    for (const auto& r : replies) ok += CountOk(r, err);
    return ok;
  }

  bool MeasureRaw(bool keep) {
    VppClientOptions o;
    o.socket_path = s_.socket;
    o.client_name = "vcra-vpp-program-raw";
    o.max_outstanding = s_.window;
    o.reply_batching_pause = std::chrono::microseconds(s_.reply_batching_pause_us);
    o.request_timeout = std::chrono::milliseconds(60000);
    o.required_messages = {std::string(msg::kIpRouteAddDelV2), std::string(msg::kFibSourceAdd)};
    std::vector<std::unique_ptr<VppClient>> clients;
    for (size_t k = 0; k < s_.raw_connections; ++k) {
      clients.push_back(std::make_unique<VppClient>(o));
      if (Status st = clients.back()->Connect(); !st.ok()) return Error("raw", st);
    }
    VppClient& c = *clients.front();
    // A source of its own, added once per run (VPP allocates a new id on every add).
    FibSourceAdd add;
    add.src.name = s_.fib_source_name + "-raw";
    add.src.priority = 100;
    auto rep =
        c.Call(EncodeFibSourceAdd(*c.MsgId(msg::kFibSourceAdd), add), msg::kFibSourceAddReply);
    if (!rep.ok()) return Error("raw", rep.status());
    auto src = DecodeFibSourceAddReply(*rep);
    if (!src.ok() || src->retval != 0) {
      return Error("raw", absl::InternalError("fib_source_add failed"));
    }
    j_["raw_connections"] = clients.size();
    auto t_enc = Clock::now();
    (void)RawRequests(c, src->id, true, 0, 1);
    j_["raw_encode_s"] = Seconds(Clock::now() - t_enc);
    std::string err;
    Phase p = Begin();
    size_t ok = RawOnAll(clients, src->id, true, &err);
    End(p, "raw");
    j_["raw_confirmed"] = ok;
    size_t in_flight = 0;
    for (const auto& x : clients) in_flight = std::max(in_flight, x->max_in_flight_seen());
    j_["raw_max_in_flight"] = in_flight;
    Heap("heap_after_raw");
    bool good = ok == routes_.size();
    if (!good) j_["raw_error"] = err;
    if (!keep) {
      std::string derr;
      Phase d = Begin();
      size_t dok = RawOnAll(clients, src->id, false, &derr);
      End(d, "raw_delete");
      if (dok != routes_.size()) {
        j_["raw_delete_error"] = derr;
        good = false;
      }
      Heap("heap_after_raw_delete");
    }
    for (auto& x : clients) x->Close();
    return good;
  }

  std::vector<RouteOp> Ops(const std::vector<net::Route>& routes, OpType type) const {
    std::vector<RouteOp> ops;
    ops.reserve(routes.size());
    uint64_t seq = 1;
    for (const net::Route& r : routes) ops.push_back({seq++, type, r});
    return ops;
  }

  // Apply in batches, one at a time; returns the number of ops confirmed.
  size_t ApplyInBatches(VppDataplane& dp, const std::vector<RouteOp>& ops, std::string* err,
                        std::vector<double>* batch_ms) {
    size_t ok = 0;
    for (size_t at = 0; at < ops.size(); at += s_.batch_size) {
      size_t n = std::min(s_.batch_size, ops.size() - at);
      auto t = Clock::now();
      auto res = dp.Apply(std::span(ops).subspan(at, n));
      if (batch_ms) batch_ms->push_back(Seconds(Clock::now() - t) * 1e3);
      for (const OpResult& r : res) {
        if (r.status.ok()) {
          ++ok;
        } else if (err->empty()) {
          *err = std::string(r.status.message());
        }
      }
    }
    return ok;
  }

  Status ConnectDataplane(VppDataplane& dp) {
    RETURN_IF_ERROR(dp.Connect());
    UplinkConfig u;
    u.index = s_.uplink;
    return dp.EnsureUplink(u);
  }

  bool MeasureApply(bool keep) {
    VppDataplane dp(DataplaneConfig());
    Phase c = Begin();
    if (Status st = ConnectDataplane(dp); !st.ok()) return Error("apply", st);
    End(c, "apply_connect");
    auto existing = dp.DumpOwnedRoutes();
    if (!existing.ok()) return Error("apply", existing.status());
    if (!existing->empty()) {
      // Left by an earlier --keep run: start from a FIB without them, as every phase does.
      std::string err;
      ApplyInBatches(dp, Ops(*existing, OpType::kDelete), &err, nullptr);
    }
    auto ops = Ops(routes_, OpType::kUpsert);
    std::vector<double> batch_ms;
    std::string err;
    Phase p = Begin();
    size_t ok = ApplyInBatches(dp, ops, &err, &batch_ms);
    End(p, "apply");
    j_["apply_confirmed"] = ok;
    std::sort(batch_ms.begin(), batch_ms.end());
    if (!batch_ms.empty()) {
      j_["apply_batch_ms_p50"] = batch_ms[batch_ms.size() / 2];
      j_["apply_batch_ms_max"] = batch_ms.back();
    }
    Heap("heap_after_apply");
    bool good = ok == routes_.size();
    if (!good) j_["apply_error"] = err;

    Phase d = Begin();
    auto dumped = dp.DumpOwnedRoutes();
    End(d, "dump");
    j_["dump_routes"] = dumped.ok() ? dumped->size() : 0;
    if (!dumped.ok() || dumped->size() != routes_.size()) good = false;

    if (!keep) {
      std::string derr;
      Phase x = Begin();
      size_t dok = ApplyInBatches(dp, Ops(routes_, OpType::kDelete), &derr, nullptr);
      End(x, "apply_delete");
      if (dok != routes_.size()) {
        j_["apply_delete_error"] = derr;
        good = false;
      }
      Heap("heap_after_apply_delete");
    }
    dp.Disconnect();
    return good;
  }

  bool MeasureReplay() {
    VppDataplane dp(DataplaneConfig());
    Phase p = Begin();
    if (Status st = ConnectDataplane(dp); !st.ok()) return Error("replay", st);
    auto dumped = dp.DumpOwnedRoutes();
    if (!dumped.ok()) return Error("replay", dumped.status());
    j_["replay_dumped"] = dumped->size();
    std::set<std::pair<std::string, std::string>> have;
    for (const auto& r : *dumped) have.insert({r.dst.ToString(), r.gateway.ToString()});
    std::vector<net::Route> missing;
    for (const auto& r : routes_) {
      if (!have.count({r.dst.ToString(), r.gateway.ToString()})) missing.push_back(r);
    }
    std::string err;
    size_t ok = ApplyInBatches(dp, Ops(missing, OpType::kUpsert), &err, nullptr);
    End(p, "replay");
    j_["replay_applied"] = ok;
    dp.Disconnect();
    if (ok != missing.size()) {
      j_["replay_error"] = err;
      return false;
    }
    return true;
  }

  bool MeasureCli() {
    if (s_.vppctl.empty() || s_.cli_socket.empty()) {
      return Error("cli",
                   absl::InvalidArgumentError("--measure cli needs --vppctl and --cli-socket"));
    }
    std::string add = s_.cli_script.empty() ? "/tmp/vcra-vpp-program-add.cli" : s_.cli_script;
    std::string del = add + ".del";
    if (Status st = WriteCliScript(add, true); !st.ok()) return Error("cli", st);
    if (Status st = WriteCliScript(del, false); !st.ok()) return Error("cli", st);
    Phase p = Begin();
    auto [ok, out] = Run({s_.vppctl, "-s", s_.cli_socket, "exec", add});
    End(p, "cli");
    Heap("heap_after_cli");
    if (!ok || out.find("error") != std::string::npos) {
      return Error("cli", absl::InternalError("vppctl exec: " + out.substr(0, 200)));
    }
    if (!s_.keep) {
      Phase d = Begin();
      auto [dok, dout] = Run({s_.vppctl, "-s", s_.cli_socket, "exec", del});
      End(d, "cli_delete");
      Heap("heap_after_cli_delete");
      if (!dok) return Error("cli_delete", absl::InternalError(dout.substr(0, 200)));
    }
    if (s_.cli_script.empty()) {
      std::remove(add.c_str());
    }
    std::remove(del.c_str());
    return true;
  }

  bool Error(const std::string& what, const Status& st) {
    j_[what + "_error"] = std::string(st.message());
    return false;
  }

  Settings s_;
  std::vector<net::Route> routes_;
  std::string uplink_name_;
  nlohmann::json j_;
};

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{
      "vcra-vpp-program: times the agent's VPP programming (VppDataplane::Apply in the agent's "
      "batch shape), the raw pipelined VppClient, and VPP's own CLI, for the same routes, against "
      "a VPP you started. Prints one JSON line (keys <phase>_s, <phase>_routes_per_s, "
      "<phase>_client_cpu_s, <phase>_vpp_cpu_s with --vpp-pid, heap_*_used_bytes with --vppctl).\n"
      "Example: vcra-vpp-program --socket /tmp/v/api.sock --uplink 1 --routes 104949 "
      "--cli-script /tmp/v/routes.cli  (then time: vppctl -s /tmp/v/cli.sock exec "
      "/tmp/v/routes.cli)"};
  app.add_option("--socket", s.socket, "VPP's binary API socket (socksvr socket-name)")->required();
  app.add_option("--uplink", s.uplink, "sw_if_index the routes leave through")->required();
  app.add_option("--routes", s.routes,
                 "Generated routes: /26 blocks from 10.0.0.0, every 20th a /32, next hops on "
                 "10.255.0.0/16")
      ->capture_default_str();
  app.add_option("--hosts", s.hosts, "Distinct next hops of the generated routes")
      ->capture_default_str();
  app.add_option("--route-file", s.route_file,
                 "Routes instead of generated ones: '<prefix> [via] <gateway>' per line");
  app.add_option("--batch-size", s.batch_size, "Ops per VppDataplane::Apply call (the agent's)")
      ->capture_default_str();
  app.add_option("--connections", s.connections, "VppDataplaneConfig.api_connections for apply")
      ->capture_default_str();
  app.add_option("--window", s.window, "Unanswered requests per connection (max_outstanding)")
      ->capture_default_str();
  app.add_option("--raw-connections", s.raw_connections,
                 "Connections for raw (routes dealt round-robin, one thread each)")
      ->capture_default_str();
  app.add_option("--reply-batching-pause-us", s.reply_batching_pause_us,
                 "VppClientOptions.reply_batching_pause (0: off)")
      ->capture_default_str();
  app.add_option("--measure", s.measure, "Comma list of raw, apply, replay, cli (in that order)")
      ->capture_default_str();
  app.add_option("--cli-script", s.cli_script,
                 "Write the routes as 'ip route add' lines here (for vppctl exec)");
  app.add_option("--vppctl", s.vppctl, "vppctl binary: times --measure cli, reads main-heap use");
  app.add_option("--cli-socket", s.cli_socket, "VPP's cli-listen socket, for --vppctl");
  app.add_option("--vpp-pid", s.vpp_pid, "VPP's pid: reports VPP's CPU time per phase");
  app.add_option("--fib-source", s.fib_source_name, "FIB source name for apply/replay")
      ->capture_default_str();
  app.add_flag("--keep", s.keep, "Leave the routes of the last add in VPP");
  app.add_option("--log-level", s.log_level, "Log level on stderr")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (s.batch_size == 0 || s.window == 0 || s.connections == 0 || s.raw_connections == 0) {
    std::cerr << "--batch-size, --window, --connections and --raw-connections must be at least 1\n";
    return 2;
  }
  vcra::SetupLogging(vcra::LogFormat::kText, s.log_level);
  return Tool(std::move(s)).Main();
}
