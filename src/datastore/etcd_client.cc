// EtcdClient and EtcdWatcher over gRPC's synchronous API.
//
// The watcher runs the synchronous bidi stream on its own thread: one thread per watcher is
// cheap, the control flow (list, watch, reconnect, re-list) reads top to bottom, and Stop()
// only needs ClientContext::TryCancel to unblock it. The completion-queue API would buy nothing
// here but callbacks and state machines.
//
// NOTE (failover): a call goes to the current endpoint; UNAVAILABLE or DEADLINE_EXCEEDED (or
// not connecting within dial_timeout) moves the client to the next endpoint and the call is
// retried there, each endpoint at most once per call. Other errors are returned as they are.
//
// NOTE (auth): the token from Auth.Authenticate is sent as the "token" metadata. etcd's simple
// tokens expire (and are member state), so an "invalid auth token" answer triggers one
// re-authentication and one retry of the call.
//
// NOTE (listing): a listing learns its revision R from a tiny linearizable read (one key, keys
// only: a ReadIndex round and a header), then reads every page serializable and pinned at R. A
// pinned serializable read is answered by whichever member gets it, without a round to the
// leader, and it is exact: history at R never changes. An `etcd grpc-proxy` keys its cache on
// the whole request, so agents that list at the same R send byte-identical page requests and
// share its cached answers. R itself must not come from a serializable read: a lagging follower
// would answer an old R, and the proxy caches serializable answers at revision 0 until a write
// *through that proxy* invalidates them, so its R could be arbitrarily old, even compacted, and a
// re-list after a compaction would be served the same compacted R again. docs/design.md ("etcd")
// has the argument why the watch from R+1 makes the result exact.
//
// NOTE (page size): the first page asks for one key; its answer carries the range's `count` N,
// and every later page asks for N² / (2 × listing_walk_budget) keys, at least min_page_size and
// at most page_size (EtcdConfig has the three). Memory and etcd's work pull opposite ways: a page
// in flight costs the agent its size, and etcd 3.4 answers a limited Range after collecting every
// key left in the range, so a listing in pages of P keys costs it ~N²/2P key visits. With pages so
// sized, that cost stays at the budget (1M visits: what 100k keys in pages of 5000 cost) up to the
// largest page (2500 keys, from ~70k keys: 2M visits at 100k, which costs a quiet etcd 3.4 a few
// tens of ms and saves the agent 20 MiB), while a small cluster's listing moves through memory in
// small pages (200 keys up to ~20k keys). Every agent listing at the same revision sees the same
// count, so their requests stay identical (the proxy's cache key).

#include "datastore/etcd_client.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/log.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace vcra::datastore {

namespace pb = etcdserverpb;

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Empty or all 0xff: no key sorts after every key with this prefix, so "to the end".
  return std::string(1, '\0');
}

Status EtcdClient::Compact(int64_t /*revision*/) {
  return absl::UnimplementedError("Compact is not supported by this EtcdClient");
}

StatusOr<int64_t> EtcdClient::RangePrefixPages(const std::string& prefix, int64_t revision,
                                               const PageCallback& on_page) {
  ASSIGN_OR_RETURN(Snapshot all, RangePrefix(prefix, revision));
  int64_t keys = static_cast<int64_t>(all.kvs.size());
  RETURN_IF_ERROR(on_page(std::move(all.kvs), all.revision, keys));
  return all.revision;
}

namespace {

constexpr int kMaxMessageBytes = 256 * 1024 * 1024;
// Hard bound on pages per listing; with the smallest sane page size this is far beyond any
// real datastore and only stops a server that keeps answering more=true.
constexpr int kMaxPages = 10'000'000;

struct Endpoint {
  std::string display;  // as configured, for logs
  std::string target;   // host:port for gRPC
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Auth::Stub> auth;
};

StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read etcd ", what, " ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(absl::StrCat("error reading etcd ", what, " ", path));
  }
  return ss.str();
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Status ToStatus(const std::string& what, const std::string& endpoint, const grpc::Status& s) {
  std::string msg = absl::StrCat("etcd ", what, " via ", endpoint, ": ", s.error_message(),
                                 " (grpc code ", static_cast<int>(s.error_code()), ")");
  if (Contains(s.error_message(), "user name is empty")) {
    absl::StrAppend(&msg, "; etcd has authentication enabled: configure a username and password");
  }
  return Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

// etcd's answer to a read at a revision its member has not applied yet.
bool IsFutureRevision(const Status& s) {
  return Contains(std::string_view(s.message().data(), s.message().size()),
                  "required revision is a future revision");
}

bool IsFailover(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// etcd answers an expired or unknown simple token with "invalid auth token" (UNAUTHENTICATED),
// and a token minted before an auth change with "revision of auth store is old".
bool IsStaleToken(grpc::StatusCode code, std::string_view message) {
  return code == grpc::StatusCode::UNAUTHENTICATED || Contains(message, "invalid auth token") ||
         Contains(message, "revision of auth store is old");
}

// gRPC (Debian's 1.51) runs TLS handshakes on its own thread pools (EventEngine, executor),
// whose threads are never joined: they are still alive when the process exits. Each thread that
// did a handshake holds OpenSSL per-thread state (its random generators), freed by a
// thread-local destructor when the thread ends. OpenSSL's default atexit handler deletes that
// thread-local key while those threads still run, so their state can no longer be freed nor
// found: LeakSanitizer reported it as "leaked from CRYPTO_zalloc" in about one exit in five
// (whenever a pool thread had done a handshake). Leaving OpenSSL initialised until the process
// is gone fixes this at the cause; the OS reclaims the memory at exit either way. Must run
// before anything else initialises OpenSSL, so it is the first thing a client does.
void KeepOpenSslUntilExit() {
  static std::once_flag once;
  std::call_once(once, [] { OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr); });
}

class GrpcEtcdClient final : public EtcdClient {
 public:
  static StatusOr<std::unique_ptr<GrpcEtcdClient>> Make(const EtcdConfig& config) {
    KeepOpenSslUntilExit();
    if (config.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints");
    if (config.page_size <= 0 || config.min_page_size <= 0 || config.listing_walk_budget <= 0) {
      return absl::InvalidArgumentError(
          "etcd page_size, min_page_size and listing_walk_budget must be positive");
    }
    if (config.username.empty() != config.password.empty()) {
      return absl::InvalidArgumentError("etcd username and password must be given together");
    }
    if (config.cert_file.empty() != config.key_file.empty()) {
      return absl::InvalidArgumentError("etcd cert_file and key_file must be given together");
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    // gRPC's default reconnect backoff grows to 120 s; a member back after a restart must be
    // noticed within seconds.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    // Detects a silently dead member under an idle watch. etcd's default enforcement allows
    // pings every 5 s, and only while a stream is open.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);

    std::shared_ptr<grpc::ChannelCredentials> tls_creds;
    auto client = std::unique_ptr<GrpcEtcdClient>(new GrpcEtcdClient(config));
    for (const std::string& raw : config.endpoints) {
      std::string_view rest = raw;
      bool tls = false;
      if (rest.starts_with("https://")) {
        tls = true;
        rest.remove_prefix(8);
      } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
      } else if (rest.find("://") != std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("etcd endpoint '", raw, "': only http:// and https:// are supported"));
      }
      while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
      size_t colon = rest.rfind(':');
      if (rest.empty() || colon == std::string_view::npos || colon == 0 ||
          colon + 1 == rest.size() || rest.find('/') != std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("etcd endpoint '", raw, "' is not [http[s]://]host:port"));
      }
      std::shared_ptr<grpc::ChannelCredentials> creds;
      if (tls) {
        if (!tls_creds) {
          grpc::SslCredentialsOptions opts;
          if (!config.ca_cert_file.empty()) {
            ASSIGN_OR_RETURN(opts.pem_root_certs, ReadFile(config.ca_cert_file, "CA file"));
          }
          if (!config.cert_file.empty()) {
            ASSIGN_OR_RETURN(opts.pem_cert_chain, ReadFile(config.cert_file, "certificate"));
            ASSIGN_OR_RETURN(opts.pem_private_key, ReadFile(config.key_file, "key"));
          }
          tls_creds = grpc::SslCredentials(opts);
        }
        creds = tls_creds;
      } else {
        creds = grpc::InsecureChannelCredentials();
      }
      auto ep = std::make_unique<Endpoint>();
      ep->display = raw;
      ep->target = std::string(rest);
      ep->channel = grpc::CreateCustomChannel(ep->target, creds, args);
      ep->kv = pb::KV::NewStub(ep->channel);
      ep->auth = pb::Auth::NewStub(ep->channel);
      client->endpoints_.push_back(std::move(ep));
    }
    return client;
  }

  // See the NOTE (listing) at the top. Below prefetch_below_bytes, page N+1 is requested (on a
  // helper thread) before page N is handed over, so the server works on it meanwhile.
  StatusOr<Snapshot> RangePrefix(const std::string& prefix, int64_t revision) override {
    Snapshot out;
    ASSIGN_OR_RETURN(
        out.revision,
        RangePrefixPages(prefix, revision, [&](std::vector<KeyValue>&& kvs, int64_t, int64_t) {
          if (out.kvs.empty()) {
            out.kvs = std::move(kvs);
          } else {
            out.kvs.reserve(out.kvs.size() + kvs.size());
            std::move(kvs.begin(), kvs.end(), std::back_inserter(out.kvs));
          }
          return absl::OkStatus();
        }));
    return out;
  }

  StatusOr<int64_t> RangePrefixPages(const std::string& prefix, int64_t revision,
                                     const PageCallback& on_page) override {
    if (revision == 0) {
      ASSIGN_OR_RETURN(revision, CurrentRevision(prefix));
    }
    // Every field fixed and deterministic: the same page at the same R is the same request
    // (the gRPC proxy's cache key) whichever agent sends it.
    pb::RangeRequest req;
    // etcd rejects an empty key; "\0".."\0" is its spelling of "every key".
    req.set_key(prefix.empty() ? std::string(1, '\0') : prefix);
    req.set_range_end(PrefixRangeEnd(prefix));
    req.set_limit(1);  // for the range's count: see NOTE (page size)
    req.set_revision(revision);
    req.set_serializable(true);
    ASSIGN_OR_RETURN(pb::RangeResponse page, RangePage(req));
    const int64_t range_keys = std::max<int64_t>(page.count(), page.kvs_size());
    for (int n = 0; n < kMaxPages; ++n) {
      std::future<StatusOr<pb::RangeResponse>> next;
      if (page.more()) {
        if (page.kvs_size() == 0) {
          return absl::InternalError("etcd Range answered more=true with no keys");
        }
        if (n == 0) req.set_limit(PageSizeFor(range_keys));
        // The smallest key after the last one received.
        req.set_key(page.kvs(page.kvs_size() - 1).key() + std::string(1, '\0'));
        // A small page: the next one is asked for before this one is handed over, so its round
        // trip overlaps the consumer's decoding too; a large one: after, so that one page of
        // values is in memory at a time (EtcdConfig::prefetch_below_bytes).
        if (static_cast<int64_t>(page.ByteSizeLong()) < config_.prefetch_below_bytes) {
          next = std::async(std::launch::async, [this, req] { return RangePage(req); });
        } else {
          next = std::async(std::launch::deferred, [this, req] { return RangePage(req); });
        }
      }
      std::vector<KeyValue> kvs;
      kvs.reserve(page.kvs_size());
      for (auto& kv : *page.mutable_kvs()) {
        kvs.push_back(KeyValue{std::move(*kv.mutable_key()), std::move(*kv.mutable_value()),
                               kv.mod_revision()});
      }
      page.Clear();
      Status delivered = on_page(std::move(kvs), req.revision(), n == 0 ? range_keys : 0);
      if (!delivered.ok()) {
        if (next.valid()) next.wait();  // the helper thread must not outlive this call
        return delivered;
      }
      if (!next.valid()) return req.revision();
      ASSIGN_OR_RETURN(page, next.get());
    }
    return absl::InternalError("etcd Range did not finish within the page bound");
  }

  // Keys per page after the first, for a range of `keys` keys (etcd's count, which a broken
  // server could send as anything): see NOTE (page size).
  int64_t PageSizeFor(int64_t keys) const {
    double balanced = static_cast<double>(keys) * static_cast<double>(keys) /
                      (2.0 * static_cast<double>(config_.listing_walk_budget));
    if (!(balanced < static_cast<double>(config_.page_size))) return config_.page_size;
    return std::min(config_.page_size,
                    std::max(config_.min_page_size, static_cast<int64_t>(balanced)));
  }

  // The store's revision now: a linearizable Range of the single key `probe_key` (usually
  // absent; keys only, so at most one key comes back). Linearizable, so R is at least every
  // revision committed before the call, whichever member or proxy answers; a gRPC proxy always
  // forwards it. Its cost to the members does not grow with the data, unlike a limited Range
  // over the prefix, which etcd 3.4 answers after counting the whole rest of the range.
  StatusOr<int64_t> CurrentRevision(const std::string& probe_key) {
    pb::RangeRequest req;
    req.set_key(probe_key.empty() ? std::string(1, '\0') : probe_key);
    req.set_keys_only(true);
    pb::RangeResponse resp;
    range_rpcs_.fetch_add(1, std::memory_order_relaxed);
    RETURN_IF_ERROR(Call("Range", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      resp.Clear();
      return ep.kv->Range(ctx, req, &resp);
    }));
    if (resp.header().revision() <= 0) {
      return absl::InternalError(
          absl::StrCat("etcd Range answered with revision ", resp.header().revision()));
    }
    return resp.header().revision();
  }

  StatusOr<pb::RangeResponse> RangePage(const pb::RangeRequest& req) {
    pb::RangeResponse resp;
    range_rpcs_.fetch_add(1, std::memory_order_relaxed);
    Status s = Call("Range", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      resp.Clear();
      return ep.kv->Range(ctx, req, &resp);
    });
    if (s.ok() || !req.serializable() || !IsFutureRevision(s)) {
      RETURN_IF_ERROR(s);
      return resp;
    }
    // A member that has not applied R yet (we failed over mid-listing to a lagging follower)
    // refuses a serializable read at R; a linearizable one waits until it has caught up.
    pb::RangeRequest linearizable = req;
    linearizable.set_serializable(false);
    range_rpcs_.fetch_add(1, std::memory_order_relaxed);
    RETURN_IF_ERROR(Call("Range", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      resp.Clear();
      return ep.kv->Range(ctx, linearizable, &resp);
    }));
    return resp;
  }

  StatusOr<int64_t> Put(const std::string& key, const std::string& value) override {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    pb::PutResponse resp;
    RETURN_IF_ERROR(Call("Put", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      return ep.kv->Put(ctx, req, &resp);
    }));
    return resp.header().revision();
  }

  StatusOr<int64_t> PutIfChanged(const std::string& key, const std::string& value) override {
    pb::RangeRequest req;
    req.set_key(key);
    pb::RangeResponse resp;
    RETURN_IF_ERROR(Call("Range", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      resp.Clear();
      return ep.kv->Range(ctx, req, &resp);
    }));
    if (resp.kvs_size() == 1 && resp.kvs(0).key() == key && resp.kvs(0).value() == value) {
      return resp.header().revision();
    }
    return Put(key, value);
  }

  StatusOr<int64_t> Delete(const std::string& key) override { return DeleteRange(key, ""); }

  StatusOr<int64_t> DeletePrefix(const std::string& prefix) override {
    return DeleteRange(prefix.empty() ? std::string(1, '\0') : prefix, PrefixRangeEnd(prefix));
  }

  Status Compact(int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    pb::CompactionResponse resp;
    return Call("Compact", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      return ep.kv->Compact(ctx, req, &resp);
    });
  }

  int64_t range_rpc_count() const override { return range_rpcs_.load(); }

  std::string CurrentEndpoint() const override {
    std::lock_guard lock(mu_);
    return endpoints_[current_]->display;
  }

  // --- For the watcher ---

  struct Connection {
    size_t index = 0;
    std::string display;
    std::shared_ptr<grpc::Channel> channel;
    std::string token;  // empty without auth
  };

  // The current endpoint, connected, with a token when auth is configured. On failure the
  // client has moved on to the next endpoint.
  StatusOr<Connection> Connect() {
    auto [index, ep] = Current();
    if (!WaitConnected(*ep)) {
      Status s = absl::UnavailableError(
          absl::StrCat("etcd endpoint ", ep->display, " did not connect within dial timeout"));
      MarkFailed(index, std::string(s.message()));
      return s;
    }
    Connection conn{index, ep->display, ep->channel, ""};
    if (HasAuth()) {
      auto token = Token(*ep);
      if (!token.ok()) {
        if (absl::IsUnavailable(token.status()) || absl::IsDeadlineExceeded(token.status())) {
          MarkFailed(index, std::string(token.status().message()));
        }
        return token.status();
      }
      conn.token = *std::move(token);
    }
    return conn;
  }

  // Moves to the next endpoint unless another caller already did.
  void MarkFailed(size_t index, std::string_view reason) {
    std::lock_guard lock(mu_);
    if (index != current_ || endpoints_.size() == 1) return;
    current_ = (current_ + 1) % endpoints_.size();
    LOG_WARN("etcd: endpoint {} failed ({}); switching to {}", endpoints_[index]->display, reason,
             endpoints_[current_]->display);
  }

  void InvalidateToken() {
    std::lock_guard lock(mu_);
    token_.clear();
  }

  // Cancels in-flight calls and fails later ones, so that a watcher's Stop() is prompt even
  // while it is listing.
  void Shutdown() {
    std::lock_guard lock(mu_);
    shutdown_ = true;
    for (grpc::ClientContext* ctx : in_flight_) ctx->TryCancel();
  }

  bool HasAuth() const { return !config_.username.empty(); }
  const EtcdConfig& config() const { return config_; }

 private:
  explicit GrpcEtcdClient(EtcdConfig config) : config_(std::move(config)) {}

  using Rpc = std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>;

  StatusOr<int64_t> DeleteRange(const std::string& key, const std::string& range_end) {
    pb::DeleteRangeRequest req;
    req.set_key(key);
    req.set_range_end(range_end);
    pb::DeleteRangeResponse resp;
    RETURN_IF_ERROR(Call("DeleteRange", [&](Endpoint& ep, grpc::ClientContext* ctx) {
      return ep.kv->DeleteRange(ctx, req, &resp);
    }));
    return resp.header().revision();
  }

  std::pair<size_t, Endpoint*> Current() const {
    std::lock_guard lock(mu_);
    return {current_, endpoints_[current_].get()};
  }

  bool IsShutdown() const {
    std::lock_guard lock(mu_);
    return shutdown_;
  }

  // Polls in short slices so that Shutdown() is not held up by a dial timeout.
  bool WaitConnected(Endpoint& ep) const {
    auto deadline = std::chrono::system_clock::now() + config_.dial_timeout;
    while (!IsShutdown()) {
      grpc_connectivity_state state = ep.channel->GetState(/*try_to_connect=*/true);
      if (state == GRPC_CHANNEL_READY) return true;
      auto now = std::chrono::system_clock::now();
      if (now >= deadline) return false;
      ep.channel->WaitForStateChange(state,
                                     std::min(deadline, now + std::chrono::milliseconds(100)));
    }
    return false;
  }

  // Runs `rpc` with a deadline and registers it for Shutdown().
  grpc::Status Invoke(Endpoint& ep, const std::string& token, const Rpc& rpc) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + config_.request_timeout);
    if (!token.empty()) ctx.AddMetadata("token", token);
    {
      std::lock_guard lock(mu_);
      if (shutdown_) return grpc::Status(grpc::StatusCode::CANCELLED, "etcd client shut down");
      in_flight_.insert(&ctx);
    }
    grpc::Status s = rpc(ep, &ctx);
    std::lock_guard lock(mu_);
    in_flight_.erase(&ctx);
    return s;
  }

  // The cached token, or a new one from Authenticate on `ep`.
  StatusOr<std::string> Token(Endpoint& ep) {
    {
      std::lock_guard lock(mu_);
      if (!token_.empty()) return token_;
    }
    pb::AuthenticateRequest req;
    req.set_name(config_.username);
    req.set_password(config_.password);
    pb::AuthenticateResponse resp;
    grpc::Status s = Invoke(ep, "", [&](Endpoint& e, grpc::ClientContext* ctx) {
      return e.auth->Authenticate(ctx, req, &resp);
    });
    if (!s.ok()) {
      Status st = ToStatus("Authenticate", ep.display, s);
      return Status(st.code(), absl::StrCat(st.message(), " (user '", config_.username, "')"));
    }
    std::lock_guard lock(mu_);
    token_ = resp.token();
    return token_;
  }

  Status Call(const char* what, const Rpc& rpc) {
    const size_t n = endpoints_.size();
    bool reauthenticated = false;
    std::string last_error;
    for (size_t tried = 0; tried < n;) {
      auto [index, ep] = Current();
      if (IsShutdown()) return absl::CancelledError("etcd client shut down");
      if (!WaitConnected(*ep)) {
        last_error = absl::StrCat(ep->display, ": not connected within dial timeout");
        MarkFailed(index, "not connected within dial timeout");
        ++tried;
        continue;
      }
      std::string token;
      if (HasAuth()) {
        auto t = Token(*ep);
        if (!t.ok()) {
          if (absl::IsUnavailable(t.status()) || absl::IsDeadlineExceeded(t.status())) {
            last_error = std::string(t.status().message());
            MarkFailed(index, last_error);
            ++tried;
            continue;
          }
          return t.status();
        }
        token = *std::move(t);
      }
      grpc::Status s = Invoke(*ep, token, rpc);
      if (s.ok()) return absl::OkStatus();
      if (HasAuth() && !reauthenticated && IsStaleToken(s.error_code(), s.error_message())) {
        LOG_INFO("etcd: auth token rejected by {} ({}); re-authenticating", ep->display,
                 s.error_message());
        reauthenticated = true;
        InvalidateToken();
        continue;  // the same endpoint again, with a fresh token
      }
      if (IsFailover(s) && !IsShutdown()) {
        last_error = absl::StrCat(ep->display, ": ", s.error_message());
        MarkFailed(index, s.error_message());
        ++tried;
        continue;
      }
      return ToStatus(what, ep->display, s);
    }
    return absl::UnavailableError(absl::StrCat("etcd ", what, ": no endpoint answered (tried ", n,
                                               "); last error: ", last_error));
  }

  const EtcdConfig config_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // fixed after Make()
  std::atomic<int64_t> range_rpcs_{0};

  mutable std::mutex mu_;
  size_t current_ = 0;                        // guarded by mu_
  std::string token_;                         // guarded by mu_
  bool shutdown_ = false;                     // guarded by mu_
  std::set<grpc::ClientContext*> in_flight_;  // guarded by mu_
};

}  // namespace

StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(const EtcdConfig& config) {
  ASSIGN_OR_RETURN(auto client, GrpcEtcdClient::Make(config));
  return std::unique_ptr<EtcdClient>(std::move(client));
}

// ------------------------------------------------------------------------------------------
// EtcdWatcher

namespace {

// What Stop() shares with the watcher thread.
struct WatchControl {
  std::mutex mu;
  std::condition_variable cv;
  grpc::ClientContext* stream_ctx = nullptr;  // the live Watch call, guarded by mu
  std::shared_ptr<GrpcEtcdClient> client;     // guarded by mu
  int64_t start_revision_for_test = 0;
};

// Drops prefixes covered by another one (overlapping watches would deliver events twice),
// keeping the caller's order: it is the order the listing delivers them in.
std::vector<std::string> CoveringPrefixes(std::vector<std::string> prefixes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    bool covered = false;
    for (size_t j = 0; j < prefixes.size() && !covered; ++j) {
      if (i == j) continue;
      // Covered by a strictly shorter prefix, or a duplicate of an earlier one.
      covered = prefixes[i].starts_with(prefixes[j]) &&
                (prefixes[j].size() < prefixes[i].size() || j < i);
    }
    if (!covered) out.push_back(prefixes[i]);
  }
  return out;
}

// The state of one Run() of the watcher thread.
class WatchLoop {
 public:
  WatchLoop(std::vector<std::string> prefixes, const WatchSink& sink,
            const std::atomic<bool>& stopping, WatchControl& impl)
      : prefixes_(CoveringPrefixes(std::move(prefixes))),
        sink_(sink),
        stopping_(stopping),
        impl_(impl),
        backoff_(std::chrono::milliseconds(100), std::chrono::seconds(5)) {}

  void Run(GrpcEtcdClient& client) {
    bool need_list = true;
    if (impl_.start_revision_for_test > 0) {
      next_rev_.assign(prefixes_.size(), impl_.start_revision_for_test);
      need_list = false;
    }
    while (!stopping_) {
      if (need_list) {
        auto listed = List(client);
        if (!listed.ok()) {
          if (stopping_) break;
          ReportConnection(false, std::string(listed.status().message()));
          Sleep();
          continue;
        }
        next_rev_.assign(prefixes_.size(), *listed + 1);
        need_list = false;
      }
      std::string reason;
      End end = Watch(client, &reason);
      if (end == End::kStopped || stopping_) break;
      if (end == End::kCompacted) {
        LOG_WARN("etcd watcher: {}; listing again", reason);
        need_list = true;
        continue;
      }
      LOG_WARN("etcd watcher: {}", reason);
      ReportConnection(false, reason);
      Sleep();
    }
  }

 private:
  enum class End { kStopped, kBroken, kCompacted };

  // Every prefix at one revision, handed to the sink page by page: the prefixes in the order
  // given, each in key order. Returns the revision listed.
  StatusOr<int64_t> List(GrpcEtcdClient& client) {
    int64_t revision = 0;
    size_t keys = 0;
    bool first = true;
    for (const std::string& prefix : prefixes_) {
      ASSIGN_OR_RETURN(
          revision,
          client.RangePrefixPages(
              prefix, revision,
              [&](std::vector<KeyValue>&& kvs, int64_t at, int64_t range_keys) -> Status {
                if (stopping_) return absl::CancelledError("the watcher is stopping");
                if (first && !next_rev_.empty() &&
                    at + 1 < *std::max_element(next_rev_.begin(), next_rev_.end())) {
                  // Cannot happen with a linearizable first page; a misbehaving server or
                  // proxy must not make us go back in time (the sink would re-apply older
                  // values).
                  return absl::InternalError(
                      absl::StrCat("etcd listed at revision ", at, ", older than revision ",
                                   *std::max_element(next_rev_.begin(), next_rev_.end()) - 1,
                                   " already delivered"));
                }
                keys += kvs.size();
                if (sink_.on_listing_page) {
                  sink_.on_listing_page(ListingPage{std::move(kvs), at, first, false, range_keys});
                }
                first = false;
                return absl::OkStatus();
              }));
    }
    LOG_INFO("etcd watcher: listed {} keys at revision {}", keys, revision);
    if (sink_.on_listing_page) sink_.on_listing_page(ListingPage{{}, revision, first, true});
    return revision;
  }

  // One Watch stream with one watch per prefix, until it breaks, is stopped or hits compacted
  // history.
  End Watch(GrpcEtcdClient& client, std::string* reason) {
    auto conn = client.Connect();
    if (!conn.ok()) {
      *reason = std::string(conn.status().message());
      return End::kBroken;
    }
    grpc::ClientContext ctx;
    if (!conn->token.empty()) ctx.AddMetadata("token", conn->token);
    // etcd then cancels the stream when its member loses the leader, instead of leaving us
    // on a partitioned member that will never see another event.
    ctx.AddMetadata("hasleader", "true");
    {
      std::lock_guard lock(impl_.mu);
      if (stopping_) return End::kStopped;
      impl_.stream_ctx = &ctx;
    }
    End end = RunStream(client, *conn, ctx, reason);
    std::lock_guard lock(impl_.mu);
    impl_.stream_ctx = nullptr;
    return end;
  }

  using WatchStream = grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>;

  // What one stream has learnt so far.
  struct StreamState {
    std::map<int64_t, size_t> index_of;  // watch id -> prefix index
    std::vector<Change> pending;         // events of a fragmented response
  };

  End RunStream(GrpcEtcdClient& client, const GrpcEtcdClient::Connection& conn,
                grpc::ClientContext& ctx, std::string* reason) {
    auto stub = pb::Watch::NewStub(conn.channel);
    std::unique_ptr<WatchStream> stream = stub->Watch(&ctx);
    if (!CreateWatches(*stream)) return CloseStream(*stream, ctx, conn, End::kBroken, reason);
    StreamState state;
    pb::WatchResponse resp;
    while (stream->Read(&resp)) {
      if (std::optional<End> end = OnResponse(client, conn, resp, state, reason)) {
        return CloseStream(*stream, ctx, conn, *end, reason);
      }
    }
    return StreamBroke(client, conn, stream->Finish(), reason);
  }

  // One create request per prefix, each from that prefix's next revision.
  bool CreateWatches(WatchStream& stream) {
    for (size_t i = 0; i < prefixes_.size(); ++i) {
      pb::WatchRequest req;
      auto* create = req.mutable_create_request();
      create->set_key(prefixes_[i].empty() ? std::string(1, '\0') : prefixes_[i]);
      create->set_range_end(PrefixRangeEnd(prefixes_[i]));
      create->set_start_revision(next_rev_[i]);
      create->set_progress_notify(true);
      create->set_prev_kv(true);
      create->set_fragment(true);
      if (!stream.Write(req)) return false;
    }
    return true;
  }

  // Handles one response; returns how the stream ends, or nothing to keep reading.
  std::optional<End> OnResponse(GrpcEtcdClient& client, const GrpcEtcdClient::Connection& conn,
                                pb::WatchResponse& resp, StreamState& state, std::string* reason) {
    if (resp.compact_revision() != 0) {
      *reason = absl::StrCat("watch start revision compacted (compact revision ",
                             resp.compact_revision(), ")");
      return End::kCompacted;
    }
    if (resp.created() && !resp.canceled()) {
      if (auto end = OnCreated(conn, resp, state, reason)) return end;
    }
    if (resp.canceled()) return OnCanceled(client, conn, resp, reason);
    if (resp.events_size() == 0) {
      if (!resp.created()) OnProgress(resp, state);
      return std::nullopt;
    }
    return OnEvents(resp, state, reason);
  }

  // etcd answers create requests in order; the i-th "created" carries prefix i's watch id.
  std::optional<End> OnCreated(const GrpcEtcdClient::Connection& conn,
                               const pb::WatchResponse& resp, StreamState& state,
                               std::string* reason) {
    size_t i = state.index_of.size();
    if (i >= prefixes_.size()) {
      *reason = "etcd created more watches than requested";
      return End::kBroken;
    }
    state.index_of[resp.watch_id()] = i;
    if (state.index_of.size() == prefixes_.size()) {
      LOG_INFO("etcd watcher: watching {} prefixes on {}", prefixes_.size(), conn.display);
      ReportConnection(true, "");
      backoff_.Reset();
    }
    return std::nullopt;
  }

  End OnCanceled(GrpcEtcdClient& client, const GrpcEtcdClient::Connection& conn,
                 const pb::WatchResponse& resp, std::string* reason) {
    *reason = absl::StrCat("watch canceled by ", conn.display, ": ", resp.cancel_reason());
    if (Contains(resp.cancel_reason(), "compacted")) return End::kCompacted;
    // etcd refuses a watch made with an expired token as "permission denied", not as an
    // invalid token; a fresh token costs one RPC per retry, a stale one would loop forever.
    if (client.HasAuth()) client.InvalidateToken();
    return End::kBroken;
  }

  // A progress notification: nothing at or below header.revision is still to come.
  // watch_id -1 answers a stream-wide progress request and covers every watch. (A gRPC proxy
  // answers progress requests with revision 0; max() makes that harmless.)
  void OnProgress(const pb::WatchResponse& resp, const StreamState& state) {
    int64_t next = resp.header().revision() + 1;
    for (auto& [id, i] : state.index_of) {
      if (resp.watch_id() == -1 || id == resp.watch_id()) {
        next_rev_[i] = std::max(next_rev_[i], next);
      }
    }
  }

  std::optional<End> OnEvents(pb::WatchResponse& resp, StreamState& state, std::string* reason) {
    auto it = state.index_of.find(resp.watch_id());
    if (it == state.index_of.end()) {
      *reason = absl::StrCat("events for unknown watch id ", resp.watch_id());
      return End::kBroken;
    }
    size_t i = it->second;
    for (auto& ev : *resp.mutable_events()) {
      auto* kv = ev.mutable_kv();
      // At or after a reconnect etcd may replay what we already have.
      if (kv->mod_revision() < next_rev_[i]) continue;
      Change c;
      c.type = ev.type() == mvccpb::Event::DELETE ? Change::Type::kDelete : Change::Type::kPut;
      c.key = std::move(*kv->mutable_key());
      if (c.type == Change::Type::kPut) c.value = std::move(*kv->mutable_value());
      c.revision = kv->mod_revision();
      state.pending.push_back(std::move(c));
    }
    if (resp.fragment()) return std::nullopt;
    // Only advance after a whole response: one revision (a txn) may hold several events.
    for (const Change& c : state.pending) next_rev_[i] = std::max(next_rev_[i], c.revision + 1);
    if (!state.pending.empty() && sink_.on_changes) sink_.on_changes(std::move(state.pending));
    state.pending.clear();
    return std::nullopt;
  }

  // Closes the stream when we end it: a sync stream must be drained and finished.
  End CloseStream(WatchStream& stream, grpc::ClientContext& ctx,
                  const GrpcEtcdClient::Connection& conn, End end, std::string* reason) {
    ctx.TryCancel();
    pb::WatchResponse ignored;
    while (stream.Read(&ignored)) {
    }
    grpc::Status s = stream.Finish();
    if (end == End::kBroken && reason->empty()) {
      *reason = absl::StrCat("watch stream to ", conn.display, " ended: ", s.error_message());
    }
    return stopping_ ? End::kStopped : end;
  }

  // The server ended the stream.
  End StreamBroke(GrpcEtcdClient& client, const GrpcEtcdClient::Connection& conn,
                  const grpc::Status& s, std::string* reason) {
    if (stopping_) return End::kStopped;
    *reason = absl::StrCat("watch stream to ", conn.display, " broke: ", s.error_message(),
                           " (grpc code ", static_cast<int>(s.error_code()), ")");
    if (IsStaleToken(s.error_code(), s.error_message())) client.InvalidateToken();
    client.MarkFailed(conn.index, s.error_message());
    return End::kBroken;
  }

  void ReportConnection(bool connected, const std::string& reason) {
    if (reported_connected_ == connected) return;
    reported_connected_ = connected;
    if (sink_.on_connection) sink_.on_connection(connected, reason);
  }

  void Sleep() {
    auto delay = backoff_.Next();
    std::unique_lock lock(impl_.mu);
    impl_.cv.wait_for(lock, delay, [&] { return stopping_.load(); });
  }

  const std::vector<std::string> prefixes_;
  const WatchSink& sink_;
  const std::atomic<bool>& stopping_;
  WatchControl& impl_;
  Backoff backoff_;
  std::vector<int64_t> next_rev_;  // per prefix: the first revision not yet delivered
  std::optional<bool> reported_connected_;
};

}  // namespace

struct EtcdWatcher::Impl : WatchControl {};

EtcdWatcher::EtcdWatcher(EtcdConfig config, std::vector<std::string> prefixes, WatchSink sink)
    : config_(std::move(config)),
      prefixes_(std::move(prefixes)),
      sink_(std::move(sink)),
      impl_(std::make_shared<Impl>()) {}

EtcdWatcher::~EtcdWatcher() { Stop(); }

void EtcdWatcher::SetStartRevisionForTest(int64_t revision) {
  impl_->start_revision_for_test = revision;
}

void EtcdWatcher::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void EtcdWatcher::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    stopping_ = true;
    if (impl_->stream_ctx != nullptr) impl_->stream_ctx->TryCancel();
    if (impl_->client) impl_->client->Shutdown();
    impl_->cv.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void EtcdWatcher::Run() {
  auto made = GrpcEtcdClient::Make(config_);
  if (!made.ok()) {
    LOG_ERROR("etcd watcher: {}", made.status().ToString());
    if (sink_.on_connection) sink_.on_connection(false, std::string(made.status().message()));
    return;
  }
  std::shared_ptr<GrpcEtcdClient> client = *std::move(made);
  {
    std::lock_guard lock(impl_->mu);
    if (stopping_) return;
    impl_->client = client;
  }
  WatchLoop(prefixes_, sink_, stopping_, *impl_).Run(*client);
  std::lock_guard lock(impl_->mu);
  impl_->client.reset();
}

}  // namespace vcra::datastore
