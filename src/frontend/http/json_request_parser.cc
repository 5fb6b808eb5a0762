// SPDX-License-Identifier: Apache-2.0
// The JSON part of an infer request (json_tensor_data.h): its fields, read
// with simdjson's on-demand API; each input's "data" is converted by
// json_tensor_data.cc (or, for a large body's numeric runs, by
// json_tensor_runs.cc).
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/json_tensor_data.h"
#include "frontend/http/json_tensor_data_internal.h"
#include "frontend/kserve/reserved_parameters.h"

namespace ortserve::frontend::rest_internal {

namespace {

// A thread's parser is dropped after a request that grew it past this, so one
// huge body does not pin its memory to an I/O thread forever.
constexpr size_t kParserKeepCapacity = size_t{16} << 20;


ondemand::parser& ThreadParser(std::unique_ptr<ondemand::parser>*& slot) {
  thread_local std::unique_ptr<ondemand::parser> parser;
  if (!parser) parser = std::make_unique<ondemand::parser>();
  slot = &parser;
  return *parser;
}


// The field's key, unescaped (valid until the document is rewound).
absl::StatusOr<std::string_view> Key(ondemand::field& field) {
  std::string_view key;
  if (auto error = field.unescaped_key().get(key)) return NotJson(error);
  return key;
}

// ---------------------------------------------------------------------------
// Parameters.

absl::Status ParseParameters(ondemand::value value, std::string_view where, Parameters* out) {
  ASSIGN_OR_RETURN(std::string_view kind, JsonKindName(value));
  ondemand::object object;
  if (auto error = value.get_object().get(object)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    return Invalid(where, " parameters must be an object, got ", kind);
  }
  for (auto result : object) {
    ondemand::field field;
    if (auto error = std::move(result).get(field)) return NotJson(error);
    ASSIGN_OR_RETURN(std::string_view key_view, Key(field));
    std::string key(key_view);
    ondemand::value item = field.value();
    ondemand::json_type type;
    if (auto error = item.type().get(type)) return NotJson(error);
    switch (type) {
      case ondemand::json_type::boolean: {
        bool b;
        if (auto error = item.get_bool().get(b)) return NotJson(error);
        out->Set(std::move(key), b);
        break;
      }
      case ondemand::json_type::number: {
        ondemand::number number;
        if (auto error = item.get_number().get(number)) return NotJson(error);
        switch (number.get_number_type()) {
          case ondemand::number_type::signed_integer: out->Set(std::move(key), number.get_int64()); break;
          case ondemand::number_type::unsigned_integer: out->Set(std::move(key), number.get_uint64()); break;
          case ondemand::number_type::floating_point_number: out->Set(std::move(key), number.get_double()); break;
        }
        break;
      }
      case ondemand::json_type::string: {
        std::string_view s;
        if (auto error = item.get_string().get(s)) return NotJson(error);
        out->Set(std::move(key), std::string(s));
        break;
      }
      default: {
        ASSIGN_OR_RETURN(std::string_view item_kind, JsonKindName(item));
        RETURN_IF_ERROR(SkipValue(item, kTensorDepth + 1));
        return Invalid(where, " parameter '", key, "' is ", item_kind,
                       "; parameters must be booleans, numbers or strings");
      }
    }
  }
  return absl::OkStatus();
}


absl::Status ParseShape(ondemand::value value, std::string_view name, Shape* shape) {
  ASSIGN_OR_RETURN(std::string_view kind, JsonKindName(value));
  ondemand::array dims;
  if (auto error = value.get_array().get(dims)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    return Invalid("input '", name, "': shape must be an array of integers, got ", kind);
  }
  shape->clear();
  for (auto result : dims) {
    ondemand::value dim;
    if (auto error = result.get(dim)) return NotJson(error);
    int64_t d;
    if (dim.get_int64().get(d) == simdjson::SUCCESS) {
      if (d < 0) return Invalid("input '", name, "': shape has a negative dimension ", d);
      shape->push_back(d);
      continue;
    }
    ASSIGN_OR_RETURN(std::string_view dim_kind, JsonKindName(dim));
    ondemand::number number;
    if (dim.get_number().get(number) == simdjson::SUCCESS &&
        number.get_number_type() == ondemand::number_type::unsigned_integer) {
      return Invalid("input '", name, "': shape dimension ", number.get_uint64(), " is too large");
    }
    RETURN_IF_ERROR(SkipValue(dim, kTensorDepth + 1));
    return Invalid("input '", name, "': shape must be an array of integers, found ", dim_kind);
  }
  return absl::OkStatus();
}

// Reads inputs[index], converting its JSON data (if any) into entry->data.
absl::Status ParseInput(ondemand::value value, size_t index, const Context& context, JsonInput* entry,
                        Parameters* parameters) {
  ASSIGN_OR_RETURN(std::string_view kind, JsonKindName(value));
  ondemand::object object;
  if (auto error = value.get_object().get(object)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    RETURN_IF_ERROR(SkipValue(value, kInputDepth));
    return Invalid("inputs[", index, "] must be an object, got ", kind);
  }
  // Messages name the input: find its name first (usually the first field).
  bool has_name = false;
  {
    ondemand::value name_value;
    const simdjson::error_code error = object.find_field_unordered("name").get(name_value);
    if (error == simdjson::SUCCESS) {
      ASSIGN_OR_RETURN(std::string_view name_kind, JsonKindName(name_value));
      std::string_view name;
      if (auto error = name_value.get_string().get(name)) {
        if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
        return Invalid("inputs[", index, "].name must be a string, got ", name_kind);
      }
      entry->name = std::string(name);
      has_name = true;
    } else if (error != simdjson::NO_SUCH_FIELD) {
      return NotJson(error);
    }
    if (auto reset = object.reset().error()) return NotJson(reset);
    if (!has_name) {
      // The quick lookup compares keys as written; look again at the keys
      // unescaped ("na\u006de" is "name" too).
      for (auto result : object) {
        ondemand::field field;
        if (auto error = std::move(result).get(field)) return NotJson(error);
        ASSIGN_OR_RETURN(std::string_view key, Key(field));
        if (key != "name") continue;
        std::string_view name;
        if (field.value().get_string().get(name) == simdjson::SUCCESS) {
          entry->name = std::string(name);
          has_name = true;
        }
      }
      if (auto reset = object.reset().error()) return NotJson(reset);
    }
  }
  bool has_shape = false, has_type = false, has_parameters = false;
  int data_fields = 0;    // "data" keys seen (the last one counts, as for any key).
  int converted_at = 0;   // Which of them entry->data holds (0: none).
  for (auto result : object) {
    ondemand::field field;
    if (auto error = std::move(result).get(field)) return NotJson(error);
    ASSIGN_OR_RETURN(std::string_view key, Key(field));
    ondemand::value item = field.value();
    if (key == "name") {
      ASSIGN_OR_RETURN(std::string_view name_kind, JsonKindName(item));
      std::string_view name;
      if (auto error = item.get_string().get(name)) {
        if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
        return Invalid("inputs[", index, "].name must be a string, got ", name_kind);
      }
      if (!has_name || entry->name != name) entry->name = std::string(name);
      has_name = true;
    } else if (!has_name) {
      // Without a name no message can say which input is wrong; say that.
      RETURN_IF_ERROR(SkipValue(item, kTensorDepth));
    } else if (key == "shape") {
      RETURN_IF_ERROR(ParseShape(item, entry->name, &entry->shape));
      auto count = ElementCount(entry->shape);
      if (!count.ok()) return Invalid("input '", entry->name, "': ", ToStd(count.status().message()));
      entry->count = *count;
      has_shape = true;
    } else if (key == "datatype") {
      ASSIGN_OR_RETURN(std::string_view type_kind, JsonKindName(item));
      std::string_view type_name;
      if (auto error = item.get_string().get(type_name)) {
        if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
        return Invalid("input '", entry->name, "': datatype must be a string, got ", type_kind);
      }
      std::optional<DataType> type = DataTypeFromName(type_name);
      if (!type) return Invalid("input '", entry->name, "' has unknown datatype '", type_name, "'");
      entry->type = *type;
      has_type = true;
    } else if (key == "data") {
      entry->has_data = true;
      ++data_fields;
      if (has_shape && has_type) {
        ASSIGN_OR_RETURN(entry->data, FillFromJson(entry->name, entry->type, entry->shape, entry->count, item,
                                                   context, kTensorDepth));
        converted_at = data_fields;
      }
    } else if (key == "parameters") {
      RETURN_IF_ERROR(ParseParameters(item, StrCat("input '", entry->name, "'"), parameters));
      has_parameters = true;
    } else {
      RETURN_IF_ERROR(SkipValue(item, kTensorDepth));
    }
  }
  if (!has_name) return Invalid("inputs[", index, "] has no \"name\"");
  const std::string_view name = entry->name;
  if (!has_shape) return Invalid("input '", name, "' has no \"shape\"");
  if (!has_type) return Invalid("input '", name, "' has no \"datatype\"");
  if (has_parameters) {
    ASSIGN_OR_RETURN(entry->binary_size, UnsignedParameter(*parameters, "binary_data_size", StrCat("input '", name, "'"),
                                                           std::numeric_limits<uint64_t>::max()));
  }
  if (entry->binary_size && entry->has_data) {
    return Invalid("input '", name, "' has both \"data\" and parameters.binary_data_size");
  }
  // Issue 21: an input in shared memory has neither (the front end resolves it).
  if (!entry->binary_size && !entry->has_data && !NamesSharedMemory(*parameters)) {
    return Invalid("input '", name, "' has no \"data\" and no parameters.binary_data_size");
  }
  if (entry->has_data && converted_at != data_fields) {
    // "data" came before "shape" or "datatype": read the entry again for it.
    if (auto error = object.reset().error()) return NotJson(error);
    int seen = 0;
    for (auto result : object) {
      ondemand::field field;
      if (auto error = std::move(result).get(field)) return NotJson(error);
      ASSIGN_OR_RETURN(std::string_view key, Key(field));
      if (key != "data" || ++seen != data_fields) continue;
      ASSIGN_OR_RETURN(entry->data, FillFromJson(name, entry->type, entry->shape, entry->count, field.value(),
                                                 context, kTensorDepth));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseOutputs(ondemand::value value, InferRequest* request) {
  ASSIGN_OR_RETURN(std::string_view kind, JsonKindName(value));
  ondemand::array array;
  if (auto error = value.get_array().get(array)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    RETURN_IF_ERROR(SkipValue(value, kFieldDepth));
    return Invalid("\"outputs\" must be an array, got ", kind);
  }
  size_t index = 0;
  for (auto result : array) {
    ondemand::value item;
    if (auto error = result.get(item)) return NotJson(error);
    ASSIGN_OR_RETURN(std::string_view item_kind, JsonKindName(item));
    ondemand::object object;
    if (auto error = item.get_object().get(object)) {
      if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
      RETURN_IF_ERROR(SkipValue(item, kInputDepth));
      return Invalid("outputs[", index, "] must be an object, got ", item_kind);
    }
    RequestedOutput output;
    bool has_name = false;
    for (auto field_result : object) {
      ondemand::field field;
      if (auto error = std::move(field_result).get(field)) return NotJson(error);
      ASSIGN_OR_RETURN(std::string_view key, Key(field));
      ondemand::value field_value = field.value();
      if (key == "name") {
        ASSIGN_OR_RETURN(std::string_view name_kind, JsonKindName(field_value));
        std::string_view name;
        if (auto error = field_value.get_string().get(name)) {
          if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
          return Invalid("outputs[", index, "].name must be a string, got ", name_kind);
        }
        output.name = std::string(name);
        has_name = true;
      } else if (key == "parameters") {
        RETURN_IF_ERROR(ParseParameters(field_value, StrCat("outputs[", index, "]"), &output.parameters));
      } else {
        RETURN_IF_ERROR(SkipValue(field_value, kTensorDepth));
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

// Reads "inputs" (each entry's JSON data converted on the way) into `entries`.
absl::Status ParseInputs(ondemand::value value, const Context& context, bool has_header_length,
                         JsonInputs* entries, InferRequest* request,
                         uint64_t* binary_total) {
  ASSIGN_OR_RETURN(std::string_view kind, JsonKindName(value));
  ondemand::array inputs;
  if (auto error = value.get_array().get(inputs)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    RETURN_IF_ERROR(SkipValue(value, kFieldDepth));
    return Invalid("\"inputs\" must be an array, got ", kind);
  }
  // A repeated "inputs" key: the last one counts.
  entries->clear();
  request->input_parameters.clear();
  *binary_total = 0;
  size_t index = 0;
  for (auto result : inputs) {
    ondemand::value item;
    if (auto error = result.get(item)) return NotJson(error);
    JsonInput& entry = entries->emplace_back();
    Parameters& parameters = request->input_parameters.emplace_back();
    RETURN_IF_ERROR(ParseInput(item, index, context, &entry, &parameters));
    for (size_t j = 0; j < index; ++j) {
      if ((*entries)[j].name == entry.name) {
        return Invalid("input '", entry.name, "' appears more than once");
      }
    }
    if (entry.binary_size) {
      if (!has_header_length) {
        return Invalid("input '", entry.name,
                       "' has parameters.binary_data_size but the request has no "
                       "Inference-Header-Content-Length header");
      }
      const std::optional<uint64_t> total = CheckedAdd(*binary_total, *entry.binary_size);
      if (!total) return Invalid("input '", entry.name, "': binary_data_size values overflow");
      *binary_total = *total;
    }
    ++index;
  }
  return absl::OkStatus();
}


}  // namespace

absl::Status ParseJsonRequest(const char* json, size_t json_size, size_t capacity, bool has_header_length,
                              InferRequest* request, JsonInputs* inputs, uint64_t* binary_total) {
  std::unique_ptr<ondemand::parser>* parser_slot = nullptr;
  ondemand::parser& parser = ThreadParser(parser_slot);
  struct ReleaseBigParser {
    ondemand::parser& parser;
    std::unique_ptr<ondemand::parser>* slot;
    ~ReleaseBigParser() {
      if (parser.capacity() > kParserKeepCapacity) slot->reset();
    }
  } release{parser, parser_slot};
  // Parse in place when the caller's buffer has simdjson's padding after the
  // JSON (the HTTP layer reserves it); otherwise copy into a padded buffer.
  // Only the structural index is built up front (4 bytes per token); numbers
  // are parsed once, straight into the tensors, as the document is walked.
  simdjson::padded_string copy;
  const char* text = json;
  size_t text_size = json_size;
  size_t json_capacity = capacity;
  if (capacity < json_size + simdjson::SIMDJSON_PADDING) {
    copy = simdjson::padded_string(json, json_size);
    text = copy.data();
    json_capacity = json_size + simdjson::SIMDJSON_PADDING;
  }
  Context context;
  context.json_size = json_size;
  context.buffer_end = text + json_capacity;
  // A large body: its numeric runs are parsed from the body, the rest (the
  // envelope) by simdjson.
  std::vector<Run> runs;
  std::string envelope;
  runs = FindLargeBodyRuns(text, json_size);
  if (!runs.empty()) {
    size_t run_bytes = 0;
    for (const Run& run : runs) run_bytes += static_cast<size_t>(run.end - run.begin);
    envelope.reserve(json_size - run_bytes + 2 * runs.size() + simdjson::SIMDJSON_PADDING);
    const char* at = text;
    for (Run& run : runs) {
      envelope.append(at, run.begin);
      run.envelope_offset = envelope.size();
      envelope.append("[]");
      at = run.end;
    }
    envelope.append(at, text + json_size);
    text_size = envelope.size();
    envelope.append(simdjson::SIMDJSON_PADDING, ' ');
    json_capacity = envelope.size();
    text = envelope.data();
    context.runs = &runs;
  }
  context.envelope = text;
  ondemand::document document;
  if (auto error = parser.iterate(text, text_size, json_capacity).get(document)) return NotJson(error);
  ASSIGN_OR_RETURN(std::string_view root_kind, JsonKindName(document));
  ondemand::object object;
  if (auto error = document.get_object().get(object)) {
    if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
    return Invalid("request body must be a JSON object, got ", root_kind);
  }

  bool has_inputs = false;
  for (auto result : object) {
    ondemand::field field;
    if (auto error = std::move(result).get(field)) return NotJson(error);
    ASSIGN_OR_RETURN(std::string_view key, Key(field));
    ondemand::value value = field.value();
    if (key == "inputs") {
      RETURN_IF_ERROR(ParseInputs(value, context, has_header_length, inputs, request, binary_total));
      has_inputs = true;
    } else if (key == "id") {
      ASSIGN_OR_RETURN(std::string_view id_kind, JsonKindName(value));
      std::string_view id;
      if (auto error = value.get_string().get(id)) {
        if (error != simdjson::INCORRECT_TYPE) return NotJson(error);
        return Invalid("\"id\" must be a string, got ", id_kind);
      }
      request->id = std::string(id);
    } else if (key == "parameters") {
      RETURN_IF_ERROR(ParseParameters(value, "request", &request->parameters));
    } else if (key == "outputs") {
      RETURN_IF_ERROR(ParseOutputs(value, request));
    } else {
      RETURN_IF_ERROR(SkipValue(value, kFieldDepth));
    }
  }
  // Only whitespace may follow the object (the iterator reports no location
  // once it is past the last token).
  const char* trailing = nullptr;
  if (document.current_location().get(trailing) == simdjson::SUCCESS) return NotJson(simdjson::TRAILING_CONTENT);
  RETURN_IF_ERROR(CheckUnreadRuns(context));
  if (!has_inputs) return Invalid("request has no \"inputs\"");
  return absl::OkStatus();
}

}  // namespace ortserve::frontend::rest_internal
