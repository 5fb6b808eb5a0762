// SPDX-License-Identifier: Apache-2.0
// FakeSession: a backend::Session for tests, with knobs.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/session.h"

namespace ortserve::testing {

// Stands in for a loaded model. Knobs:
//  - the signature it reports;
//  - a compute function that turns inputs into outputs (default: output j is a
//    copy of input j mod #inputs: same type, shape and bytes);
//  - a gate (Hold/Release) that parks every Run until released;
//  - a failure status every Run returns;
//  - counters: runs started and finished, the most runs at once;
//  - the recorded input shapes of each run (off with set_record_shapes(false));
//  - host memory (AllocateHostBuffer) it marks pinned, as a GPU session's is,
//    and counts: buffers made and still alive, and the runs whose every input
//    lay in such a buffer;
//  - the device name it reports (default "cpu").
//
// Output memory comes from a pool of buffers the session recycles once no
// tensor refers to them any more, so after warm-up Run allocates nothing
// (with recording off, output names of at most 15 characters, and a compute
// function that allocates nothing).
//
// Thread-safe.
class FakeSession final : public backend::Session {
 public:
  // Appends outputs for the compute function.
  class Outputs {
   public:
    // Appends output `name` and returns its writable bytes (`bytes` long), which
    // stay valid while any tensor refers to them.
    std::span<std::byte> Add(const std::string& name, DataType type, const Shape& shape, size_t bytes);

   private:
    friend class FakeSession;
    Outputs(FakeSession* session, std::vector<Tensor>* outputs) : session_(session), outputs_(outputs) {}
    FakeSession* session_;
    std::vector<Tensor>* outputs_;
  };
  using Compute = std::function<absl::Status(std::span<const Tensor> inputs,
                                             std::span<const std::string> output_names, Outputs& outputs)>;

  explicit FakeSession(backend::ModelSignature signature, Compute compute = nullptr);

  // The default compute function (see the class comment).
  static absl::Status CopyInputs(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                 Outputs& outputs);

  const backend::ModelSignature& signature() const override { return signature_; }
  absl::Status Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                   std::vector<Tensor>* outputs) override;
  // As Run; a run parked by Hold() ends with the token's Cancelled when the
  // token is cancelled (as ORT's terminate flag ends a run).
  absl::Status RunCancellable(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                              std::vector<Tensor>* outputs, backend::CancelToken& cancel) override;

  // As Run, recording `parent` (see trace_parents()).
  absl::Status RunTraced(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                         std::vector<Tensor>* outputs, const RequestTrace& parent) override;
  // The parents of the traced runs so far, in order.
  std::vector<RequestTrace> trace_parents() const;

  backend::HostBuffer AllocateHostBuffer(size_t bytes) override;
  // Whether AllocateHostBuffer's memory is marked pinned (default true).
  void set_pinned_host_memory(bool pinned);
  std::string device_name() const override;
  void set_device_name(std::string name);

  // Parks every Run (after it counts as started) until Release().
  void Hold();
  void Release();
  // Every later Run returns `status` (OK: compute again).
  void SetFailure(absl::Status status);
  void set_record_shapes(bool record);

  // Waits until at least `n` runs have started (resp. finished); false on timeout (real time).
  bool WaitForRunsStarted(int n, absl::Duration timeout);
  bool WaitForRunsFinished(int n, absl::Duration timeout);

  int runs_started() const;
  int runs_finished() const;
  int max_concurrent_runs() const;
  int host_buffers_allocated() const;
  int host_buffers_alive() const;
  // Runs whose inputs all lay in this session's host buffers.
  int runs_on_host_buffers() const;
  // Per run, the shape of each input, in the order given.
  std::vector<std::vector<Shape>> batch_shapes() const;
  // Per run, dim 0 of the first input (the batch size), 0 for rank-0 inputs.
  std::vector<int64_t> batch_sizes() const;

 private:
  // Run; `stopped` (guarded by mu_, may be null) ends a parked run.
  absl::Status RunImpl(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                       std::vector<Tensor>* outputs, const bool* stopped);
  std::span<std::byte> AcquireBuffer(size_t bytes, std::shared_ptr<const void>* holder);

  const backend::ModelSignature signature_;
  const Compute compute_;

  mutable absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool record_shapes_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<RequestTrace> trace_parents_ ABSL_GUARDED_BY(mu_);
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::vector<Shape>> shapes_ ABSL_GUARDED_BY(mu_);

  static void ReleaseHostBuffer(void* session, std::byte* data);
  bool InHostBuffers(std::span<const Tensor> inputs) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string device_name_ ABSL_GUARDED_BY(mu_) = "cpu";
  bool pinned_ ABSL_GUARDED_BY(mu_) = true;
  int host_allocated_ ABSL_GUARDED_BY(mu_) = 0;
  int runs_on_host_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::span<const std::byte>> host_buffers_ ABSL_GUARDED_BY(mu_);  // Alive ones.

  absl::Mutex pool_mu_;
  std::vector<std::shared_ptr<std::vector<std::byte>>> pool_ ABSL_GUARDED_BY(pool_mu_);
};

// A signature with the given inputs and outputs (name, type, dims).
backend::ModelSignature MakeSignature(std::vector<backend::TensorSpec> inputs,
                                      std::vector<backend::TensorSpec> outputs);

}  // namespace ortserve::testing
