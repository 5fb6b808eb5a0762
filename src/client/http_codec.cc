// SPDX-License-Identifier: Apache-2.0
#include "client/http_codec.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/status.h"
#include "core/strings.h"
#include "core/json_writer.h"
#include "core/utf8.h"
#include "rapidjson/document.h"

namespace ortserve::client {
namespace {

// ---------------------------------------------------------------------------
// Request encoding.

template <typename T>
T Load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Whether `tensor` must travel binary even in JSON mode.
absl::StatusOr<bool> NeedsBinary(const Tensor& tensor) {
  if (tensor.type == DataType::kFp16 || tensor.type == DataType::kBf16) return true;
  if (tensor.type != DataType::kBytes) return false;
  ASSIGN_OR_RETURN(auto elements, SplitBytesElements(tensor.data, -1, tensor.name));
  for (std::string_view element : elements) {
    if (!IsValidUtf8(element)) return true;
  }
  return false;
}

absl::Status WriteData(JsonWriter& writer, const Tensor& tensor) {
  writer.StartArray();
  const std::byte* p = tensor.data.data();
  const size_t size = DataTypeSize(tensor.type);
  const size_t count = size == 0 ? 0 : tensor.data.size() / size;
  switch (tensor.type) {
    case DataType::kBool:
      for (size_t i = 0; i < count; ++i) writer.Bool(p[i] != std::byte{0});
      break;
    case DataType::kUint8:
      for (size_t i = 0; i < count; ++i) writer.Uint(Load<uint8_t>(p + i));
      break;
    case DataType::kUint16:
      for (size_t i = 0; i < count; ++i) writer.Uint(Load<uint16_t>(p + 2 * i));
      break;
    case DataType::kUint32:
      for (size_t i = 0; i < count; ++i) writer.Uint(Load<uint32_t>(p + 4 * i));
      break;
    case DataType::kUint64:
      for (size_t i = 0; i < count; ++i) writer.Uint64(Load<uint64_t>(p + 8 * i));
      break;
    case DataType::kInt8:
      for (size_t i = 0; i < count; ++i) writer.Int(Load<int8_t>(p + i));
      break;
    case DataType::kInt16:
      for (size_t i = 0; i < count; ++i) writer.Int(Load<int16_t>(p + 2 * i));
      break;
    case DataType::kInt32:
      for (size_t i = 0; i < count; ++i) writer.Int(Load<int32_t>(p + 4 * i));
      break;
    case DataType::kInt64:
      for (size_t i = 0; i < count; ++i) writer.Int64(Load<int64_t>(p + 8 * i));
      break;
    case DataType::kFp32:
      for (size_t i = 0; i < count; ++i) WriteJsonFloat(writer, Load<float>(p + 4 * i));
      break;
    case DataType::kFp64:
      for (size_t i = 0; i < count; ++i) WriteJsonFloat(writer, Load<double>(p + 8 * i));
      break;
    case DataType::kBytes: {
      ASSIGN_OR_RETURN(auto elements, SplitBytesElements(tensor.data, -1, tensor.name));
      for (std::string_view element : elements) writer.String(element);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          StrCat("input '", tensor.name, "': datatype ", DataTypeName(tensor.type), " cannot be sent as JSON"));
  }
  writer.EndArray();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Response decoding.

using JsonValue = rapidjson::Value;

absl::Status Malformed(std::string_view what) {
  return absl::InternalError(StrCat("malformed response from the server: ", what));
}

std::string_view StringOf(const JsonValue& v) { return {v.GetString(), v.GetStringLength()}; }

const JsonValue* Member(const JsonValue& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

absl::StatusOr<std::string> StringMember(const JsonValue& object, const char* key, std::string_view where,
                                         bool required = true) {
  const JsonValue* v = Member(object, key);
  if (v == nullptr && !required) return std::string();
  if (v == nullptr || !v->IsString()) return Malformed(StrCat(where, ": \"", key, "\" is not a string"));
  return std::string(StringOf(*v));
}

absl::StatusOr<Shape> ShapeMember(const JsonValue& object, std::string_view where) {
  const JsonValue* v = Member(object, "shape");
  if (v == nullptr || !v->IsArray()) return Malformed(StrCat(where, ": \"shape\" is not an array"));
  Shape shape;
  for (const auto& dim : v->GetArray()) {
    if (!dim.IsInt64()) return Malformed(StrCat(where, ": \"shape\" holds a value that is not an integer"));
    shape.push_back(dim.GetInt64());
  }
  return shape;
}

absl::StatusOr<DataType> DataTypeMember(const JsonValue& object, std::string_view where) {
  ASSIGN_OR_RETURN(std::string name, StringMember(object, "datatype", where));
  auto type = DataTypeFromName(name);
  if (!type) return Malformed(StrCat(where, ": unknown datatype '", name, "'"));
  return *type;
}

absl::Status DecodeParametersJson(const JsonValue* v, std::string_view where, Parameters* out) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsObject()) return Malformed(StrCat(where, ": \"parameters\" is not an object"));
  for (const auto& m : v->GetObject()) {
    std::string key(StringOf(m.name));
    const JsonValue& value = m.value;
    if (value.IsBool()) {
      out->Set(std::move(key), value.GetBool());
    } else if (value.IsInt64()) {
      out->Set(std::move(key), value.GetInt64());
    } else if (value.IsUint64()) {
      out->Set(std::move(key), value.GetUint64());
    } else if (value.IsNumber()) {
      out->Set(std::move(key), value.GetDouble());
    } else if (value.IsString()) {
      out->Set(std::move(key), std::string(StringOf(value)));
    } else {
      return Malformed(StrCat(where, ": parameter '", key, "' is not a bool, number or string"));
    }
  }
  return absl::OkStatus();
}

void Flatten(const JsonValue& v, std::vector<const JsonValue*>* out) {
  if (v.IsArray()) {
    for (const auto& item : v.GetArray()) Flatten(item, out);
  } else {
    out->push_back(&v);
  }
}

// A JSON number or one of the strings the server writes for NaN and infinities.
std::optional<double> FloatingOf(const JsonValue& v) {
  if (v.IsNumber()) return v.GetDouble();
  if (!v.IsString()) return std::nullopt;
  std::string_view s = StringOf(v);
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

template <typename T>
bool AppendInteger(const JsonValue& v, std::vector<std::byte>* out) {
  T value;
  if constexpr (std::is_signed_v<T>) {
    if (!v.IsInt64()) return false;
    int64_t i = v.GetInt64();
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) return false;
    value = static_cast<T>(i);
  } else {
    if (!v.IsUint64()) return false;
    uint64_t u = v.GetUint64();
    if (u > std::numeric_limits<T>::max()) return false;
    value = static_cast<T>(u);
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out->insert(out->end(), bytes, bytes + sizeof(T));
  return true;
}

template <typename T>
void AppendValue(T value, std::vector<std::byte>* out) {
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out->insert(out->end(), bytes, bytes + sizeof(T));
}

// Converts one JSON element to `type`'s bytes; false when it does not fit.
bool AppendElement(DataType type, const JsonValue& v, std::vector<std::byte>* out) {
  switch (type) {
    case DataType::kBool:
      if (v.IsBool()) {
        out->push_back(std::byte{v.GetBool() ? uint8_t{1} : uint8_t{0}});
        return true;
      }
      if (v.IsInt() && (v.GetInt() == 0 || v.GetInt() == 1)) {
        out->push_back(std::byte{static_cast<uint8_t>(v.GetInt())});
        return true;
      }
      return false;
    case DataType::kUint8: return AppendInteger<uint8_t>(v, out);
    case DataType::kUint16: return AppendInteger<uint16_t>(v, out);
    case DataType::kUint32: return AppendInteger<uint32_t>(v, out);
    case DataType::kUint64: return AppendInteger<uint64_t>(v, out);
    case DataType::kInt8: return AppendInteger<int8_t>(v, out);
    case DataType::kInt16: return AppendInteger<int16_t>(v, out);
    case DataType::kInt32: return AppendInteger<int32_t>(v, out);
    case DataType::kInt64: return AppendInteger<int64_t>(v, out);
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32:
    case DataType::kFp64: {
      auto d = FloatingOf(v);
      if (!d) return false;
      if (type == DataType::kFp64) {
        AppendValue(*d, out);
      } else if (type == DataType::kFp32) {
        AppendValue(static_cast<float>(*d), out);
      } else if (type == DataType::kFp16) {
        AppendValue(FloatToHalf(static_cast<float>(*d)), out);
      } else {
        AppendValue(FloatToBfloat16(static_cast<float>(*d)), out);
      }
      return true;
    }
    case DataType::kBytes:
      if (!v.IsString()) return false;
      AppendBytesElement(StringOf(v), out);
      return true;
    default: return false;
  }
}

absl::StatusOr<rapidjson::Document> ParseJson(std::string_view text, std::string_view what) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Malformed(StrCat(what, " is not valid JSON (at offset ", doc.GetErrorOffset(), ")"));
  }
  return doc;
}

absl::StatusOr<std::vector<TensorMetadata>> DecodeTensorMetadata(const JsonValue& model, const char* key) {
  std::vector<TensorMetadata> out;
  const JsonValue* list = Member(model, key);
  if (list == nullptr) return out;
  if (!list->IsArray()) return Malformed(StrCat("model metadata: \"", key, "\" is not an array"));
  for (const auto& item : list->GetArray()) {
    if (!item.IsObject()) return Malformed(StrCat("model metadata: an entry of \"", key, "\" is not an object"));
    TensorMetadata tensor;
    ASSIGN_OR_RETURN(tensor.name, StringMember(item, "name", key));
    std::string where = StrCat(key, " '", tensor.name, "'");
    ASSIGN_OR_RETURN(tensor.type, DataTypeMember(item, where));
    ASSIGN_OR_RETURN(tensor.shape, ShapeMember(item, where));
    out.push_back(std::move(tensor));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> StringList(const JsonValue& object, const char* key, std::string_view where) {
  std::vector<std::string> out;
  const JsonValue* list = Member(object, key);
  if (list == nullptr) return out;
  if (!list->IsArray()) return Malformed(StrCat(where, ": \"", key, "\" is not an array"));
  for (const auto& item : list->GetArray()) {
    if (!item.IsString()) return Malformed(StrCat(where, ": \"", key, "\" holds a value that is not a string"));
    out.emplace_back(StringOf(item));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

absl::StatusOr<HttpInferBody> EncodeHttpInferRequest(const InferRequest& request, bool binary) {
  HttpInferBody out;
  std::vector<const Tensor*> sections;
  JsonStringStream stream(&out.body);
  JsonWriter writer(stream);
  writer.StartObject();
  if (!request.id.empty()) {
    writer.Key("id");
    writer.String(request.id);
  }
  Parameters parameters = request.parameters;
  if (request.priority != 0) parameters.Set("priority", static_cast<int64_t>(request.priority));
  const bool binary_outputs = binary || request.binary_data_output;
  if (binary_outputs && request.outputs.empty()) parameters.Set("binary_data_output", true);
  if (!parameters.empty()) {
    writer.Key("parameters");
    WriteParameters(writer, parameters);
  }
  writer.Key("inputs");
  writer.StartArray();
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& tensor = request.inputs[i];
    RETURN_IF_ERROR(ValidateTensorBytes(tensor));
    bool as_binary = binary;
    if (!as_binary) {
      ASSIGN_OR_RETURN(as_binary, NeedsBinary(tensor));
    }
    writer.StartObject();
    writer.Key("name");
    writer.String(tensor.name);
    writer.Key("shape");
    writer.StartArray();
    for (int64_t dim : tensor.shape) writer.Int64(dim);
    writer.EndArray();
    writer.Key("datatype");
    writer.String(DataTypeName(tensor.type));
    Parameters tensor_parameters;
    if (i < request.input_parameters.size()) tensor_parameters = request.input_parameters[i];
    if (as_binary) tensor_parameters.Set("binary_data_size", static_cast<int64_t>(tensor.data.size()));
    if (!tensor_parameters.empty()) {
      writer.Key("parameters");
      WriteParameters(writer, tensor_parameters);
    }
    if (as_binary) {
      sections.push_back(&tensor);
    } else {
      writer.Key("data");
      RETURN_IF_ERROR(WriteData(writer, tensor));
    }
    writer.EndObject();
  }
  writer.EndArray();
  if (!request.outputs.empty()) {
    writer.Key("outputs");
    writer.StartArray();
    for (const RequestedOutput& output : request.outputs) {
      writer.StartObject();
      writer.Key("name");
      writer.String(output.name);
      Parameters output_parameters = output.parameters;
      if (binary_outputs || output.binary_data) output_parameters.Set("binary_data", true);
      if (output.classification > 0) {
        output_parameters.Set("classification", static_cast<int64_t>(output.classification));
      }
      if (!output_parameters.empty()) {
        writer.Key("parameters");
        WriteParameters(writer, output_parameters);
      }
      writer.EndObject();
    }
    writer.EndArray();
  }
  writer.EndObject();
  if (!sections.empty()) {
    out.header_length = out.body.size();
    size_t total = out.body.size();
    for (const Tensor* tensor : sections) total += tensor->data.size();
    out.body.reserve(total);
    for (const Tensor* tensor : sections) {
      out.body.append(reinterpret_cast<const char*>(tensor->data.data()), tensor->data.size());
    }
  }
  return out;
}

absl::StatusOr<InferResponse> DecodeHttpInferResponse(std::shared_ptr<const std::string> body,
                                                      std::optional<size_t> header_length) {
  const std::string& text = *body;
  size_t json_size = text.size();
  if (header_length) {
    if (*header_length > text.size()) {
      return Malformed(StrCat("Inference-Header-Content-Length ", *header_length, " exceeds the body size ",
                              text.size()));
    }
    json_size = *header_length;
  }
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseJson(std::string_view(text.data(), json_size), "infer response"));
  if (!doc.IsObject()) return Malformed("infer response is not a JSON object");
  InferResponse response;
  ASSIGN_OR_RETURN(response.model_name, StringMember(doc, "model_name", "infer response", false));
  ASSIGN_OR_RETURN(response.model_version, StringMember(doc, "model_version", "infer response", false));
  ASSIGN_OR_RETURN(response.id, StringMember(doc, "id", "infer response", false));
  RETURN_IF_ERROR(DecodeParametersJson(Member(doc, "parameters"), "infer response", &response.parameters));
  const JsonValue* outputs = Member(doc, "outputs");
  if (outputs == nullptr || !outputs->IsArray()) return Malformed("infer response: \"outputs\" is not an array");
  size_t binary_at = json_size;
  for (const auto& item : outputs->GetArray()) {
    if (!item.IsObject()) return Malformed("infer response: an output is not an object");
    Tensor tensor;
    ASSIGN_OR_RETURN(tensor.name, StringMember(item, "name", "output"));
    std::string where = StrCat("output '", tensor.name, "'");
    ASSIGN_OR_RETURN(tensor.type, DataTypeMember(item, where));
    ASSIGN_OR_RETURN(tensor.shape, ShapeMember(item, where));
    ASSIGN_OR_RETURN(int64_t count, ElementCount(tensor.shape));
    Parameters parameters;
    RETURN_IF_ERROR(DecodeParametersJson(Member(item, "parameters"), where, &parameters));
    std::optional<int64_t> binary_size = parameters.FindInt("binary_data_size");
    if (binary_size) {
      if (*binary_size < 0 || static_cast<size_t>(*binary_size) > text.size() - binary_at) {
        return Malformed(StrCat(where, ": binary_data_size ", *binary_size, " runs past the end of the body"));
      }
      tensor.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data() + binary_at),
                                               static_cast<size_t>(*binary_size));
      tensor.holder = body;
      binary_at += static_cast<size_t>(*binary_size);
    } else {
      const JsonValue* data = Member(item, "data");
      if (data == nullptr) return Malformed(StrCat(where, " has neither \"data\" nor binary_data_size"));
      std::vector<const JsonValue*> elements;
      Flatten(*data, &elements);
      if (static_cast<int64_t>(elements.size()) != count) {
        return Malformed(StrCat(where, ": ", elements.size(), " values for shape ", ShapeToString(tensor.shape)));
      }
      std::vector<std::byte> bytes;
      bytes.reserve(elements.size() * std::max<size_t>(DataTypeSize(tensor.type), 4));
      for (size_t i = 0; i < elements.size(); ++i) {
        if (!AppendElement(tensor.type, *elements[i], &bytes)) {
          return Malformed(StrCat(where, ": value ", i, " is not a valid ", DataTypeName(tensor.type)));
        }
      }
      tensor = MakeOwnedTensor(std::move(tensor.name), tensor.type, std::move(tensor.shape), std::move(bytes));
    }
    if (absl::Status valid = ValidateTensorBytes(tensor); !valid.ok()) {
      return Malformed(ToStd(valid.message()));
    }
    response.outputs.push_back(std::move(tensor));
  }
  if (binary_at != text.size()) {
    return Malformed(StrCat("the binary sections take ", binary_at - json_size, " bytes but ",
                            text.size() - json_size, " follow the JSON header"));
  }
  return response;
}

absl::StatusOr<Tensor> TensorFromJson(std::string name, DataType type, Shape shape, std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        StrCat("tensor '", name, "': data is not valid JSON (at offset ", doc.GetErrorOffset(), ")"));
  }
  if (!doc.IsArray()) return absl::InvalidArgumentError(StrCat("tensor '", name, "': data is not a JSON array"));
  ASSIGN_OR_RETURN(int64_t count, ElementCount(shape));
  std::vector<const JsonValue*> elements;
  Flatten(doc, &elements);
  if (static_cast<int64_t>(elements.size()) != count) {
    return absl::InvalidArgumentError(StrCat("tensor '", name, "': ", elements.size(), " values for shape ",
                                             ShapeToString(shape), " (", count, " expected)"));
  }
  std::vector<std::byte> bytes;
  for (size_t i = 0; i < elements.size(); ++i) {
    if (!AppendElement(type, *elements[i], &bytes)) {
      return absl::InvalidArgumentError(
          StrCat("tensor '", name, "': value ", i, " is not a valid ", DataTypeName(type)));
    }
  }
  return MakeOwnedTensor(std::move(name), type, std::move(shape), std::move(bytes));
}

absl::Status HttpErrorStatus(unsigned http_status, std::string_view body) {
  std::string message;
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    const JsonValue* error = Member(doc, "error");
    if (error != nullptr && error->IsString()) message = StringOf(*error);
  }
  if (message.empty()) message = body.empty() ? StrCat("HTTP status ", http_status) : std::string(body);
  return absl::Status(StatusCodeForHttpStatus(http_status), message);
}

absl::StatusOr<ServerMetadata> DecodeHttpServerMetadata(std::string_view body) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseJson(body, "server metadata"));
  if (!doc.IsObject()) return Malformed("server metadata is not a JSON object");
  ServerMetadata out;
  ASSIGN_OR_RETURN(out.name, StringMember(doc, "name", "server metadata"));
  ASSIGN_OR_RETURN(out.version, StringMember(doc, "version", "server metadata", false));
  ASSIGN_OR_RETURN(out.extensions, StringList(doc, "extensions", "server metadata"));
  return out;
}

absl::StatusOr<ModelMetadata> DecodeHttpModelMetadata(std::string_view body) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseJson(body, "model metadata"));
  if (!doc.IsObject()) return Malformed("model metadata is not a JSON object");
  ModelMetadata out;
  ASSIGN_OR_RETURN(out.name, StringMember(doc, "name", "model metadata"));
  ASSIGN_OR_RETURN(out.versions, StringList(doc, "versions", "model metadata"));
  ASSIGN_OR_RETURN(out.platform, StringMember(doc, "platform", "model metadata", false));
  ASSIGN_OR_RETURN(out.inputs, DecodeTensorMetadata(doc, "inputs"));
  ASSIGN_OR_RETURN(out.outputs, DecodeTensorMetadata(doc, "outputs"));
  return out;
}

absl::StatusOr<std::vector<ModelIndexEntry>> DecodeHttpRepositoryIndex(std::string_view body) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseJson(body, "repository index"));
  if (!doc.IsArray()) return Malformed("repository index is not a JSON array");
  std::vector<ModelIndexEntry> out;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsObject()) return Malformed("repository index: an entry is not an object");
    ModelIndexEntry entry;
    ASSIGN_OR_RETURN(entry.name, StringMember(item, "name", "repository index"));
    ASSIGN_OR_RETURN(entry.version, StringMember(item, "version", "repository index", false));
    ASSIGN_OR_RETURN(entry.state, StringMember(item, "state", "repository index", false));
    ASSIGN_OR_RETURN(entry.reason, StringMember(item, "reason", "repository index", false));
    out.push_back(std::move(entry));
  }
  return out;
}

uint16_t FloatToHalf(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {  // Inf or NaN (NaN stays a quiet NaN).
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 | ((abs >> 13) & 0x3ff) : 0);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00;  // Rounds past 65504: infinity.
  if (abs < 0x38800000) {
    // Half subnormal (or zero): value / 2^-24, rounded to nearest-even.
    if (abs < 0x33000000) return sign;  // Below half the smallest subnormal.
    const uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
    const uint32_t total = 126 - (abs >> 23);  // 14..24: the bits below 2^-24.
    uint32_t result = mantissa >> total;
    const uint32_t rest = mantissa & ((1u << total) - 1);
    const uint32_t half = 1u << (total - 1);
    if (rest > half || (rest == half && (result & 1))) ++result;
    return sign | static_cast<uint16_t>(result);
  }
  // Normal: rebias the exponent (127 -> 15) and round the mantissa to 10 bits.
  uint32_t result = abs - 0x38000000;  // (127 - 15) << 23.
  const uint32_t rest = result & 0x1fff;
  result >>= 13;
  if (rest > 0x1000 || (rest == 0x1000 && (result & 1))) ++result;  // Carry may reach the exponent: fine.
  return sign | static_cast<uint16_t>(result);
}

uint16_t FloatToBfloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((bits >> 16) | 0x40);  // Quiet NaN.
  const uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace ortserve::client
