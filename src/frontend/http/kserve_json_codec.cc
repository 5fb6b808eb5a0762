// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/kserve_json_codec.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "simdjson.h"

namespace ortserve::frontend {
namespace {

namespace dom = simdjson::dom;

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

std::string_view KindName(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64: return "an integer";
    case dom::element_type::UINT64: return "an integer";
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// ---------------------------------------------------------------------------
// Parameters.

absl::Status ParseParameters(dom::element value, std::string_view where, Parameters* out) {
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid(where, " parameters must be an object, got ", KindName(value.type()));
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
        return Invalid(where, " parameter '", field.key, "' is ", KindName(field.value.type()),
                       "; parameters must be booleans, numbers or strings");
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JSON data -> tensor bytes.

// Calls fn(leaf) for every non-array value under `value` (row-major); stops and
// returns false as soon as fn does.
template <typename Fn>
bool ForEachLeaf(dom::element value, Fn& fn) {
  if (value.type() != dom::element_type::ARRAY) return fn(value);
  const dom::array array = value.get_array().value_unsafe();
  for (dom::element child : array) {
    if (!ForEachLeaf(child, fn)) return false;
  }
  return true;
}

int64_t CountLeaves(dom::element value) {
  int64_t count = 0;
  auto fn = [&count](dom::element) {
    ++count;
    return true;
  };
  ForEachLeaf(value, fn);
  return count;
}

absl::Status CountMismatch(std::string_view name, dom::element data, const Shape& shape,
                           int64_t expected) {
  return Invalid("input '", name, "': shape ", ShapeToString(shape), " needs ", expected,
                 " elements, but data has ", CountLeaves(data));
}

std::string_view ElementKind(dom::element e) { return KindName(e.type()); }

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

// Parses one leaf as T; on failure writes why into *error (without the tensor
// name or index, which the caller adds).
template <typename T>
bool LeafToValue(dom::element e, DataType type, T* out, std::string* error) {
  if constexpr (std::is_same_v<T, bool>) {
    if (e.type() != dom::element_type::BOOL) {
      *error = StrCat("is ", ElementKind(e), "; BOOL needs true or false");
      return false;
    }
    *out = e.get_bool().value_unsafe();
    return true;
  } else if constexpr (kIsFloat<T>) {
    double d;
    switch (e.type()) {
      case dom::element_type::DOUBLE: d = e.get_double().value_unsafe(); break;
      case dom::element_type::INT64: d = static_cast<double>(e.get_int64().value_unsafe()); break;
      case dom::element_type::UINT64: d = static_cast<double>(e.get_uint64().value_unsafe()); break;
      case dom::element_type::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        if (s == "NaN") {
          d = std::numeric_limits<double>::quiet_NaN();
        } else if (s == "Infinity") {
          d = std::numeric_limits<double>::infinity();
        } else if (s == "-Infinity") {
          d = -std::numeric_limits<double>::infinity();
        } else {
          *error = StrCat("is the string \"", s, "\"; ", DataTypeName(type),
                          " needs a number (or \"NaN\", \"Infinity\", \"-Infinity\")");
          return false;
        }
        break;
      }
      default:
        *error = StrCat("is ", ElementKind(e), "; ", DataTypeName(type), " needs a number");
        return false;
    }
    if constexpr (std::is_same_v<T, float>) {
      // Finite doubles at or past the midpoint between FLT_MAX and 2^128 round to
      // infinity: the value does not fit.
      if (std::isfinite(d) && std::fabs(d) >= 0x1.ffffffp+127) {
        *error = StrCat(d, " is out of range for FP32");
        return false;
      }
    }
    *out = static_cast<T>(d);
    return true;
  } else {
    static_assert(std::is_integral_v<T>);
    switch (e.type()) {
      case dom::element_type::INT64: {
        const int64_t v = e.get_int64().value_unsafe();
        if constexpr (std::is_signed_v<T>) {
          if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
            *error = StrCat(v, " is out of range for ", DataTypeName(type));
            return false;
          }
        } else {
          if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) {
            *error = StrCat(v, " is out of range for ", DataTypeName(type));
            return false;
          }
        }
        *out = static_cast<T>(v);
        return true;
      }
      case dom::element_type::UINT64: {
        // simdjson uses UINT64 only for values above INT64_MAX.
        const uint64_t v = e.get_uint64().value_unsafe();
        if constexpr (std::is_same_v<T, uint64_t>) {
          *out = v;
          return true;
        }
        *error = StrCat(v, " is out of range for ", DataTypeName(type));
        return false;
      }
      case dom::element_type::DOUBLE:
        *error = StrCat(e.get_double().value_unsafe(), " is not an integer; ",
                        DataTypeName(type), " needs integers");
        return false;
      default:
        *error = StrCat("is ", ElementKind(e), "; ", DataTypeName(type), " needs integers");
        return false;
    }
  }
}

struct OwnedBytes {
  std::shared_ptr<const void> holder;
  std::span<const std::byte> data;
};

OwnedBytes Allocate(size_t size, std::byte** out) {
  // One allocation for the control block and the bytes; not zero-filled
  // because every byte is written next.
  std::shared_ptr<std::byte[]> buffer = std::make_shared_for_overwrite<std::byte[]>(size);
  *out = buffer.get();
  OwnedBytes owned;
  owned.data = std::span<const std::byte>(buffer.get(), size);
  owned.holder = std::move(buffer);
  return owned;
}

template <typename T>
absl::StatusOr<OwnedBytes> FillFixed(std::string_view name, DataType type, const Shape& shape,
                                     int64_t count, dom::element data) {
  std::byte* out = nullptr;
  OwnedBytes owned = Allocate(static_cast<size_t>(count) * sizeof(T), &out);
  int64_t index = 0;
  std::string error;
  bool too_many = false;
  auto fn = [&](dom::element e) {
    if (index == count) {
      too_many = true;
      return false;
    }
    T value;
    if (!LeafToValue<T>(e, type, &value, &error)) return false;
    std::memcpy(out + index * sizeof(T), &value, sizeof(T));
    ++index;
    return true;
  };
  if (!ForEachLeaf(data, fn)) {
    if (too_many) return CountMismatch(name, data, shape, count);
    return Invalid("input '", name, "': element ", index, " ", error);
  }
  if (index != count) return CountMismatch(name, data, shape, count);
  return owned;
}

absl::StatusOr<OwnedBytes> FillBytes(std::string_view name, const Shape& shape, int64_t count,
                                     dom::element data) {
  // First pass: check kinds and count, and size the buffer exactly.
  int64_t index = 0;
  size_t total = 0;
  bool bad = false;
  dom::element bad_element;
  auto measure = [&](dom::element e) {
    if (e.type() != dom::element_type::STRING) {
      bad = true;
      bad_element = e;
      return false;
    }
    total += 4 + e.get_string_length().value_unsafe();
    ++index;
    return true;
  };
  ForEachLeaf(data, measure);
  if (bad) {
    return Invalid("input '", name, "': element ", index, " is ", ElementKind(bad_element),
                   "; BYTES needs strings");
  }
  if (index != count) return CountMismatch(name, data, shape, count);
  std::byte* out = nullptr;
  OwnedBytes owned = Allocate(total, &out);
  auto write = [&out](dom::element e) {
    std::string_view s = e.get_string().value_unsafe();
    const auto length = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
    if (!s.empty()) std::memcpy(out + 4, s.data(), s.size());
    out += 4 + s.size();
    return true;
  };
  ForEachLeaf(data, write);
  return owned;
}

absl::StatusOr<OwnedBytes> FillFromJson(std::string_view name, DataType type, const Shape& shape,
                                        int64_t count, dom::element data, size_t json_size) {
  // Every element takes at least one byte of JSON: refuse before allocating a
  // buffer for a shape the body cannot possibly fill.
  if (static_cast<uint64_t>(count) > json_size) return CountMismatch(name, data, shape, count);
  switch (type) {
    case DataType::kBool: return FillFixed<bool>(name, type, shape, count, data);
    case DataType::kUint8: return FillFixed<uint8_t>(name, type, shape, count, data);
    case DataType::kUint16: return FillFixed<uint16_t>(name, type, shape, count, data);
    case DataType::kUint32: return FillFixed<uint32_t>(name, type, shape, count, data);
    case DataType::kUint64: return FillFixed<uint64_t>(name, type, shape, count, data);
    case DataType::kInt8: return FillFixed<int8_t>(name, type, shape, count, data);
    case DataType::kInt16: return FillFixed<int16_t>(name, type, shape, count, data);
    case DataType::kInt32: return FillFixed<int32_t>(name, type, shape, count, data);
    case DataType::kInt64: return FillFixed<int64_t>(name, type, shape, count, data);
    case DataType::kFp32: return FillFixed<float>(name, type, shape, count, data);
    case DataType::kFp64: return FillFixed<double>(name, type, shape, count, data);
    case DataType::kBytes: return FillBytes(name, shape, count, data);
    case DataType::kFp16:
    case DataType::kBf16:
      return Invalid("input '", name, "': ", DataTypeName(type),
                     " data cannot be sent as JSON; send it with the binary tensor extension "
                     "(parameters.binary_data_size)");
    case DataType::kInvalid: break;
  }
  return Invalid("input '", name, "' has an invalid datatype");
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
                   KindName(value.type()));
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
                     KindName(dim.type()));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseInput(dom::element value, size_t index, InputEntry* entry,
                        Parameters* parameters) {
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid("inputs[", index, "] must be an object, got ", KindName(value.type()));
  }
  bool has_name = false, has_shape = false, has_type = false;
  dom::element shape_value, type_value, parameters_value;
  bool has_parameters = false;
  for (dom::key_value_pair field : object) {
    if (field.key == "name") {
      if (field.value.get_string().get(entry->name) != simdjson::SUCCESS) {
        return Invalid("inputs[", index, "].name must be a string, got ",
                       KindName(field.value.type()));
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
                   KindName(type_value.type()));
  }
  std::optional<DataType> type = DataTypeFromName(type_name);
  if (!type) return Invalid("input '", name, "' has unknown datatype '", type_name, "'");
  entry->type = *type;
  RETURN_IF_ERROR(ParseShape(shape_value, name, &entry->shape));
  auto count = ElementCount(entry->shape);
  if (!count.ok()) return Invalid("input '", name, "': ", ToStd(count.status().message()));
  entry->count = *count;
  const std::string where = StrCat("input '", name, "'");
  if (has_parameters) RETURN_IF_ERROR(ParseParameters(parameters_value, where, parameters));
  ASSIGN_OR_RETURN(entry->binary_size,
                   UnsignedParameter(*parameters, "binary_data_size", where,
                                     std::numeric_limits<uint64_t>::max()));
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
    return Invalid("\"outputs\" must be an array, got ", KindName(value.type()));
  }
  size_t index = 0;
  for (dom::element item : array) {
    dom::object object;
    if (item.get_object().get(object) != simdjson::SUCCESS) {
      return Invalid("outputs[", index, "] must be an object, got ", KindName(item.type()));
    }
    RequestedOutput output;
    bool has_name = false;
    for (dom::key_value_pair field : object) {
      if (field.key == "name") {
        std::string_view name;
        if (field.value.get_string().get(name) != simdjson::SUCCESS) {
          return Invalid("outputs[", index, "].name must be a string, got ",
                         KindName(field.value.type()));
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
    const std::string where = StrCat("output '", output.name, "'");
    ASSIGN_OR_RETURN(output.binary_data, BoolParameter(output.parameters, "binary_data", where));
    ASSIGN_OR_RETURN(std::optional<uint64_t> k,
                     UnsignedParameter(output.parameters, "classification", where,
                                       std::numeric_limits<uint32_t>::max()));
    output.classification = static_cast<uint32_t>(k.value_or(0));
    request->outputs.push_back(std::move(output));
    ++index;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Writing.

constexpr char kHex[] = "0123456789abcdef";

// Writes `s` as a JSON string literal at `p`, which must have room for
// 2 + 6 * s.size() characters. Returns the end.
char* EscapeJsonString(std::string_view s, char* p) {
  *p++ = '"';
  const auto* in = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = in[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\') {
        *p++ = static_cast<char>(c);
      } else {
        *p++ = '\\';
        switch (c) {
          case '"': *p++ = '"'; break;
          case '\\': *p++ = '\\'; break;
          case '\b': *p++ = 'b'; break;
          case '\f': *p++ = 'f'; break;
          case '\n': *p++ = 'n'; break;
          case '\r': *p++ = 'r'; break;
          case '\t': *p++ = 't'; break;
          default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = kHex[c >> 4];
            *p++ = kHex[c & 15];
        }
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8: copied when well-formed, else U+FFFD for its lead byte.
    if (const size_t length = Utf8SequenceLength(in + i, n - i); length != 0) {
      std::memcpy(p, in + i, length);
      p += length;
      i += length;
    } else {
      std::memcpy(p, "\\ufffd", 6);
      p += 6;
      ++i;
    }
  }
  *p++ = '"';
  return p;
}

// Appends through a resize-then-trim window of at most `bound` characters.
template <typename Fn>
void AppendBounded(std::string* out, size_t bound, Fn&& fn) {
  const size_t at = out->size();
  out->resize(at + bound);
  char* begin = out->data() + at;
  char* end = fn(begin);
  out->resize(static_cast<size_t>(end - out->data()));
}

// Makes the writer account for one value (or key) that the caller then appends
// to the output directly.
void BeginRaw(JsonWriter& writer, rapidjson::Type type) { writer.RawValue("", 0, type); }

constexpr size_t kMaxFloatChars = 16;   // "-1.1754944e-38" plus ".0" margin.
constexpr size_t kMaxDoubleChars = 26;  // "-2.2250738585072014e-308" plus margin.
constexpr size_t kMaxIntChars = 20;     // "-9223372036854775808", "18446744073709551615".

template <typename F>
char* WriteFloating(F value, char* p) {
  if (std::isnan(value)) {
    std::memcpy(p, "\"NaN\"", 5);
    return p + 5;
  }
  if (std::isinf(value)) {
    if (value < 0) {
      std::memcpy(p, "\"-Infinity\"", 11);
      return p + 11;
    }
    std::memcpy(p, "\"Infinity\"", 10);
    return p + 10;
  }
  char* end = std::to_chars(p, p + kMaxDoubleChars, value).ptr;
  // Keep integral values looking like floating point ("3.0", not "3"), as
  // most JSON writers do, so that clients without the datatype still see a float.
  bool plain = true;
  for (char* q = p; q < end; ++q) {
    if (*q == '.' || *q == 'e') {
      plain = false;
      break;
    }
  }
  if (plain) {
    *end++ = '.';
    *end++ = '0';
  }
  return end;
}

template <typename T>
char* WriteInteger(T value, char* p) {
  return std::to_chars(p, p + kMaxIntChars + 1, value).ptr;
}

// Upper bound of the characters one element of `type` takes in a JSON array
// (separator included). BYTES is bounded per byte separately.
size_t MaxElementChars(DataType type) {
  switch (type) {
    case DataType::kBool: return 6;
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32: return kMaxFloatChars + 1;
    case DataType::kFp64: return kMaxDoubleChars + 1;
    default: return kMaxIntChars + 1;
  }
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
      p = WriteFloating(value, p);
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

// A tensor about to be written: either a response output or a classification
// result made from one.
struct OutputView {
  std::string_view name;
  DataType type;
  std::span<const int64_t> shape;
  std::span<const std::byte> data;
  int64_t count;
  bool binary;
};

double ElementAsDouble(DataType type, const std::byte* data, size_t i) {
  switch (type) {
    case DataType::kBool: return Load<uint8_t>(data + i) != 0 ? 1.0 : 0.0;
    case DataType::kUint8: return Load<uint8_t>(data + i);
    case DataType::kUint16: return Load<uint16_t>(data + 2 * i);
    case DataType::kUint32: return Load<uint32_t>(data + 4 * i);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(data + 8 * i));
    case DataType::kInt8: return Load<int8_t>(data + i);
    case DataType::kInt16: return Load<int16_t>(data + 2 * i);
    case DataType::kInt32: return Load<int32_t>(data + 4 * i);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(data + 8 * i));
    case DataType::kFp16: return HalfToFloat(Load<uint16_t>(data + 2 * i));
    case DataType::kBf16: return Bfloat16ToFloat(Load<uint16_t>(data + 2 * i));
    case DataType::kFp32: return Load<float>(data + 4 * i);
    case DataType::kFp64: return Load<double>(data + 8 * i);
    default: return 0;
  }
}

// The class score as text, in the shortest form of the tensor's own type.
void AppendScore(DataType type, const std::byte* data, size_t i, std::string* out) {
  char buf[64];
  char* end = buf;
  switch (type) {
    case DataType::kUint64: end = std::to_chars(buf, buf + 64, Load<uint64_t>(data + 8 * i)).ptr; break;
    case DataType::kInt64: end = std::to_chars(buf, buf + 64, Load<int64_t>(data + 8 * i)).ptr; break;
    case DataType::kFp64: end = std::to_chars(buf, buf + 64, Load<double>(data + 8 * i)).ptr; break;
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32:
      end = std::to_chars(buf, buf + 64, static_cast<float>(ElementAsDouble(type, data, i))).ptr;
      break;
    default:
      end = std::to_chars(buf, buf + 64, static_cast<int64_t>(ElementAsDouble(type, data, i))).ptr;
  }
  out->append(buf, end);
}

absl::Status Classify(const Tensor& tensor, uint32_t k, std::span<const std::string> labels,
                      std::vector<std::byte>* out, Shape* shape) {
  if (tensor.type == DataType::kBytes) {
    return Invalid("output '", tensor.name, "': classification needs a numeric output, not BYTES");
  }
  const size_t total = tensor.data.size() / DataTypeSize(tensor.type);
  size_t rows = 1;
  if (tensor.shape.size() >= 2) rows = static_cast<size_t>(tensor.shape[0]);
  const size_t classes = rows == 0 ? 0 : total / rows;
  const size_t top = std::min<size_t>(k, classes);
  shape->clear();
  if (tensor.shape.size() >= 2) shape->push_back(static_cast<int64_t>(rows));
  shape->push_back(static_cast<int64_t>(top));
  std::vector<size_t> order(classes);
  std::vector<double> scores(classes);
  std::string text;
  for (size_t row = 0; row < rows; ++row) {
    for (size_t c = 0; c < classes; ++c) {
      scores[c] = ElementAsDouble(tensor.type, tensor.data.data(), row * classes + c);
    }
    std::iota(order.begin(), order.end(), size_t{0});
    // Highest first, ties by lower index, NaN last.
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&scores](size_t a, size_t b) {
                        const double x = scores[a], y = scores[b];
                        const bool xn = std::isnan(x), yn = std::isnan(y);
                        if (xn != yn) return yn;
                        if (!xn && x != y) return x > y;
                        return a < b;
                      });
    for (size_t j = 0; j < top; ++j) {
      const size_t c = order[j];
      text.clear();
      AppendScore(tensor.type, tensor.data.data(), row * classes + c, &text);
      text.push_back(':');
      char buf[24];
      text.append(buf, std::to_chars(buf, buf + sizeof(buf), c).ptr);
      if (c < labels.size()) {
        text.push_back(':');
        text.append(labels[c]);
      }
      AppendBytesElement(text, out);
    }
  }
  return absl::OkStatus();
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

absl::StatusOr<std::optional<uint64_t>> UnsignedParameter(const Parameters& parameters,
                                                          std::string_view key,
                                                          std::string_view where, uint64_t max) {
  const ParameterValue* value = parameters.Find(key);
  if (value == nullptr) return std::optional<uint64_t>();
  if (const auto* i = std::get_if<int64_t>(value)) {
    if (*i >= 0 && static_cast<uint64_t>(*i) <= max) return std::optional<uint64_t>(*i);
    return Invalid(where, " parameter '", key, "' is ", *i, "; it must be between 0 and ", max);
  }
  if (const auto* u = std::get_if<uint64_t>(value)) {
    if (*u <= max) return std::optional<uint64_t>(*u);
    return Invalid(where, " parameter '", key, "' is ", *u, "; it must be between 0 and ", max);
  }
  return Invalid(where, " parameter '", key, "' must be a non-negative integer");
}

absl::StatusOr<bool> BoolParameter(const Parameters& parameters, std::string_view key,
                                   std::string_view where) {
  const ParameterValue* value = parameters.Find(key);
  if (value == nullptr) return false;
  if (const auto* b = std::get_if<bool>(value)) return *b;
  return Invalid(where, " parameter '", key, "' must be a boolean");
}

// ---------------------------------------------------------------------------
// Public helpers.

void AppendJsonString(std::string_view s, std::string* out) {
  AppendBounded(out, 2 + 6 * s.size(), [s](char* p) { return EscapeJsonString(s, p); });
}

void WriteJsonString(JsonWriter& writer, std::string_view s) {
  BeginRaw(writer, rapidjson::kStringType);
  AppendJsonString(s, writer.output());
}

void WriteParameters(JsonWriter& writer, const Parameters& parameters) {
  writer.StartObject();
  for (const auto& [key, value] : parameters) {
    WriteJsonString(writer, key);
    std::visit(
        [&writer](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            writer.Bool(v);
          } else if constexpr (std::is_same_v<V, int64_t>) {
            writer.Int64(v);
          } else if constexpr (std::is_same_v<V, uint64_t>) {
            writer.Uint64(v);
          } else if constexpr (std::is_same_v<V, double>) {
            BeginRaw(writer, rapidjson::kNumberType);
            AppendBounded(writer.output(), kMaxDoubleChars + 12,
                          [v](char* p) { return WriteFloating(v, p); });
          } else {
            WriteJsonString(writer, v);
          }
        },
        value);
  }
  writer.EndObject();
}

std::string EncodeError(std::string_view message) {
  std::string out;
  out.reserve(16 + message.size());
  out.append("{\"error\":");
  AppendJsonString(message, &out);
  out.push_back('}');
  return out;
}

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
    return Invalid("request body must be a JSON object, got ", KindName(root.type()));
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
        return Invalid("\"id\" must be a string, got ", KindName(field.value.type()));
      }
      request.id = std::string(id);
    } else if (field.key == "parameters") {
      RETURN_IF_ERROR(ParseParameters(field.value, "request", &request.parameters));
    } else if (field.key == "outputs") {
      RETURN_IF_ERROR(ParseOutputs(field.value, &request));
    }
  }
  if (!has_inputs) return Invalid("request has no \"inputs\"");

  ASSIGN_OR_RETURN(request.binary_data_output,
                   BoolParameter(request.parameters, "binary_data_output", "request"));
  ASSIGN_OR_RETURN(std::optional<uint64_t> priority,
                   UnsignedParameter(request.parameters, "priority", "request",
                                     std::numeric_limits<uint32_t>::max()));
  request.priority = static_cast<uint32_t>(priority.value_or(0));
  ASSIGN_OR_RETURN(std::optional<uint64_t> timeout,
                   UnsignedParameter(request.parameters, "timeout", "request",
                                     std::numeric_limits<int64_t>::max()));
  if (timeout && *timeout > 0) {
    request.deadline = now + absl::Microseconds(static_cast<int64_t>(*timeout));
  }

  dom::array inputs;
  if (inputs_value.get_array().get(inputs) != simdjson::SUCCESS) {
    return Invalid("\"inputs\" must be an array, got ", KindName(inputs_value.type()));
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
  struct Planned {
    Planned(const Tensor* t, bool b, uint32_t k) : tensor(t), binary(b), classification(k) {
      data = t->data;
    }
    const Tensor* tensor;
    bool binary;
    uint32_t classification;
    int64_t count = 0;
    Shape shape;  // Classification result shape.
    std::span<const std::byte> data;
  };
  absl::InlinedVector<Planned, 4> plan;
  if (request.outputs.empty()) {
    plan.reserve(response.outputs.size());
    for (const Tensor& tensor : response.outputs) {
      plan.emplace_back(&tensor, request.binary_data_output, 0);
    }
  } else {
    plan.reserve(request.outputs.size());
    for (const RequestedOutput& wanted : request.outputs) {
      const Tensor* found = nullptr;
      for (const Tensor& tensor : response.outputs) {
        if (tensor.name == wanted.name) {
          found = &tensor;
          break;
        }
      }
      if (found == nullptr) {
        return absl::InternalError(
            StrCat("requested output '", wanted.name, "' is missing from the model's response"));
      }
      plan.emplace_back(found, wanted.binary_data || request.binary_data_output,
                        wanted.classification);
    }
  }

  size_t estimate = 128 + response.model_name.size() * 6 + response.model_version.size() * 6 +
                    response.id.size() * 6;
  for (const auto& [key, value] : response.parameters) {
    estimate += 48 + key.size() * 6;
    if (const auto* s = std::get_if<std::string>(&value)) estimate += s->size() * 6;
  }
  for (Planned& item : plan) {
    const Tensor& tensor = *item.tensor;
    RETURN_IF_ERROR(CheckOutput(tensor, &item.count));
    if (item.classification > 0) {
      std::span<const std::string> labels;
      if (options.labels) labels = options.labels(tensor.name);
      std::vector<std::byte> bytes;
      RETURN_IF_ERROR(Classify(tensor, item.classification, labels, &bytes, &item.shape));
      item.count = 1;
      for (int64_t d : item.shape) item.count *= d;
      encoded.owned.push_back(std::move(bytes));
      const auto& stored = encoded.owned.back();
      item.data = std::span<const std::byte>(stored.data(), stored.size());
    }
    const DataType type = item.classification > 0 ? DataType::kBytes : tensor.type;
    estimate += 96 + tensor.name.size() * 6 + tensor.shape.size() * (kMaxIntChars + 1);
    if (!item.binary) estimate += DataBound(type, item.data.size(), item.count);
  }
  encoded.json.reserve(estimate);

  JsonStringStream stream(&encoded.json);
  JsonWriter writer(stream);
  writer.StartObject();
  writer.Key("model_name");
  WriteJsonString(writer, response.model_name);
  writer.Key("model_version");
  WriteJsonString(writer, response.model_version);
  if (!response.id.empty()) {
    writer.Key("id");
    WriteJsonString(writer, response.id);
  }
  if (!response.parameters.empty()) {
    writer.Key("parameters");
    WriteParameters(writer, response.parameters);
  }
  writer.Key("outputs");
  writer.StartArray();
  for (const Planned& item : plan) {
    const Tensor& tensor = *item.tensor;
    const bool classified = item.classification > 0;
    const DataType type = classified ? DataType::kBytes : tensor.type;
    std::span<const int64_t> shape =
        classified ? std::span<const int64_t>(item.shape) : std::span<const int64_t>(tensor.shape);
    writer.StartObject();
    writer.Key("name");
    WriteJsonString(writer, tensor.name);
    writer.Key("datatype");
    const std::string_view type_name = DataTypeName(type);
    writer.String(type_name.data(), static_cast<rapidjson::SizeType>(type_name.size()));
    writer.Key("shape");
    writer.StartArray();
    for (int64_t dim : shape) writer.Int64(dim);
    writer.EndArray();
    if (item.binary) {
      writer.Key("parameters");
      writer.StartObject();
      writer.Key("binary_data_size");
      writer.Uint64(item.data.size());
      writer.EndObject();
      encoded.binary.push_back(item.data);
      encoded.binary_size += item.data.size();
    } else {
      writer.Key("data");
      BeginRaw(writer, rapidjson::kArrayType);
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
