// SPDX-License-Identifier: Apache-2.0
// InferRequest / InferResponse: the protocol-neutral form every front end decodes
// into and encodes from.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/parameters.h"
#include "core/tensor.h"

namespace ortserve {
namespace observability {
class Tracer;  // Only named here: core neither includes nor links observability.
}  // namespace observability

// An output the client asked for, with how it wants it encoded.
struct RequestedOutput {
  std::string name;
  bool binary_data = false;       // Binary tensor extension: raw bytes, not JSON.
  uint32_t classification = 0;    // Classification extension: top-k labels; 0 = off.
  Parameters parameters;
};

// Set by a front end when its client goes away; the scheduler drops the request
// before it costs compute. Thread-safe.
class CancellationFlag {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

// Request metadata a front end exposes to the layers below it: HTTP headers
// or gRPC metadata, looked up by lower-case name. Implementations are views
// over the front end's request; valid until the request's callback returns.
class RequestHeaders {
 public:
  virtual ~RequestHeaders() = default;
  // The first value of header `lowercase_name`, or nullopt.
  virtual std::optional<std::string_view> Get(std::string_view lowercase_name) const = 0;
};

// Where a request sits in a trace, for the spans recorded below the front
// end (tokenization, queue wait, batch execution). The front end's request
// record fills it for sampled requests only; `tracer` stays null otherwise,
// and then nothing is recorded. Plain data: copying it never allocates.
struct RequestTrace {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};  // The request's server span: the parent.
  observability::Tracer* tracer = nullptr;  // Not owned; outlives the request.
  // Text pipeline requests: the request's token count, summed over its texts
  // (set once tokenized); 0 otherwise.
  int64_t input_tokens = 0;

  bool sampled() const { return tracer != nullptr; }
};

struct InferRequest {
  std::string model_name;
  std::string model_version;  // Empty: the server's version policy chooses.
  std::string id;
  Parameters parameters;
  std::vector<Tensor> inputs;
  std::vector<Parameters> input_parameters;  // Parallel to `inputs`; may be shorter.
  std::vector<RequestedOutput> outputs;       // Empty: every output, default encoding.
  bool binary_data_output = false;            // Request-wide `binary_data_output`.

  // Scheduling. Priority 0 is the model's default level, 1 the highest.
  uint32_t priority = 0;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time arrival = absl::InfinitePast();
  std::shared_ptr<CancellationFlag> cancellation;

  // Keeps the wire bytes alive that input tensors view (the HTTP body, the
  // gRPC message).
  std::shared_ptr<const void> payload;

  // The front end's headers/metadata (routing reads X-Model-Version and the
  // sticky key here); null when the request came without any.
  const RequestHeaders* headers = nullptr;

  // Trace position for child spans; empty (unsampled) by default.
  RequestTrace trace;

  // A copy of every field (tensors stay views sharing their holders; the
  // payload, cancellation and headers are shared). Fallback and shadow copies
  // start from this, then change what they must, so that a field added here
  // is never silently dropped on the way to another version.
  InferRequest Clone() const { return *this; }

  // Whether its client went away (or it was cancelled otherwise).
  bool cancelled() const { return cancellation != nullptr && cancellation->cancelled(); }

  // The input named `name`, or null.
  const Tensor* FindInput(std::string_view name) const {
    for (const auto& input : inputs) {
      if (input.name == name) return &input;
    }
    return nullptr;
  }
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

// How a request's result comes back. Called exactly once, on any thread, and
// must not block: front ends post the encoding back to their own threads.
using InferCallback = absl::AnyInvocable<void(absl::StatusOr<InferResponse>) &&>;

}  // namespace ortserve
