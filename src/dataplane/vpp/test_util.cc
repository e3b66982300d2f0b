#include "dataplane/vpp/test_util.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace vcra::dataplane::vpp::testing {

Bytes FromHex(std::string_view hex) {
  Bytes out;
  int hi = -1;
  for (char ch : hex) {
    int v;
    if (ch >= '0' && ch <= '9')
      v = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
      v = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
      v = ch - 'A' + 10;
    else
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

std::string ToHex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s.push_back(d[x >> 4]);
    s.push_back(d[x & 15]);
  }
  return s;
}

std::string TestdataDir() {
  if (const char* env = std::getenv("VCRA_VPP_TESTDATA")) return env;
  return VCRA_VPP_TESTDATA;
}

std::vector<std::string> TranscriptFiles() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(TestdataDir())) {
    std::string name = e.path().filename().string();
    if (name.size() > 3 && isdigit(name[0]) && isdigit(name[1]) && name[2] == '-') {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<TranscriptFrame> LoadTranscript(const std::string& file) {
  std::ifstream in(file);
  std::vector<TranscriptFrame> out;
  std::string line, pending_name = "UNKNOWN";
  while (std::getline(in, line)) {
    if (line.rfind("# > ", 0) == 0 || line.rfind("# < ", 0) == 0) {
      std::string rest = line.substr(4);
      pending_name = rest.substr(0, rest.find(' '));
    } else if (line.rfind("> ", 0) == 0 || line.rfind("< ", 0) == 0) {
      TranscriptFrame f;
      f.from_client = line[0] == '>';
      f.name_crc = pending_name;
      f.frame = FromHex(std::string_view(line).substr(2));
      out.push_back(std::move(f));
      pending_name = "UNKNOWN";
    }
  }
  return out;
}

}  // namespace vcra::dataplane::vpp::testing
