// SPDX-License-Identifier: Apache-2.0
// Shadow traffic: a sampled copy of a model's requests runs on a candidate
// (another version or model) off the primary's path, and the two answers are
// compared so the candidate can be judged on live traffic before it serves any.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "core/infer_request.h"

namespace ortserve::router {

// What comparing a shadow's outputs with the primary's found. Outputs are
// matched by name; outputs only one side has are skipped.
struct OutputComparison {
  // Label rows compared, and how many agreed. A label is the argmax along the
  // last dimension of a floating-point output of rank >= 2 (one per row of
  // the leading dimensions), or each element of a BYTES output.
  int64_t label_rows = 0;
  int64_t label_agreements = 0;
  // The largest |primary - shadow| over numeric outputs of equal type and
  // shape; +inf when a NaN is on one side only or shapes/types differ.
  double max_abs_difference = 0;
  // Outputs compared (by name, on both sides).
  int compared_outputs = 0;
};

OutputComparison CompareOutputs(std::span<const Tensor> primary, std::span<const Tensor> shadow);

// A deep copy of `request` for the shadow target (InferRequest::Clone, so no
// field is dropped): its input bytes in one owned buffer (the primary's body
// may be gone before the shadow runs), and no headers, cancellation,
// deadline, trace or id of the client's.
std::unique_ptr<InferRequest> CopyForShadow(const InferRequest& request);

// Bounds the shadow requests of one primary model in flight at once (queued
// or running on the target). Thread-safe, lock-free.
class ShadowLimiter {
 public:
  // True when a slot was taken; the caller must Release() it exactly once.
  bool TryAcquire(uint32_t limit) {
    uint32_t current = in_flight_.load(std::memory_order_relaxed);
    while (current < limit) {
      if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  void Release() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
  uint32_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint32_t> in_flight_{0};
};

// Runs shadow comparisons one at a time on a thread of its own. A comparison
// walks both answers' outputs (all of an embedding batch, say); on the thread
// that delivered the second answer, a model's runner, it would hold up that
// model's next batch. What waits here is bounded by the shadow limiters: a
// mirrored request keeps its slot until it is compared. Thread-safe.
class ComparisonWorker {
 public:
  ComparisonWorker();
  // Runs what is queued, then joins the thread.
  ~ComparisonWorker();
  ComparisonWorker(const ComparisonWorker&) = delete;
  ComparisonWorker& operator=(const ComparisonWorker&) = delete;

  void Submit(absl::AnyInvocable<void() &&> task);

 private:
  void Run();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); }

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ortserve::router
