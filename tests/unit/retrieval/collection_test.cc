// SPDX-License-Identifier: Apache-2.0
#include "retrieval/collection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

namespace ortserve::retrieval {
namespace {

std::vector<float> RandomVector(std::mt19937& rng, uint32_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

Change Upsert(std::string id, std::vector<float> v, std::string metadata = "") {
  return Change{Change::Kind::kUpsert, Document{std::move(id), std::move(v), std::move(metadata)}};
}
Change Delete(std::string id) { return Change{Change::Kind::kDelete, Document{std::move(id), {}, {}}}; }

absl::Status Write(Collection& c, std::vector<Change> changes) {
  auto metadata = c.Check(changes);
  if (!metadata.ok()) return metadata.status();
  return c.Apply(changes, *std::move(metadata));
}

std::vector<std::string> Ids(const std::vector<Hit>& hits) {
  std::vector<std::string> ids;
  for (const Hit& h : hits) ids.push_back(h.id);
  return ids;
}

std::unique_ptr<Collection> Make(uint32_t dim, Metric metric, uint32_t threshold, uint64_t max_bytes = 256 << 20) {
  CollectionParams params;
  params.dimension = dim;
  params.metric = metric;
  params.exact_threshold = threshold;
  params.max_bytes = max_bytes;
  auto c = Collection::Create(params);
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

TEST(CollectionTest, ExactSearchRanksByEachMetric) {
  // Hand-checked: query (1,0); a=(1,0), b=(0,1), c=(2,0), d=(-1,0).
  for (Metric metric : {Metric::kCosine, Metric::kInnerProduct, Metric::kL2}) {
    auto c = Make(2, metric, 1000);
    ASSERT_TRUE(Write(*c, {Upsert("a", {1, 0}), Upsert("b", {0, 1}), Upsert("c", {2, 0}), Upsert("d", {-1, 0})}).ok());
    auto hits = c->Search({1, 0}, 4, Filter());
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 4u);
    if (metric == Metric::kCosine) {
      // a and c are both at similarity 1.
      EXPECT_EQ(std::set<std::string>({(*hits)[0].id, (*hits)[1].id}), std::set<std::string>({"a", "c"}));
      EXPECT_NEAR((*hits)[0].score, 1.0, 1e-6);
      EXPECT_EQ((*hits)[2].id, "b");
      EXPECT_NEAR((*hits)[3].score, -1.0, 1e-6);
    } else if (metric == Metric::kInnerProduct) {
      EXPECT_EQ(Ids(*hits), (std::vector<std::string>{"c", "a", "b", "d"}));
      EXPECT_NEAR((*hits)[0].score, 2.0, 1e-6);
    } else {
      EXPECT_EQ(Ids(*hits), (std::vector<std::string>{"a", "c", "b", "d"}));
      EXPECT_NEAR((*hits)[2].score, std::sqrt(2.0), 1e-6);
      EXPECT_NEAR((*hits)[3].score, 2.0, 1e-6);
    }
  }
}

TEST(CollectionTest, HnswRecallAgainstExactScan) {
  std::mt19937 rng(7);
  constexpr uint32_t kDim = 32;
  auto c = Make(kDim, Metric::kCosine, 500);
  std::vector<Change> batch;
  for (int i = 0; i < 4000; ++i) batch.push_back(Upsert("doc" + std::to_string(i), RandomVector(rng, kDim)));
  ASSERT_TRUE(Write(*c, batch).ok());
  EXPECT_TRUE(c->Stats().indexed);
  size_t found = 0, total = 0;
  for (int q = 0; q < 50; ++q) {
    const auto query = RandomVector(rng, kDim);
    auto approx = c->Search(query, 10, Filter());
    auto exact = c->Search(query, 10, Filter(), /*exact=*/true);
    ASSERT_TRUE(approx.ok() && exact.ok());
    const auto truth = Ids(*exact);
    for (const std::string& id : Ids(*approx)) found += std::count(truth.begin(), truth.end(), id);
    total += truth.size();
  }
  EXPECT_GE(static_cast<double>(found) / total, 0.9);
}

// Recall@10 of the graph against the exact scan over `queries`.
double Recall(const Collection& c, const std::vector<std::vector<float>>& queries) {
  size_t found = 0, total = 0;
  for (const auto& query : queries) {
    auto approx = c.Search(query, 10, Filter());
    auto exact = c.Search(query, 10, Filter(), /*exact=*/true);
    EXPECT_TRUE(approx.ok() && exact.ok());
    if (!approx.ok() || !exact.ok()) return 0;
    const auto truth = Ids(*exact);
    for (const std::string& id : Ids(*approx)) found += std::count(truth.begin(), truth.end(), id);
    total += truth.size();
  }
  return static_cast<double>(found) / static_cast<double>(total);
}

TEST(CollectionTest, HnswRecallOnClusteredVectorsAtDefaultParameters) {
  // Embeddings of text come in clusters (topics), unlike uniformly random
  // vectors, the hard case for any graph index. At the defaults a graph
  // over such data must find nearly all of the exact top 10.
  std::mt19937 rng(21);
  constexpr uint32_t kDim = 64;
  std::vector<std::vector<float>> centers;
  for (int i = 0; i < 60; ++i) centers.push_back(RandomVector(rng, kDim));
  std::normal_distribution<float> noise(0, 0.35f);
  auto near = [&](int i) {
    std::vector<float> v = centers[static_cast<size_t>(i) % centers.size()];
    for (float& x : v) x += noise(rng);
    return v;
  };
  CollectionParams params;  // The defaults, bar the size.
  params.dimension = kDim;
  ASSERT_EQ(params.ef_search, CollectionParams{}.ef_search);
  auto made = Collection::Create(params);
  ASSERT_TRUE(made.ok());
  Collection& c = **made;
  std::vector<Change> batch;
  for (int i = 0; i < static_cast<int>(params.exact_threshold) + 1000; ++i) {
    batch.push_back(Upsert("doc" + std::to_string(i), near(i)));
  }
  ASSERT_TRUE(Write(c, batch).ok());
  ASSERT_TRUE(c.Stats().indexed);
  std::vector<std::vector<float>> queries;
  for (int q = 0; q < 100; ++q) queries.push_back(near(q * 7));
  EXPECT_GE(Recall(c, queries), 0.95);
}

TEST(CollectionTest, EfSearchReachesTheGraph) {
  // A breadth that never reached hnswlib (its own default is 10) would
  // leave recall the same at every ef_search.
  std::mt19937 rng(5);
  constexpr uint32_t kDim = 32;
  auto c = Make(kDim, Metric::kCosine, 500);
  std::vector<Change> batch;
  for (int i = 0; i < 4000; ++i) batch.push_back(Upsert("doc" + std::to_string(i), RandomVector(rng, kDim)));
  ASSERT_TRUE(Write(*c, batch).ok());
  std::vector<std::vector<float>> queries;
  for (int q = 0; q < 100; ++q) queries.push_back(RandomVector(rng, kDim));
  ASSERT_TRUE(c->SetEfSearch(8).ok());
  const double narrow = Recall(*c, queries);
  ASSERT_TRUE(c->SetEfSearch(512).ok());
  EXPECT_EQ(c->params().ef_search, 512u);
  const double wide = Recall(*c, queries);
  EXPECT_GE(wide, 0.99);
  EXPECT_LT(narrow, wide - 0.05) << "ef_search 8 and 512 give about the same recall";
  EXPECT_EQ(c->SetEfSearch(4).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CollectionTest, FiltersApplyInExactAndHnswSearch) {
  std::mt19937 rng(11);
  constexpr uint32_t kDim = 16;
  for (uint32_t threshold : {100000u, 100u}) {
    auto c = Make(kDim, Metric::kL2, threshold);
    std::vector<Change> batch;
    for (int i = 0; i < 2000; ++i) {
      // One in 200 is "rare": a filter the graph's first candidates mostly miss.
      const std::string kind = i % 200 == 0 ? "rare" : "common";
      batch.push_back(Upsert("d" + std::to_string(i), RandomVector(rng, kDim),
                             "{\"kind\":\"" + kind + "\",\"n\":" + std::to_string(i) + "}"));
    }
    ASSERT_TRUE(Write(*c, batch).ok());
    auto filter = Filter::Parse(R"({"kind":"rare"})");
    auto range = Filter::Parse(R"({"n":{"$gte":100,"$lt":110}})");
    ASSERT_TRUE(filter.ok() && range.ok());
    const auto query = RandomVector(rng, kDim);
    auto rare = c->Search(query, 5, *filter);
    ASSERT_TRUE(rare.ok());
    ASSERT_EQ(rare->size(), 5u) << "threshold " << threshold;
    for (const Hit& h : *rare) EXPECT_NE(h.metadata.find("\"rare\""), std::string::npos);
    // Ten documents lie in the range; all ten, nearest first, as the exact scan says.
    auto in_range = c->Search(query, 20, *range);
    auto exact = c->Search(query, 20, *range, /*exact=*/true);
    ASSERT_TRUE(in_range.ok() && exact.ok());
    EXPECT_EQ(in_range->size(), 10u);
    EXPECT_EQ(Ids(*in_range), Ids(*exact));
  }
}

TEST(CollectionTest, DeletesAndUpsertsInBothModes) {
  for (uint32_t threshold : {100000u, 10u}) {
    auto c = Make(2, Metric::kL2, threshold);
    std::vector<Change> batch;
    for (int i = 0; i < 50; ++i) batch.push_back(Upsert("p" + std::to_string(i), {float(i), 0}));
    ASSERT_TRUE(Write(*c, batch).ok());
    ASSERT_TRUE(Write(*c, {Delete("p10"), Delete("never-there")}).ok());
    auto hits = c->Search({10, 0}, 1, Filter());
    ASSERT_TRUE(hits.ok());
    EXPECT_NE((*hits)[0].id, "p10");
    EXPECT_FALSE(c->Get("p10").ok());
    // A new document takes the freed slot; an upsert moves p20 next to the query.
    ASSERT_TRUE(Write(*c, {Upsert("fresh", {100, 0}), Upsert("p20", {10.1f, 0}, R"({"moved":true})")}).ok());
    hits = c->Search({10, 0}, 1, Filter());
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ((*hits)[0].id, "p20");
    EXPECT_EQ((*hits)[0].metadata, R"({"moved":true})");
    hits = c->Search({100, 0}, 1, Filter());
    EXPECT_EQ((*hits)[0].id, "fresh");
    EXPECT_EQ(c->Stats().documents, 50u);
    // Deleted then re-added in one batch: present; added then deleted: absent.
    ASSERT_TRUE(Write(*c, {Delete("p1"), Upsert("p1", {1, 1}), Upsert("gone", {5, 5}), Delete("gone")}).ok());
    EXPECT_TRUE(c->Get("p1").ok());
    EXPECT_FALSE(c->Get("gone").ok());
  }
}

TEST(CollectionTest, RefusesOutOfBoundsInput) {
  auto c = Make(3, Metric::kCosine, 10);
  EXPECT_EQ(c->Check({Upsert("a", {1, 2})}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Check({Upsert("a", {1, NAN, 2})}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Check({Upsert("a", {0, 0, 0})}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Check({Upsert("", {1, 2, 3})}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Check({Upsert(std::string(kMaxIdBytes + 1, 'x'), {1, 2, 3})}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Check({Upsert("a", {1, 2, 3}, "[1]")}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Search({1, 2, 3}, 0, Filter()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Search({1, 2, 3}, kMaxTopK + 1, Filter()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Search({1, 2}, 1, Filter()).status().code(), absl::StatusCode::kInvalidArgument);
  CollectionParams params;
  params.dimension = 0;
  EXPECT_FALSE(Collection::Create(params).ok());
  params.dimension = kMaxDimension + 1;
  EXPECT_FALSE(Collection::Create(params).ok());
  params.dimension = 4;
  params.m = 1;
  EXPECT_FALSE(Collection::Create(params).ok());
}

TEST(CollectionTest, MemoryBoundRefusesWhenFullAndFreesOnDelete) {
  auto c = Make(64, Metric::kL2, 10, /*max_bytes=*/1 << 16);
  std::mt19937 rng(3);
  int written = 0;
  absl::Status status;
  while ((status = Write(*c, {Upsert("v" + std::to_string(written), RandomVector(rng, 64))})).ok()) ++written;
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(status.message()).find("full"), std::string::npos);
  EXPECT_GT(written, 10);
  EXPECT_LE(c->Stats().bytes, uint64_t{1} << 16);
  // Nothing of the refused write was applied.
  EXPECT_EQ(c->Stats().documents, static_cast<uint64_t>(written));
  ASSERT_TRUE(Write(*c, {Delete("v0")}).ok());
  EXPECT_TRUE(Write(*c, {Upsert("again", RandomVector(rng, 64))}).ok());
}

}  // namespace
}  // namespace ortserve::retrieval
