// SPDX-License-Identifier: Apache-2.0
// The KServe v2 / Open Inference Protocol REST codec: request bodies (JSON, plus
// the binary tensor extension) to InferRequest, InferResponse to JSON plus
// binary sections. Pure functions: no sockets, no server state, so they can be
// unit-tested and fuzzed directly.
//
// Thread-safety: every function is thread-safe. DecodeInferRequest keeps one
// simdjson parser per thread (thread_local) so that steady-state decoding does
// not allocate parser memory; a parser grown past 16 MiB by a large body is
// released after that request.
//
// Cost: JSON is read with simdjson's on-demand API (no document tree); each
// input's numbers are parsed once, straight into a buffer of the size its
// shape declares; bodies of 8 MiB or more parse their large numeric data
// arrays without simdjson's token index (json_tensor_data.h). Float data in
// responses is written with Dragonbox's shortest digits in std::to_chars's
// layout (rest_encoder.cc).
//
// Wire rules chosen where the protocol leaves room (clients see these):
//  - JSON `data` may be flat or nested to any depth; it is flattened in
//    row-major order and only the total element count must match the shape.
//  - NaN and infinities: JSON has no literal for them, so responses write the
//    strings "NaN", "Infinity" and "-Infinity" (the proto3 JSON mapping for
//    float/double), and requests accept the same strings in FP32/FP64 data.
//  - FP16/BF16 inputs must use the binary extension (JSON numbers would need a
//    lossy rounding the client did not ask for); FP16/BF16 outputs in JSON are
//    written as the exact float value they encode.
//  - BYTES outputs in JSON are strings. Valid UTF-8 passes through (with JSON
//    escapes for '"', '\\' and control characters, so an embedded NUL is
//    "\u0000"); each byte that does not start a valid UTF-8 sequence is written
//    as "\ufffd" (U+FFFD REPLACEMENT CHARACTER). The output is always valid
//    JSON; clients that need arbitrary bytes back must ask for binary_data.
//  - Numbers are written in the shortest form that round-trips the tensor's own
//    type (an FP32 0.1 is written "0.1", not "0.10000000149011612").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/data_type.h"
#include "core/infer_request.h"
#include "core/json_writer.h"  // The JSON writer; this codec's strings follow its escaping rules.
#include "frontend/kserve/reserved_parameters.h"
#include "frontend/kserve/response_outputs.h"  // EncodeOptions.

namespace ortserve::frontend {

// {"error":"<message>"}, the message escaped by core/json_writer.h's rules.
std::string EncodeError(std::string_view message);

// ---------------------------------------------------------------------------
// Requests.

// Decodes the body of POST /v2/models/<m>[/versions/<v>]/infer. The caller sets
// model_name / model_version from the URL afterwards.
//
// `data`/`size` is the whole body. `capacity` (>= size) is how many bytes are
// readable from `data`: when the JSON part plus simdjson::SIMDJSON_PADDING fits
// in it the JSON is parsed in place, otherwise it is copied to a padded buffer.
// `header_length` is the Inference-Header-Content-Length header (nullopt when
// absent): the first header_length bytes are JSON and the rest is binary tensor
// data, one section per input that has parameters.binary_data_size, in input
// order. A value of 0 (a raw body) is not accepted here: use
// DecodeRawInferRequest. Binary inputs become views into the body with
// `holder = payload` (no copy); JSON inputs get one owned buffer each (numbers
// are parsed straight into it; BYTES are packed in the layout of core/tensor.h).
//
// Fills id, parameters, inputs, input_parameters (one per input), outputs
// (binary_data and classification from their parameters), binary_data_output,
// priority (parameter "priority"), arrival (= now), deadline (parameter
// "timeout", microseconds after `now`; 0 or absent: none) and payload.
//
// Errors (all InvalidArgument, naming the field or tensor and the value):
// malformed JSON, missing or non-array "inputs", an input without name / shape
// / datatype or with both or neither of data and binary_data_size, an unknown
// datatype, a negative dimension, a duplicate input or output name, an element
// count that differs from the shape, a value of the wrong kind or out of range
// for the datatype, FP16/BF16 sent as JSON data, binary sections that do not
// add up to the bytes after the JSON header, or a BYTES binary section whose
// elements are malformed.
absl::StatusOr<InferRequest> DecodeInferRequest(const char* data, size_t size, size_t capacity,
                                                std::optional<size_t> header_length,
                                                std::shared_ptr<const void> payload,
                                                absl::Time now);

// The model input a raw body (Inference-Header-Content-Length: 0) fills.
struct RawInputSpec {
  std::string name;
  DataType type = DataType::kInvalid;
  // May hold one -1 (typically the batch dimension); it is inferred from the
  // body size (for BYTES: from the number of elements in the body).
  std::vector<int64_t> shape;
};

// Decodes a raw body: the whole body is the one input described by `input`
// (the caller takes it from the model's signature, which must have exactly one
// input). The tensor is a view into the body (holder = payload). No JSON means
// no id, parameters or output selection; binary_data_output is set, so the
// response carries its outputs as binary sections, as for Triton's raw form.
// Errors: InvalidArgument when the body size does not fit the type and shape
// (or the BYTES layout is malformed), when the shape has more than one -1, or
// when the type is invalid.
absl::StatusOr<InferRequest> DecodeRawInferRequest(const char* data, size_t size,
                                                   const RawInputSpec& input,
                                                   std::shared_ptr<const void> payload,
                                                   absl::Time now);

// ---------------------------------------------------------------------------
// Responses.

struct EncodedResponse {
  std::string json;                                // The JSON part.
  std::vector<std::span<const std::byte>> binary;  // Binary sections, in output order.
  size_t binary_size = 0;                          // Sum of the sizes of `binary`.
  // Bytes made while encoding that binary sections point into (classification
  // results). Heap buffers, so moving the EncodedResponse keeps spans valid.
  std::vector<std::vector<std::byte>> owned;
  bool has_binary() const { return !binary.empty(); }
};

// Encodes an infer response. `request` says which outputs to write and how,
// by the rules of frontend/kserve/response_outputs.h (all outputs in response
// order, or the requested ones in request order; binary or JSON each).
// JSON:
//   {"model_name","model_version","id" (only when non-empty),
//    "parameters" (only when non-empty),
//    "outputs":[{"name","datatype","shape",
//                "parameters":{"binary_data_size":N}   (binary outputs)
//                | "data":[flat, row-major]}]}           (JSON outputs)
// Binary spans point into the response's tensors (no copy): keep `response`
// alive until they are written.
//
// Classification (classification = k > 0): the output becomes the BYTES tensor
// of frontend/kserve/classification.h ("value:index[:label]" strings, top k
// per row), labelled by options.labels.
//
// Errors: Internal when a requested output is missing from the response or an
// output tensor is malformed (size not matching its shape/type, bad BYTES
// layout); InvalidArgument when classification is asked of a BYTES output.
absl::StatusOr<EncodedResponse> EncodeInferResponse(const InferResponse& response,
                                                    const InferRequest& request,
                                                    const EncodeOptions& options = {});
// The same, into `out`, whose buffers keep their capacity from call to call
// (a connection encodes each response into the same one). On error `out`
// holds a partial encoding.
absl::Status EncodeInferResponse(const InferResponse& response, const InferRequest& request,
                                 const EncodeOptions& options, EncodedResponse* out);

// Conversions used by the encoder (core/data_type.h; kept here for callers).
using ::ortserve::Bfloat16ToFloat;
using ::ortserve::HalfToFloat;

}  // namespace ortserve::frontend
