// SPDX-License-Identifier: Apache-2.0
// Internal to the REST codec (ortserve_http_codec): the JSON part of an infer
// request body, read with simdjson's on-demand API, with each input's `data`
// array converted straight into its tensor's bytes. Include
// kserve_json_codec.h instead.
//
// Cost: no DOM of the body is built. simdjson's first stage indexes the body's
// tokens (4 bytes per token: about 0.8x the text of FP32 numbers such as
// "0.12345678,", up to 4x for one-digit numbers); then the document is walked
// once, front to back, and every number is parsed once, into a buffer of
// exactly count * element size bytes taken from the declared shape (checked
// against the body's size first). An input whose "data" comes before its
// "shape" or "datatype" is walked a second time. A body of 8 MiB or more has
// its large numeric "data" arrays parsed straight from the body, without the
// token index (json_tensor_runs.cc, "runs"), with the same results and
// messages.
//
// Thread-safety: every function is thread-safe. Each thread keeps one parser
// (thread_local) so steady-state decoding does not allocate parser memory; a
// parser grown past 16 MiB by a large body is released after that request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "core/data_type.h"
#include "core/infer_request.h"
#include "core/tensor.h"
#include "simdjson.h"

namespace ortserve::frontend::rest_internal {

// Deepest nesting of arrays and objects accepted anywhere in a body (simdjson's
// default for its DOM parser, which the codec used before).
inline constexpr int kMaxJsonDepth = static_cast<int>(simdjson::DEFAULT_MAX_DEPTH);

// "request body is not valid JSON: <simdjson's reason>" (InvalidArgument).
absl::Status NotJson(simdjson::error_code error);

// Bytes in one heap block that `holder` keeps alive.
struct OwnedBytes {
  std::shared_ptr<const void> holder;
  std::span<const std::byte> data;
};

// One "inputs" entry as the JSON describes it.
struct JsonInput {
  std::string name;
  DataType type = DataType::kInvalid;
  Shape shape;
  int64_t count = 0;
  bool has_data = false;
  OwnedBytes data;                       // Converted "data" (has_data).
  std::optional<uint64_t> binary_size;   // parameters.binary_data_size.
};
using JsonInputs = absl::InlinedVector<JsonInput, 4>;

// Parses the JSON part of an infer request: `json_size` bytes at `json`, of
// which `capacity` are readable (parsed in place when capacity leaves
// simdjson::SIMDJSON_PADDING after the JSON, else copied into a padded buffer).
// Fills request->id, parameters, outputs and input_parameters (one per input),
// and `inputs` in order; `binary_total` is the sum of the inputs'
// binary_data_size. `has_header_length`: the body has binary sections (an
// input with binary_data_size is refused without them).
//
// Errors (InvalidArgument, naming the field or tensor and the value): the
// malformed JSON, field kind, datatype, shape, count, range and duplicate-name
// errors of DecodeInferRequest (kserve_json_codec.h).
absl::Status ParseJsonRequest(const char* json, size_t json_size, size_t capacity, bool has_header_length,
                              InferRequest* request, JsonInputs* inputs, uint64_t* binary_total);

}  // namespace ortserve::frontend::rest_internal
