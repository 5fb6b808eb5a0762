// SPDX-License-Identifier: Apache-2.0
// The response half of the REST codec (kserve_json_codec.h): InferResponse to
// JSON plus binary sections, and error bodies.
#include "frontend/http/kserve_json_codec.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "fmt/format.h"  // fmt::detail::dragonbox: shortest round-trip digits.
#include "core/status.h"
#include "core/strings.h"
#include "frontend/kserve/classification.h"
#include "frontend/kserve/reserved_parameters.h"

namespace ortserve::frontend {
namespace {

template <typename T>
char* WriteInteger(T value, char* p) {
  return std::to_chars(p, p + kMaxJsonIntChars + 1, value).ptr;
}

// Upper bound of the characters one element of `type` takes in a JSON array
// (separator included). BYTES is bounded per byte separately.
size_t MaxElementChars(DataType type) {
  switch (type) {
    case DataType::kBool: return 6;
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32: return kMaxJsonFloatChars + 1;
    case DataType::kFp64: return kMaxJsonDoubleChars + 1;
    default: return kMaxJsonIntChars + 1;
  }
}

// "00" "01" ... "99".
constexpr auto kDigitPairs = [] {
  std::array<char, 200> pairs{};
  for (int i = 0; i < 100; ++i) {
    pairs[2 * i] = static_cast<char>('0' + i / 10);
    pairs[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return pairs;
}();

inline int CountDigits(uint64_t v) {
  int n = 1;
  for (uint64_t limit = 10; n < 20 && v >= limit; limit *= 10) ++n;
  return n;
}

// Writes the decimal digits of `v` so that they end at `end`, in place (no
// intermediate buffer: reading back just-stored digit pairs stalls the CPU).
inline void WriteDigitsBefore(uint64_t v, char* end) {
  while (v >= 100) {
    end -= 2;
    std::memcpy(end, &kDigitPairs[2 * (v % 100)], 2);
    v /= 100;
  }
  if (v >= 10) {
    std::memcpy(end - 2, &kDigitPairs[2 * v], 2);
  } else {
    end[-1] = static_cast<char>('0' + v);
  }
}

// FormatJsonFloat (core/json_writer.h) byte for byte, faster: the shortest
// round-trip digits come from Dragonbox (fmt's; std::to_chars spent most of a
// JSON response's encoding time), laid out as std::to_chars lays them out:
// plain or with an exponent, whichever is shorter, plain on ties. Values
// whose digits end in zeros before the decimal point (1e10, 1200.0) go to
// FormatJsonFloat itself: there to_chars may print the exact integer instead
// of padding the shortest digits with zeros. Tests compare the two over
// millions of values.
template <typename F>
char* WriteJsonFloat(F value, char* p) {
  if (!std::isfinite(value) || value == 0) [[unlikely]] return FormatJsonFloat(value, p);
  const auto decimal = fmt::detail::dragonbox::to_decimal(value);
  uint64_t significand = decimal.significand;
  int exponent = decimal.exponent;
  while (significand % 10 == 0) {
    significand /= 10;
    ++exponent;
  }
  if (exponent > 0) [[unlikely]] return FormatJsonFloat(value, p);
  const int n = CountDigits(significand);
  if (std::signbit(value)) *p++ = '-';
  // The exponent in scientific form, and the lengths of both forms.
  const int scientific_exponent = exponent + n - 1;
  const int magnitude = scientific_exponent < 0 ? -scientific_exponent : scientific_exponent;
  const int exponent_digits = magnitude >= 100 ? 3 : 2;
  const int scientific_length = n + (n > 1 ? 1 : 0) + 2 + exponent_digits;
  const int integer_digits = n + exponent;  // Digits before the point (exponent <= 0 here).
  const int fixed_length = exponent == 0 ? n : integer_digits > 0 ? n + 1 : 2 - integer_digits + n;
  if (scientific_length < fixed_length) {
    // "d.ddde-XX": the digits one place right, then the first moved left.
    WriteDigitsBefore(significand, p + 1 + n);
    p[0] = p[1];
    if (n > 1) {
      p[1] = '.';
      p += n + 1;
    } else {
      p += 1;
    }
    *p++ = 'e';
    *p++ = scientific_exponent < 0 ? '-' : '+';
    if (exponent_digits == 3) *p++ = static_cast<char>('0' + magnitude / 100);
    std::memcpy(p, &kDigitPairs[2 * (magnitude % 100)], 2);
    return p + 2;
  }
  if (exponent == 0) {  // An integer: "3.0", as FormatJsonFloat writes it.
    WriteDigitsBefore(significand, p + n);
    p += n;
    std::memcpy(p, ".0", 2);
    return p + 2;
  }
  if (integer_digits > 0) {
    // The digits one place right, then the integer part moved left over the
    // gap and the point written into it.
    WriteDigitsBefore(significand, p + 1 + n);
    for (int i = 0; i < integer_digits; ++i) p[i] = p[i + 1];
    p[integer_digits] = '.';
    return p + n + 1;
  }
  // "0.", at most 3 zeros (with more, the exponent form is shorter), digits.
  const int zeros = -integer_digits;
  std::memcpy(p, "0.000", 5);
  p += 2 + zeros;
  WriteDigitsBefore(significand, p + n);
  return p + n;
}

template <typename T>
T Load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Writes the elements of a fixed-size tensor as a JSON array.
template <typename T, typename Convert>
char* WriteArray(std::span<const std::byte> data, char* p, Convert convert) {
  *p++ = '[';
  const size_t count = data.size() / sizeof(T);
  for (size_t i = 0; i < count; ++i) {
    if (i != 0) *p++ = ',';
    const auto value = convert(Load<T>(data.data() + i * sizeof(T)));
    if constexpr (std::is_same_v<decltype(value), const bool>) {
      if (value) {
        std::memcpy(p, "true", 4);
        p += 4;
      } else {
        std::memcpy(p, "false", 5);
        p += 5;
      }
    } else if constexpr (std::is_floating_point_v<std::remove_const_t<decltype(value)>>) {
      p = WriteJsonFloat(value, p);
    } else {
      p = WriteInteger(value, p);
    }
  }
  *p++ = ']';
  return p;
}

constexpr auto kIdentity = [](auto v) { return v; };

char* WriteFixedData(DataType type, std::span<const std::byte> data, char* p) {
  switch (type) {
    case DataType::kBool:
      return WriteArray<uint8_t>(data, p, [](uint8_t v) { return v != 0; });
    case DataType::kUint8: return WriteArray<uint8_t>(data, p, kIdentity);
    case DataType::kUint16: return WriteArray<uint16_t>(data, p, kIdentity);
    case DataType::kUint32: return WriteArray<uint32_t>(data, p, kIdentity);
    case DataType::kUint64: return WriteArray<uint64_t>(data, p, kIdentity);
    case DataType::kInt8: return WriteArray<int8_t>(data, p, kIdentity);
    case DataType::kInt16: return WriteArray<int16_t>(data, p, kIdentity);
    case DataType::kInt32: return WriteArray<int32_t>(data, p, kIdentity);
    case DataType::kInt64: return WriteArray<int64_t>(data, p, kIdentity);
    case DataType::kFp16: return WriteArray<uint16_t>(data, p, HalfToFloat);
    case DataType::kBf16: return WriteArray<uint16_t>(data, p, Bfloat16ToFloat);
    case DataType::kFp32: return WriteArray<float>(data, p, kIdentity);
    case DataType::kFp64: return WriteArray<double>(data, p, kIdentity);
    case DataType::kBytes:
    case DataType::kInvalid: break;
  }
  *p++ = '[';
  *p++ = ']';
  return p;
}

// The characters a JSON "data" array needs at most.
size_t DataBound(DataType type, size_t bytes, int64_t count) {
  if (type == DataType::kBytes) return 2 + bytes * 6 + static_cast<size_t>(count) * 3;
  return 2 + static_cast<size_t>(count) * MaxElementChars(type);
}

absl::Status CheckOutput(const Tensor& tensor, int64_t* count) {
  auto elements = ElementCount(tensor.shape);
  if (!elements.ok()) {
    return absl::InternalError(StrCat("output '", tensor.name, "': ",
                                      ToStd(elements.status().message())));
  }
  *count = *elements;
  if (tensor.type == DataType::kBytes) {
    auto split = SplitBytesElements(tensor.data, *count, tensor.name);
    if (!split.ok()) return absl::InternalError(split.status().message());
    return absl::OkStatus();
  }
  const size_t size = DataTypeSize(tensor.type);
  if (size == 0) {
    return absl::InternalError(StrCat("output '", tensor.name, "' has an invalid datatype"));
  }
  if (tensor.data.size() != static_cast<uint64_t>(*count) * size) {
    return absl::InternalError(StrCat("output '", tensor.name, "' of type ",
                                      DataTypeName(tensor.type), " and shape ",
                                      ShapeToString(tensor.shape), " has ", tensor.data.size(),
                                      " bytes"));
  }
  return absl::OkStatus();
}

char* WriteBytesData(std::span<const std::byte> data, char* p) {
  *p++ = '[';
  size_t at = 0;
  bool first = true;
  while (at + 4 <= data.size()) {
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= static_cast<uint32_t>(data[at + i]) << (8 * i);
    at += 4;
    if (!first) *p++ = ',';
    first = false;
    p = EscapeJsonString(
        std::string_view(reinterpret_cast<const char*>(data.data() + at), length), p);
    at += length;
  }
  *p++ = ']';
  return p;
}

}  // namespace

std::string EncodeError(std::string_view message) {
  std::string out;
  out.reserve(16 + message.size());
  out.append("{\"error\":");
  AppendJsonString(message, &out);
  out.push_back('}');
  return out;
}

// ---------------------------------------------------------------------------
// Responses.

absl::StatusOr<EncodedResponse> EncodeInferResponse(const InferResponse& response,
                                                    const InferRequest& request,
                                                    const EncodeOptions& options) {
  EncodedResponse encoded;
  RETURN_IF_ERROR(EncodeInferResponse(response, request, options, &encoded));
  return encoded;
}

absl::Status EncodeInferResponse(const InferResponse& response, const InferRequest& request,
                                 const EncodeOptions& options, EncodedResponse* out) {
  EncodedResponse& encoded = *out;
  encoded.json.clear();  // Each keeps its capacity.
  encoded.binary.clear();
  encoded.binary_size = 0;
  encoded.owned.clear();

  // Decide what to write and check it before writing anything.
  SelectedOutputs selected;
  RETURN_IF_ERROR(SelectOutputs(response, request, &selected));
  struct Planned {
    const SelectedOutput* output;
    int64_t count = 0;
    Shape shape;  // Classification result shape.
    std::span<const std::byte> data;
  };
  absl::InlinedVector<Planned, 4> plan;
  plan.reserve(selected.size());
  for (const SelectedOutput& output : selected) plan.push_back({&output, 0, {}, output.tensor->data});

  size_t estimate = 128 + response.model_name.size() * 6 + response.model_version.size() * 6 +
                    response.id.size() * 6;
  for (const auto& [key, value] : response.parameters) {
    estimate += 48 + key.size() * 6;
    if (const auto* s = std::get_if<std::string>(&value)) estimate += s->size() * 6;
  }
  for (Planned& item : plan) {
    const Tensor& tensor = *item.output->tensor;
    const uint32_t classification = item.output->classification;
    RETURN_IF_ERROR(CheckOutput(tensor, &item.count));
    if (classification > 0) {
      std::span<const std::string> labels;
      if (options.labels) labels = options.labels(tensor.name);
      std::vector<std::byte> bytes;
      RETURN_IF_ERROR(Classify(tensor, classification, labels, &bytes, &item.shape));
      item.count = 1;
      for (int64_t d : item.shape) item.count *= d;
      encoded.owned.push_back(std::move(bytes));
      const auto& stored = encoded.owned.back();
      item.data = std::span<const std::byte>(stored.data(), stored.size());
    }
    const DataType type = classification > 0 ? DataType::kBytes : tensor.type;
    estimate += 96 + tensor.name.size() * 6 + tensor.shape.size() * (kMaxJsonIntChars + 1);
    if (!item.output->binary) estimate += DataBound(type, item.data.size(), item.count);
  }
  encoded.json.reserve(estimate);

  JsonStringStream stream(&encoded.json);
  JsonWriter writer(stream);
  writer.StartObject();
  writer.Key("model_name");
  writer.String(response.model_name);
  writer.Key("model_version");
  writer.String(response.model_version);
  if (!response.id.empty()) {
    writer.Key("id");
    writer.String(response.id);
  }
  if (!response.parameters.empty()) {
    writer.Key("parameters");
    WriteParameters(writer, response.parameters);
  }
  writer.Key("outputs");
  writer.StartArray();
  for (const Planned& item : plan) {
    const Tensor& tensor = *item.output->tensor;
    const bool classified = item.output->classification > 0;
    const DataType type = classified ? DataType::kBytes : tensor.type;
    std::span<const int64_t> shape =
        classified ? std::span<const int64_t>(item.shape) : std::span<const int64_t>(tensor.shape);
    writer.StartObject();
    writer.Key("name");
    writer.String(tensor.name);
    writer.Key("datatype");
    writer.String(DataTypeName(type));
    writer.Key("shape");
    writer.StartArray();
    for (int64_t dim : shape) writer.Int64(dim);
    writer.EndArray();
    if (item.output->shared_memory) {  // Issue 21: its data is in a shared memory region.
      Parameters parameters = item.output->requested->parameters;
      parameters.Set(std::string(kShmByteSize), static_cast<int64_t>(item.data.size()));
      writer.Key("parameters");
      WriteParameters(writer, parameters);
    } else if (item.output->binary) {
      writer.Key("parameters");
      writer.StartObject();
      writer.Key("binary_data_size");
      writer.Uint64(item.data.size());
      writer.EndObject();
      encoded.binary.push_back(item.data);
      encoded.binary_size += item.data.size();
    } else {
      writer.Key("data");
      writer.BeginRaw(rapidjson::kArrayType);
      AppendBounded(&encoded.json, DataBound(type, item.data.size(), item.count),
                    [&](char* p) {
                      return type == DataType::kBytes ? WriteBytesData(item.data, p)
                                                      : WriteFixedData(type, item.data, p);
                    });
    }
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
