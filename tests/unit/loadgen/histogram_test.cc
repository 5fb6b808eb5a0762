// SPDX-License-Identifier: Apache-2.0
#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ortserve::loadgen {
namespace {

// The exact value at quantile q by the same rank rule the histogram uses.
int64_t ExactQuantile(std::vector<int64_t> values, double q) {
  std::sort(values.begin(), values.end());
  int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(values.size()))));
  return values[static_cast<size_t>(rank - 1)];
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 0; v < 256; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 0);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 127);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 255);
  EXPECT_DOUBLE_EQ(h.mean(), 127.5);
}

TEST(LatencyHistogramTest, BucketsTileTheValueRangeWithoutGapsOrOverlap) {
  int64_t expected_low = 0;
  for (int i = 0; i < 40 * LatencyHistogram::kSubBucketCount; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLowest(i), expected_low) << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::BucketIndex(LatencyHistogram::BucketLowest(i)), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(LatencyHistogram::BucketHighest(i)), i);
    expected_low = LatencyHistogram::BucketHighest(i) + 1;
  }
}

TEST(LatencyHistogramTest, BucketWidthIsWithinRelativePrecision) {
  for (int64_t v : {1000LL, 123456LL, 987654321LL, 1LL << 40}) {
    const int i = LatencyHistogram::BucketIndex(v);
    const double width = static_cast<double>(LatencyHistogram::BucketHighest(i) - LatencyHistogram::BucketLowest(i) + 1);
    EXPECT_LE(width / static_cast<double>(v), 1.0 / LatencyHistogram::kSubBucketCount) << v;
  }
}

TEST(LatencyHistogramTest, PercentilesOfLogNormalLatenciesAreWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(200'000.0), 0.8);  // ~200 us median, long tail.
  std::vector<int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200'000; ++i) {
    const int64_t v = static_cast<int64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(ExactQuantile(values, q));
    const double got = static_cast<double>(h.ValueAtQuantile(q));
    EXPECT_GE(got, exact) << "q=" << q;  // Highest equivalent value: never below.
    EXPECT_LE((got - exact) / exact, 1.0 / LatencyHistogram::kSubBucketCount) << "q=" << q;
  }
  EXPECT_EQ(h.ValueAtQuantile(1.0), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(h.min(), *std::min_element(values.begin(), values.end()));
  double sum = 0;
  for (int64_t v : values) sum += static_cast<double>(v);
  EXPECT_NEAR(h.mean(), sum / static_cast<double>(values.size()), 1e-6 * h.mean());
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (int64_t v = 1; v < 100'000; v += 37) {
    (v % 2 ? a : b).Record(v * 101);
    all.Record(v * 101);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
}

TEST(LatencyHistogramTest, NegativeValuesCountAsZeroAndResetClearsEverything) {
  LatencyHistogram h;
  h.Record(-5);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 0);
  h.Reset();
  EXPECT_EQ(h.count(), 0);
  h.Record(1'000'000);
  EXPECT_EQ(h.min(), 1'000'000);
}

TEST(ArrivalScheduleTest, ConstantArrivalsKeepTheExactLongRunRate) {
  ArrivalSchedule s(ArrivalSchedule::Kind::kConstant, 3000.0, 1);  // 333333.33 ns gaps.
  int64_t total = 0;
  for (int i = 0; i < 3000; ++i) {
    const int64_t gap = s.NextGapNanos();
    EXPECT_TRUE(gap == 333333 || gap == 333334) << gap;
    total += gap;
  }
  EXPECT_NEAR(total, 1'000'000'000, 1);
}

TEST(ArrivalScheduleTest, PoissonGapsHaveTheRightMeanAndSpread) {
  ArrivalSchedule s(ArrivalSchedule::Kind::kPoisson, 20'000.0, 7);  // Mean gap 50 us.
  const int n = 200'000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double gap = static_cast<double>(s.NextGapNanos());
    sum += gap;
    sum_sq += gap * gap;
  }
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 50'000.0, 500.0);
  EXPECT_NEAR(stddev, 50'000.0, 1'000.0);  // Exponential: stddev == mean.
}

}  // namespace
}  // namespace ortserve::loadgen
