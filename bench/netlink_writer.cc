// vcra-netlink-writer: the bare batched-netlink half of the benchmark's kernel lower bound.
//
// It writes a list of routes into the kernel of the network namespace it runs in (the benchmark
// runs it with `ip netns exec`), with nothing of the agent around it: no etcd, no reconciler, no
// dumps. Many RTM_NEWROUTE messages go out per sendmsg, encoded by the agent's own codec
// (dataplane/linux/rtnl_codec), so the figure bounds what the agent's netlink path could reach.
//
// Every op is verified. By default only the last message of each send asks for an ack: the
// kernel answers any failed message with an error even without NLM_F_ACK, and it handles the
// messages of one sendmsg in order before the call returns, so once that last ack is read every
// error of the send has been read too. `--ack each` acks every message instead (for comparison).
// A receive queue overflow (ENOBUFS) means replies were lost: reported as a failure, never as
// success.
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "dataplane/linux/rtnl_codec.h"
#include "net/ip.h"

namespace vcra {
namespace {

namespace rtnl = dataplane::rtnl;

constexpr size_t kMaxSendBytes = 64 * 1024;  // below the default netlink sndbuf
constexpr size_t kReceiveBufferBytes = 64 * 1024;
constexpr int kSocketBufferBytes = 8 << 20;
constexpr size_t kMaxReportedFailures = 10;

struct Options {
  std::string file;
  int protocol = 213;
  uint32_t table = 254;
  uint32_t metric = 0;
  std::string ack = "errors";
  size_t batch = 1024;
};

struct RouteLine {
  net::Route route;
  uint32_t oif = 0;
  uint8_t protocol = 0;
  rtnl::RouteWrite mode = rtnl::RouteWrite::kCreateExclusive;
};

// "[route add|replace] PREFIX via GATEWAY dev IFNAME [proto N]": the lines the benchmark feeds
// `ip -batch`, so one file serves both lower bounds.
StatusOr<RouteLine> ParseLine(const std::string& text, const Options& options,
                              std::map<std::string, uint32_t>& ifindex) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  RouteLine line;
  line.protocol = static_cast<uint8_t>(options.protocol);
  size_t i = 0;
  if (i < words.size() && words[i] == "route") ++i;
  if (i < words.size() && (words[i] == "add" || words[i] == "replace")) {
    line.mode = words[i] == "add" ? rtnl::RouteWrite::kCreateExclusive : rtnl::RouteWrite::kReplace;
    ++i;
  }
  if (i >= words.size()) return absl::InvalidArgumentError("no prefix");
  std::optional<net::IpPrefix> dst = net::IpPrefix::Parse(words[i++], /*strict=*/true);
  if (!dst) return absl::InvalidArgumentError(absl::StrCat("bad prefix \"", words[i - 1], "\""));
  line.route.dst = *dst;
  bool have_gateway = false;
  std::string dev;
  for (; i + 1 < words.size(); i += 2) {
    const std::string& key = words[i];
    const std::string& value = words[i + 1];
    if (key == "via") {
      std::optional<net::IpAddress> gw = net::IpAddress::Parse(value);
      if (!gw || gw->family() != dst->family()) {
        return absl::InvalidArgumentError(absl::StrCat("bad gateway \"", value, "\""));
      }
      line.route.gateway = *gw;
      have_gateway = true;
    } else if (key == "dev") {
      dev = value;
    } else if (key == "proto") {
      char* end = nullptr;
      unsigned long p = std::strtoul(value.c_str(), &end, 10);
      if (*end != '\0' || p == 0 || p > 255) {
        return absl::InvalidArgumentError(absl::StrCat("bad protocol \"", value, "\""));
      }
      line.protocol = static_cast<uint8_t>(p);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown keyword \"", key, "\""));
    }
  }
  if (i != words.size()) return absl::InvalidArgumentError("keyword without a value");
  if (!have_gateway || dev.empty()) return absl::InvalidArgumentError("needs via and dev");
  auto [it, added] = ifindex.try_emplace(dev, 0);
  if (added) it->second = if_nametoindex(dev.c_str());
  if (it->second == 0) return absl::NotFoundError(absl::StrCat("no interface \"", dev, "\""));
  line.oif = it->second;
  return line;
}

StatusOr<std::vector<RouteLine>> ReadRoutes(std::istream& in, const Options& options) {
  std::vector<RouteLine> routes;
  std::map<std::string, uint32_t> ifindex;
  int number = 0;
  for (std::string text; std::getline(in, text);) {
    ++number;
    size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos || text[first] == '#') continue;
    StatusOr<RouteLine> line = ParseLine(text, options, ifindex);
    if (!line.ok()) {
      return Status(line.status().code(),
                    absl::StrCat("line ", number, ": ", line.status().message()));
    }
    routes.push_back(*line);
  }
  return routes;
}

class Writer {
 public:
  explicit Writer(const Options& options) : options_(options) {}
  ~Writer() {
    if (nl_ != nullptr) mnl_socket_close(nl_);
  }

  Status Open() {
    nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (nl_ == nullptr) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      return absl::UnavailableError(absl::StrCat("bind: ", strerror(errno)));
    }
    portid_ = mnl_socket_get_portid(nl_);
    int fd = mnl_socket_get_fd(nl_);
    int size = kSocketBufferBytes;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    int one = 1;
    mnl_socket_setsockopt(nl_, NETLINK_CAP_ACK, &one, sizeof one);
    mnl_socket_setsockopt(nl_, NETLINK_EXT_ACK, &one, sizeof one);
    timeval tv{10, 0};  // the kernel answers in microseconds; this only bounds a broken socket
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send_buf_.assign((kMaxSendBytes + rtnl::kMaxRequestBytes) / 4 + 1, 0);
    recv_buf_.assign(kReceiveBufferBytes / 4, 0);
    return Status();
  }

  // Writes every route; the first failures go to `failures`. Errors: the socket broke.
  Status WriteAll(const std::vector<RouteLine>& routes, size_t& failed,
                  std::vector<std::string>& failures) {
    const bool ack_each = options_.ack == "each";
    uint32_t seq = 1;
    size_t next = 0;
    while (next < routes.size()) {
      auto* buf = reinterpret_cast<uint8_t*>(send_buf_.data());
      size_t used = 0;
      const uint32_t first_seq = seq;
      const size_t first = next;
      nlmsghdr* last = nullptr;
      while (next < routes.size() && next - first < options_.batch &&
             used + rtnl::kMaxRequestBytes <= kMaxSendBytes) {
        const RouteLine& r = routes[next];
        rtnl::RouteOwner owner{r.protocol, options_.table, options_.metric};
        last = reinterpret_cast<nlmsghdr*>(buf + used);
        used += rtnl::PutRouteWrite(buf + used, seq++, r.route, r.oif, owner, r.mode);
        if (!ack_each) last->nlmsg_flags &= ~NLM_F_ACK;
        ++next;
      }
      last->nlmsg_flags |= NLM_F_ACK;  // the fence: answered after every error of this send
      RETURN_IF_ERROR(Send(buf, used));
      RETURN_IF_ERROR(
          CollectReplies(first_seq, seq - 1, ack_each, routes, first, failed, failures));
    }
    return Status();
  }

 private:
  Status Send(const void* buf, size_t len) {
    ssize_t n = mnl_socket_sendto(nl_, buf, len);
    if (n != static_cast<ssize_t>(len)) {
      return absl::UnavailableError(absl::StrCat("sendmsg: ", n < 0 ? strerror(errno) : "short"));
    }
    return Status();
  }

  Status CollectReplies(uint32_t first_seq, uint32_t last_seq, bool ack_each,
                        const std::vector<RouteLine>& routes, size_t first_route, size_t& failed,
                        std::vector<std::string>& failures) {
    size_t expected = ack_each ? last_seq - first_seq + 1 : 0;
    size_t answered = 0;
    bool fence_seen = false;
    while (ack_each ? answered < expected : !fence_seen) {
      ssize_t n = recv(mnl_socket_get_fd(nl_), recv_buf_.data(), kReceiveBufferBytes, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          return absl::DataLossError("receive queue overflowed: replies lost, results unknown");
        }
        return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
      }
      StatusOr<std::vector<rtnl::Ack>> acks = rtnl::ParseAcks(
          {reinterpret_cast<const uint8_t*>(recv_buf_.data()), static_cast<size_t>(n)}, portid_);
      if (!acks.ok()) return acks.status();
      for (const rtnl::Ack& ack : *acks) {
        if (ack.seq < first_seq || ack.seq > last_seq) continue;
        ++answered;
        if (ack.seq == last_seq) fence_seen = true;
        if (ack.error == 0) continue;
        ++failed;
        if (failures.size() < kMaxReportedFailures) {
          const RouteLine& r = routes[first_route + (ack.seq - first_seq)];
          failures.push_back(
              absl::StrCat(r.route.ToString(), ": ",
                           rtnl::ErrnoStatus(ack.error, "write", ack.kernel_message).message()));
        }
      }
    }
    return Status();
  }

  const Options& options_;
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  std::vector<uint32_t> send_buf_;  // uint32_t: netlink messages need 4-byte alignment
  std::vector<uint32_t> recv_buf_;
};

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{
      "vcra-netlink-writer: writes routes into this network namespace's kernel with pipelined\n"
      "rtnetlink messages (many per sendmsg), verifies every one, and prints the rate.\n\n"
      "Input: FILE (or - for stdin), one route per line, as `ip -batch` takes them:\n"
      "  [route add|replace] PREFIX via GATEWAY dev IFNAME [proto N]\n"
      "`add` (or no verb) creates exclusively and fails on an existing route; `replace` replaces.\n"
      "Blank lines and lines starting with # are skipped. The file is read before timing.\n\n"
      "Output (stdout, one line): routes=N seconds=S routes_per_second=R\n"
      "Exit: 0 every route written; 1 some route failed (the first ones on stderr) or the socket\n"
      "broke; 2 bad usage or input.\n\n"
      "Run it inside the namespace to program: ip netns exec NS vcra-netlink-writer FILE"};
  app.add_option("file", options.file, "routes file, or - for stdin")->required();
  app.add_option("--protocol", options.protocol, "route protocol when a line names none")
      ->check(CLI::Range(1, 255))
      ->capture_default_str();
  app.add_option("--table", options.table, "route table")
      ->check(CLI::Range(1u, 0xFFFFFFFFu))
      ->capture_default_str();
  app.add_option("--metric", options.metric, "route metric (0: the kernel default)")
      ->capture_default_str();
  app.add_option("--ack", options.ack,
                 "errors: ack only the last message of each send (errors always come back); "
                 "each: ack every message")
      ->check(CLI::IsMember({"errors", "each"}))
      ->capture_default_str();
  app.add_option("--batch", options.batch, "messages per sendmsg (also capped at 64 KiB)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  StatusOr<std::vector<RouteLine>> routes;
  if (options.file == "-") {
    routes = ReadRoutes(std::cin, options);
  } else {
    std::ifstream in(options.file);
    if (!in) {
      std::fprintf(stderr, "cannot open %s: %s\n", options.file.c_str(), strerror(errno));
      return 2;
    }
    routes = ReadRoutes(in, options);
  }
  if (!routes.ok()) {
    std::fprintf(stderr, "%s: %s\n", options.file.c_str(), routes.status().ToString().c_str());
    return 2;
  }

  Writer writer(options);
  Status opened = writer.Open();
  if (!opened.ok()) {
    std::fprintf(stderr, "netlink: %s\n", opened.ToString().c_str());
    return 1;
  }
  size_t failed = 0;
  std::vector<std::string> failures;
  auto started = std::chrono::steady_clock::now();
  Status written = writer.WriteAll(*routes, failed, failures);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (const std::string& f : failures) std::fprintf(stderr, "failed: %s\n", f.c_str());
  if (!written.ok()) {
    std::fprintf(stderr, "netlink: %s\n", written.ToString().c_str());
    return 1;
  }
  if (failed > 0) {
    std::fprintf(stderr, "%zu of %zu routes failed\n", failed, routes->size());
    return 1;
  }
  std::printf("routes=%zu seconds=%.6f routes_per_second=%.0f\n", routes->size(), seconds,
              seconds > 0 ? static_cast<double>(routes->size()) / seconds : 0.0);
  return 0;
}

}  // namespace
}  // namespace vcra

int main(int argc, char** argv) { return vcra::Main(argc, argv); }
