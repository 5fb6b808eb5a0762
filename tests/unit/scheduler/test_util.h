// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the scheduler tests: requests and a response collector.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/infer_request.h"

namespace ortserve::scheduler::test {

// A request with one FP32 input "INPUT0" of `shape` holding `values`.
inline std::unique_ptr<InferRequest> MakeFloatRequest(std::string id, Shape shape, std::vector<float> values,
                                                      uint32_t priority = 0) {
  auto request = std::make_unique<InferRequest>();
  request->model_name = "m";
  request->id = std::move(id);
  request->priority = priority;
  request->inputs.push_back(
      MakeTensor<float>("INPUT0", DataType::kFp32, std::move(shape), std::span<const float>(values)));
  return request;
}

// Collects answers in completion order. Thread-safe.
class Collector {
 public:
  struct Answer {
    std::string id;
    absl::StatusOr<InferResponse> result;
  };

  InferCallback Callback(std::string id) {
    return [this, id = std::move(id)](absl::StatusOr<InferResponse> result) mutable {
      absl::MutexLock lock(&mu_);
      answers_.push_back(Answer{std::move(id), std::move(result)});
    };
  }

  // Waits (real time) for `n` answers; false on timeout.
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return answers_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  size_t size() {
    absl::MutexLock lock(&mu_);
    return answers_.size();
  }

  // The answer for `id` (the test has waited for it).
  const absl::StatusOr<InferResponse>& Get(const std::string& id) {
    absl::MutexLock lock(&mu_);
    for (const auto& answer : answers_) {
      if (answer.id == id) return answer.result;
    }
    static const absl::StatusOr<InferResponse> missing = absl::NotFoundError("no answer");
    return missing;
  }

  std::vector<std::string> Order() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const auto& answer : answers_) ids.push_back(answer.id);
    return ids;
  }

 private:
  absl::Mutex mu_;
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mu_);
};

inline std::vector<float> Floats(const Tensor& tensor) {
  auto values = tensor.values<float>();
  return {values.begin(), values.end()};
}

}  // namespace ortserve::scheduler::test
