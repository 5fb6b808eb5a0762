// SPDX-License-Identifier: Apache-2.0
#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ortserve::loadgen {
namespace {

// Highest index: values up to 2^63-1 have their top bit at 62.
constexpr int kBucketCount =
    static_cast<int>((62 - LatencyHistogram::kSubBucketBits + 1) * LatencyHistogram::kSubBucketCount +
                     LatencyHistogram::kSubBucketCount);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

int LatencyHistogram::BucketIndex(int64_t value) {
  if (value < 2 * kSubBucketCount) return static_cast<int>(std::max<int64_t>(value, 0));
  const int msb = 63 - std::countl_zero(static_cast<uint64_t>(value));
  const int shift = msb - kSubBucketBits;  // >= 1 here.
  const int64_t sub = value >> shift;      // In [kSubBucketCount, 2 * kSubBucketCount).
  return static_cast<int>((shift + 1) * kSubBucketCount + (sub - kSubBucketCount));
}

int64_t LatencyHistogram::BucketLowest(int index) {
  if (index < 2 * kSubBucketCount) return index;
  const int shift = static_cast<int>(index / kSubBucketCount) - 1;
  const int64_t sub = index % kSubBucketCount + kSubBucketCount;
  return sub << shift;
}

int64_t LatencyHistogram::BucketHighest(int index) {
  if (index < 2 * kSubBucketCount) return index;
  const int shift = static_cast<int>(index / kSubBucketCount) - 1;
  const int64_t sub = index % kSubBucketCount + kSubBucketCount;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(int64_t value) {
  value = std::max<int64_t>(value, 0);
  ++counts_[BucketIndex(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  sum_ = 0;
}

int64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHighest(static_cast<int>(i)), max_);
  }
  return max_;
}

ArrivalSchedule::ArrivalSchedule(Kind kind, double rate_per_second, uint64_t seed)
    : kind_(kind), mean_gap_ns_(1e9 / rate_per_second), rng_(seed), exponential_(1.0) {}

int64_t ArrivalSchedule::NextGapNanos() {
  double gap = kind_ == Kind::kConstant ? mean_gap_ns_ : exponential_(rng_) * mean_gap_ns_;
  gap += carry_;
  const double whole = std::floor(gap);
  carry_ = gap - whole;
  return static_cast<int64_t>(whole);
}

}  // namespace ortserve::loadgen
