// SPDX-License-Identifier: Apache-2.0
// Session: one loaded model instance that runs (batched) inputs to outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/infer_request.h"
#include "core/tensor.h"

namespace ortserve::backend {

// A model input or output as the model declares it. -1 marks a variable
// dimension (dynamic axis or symbolic name).
struct TensorSpec {
  std::string name;
  DataType type = DataType::kInvalid;
  Shape dims;
};

struct ModelSignature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;

  const TensorSpec* FindInput(std::string_view name) const;
  const TensorSpec* FindOutput(std::string_view name) const;
};

// Host memory a caller builds a session's inputs in (the scheduler's batch
// buffers), owned and move-only. It comes from the session, because where it
// lives decides how fast the engine reads it: a GPU session hands out
// page-locked (pinned) memory, which the device copies in one DMA with no
// staging through a driver buffer; a CPU session hands out heap memory.
// A buffer must be released before the session that made it is destroyed.
class HostBuffer {
 public:
  // Gives `data` back to whoever allocated it.
  using Release = void (*)(void* owner, std::byte* data);

  HostBuffer() = default;
  // Heap memory for `bytes` bytes (uninitialized).
  explicit HostBuffer(size_t bytes);
  // Memory from an allocator: `release(owner, data)` frees it.
  HostBuffer(std::byte* data, size_t size, bool pinned, Release release, void* owner)
      : data_(data), size_(size), pinned_(pinned), release_(release), owner_(owner) {}
  HostBuffer(HostBuffer&& other) noexcept { *this = std::move(other); }
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer() { Reset(); }

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  // Page-locked memory (from a GPU session's pinned allocator).
  bool pinned() const { return pinned_; }

 private:
  void Reset();

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool pinned_ = false;
  Release release_ = nullptr;
  void* owner_ = nullptr;
};

// Stops long work that was handed it: model runs given to
// Session::RunCancellable (warm-up) and the load that runs them. Cancel()
// makes every later check fail and runs every registered stop callback, so a
// run in progress ends as soon as the engine notices (ONNX Runtime checks its
// terminate flag between operators). One token per load; it only goes from
// not cancelled to cancelled.
//
// Thread-safe. Stop callbacks run under the token's lock, on the thread that
// calls Cancel() (or Register(), when already cancelled): they must be quick,
// must not block and must not call back into the token.
class CancelToken {
 public:
  // Ends a registration when destroyed; once it is gone its callback is not
  // running and never runs again. Move-only.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept
        : token_(std::exchange(other.token_, nullptr)), id_(other.id_) {}
    Registration& operator=(Registration&&) = delete;
    Registration(const Registration&) = delete;
    ~Registration();

   private:
    friend class CancelToken;
    Registration(CancelToken* token, uint64_t id) : token_(token), id_(id) {}
    CancelToken* token_ = nullptr;
    uint64_t id_ = 0;
  };

  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Idempotent. `why` (kept from the first call) goes into Status().
  void Cancel(std::string why = "cancelled");
  bool cancelled() const;
  // Cancelled with the reason once cancelled, else OK.
  absl::Status status() const;
  // Calls `stop` on Cancel(); at once when already cancelled. The token must
  // outlive the registration.
  [[nodiscard]] Registration Register(std::function<void()> stop);

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::string why_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::function<void()>> stops_ ABSL_GUARDED_BY(mu_);
};

// Runs a loaded model. Implementations wrap an execution engine (ONNX Runtime)
// or fake one in tests.
//
// Thread-safe: Run may be called concurrently (ORT sessions allow it); the
// scheduler decides how many runs are in flight per session.
class Session {
 public:
  virtual ~Session() = default;

  virtual const ModelSignature& signature() const = 0;

  // Runs the model once. `inputs` are views over caller-owned memory that stays
  // valid for the call, named as in the signature, all present. `output_names`
  // selects outputs; the results are appended to `outputs` in that order, each
  // keeping its own memory alive through Tensor::holder.
  // Errors: InvalidArgument for inputs the model rejects (type, rank, shape),
  // Internal for a failure inside the engine.
  virtual absl::Status Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                           std::vector<Tensor>* outputs) = 0;

  // Run as part of a sampled trace: `parent` is the span the run belongs
  // under (the request's server span when the batch is one request, else
  // the batch span), so a session that makes spans of its own (a remote
  // model's call) makes them its children. The default just runs. Called
  // only when the batch serves a sampled request.
  virtual absl::Status RunTraced(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                 std::vector<Tensor>* outputs, const RequestTrace& parent) {
    (void)parent;
    return Run(inputs, output_names, outputs);
  }

  // Run, stopped early when `cancel` is cancelled: Cancelled (with the
  // token's reason) when it was cancelled before or during the run. The
  // default checks the token before running and runs to the end; engines
  // that can interrupt a run (ORT: RunOptions::SetTerminate) override it.
  // Costs a registration per call: for warm-up and loads, not the hot path.
  virtual absl::Status RunCancellable(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                      std::vector<Tensor>* outputs, CancelToken& cancel);

  // Memory for inputs the caller assembles (see HostBuffer): `bytes` bytes,
  // uninitialized. The default is heap memory. Thread-safe. Call it while
  // warming up, not per request: pinned memory is slow to allocate.
  virtual HostBuffer AllocateHostBuffer(size_t bytes) { return HostBuffer(bytes); }

  // The device the session runs on, as metrics label it: "cpu", or "gpu"
  // and the device id ("gpu0").
  virtual std::string device_name() const { return "cpu"; }
};

// Graph optimization levels, as ORT names them.
enum class GraphOptimization {
  kDisabled,  // No graph rewrites.
  kBasic,     // Constant folding, redundant node removal.
  kExtended,  // Plus fusions.
  kAll,       // Plus layout optimizations (ORT's default).
};

enum class ExecutionMode {
  kSequential,  // Operators run one at a time (ORT's default).
  kParallel,    // Independent branches run on the inter-op pool.
};

enum class DeviceKind {
  kCpu,  // The CPU execution provider.
  kGpu,  // The CUDA execution provider on `gpu_device_id`.
};

// How to create a session. Filled by the repository from a model's config.
struct SessionOptions {
  std::string model_path;
  // Both 0: the session shares the factory's process-wide pools. Either set:
  // the session gets pools of its own (0 there meaning one thread per core).
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  GraphOptimization graph_optimization = GraphOptimization::kAll;
  ExecutionMode execution_mode = ExecutionMode::kSequential;
  bool enable_cpu_mem_arena = true;
  bool enable_mem_pattern = true;
  DeviceKind device = DeviceKind::kCpu;
  // Run through ORT's IoBinding: inputs are bound once (copied to the device
  // once for GPU sessions) and outputs are bound to host memory (pinned for
  // GPU sessions), so results come back in one copy. On by default for GPU.
  bool io_binding = false;
  int gpu_device_id = 0;
  // Free-form ORT session config entries (key -> value), passed through.
  std::vector<std::pair<std::string, std::string>> config_entries;
  // Provider options for the CUDA execution provider (key -> value, ORT names).
  std::vector<std::pair<std::string, std::string>> gpu_provider_options;

  // Equal options make equal sessions: a config-only change that leaves them
  // alone keeps the loaded weights.
  bool operator==(const SessionOptions&) const = default;
};

// Creates sessions. Thread-safe.
class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  // Errors: NotFound (no model file), InvalidArgument (the engine rejects the
  // model or an option), FailedPrecondition (e.g. a GPU session without a GPU).
  virtual absl::StatusOr<std::unique_ptr<Session>> Create(const SessionOptions& options) = 0;
};

}  // namespace ortserve::backend
