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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
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
#include "core/parameters.h"
#include "rapidjson/allocators.h"
#include "rapidjson/writer.h"

namespace ortserve::frontend {

// ---------------------------------------------------------------------------
// JSON writing helpers, shared with the HTTP server's other endpoints.

// A RapidJSON output stream that appends to a std::string, so a document is
// written straight into the string that goes on the wire (no final copy).
// Not thread-safe; one per document.
class JsonStringStream {
 public:
  using Ch = char;
  explicit JsonStringStream(std::string* out) : out_(out) {}
  void Put(char c) { out_->push_back(c); }
  void Flush() {}
  std::string* str() { return out_; }

 private:
  std::string* out_;
};
// RapidJSON's writer calls these unqualified; these overloads (found by ADL)
// replace its generic one-character-at-a-time versions.
inline void PutReserve(JsonStringStream& stream, size_t count) {
  std::string* s = stream.str();
  if (s->capacity() - s->size() < count) s->reserve(std::max(s->size() + count, s->capacity() * 2));
}
inline void PutUnsafe(JsonStringStream& stream, char c) { stream.str()->push_back(c); }

namespace internal {
// The writer's stack of open objects and arrays lives in this buffer (room
// for about 60 levels; deeper nesting takes heap memory), so writing a
// document allocates nothing but the output string.
struct JsonWriterStack {
  alignas(std::max_align_t) char buffer[1024];
  rapidjson::MemoryPoolAllocator<> allocator{buffer, sizeof(buffer)};
};
}  // namespace internal

// RapidJSON's writer over a JsonStringStream, with access to the string so that
// large values (tensor data) can be appended directly. Not thread-safe.
class JsonWriter : private internal::JsonWriterStack,
                   public rapidjson::Writer<JsonStringStream, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                            rapidjson::MemoryPoolAllocator<>> {
 public:
  // The stack base is constructed first, so its allocator exists when the writer takes it.
  explicit JsonWriter(JsonStringStream& stream) : Writer(stream, &allocator) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  std::string* output() { return os_->str(); }
};

// Appends `s` as a JSON string literal (quotes included), escaping '"', '\\'
// and control characters and replacing every byte that is not part of valid
// UTF-8 with "\ufffd". The result is always valid JSON.
void AppendJsonString(std::string_view s, std::string* out);

// Writes `s` through `writer` as a key or a string value (whichever the writer
// expects next) with AppendJsonString's rules. Use it instead of
// JsonWriter::String/Key for anything that came from a client or a model.
void WriteJsonString(JsonWriter& writer, std::string_view s);

// Writes a protocol parameters map as a JSON object.
void WriteParameters(JsonWriter& writer, const Parameters& parameters);

// {"error":"<message>"}, escaped as AppendJsonString does.
std::string EncodeError(std::string_view message);

// Reserved request parameters, checked the same way for every protocol.
// UnsignedParameter: a non-negative integer no larger than `max` (nullopt when
// absent); BoolParameter: a boolean (false when absent). InvalidArgument,
// naming `where` and `key`, for any other value.
absl::StatusOr<std::optional<uint64_t>> UnsignedParameter(const Parameters& parameters, std::string_view key,
                                                          std::string_view where, uint64_t max);
absl::StatusOr<bool> BoolParameter(const Parameters& parameters, std::string_view key, std::string_view where);

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

struct EncodeOptions {
  // Class labels for the classification extension: the labels of output
  // `output_name` indexed by class, or an empty span when it has none. Unset:
  // no labels.
  std::function<std::span<const std::string>(std::string_view output_name)> labels;
};

// Encodes an infer response. `request` says which outputs to write and how:
// with request.outputs empty every response output is written, in response
// order, as binary when request.binary_data_output is set; otherwise exactly
// the requested outputs, in request order, each binary when its binary_data
// (or binary_data_output) is set. JSON:
//   {"model_name","model_version","id" (only when non-empty),
//    "parameters" (only when non-empty),
//    "outputs":[{"name","datatype","shape",
//                "parameters":{"binary_data_size":N}   (binary outputs)
//                | "data":[flat, row-major]}]}           (JSON outputs)
// Binary spans point into the response's tensors (no copy): keep `response`
// alive until they are written.
//
// Classification (classification = k > 0): the output becomes BYTES holding the
// top k classes as "value:index" or "value:index:label" strings, highest value
// first, ties by lower index. For a tensor of rank >= 2 the first dimension is
// the batch and each row is ranked separately (shape [batch, k']); otherwise the
// whole tensor is ranked (shape [k']); k' = min(k, classes).
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
