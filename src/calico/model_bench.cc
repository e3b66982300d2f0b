// Decoder micro-benchmark: DecodeBlock on the two block shapes that matter at scale. The 862-byte
// block is what EncodeBlock writes for a /26 with an allocation of its host and one borrowed
// by another (the cluster benchmark's blocks);
// the ~2.2 KB one is what Calico writes for a /26 holding 7 pods of two owners, with
// handles, per-pod attributes and per-allocation sequence numbers. Figures: docs/performance.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "calico/model.h"

namespace {

using vcra::calico::DecodeBlock;

constexpr char kKey[] = "/calico/ipam/v2/assignment/ipv4/block/10.244.7.0-26";

std::string SmallBlock() {
  vcra::calico::IpamBlock block;
  block.cidr = *vcra::net::IpPrefix::Parse("10.244.7.0/26", /*strict=*/true);
  block.affinity_type = vcra::calico::AffinityType::kHost;
  block.affinity_name = "host-00042";
  block.sequence_number = 1772359200000000007ull;
  block.allocations.push_back({0, block.cidr.address(), "host-00042"});
  block.allocations.push_back({63, block.cidr.address().Plus(63), "host-00043"});
  return vcra::calico::EncodeBlock(block);
}

// Calico's own layout: allocations[] of attribute indexes, unallocated[], one attribute per pod.
std::string RealisticBlock() {
  constexpr int kPods = 7;
  std::string s = R"({"cidr":"10.244.7.0/26","affinity":"host:node-a.cluster.example.com",)"
                  R"("affinity_claim_time":"2026-03-01T10:00:00Z","allocations":[)";
  for (int i = 0; i < 64; ++i) {
    if (i > 0) s += ",";
    s += i < kPods ? std::to_string(i) : "null";
  }
  s += R"(],"unallocated":[)";
  for (int i = kPods; i < 64; ++i) s += (i > kPods ? "," : "") + std::to_string(i);
  s += R"(],"attributes":[)";
  for (int i = 0; i < kPods; ++i) {
    const char* node = i % 4 == 3 ? "node-b.cluster.example.com" : "node-a.cluster.example.com";
    char attr[320];
    std::snprintf(attr, sizeof attr,
                  R"(%s{"handle_id":"k8s-pod-network.%016x","secondary":{"namespace":"default",)"
                  R"("node":"%s","pod":"web-%d","timestamp":"2026-03-01 10:05:%02d.1 +0000 UTC"}})",
                  i > 0 ? "," : "", 0x3f2a9c51u * (i + 1), node, i, i);
    s += attr;
  }
  s += R"(],"sequenceNumber":1772359200000000007,"sequenceNumberForAllocation":{)";
  for (int i = 0; i < kPods; ++i) {
    s += (i > 0 ? ",\"" : "\"") + std::to_string(i) +
         "\":" + std::to_string(1772359200000000001ull + i);
  }
  s += R"(},"deleted":false})";
  return s;
}

void Decode(benchmark::State& state, const std::string& value) {
  auto decoded = DecodeBlock(kKey, value);
  if (!decoded.ok()) {
    state.SkipWithError("the benchmark's block does not decode");
    return;
  }
  for (auto _ : state) {
    auto block = DecodeBlock(kKey, value);
    benchmark::DoNotOptimize(block);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
  state.counters["value_bytes"] = static_cast<double>(value.size());
  // How many allocations the decoded block holds (what the route calculator keeps per block).
  state.counters["kept_allocations"] = static_cast<double>(decoded->allocations.size());
}

void BM_DecodeBlock862(benchmark::State& state) {
  static const std::string value = SmallBlock();
  Decode(state, value);
}
BENCHMARK(BM_DecodeBlock862);

void BM_DecodeBlockRealistic(benchmark::State& state) {
  static const std::string value = RealisticBlock();
  Decode(state, value);
}
BENCHMARK(BM_DecodeBlockRealistic);

}  // namespace

BENCHMARK_MAIN();
