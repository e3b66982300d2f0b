// Replays every client frame of vpp-transcripts/v26.06 (a real VPP 26.06) to the simulator and
// compares the simulator's frames with what the real VPP sent, byte for byte.
//
// The simulator runs with the real 26.06 message table (real_ids, no shuffle) and the
// transcript's starting state (SimOptions::Transcript2606: interfaces, addresses, vpe_pid,
// version). Normalisation, and why:
// - frame header bytes 0..7 and 12..15 are not compared: VPP puts an internal heap pointer there
//   (docs/vpp-api.md section 1; clients ignore them). data_len (bytes 8..11) and the message are.
// - within one dump, the *_details frames are compared as a sorted multiset: VPP emits FIB
//   entries in hash order (README "Details arrive in FIB hash order"); their content,
//   stats_index and count must match exactly.
// Nothing else is normalised: contexts, retvals, stats indices, source ids, table order of the
// handshake, string padding.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "dataplane/vpp/sim/vpp_sim.h"
#include "dataplane/vpp/test_util.h"

namespace vcra::dataplane::vpp::sim {
namespace {

using vpp::testing::LoadTranscript;
using vpp::testing::ToHex;
using vpp::testing::TranscriptFiles;
using vpp::testing::TranscriptFrame;

std::string TempSocket(const std::string& tag) {
  return "/tmp/vcra-sim-" + tag + "-" + std::to_string(::getpid()) + ".sock";
}

class RawConn {
 public:
  explicit RawConn(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawConn() { ::close(fd_); }
  bool ok() const { return ok_; }
  void Write(const Bytes& b) { ASSERT_EQ(::write(fd_, b.data(), b.size()), ssize_t(b.size())); }
  // Next whole frame (header included); empty on EOF/timeout.
  Bytes ReadFrame() {
    while (true) {
      if (buf_.size() >= 16) {
        size_t len =
            (size_t{buf_[8]} << 24) | (size_t{buf_[9]} << 16) | (size_t{buf_[10]} << 8) | buf_[11];
        if (buf_.size() >= 16 + len) {
          Bytes f(buf_.begin(), buf_.begin() + 16 + len);
          buf_.erase(buf_.begin(), buf_.begin() + 16 + len);
          return f;
        }
      }
      uint8_t tmp[65536];
      ssize_t n = ::read(fd_, tmp, sizeof(tmp));
      if (n <= 0) return {};
      buf_.insert(buf_.end(), tmp, tmp + n);
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  Bytes buf_;
};

std::string Normalised(const Bytes& frame) {
  Bytes f = frame;
  for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15}) f[i] = 0;
  return ToHex(f);
}

// Sorts each run of consecutive frames that are *_details.
void SortDetailRuns(std::vector<std::string>& hex, const std::vector<std::string>& names) {
  size_t i = 0;
  while (i < hex.size()) {
    size_t j = i;
    while (j < hex.size() && names[j].find("_details_") != std::string::npos &&
           names[j] == names[i]) {
      ++j;
    }
    if (j > i + 1) std::sort(hex.begin() + i, hex.begin() + j);
    i = std::max(j, i + 1);
  }
}

TEST(VppSimTranscript, ReplayMatchesRealVpp2606ByteForByte) {
  if (!std::filesystem::exists(vpp::testing::TestdataDir())) {
    GTEST_SKIP() << "SKIPPED: transcripts not found at " << vpp::testing::TestdataDir();
  }
  VppSim sim(SimOptions::Transcript2606(TempSocket("replay")));
  ASSERT_TRUE(sim.Start().ok());
  RawConn conn(sim.socket_path());
  ASSERT_TRUE(conn.ok());

  int compared = 0;
  auto files = TranscriptFiles();
  ASSERT_EQ(files.size(), 12u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    auto frames = LoadTranscript(file);
    size_t i = 0;
    while (i < frames.size()) {
      Bytes out;
      while (i < frames.size() && frames[i].from_client) {
        out.insert(out.end(), frames[i].frame.begin(), frames[i].frame.end());
        ++i;
      }
      if (!out.empty()) conn.Write(out);
      std::vector<std::string> want, got, names;
      while (i < frames.size() && !frames[i].from_client) {
        want.push_back(Normalised(frames[i].frame));
        names.push_back(frames[i].name_crc);
        Bytes f = conn.ReadFrame();
        ASSERT_FALSE(f.empty()) << "simulator sent nothing where VPP sent " << frames[i].name_crc;
        got.push_back(Normalised(f));
        ++i;
      }
      SortDetailRuns(want, names);
      SortDetailRuns(got, names);
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_EQ(got[k], want[k]) << names[k];
        ++compared;
      }
    }
  }
  // Step 12: VPP closes the connection after sockclnt_delete_reply.
  EXPECT_TRUE(conn.ReadFrame().empty());
  EXPECT_EQ(compared, 106);  // every frame the real VPP sent
  sim.Stop();
}

}  // namespace
}  // namespace vcra::dataplane::vpp::sim
