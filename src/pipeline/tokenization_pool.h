// SPDX-License-Identifier: Apache-2.0
// TokenizationPool: the worker threads that turn request text into token ids,
// so that tokenization never runs on network I/O threads and never runs
// serialized inside a model's batcher.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ortserve::pipeline {

// A fixed pool of worker threads over one bounded FIFO of tasks.
//
// Contract: Submit calls `task` exactly once: on a worker thread with OK, or
// inline (on the caller's thread) with the rejection: ResourceExhausted when
// `max_queue` tasks are already waiting, Unavailable once Stop has begun.
// Tasks must not block on other tasks of the same pool.
//
// Thread-safe. Destruction stops the pool (see Stop).
class TokenizationPool {
 public:
  using Task = absl::AnyInvocable<void(absl::Status) &&>;

  struct Options {
    int threads = 0;          // 0: one per hardware thread.
    size_t max_queue = 1 << 16;  // Waiting tasks; 0: unbounded.
  };

  static absl::StatusOr<std::unique_ptr<TokenizationPool>> Create(Options options);
  ~TokenizationPool();

  void Submit(Task task);

  // Stops intake (later Submit calls are rejected), runs every task already
  // queued, then joins the workers. Idempotent.
  void Stop();

  int threads() const { return static_cast<int>(workers_.size()); }
  // Tasks queued and not yet started.
  size_t queued() const;

 private:
  explicit TokenizationPool(Options options);
  void Work();

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace ortserve::pipeline
