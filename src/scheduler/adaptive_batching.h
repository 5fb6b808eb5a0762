// SPDX-License-Identifier: Apache-2.0
// AdaptiveBatchLimit: the batch size and queue delay a dynamic batcher uses
// when its model has a latency target (dynamic_batching
// { latency_target_microseconds }), chosen from the latencies it observes.
//
// A request waits at most for the batch it finds running and then runs in the
// next one, so the target holds while twice a batch's run time plus the
// queue delay fits in it. After every batch the batcher reports its rows and
// run time (AIMD, as Clipper adapts to its SLO):
//   - 2 x run time over the target: the batch size limit shrinks
//     multiplicatively (x 0.75, at least by one row);
//   - otherwise, when the batch was full at the current limit (a larger one
//     could have formed) and one more row would still fit (2 x run time x
//     (limit + 1) / limit within the target): the limit grows by one row. A
//     batch below the limit says nothing about larger ones and leaves it.
//   - The queue delay is what the target leaves after two runs of a batch at
//     the limit: target - 2 x (moving average of run time per row, weight
//     1/8) x limit, within [0, max_queue_delay].
//   - A batch above the limit (the batcher cuts one, up to max_batch_size,
//     when its oldest request has already waited the whole target: a
//     backlog) feeds the moving average only, never the limit.
// Both stay within the configured bounds: 1..max_batch_size rows and
// 0..max_queue_delay. It starts at one row and max_queue_delay, and grows
// as full batches show that larger ones fit. Under more load than the model can serve within the
// target the queue grows (bounded by max_queue_size and timeouts); once its
// oldest request has waited the whole target, the batcher serves the backlog
// with batches up to max_batch_size (the most throughput), and the limit,
// untouched by them, is where it was when the load falls back.
//
// Not thread-safe: the batcher calls it under its own lock.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace ortserve::scheduler {

class AdaptiveBatchLimit {
 public:
  struct Options {
    absl::Duration target;           // > 0.
    int64_t max_batch_size = 1;      // >= 1.
    absl::Duration max_queue_delay;  // >= 0.
  };
  explicit AdaptiveBatchLimit(Options options);

  int64_t batch_size() const { return batch_size_; }
  absl::Duration queue_delay() const { return queue_delay_; }

  // One batch of `rows` rows ran in `run_time`.
  void Observe(int64_t rows, absl::Duration run_time);

 private:
  const Options options_;
  int64_t batch_size_;
  absl::Duration queue_delay_;
  double run_us_per_row_ = 0;  // Moving average; 0 until the first batch.
};

}  // namespace ortserve::scheduler
