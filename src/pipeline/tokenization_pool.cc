// SPDX-License-Identifier: Apache-2.0
#include "pipeline/tokenization_pool.h"

#include <algorithm>

#include "core/strings.h"

namespace ortserve::pipeline {

absl::StatusOr<std::unique_ptr<TokenizationPool>> TokenizationPool::Create(Options options) {
  if (options.threads < 0) {
    return absl::InvalidArgumentError(StrCat("tokenizer threads ", options.threads, " is negative"));
  }
  if (options.threads == 0) options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::unique_ptr<TokenizationPool>(new TokenizationPool(options));
}

TokenizationPool::TokenizationPool(Options options) : options_(options) {
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { Work(); });
}

TokenizationPool::~TokenizationPool() { Stop(); }

void TokenizationPool::Submit(Task task) {
  absl::Status rejection;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      rejection = absl::UnavailableError("the server is shutting down; retry later");
    } else if (options_.max_queue != 0 && queue_.size() >= options_.max_queue) {
      rejection = absl::ResourceExhaustedError(
          StrCat("the tokenization queue is full (", options_.max_queue, " texts waiting); retry later"));
    } else {
      queue_.push_back(std::move(task));
      cv_.Signal();
      return;
    }
  }
  std::move(task)(std::move(rejection));
}

void TokenizationPool::Work() {
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // Stopping and drained.
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(task)(absl::OkStatus());
  }
}

void TokenizationPool::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  if (stopped_) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  for (auto& worker : workers_) worker.join();
  stopped_ = true;
}

size_t TokenizationPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

}  // namespace ortserve::pipeline
