// A VPP binary-API simulator on a UNIX socket, faithful to the bytes and quirks of a real VPP
// 26.06 (docs/vpp-api.md sections 1, 4, 7, 8; checked against vpp-transcripts/v26.06 by
// vpp_sim_transcript_test):
// - one thread, poll(); each read() takes at most 4096 bytes; frames are processed strictly in
//   arrival order and replies are queued in that order (unbounded output, like VPP);
// - the handshake returns a realistic message table (names/CRCs of VPP 26.06) whose ids are
//   shuffled and offset (unless real_ids), so that a client hard-coding ids fails;
// - short messages, unknown ids and requests with an unknown client_index get no reply;
// - sockclnt_delete_reply.response = 1, then the connection is closed;
// - FIB per address family (table 0 only) with VPP's route semantics: is_add/is_multipath,
//   replace keeps the stats_index, deleting a missing route returns 0, per-source path sets with
//   a best source by priority, VPP's internal entries (default DROP, connected, local, network and
//   broadcast); stats indices are reused LIFO as VPP's pool does;
// - fib_source_add allocates a new id on every call, even for a known name (ids are u8).
// - interface delete and create as VPP does them (`delete host-interface`, `create
//   host-interface`): the delete removes the interface's addresses and leaves every route whose
//   path set went through it stale (it drops traffic for good; see FibEntry::stale), the
//   create reuses the lowest free sw_if_index and starts admin-down without addresses;
// Fault injection: close every connection, restart with an empty FIB and new ids, reply delay,
// drop a connection after N messages, a wrong CRC for a chosen message, pause reading.
//
// Thread safety: every public method may be called from any thread while the server runs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "dataplane/vpp/wire.h"
#include "net/ip.h"

namespace vcra::dataplane::vpp::sim {

// FIB source ids of a VPP 26.06 (fib_source_dump in the transcript).
inline constexpr uint8_t kSrcSpecial = 1;
inline constexpr uint8_t kSrcInterface = 4;
inline constexpr uint8_t kSrcApi = 8;
inline constexpr uint8_t kSrcCli = 9;
inline constexpr uint8_t kSrcDefaultRoute = 20;

struct SimInterface {
  uint32_t sw_if_index = 0;
  std::string name;
  std::string dev_type;
  std::array<uint8_t, 6> mac{};
  bool admin_up = false;
  bool link_up = false;
  uint16_t link_mtu = 0;
  std::array<uint32_t, 4> mtu{};
  // Interface addresses as configured (host bits kept).
  std::vector<WirePrefix> addresses;
  bool ip6_enabled = false;
  // A loopback's link is up exactly while it is admin-up (VPP's simulated ethernet device).
  bool link_follows_admin = false;
};

struct SimOptions {
  std::string socket_path;
  // true: the ids of the real VPP 26.06 table, unchanged (transcript replay). false: shuffled.
  bool real_ids = false;
  uint32_t seed = 1;
  // Default: local0 (0) and an uplink "host-eth0" (1), link up, admin down, no addresses.
  std::vector<SimInterface> interfaces;
  uint32_t vpe_pid = 4242;
  std::string version = "26.06-sim";
  std::string build_date = "2026-06-21T00:00:00";
  std::string build_directory;
  // Non-zero frame header bytes 0..7, as a real VPP sends (clients must ignore them).
  bool junk_header = true;

  static std::vector<SimInterface> DefaultInterfaces();
  // The VPP of vpp-transcripts/v26.06: local0, host-up0, loop0 with 10.1.0.1/32, fd00:1::1/128.
  static SimOptions Transcript2606(std::string socket_path);
  // A VPP after `create loopback interface`: local0 (0) and loop0 (1, dev_type "Loopback", MAC
  // de:ad:00:00:00:00, admin and link down), as the performance measurements and the
  // conformance test use it.
  static SimOptions Loopback(std::string socket_path);
};

// One FIB entry with every source's paths (what a test inspects).
struct SimRoute {
  net::IpPrefix prefix;  // masked
  WirePrefix raw;        // as VPP reports it
  uint32_t stats_index = 0;
  std::map<uint8_t, std::vector<FibPath>> sources;
  uint8_t best_source = 0;
  // Sources whose path set went through an interface that was deleted since (see VppSim).
  std::set<uint8_t> stale_sources;
  const std::vector<FibPath>& best_paths() const { return sources.at(best_source); }
  // What the data plane does with the entry: false when its best source's paths are stale.
  bool forwards() const { return !stale_sources.contains(best_source); }
};

class VppSim {
 public:
  explicit VppSim(SimOptions options);
  ~VppSim();
  VppSim(const VppSim&) = delete;
  VppSim& operator=(const VppSim&) = delete;

  // Binds the socket (an existing file at the path is removed) and starts the server thread.
  Status Start();
  void Stop();
  const std::string& socket_path() const { return options_.socket_path; }

  // ---- inspection and setup (thread-safe) ----
  std::vector<SimRoute> Routes(bool ipv6) const;
  std::optional<SimRoute> FindRoute(const net::IpPrefix& prefix) const;
  // Installs a route from any source (a "foreign" route of another client, a CLI route, ...).
  Status AddRoute(const net::IpPrefix& prefix, std::vector<FibPath> paths, uint8_t source);
  Status AddInterfaceAddress(uint32_t sw_if_index, const net::IpAddress& address, int len);
  std::optional<SimInterface> Interface(uint32_t sw_if_index) const;
  std::vector<FibSource> Sources() const;
  // Like fib_source_add: always a new id.
  StatusOr<uint8_t> AddSource(const std::string& name, uint8_t priority);
  // Current id of a name_crc in the table the next handshake returns, if present.
  std::optional<uint16_t> MsgId(std::string_view name_crc) const;
  int connection_count() const;
  uint64_t messages_handled() const;

  // ---- interfaces coming and going ----
  // `delete host-interface`: NOT_FOUND when there is no such interface (local0 cannot go).
  Status DeleteInterface(uint32_t sw_if_index);
  // `create host-interface`: `itf` without addresses; its sw_if_index is ignored and the lowest
  // free one is used (VPP's pool reuses freed indices). Returns that index.
  StatusOr<uint32_t> CreateInterface(SimInterface itf);

  // ---- fault injection ----
  void CloseAllConnections();
  // A VPP restart: connections closed, FIB/sources/interfaces back to the initial options, new
  // vpe_pid and a new shuffle of the message ids.
  void Restart();
  void SetReplyDelay(std::chrono::milliseconds delay);
  // After `n` more processed messages the connection that sent the n-th is closed (its reply to
  // the n-th is flushed best-effort first); 0 disables.
  void DropConnectionAfter(uint64_t n);
  // Replaces the table entry of message `name` (without CRC, e.g. "ip_route_add_del") by
  // name_crc `replacement`; the simulator then has no handler for it, like a VPP whose definition
  // differs. Effective for the next handshake. Empty `replacement` removes the message.
  void OverrideNameCrc(const std::string& name, const std::string& replacement);
  // While paused the server stops reading requests (bytes pile up in the socket buffer).
  void SetPaused(bool paused);

 private:
  struct Conn;
  struct FibEntry {
    WirePrefix raw;
    uint32_t stats_index = 0;
    std::map<uint8_t, std::vector<FibPath>> sources;
    // VPP shares one path list between every entry with the same path set. When an interface
    // is deleted, the path lists through it turn into permanent drops, and a route added later
    // with the same path set joins that dead list as long as any entry still holds it; only
    // when none does is a fresh (working) list built. These sources hold such a dead list.
    std::set<uint8_t> stale;
  };
  using FibKey = std::pair<std::array<uint8_t, 16>, uint8_t>;
  enum class Kind;

  void Run();
  void ResetStateLocked();
  void BuildTableLocked();
  void AcceptLocked();
  void ReadLocked(Conn& c, std::unique_lock<std::mutex>& lock);
  void FlushLocked(Conn& c);
  void CloseLocked(Conn& c);
  void HandleLocked(Conn& c, Bytes msg);
  void Send(Conn& c, const Bytes& body);
  Conn* ConnByHandle(uint32_t handle);
  uint16_t IdLocked(std::string_view name_crc) const;

  void HandleRouteAddDel(Conn& to, const Bytes& msg, bool v2);
  void HandleRouteDump(Conn& to, const Bytes& msg, bool v2);
  void HandleSetFlags(Conn& to, const Bytes& msg);
  void HandleAddDelAddress(Conn& to, const Bytes& msg);
  void HandleSwInterfaceDump(Conn& to, const Bytes& msg);

  std::map<FibKey, FibEntry>& Fib(bool ipv6) { return ipv6 ? fib6_ : fib4_; }
  static FibKey KeyOf(const WirePrefix& p);
  uint32_t AllocStats();
  void FreeStats(uint32_t i);
  uint8_t BestSource(const FibEntry& e) const;
  void AddSourcePathsLocked(const WirePrefix& raw, uint8_t src, std::vector<FibPath> paths);
  void RemoveSourceLocked(const WirePrefix& raw, uint8_t src);
  int32_t AddInterfaceAddressLocked(SimInterface& itf, const WirePrefix& p);
  int32_t DelInterfaceAddressLocked(SimInterface& itf, const WirePrefix& p);
  bool StalePathSetExistsLocked(const std::vector<FibPath>& paths) const;
  void SendInterfaceEventLocked(const SwInterfaceEvent& ev);
  SimInterface* FindInterfaceLocked(uint32_t sw_if_index);
  static SimRoute ToSimRoute(const FibEntry& e, uint8_t best);

  SimOptions options_;
  mutable std::mutex mu_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // Handshake table and id -> handler.
  std::vector<std::pair<uint16_t, std::string>> table_;
  std::map<std::string, uint16_t, std::less<>> ids_;
  std::map<uint16_t, Kind> handlers_;
  std::map<std::string, std::string> crc_overrides_;
  uint32_t generation_ = 0;

  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<SimInterface> interfaces_;
  std::map<FibKey, FibEntry> fib4_;
  std::map<FibKey, FibEntry> fib6_;
  std::vector<FibSource> sources_;
  uint32_t next_stats_ = 1;
  size_t stale_entries_ = 0;  // (entry, source) pairs holding a dead list: skips the search
  std::vector<uint32_t> free_stats_;
  uint32_t vpe_pid_ = 0;
  uint64_t handled_ = 0;
  uint64_t drop_after_ = 0;
  std::chrono::milliseconds delay_{0};
  bool paused_ = false;
};

}  // namespace vcra::dataplane::vpp::sim
