// SPDX-License-Identifier: Apache-2.0
// The request half of the REST codec (kserve_json_codec.h): JSON (plus binary
// sections) or a raw body to InferRequest.
#include "frontend/http/kserve_json_codec.h"

#include <limits>
#include <memory>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/json_tensor_data.h"
#include "simdjson.h"

namespace ortserve::frontend {
namespace {

namespace dom = simdjson::dom;
using rest_internal::FillFromJson;
using rest_internal::JsonKindName;
using rest_internal::OwnedBytes;

// A thread's parser is dropped after a request that grew it past this, so one
// huge body does not pin its memory to an I/O thread forever.
constexpr size_t kParserKeepCapacity = size_t{16} << 20;

dom::parser& ThreadParser(std::unique_ptr<dom::parser>*& slot) {
  thread_local std::unique_ptr<dom::parser> parser;
  if (!parser) parser = std::make_unique<dom::parser>();
  slot = &parser;
  return *parser;
}

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}

// ---------------------------------------------------------------------------
// Parameters.

absl::Status ParseParameters(dom::element value, std::string_view where, Parameters* out) {
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid(where, " parameters must be an object, got ", JsonKindName(value.type()));
  }
  for (dom::key_value_pair field : object) {
    std::string key(field.key);
    switch (field.value.type()) {
      case dom::element_type::BOOL:
        out->Set(std::move(key), field.value.get_bool().value_unsafe());
        break;
      case dom::element_type::INT64:
        out->Set(std::move(key), field.value.get_int64().value_unsafe());
        break;
      case dom::element_type::UINT64:
        out->Set(std::move(key), field.value.get_uint64().value_unsafe());
        break;
      case dom::element_type::DOUBLE:
        out->Set(std::move(key), field.value.get_double().value_unsafe());
        break;
      case dom::element_type::STRING:
        out->Set(std::move(key), std::string(field.value.get_string().value_unsafe()));
        break;
      default:
        return Invalid(where, " parameter '", field.key, "' is ", JsonKindName(field.value.type()),
                       "; parameters must be booleans, numbers or strings");
    }
  }
  return absl::OkStatus();
}

// One "inputs" entry, as read from the JSON before its data is converted.
struct InputEntry {
  std::string_view name;
  DataType type = DataType::kInvalid;
  Shape shape;
  int64_t count = 0;
  bool has_data = false;
  dom::element data;
  std::optional<uint64_t> binary_size;
};

absl::Status ParseShape(dom::element value, std::string_view name, Shape* shape) {
  dom::array dims;
  if (value.get_array().get(dims) != simdjson::SUCCESS) {
    return Invalid("input '", name, "': shape must be an array of integers, got ",
                   JsonKindName(value.type()));
  }
  for (dom::element dim : dims) {
    if (dim.type() == dom::element_type::INT64) {
      const int64_t d = dim.get_int64().value_unsafe();
      if (d < 0) {
        return Invalid("input '", name, "': shape has a negative dimension ", d);
      }
      shape->push_back(d);
    } else if (dim.type() == dom::element_type::UINT64) {
      return Invalid("input '", name, "': shape dimension ", dim.get_uint64().value_unsafe(),
                     " is too large");
    } else {
      return Invalid("input '", name, "': shape must be an array of integers, found ",
                     JsonKindName(dim.type()));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseInput(dom::element value, size_t index, InputEntry* entry,
                        Parameters* parameters) {
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid("inputs[", index, "] must be an object, got ", JsonKindName(value.type()));
  }
  bool has_name = false, has_shape = false, has_type = false;
  dom::element shape_value, type_value, parameters_value;
  bool has_parameters = false;
  for (dom::key_value_pair field : object) {
    if (field.key == "name") {
      if (field.value.get_string().get(entry->name) != simdjson::SUCCESS) {
        return Invalid("inputs[", index, "].name must be a string, got ",
                       JsonKindName(field.value.type()));
      }
      has_name = true;
    } else if (field.key == "shape") {
      shape_value = field.value;
      has_shape = true;
    } else if (field.key == "datatype") {
      type_value = field.value;
      has_type = true;
    } else if (field.key == "data") {
      entry->data = field.value;
      entry->has_data = true;
    } else if (field.key == "parameters") {
      parameters_value = field.value;
      has_parameters = true;
    }
  }
  if (!has_name) return Invalid("inputs[", index, "] has no \"name\"");
  const std::string_view name = entry->name;
  if (!has_shape) return Invalid("input '", name, "' has no \"shape\"");
  if (!has_type) return Invalid("input '", name, "' has no \"datatype\"");
  std::string_view type_name;
  if (type_value.get_string().get(type_name) != simdjson::SUCCESS) {
    return Invalid("input '", name, "': datatype must be a string, got ",
                   JsonKindName(type_value.type()));
  }
  std::optional<DataType> type = DataTypeFromName(type_name);
  if (!type) return Invalid("input '", name, "' has unknown datatype '", type_name, "'");
  entry->type = *type;
  RETURN_IF_ERROR(ParseShape(shape_value, name, &entry->shape));
  auto count = ElementCount(entry->shape);
  if (!count.ok()) return Invalid("input '", name, "': ", ToStd(count.status().message()));
  entry->count = *count;
  if (has_parameters) {
    const std::string where = StrCat("input '", name, "'");
    RETURN_IF_ERROR(ParseParameters(parameters_value, where, parameters));
    ASSIGN_OR_RETURN(entry->binary_size, UnsignedParameter(*parameters, "binary_data_size", where,
                                                           std::numeric_limits<uint64_t>::max()));
  }
  if (entry->binary_size && entry->has_data) {
    return Invalid("input '", name, "' has both \"data\" and parameters.binary_data_size");
  }
  if (!entry->binary_size && !entry->has_data) {
    return Invalid("input '", name, "' has no \"data\" and no parameters.binary_data_size");
  }
  return absl::OkStatus();
}

absl::Status ParseOutputs(dom::element value, InferRequest* request) {
  dom::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) {
    return Invalid("\"outputs\" must be an array, got ", JsonKindName(value.type()));
  }
  size_t index = 0;
  for (dom::element item : array) {
    dom::object object;
    if (item.get_object().get(object) != simdjson::SUCCESS) {
      return Invalid("outputs[", index, "] must be an object, got ", JsonKindName(item.type()));
    }
    RequestedOutput output;
    bool has_name = false;
    for (dom::key_value_pair field : object) {
      if (field.key == "name") {
        std::string_view name;
        if (field.value.get_string().get(name) != simdjson::SUCCESS) {
          return Invalid("outputs[", index, "].name must be a string, got ",
                         JsonKindName(field.value.type()));
        }
        output.name = std::string(name);
        has_name = true;
      } else if (field.key == "parameters") {
        RETURN_IF_ERROR(ParseParameters(field.value, StrCat("outputs[", index, "]"),
                                        &output.parameters));
      }
    }
    if (!has_name) return Invalid("outputs[", index, "] has no \"name\"");
    for (const auto& previous : request->outputs) {
      if (previous.name == output.name) {
        return Invalid("output '", output.name, "' is requested more than once");
      }
    }
    RETURN_IF_ERROR(ReadOutputParameters(&output));
    request->outputs.push_back(std::move(output));
    ++index;
  }
  return absl::OkStatus();
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

  std::unique_ptr<dom::parser>* parser_slot = nullptr;
  dom::parser& parser = ThreadParser(parser_slot);
  // Parse in place when the caller's buffer has simdjson's padding after the
  // JSON; otherwise simdjson copies it into a padded buffer.
  const bool padded = capacity >= json_size + simdjson::SIMDJSON_PADDING;
  dom::element root;
  simdjson::error_code error = parser.parse(data, json_size, !padded).get(root);
  struct ReleaseBigParser {
    dom::parser& parser;
    std::unique_ptr<dom::parser>* slot;
    ~ReleaseBigParser() {
      if (parser.capacity() > kParserKeepCapacity) slot->reset();
    }
  } release{parser, parser_slot};
  if (error != simdjson::SUCCESS) {
    return Invalid("request body is not valid JSON: ", simdjson::error_message(error));
  }
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid("request body must be a JSON object, got ", JsonKindName(root.type()));
  }

  InferRequest request;
  request.arrival = now;
  bool has_inputs = false;
  dom::element inputs_value;
  for (dom::key_value_pair field : object) {
    if (field.key == "inputs") {
      inputs_value = field.value;
      has_inputs = true;
    } else if (field.key == "id") {
      std::string_view id;
      if (field.value.get_string().get(id) != simdjson::SUCCESS) {
        return Invalid("\"id\" must be a string, got ", JsonKindName(field.value.type()));
      }
      request.id = std::string(id);
    } else if (field.key == "parameters") {
      RETURN_IF_ERROR(ParseParameters(field.value, "request", &request.parameters));
    } else if (field.key == "outputs") {
      RETURN_IF_ERROR(ParseOutputs(field.value, &request));
    }
  }
  if (!has_inputs) return Invalid("request has no \"inputs\"");

  RETURN_IF_ERROR(ReadRequestParameters(now, &request));

  dom::array inputs;
  if (inputs_value.get_array().get(inputs) != simdjson::SUCCESS) {
    return Invalid("\"inputs\" must be an array, got ", JsonKindName(inputs_value.type()));
  }
  const size_t input_count = inputs.size();
  absl::InlinedVector<InputEntry, 4> entries(input_count);
  request.input_parameters.resize(input_count);
  size_t index = 0;
  uint64_t binary_total = 0;
  for (dom::element value : inputs) {
    InputEntry& entry = entries[index];
    RETURN_IF_ERROR(ParseInput(value, index, &entry, &request.input_parameters[index]));
    for (size_t j = 0; j < index; ++j) {
      if (entries[j].name == entry.name) {
        return Invalid("input '", entry.name, "' appears more than once");
      }
    }
    if (entry.binary_size) {
      if (!header_length) {
        return Invalid("input '", entry.name,
                       "' has parameters.binary_data_size but the request has no "
                       "Inference-Header-Content-Length header");
      }
      binary_total += *entry.binary_size;
      if (binary_total < *entry.binary_size) {
        return Invalid("input '", entry.name, "': binary_data_size values overflow");
      }
    }
    ++index;
  }
  const size_t binary_available = size - json_size;
  if (binary_total != binary_available) {
    return Invalid("inputs' binary_data_size values add up to ", binary_total,
                   " bytes, but the body has ", binary_available,
                   " bytes after the JSON header");
  }

  request.inputs.reserve(input_count);
  const auto* body = reinterpret_cast<const std::byte*>(data);
  size_t offset = json_size;
  for (InputEntry& entry : entries) {
    Tensor tensor;
    tensor.name = std::string(entry.name);
    tensor.type = entry.type;
    if (entry.binary_size) {
      tensor.data = std::span<const std::byte>(body + offset, *entry.binary_size);
      tensor.holder = payload;
      offset += *entry.binary_size;
      tensor.shape = std::move(entry.shape);
      absl::Status valid = ValidateTensorBytes(tensor);
      if (!valid.ok()) {
        return Invalid("input '", entry.name, "' binary data: ", ToStd(valid.message()));
      }
    } else {
      ASSIGN_OR_RETURN(OwnedBytes owned, FillFromJson(entry.name, entry.type, entry.shape,
                                                      entry.count, entry.data, json_size));
      tensor.data = owned.data;
      tensor.holder = std::move(owned.holder);
      tensor.shape = std::move(entry.shape);
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
