// Test-only: the fixture files in tests/testdata (VCRA_TESTDATA_DIR is set by CMake).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace vcra::calico {

inline std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(VCRA_TESTDATA_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace vcra::calico
