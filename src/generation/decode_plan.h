// SPDX-License-Identifier: Apache-2.0
// How one decode step of continuous batching splits its sequences into
// model runs. A run pads every row to its longest sequence: the model's
// Concat(past, new) copies the padded past of every row each step, and
// attention reads it, so a run of rows staggered over 4 to 132 tokens costs
// what one of rows all 132 long costs. Several runs of rows of similar
// length cost less padding and one fixed cost per run more; the plan takes
// the split with the least total.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ortserve::generation {

struct DecodePlanOptions {
  int32_t max_runs = 4;  // runs one step may make; 1: one run, padded to the longest
  // What one more run costs, in padded tokens of one row (the fixed cost of
  // a run over the cost of one row-token of past): a split is made only
  // when it saves more padding than this.
  int64_t run_cost_tokens = 512;
};

// `lengths`: each sequence's past length (tokens cached), longest first.
// Fills `runs` with the number of sequences of each run, in order (their
// sum is lengths.size()); the split minimises, over at most max_runs runs
// of consecutive sequences, the sum of run_cost_tokens + rows x (longest
// + 1) per run. Exact for up to 128 sequences; for more, runs are cut only
// at multiples of size / 128. No allocation once `scratch` has grown.
struct DecodePlanScratch {
  std::vector<int64_t> cost;
  std::vector<int32_t> from;
  std::vector<int32_t> cuts;
};
void PlanDecodeRuns(std::span<const int64_t> lengths, const DecodePlanOptions& options, DecodePlanScratch* scratch,
                    std::vector<int32_t>* runs);

}  // namespace ortserve::generation
