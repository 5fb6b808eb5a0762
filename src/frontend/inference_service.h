// SPDX-License-Identifier: Apache-2.0
// InferenceService: the protocol-neutral facade every front end calls.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/infer_request.h"
#include "observability/request_record.h"
#include "observability/trace_settings.h"
#include "frontend/shared_memory.h"
#include "pipeline/tokenization_pool.h"
#include "repository/model_manager.h"
#include "router/executor.h"
#include "router/response_cache.h"
#include "router/router.h"

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
  // The model's last failed load (config, load or warm-up error) while an
  // earlier load keeps serving; empty when the last load succeeded.
  std::string last_load_error;
};

// The protocol-neutral facade every front end (REST, gRPC, pipelines) calls,
// as TF Serving's ServerCore is: a request goes admission -> router ->
// executor (scheduler, text pipeline); metadata, readiness and model control
// are read from the model manager. Stateless apart from readiness and the
// in-flight count the shutdown drain waits on.
//
// Thread-safe.
class InferenceService {
 public:
  struct Options {
    repository::ModelManager* models = nullptr;  // Not owned.
    Clock* clock = Clock::Real();
    // Where text pipeline models tokenize (not owned); null: on the calling
    // thread (tests only; servers always pass one).
    pipeline::TokenizationPool* tokenization_pool = nullptr;
    // Models that must be READY for the server to be ready (--required-model);
    // empty: ready once start-up loading finished.
    std::vector<std::string> required_models;
    // --strict-readiness: not ready while any model's last load failed and
    // it has no READY version (FailedModels).
    bool strict_readiness = false;
    // Who may register system shared memory regions.
    SharedMemoryPolicy shared_memory;
    // Metrics, logs and tracing (each may be null).
    observability::Telemetry telemetry;
    // Where models with `response_cache { enable: true }` keep answers (not
    // owned); null: no caching.
    router::ResponseCache* response_cache = nullptr;
    // Where shadow comparisons run (tests hold them back with this); unset: a
    // thread of the router's own.
    std::function<void(absl::AnyInvocable<void() &&>)> run_comparison;
    // Test seams: a router executor and model provider in place of the
    // service's own (a ModelExecutor; `models`). Not owned.
    router::Executor* executor = nullptr;
    repository::ModelProvider* model_provider = nullptr;
  };
  explicit InferenceService(Options options);
  ~InferenceService();

  static constexpr std::string_view kServerName = "ortserve";
  static std::string_view ServerVersion();
  // Triton protocol extensions this server offers (GET /v2 "extensions").
  const std::vector<std::string>& Extensions() const { return extensions_; }

  // Live while the process can serve; front ends answer it from their own
  // event loops, so a wedged loop cannot answer.
  bool Live() const { return true; }
  // Ready once start-up loading is done (SetReady(true)) and until shutdown
  // begins, when every required model has a READY version. Loads and
  // reloads in the background never flip it (a reload keeps the old version
  // READY until the swap).
  bool Ready() const;
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_release); }
  // Models whose last load failed (config, load or warm-up error) and that
  // have no READY version; sorted. A model unloaded on purpose is not failed.
  std::vector<std::string> FailedModels() const;

  // Shutdown, step one: readiness false and later Infer calls answered
  // UNAVAILABLE; requests already admitted carry on. Irreversible.
  void BeginDrain() {
    draining_.store(true, std::memory_order_release);
    SetReady(false);
  }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  // Requests Infer admitted (and shadow copies) whose `done` has not returned yet.
  size_t InflightCount() const { return inflight_.load(std::memory_order_acquire); }

  const observability::Telemetry& telemetry() const { return options_.telemetry; }
  // System shared memory regions clients registered (Triton's extension);
  // unmapped when the service is destroyed, or once no request holds them.
  SharedMemoryManager& shared_memory() const { return shared_memory_; }

  absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const {
    return options_.models->GetModel(name, version);
  }
  absl::StatusOr<ModelMetadata> GetModelMetadata(std::string_view name, std::string_view version) const;
  // The model config a client sees (GET .../config, gRPC ModelConfig): the
  // version's config, except that a text pipeline model shows the interface
  // its metadata shows (input `text` BYTES, the pipeline's outputs), dims
  // without the batch dimension when it batches, so that a client sizing
  // inputs from the config (perf_analyzer) sends what the server takes. The
  // ONNX graph's own tensors (input_ids, attention_mask, ...) are kept out:
  // no client sends them.
  absl::StatusOr<config::ModelConfig> GetServedConfig(std::string_view name, std::string_view version) const;
  std::vector<repository::ModelIndexEntry> Index() const { return options_.models->Index(); }

  // Triton's trace-setting extension (observability/trace_settings.h): the
  // settings of `model` (empty: the global ones) after applying `updates`
  // (none: only read). Errors: NotFound for an unknown model (as GetModel),
  // InvalidArgument for a refused setting, FailedPrecondition when a change
  // is asked of a server started without tracing (no --otlp-endpoint nor
  // --trace-sampling-ratio).
  absl::StatusOr<observability::TraceSettings::Map> TraceSetting(
      std::string_view model, const observability::TraceSettings::Updates& updates) const;

  // Model repository extension (load/unload; needs --model-control-mode=explicit).
  // LoadModel loads model `name` or reloads what changed of it; `config_json`
  // is Triton's config override (the JSON form of config.pbtxt; empty: use
  // the folder's config.pbtxt). UnloadModel stops serving every version; admitted
  // requests finish first. Both run on the model manager's loader threads
  // and call `done` exactly once, from a loader thread (inline when rejected
  // up front), so a front end must hop back to its own thread. Errors:
  // InvalidArgument (a name that could leave the repository, a bad config),
  // NotFound (no such model), FailedPrecondition (not explicit mode),
  // Unavailable (shutting down), or the load's own error (the versions that
  // served before keep serving).
  void LoadModel(std::string name, std::string config_json, std::function<void(absl::Status)> done) {
    options_.models->LoadModelAsync(std::move(name), std::move(config_json), std::move(done));
  }
  void UnloadModel(std::string name, std::function<void(absl::Status)> done) {
    options_.models->UnloadModelAsync(std::move(name), std::move(done));
  }

  // Serves `request` (router/router.h: version, cache, checks, shadow,
  // fallback; then the version's scheduler or text pipeline). `done` is
  // called exactly once with the response or the error: InvalidArgument for
  // a bad request (naming the tensor), NotFound/Unavailable for the model,
  // and the scheduler's errors. Keeps the model version alive until `done`
  // returns.
  //
  // `record` (optional, owned by the front end, must outlive `done`): the
  // request's observability record; Infer tells it the model version, and
  // counts the request in the version's pending gauge until `done` returns.
  void Infer(std::unique_ptr<InferRequest> request, InferCallback done,
             observability::RequestRecord* record = nullptr);

 private:
  // What answering one admitted request needs: the caller's callback and,
  // when the router adds no wrapper, the version it holds and whose pending
  // gauge counts it (router::AnswerSlot). Calls are recycled, so the callback
  // handed down captures only a pointer (it fits AnyInvocable's inline
  // storage) and a warm server allocates no wrapper per request. The pool
  // grows to the most requests in flight at once.
  struct Call {
    InferCallback done;
    router::AnswerSlot slot;
    Call* next_free = nullptr;
  };

  // A recycled (or, when none is free, new) Call holding `done`.
  Call* AcquireCall(InferCallback done);
  // Settles `call`'s pending gauge, recycles it, hands `result` to its
  // callback, releases the callback and the version hold, and only then ends
  // the request's in-flight count.
  void Finish(Call* call, absl::StatusOr<InferResponse> result);

  Options options_;
  mutable SharedMemoryManager shared_memory_;
  std::vector<std::string> extensions_;
  std::unique_ptr<router::Executor> own_executor_;
  std::unique_ptr<router::Router> router_;
  absl::Mutex calls_mu_;
  std::vector<std::unique_ptr<Call>> calls_ ABSL_GUARDED_BY(calls_mu_);  // Every Call made.
  Call* free_calls_ ABSL_GUARDED_BY(calls_mu_) = nullptr;                // Linked by next_free.
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<size_t> inflight_{0};
};

}  // namespace ortserve::frontend
