// Runs the libFuzzer entry point (fuzz/calico_fuzz.cc) over a bounded, deterministic stream of
// mutated inputs, so that gcc builds exercise it too. The entry point aborts on a violated
// property and sanitizer builds catch memory errors; this test only has to reach the end.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "calico/model.h"
#include "calico/testdata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using vcra::calico::ReadTestdata;

constexpr int kInputs = 20000;
// Mutations grow inputs; keep each one small enough that 20000 of them stay quick in Debug.
constexpr size_t kMaxInputBytes = 8192;

std::vector<std::string> SeedCorpus() {
  const std::string block = "/calico/ipam/v2/assignment/ipv4/block/";
  std::vector<std::string> seeds = {
      block + "10.244.7.0-26\n" + ReadTestdata("current-v3.32.json"),
      block + "10.244.3.0-26\n" + ReadTestdata("python-2016.json"),
      block + "10.244.4.0-26\n" + ReadTestdata("libcalico-go-2016-hostAffinity.json"),
      block + "10.244.9.0-26\n" + ReadTestdata("affinity-null.json"),
      block + "10.96.100.0-26\n" + ReadTestdata("virtual-lb.json"),
      block + "10.244.12.0-26\n" + ReadTestdata("deleted.json"),
      "/calico/ipam/v2/assignment/ipv6/block/fd00:10:244:1::-122\n" +
          ReadTestdata("ipv6-block.json"),
      block + "10.244.20.0-26\n" + ReadTestdata("unknown-fields-v3.34.json"),
      "/vpp-calico/hosts/node-a/peerip/ipv4/1\n192.0.2.11\n",
      "/vpp-calico/hosts/node-a/peerip/ipv6/1\n2001:db8::11/64",
      "/calico/resources/v3/projectcalico.org/nodes/node-a\n"
      R"({"spec":{"bgp":{"ipv4Address":"192.0.2.11/24"},"addresses":[)"
      R"({"address":"2001:db8::11","type":"InternalIP"},{"address":"1.2.3.4","type":"ExternalIP"}]}})",
      "/calico/resources/v3/projectcalico.org/ippools/p1\n"
      R"({"metadata":{"name":"p1"},"spec":{"cidr":"10.244.0.0/16","disabled":false,)"
      R"("allowedUses":["LoadBalancer"]}})",
      "/calico/resources/v3/projectcalico.org/clusterinformations/default\n"
      R"({"spec":{"datastoreReady":false}})",
  };
  return seeds;
}

const std::vector<std::string>& Tokens() {
  static const std::vector<std::string> tokens = {"null",
                                                  "true",
                                                  "false",
                                                  "-1",
                                                  "-0",
                                                  "1.5",
                                                  "1e309",
                                                  "18446744073709551615",
                                                  "18446744073709551616",
                                                  "4294967296",
                                                  "[",
                                                  "]",
                                                  "{",
                                                  "}",
                                                  "\"",
                                                  "\\",
                                                  ",",
                                                  ":",
                                                  "\\u0000",
                                                  "\xff",
                                                  "\xc3",
                                                  "\xed\xa0\x80",
                                                  "host:",
                                                  "virtual:",
                                                  "..",
                                                  "/",
                                                  "-",
                                                  "\n",
                                                  "::",
                                                  "\"node\":",
                                                  "\"allocations\":[0,1,2]",
                                                  "\"attributes\":[{}]",
                                                  "\"cidr\":\"10.244.7.0/26\"",
                                                  std::string(70, '['),
                                                  std::string(1, '\0')};
  return tokens;
}

// Raw engine output only: std::uniform_int_distribution is not portable across libraries.
size_t Pick(std::mt19937_64& rng, size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); }

void Mutate(std::mt19937_64& rng, const std::vector<std::string>& corpus, std::string& s) {
  int mutations = 1 + static_cast<int>(Pick(rng, 6));
  for (int m = 0; m < mutations; ++m) {
    size_t pos = Pick(rng, s.size() + 1);
    switch (Pick(rng, 8)) {
      case 0:  // flip a bit
        if (!s.empty()) s[Pick(rng, s.size())] ^= static_cast<char>(1u << Pick(rng, 8));
        break;
      case 1:  // replace a byte
        if (!s.empty()) s[Pick(rng, s.size())] = static_cast<char>(rng());
        break;
      case 2:  // truncate
        s.resize(pos);
        break;
      case 3:  // delete a range
        s.erase(pos, Pick(rng, 32));
        break;
      case 4:  // insert a token
        s.insert(pos, Tokens()[Pick(rng, Tokens().size())]);
        break;
      case 5: {  // splice in part of another input (fixtures included)
        const std::string& other = corpus[Pick(rng, corpus.size())];
        size_t from = Pick(rng, other.size());
        s.insert(pos, other.substr(from, Pick(rng, 256)));
        break;
      }
      case 6: {  // duplicate a chunk
        size_t from = Pick(rng, s.size());
        s.insert(pos, s.substr(from, Pick(rng, 64)));
        break;
      }
      default: {  // overwrite a digit run with another number
        const char* digits[] = {"0", "63", "64", "65", "999999", "18446744073709551615"};
        s.insert(pos, digits[Pick(rng, 6)]);
        break;
      }
    }
  }
  if (s.size() > kMaxInputBytes) s.resize(kMaxInputBytes);
}

TEST(CalicoFuzzSmokeTest, SeedsPass) {
  for (const std::string& seed : SeedCorpus()) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
  }
}

TEST(CalicoFuzzSmokeTest, SurvivesDeterministicMutations) {
  const std::vector<std::string> corpus = SeedCorpus();
  std::mt19937_64 rng(0x5eedca11c0);
  int decoded_blocks = 0;
  for (int i = 0; i < kInputs; ++i) {
    std::string input = corpus[Pick(rng, corpus.size())];
    Mutate(rng, corpus, input);
    ASSERT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size()),
              0);
    std::string_view view(input);
    size_t nl = view.find('\n');
    if (nl != std::string_view::npos &&
        vcra::calico::DecodeBlock(view.substr(0, nl), view.substr(nl + 1)).ok()) {
      ++decoded_blocks;
    }
  }
  // The stream must not degenerate into inputs every decoder rejects at the first byte.
  EXPECT_GT(decoded_blocks, kInputs / 50);
  std::printf("mutated inputs: %d, decoded as blocks: %d\n", kInputs, decoded_blocks);
}

// The three values of issue 9 that changed routes, and one of each class the gate refuses.
TEST(CalicoFuzzSmokeTest, RefusesIssue9ValuesAndTheirClasses) {
  const std::string key = "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26";
  const std::string good = ReadTestdata("current-v3.32.json");
  ASSERT_TRUE(vcra::calico::DecodeBlock(key, good).ok());
  const std::vector<std::string> bad_blocks = {
      good + std::string("\0", 1) + "{\"cidr\":\"10.244.7.0/26\"}",  // NUL and trailing bytes
      good + " {}",                                                  // trailing JSON
      R"({"cidr":"10.244.7.0/26","affinity":"host:node-a","allocations":[0],)"
      R"("attributes":[{"secondary":{"node":7}}]})",        // secondary not map[string]string
      R"({"cidr":"10.244.7.0/26","sequenceNumber":1.0})",   // not an integer
      R"({"cidr":"10.244.7.0/26","strictAffinity":"no"})",  // not a bool
      "{\"cidr\":\"10.244.7.0/26\",\"x\":\"\xff\"}",        // not UTF-8
      "{\"cidr\":\"10.244.7.0/26\",\"x\":\"\x01\"}",        // control byte
  };
  for (const std::string& value : bad_blocks) {
    EXPECT_FALSE(vcra::calico::DecodeBlock(key, value).ok()) << value;
    std::string input = key + "\n" + value;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  const std::string peer = "/vpp-calico/hosts/node-b/peerip/ipv4/1";
  const std::string padded = "192.0.2.11" + std::string(2 * 1024 * 1024, ' ');
  EXPECT_FALSE(vcra::calico::DecodePeerAddress(padded, vcra::net::Family::kV4).ok());
  EXPECT_FALSE(vcra::calico::DecodePeerAddress(" 192.0.2.11", vcra::net::Family::kV4).ok());
  EXPECT_TRUE(vcra::calico::DecodePeerAddress("192.0.2.11\n", vcra::net::Family::kV4).ok());
  std::string input = peer + "\n" + padded;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(CalicoFuzzSmokeTest, SurvivesHandPickedHostileInputs) {
  std::vector<std::string> inputs = {
      "",
      "\n",
      "\n\n\n",
      std::string(1, '\0'),
      "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26\n" + std::string(100000, '['),
      "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26\n" + std::string(100000, '{'),
      "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26\n{\"cidr\":\"10.244.7.0/26\","
      "\"allocations\":[0],\"attributes\":[{\"secondary\":{\"node\":\"" +
          std::string(300, 'a') + "\"}}]}",
      "/calico/ipam/v2/assignment/ipv6/block/::-0\n{\"cidr\":\"::/0\",\"allocations\":[0],"
      "\"attributes\":[{}]}",
      "/calico/ipam/v2/assignment/ipv4/block/0.0.0.0-0\n{\"cidr\":\"0.0.0.0/0\","
      "\"allocations\":[null,null,0],\"attributes\":[{}]}",
  };
  for (const std::string& input : inputs) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
}

}  // namespace
