// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/json_tensor_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/strings.h"

namespace ortserve::frontend::rest_internal {

namespace dom = simdjson::dom;

std::string_view JsonKindName(dom::element_type type) {
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

namespace {

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}

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

std::string_view ElementKind(dom::element e) { return JsonKindName(e.type()); }

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

}  // namespace

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

}  // namespace ortserve::frontend::rest_internal
