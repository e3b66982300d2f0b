#include "dataplane/vpp/vpp_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"

namespace vcra::dataplane::vpp {

using Clock = std::chrono::steady_clock;

// The message table VPP sent at the handshake (name_crc -> id, ~850 messages in 26.06), kept as
// one string of names and an index sorted by name: as a std::map of strings it cost ~110 KB per
// connection, and the dataplane holds eight.
class MessageIds {
 public:
  explicit MessageIds(const std::vector<std::pair<uint16_t, std::string>>& table) {
    size_t bytes = 0;
    for (const auto& entry : table) bytes += entry.second.size();
    names_.reserve(bytes);
    entries_.reserve(table.size());
    // Last entry first: after a stable sort by name the first of equal names is the last one VPP
    // listed, the one assigning into a map would have kept, and std::unique keeps it.
    for (auto it = table.rbegin(); it != table.rend(); ++it) {
      entries_.push_back(Entry{static_cast<uint32_t>(names_.size()),
                               static_cast<uint32_t>(it->second.size()), it->first});
      names_ += it->second;
    }
    std::stable_sort(entries_.begin(), entries_.end(),
                     [&](const Entry& a, const Entry& b) { return Name(a) < Name(b); });
    entries_.erase(std::unique(entries_.begin(), entries_.end(),
                               [&](const Entry& a, const Entry& b) { return Name(a) == Name(b); }),
                   entries_.end());
  }
  MessageIds() = default;

  std::optional<uint16_t> Find(std::string_view name) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [&](const Entry& e, std::string_view n) { return Name(e) < n; });
    if (it == entries_.end() || Name(*it) != name) return std::nullopt;
    return it->id;
  }
  bool Contains(std::string_view name) const { return Find(name).has_value(); }
  size_t size() const { return entries_.size(); }
  std::vector<std::string_view> Names() const {
    std::vector<std::string_view> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) out.push_back(Name(e));
    return out;
  }

 private:
  struct Entry {
    uint32_t offset;
    uint32_t length;
    uint16_t id;
  };
  std::string_view Name(const Entry& e) const {
    return std::string_view(names_).substr(e.offset, e.length);
  }
  std::string names_;
  std::vector<Entry> entries_;
};

struct VppClient::Pending {
  uint32_t context = 0;
  uint16_t reply_id = 0;
  uint16_t details_id = 0;
  bool dump = false;
  Clock::time_point deadline;
  bool done = false;
  // Someone blocks on this request: the reader wakes waiters only for these (and for the window),
  // not once per reply, so a pipelined batch costs one wakeup instead of one per route.
  bool waited = false;
  StatusOr<Bytes> result = absl::UnknownError("pending");
  std::vector<Bytes> details;
  std::weak_ptr<Conn> conn;

  void Finish(StatusOr<Bytes> r) {
    done = true;
    result = std::move(r);
  }
};

struct VppClient::Conn {
  int fd = -1;
  int wake_fd = -1;
  std::thread reader;
  std::mutex write_mu;
  // Immutable after the handshake.
  MessageIds ids;
  uint32_t handle = 0;
  std::string version = "unknown";
  uint16_t ping_id = 0;
  uint16_t ping_reply_id = 0;
  uint16_t event_id = 0;
  // Guarded by VppClient::mu_.
  uint32_t next_context = 1;
  std::deque<std::shared_ptr<Pending>> pending;
  // A sender waits for the window to drain to this many outstanding requests (none: SIZE_MAX).
  size_t window_wake_at = SIZE_MAX;
  bool broken = false;
  bool closing = false;  // our sockclnt_delete is out: VPP's EOF is expected
  Status broken_status;

  ~Conn() {
    if (fd >= 0) ::close(fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }
};

namespace {

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

Status Errno(std::string_view what, int e) {
  if (e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNREFUSED || e == ENOENT) {
    return absl::UnavailableError(absl::StrCat(std::string(what), ": ", strerror(e)));
  }
  return absl::InternalError(absl::StrCat(std::string(what), ": ", strerror(e)));
}

// Reads frames until `want_id` or the deadline (handshake only; no reader thread yet).
StatusOr<Bytes> ReadUntil(int fd, FrameReassembler& rx, uint16_t want_id,
                          Clock::time_point deadline) {
  uint8_t buf[65536];
  while (true) {
    while (true) {
      ASSIGN_OR_RETURN(std::optional<Bytes> m, rx.Next());
      if (!m.has_value()) break;
      auto id = PeekMsgId(*m);
      if (id.ok() && *id == want_id) return std::move(*m);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError("VPP did not answer the sockclnt_create handshake");
    }
    pollfd pfd{fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return Errno("poll", errno);
    if (n <= 0) continue;
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r == 0) return absl::UnavailableError("VPP closed the connection during the handshake");
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Errno("read", errno);
    }
    rx.Feed(std::span(buf, static_cast<size_t>(r)));
  }
}

}  // namespace

VppClient::VppClient(VppClientOptions options) : options_(std::move(options)) {}

VppClient::~VppClient() { Close(); }

bool VppClient::connected() const {
  std::lock_guard lock(mu_);
  return conn_ != nullptr && !conn_->broken;
}

uint32_t VppClient::handle() const {
  std::lock_guard lock(mu_);
  return conn_ ? conn_->handle : 0;
}

std::string VppClient::vpp_version() const {
  std::lock_guard lock(mu_);
  return conn_ ? conn_->version : "unknown";
}

size_t VppClient::max_in_flight_seen() const {
  std::lock_guard lock(mu_);
  return max_in_flight_seen_;
}

void VppClient::SetEventHandler(std::function<void(const SwInterfaceEvent&)> handler) {
  std::lock_guard lock(mu_);
  event_handler_ = std::move(handler);
}

StatusOr<uint16_t> VppClient::MsgId(std::string_view name_crc) const {
  std::lock_guard lock(mu_);
  if (conn_ == nullptr) return absl::UnavailableError("not connected to VPP");
  std::optional<uint16_t> id = conn_->ids.Find(name_crc);
  if (!id) return absl::NotFoundError(absl::StrCat("VPP lacks message ", std::string(name_crc)));
  return *id;
}

StatusOr<std::shared_ptr<VppClient::Conn>> VppClient::CurrentConn() const {
  std::lock_guard lock(mu_);
  if (conn_ == nullptr) return absl::UnavailableError("not connected to VPP");
  if (conn_->broken) return conn_->broken_status;
  return conn_;
}

Status VppClient::Connect() {
  Close();
  auto conn = std::make_shared<Conn>();
  sockaddr_un addr{};
  if (options_.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("VPP API socket path too long: " + options_.socket_path);
  }
  conn->fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (conn->fd < 0) return Errno("socket", errno);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options_.socket_path.data(), options_.socket_path.size());
  if (::connect(conn->fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to VPP API socket ", options_.socket_path, ": ", strerror(errno)));
  }
  ::fcntl(conn->fd, F_SETFL, ::fcntl(conn->fd, F_GETFL) | O_NONBLOCK);
  conn->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  // Handshake: the only message whose id is fixed.
  RETURN_IF_ERROR(WriteAll(*conn, Frame(EncodeSockclntCreate({1, options_.client_name})), nullptr));
  FrameReassembler rx(options_.max_message_size);
  ASSIGN_OR_RETURN(Bytes reply_bytes, ReadUntil(conn->fd, rx, kSockclntCreateReplyId,
                                                Clock::now() + options_.connect_timeout));
  ASSIGN_OR_RETURN(SockclntCreateReply reply, DecodeSockclntCreateReply(reply_bytes));
  if (reply.response != 0) {
    return absl::UnavailableError(
        absl::StrCat("VPP refused sockclnt_create: response ", reply.response));
  }
  conn->handle = reply.index;
  conn->ids = MessageIds(reply.table);
  reply.table = {};
  auto id_of = [&](std::string_view n) -> uint16_t { return conn->ids.Find(n).value_or(0); };
  conn->ping_id = id_of(msg::kControlPing);
  conn->ping_reply_id = id_of(msg::kControlPingReply);
  conn->event_id = id_of(msg::kSwInterfaceEvent);
  if (rx.buffered() > 0) {
    // Nothing is sent before the reply and nothing unasked after it; keep going regardless.
    LOG_WARN("VPP sent {} unexpected bytes after the handshake", rx.buffered());
  }

  {
    std::lock_guard lock(mu_);
    conn_ = conn;
  }
  conn->reader = std::thread([this, conn] { ReaderLoop(conn); });

  if (conn->ids.Contains(msg::kShowVersion) && conn->ids.Contains(msg::kShowVersionReply)) {
    auto sv = Call(EncodeBareRequest(id_of(msg::kShowVersion), {}), msg::kShowVersionReply);
    if (sv.ok()) {
      if (auto v = DecodeShowVersionReply(*sv); v.ok()) {
        std::lock_guard lock(mu_);
        conn->version = v->version.empty() ? "unknown" : v->version;
      }
    }
  }

  std::vector<std::string> missing;
  std::vector<std::string> required = options_.required_messages;
  required.push_back(std::string(msg::kControlPing));
  required.push_back(std::string(msg::kControlPingReply));
  for (const std::string& name : required) {
    if (conn->ids.Contains(name)) continue;
    if (std::find(missing.begin(), missing.end(), name) != missing.end()) continue;
    missing.push_back(name);
  }
  if (!missing.empty()) {
    std::vector<std::string> parts;
    for (const std::string& name : missing) {
      // Same message with another CRC = another definition: name it, it helps the operator.
      std::string base = name.size() > 9 ? name.substr(0, name.size() - 9) : name;
      std::string other;
      for (std::string_view n : conn->ids.Names()) {
        if (n.size() == base.size() + 9 && n.compare(0, base.size() + 1, base + "_") == 0) {
          other = n;
        }
      }
      parts.push_back(other.empty() ? name : absl::StrCat(name, " (it has ", other, ")"));
    }
    std::string version = conn->version;
    Close();
    return absl::FailedPreconditionError(
        absl::StrCat("VPP ", version, " lacks ", absl::StrJoin(parts, "; "),
                     " - this agent speaks the VPP 21.06..26.06 API (docs/vpp-api.md, section 3)"));
  }
  LOG_INFO("connected to VPP {} at {} (handle {:#x}, {} messages)", conn->version,
           options_.socket_path, conn->handle, conn->ids.size());
  return absl::OkStatus();
}

void VppClient::Close() {
  std::shared_ptr<Conn> conn;
  {
    std::lock_guard lock(mu_);
    conn = conn_;
  }
  if (conn == nullptr) return;
  bool broken;
  {
    std::lock_guard lock(mu_);
    broken = conn->broken;
  }
  if (!broken) {
    {
      std::lock_guard lock(mu_);
      conn->closing = true;
    }
    std::optional<uint16_t> del = conn->ids.Find(msg::kSockclntDelete);
    std::optional<uint16_t> del_reply = conn->ids.Find(msg::kSockclntDeleteReply);
    if (del && del_reply) {
      SockclntDelete m;
      m.index = conn->handle;
      auto p = Send(EncodeSockclntDelete(*del, m), *del_reply, 0, false);
      if (p.ok()) {
        std::unique_lock lock(mu_);
        (*p)->waited = true;
        // A short wait: VPP answers at once; a closed socket is as good.
        auto deadline = Clock::now() + std::chrono::milliseconds(1000);
        cv_.wait_until(lock, deadline, [&] { return (*p)->done; });
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    if (!conn->broken) {
      conn->broken = true;
      conn->broken_status = absl::UnavailableError("VPP connection closed by the agent");
    }
    FailAllLocked(*conn, conn->broken_status);
    if (conn_ == conn) conn_ = nullptr;
  }
  cv_.notify_all();
  ::shutdown(conn->fd, SHUT_RDWR);
  uint64_t one = 1;
  (void)!::write(conn->wake_fd, &one, sizeof(one));
  if (conn->reader.joinable()) conn->reader.join();
}

Status VppClient::WriteAll(Conn& conn, const Bytes& data, size_t* written) {
  size_t off = 0;
  auto deadline = Clock::now() + options_.request_timeout;
  Status st;
  while (off < data.size()) {
    ssize_t n = ::send(conn.fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      st = Errno("write to VPP", errno);
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      st = absl::UnavailableError("write to VPP timed out");
      break;
    }
    pollfd pfd{conn.fd, POLLOUT, 0};
    ::poll(&pfd, 1, static_cast<int>(left.count()));
  }
  if (written != nullptr) *written = off;
  return st;
}

void VppClient::MarkWriteFailedLocked(Conn& conn, const Status& st) {
  if (!conn.broken) {
    conn.broken = true;  // nothing more is sent on this connection
    conn.broken_status = absl::UnavailableError(st.message());
  }
}

StatusOr<std::shared_ptr<VppClient::Pending>> VppClient::Send(Bytes request, uint16_t reply_id,
                                                              uint16_t details_id, bool dump) {
  if (request.size() < 10) return absl::InvalidArgumentError("request shorter than 10 bytes");
  ASSIGN_OR_RETURN(std::shared_ptr<Conn> conn, CurrentConn());
  std::lock_guard write_lock(conn->write_mu);
  auto p = std::make_shared<Pending>();
  {
    std::unique_lock lock(mu_);
    auto window_deadline = Clock::now() + options_.request_timeout;
    while (!conn->broken && conn->pending.size() >= options_.max_outstanding) {
      ExpireLocked(*conn);
      if (conn->pending.size() < options_.max_outstanding) break;
      conn->window_wake_at = options_.max_outstanding - 1;
      auto until = std::min(window_deadline, conn->pending.front()->deadline);
      if (cv_.wait_until(lock, until) == std::cv_status::timeout &&
          Clock::now() >= window_deadline) {
        conn->window_wake_at = SIZE_MAX;
        return absl::DeadlineExceededError("VPP request window stayed full");
      }
    }
    conn->window_wake_at = SIZE_MAX;
    if (conn->broken) return conn->broken_status;
    uint32_t ctx = conn->next_context++;
    if (conn->next_context == 0) conn->next_context = 1;
    PutBe32(request.data() + 2, conn->handle);
    PutBe32(request.data() + 6, ctx);
    p->context = ctx;
    p->reply_id = reply_id;
    p->details_id = details_id;
    p->dump = dump;
    p->deadline = Clock::now() + options_.request_timeout;
    p->conn = conn;
    conn->pending.push_back(p);
    max_in_flight_seen_ = std::max(max_in_flight_seen_, conn->pending.size());
  }
  Bytes out;
  out.reserve(request.size() + 48);
  AppendFrame(request, &out);
  if (dump) AppendFrame(EncodeBareRequest(conn->ping_id, {conn->handle, p->context}), &out);
  if (Status st = WriteAll(*conn, out, nullptr); !st.ok()) {
    std::lock_guard lock(mu_);
    MarkWriteFailedLocked(*conn, st);
    // Only this request, which never fully left, fails here. The replies to those sent before
    // may still sit in our receive buffer (VPP answered, then closed): the reader resolves them,
    // then fails the rest at EOF, so an op VPP confirmed is reported as done.
    if (auto it = std::find(conn->pending.begin(), conn->pending.end(), p);
        it != conn->pending.end()) {
      conn->pending.erase(it);
    }
    if (!p->done) p->Finish(conn->broken_status);
    cv_.notify_all();
  }
  return p;
}

StatusOr<Bytes> VppClient::Wait(const std::shared_ptr<Pending>& p) {
  std::unique_lock lock(mu_);
  p->waited = true;
  while (!p->done) {
    if (cv_.wait_until(lock, p->deadline) == std::cv_status::timeout && !p->done &&
        Clock::now() >= p->deadline) {
      if (auto conn = p->conn.lock()) ExpireLocked(*conn);
      if (!p->done) p->Finish(absl::DeadlineExceededError("no reply from VPP in time"));
    }
  }
  // Each Pending has one waiter (its caller): the reply moves out instead of being copied.
  return std::move(p->result);
}

void VppClient::ExpireLocked(Conn& conn) {
  auto now = Clock::now();
  std::erase_if(conn.pending, [&](const std::shared_ptr<Pending>& p) {
    if (p->deadline > now) return false;
    p->Finish(absl::DeadlineExceededError(
        absl::StrCat("no reply from VPP within ", options_.request_timeout.count(), " ms")));
    return true;
  });
}

void VppClient::FailAllLocked(Conn& conn, const Status& st) {
  for (auto& p : conn.pending) p->Finish(st);
  conn.pending.clear();
}

StatusOr<Bytes> VppClient::Call(Bytes request, std::string_view reply_name_crc) {
  ASSIGN_OR_RETURN(uint16_t reply_id, MsgId(reply_name_crc));
  ASSIGN_OR_RETURN(auto p, Send(std::move(request), reply_id, 0, false));
  return Wait(p);
}

std::vector<StatusOr<Bytes>> VppClient::CallMany(std::vector<Bytes> requests,
                                                 std::string_view reply_name_crc) {
  return FinishMany(StartMany(std::move(requests), reply_name_crc));
}

std::unique_ptr<VppClient::ManyCall> VppClient::StartMany(std::vector<Bytes> requests,
                                                          std::string_view reply_name_crc) {
  auto call = std::make_unique<ManyCall>();
  call->requests = std::move(requests);
  call->sent.reserve(call->requests.size());
  auto reply_id = MsgId(reply_name_crc);
  if (!reply_id.ok()) {
    while (call->sent.size() < call->requests.size()) call->sent.push_back(reply_id.status());
    return call;
  }
  call->reply_id = *reply_id;
  SendBatch(*call, /*wait_for_window=*/false);
  return call;
}

std::vector<StatusOr<Bytes>> VppClient::FinishMany(std::unique_ptr<ManyCall> call) {
  std::vector<StatusOr<Bytes>> out;
  if (call == nullptr) return out;
  if (call->sent.size() < call->requests.size()) SendBatch(*call, /*wait_for_window=*/true);
  out.reserve(call->sent.size());
  // VPP answers in order, so once the last request is answered every earlier one is resolved
  // too (answered, or failed as dropped): wait on the last one only, then collect.
  for (auto it = call->sent.rbegin(); it != call->sent.rend(); ++it) {
    if (!it->ok()) continue;
    std::unique_lock lock(mu_);
    (**it)->waited = true;
    cv_.wait_until(lock, (**it)->deadline, [&] { return (**it)->done; });
    break;
  }
  for (auto& s : call->sent) out.push_back(s.ok() ? Wait(*s) : StatusOr<Bytes>(s.status()));
  return out;
}

void VppClient::SendBatch(ManyCall& call, bool wait_for_window) {
  std::vector<Bytes>& requests = call.requests;
  auto& sent = call.sent;
  auto fail_rest = [&](const Status& st) {
    while (sent.size() < requests.size()) sent.push_back(st);
  };
  auto current = CurrentConn();
  if (!current.ok()) return fail_rest(current.status());
  std::shared_ptr<Conn> conn = *current;
  for (size_t i = sent.size(); i < requests.size(); ++i) {
    if (requests[i].size() < 10)
      return fail_rest(absl::InvalidArgumentError("request shorter than 10 bytes"));
  }
  // Contexts are handed out in write order: the write lock is held across the window waits.
  std::lock_guard write_lock(conn->write_mu);
  const size_t window = std::max<size_t>(1, options_.max_outstanding);
  // Refill the window a quarter at a time: one write and one wakeup per chunk, not per request.
  const size_t refill = std::max<size_t>(1, window / 4);
  Bytes out;
  std::vector<size_t> frame_end;  // end offset in `out` of each request's frame in the chunk
  size_t next = sent.size();
  while (next < requests.size()) {
    size_t first = next;
    {
      std::unique_lock lock(mu_);
      if (!wait_for_window && !conn->broken && conn->pending.size() >= window) return;
      size_t want = std::min(requests.size() - next, refill);
      auto window_deadline = Clock::now() + options_.request_timeout;
      while (wait_for_window && !conn->broken && conn->pending.size() + want > window) {
        ExpireLocked(*conn);
        if (conn->pending.size() + want <= window) break;
        conn->window_wake_at = window - want;
        auto until = std::min(window_deadline, conn->pending.front()->deadline);
        if (cv_.wait_until(lock, until) == std::cv_status::timeout &&
            Clock::now() >= window_deadline) {
          conn->window_wake_at = SIZE_MAX;
          return fail_rest(absl::DeadlineExceededError("VPP request window stayed full"));
        }
      }
      conn->window_wake_at = SIZE_MAX;
      if (conn->broken) return fail_rest(conn->broken_status);
      size_t k = std::min(requests.size() - next, window - conn->pending.size());
      for (size_t i = 0; i < k; ++i) {
        Bytes& request = requests[next + i];
        auto p = std::make_shared<Pending>();
        uint32_t ctx = conn->next_context++;
        if (conn->next_context == 0) conn->next_context = 1;
        PutBe32(request.data() + 2, conn->handle);
        PutBe32(request.data() + 6, ctx);
        p->context = ctx;
        p->reply_id = call.reply_id;
        p->deadline = Clock::now() + options_.request_timeout;
        p->conn = conn;
        conn->pending.push_back(p);
        sent.push_back(p);
      }
      max_in_flight_seen_ = std::max(max_in_flight_seen_, conn->pending.size());
      next += k;
    }
    out.clear();
    frame_end.clear();
    for (size_t i = first; i < next; ++i) {
      AppendFrame(requests[i], &out);
      frame_end.push_back(out.size());
    }
    size_t written = 0;
    if (Status st = WriteAll(*conn, out, &written); !st.ok()) {
      std::lock_guard lock(mu_);
      MarkWriteFailedLocked(*conn, st);
      // Requests whose frame never fully left fail here; those before them may have been
      // answered already (VPP answered, then closed): the reader resolves them, then fails the
      // rest at EOF, so an op VPP confirmed is reported as done.
      for (size_t i = first; i < next; ++i) {
        if (frame_end[i - first] <= written) continue;
        auto& p = *sent[i];
        if (auto it = std::find(conn->pending.begin(), conn->pending.end(), p);
            it != conn->pending.end()) {
          conn->pending.erase(it);
        }
        if (!p->done) p->Finish(conn->broken_status);
      }
      cv_.notify_all();
      return fail_rest(conn->broken_status);
    }
  }
}

StatusOr<std::vector<Bytes>> VppClient::Dump(Bytes request, std::string_view details_name_crc) {
  ASSIGN_OR_RETURN(uint16_t details_id, MsgId(details_name_crc));
  ASSIGN_OR_RETURN(auto p, Send(std::move(request), 0, details_id, true));
  RETURN_IF_ERROR(Wait(p).status());
  std::lock_guard lock(mu_);
  return std::move(p->details);
}

void VppClient::ReaderLoop(std::shared_ptr<Conn> conn) {
  FrameReassembler rx(options_.max_message_size);
  // Left uninitialised: a zero-filled buffer would make all of it resident at once, on each of
  // the dataplane's eight connections, where most reads are a few hundred bytes.
  constexpr size_t kReadChunk = 65536;
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kReadChunk);
  Status why;
  while (true) {
    pollfd fds[2] = {{conn->fd, POLLIN, 0}, {conn->wake_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      why = Errno("poll", errno);
      break;
    }
    if (fds[1].revents) {
      why = absl::UnavailableError("VPP connection closed by the agent");
      break;
    }
    ssize_t r = ::read(conn->fd, buf.get(), kReadChunk);
    if (r == 0) {
      why = absl::UnavailableError("VPP closed the API connection (EOF)");
      break;
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      why = absl::UnavailableError(absl::StrCat("VPP API connection: ", strerror(errno)));
      break;
    }
    rx.Feed(std::span(buf.get(), static_cast<size_t>(r)));
    bool bad = false;
    while (true) {
      auto m = rx.Next();
      if (!m.ok()) {
        why = absl::UnavailableError(m.status().message());
        bad = true;
        break;
      }
      if (!m->has_value()) break;
      Dispatch(*conn, std::move(**m));
    }
    if (bad) break;
    if (options_.reply_batching_min_outstanding > 0 && options_.reply_batching_pause.count() > 0) {
      size_t outstanding;
      {
        std::lock_guard lock(mu_);
        outstanding = conn->pending.size();
      }
      if (outstanding >= options_.reply_batching_min_outstanding) {
        // Let the replies of VPP's current pass accumulate; Close() still wakes us at once.
        auto ns = std::chrono::nanoseconds(options_.reply_batching_pause).count();
        timespec pause{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        pollfd wake{conn->wake_fd, POLLIN, 0};
        ::ppoll(&wake, 1, &pause, nullptr);
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    if (!conn->broken) {
      conn->broken = true;
      conn->broken_status = why;
      if (!conn->closing) LOG_WARN("VPP API connection lost: {}", std::string(why.message()));
    }
    FailAllLocked(*conn, conn->broken_status);
  }
  cv_.notify_all();
}

void VppClient::Dispatch(Conn& conn, Bytes msg) {
  auto id = PeekMsgId(msg);
  if (!id.ok()) return;
  if (*id == conn.event_id && conn.event_id != 0) {
    auto ev = DecodeSwInterfaceEvent(msg);
    std::function<void(const SwInterfaceEvent&)> handler;
    {
      std::lock_guard lock(mu_);
      handler = event_handler_;
    }
    if (ev.ok() && handler) handler(*ev);
    return;
  }
  if (msg.size() < 6) return;  // no context: nothing to match
  uint32_t ctx = Be32(msg.data() + 2);
  std::lock_guard lock(mu_);
  auto it = std::find_if(conn.pending.begin(), conn.pending.end(),
                         [&](const auto& p) { return p->context == ctx; });
  if (it == conn.pending.end()) {
    LOG_DEBUG("VPP message id {} with unknown context {} ignored", *id, ctx);
    return;
  }
  // VPP answers strictly in order: whatever was sent before this one got no reply.
  bool wake = false;
  for (auto e = conn.pending.begin(); e != it; ++e) {
    (*e)->Finish(
        absl::InternalError("VPP sent no reply: it dropped the request (unknown id or too short)"));
    wake |= (*e)->waited;
  }
  it = conn.pending.erase(conn.pending.begin(), it);
  Pending& p = **it;
  if (p.dump) {
    if (*id == p.details_id) {
      p.details.push_back(std::move(msg));
      return;
    }
    if (*id == conn.ping_reply_id) {
      p.Finish(Bytes());
    } else {
      p.Finish(absl::InternalError(
          absl::StrCat("unexpected VPP message id ", *id, " in a dump (context ", ctx, ")")));
    }
  } else if (*id == p.reply_id) {
    p.Finish(std::move(msg));
  } else {
    p.Finish(absl::InternalError(
        absl::StrCat("unexpected VPP message id ", *id, " as reply (context ", ctx, ")")));
  }
  wake |= p.waited;
  conn.pending.erase(it);
  if (conn.pending.size() <= conn.window_wake_at) {
    // Once: the sender re-arms it if it still has to wait. Without the reset every reply
    // until the sender runs would broadcast again.
    conn.window_wake_at = SIZE_MAX;
    wake = true;
  }
  if (wake) cv_.notify_all();
}

}  // namespace vcra::dataplane::vpp
