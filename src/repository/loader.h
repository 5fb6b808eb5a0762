// SPDX-License-Identifier: Apache-2.0
// Loader: how one model version is built, given where it lives and its
// config: sessions (reusing the replaced version's when only the config
// changed), labels, the text pipeline, warm-up and the scheduler. The
// ModelManager decides what to load and owns the result; a Loader only
// builds (TF Serving's Loader, Triton's model creation step). Tests give the
// manager a FakeLoader (tests/fakes/fake_loader.h) instead.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "core/clock.h"
#include "repository/model_config.h"
#include "repository/model_version.h"

namespace ortserve::observability {
class Metrics;
}  // namespace ortserve::observability

namespace ortserve::repository {

// One version to build.
struct LoadSpec {
  std::string name;
  std::string model_dir;  // <repository>/<name>
  int64_t version = 0;
  const ModelConfig* config = nullptr;  // The config read or overridden; not auto-completed yet. Not owned.
  uint64_t files_fingerprint = 0;       // Of the version folder's files.
  // The version this load replaces (null if none): its sessions are reused
  // when the files and that instance's session options are unchanged.
  ModelHandle previous;
  // Cancels the load (warm-up stops within one run). Not owned; null: never.
  backend::CancelToken* cancel = nullptr;
};

// Thread-safe: the manager calls Load from several loader threads at once
// (never twice at once for the same model).
class Loader {
 public:
  virtual ~Loader() = default;
  // A ready-to-serve version: config completed, warmed up, scheduler running,
  // Touch()ed at load. Errors: the session factory's (NotFound,
  // InvalidArgument, FailedPrecondition), InvalidArgument for a config or
  // warm-up the model contradicts, Cancelled when `spec.cancel` fired.
  virtual absl::StatusOr<std::unique_ptr<ModelVersion>> Load(const LoadSpec& spec) = 0;
};

// The Loader of real models: ONNX Runtime sessions from a SessionFactory.
// Thread-safe.
class SessionLoader final : public Loader {
 public:
  struct Options {
    backend::SessionFactory* session_factory = nullptr;  // Not owned; required.
    // Per-version Prometheus series. Not owned; null: no metrics.
    observability::Metrics* metrics = nullptr;
    // Config and device warnings, once per load. From loader threads.
    std::function<void(const std::string&)> warn;
    const Clock* clock = nullptr;  // Not owned; null: Clock::Real().
  };
  // Errors: InvalidArgument without a session factory.
  static absl::StatusOr<std::unique_ptr<SessionLoader>> Create(Options options);

  absl::StatusOr<std::unique_ptr<ModelVersion>> Load(const LoadSpec& spec) override;

 private:
  explicit SessionLoader(Options options);
  const Options options_;
  const Clock* const clock_;
};

}  // namespace ortserve::repository
