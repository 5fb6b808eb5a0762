// SPDX-License-Identifier: Apache-2.0
// InferenceService: the protocol-neutral facade every front end (REST, gRPC,
// pipelines) calls. Stateless apart from readiness: model state lives in the
// ModelManager, so front ends stay thin.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/infer_request.h"
#include "repository/model_manager.h"

namespace ortserve::frontend {

using repository::ModelHandle;

// A tensor as model metadata shows it: served shape (batch dim -1 first when
// the model batches).
struct TensorMetadata {
  std::string name;
  DataType type;
  Shape shape;
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// Thread-safe.
class InferenceService {
 public:
  struct Options {
    repository::ModelManager* models = nullptr;  // Not owned.
    Clock* clock = Clock::Real();
  };
  explicit InferenceService(Options options) : options_(options) {}

  static constexpr std::string_view kServerName = "ortserve";
  static std::string_view ServerVersion();
  // Triton protocol extensions this server implements (GET /v2 "extensions").
  static const std::vector<std::string>& Extensions();

  // Live while the process can serve; front ends answer it from their own
  // event loops, so a wedged loop cannot answer.
  bool Live() const { return true; }
  // Ready once start-up loading finished and until shutdown begins.
  bool Ready() const { return ready_.load(std::memory_order_acquire); }
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_release); }

  absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const {
    return options_.models->GetModel(name, version);
  }
  absl::StatusOr<ModelMetadata> GetModelMetadata(std::string_view name, std::string_view version) const;
  std::vector<repository::ModelIndexEntry> Index() const { return options_.models->Index(); }

  // Checks `request` against the model (input names, types, shapes, batch
  // size, byte sizes, requested outputs), then queues it. `done` is called
  // exactly once with the response or the error: InvalidArgument for a bad
  // request (naming the tensor), NotFound/Unavailable for the model, and the
  // scheduler's errors. Keeps the model version alive until `done` returns.
  void Infer(std::unique_ptr<InferRequest> request, InferCallback done);

  // Infer's checks alone, for tests and for front ends that decode against a
  // model before queueing.
  static absl::Status ValidateRequest(const repository::ModelVersion& model, InferRequest& request);

 private:
  Options options_;
  std::atomic<bool> ready_{false};
};

}  // namespace ortserve::frontend
