// SPDX-License-Identifier: Apache-2.0
// FakeSessionFactory: makes FakeSessions with a signature chosen per model
// path, or fails, without touching ONNX Runtime.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "backend/session.h"
#include "fakes/fake_session.h"

namespace ortserve::testing {

// Thread-safe.
class FakeSessionFactory final : public backend::SessionFactory {
 public:
  // Sessions for model paths containing `path_part` get `signature`; the
  // first matching rule wins. Paths matching no rule fail with NotFound.
  void AddModel(std::string path_part, backend::ModelSignature signature) {
    absl::MutexLock lock(&mu_);
    models_.emplace_back(std::move(path_part), std::move(signature));
  }
  // Sessions for paths containing `path_part` fail with `status`.
  void FailModel(std::string path_part, absl::Status status) {
    absl::MutexLock lock(&mu_);
    failures_.emplace_back(std::move(path_part), std::move(status));
  }

  absl::StatusOr<std::unique_ptr<backend::Session>> Create(const backend::SessionOptions& options) override {
    absl::MutexLock lock(&mu_);
    created_.push_back(options);
    for (const auto& [part, status] : failures_) {
      if (options.model_path.find(part) != std::string::npos) return status;
    }
    for (const auto& [part, signature] : models_) {
      if (options.model_path.find(part) != std::string::npos) {
        auto session = std::make_unique<FakeSession>(signature);
        if (options.device == backend::DeviceKind::kGpu) {
          session->set_device_name("gpu" + std::to_string(options.gpu_device_id));
        }
        session->set_pinned_host_memory(pinned_);
        return std::unique_ptr<backend::Session>(std::move(session));
      }
    }
    return absl::NotFoundError("FakeSessionFactory has no model for " + options.model_path);
  }

  // Whether the sessions made from now on hand out pinned host memory (as a
  // GPU session with a working CUDA provider does). Default true.
  void set_pinned_host_memory(bool pinned) {
    absl::MutexLock lock(&mu_);
    pinned_ = pinned;
  }

  // Options of every Create call, in order.
  std::vector<backend::SessionOptions> created() const {
    absl::MutexLock lock(&mu_);
    return created_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, backend::ModelSignature>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, absl::Status>> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<backend::SessionOptions> created_ ABSL_GUARDED_BY(mu_);
  bool pinned_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace ortserve::testing
