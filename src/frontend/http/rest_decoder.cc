// SPDX-License-Identifier: Apache-2.0
// The request half of the REST codec (kserve_json_codec.h): JSON (plus binary
// sections) or a raw body to InferRequest.
#include "frontend/http/kserve_json_codec.h"

#include <limits>
#include <memory>
#include <utility>

#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/json_tensor_data.h"

namespace ortserve::frontend {
namespace {

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}

}  // namespace

// ---------------------------------------------------------------------------
// Requests.

absl::StatusOr<InferRequest> DecodeInferRequest(const char* data, size_t size, size_t capacity,
                                                std::optional<size_t> header_length,
                                                std::shared_ptr<const void> payload,
                                                absl::Time now) {
  size_t json_size = size;
  if (header_length) {
    if (*header_length == 0) {
      return Invalid("Inference-Header-Content-Length 0 marks a raw binary body, which this "
                     "decoder does not read");
    }
    if (*header_length > size) {
      return Invalid("Inference-Header-Content-Length ", *header_length,
                     " is larger than the request body (", size, " bytes)");
    }
    json_size = *header_length;
  }

  InferRequest request;
  request.arrival = now;
  rest_internal::JsonInputs inputs;
  uint64_t binary_total = 0;
  RETURN_IF_ERROR(rest_internal::ParseJsonRequest(data, json_size, capacity, header_length.has_value(), &request,
                                                  &inputs, &binary_total));
  RETURN_IF_ERROR(ReadRequestParameters(now, &request));

  const size_t binary_available = size - json_size;
  if (binary_total != binary_available) {
    return Invalid("inputs' binary_data_size values add up to ", binary_total,
                   " bytes, but the body has ", binary_available,
                   " bytes after the JSON header");
  }

  request.inputs.reserve(inputs.size());
  const auto* body = reinterpret_cast<const std::byte*>(data);
  size_t offset = json_size;
  for (rest_internal::JsonInput& input : inputs) {
    Tensor tensor;
    tensor.name = std::move(input.name);
    tensor.type = input.type;
    tensor.shape = std::move(input.shape);
    if (input.binary_size) {
      tensor.data = std::span<const std::byte>(body + offset, *input.binary_size);
      tensor.holder = payload;
      offset += *input.binary_size;
      absl::Status valid = ValidateTensorBytes(tensor);
      if (!valid.ok()) {
        return Invalid("input '", tensor.name, "' binary data: ", ToStd(valid.message()));
      }
    } else {
      tensor.data = input.data.data;
      tensor.holder = std::move(input.data.holder);
    }
    request.inputs.push_back(std::move(tensor));
  }
  request.payload = std::move(payload);
  return request;
}

absl::StatusOr<InferRequest> DecodeRawInferRequest(const char* data, size_t size,
                                                   const RawInputSpec& input,
                                                   std::shared_ptr<const void> payload,
                                                   absl::Time now) {
  if (input.type == DataType::kInvalid) {
    return Invalid("raw request body: input '", input.name, "' has an invalid datatype");
  }
  int variable = -1;
  int64_t known = 1;
  for (size_t i = 0; i < input.shape.size(); ++i) {
    const int64_t dim = input.shape[i];
    if (dim < 0) {
      if (variable >= 0) {
        return Invalid("raw request body: input '", input.name, "' has shape ",
                       ShapeToString(input.shape),
                       " with more than one variable dimension, so its shape cannot be "
                       "inferred; send a JSON header instead");
      }
      variable = static_cast<int>(i);
    } else {
      if (dim != 0 && known > std::numeric_limits<int64_t>::max() / dim) {
        return Invalid("raw request body: input '", input.name, "' shape is too large");
      }
      known *= dim;
    }
  }
  Tensor tensor;
  tensor.name = input.name;
  tensor.type = input.type;
  tensor.shape.assign(input.shape.begin(), input.shape.end());
  tensor.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size);
  tensor.holder = payload;
  if (variable >= 0) {
    int64_t elements;
    if (input.type == DataType::kBytes) {
      auto split = SplitBytesElements(tensor.data, -1, input.name);
      if (!split.ok()) return Invalid("raw request body: ", ToStd(split.status().message()));
      elements = static_cast<int64_t>(split->size());
    } else {
      const size_t element_size = DataTypeSize(input.type);
      if (size % element_size != 0) {
        return Invalid("raw request body: ", size, " bytes is not a whole number of ",
                       DataTypeName(input.type), " elements for input '", input.name, "'");
      }
      elements = static_cast<int64_t>(size / element_size);
    }
    if (known == 0 || elements % known != 0) {
      if (!(known == 0 && elements == 0)) {
        return Invalid("raw request body: ", elements, " ", DataTypeName(input.type),
                       " elements do not fit input '", input.name, "' of shape ",
                       ShapeToString(input.shape));
      }
      tensor.shape[variable] = 0;
    } else {
      tensor.shape[variable] = elements / known;
    }
  }
  absl::Status valid = ValidateTensorBytes(tensor);
  if (!valid.ok()) return Invalid("raw request body: ", ToStd(valid.message()));

  InferRequest request;
  request.arrival = now;
  request.binary_data_output = true;
  request.inputs.push_back(std::move(tensor));
  request.input_parameters.resize(1);
  request.payload = std::move(payload);
  return request;
}
}  // namespace ortserve::frontend
