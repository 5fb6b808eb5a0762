// SPDX-License-Identifier: Apache-2.0
#include "generation/decode_plan.h"

#include <algorithm>
#include <limits>

namespace ortserve::generation {

void PlanDecodeRuns(std::span<const int64_t> lengths, const DecodePlanOptions& options, DecodePlanScratch* scratch,
                    std::vector<int32_t>* runs) {
  runs->clear();
  const int64_t n = static_cast<int64_t>(lengths.size());
  if (n == 0) return;
  const int64_t max_runs = std::clamp<int64_t>(options.max_runs, 1, n);
  if (max_runs == 1) {
    runs->push_back(static_cast<int32_t>(n));
    return;
  }
  // Where a run may start or end: every sequence, or every step-th.
  constexpr int64_t kExactUpTo = 128;
  const int64_t step = (n + kExactUpTo - 1) / kExactUpTo;
  std::vector<int32_t>& cuts = scratch->cuts;
  cuts.clear();
  for (int64_t c = 0; c < n; c += step) cuts.push_back(static_cast<int32_t>(c));
  cuts.push_back(static_cast<int32_t>(n));
  const int64_t m = static_cast<int64_t>(cuts.size()) - 1;  // cut positions after 0
  // cost[k * (m + 1) + p]: the least cost of lengths[0, cuts[p]) in k + 1 runs.
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::vector<int64_t>& cost = scratch->cost;
  std::vector<int32_t>& from = scratch->from;
  cost.assign(static_cast<size_t>(max_runs * (m + 1)), kNone);
  from.assign(cost.size(), -1);
  const int64_t fixed = std::max<int64_t>(options.run_cost_tokens, 0);
  auto run_cost = [&](int64_t q, int64_t p) {  // one run of lengths[cuts[q], cuts[p])
    return fixed + (cuts[p] - cuts[q]) * (lengths[cuts[q]] + 1);
  };
  for (int64_t p = 1; p <= m; ++p) cost[p] = run_cost(0, p);
  for (int64_t k = 1; k < max_runs; ++k) {
    for (int64_t p = k + 1; p <= m; ++p) {
      int64_t best = kNone;
      int32_t best_q = -1;
      for (int64_t q = k; q < p; ++q) {
        const int64_t before = cost[(k - 1) * (m + 1) + q];
        if (before == kNone) continue;
        const int64_t c = before + run_cost(q, p);
        if (c < best) {
          best = c;
          best_q = static_cast<int32_t>(q);
        }
      }
      cost[k * (m + 1) + p] = best;
      from[k * (m + 1) + p] = best_q;
    }
  }
  // The fewest runs among the cheapest.
  int64_t k_best = 0;
  for (int64_t k = 1; k < max_runs; ++k) {
    if (cost[k * (m + 1) + m] < cost[k_best * (m + 1) + m]) k_best = k;
  }
  for (int64_t k = k_best, p = m; k >= 0; --k) {
    const int64_t q = k == 0 ? 0 : from[k * (m + 1) + p];
    runs->push_back(cuts[p] - cuts[q]);
    p = q;
  }
  std::reverse(runs->begin(), runs->end());
}

}  // namespace ortserve::generation
