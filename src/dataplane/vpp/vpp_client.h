// A client of VPP's binary API over its UNIX socket (docs/vpp-api.md), without any VPP library.
//
// Connect() does the sockclnt_create handshake, builds the name_crc -> id table (ids differ
// between VPP builds and restarts; only sockclnt_create = 15 is fixed) and checks that every
// required message exists with the expected CRC; otherwise it fails with one error naming VPP's
// version and EVERY missing name_crc.
//
// Requests are matched to replies by context. VPP executes requests strictly in order and
// replies in order, so when a reply for a later request arrives, every earlier request still
// waiting was dropped by VPP (too short, unknown id) and fails at once instead of timing out.
// Dumps are fenced with control_ping (same context). Events (sw_interface_event) are handed to
// the event handler. At most `max_outstanding` requests are unanswered at any time, because VPP
// buffers replies without bound. Every request has a timeout. EOF/ECONNRESET/any socket error
// fails every waiting request with UNAVAILABLE; Connect() again re-handshakes (new ids).
//
// Threading: all methods are thread-safe. One internal reader thread per connection reads and
// dispatches; the event handler runs on it and must not call back into the client.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "dataplane/vpp/wire.h"

namespace vcra::dataplane::vpp {

struct VppClientOptions {
  std::string socket_path = "/run/vpp/api.sock";
  std::string client_name = "vpp-calico-route-agent";
  // name_crc strings that must be in VPP's table; Connect() fails naming every missing one.
  std::vector<std::string> required_messages;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds connect_timeout{5000};
  size_t max_outstanding = 256;
  size_t max_message_size = 64u << 20;
  // Reply batching: VPP sends every reply with a send() of its own as it makes it, so a reader
  // blocked in poll() is woken once per reply (a context switch on each side, on the cores VPP
  // needs). While at least `reply_batching_min_outstanding` requests are unanswered, more
  // replies are certain to follow, so the reader pauses `reply_batching_pause` after each read
  // and takes the replies of a whole VPP main-loop pass in one read. Below that (a single call,
  // the tail of a batch) it blocks in poll() as usual: no added latency. 0 turns it off.
  size_t reply_batching_min_outstanding = 32;
  std::chrono::microseconds reply_batching_pause{150};
};

class VppClient {
 public:
  struct Pending;  // one unanswered request (opaque outside vpp_client.cc)

  explicit VppClient(VppClientOptions options);
  ~VppClient();
  VppClient(const VppClient&) = delete;
  VppClient& operator=(const VppClient&) = delete;

  // Closes any previous connection, connects, handshakes, verifies required messages.
  Status Connect();
  // sockclnt_delete (waits briefly for the reply), then closes. Safe to call twice.
  void Close();
  bool connected() const;

  // The id of a name_crc in the connected VPP, or NOT_FOUND.
  StatusOr<uint16_t> MsgId(std::string_view name_crc) const;
  bool Has(std::string_view name_crc) const { return MsgId(name_crc).ok(); }
  uint32_t handle() const;
  // From show_version at Connect() ("unknown" when VPP lacks show_version).
  std::string vpp_version() const;

  // `request` is a request-shaped message body (id | client_index | context | ...); bytes 2..9
  // are overwritten with the handle and a fresh context. Returns the reply body, checked to
  // carry message `reply_name_crc`.
  StatusOr<Bytes> Call(Bytes request, std::string_view reply_name_crc);
  // Pipelined Call of many requests with the bounded window; one result per request, in order.
  std::vector<StatusOr<Bytes>> CallMany(std::vector<Bytes> requests,
                                        std::string_view reply_name_crc);

  // CallMany in two steps, so that one thread keeps several clients' sockets busy at once:
  // StartMany sends what the window takes now, without waiting; FinishMany sends the rest as the
  // window opens, waits, and returns one result per request, in order. Each started batch must
  // be finished (it holds no lock in between; other calls may go out meanwhile).
  struct ManyCall {
    std::vector<Bytes> requests;
    uint16_t reply_id = 0;
    std::vector<StatusOr<std::shared_ptr<Pending>>> sent;  // one per request sent (or failed)
  };
  std::unique_ptr<ManyCall> StartMany(std::vector<Bytes> requests, std::string_view reply_name_crc);
  std::vector<StatusOr<Bytes>> FinishMany(std::unique_ptr<ManyCall> call);
  // X_dump + control_ping; returns the bodies of the `details_name_crc` messages.
  StatusOr<std::vector<Bytes>> Dump(Bytes request, std::string_view details_name_crc);

  // Called on the reader thread for each sw_interface_event.
  void SetEventHandler(std::function<void(const SwInterfaceEvent&)> handler);

  // Highest number of simultaneously unanswered requests seen (for tests of the window).
  size_t max_in_flight_seen() const;

 private:
  struct Conn;

  // Sends under the window; returns the pending entry or an error (then nothing was sent).
  StatusOr<std::shared_ptr<Pending>> Send(Bytes request, uint16_t reply_id, uint16_t details_id,
                                          bool dump);
  // Sends call.requests from call.sent.size() on under the window, in as few writes as the
  // window allows, appending one entry per request to call.sent (an error for those that were
  // not sent). With `wait_for_window` false it stops when the window is full instead.
  void SendBatch(ManyCall& call, bool wait_for_window);
  StatusOr<Bytes> Wait(const std::shared_ptr<Pending>& p);
  void ReaderLoop(std::shared_ptr<Conn> conn);
  void Dispatch(Conn& conn, Bytes msg);
  void FailAllLocked(Conn& conn, const Status& st);
  void ExpireLocked(Conn& conn);
  // Writes all of `data` or fails; `written` (if set) gets the bytes that left either way.
  Status WriteAll(Conn& conn, const Bytes& data, size_t* written);
  void MarkWriteFailedLocked(Conn& conn, const Status& st);
  StatusOr<std::shared_ptr<Conn>> CurrentConn() const;

  VppClientOptions options_;
  mutable std::mutex mu_;  // guards conn_ pointer, the pending queues, and the handler
  std::condition_variable cv_;
  std::shared_ptr<Conn> conn_;
  std::function<void(const SwInterfaceEvent&)> event_handler_;
  size_t max_in_flight_seen_ = 0;
};

}  // namespace vcra::dataplane::vpp
