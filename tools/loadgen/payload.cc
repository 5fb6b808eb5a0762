// SPDX-License-Identifier: Apache-2.0
#include "payload.h"

#include <bit>
#include <cmath>
#include <optional>
#include <cstring>
#include <limits>
#include <random>
#include <string_view>

#include "core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace ortserve::loadgen {
namespace {

template <typename T>
void Append(std::string* raw, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  raw->append(bytes, sizeof(T));
}

template <typename T>
T Load(const std::string& raw, size_t index) {
  T value;
  std::memcpy(&value, raw.data() + index * sizeof(T), sizeof(T));
  return value;
}

// IEEE half from float, round-to-nearest-even, for finite values in half range.
uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffffu;
  if (exponent <= 0) {  // Subnormal half or zero.
    if (exponent < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - exponent;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Appends one JSON value to `raw` as an element of `type`.
absl::Status AppendJsonElement(const rapidjson::Value& v, DataType type, const std::string& name,
                               InputTensor* tensor) {
  auto bad = [&](std::string_view want) {
    return absl::InvalidArgumentError(
        StrCat("input '", name, "': a data element is not ", want, " as datatype ", DataTypeName(type), " needs"));
  };
  std::string* raw = &tensor->raw;
  switch (type) {
    case DataType::kBool:
      if (!v.IsBool()) return bad("a boolean");
      Append<uint8_t>(raw, v.GetBool() ? 1 : 0);
      return absl::OkStatus();
    case DataType::kBytes:
      if (!v.IsString()) return bad("a string");
      tensor->strings.emplace_back(v.GetString(), v.GetStringLength());
      return absl::OkStatus();
    case DataType::kFp32:
    case DataType::kFp64:
    case DataType::kFp16:
    case DataType::kBf16: {
      if (!v.IsNumber()) return bad("a number");
      const double d = v.GetDouble();
      if (type == DataType::kFp32) Append<float>(raw, static_cast<float>(d));
      if (type == DataType::kFp64) Append<double>(raw, d);
      if (type == DataType::kFp16) Append<uint16_t>(raw, FloatToHalf(static_cast<float>(d)));
      if (type == DataType::kBf16) {
        Append<uint16_t>(raw, static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(d)) >> 16));
      }
      return absl::OkStatus();
    }
    default:
      break;
  }
  if (!v.IsInt64() && !v.IsUint64()) return bad("an integer");
  const bool is_unsigned = v.IsUint64() && !v.IsInt64();
  const int64_t i = is_unsigned ? 0 : v.GetInt64();
  const uint64_t u = is_unsigned ? v.GetUint64() : static_cast<uint64_t>(i);
  switch (type) {
    case DataType::kInt8: Append<int8_t>(raw, static_cast<int8_t>(i)); break;
    case DataType::kInt16: Append<int16_t>(raw, static_cast<int16_t>(i)); break;
    case DataType::kInt32: Append<int32_t>(raw, static_cast<int32_t>(i)); break;
    case DataType::kInt64: Append<int64_t>(raw, i); break;
    case DataType::kUint8: Append<uint8_t>(raw, static_cast<uint8_t>(u)); break;
    case DataType::kUint16: Append<uint16_t>(raw, static_cast<uint16_t>(u)); break;
    case DataType::kUint32: Append<uint32_t>(raw, static_cast<uint32_t>(u)); break;
    case DataType::kUint64: Append<uint64_t>(raw, u); break;
    default: return absl::InvalidArgumentError(StrCat("input '", name, "': unsupported datatype"));
  }
  return absl::OkStatus();
}

absl::Status AppendJsonData(const rapidjson::Value& v, DataType type, const std::string& name, InputTensor* tensor) {
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (absl::Status s = AppendJsonData(e, type, name, tensor); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return AppendJsonElement(v, type, name, tensor);
}

template <typename Writer>
void WriteElements(const InputTensor& t, Writer& w) {
  const int64_t n = ElementCount(t.shape);
  for (int64_t k = 0; k < n; ++k) {
    const size_t i = static_cast<size_t>(k);
    switch (t.datatype) {
      case DataType::kBool: w.Bool(Load<uint8_t>(t.raw, i) != 0); break;
      case DataType::kUint8: w.Uint(Load<uint8_t>(t.raw, i)); break;
      case DataType::kUint16: w.Uint(Load<uint16_t>(t.raw, i)); break;
      case DataType::kUint32: w.Uint(Load<uint32_t>(t.raw, i)); break;
      case DataType::kUint64: w.Uint64(Load<uint64_t>(t.raw, i)); break;
      case DataType::kInt8: w.Int(Load<int8_t>(t.raw, i)); break;
      case DataType::kInt16: w.Int(Load<int16_t>(t.raw, i)); break;
      case DataType::kInt32: w.Int(Load<int32_t>(t.raw, i)); break;
      case DataType::kInt64: w.Int64(Load<int64_t>(t.raw, i)); break;
      case DataType::kFp32: w.Double(Load<float>(t.raw, i)); break;
      case DataType::kFp64: w.Double(Load<double>(t.raw, i)); break;
      case DataType::kFp16: w.Double(HalfToFloat(Load<uint16_t>(t.raw, i))); break;
      case DataType::kBf16:
        w.Double(std::bit_cast<float>(static_cast<uint32_t>(Load<uint16_t>(t.raw, i)) << 16));
        break;
      case DataType::kBytes:
        w.String(t.strings[i].data(), static_cast<rapidjson::SizeType>(t.strings[i].size()));
        break;
      default: w.Null(); break;
    }
  }
}

template <typename Writer>
void WriteTensorHead(const InputTensor& t, Writer& w) {
  w.Key("name");
  w.String(t.name.c_str());
  w.Key("shape");
  w.StartArray();
  for (int64_t d : t.shape) w.Int64(d);
  w.EndArray();
  w.Key("datatype");
  const std::string_view type = DataTypeName(t.datatype);
  w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
}

}  // namespace

int64_t ElementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::vector<InputTensor>> GenerateInputs(const std::vector<TensorMetadata>& inputs,
                                                        const GenerateOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::vector<InputTensor> out;
  for (const TensorMetadata& meta : inputs) {
    InputTensor t;
    t.name = meta.name;
    std::optional<DataType> type = DataTypeFromName(meta.datatype);
    if (!type || *type == DataType::kInvalid) {
      return absl::InvalidArgumentError(
          StrCat("input '", meta.name, "': unknown datatype '", meta.datatype, "' in the model metadata"));
    }
    t.datatype = *type;
    if (auto it = options.shape_overrides.find(meta.name); it != options.shape_overrides.end()) {
      t.shape = it->second;
    } else {
      t.shape = meta.shape;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (t.shape[d] >= 0) continue;
        if (d == 0) {
          t.shape[d] = options.batch;
          continue;
        }
        return absl::InvalidArgumentError(StrCat("input '", meta.name, "': dimension ", d,
                                                 " is variable (-1); give the shape with --shape ",
                                                 meta.name, ":d0,d1,..."));
      }
    }
    const int64_t n = ElementCount(t.shape);
    std::uniform_real_distribution<double> real(0.0, 1.0);
    std::uniform_int_distribution<int64_t> integer(options.int_min, options.int_max);
    for (int64_t k = 0; k < n; ++k) {
      switch (t.datatype) {
        case DataType::kBool: Append<uint8_t>(&t.raw, rng() & 1); break;
        case DataType::kUint8: Append<uint8_t>(&t.raw, static_cast<uint8_t>(integer(rng))); break;
        case DataType::kUint16: Append<uint16_t>(&t.raw, static_cast<uint16_t>(integer(rng))); break;
        case DataType::kUint32: Append<uint32_t>(&t.raw, static_cast<uint32_t>(integer(rng))); break;
        case DataType::kUint64: Append<uint64_t>(&t.raw, static_cast<uint64_t>(integer(rng))); break;
        case DataType::kInt8: Append<int8_t>(&t.raw, static_cast<int8_t>(integer(rng))); break;
        case DataType::kInt16: Append<int16_t>(&t.raw, static_cast<int16_t>(integer(rng))); break;
        case DataType::kInt32: Append<int32_t>(&t.raw, static_cast<int32_t>(integer(rng))); break;
        case DataType::kInt64: Append<int64_t>(&t.raw, integer(rng)); break;
        case DataType::kFp32: Append<float>(&t.raw, static_cast<float>(real(rng))); break;
        case DataType::kFp64: Append<double>(&t.raw, real(rng)); break;
        case DataType::kFp16: Append<uint16_t>(&t.raw, FloatToHalf(static_cast<float>(real(rng)))); break;
        case DataType::kBf16:
          Append<uint16_t>(&t.raw,
                           static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(real(rng))) >> 16));
          break;
        case DataType::kBytes: {
          std::string s(8, 'a');
          for (char& c : s) c = static_cast<char>('a' + rng() % 26);
          t.strings.push_back(std::move(s));
          break;
        }
        default: break;
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<InputTensor>> ParseRequestJson(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError(StrCat("request file: not a JSON object (parse error at offset ",
                                             doc.GetErrorOffset(), ")"));
  }
  auto inputs = doc.FindMember("inputs");
  if (inputs == doc.MemberEnd() || !inputs->value.IsArray()) {
    return absl::InvalidArgumentError("request file: missing the 'inputs' array");
  }
  std::vector<InputTensor> out;
  for (const auto& in : inputs->value.GetArray()) {
    if (!in.IsObject() || !in.HasMember("name") || !in["name"].IsString() || !in.HasMember("datatype") ||
        !in["datatype"].IsString() || !in.HasMember("shape") || !in["shape"].IsArray() || !in.HasMember("data")) {
      return absl::InvalidArgumentError("request file: every input needs 'name', 'datatype', 'shape' and 'data'");
    }
    InputTensor t;
    t.name = in["name"].GetString();
    std::optional<DataType> type = DataTypeFromName(in["datatype"].GetString());
    if (!type || *type == DataType::kInvalid) {
      return absl::InvalidArgumentError(
          StrCat("input '", t.name, "': unknown datatype '", in["datatype"].GetString(), "'"));
    }
    t.datatype = *type;
    for (const auto& d : in["shape"].GetArray()) {
      if (!d.IsInt64() || d.GetInt64() < 0) {
        return absl::InvalidArgumentError(StrCat("input '", t.name, "': shape entries must be integers >= 0"));
      }
      t.shape.push_back(d.GetInt64());
    }
    if (absl::Status s = AppendJsonData(in["data"], t.datatype, t.name, &t); !s.ok()) return s;
    const int64_t have = t.datatype == DataType::kBytes
                             ? static_cast<int64_t>(t.strings.size())
                             : static_cast<int64_t>(t.raw.size() / DataTypeSize(t.datatype));
    if (have != ElementCount(t.shape)) {
      return absl::InvalidArgumentError(StrCat("input '", t.name, "': ", have, " data elements but shape needs ",
                                               ElementCount(t.shape)));
    }
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<TensorMetadata>> ParseMetadataJson(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("inputs") || !doc["inputs"].IsArray()) {
    return absl::InvalidArgumentError(StrCat("model metadata: not a JSON object with an 'inputs' array: ",
                                             json.substr(0, 200)));
  }
  std::vector<TensorMetadata> out;
  for (const auto& in : doc["inputs"].GetArray()) {
    if (!in.IsObject() || !in.HasMember("name") || !in.HasMember("datatype") || !in.HasMember("shape") ||
        !in["shape"].IsArray()) {
      return absl::InvalidArgumentError("model metadata: an input lacks 'name', 'datatype' or 'shape'");
    }
    TensorMetadata m;
    m.name = in["name"].GetString();
    m.datatype = in["datatype"].GetString();
    for (const auto& d : in["shape"].GetArray()) m.shape.push_back(d.GetInt64());
    out.push_back(std::move(m));
  }
  return out;
}

std::string EncodeJsonBody(const std::vector<InputTensor>& inputs) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.SetMaxDecimalPlaces(7);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (const InputTensor& t : inputs) {
    w.StartObject();
    WriteTensorHead(t, w);
    w.Key("data");
    w.StartArray();
    WriteElements(t, w);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string RawContents(const InputTensor& tensor) {
  if (tensor.datatype != DataType::kBytes) return tensor.raw;
  std::string out;
  for (const std::string& s : tensor.strings) {
    Append<uint32_t>(&out, static_cast<uint32_t>(s.size()));
    out += s;
  }
  return out;
}

BinaryBody EncodeBinaryBody(const std::vector<InputTensor>& inputs) {
  std::vector<std::string> raws;
  for (const InputTensor& t : inputs) raws.push_back(RawContents(t));
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (size_t i = 0; i < inputs.size(); ++i) {
    w.StartObject();
    WriteTensorHead(inputs[i], w);
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(raws[i].size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("parameters");
  w.StartObject();
  w.Key("binary_data_output");
  w.Bool(true);
  w.EndObject();
  w.EndObject();
  BinaryBody out;
  out.body.assign(buffer.GetString(), buffer.GetSize());
  out.header_length = out.body.size();
  for (const std::string& r : raws) out.body += r;
  return out;
}

}  // namespace ortserve::loadgen
