// SPDX-License-Identifier: Apache-2.0
// ModelStats: per-model-version counters in the shape of Triton's statistics
// extension. Written by the scheduler on its runner threads, read by front ends.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace ortserve {

// A count and a total duration. Thread-safe, lock-free.
class DurationStat {
 public:
  void Record(absl::Duration d, uint64_t n = 1) {
    count_.fetch_add(n, std::memory_order_relaxed);
    ns_.fetch_add(static_cast<uint64_t>(absl::ToInt64Nanoseconds(d)), std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t ns() const { return ns_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> ns_{0};
};

struct BatchSizeStats {
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
};

// Thread-safe: every field is atomic; the batch table is sized at construction.
class ModelStats {
 public:
  // Batch sizes above this are counted in the totals but get no row of their
  // own: the table is allocated up front, and a max_batch_size of many digits
  // must not take the server's memory.
  static constexpr size_t kMostTrackedBatch = 4096;

  explicit ModelStats(int max_batch_size)
      : batch_stats_(std::min<size_t>(static_cast<size_t>(max_batch_size > 0 ? max_batch_size : 1),
                                      kMostTrackedBatch) +
                     1) {}

  DurationStat success;         // Requests answered, end to end (request arrival to response).
  DurationStat fail;            // Requests that failed after admission.
  DurationStat queue;           // Time requests waited in the queue.
  DurationStat compute_input;   // Per request: copying inputs into the batch.
  DurationStat compute_infer;   // Per request: the model run.
  DurationStat compute_output;  // Per request: splitting outputs back.
  DurationStat cache_hit;
  DurationStat cache_miss;
  std::atomic<uint64_t> inference_count{0};  // Samples inferred (batch rows).
  std::atomic<uint64_t> execution_count{0};  // Model runs.
  std::atomic<int64_t> last_inference_ms{0};  // Unix ms of the last response.

  // Per-run statistics by batch size (index = batch size), or null past the table.
  BatchSizeStats* ForBatch(size_t batch_size) {
    return batch_size < batch_stats_.size() ? &batch_stats_[batch_size] : nullptr;
  }
  size_t max_tracked_batch() const { return batch_stats_.size() - 1; }
  const BatchSizeStats& batch(size_t batch_size) const { return batch_stats_[batch_size]; }

 private:
  std::vector<BatchSizeStats> batch_stats_;
};

}  // namespace ortserve
