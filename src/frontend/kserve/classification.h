// SPDX-License-Identifier: Apache-2.0
// The KServe classification extension, on core tensors: a requested output
// with parameter "classification": k is answered with the top k classes of
// the model's output instead of the output itself. Both the REST and the gRPC
// encoders call Classify, so both rank identically.
//
// Rules (clients see these):
//  - The result is a BYTES tensor of "value:index" strings, or
//    "value:index:label" when the output has a label for that class.
//  - Highest value first; equal values by lower index; NaN after every number.
//  - A tensor of rank >= 2 is a batch: the first dimension is the batch and
//    each row (the remaining elements) is ranked separately; result shape
//    [batch, k']. A tensor of rank 0 or 1 is ranked as a whole; shape [k'].
//    k' = min(k, classes).
//  - The value is written in the shortest form that round-trips the tensor's
//    own type (FP32 0.1 is "0.1"; FP16/BF16 as the float they encode;
//    integers as integers; BOOL as 0 or 1).
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace ortserve::frontend {

// The class labels of output `output_name`, indexed by class; an empty span
// when it has none. The span must stay valid while the response is encoded.
using ClassLabels = std::function<std::span<const std::string>(std::string_view output_name)>;

// Ranks `tensor` by the rules above, keeping the top `k` (> 0) of each row,
// labelled from `labels` (classes past its end get none). Replaces *bytes with
// the result elements in core/tensor.h's BYTES layout (its capacity is reused)
// and *shape with the result shape.
// Errors: InvalidArgument naming the output when `tensor` is BYTES (nothing to
// rank); Internal naming the output when its bytes do not match its type and
// shape.
absl::Status Classify(const Tensor& tensor, uint32_t k, std::span<const std::string> labels,
                      std::vector<std::byte>* bytes, Shape* shape);

}  // namespace ortserve::frontend
