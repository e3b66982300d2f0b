// Test helpers: hex and the frame transcripts of vpp-transcripts/v26.06 (copied to testdata/).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dataplane/vpp/wire.h"

namespace vcra::dataplane::vpp::testing {

Bytes FromHex(std::string_view hex);  // whitespace ignored
std::string ToHex(std::span<const uint8_t> b);

struct TranscriptFrame {
  bool from_client = false;
  std::string name_crc;  // "UNKNOWN" for frames without a known decoder
  Bytes frame;           // header included
  std::span<const uint8_t> body() const { return std::span(frame).subspan(kFrameHeaderSize); }
};

// The frames of one step file, in capture order.
std::vector<TranscriptFrame> LoadTranscript(const std::string& file);
// The step files 01-*.txt .. 12-*.txt in order.
std::vector<std::string> TranscriptFiles();
std::string TestdataDir();

}  // namespace vcra::dataplane::vpp::testing
