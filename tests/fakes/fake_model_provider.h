// SPDX-License-Identifier: Apache-2.0
// Fakes of the router's neighbours: a model provider whose versions are made
// from config text (no repository, no sessions), and an executor that answers
// with what the test says, at once or when released.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "core/model_stats.h"
#include "google/protobuf/text_format.h"
#include "repository/model_manager.h"
#include "router/executor.h"

namespace ortserve::testing {

// Thread-safe.
class FakeModelProvider final : public repository::ModelProvider {
 public:
  // Adds version `version` of `name`, with `config_text` (protobuf text of
  // ModelConfig). The highest added version is the default.
  repository::ModelHandle Add(const std::string& name, int64_t version, const std::string& config_text = "") {
    auto model = std::make_shared<repository::ModelVersion>();
    model->name = name;
    model->version = version;
    model->version_string = std::to_string(version);
    google::protobuf::TextFormat::ParseFromString(config_text, &model->config);
    model->config.set_name(name);
    model->stats = std::make_unique<ModelStats>(model->config.max_batch_size());
    absl::MutexLock lock(&mu_);
    models_[name][version] = model;
    return model;
  }
  // Makes `name` unavailable (as a lazy model not loaded is) until Release.
  void MakeLazy(const std::string& name) {
    absl::MutexLock lock(&mu_);
    lazy_[name] = true;
  }
  // Ends the pending lazy loads of `name`: it serves from now on.
  void FinishLazyLoad(const std::string& name) {
    std::vector<std::pair<std::string, std::function<void(absl::StatusOr<repository::ModelHandle>)>>> waiting;
    {
      absl::MutexLock lock(&mu_);
      lazy_[name] = false;
      waiting.swap(waiters_);
    }
    for (auto& [version, done] : waiting) done(GetModel(name, version));
  }
  int acquires() const {
    absl::MutexLock lock(&mu_);
    return acquires_;
  }

  absl::StatusOr<repository::ModelHandle> GetModel(std::string_view name, std::string_view version) const override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(std::string(name));
    if (it == models_.end()) return absl::NotFoundError(std::string("unknown model '") + std::string(name) + "'");
    if (auto lazy = lazy_.find(std::string(name)); lazy != lazy_.end() && lazy->second) {
      return absl::UnavailableError("not loaded (lazy)");
    }
    if (version.empty()) return it->second.rbegin()->second;
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::string_view(version.data(), version.size()), &v)) {
      return absl::InvalidArgumentError("version is not a number");
    }
    auto found = it->second.find(v);
    if (found == it->second.end()) return absl::NotFoundError("unknown version");
    return found->second;
  }

  void AcquireModelAsync(std::string name, std::string version,
                         std::function<void(absl::StatusOr<repository::ModelHandle>)> done) override {
    {
      absl::MutexLock lock(&mu_);
      ++acquires_;
      if (auto lazy = lazy_.find(name); lazy != lazy_.end() && lazy->second) {
        waiters_.emplace_back(std::move(version), std::move(done));
        return;
      }
    }
    done(GetModel(name, version));
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::map<int64_t, repository::ModelHandle>> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> lazy_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::function<void(absl::StatusOr<repository::ModelHandle>)>>> waiters_
      ABSL_GUARDED_BY(mu_);
  int acquires_ ABSL_GUARDED_BY(mu_) = 0;
};

// Records what it is asked to run and answers per model: by default an echo
// of the inputs as outputs; `Fail(model, status)` makes that model fail;
// `Hold()` keeps answers until `ReleaseAll()`. Thread-safe.
class FakeExecutor final : public router::Executor {
 public:
  struct Run {
    std::string model;
    std::string version;
    std::string id;
    bool version_held = false;
  };

  void Fail(const std::string& model, absl::Status status) {
    absl::MutexLock lock(&mu_);
    failures_[model] = std::move(status);
  }
  // `model` answers again (undoes Fail).
  void Heal(const std::string& model) {
    absl::MutexLock lock(&mu_);
    failures_.erase(model);
  }
  void RejectAtValidation(const std::string& model, absl::Status status) {
    absl::MutexLock lock(&mu_);
    invalid_[model] = std::move(status);
  }
  void Hold() {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  void ReleaseAll() {
    std::deque<std::function<void()>> held;
    {
      absl::MutexLock lock(&mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto& answer : held) answer();
  }
  std::vector<Run> runs() const {
    absl::MutexLock lock(&mu_);
    return runs_;
  }

  absl::Status Validate(const repository::ModelVersion& model, InferRequest&) override {
    absl::MutexLock lock(&mu_);
    auto it = invalid_.find(model.name);
    return it == invalid_.end() ? absl::OkStatus() : it->second;
  }

  void Execute(repository::ModelHandle model, std::unique_ptr<InferRequest> request, InferCallback done,
               bool version_held) override {
    absl::StatusOr<InferResponse> result;
    bool hold;
    {
      absl::MutexLock lock(&mu_);
      runs_.push_back({model->name, model->version_string, request->id, version_held});
      if (auto it = failures_.find(model->name); it != failures_.end()) {
        result = it->second;
      } else {
        InferResponse response;
        response.model_name = model->name;
        response.model_version = model->version_string;
        response.id = request->id;
        response.outputs = request->inputs;
        result = std::move(response);
      }
      hold = hold_;
    }
    // The answer owns the request (the outputs are views into its payload).
    auto answer = [result = std::move(result), request = std::shared_ptr<InferRequest>(std::move(request)),
                   done = std::make_shared<InferCallback>(std::move(done)), model]() mutable {
      std::move (*done)(std::move(result));
    };
    if (!hold) return answer();
    absl::MutexLock lock(&mu_);
    held_.push_back(std::move(answer));
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> invalid_ ABSL_GUARDED_BY(mu_);
  std::vector<Run> runs_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::testing
