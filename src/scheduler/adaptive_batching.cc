// SPDX-License-Identifier: Apache-2.0
#include "scheduler/adaptive_batching.h"

#include <algorithm>
#include <cmath>

namespace ortserve::scheduler {

AdaptiveBatchLimit::AdaptiveBatchLimit(Options options)
    : options_(options),
      batch_size_(1),
      queue_delay_(std::max(absl::ZeroDuration(), options.max_queue_delay)) {}

void AdaptiveBatchLimit::Observe(int64_t rows, absl::Duration run_time) {
  if (rows <= 0) return;
  const double run_us = absl::ToDoubleMicroseconds(run_time);
  const double target_us = absl::ToDoubleMicroseconds(options_.target);
  const double per_row = run_us / static_cast<double>(rows);
  run_us_per_row_ = run_us_per_row_ == 0 ? per_row : run_us_per_row_ + (per_row - run_us_per_row_) / 8;
  if (rows > batch_size_) {
    // A backlog batch, above the limit: it says nothing about the limit.
  } else if (2 * run_us > target_us) {
    const auto shrunk = static_cast<int64_t>(std::floor(static_cast<double>(batch_size_) * 0.75));
    batch_size_ = std::max<int64_t>(1, std::min(shrunk, batch_size_ - 1));
  } else if (rows >= batch_size_ && batch_size_ < options_.max_batch_size &&
             2 * run_us * static_cast<double>(batch_size_ + 1) / static_cast<double>(batch_size_) <= target_us) {
    ++batch_size_;
  }
  const double left_us = target_us - 2 * run_us_per_row_ * static_cast<double>(batch_size_);
  queue_delay_ = std::clamp(absl::Microseconds(std::max(0.0, left_us)), absl::ZeroDuration(),
                            std::max(absl::ZeroDuration(), options_.max_queue_delay));
}

}  // namespace ortserve::scheduler
