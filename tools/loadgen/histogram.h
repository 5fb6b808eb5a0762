// SPDX-License-Identifier: Apache-2.0
// Latency statistics for ortserve-loadgen: a log-linear bucketed histogram in
// the style of HdrHistogram, and the arrival schedules of the open-loop mode.
//
// LatencyHistogram records non-negative integer values (nanoseconds in the load
// generator). Values below 2^(kSubBucketBits+1) are exact; above that every
// power-of-two range is split into 2^kSubBucketBits equal buckets, so a
// reported percentile is within 1/2^kSubBucketBits (0.8%) of the true value.
// Recording is O(1) and never allocates after construction.
//
// Thread-safety: not thread-safe; the load generator keeps one histogram per
// I/O thread and merges them (Merge) after the run. ArrivalSchedule likewise.
// Errors: none; negative values are recorded as 0.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace ortserve::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;

  LatencyHistogram();

  void Record(int64_t value);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);
  void Reset();

  int64_t count() const { return count_; }
  // Exact minimum / maximum / mean of the recorded values (0 when empty).
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_); }

  // The value at quantile q in [0, 1]: the highest value equivalent (same
  // bucket) to the smallest recorded value v such that at least
  // ceil(q * count) values are <= v, capped at max(). 0 when empty.
  int64_t ValueAtQuantile(double q) const;

  // Bucket arithmetic, exposed for tests.
  static int BucketIndex(int64_t value);
  static int64_t BucketLowest(int index);
  static int64_t BucketHighest(int index);

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  // Sum in nanoseconds: 2^63 ns is ~292 years of latency, enough for any run.
  int64_t sum_ = 0;
};

// Inter-arrival times of an open-loop run: constant spacing (1/rate) or a
// Poisson process (exponential gaps with mean 1/rate), seeded for repeatability.
class ArrivalSchedule {
 public:
  enum class Kind { kConstant, kPoisson };
  // rate_per_second > 0.
  ArrivalSchedule(Kind kind, double rate_per_second, uint64_t seed);
  // Nanoseconds from the previous arrival to the next one.
  int64_t NextGapNanos();

 private:
  Kind kind_;
  double mean_gap_ns_;
  // Carries the fractional nanoseconds of constant gaps so that the long-run
  // rate is exact even when 1e9/rate is not an integer.
  double carry_ = 0.0;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exponential_;
};

}  // namespace ortserve::loadgen
