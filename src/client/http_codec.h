// SPDX-License-Identifier: Apache-2.0
// The client side of the KServe v2 REST codec: InferRequest to a request body
// (JSON, or JSON plus Triton's binary tensor extension) and response bodies to
// InferResponse and the metadata types. The mirror of the server's
// frontend/http/kserve_json_codec.h, written on core alone (core/json_writer.h
// writes, RapidJSON's reader reads): the client links no server code. Pure
// functions: no sockets, no client state.
//
// Thread-safety: every function is thread-safe.
//
// Wire rules:
//  - Binary mode: every input travels as a binary section (its bytes as they
//    are; BYTES in core/tensor.h's layout, which is the extension's) and every
//    output is asked for binary (per output, or "binary_data_output" when the
//    request names none).
//  - JSON mode: inputs as flat `data` arrays; FP16/BF16 inputs and BYTES inputs
//    that are not valid UTF-8 still go binary (JSON cannot carry them exactly).
//    Floats are written in their shortest round-trip form ("3.0" for an
//    integral value), NaN and infinities as "NaN"/"Infinity"/"-Infinity".
//  - Response `data` may be nested; it is flattened row-major. FP32 values are
//    parsed as doubles (full precision) and rounded to float; FP16/BF16 values
//    are rounded to nearest-even.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "core/infer_request.h"

namespace ortserve::client {

struct HttpInferBody {
  std::string body;
  // The Inference-Header-Content-Length header: the size of the JSON part when
  // binary sections follow it; nullopt for a JSON-only body.
  std::optional<size_t> header_length;
};

// Encodes `request` as the body of POST .../infer. Errors: InvalidArgument
// naming the tensor when an input's bytes do not match its type and shape.
absl::StatusOr<HttpInferBody> EncodeHttpInferRequest(const InferRequest& request, bool binary);

// Decodes an infer response body; `header_length` is the response's
// Inference-Header-Content-Length (nullopt when absent). Binary outputs view
// `body` (their holder shares it); JSON outputs own their bytes. Errors:
// Internal naming the field or output when the body is malformed (bad JSON,
// unknown datatype, sizes that do not match the shape, binary sections that do
// not add up to the body).
absl::StatusOr<InferResponse> DecodeHttpInferResponse(std::shared_ptr<const std::string> body,
                                                      std::optional<size_t> header_length);

// The error an HTTP response with a status other than 200 stands for: the code
// from StatusCodeForHttpStatus, the message from the body's "error" field (or
// the body itself, or the status line when empty).
absl::Status HttpErrorStatus(unsigned http_status, std::string_view body);

// GET /v2, GET /v2/models/{m}[/versions/{v}], POST /v2/repository/index.
// Errors: Internal naming the field when the body is malformed.
absl::StatusOr<ServerMetadata> DecodeHttpServerMetadata(std::string_view body);
absl::StatusOr<ModelMetadata> DecodeHttpModelMetadata(std::string_view body);
absl::StatusOr<std::vector<ModelIndexEntry>> DecodeHttpRepositoryIndex(std::string_view body);

// Builds a tensor from JSON `data` text (an array, flat or nested; its
// elements in row-major order) as the REST protocol writes it: numbers for
// numeric types (also "NaN", "Infinity", "-Infinity" for floating types, which
// FP16/BF16 values are rounded to), true/false (or 0/1) for BOOL, strings for
// BYTES. The tensor owns its bytes. Errors: InvalidArgument naming the tensor
// for malformed JSON, an element count that differs from the shape, or a value
// that is not valid for `type` (naming its index).
absl::StatusOr<Tensor> TensorFromJson(std::string name, DataType type, Shape shape, std::string_view json);

// Conversions to half precision and bfloat16, rounding to nearest-even.
uint16_t FloatToHalf(float value);
uint16_t FloatToBfloat16(float value);

}  // namespace ortserve::client
