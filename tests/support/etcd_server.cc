#include "tests/support/etcd_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "tests/support/child_process.h"

namespace vcra::testing {

// All sockets stay open until every port is picked so that the ports are distinct; etcd binds
// them a moment later.
StatusOr<std::vector<int>> FreeLoopbackPorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", std::strerror(errno)));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(int members) {
  EtcdServerOptions options;
  options.members = members;
  return Start(options);
}

namespace {

// A test that crashed never ran its destructors: its etcd died with it (PR_SET_PDEATHSIG), but
// its data directory stayed. Each new server sweeps the directories whose owner is gone.
void RemoveDirsOfDeadTests() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("vcra-etcd-", 0) != 0 || !entry.is_directory(ec)) continue;
    pid_t owner = 0;
    std::ifstream(entry.path() / "owner.pid") >> owner;
    bool dead = owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH;
    // No owner file yet: another test may be between mkdtemp and writing it; only old ones.
    bool orphan =
        owner <= 0 && std::filesystem::last_write_time(entry.path(), ec) <
                          std::filesystem::file_time_type::clock::now() - std::chrono::minutes(10);
    if (dead || orphan) std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace

StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(const EtcdServerOptions& options) {
  if (access(kEtcdBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kEtcdBinary, " is not installed (apt-get install etcd-server)"));
  }
  if (options.members < 1 || options.members > 7) {
    return absl::InvalidArgumentError("EtcdServer: members must be 1..7");
  }
  RemoveDirsOfDeadTests();
  std::unique_ptr<EtcdServer> server(new EtcdServer());
  server->options_ = options;
  char tmpl[] = "/tmp/vcra-etcd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  server->base_dir_ = tmpl;
  std::ofstream(server->base_dir_ + "/owner.pid") << getpid() << "\n";
  server->cluster_token_ = absl::StrCat("vcra-test-", getpid(), "-", server->base_dir_.substr(15));
  ASSIGN_OR_RETURN(std::vector<int> ports, FreeLoopbackPorts(2 * options.members));
  for (int i = 0; i < options.members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.client_port = ports[2 * i];
    m.peer_port = ports[2 * i + 1];
    m.data_dir = absl::StrCat(server->base_dir_, "/", m.name, ".etcd");
    m.log_file = absl::StrCat(server->base_dir_, "/", m.name, ".log");
    server->members_.push_back(m);
  }
  // A cluster needs a quorum before any member answers: start all, then wait for each.
  for (auto& m : server->members_) RETURN_IF_ERROR(server->Spawn(m));
  for (int i = 0; i < options.members; ++i) RETURN_IF_ERROR(server->WaitReady(i));
  return server;
}

EtcdServer::~EtcdServer() {
  for (auto& m : members_) Kill(m);
  if (!base_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(base_dir_, ec);
  }
}

std::string EtcdServer::endpoint(int member) const {
  return absl::StrCat(Scheme(), "://127.0.0.1:", members_.at(member).client_port);
}

std::vector<std::string> EtcdServer::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < members(); ++i) out.push_back(endpoint(i));
  return out;
}

datastore::EtcdConfig EtcdServer::ClientConfig() const {
  datastore::EtcdConfig config;
  config.endpoints = endpoints();
  if (!options_.server_cert_file.empty()) {
    config.ca_cert_file = options_.ca_file;
    config.cert_file = options_.client_cert_file;
    config.key_file = options_.client_key_file;
  }
  return config;
}

Status EtcdServer::Spawn(Member& m) {
  std::vector<std::string> peers;
  for (const auto& p : members_) {
    peers.push_back(absl::StrCat(p.name, "=http://127.0.0.1:", p.peer_port));
  }
  std::string client_url = absl::StrCat(Scheme(), "://127.0.0.1:", m.client_port);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> args = {
      kEtcdBinary,
      "--name=" + m.name,
      "--data-dir=" + m.data_dir,
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=" + absl::StrJoin(peers, ","),
      "--initial-cluster-state=new",
      "--initial-cluster-token=" + cluster_token_,
      // Fast elections keep failover tests short; loopback has no latency to tolerate.
      "--heartbeat-interval=50",
      "--election-timeout=500",
      "--logger=zap",
      "--log-outputs=stderr",
  };
  if (!options_.server_cert_file.empty()) {
    args.push_back("--cert-file=" + options_.server_cert_file);
    args.push_back("--key-file=" + options_.server_key_file);
    if (!options_.ca_file.empty()) {
      args.push_back("--trusted-ca-file=" + options_.ca_file);
      args.push_back("--client-cert-auth");
    }
  }
  for (const auto& a : options_.extra_args) args.push_back(a);

  ASSIGN_OR_RETURN(pid_t pid, SpawnChild(std::move(args), m.log_file, /*own_process_group=*/true));
  m.pid = pid;
  return absl::OkStatus();
}

Status EtcdServer::WaitReady(int member) {
  Member& m = members_.at(member);
  datastore::EtcdConfig config = ClientConfig();
  config.endpoints = {endpoint(member)};
  config.dial_timeout = std::chrono::milliseconds(500);
  config.request_timeout = std::chrono::milliseconds(1000);
  ASSIGN_OR_RETURN(auto client, datastore::EtcdClient::Create(config));
  auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (m.pid > 0 && waitpid(m.pid, &wstatus, WNOHANG) == m.pid) {
      m.pid = -1;
      return absl::InternalError(
          absl::StrCat("etcd member ", m.name, " exited at startup:\n", LogTail(member)));
    }
    auto r = client->RangePrefix("/vcra-ready-probe/");
    // Any answer from etcd itself (even "user name is empty" with auth on) means it serves.
    if (r.ok() || !(absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status()))) {
      return absl::OkStatus();
    }
    last = std::string(r.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd member ", m.name, " not ready within ",
                                                  options_.ready_timeout.count(), " s: ", last,
                                                  "\n", LogTail(member)));
}

void EtcdServer::Kill(Member& m) {
  if (m.pid <= 0) return;
  kill(-m.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(m.pid, nullptr, WNOHANG) == m.pid) {
      kill(-m.pid, SIGKILL);  // anything else left in its group
      m.pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  LOG_WARN("etcd member {} ignored SIGTERM for 5 s; killing it", m.name);
  kill(-m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

Status EtcdServer::StopMember(int member) {
  if (member < 0 || member >= members()) return absl::OutOfRangeError("no such etcd member");
  Kill(members_[member]);
  return absl::OkStatus();
}

Status EtcdServer::StartMember(int member) {
  if (member < 0 || member >= members()) return absl::OutOfRangeError("no such etcd member");
  if (members_[member].pid > 0) return absl::FailedPreconditionError("member is running");
  RETURN_IF_ERROR(Spawn(members_[member]));
  return WaitReady(member);
}

bool EtcdServer::IsRunning(int member) const { return members_.at(member).pid > 0; }

namespace {

// The number after `"field" : ` in etcdctl's `-w fields` output, 0 when absent.
uint64_t FieldValue(const std::string& text, const std::string& field) {
  std::string needle = absl::StrCat("\"", field, "\" : ");
  size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + needle.size(), nullptr, 10);
}

}  // namespace

StatusOr<int> EtcdServer::LeaderMember() const {
  for (int i = 0; i < members(); ++i) {
    if (!IsRunning(i)) continue;
    std::string command = absl::StrCat(
        "ETCDCTL_API=3 timeout 10 /usr/bin/etcdctl --command-timeout=3s --endpoints=", endpoint(i));
    if (!options_.server_cert_file.empty()) {
      absl::StrAppend(&command, " --cacert=", Quote(options_.ca_file),
                      " --cert=", Quote(options_.client_cert_file),
                      " --key=", Quote(options_.client_key_file));
    }
    absl::StrAppend(&command, " endpoint status -w fields 2>/dev/null");
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) continue;
    std::string out;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
    pclose(pipe);
    uint64_t member_id = FieldValue(out, "MemberID");
    uint64_t leader = FieldValue(out, "Leader");
    if (member_id != 0 && member_id == leader) return i;
  }
  return absl::UnavailableError("no running etcd member reports itself as the leader");
}

Status EtcdServer::Compact(int64_t revision) {
  datastore::EtcdConfig config = ClientConfig();
  config.request_timeout = std::chrono::milliseconds(5000);
  ASSIGN_OR_RETURN(auto client, datastore::EtcdClient::Create(config));
  return client->Compact(revision);
}

Status EtcdServer::EnableAuth(const std::string& user, const std::string& password) {
  std::vector<std::string> running;
  for (int i = 0; i < members(); ++i) {
    if (IsRunning(i)) running.push_back(endpoint(i));
  }
  if (running.empty()) return absl::FailedPreconditionError("no etcd member is running");
  std::string base = absl::StrCat("ETCDCTL_API=3 timeout 20 /usr/bin/etcdctl --endpoints=",
                                  absl::StrJoin(running, ","));
  if (!options_.server_cert_file.empty()) {
    absl::StrAppend(&base, " --cacert=", Quote(options_.ca_file),
                    " --cert=", Quote(options_.client_cert_file),
                    " --key=", Quote(options_.client_key_file));
  }
  std::string log = Quote(base_dir_ + "/etcdctl.log");
  std::vector<std::string> commands;
  // etcd only enables auth with a root user; other users get the root role.
  std::string root_password = user == "root" ? password : password + "-root";
  commands.push_back(absl::StrCat("user add --interactive=false ", Quote("root:" + root_password)));
  if (user != "root") {
    commands.push_back(absl::StrCat("user add --interactive=false ", Quote(user + ":" + password)));
    commands.push_back(absl::StrCat("user grant-role ", Quote(user), " root"));
  }
  commands.push_back("auth enable");
  for (const auto& c : commands) {
    std::string line = absl::StrCat(base, " ", c, " </dev/null >>", log, " 2>&1");
    int rc = std::system(line.c_str());
    if (rc != 0) {
      std::ifstream in(base_dir_ + "/etcdctl.log");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      return absl::InternalError(absl::StrCat("etcdctl ", c, " failed (", rc, "):\n", text));
    }
  }
  return absl::OkStatus();
}

std::string EtcdServer::LogTail(int member, int lines) const {
  std::ifstream in(members_.at(member).log_file);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  return absl::StrJoin(tail, "\n");
}

}  // namespace vcra::testing
