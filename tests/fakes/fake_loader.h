// SPDX-License-Identifier: Apache-2.0
// FakeLoader: builds ModelVersions without sessions or files, for
// ModelManager tests. Knobs per model/version: fail a load, park loads on a
// gate (a slow load; a cancelled load leaves the gate with Cancelled), and
// the memory_bytes a version reports. Records every load.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "repository/loader.h"

namespace ortserve::testing {

// Thread-safe.
class FakeLoader final : public repository::Loader {
 public:
  explicit FakeLoader(const Clock* clock) : clock_(clock) {}

  // Loads of `name` version `version` (0: every version) fail with `status`
  // (OK: succeed again).
  void SetResult(const std::string& name, int64_t version, absl::Status status) {
    absl::MutexLock lock(&mu_);
    results_[{name, version}] = std::move(status);
  }
  void SetMemoryBytes(uint64_t bytes) {
    absl::MutexLock lock(&mu_);
    memory_bytes_ = bytes;
  }
  // Loads of `name` park until OpenGate() or until their load is cancelled.
  void CloseGate(const std::string& name) {
    absl::MutexLock lock(&mu_);
    gated_ = name;
  }
  void OpenGate() {
    absl::MutexLock lock(&mu_);
    gated_.clear();
  }
  // Waits (real time, bounded) until `n` loads are parked at the gate.
  bool WaitForParked(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return parked_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  // Every load so far, as "name/version".
  std::vector<std::string> loads() const {
    absl::MutexLock lock(&mu_);
    return loads_;
  }

  absl::StatusOr<std::unique_ptr<repository::ModelVersion>> Load(const repository::LoadSpec& spec) override {
    bool cancelled = false;  // Guarded by mu_.
    std::optional<backend::CancelToken::Registration> registration;
    if (spec.cancel != nullptr) {
      registration.emplace(spec.cancel->Register([this, &cancelled] {
        absl::MutexLock lock(&mu_);
        cancelled = true;
      }));
    }
    {
      absl::MutexLock lock(&mu_);
      loads_.push_back(absl::StrCat(spec.name, "/", spec.version));
      if (gated_ == spec.name) {
        ++parked_;
        auto go = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return gated_ != spec.name || cancelled; };
        mu_.Await(absl::Condition(&go));
        --parked_;
      }
    }
    // Outside mu_: the token's lock is taken before ours when it cancels.
    if (spec.cancel != nullptr && spec.cancel->cancelled()) return spec.cancel->status();
    absl::MutexLock lock(&mu_);
    for (const int64_t v : {spec.version, int64_t{0}}) {
      auto it = results_.find({spec.name, v});
      if (it != results_.end() && !it->second.ok()) return it->second;
    }
    auto model = std::make_unique<repository::ModelVersion>();
    model->name = spec.name;
    model->version = spec.version;
    model->version_string = std::to_string(spec.version);
    model->config = *spec.config;
    model->files_fingerprint = spec.files_fingerprint;
    model->memory_bytes = memory_bytes_;
    model->stats = std::make_unique<ModelStats>(model->config.max_batch_size());
    model->Touch(clock_->Now());
    return model;
  }

 private:
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, absl::Status> results_ ABSL_GUARDED_BY(mu_);
  std::string gated_ ABSL_GUARDED_BY(mu_);
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t memory_bytes_ ABSL_GUARDED_BY(mu_) = 4;
  std::vector<std::string> loads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::testing
