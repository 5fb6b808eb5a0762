// SPDX-License-Identifier: Apache-2.0
#include "generation/decode_plan.h"

#include <numeric>
#include <random>

#include "gtest/gtest.h"

namespace ortserve::generation {
namespace {

std::vector<int32_t> Plan(const std::vector<int64_t>& lengths, int32_t max_runs, int64_t run_cost) {
  DecodePlanScratch scratch;
  std::vector<int32_t> runs;
  PlanDecodeRuns(lengths, DecodePlanOptions{.max_runs = max_runs, .run_cost_tokens = run_cost}, &scratch, &runs);
  return runs;
}

// The cost the plan minimises, for a split given by run sizes.
int64_t Cost(const std::vector<int64_t>& lengths, const std::vector<int32_t>& runs, int64_t run_cost) {
  int64_t total = 0;
  size_t at = 0;
  for (int32_t r : runs) {
    total += run_cost + r * (lengths[at] + 1);
    at += static_cast<size_t>(r);
  }
  return total;
}

TEST(DecodePlanTest, SequencesOfOneLengthRunTogether) {
  EXPECT_EQ(Plan(std::vector<int64_t>(32, 40), 4, 0), std::vector<int32_t>{32});
  EXPECT_EQ(Plan({}, 4, 256), std::vector<int32_t>{});
  EXPECT_EQ(Plan({7}, 4, 256), std::vector<int32_t>{1});
}

TEST(DecodePlanTest, SplitsOnlyWhenThePaddingSavedOutweighsARun) {
  // 8 rows at 200 and 24 at 10: one run pads 24 rows by 190 tokens
  // (4,560 padded tokens a second run saves).
  std::vector<int64_t> lengths(8, 200);
  lengths.resize(32, 10);
  EXPECT_EQ(Plan(lengths, 4, 256), (std::vector<int32_t>{8, 24}));
  EXPECT_EQ(Plan(lengths, 4, 4559), (std::vector<int32_t>{8, 24}));
  EXPECT_EQ(Plan(lengths, 4, 4560), std::vector<int32_t>{32});  // no saving: the fewer runs
  EXPECT_EQ(Plan(lengths, 1, 0), std::vector<int32_t>{32});     // one run allowed
}

TEST(DecodePlanTest, IsTheCheapestSplitOfConsecutiveRuns) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 12);
    std::vector<int64_t> lengths(static_cast<size_t>(n));
    for (auto& l : lengths) l = 1 + static_cast<int64_t>(rng() % 300);
    std::sort(lengths.rbegin(), lengths.rend());
    const int32_t max_runs = 1 + static_cast<int32_t>(rng() % 4);
    const int64_t run_cost = static_cast<int64_t>(rng() % 400);
    const std::vector<int32_t> runs = Plan(lengths, max_runs, run_cost);
    ASSERT_LE(runs.size(), static_cast<size_t>(max_runs));
    ASSERT_EQ(std::accumulate(runs.begin(), runs.end(), 0), n);
    // Every split into at most max_runs runs (each a subset of the n - 1
    // places between sequences) costs at least as much.
    int64_t best = INT64_MAX;
    for (uint32_t mask = 0; mask < (1u << (n - 1)); ++mask) {
      if (__builtin_popcount(mask) + 1 > max_runs) continue;
      std::vector<int32_t> split{1};
      for (int i = 1; i < n; ++i) {
        if (mask & (1u << (i - 1))) split.push_back(1);
        else ++split.back();
      }
      best = std::min(best, Cost(lengths, split, run_cost));
    }
    EXPECT_EQ(Cost(lengths, runs, run_cost), best) << "trial " << trial;
  }
}

TEST(DecodePlanTest, ManySequencesAreCutAtCoarserPlaces) {
  // 4,096 sequences (the most a batch may hold): runs end at multiples of 32.
  std::vector<int64_t> lengths(4096);
  for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = 5000 - static_cast<int64_t>(i);
  const std::vector<int32_t> runs = Plan(lengths, 16, 1000);
  EXPECT_EQ(runs.size(), 16u);
  EXPECT_EQ(std::accumulate(runs.begin(), runs.end(), 0), 4096);
  for (size_t i = 0; i + 1 < runs.size(); ++i) EXPECT_EQ(runs[i] % 32, 0) << i;
}

}  // namespace
}  // namespace ortserve::generation
