// SPDX-License-Identifier: Apache-2.0
// Which outputs a KServe v2 infer response carries, in which order and how:
// the rules both the REST and the gRPC encoders follow.
//
//  - A request that names no outputs gets every output of the model's
//    response, in response order; as binary sections when the request sets
//    binary_data_output.
//  - Otherwise it gets exactly the outputs it names, in its order; each binary
//    when its binary_data (or the request's binary_data_output) is set, and
//    classified (classification.h) when its classification is k > 0.
// gRPC answers every output in raw_output_contents whatever `binary` says.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "core/infer_request.h"
#include "frontend/kserve/classification.h"

namespace ortserve::frontend {

// What an encoder needs besides the response and the request.
struct EncodeOptions {
  // Class labels for the classification extension. Unset: no labels.
  ClassLabels labels;
};

// One output to write.
struct SelectedOutput {
  const Tensor* tensor = nullptr;              // The response's output (not owned).
  const RequestedOutput* requested = nullptr;  // Null when the request named no outputs.
  bool binary = false;                         // Binary tensor extension.
  uint32_t classification = 0;                 // Top-k; 0 = the tensor itself.
  // Written into a shared memory region (reserved_parameters.h): encoders
  // send its name, datatype, shape and the request's shared_memory_*
  // parameters, without its data.
  bool shared_memory = false;
};
using SelectedOutputs = absl::InlinedVector<SelectedOutput, 4>;

// Fills `out` (cleared first; no allocation for up to 4 outputs) by the
// rules above. Pointers point into `response` and `request`.
// Errors: Internal naming the output when a requested output is missing from
// the response.
absl::Status SelectOutputs(const InferResponse& response, const InferRequest& request, SelectedOutputs* out);

}  // namespace ortserve::frontend
