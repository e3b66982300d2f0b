// The Markdown report of vcra-bench: medians with [min - max] over runs, one column per
// dataplane.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bench/run.h"

namespace vcra::bench {

struct Summary {
  double median = NAN, min = NAN, max = NAN;
};
Summary Summarize(std::vector<double> values);
// "median [min – max]" (just the value for one run), "n/a" without any.
std::string Cell(const std::vector<double>& values, int digits);
std::string Num(double x, int digits);
// CPUs, kernel and build type, for the report's header.
std::string MachineLine();

using DataplaneResults = std::vector<std::pair<std::string, std::vector<RunResult>>>;

void PrintReport(const Settings& s, const std::string& command, const Cluster& cluster,
                 const DataplaneResults& results,
                 const std::vector<std::string>& lower_bound_names);

}  // namespace vcra::bench
