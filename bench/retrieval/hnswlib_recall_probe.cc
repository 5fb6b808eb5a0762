// SPDX-License-Identifier: Apache-2.0
// hnswlib_recall_probe N M EF_CONSTRUCTION
//
// hnswlib alone, without ortserve's Collection around it: N random
// unit-normal 64-value vectors (retrieval_bench's distribution, seed 1234),
// normalized, in an inner-product space (as a cosine collection stores
// them); recall@10 of 200 random queries against a brute-force scan at
// ef 16..512. The baseline that says whether a low recall in
// retrieval_bench is the data's or the wrapper's.
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s N M EF_CONSTRUCTION\n", argv[0]);
    return 2;
  }
  const size_t n = std::strtoull(argv[1], nullptr, 10);
  const size_t m = std::strtoull(argv[2], nullptr, 10);
  const size_t efc = std::strtoull(argv[3], nullptr, 10);
  constexpr int kDim = 64, kQueries = 200;
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal;
  auto unit = [&](float* v) {
    double sum = 0;
    for (int j = 0; j < kDim; ++j) sum += double{v[j]} * v[j];
    const auto scale = static_cast<float>(1 / std::sqrt(sum));
    for (int j = 0; j < kDim; ++j) v[j] *= scale;
  };
  std::vector<float> data(n * kDim);
  for (float& x : data) x = normal(rng);
  for (size_t i = 0; i < n; ++i) unit(&data[i * kDim]);
  hnswlib::InnerProductSpace space(kDim);
  hnswlib::HierarchicalNSW<float> graph(&space, n, m, efc, 100);
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) graph.addPoint(&data[i * kDim], i);
  std::printf("build: %zu vectors in %.1f s\n", n,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::vector<float> queries(size_t{kQueries} * kDim);
  for (float& x : queries) x = normal(rng);
  std::vector<std::vector<size_t>> truth(kQueries);
  auto distance = space.get_dist_func();
  for (int q = 0; q < kQueries; ++q) {
    std::vector<std::pair<float, size_t>> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = {distance(&queries[q * kDim], &data[i * kDim], space.get_dist_func_param()), i};
    std::partial_sort(all.begin(), all.begin() + 10, all.end());
    for (int k = 0; k < 10; ++k) truth[q].push_back(all[k].second);
  }
  for (size_t ef : {16, 32, 64, 128, 256, 512}) {
    graph.setEf(ef);
    size_t found = 0;
    for (int q = 0; q < kQueries; ++q) {
      auto result = graph.searchKnn(&queries[q * kDim], 10);
      for (; !result.empty(); result.pop()) {
        found += std::count(truth[q].begin(), truth[q].end(), result.top().second);
      }
    }
    std::printf("M %zu ef_construction %zu ef %zu: recall@10 %.3f\n", m, efc, ef, found / (10.0 * kQueries));
  }
  return 0;
}
