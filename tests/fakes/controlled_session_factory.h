// SPDX-License-Identifier: Apache-2.0
// ControlledSessionFactory: makes FakeSessions of one signature (x, y: FP32
// [-1, 2]) for any model path, with knobs per path substring: fail creation
// (a corrupt file), fail every run (breaks warm-up), or park creation on a
// gate (a slow load). Records every path it was asked for and keeps a pointer
// to each session it made. For model manager tests.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backend/session.h"
#include "fakes/fake_session.h"

namespace ortserve::testing {

// Thread-safe.
class ControlledSessionFactory final : public backend::SessionFactory {
 public:
  ControlledSessionFactory() {
    signature_.inputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});
    signature_.outputs.push_back({"y", DataType::kFp32, Shape{-1, 2}});
  }
  void FailCreate(std::string part) {
    absl::MutexLock lock(&mu_);
    fail_create_.push_back(std::move(part));
  }
  void FailRuns(std::string part) {
    absl::MutexLock lock(&mu_);
    fail_runs_.push_back(std::move(part));
  }
  // Sessions made for paths containing `part` start held (FakeSession::Hold):
  // their runs (warm-up) park until released or cancelled.
  void HoldRuns(std::string part) {
    absl::MutexLock lock(&mu_);
    hold_runs_.push_back(std::move(part));
  }
  // Creations for paths containing `part` notify gate_entered (once) and
  // wait for gate_open.
  void GateCreate(std::string part) {
    absl::MutexLock lock(&mu_);
    gate_part_ = std::move(part);
  }
  absl::Notification gate_entered;
  absl::Notification gate_open;

  absl::StatusOr<std::unique_ptr<backend::Session>> Create(const backend::SessionOptions& options) override {
    const std::string& path = options.model_path;
    bool gated = false;
    {
      absl::MutexLock lock(&mu_);
      paths_.push_back(path);
      options_.push_back(options);
      for (const auto& part : fail_create_) {
        if (path.find(part) != std::string::npos) {
          return absl::InvalidArgumentError("Load model from " + path + " failed: protobuf parsing failed");
        }
      }
      gated = !gate_part_.empty() && path.find(gate_part_) != std::string::npos;
    }
    if (gated) {
      if (!gate_entered.HasBeenNotified()) gate_entered.Notify();
      gate_open.WaitForNotification();
    }
    auto session = std::make_unique<FakeSession>(signature_);
    absl::MutexLock lock(&mu_);
    for (const auto& part : fail_runs_) {
      if (path.find(part) != std::string::npos) session->SetFailure(absl::InternalError("kernel failed"));
    }
    for (const auto& part : hold_runs_) {
      if (path.find(part) != std::string::npos) session->Hold();
    }
    sessions_.push_back(session.get());
    return std::unique_ptr<backend::Session>(std::move(session));
  }

  // Create calls so far (failed ones included).
  size_t created() const {
    absl::MutexLock lock(&mu_);
    return paths_.size();
  }
  // Create calls for paths containing `part`.
  size_t CreatedFor(std::string_view part) const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (const auto& path : paths_) n += path.find(part) != std::string::npos;
    return n;
  }
  // The options of every Create call so far, in order.
  std::vector<backend::SessionOptions> created_options() const {
    absl::MutexLock lock(&mu_);
    return options_;
  }
  // Only while the version owning it is alive.
  FakeSession* session(size_t i) const {
    absl::MutexLock lock(&mu_);
    return sessions_.at(i);
  }
  size_t sessions() const {
    absl::MutexLock lock(&mu_);
    return sessions_.size();
  }

 private:
  backend::ModelSignature signature_;
  mutable absl::Mutex mu_;
  std::vector<std::string> fail_create_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> fail_runs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> hold_runs_ ABSL_GUARDED_BY(mu_);
  std::string gate_part_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> paths_ ABSL_GUARDED_BY(mu_);
  std::vector<backend::SessionOptions> options_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeSession*> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::testing
