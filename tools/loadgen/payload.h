// SPDX-License-Identifier: Apache-2.0
// Request payloads for ortserve-loadgen: the input tensors of one inference
// request (read from a KServe v2 JSON request file, or generated at random from
// the model's metadata) and their encodings for each protocol.
//
// Thread-safety: plain values; build once before the run, then read-only.
// Errors: absl::Status naming the offending tensor, field or value.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data_type.h"

namespace ortserve::loadgen {

// One tensor as the model's metadata describes it: -1 for a variable dimension.
struct TensorMetadata {
  std::string name;
  std::string datatype;  // Protocol name, "FP32".
  std::vector<int64_t> shape;
};

struct InputTensor {
  std::string name;
  DataType datatype = DataType::kInvalid;
  std::vector<int64_t> shape;
  // Little-endian element bytes; BYTES tensors keep their elements in `strings`.
  std::string raw;
  std::vector<std::string> strings;
};

struct GenerateOptions {
  int64_t batch = 1;
  // Per-input shapes that replace the metadata's (variable dims included).
  std::map<std::string, std::vector<int64_t>> shape_overrides;
  int64_t int_min = 0;  // Range of generated integers, inclusive.
  int64_t int_max = 100;
  uint64_t seed = 1;
};

// Random inputs of the right datatype and shape. A leading -1 dimension is the
// batch dimension and becomes `batch` when `batched` (the model's
// max_batch_size > 0, i.e. its metadata has a leading -1); any other -1 must be
// given by shape_overrides.
absl::StatusOr<std::vector<InputTensor>> GenerateInputs(const std::vector<TensorMetadata>& inputs,
                                                        const GenerateOptions& options);

// Parses a KServe v2 JSON request body ({"inputs": [{"name", "shape",
// "datatype", "data"}]}; data flat or nested).
absl::StatusOr<std::vector<InputTensor>> ParseRequestJson(const std::string& json);

// Parses a model-metadata JSON document (GET /v2/models/{m}) and returns its inputs.
absl::StatusOr<std::vector<TensorMetadata>> ParseMetadataJson(const std::string& json);

// The JSON request body: every tensor as JSON `data`.
std::string EncodeJsonBody(const std::vector<InputTensor>& inputs);

// The binary-extension body (JSON header + tensor bytes) and its header length;
// the response is asked for as binary data too.
struct BinaryBody {
  std::string body;
  size_t header_length = 0;
};
BinaryBody EncodeBinaryBody(const std::vector<InputTensor>& inputs);

// The bytes of a tensor as raw_input_contents / binary_data carry them (BYTES:
// 4-byte little-endian length + bytes, per element).
std::string RawContents(const InputTensor& tensor);

int64_t ElementCount(const std::vector<int64_t>& shape);

}  // namespace ortserve::loadgen
