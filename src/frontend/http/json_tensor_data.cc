// SPDX-License-Identifier: Apache-2.0
// The JSON part of an infer request, read with simdjson's on-demand API: the
// walk of one input's "data" value straight into its tensor's bytes. The
// request's fields are read in json_request_parser.cc, a large body's numeric
// runs in json_tensor_runs.cc.
//
// simdjson's first stage (finding the tokens) runs in its library, on the
// kernel it picks for the CPU at run time (AVX2, AVX-512, ...). The on-demand
// walk compiled here is its portable kernel: it parses the numbers, which is
// scalar work in every kernel.
#include "frontend/http/json_tensor_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/json_tensor_data_internal.h"

namespace ortserve::frontend::rest_internal {

absl::Status NotJson(simdjson::error_code error) {
  return absl::InvalidArgumentError(StrCat("request body is not valid JSON: ", simdjson::error_message(error)));
}

namespace {

template <typename Value>
absl::StatusOr<std::string_view> KindName(Value& value) {
  ondemand::json_type type;
  if (auto error = value.type().get(type)) return NotJson(error);
  switch (type) {
    case ondemand::json_type::array: return "an array";
    case ondemand::json_type::object: return "an object";
    case ondemand::json_type::string: return "a string";
    case ondemand::json_type::boolean: return "a boolean";
    case ondemand::json_type::null: return "null";
    case ondemand::json_type::number: {
      ondemand::number_type number;
      if (auto error = value.get_number_type().get(number)) return NotJson(error);
      return number == ondemand::number_type::floating_point_number ? "a number" : "an integer";
    }
  }
  return "a value";
}

}  // namespace

absl::StatusOr<std::string_view> JsonKindName(ondemand::value& value) { return KindName(value); }
absl::StatusOr<std::string_view> JsonKindName(ondemand::document& document) { return KindName(document); }

absl::Status SkipValue(ondemand::value value, int depth) {
  if (depth > kMaxJsonDepth) return NotJson(simdjson::DEPTH_ERROR);
  ondemand::json_type type;
  if (auto error = value.type().get(type)) return NotJson(error);
  switch (type) {
    case ondemand::json_type::array: {
      ondemand::array array;
      if (auto error = value.get_array().get(array)) return NotJson(error);
      for (auto child : array) {
        ondemand::value element;
        if (auto error = child.get(element)) return NotJson(error);
        RETURN_IF_ERROR(SkipValue(element, depth + 1));
      }
      return absl::OkStatus();
    }
    case ondemand::json_type::object: {
      ondemand::object object;
      if (auto error = value.get_object().get(object)) return NotJson(error);
      for (auto result : object) {
        ondemand::field field;
        std::string_view key;
        if (auto error = std::move(result).get(field)) return NotJson(error);
        if (auto error = field.unescaped_key().get(key)) return NotJson(error);
        RETURN_IF_ERROR(SkipValue(field.value(), depth + 1));
      }
      return absl::OkStatus();
    }
    case ondemand::json_type::number: {
      ondemand::number number;
      if (auto error = value.get_number().get(number)) return NotJson(error);
      return absl::OkStatus();
    }
    case ondemand::json_type::string: {
      std::string_view s;
      if (auto error = value.get_string().get(s)) return NotJson(error);
      return absl::OkStatus();
    }
    case ondemand::json_type::boolean: {
      bool b;
      if (auto error = value.get_bool().get(b)) return NotJson(error);
      return absl::OkStatus();
    }
    case ondemand::json_type::null: {
      bool null = false;
      if (auto error = value.is_null().get(null)) return NotJson(error);
      if (!null) return NotJson(simdjson::N_ATOM_ERROR);
      return absl::OkStatus();
    }
  }
  return NotJson(simdjson::TAPE_ERROR);
}

namespace {

// What a visitor did with one value of a `data` array.
enum class Step {
  kNext,   // It was a leaf and is consumed (or counted past the shape).
  kStop,   // Something was wrong: the visitor holds the status.
  kArray,  // It is an array, not consumed: the walker descends into it.
};

// Walks the leaves of `data` in row-major order, handing each value to
// visitor.Leaf(value, depth) (which tries its type's fast getter first and
// reports arrays back, so a flat array of numbers costs one getter call per
// element). Returns false when stopped; the visitor's status says why.
template <typename Visitor>
bool WalkElements(ondemand::array array, int depth, Visitor& visitor) {
  for (auto child : array) {
    ondemand::value element;
    if (auto error = child.get(element)) return visitor.Fail(NotJson(error));
    switch (visitor.Leaf(element, depth + 1)) {
      case Step::kNext: break;
      case Step::kStop: return false;
      case Step::kArray: {
        if (depth + 1 > kMaxJsonDepth) return visitor.Fail(NotJson(simdjson::DEPTH_ERROR));
        ondemand::array inner;
        if (auto error = element.get_array().get(inner)) return visitor.Fail(NotJson(error));
        if (!WalkElements(inner, depth + 1, visitor)) return false;
        break;
      }
    }
  }
  return true;
}

template <typename Visitor>
bool Walk(Data& data, int depth, Visitor& visitor) {
  if (data.is_root_array) {
    if (depth > kMaxJsonDepth) return visitor.Fail(NotJson(simdjson::DEPTH_ERROR));
    return WalkElements(data.root_array, depth, visitor);
  }
  switch (visitor.Leaf(data.value, depth)) {
    case Step::kNext: return true;
    case Step::kStop: return false;
    case Step::kArray: {
      if (depth > kMaxJsonDepth) return visitor.Fail(NotJson(simdjson::DEPTH_ERROR));
      ondemand::array array;
      if (auto error = data.value.get_array().get(array)) return visitor.Fail(NotJson(error));
      return WalkElements(array, depth, visitor);
    }
  }
  return false;
}

// What every visitor shares: the element index, the expected count, and the
// counting of leaves past it (for the mismatch message).
class VisitorBase {
 public:
  VisitorBase(std::string_view name, DataType type, int64_t count) : name_(name), type_(type), count_(count) {}

  bool Fail(absl::Status status) {
    status_ = std::move(status);
    return false;
  }
  const absl::Status& status() const { return status_; }
  int64_t index() const { return index_; }
  bool too_many() const { return index_ > count_; }

 protected:
  Step Stop(absl::Status status) {
    status_ = std::move(status);
    return Step::kStop;
  }
  // Element `index_` is wrong for the type: `reason` says how.
  template <typename... Args>
  Step Bad(const Args&... reason) {
    return Stop(Invalid("input '", name_, "': element ", index_, " ", reason...));
  }
  // A leaf past the shape's count (or any leaf, when only counting): checked to
  // be well-formed and counted, not converted.
  Step Count(ondemand::value& value, int depth) {
    ondemand::json_type type;
    if (auto error = value.type().get(type)) return Stop(NotJson(error));
    if (type == ondemand::json_type::array) return Step::kArray;
    if (absl::Status skipped = SkipValue(value, depth); !skipped.ok()) return Stop(std::move(skipped));
    ++index_;
    return Step::kNext;
  }
  // A value the type's fast getter refused: an array to descend into, or a
  // leaf of the wrong kind (checked to be well-formed first, as a malformed
  // body is reported as such).
  template <typename... Args>
  Step WrongKind(ondemand::value& value, int depth, const Args&... needs) {
    auto kind = JsonKindName(value);
    if (!kind.ok()) return Stop(kind.status());
    if (*kind == std::string_view("an array")) return Step::kArray;
    if (absl::Status skipped = SkipValue(value, depth); !skipped.ok()) return Stop(std::move(skipped));
    return Bad("is ", *kind, "; ", needs...);
  }

  std::string_view name_;
  DataType type_;
  int64_t count_;
  int64_t index_ = 0;
  absl::Status status_;
};

// Only counts the leaves.
class CountVisitor : public VisitorBase {
 public:
  CountVisitor() : VisitorBase({}, DataType::kInvalid, 0) {}
  Step Leaf(ondemand::value& value, int depth) { return Count(value, depth); }
};

// Parses numbers or booleans of type T into `out` (room for count elements).
template <typename T>
class FixedVisitor : public VisitorBase {
 public:
  FixedVisitor(std::string_view name, DataType type, int64_t count, std::byte* out)
      : VisitorBase(name, type, count), out_(out) {}

  [[gnu::always_inline]] Step Leaf(ondemand::value& value, int depth) {
    if (index_ >= count_) [[unlikely]] {
      if (index_ == count_) ++index_;  // index_ > count_ from now on: too_many().
      return Count(value, depth);
    }
    if constexpr (std::is_same_v<T, bool>) {
      bool b;
      if (value.get_bool().get(b) == simdjson::SUCCESS) [[likely]] return Store(b);
      return WrongKind(value, depth, "BOOL needs true or false");
    } else if constexpr (std::is_floating_point_v<T>) {
      double d;
      if (value.get_double().get(d) == simdjson::SUCCESS) [[likely]] return StoreFloat(d);
      return SlowFloat(value, depth);
    } else {
      int64_t v;
      if (value.get_int64().get(v) == simdjson::SUCCESS) [[likely]] return StoreInteger(v);
      return SlowInteger(value, depth);
    }
  }

 private:
  [[gnu::always_inline]] Step Store(T value) {
    std::memcpy(out_ + static_cast<size_t>(index_) * sizeof(T), &value, sizeof(T));
    ++index_;
    return Step::kNext;
  }

  [[gnu::always_inline]] Step StoreFloat(double d) {
    if constexpr (std::is_same_v<T, float>) {
      // Finite doubles at or past the midpoint between FLT_MAX and 2^128 round
      // to infinity: the value does not fit.
      if (std::isfinite(d) && std::fabs(d) >= 0x1.ffffffp+127) [[unlikely]] {
        return Bad(d, " is out of range for FP32");
      }
    }
    return Store(static_cast<T>(d));
  }

  Step SlowFloat(ondemand::value& value, int depth) {
    ondemand::json_type type;
    if (auto error = value.type().get(type)) return Stop(NotJson(error));
    if (type == ondemand::json_type::number) {
      // get_double refused it: a malformed number.
      ondemand::number number;
      if (auto error = value.get_number().get(number)) return Stop(NotJson(error));
      return StoreFloat(number.as_double());
    }
    if (type == ondemand::json_type::string) {
      std::string_view s;
      if (auto error = value.get_string().get(s)) return Stop(NotJson(error));
      if (s == "NaN") return Store(std::numeric_limits<T>::quiet_NaN());
      if (s == "Infinity") return Store(std::numeric_limits<T>::infinity());
      if (s == "-Infinity") return Store(-std::numeric_limits<T>::infinity());
      return Bad("is the string \"", s, "\"; ", DataTypeName(type_),
                 " needs a number (or \"NaN\", \"Infinity\", \"-Infinity\")");
    }
    return WrongKind(value, depth, DataTypeName(type_), " needs a number");
  }

  [[gnu::always_inline]] Step StoreInteger(int64_t v) {
    if constexpr (std::is_signed_v<T>) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) [[unlikely]] {
        return Bad(v, " is out of range for ", DataTypeName(type_));
      }
    } else {
      if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) [[unlikely]] {
        return Bad(v, " is out of range for ", DataTypeName(type_));
      }
    }
    return Store(static_cast<T>(v));
  }

  Step SlowInteger(ondemand::value& value, int depth) {
    ondemand::json_type type;
    if (auto error = value.type().get(type)) return Stop(NotJson(error));
    if (type != ondemand::json_type::number) {
      return WrongKind(value, depth, DataTypeName(type_), " needs integers");
    }
    ondemand::number number;
    if (auto error = value.get_number().get(number)) return Stop(NotJson(error));
    switch (number.get_number_type()) {
      case ondemand::number_type::signed_integer: return StoreInteger(number.get_int64());
      case ondemand::number_type::unsigned_integer:
        // Only values above INT64_MAX are unsigned.
        if constexpr (std::is_same_v<T, uint64_t>) return Store(number.get_uint64());
        return Bad(number.get_uint64(), " is out of range for ", DataTypeName(type_));
      case ondemand::number_type::floating_point_number:
        return Bad(number.get_double(), " is not an integer; ", DataTypeName(type_), " needs integers");
    }
    return Stop(NotJson(simdjson::NUMBER_ERROR));
  }

  std::byte* out_;
};

// Packs strings in core/tensor.h's BYTES layout (4-byte little-endian length,
// then the bytes) into one growing buffer.
class BytesVisitor : public VisitorBase {
 public:
  BytesVisitor(std::string_view name, int64_t count, std::vector<std::byte>* out)
      : VisitorBase(name, DataType::kBytes, count), out_(out) {}

  Step Leaf(ondemand::value& value, int depth) {
    if (index_ >= count_) [[unlikely]] {
      if (index_ == count_) ++index_;
      return Count(value, depth);
    }
    std::string_view s;
    if (value.get_string().get(s) != simdjson::SUCCESS) return WrongKind(value, depth, "BYTES needs strings");
    if (s.size() > std::numeric_limits<uint32_t>::max()) return Bad("is longer than 4 GiB");
    const auto length = static_cast<uint32_t>(s.size());
    const size_t at = out_->size();
    out_->resize(at + 4 + s.size());
    std::byte* p = out_->data() + at;
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
    if (!s.empty()) std::memcpy(p + 4, s.data(), s.size());
    ++index_;
    return Step::kNext;
  }

 private:
  std::vector<std::byte>* out_;
};

absl::Status CountMismatch(std::string_view name, const Shape& shape, int64_t expected, int64_t found) {
  return Invalid("input '", name, "': shape ", ShapeToString(shape), " needs ", expected,
                 " elements, but data has ", found);
}

// The visitor's verdict once the walk ended: its error, a count mismatch, or
// OK. Past the shape's count the walk went on counting, so `found` is exact.
absl::Status Verdict(bool completed, const VisitorBase& visitor, std::string_view name, const Shape& shape,
                     int64_t count) {
  if (!completed) return visitor.status();
  const int64_t found = visitor.too_many() ? visitor.index() - 1 : visitor.index();
  if (found != count) return CountMismatch(name, shape, count, found);
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<OwnedBytes> FillFixed(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                     Data& data, int depth) {
  const std::optional<uint64_t> size = CheckedMul<uint64_t>(static_cast<uint64_t>(count), sizeof(T));
  if (!size || *size > std::numeric_limits<size_t>::max()) {
    return Invalid("input '", name, "': shape ", ShapeToString(shape), " is too large");
  }
  // One allocation for the control block and the bytes; not zero-filled
  // because every byte is written (or the buffer is dropped).
  std::shared_ptr<std::byte[]> buffer = std::make_shared_for_overwrite<std::byte[]>(static_cast<size_t>(*size));
  FixedVisitor<T> visitor(name, type, count, buffer.get());
  const bool completed = Walk(data, depth, visitor);
  RETURN_IF_ERROR(Verdict(completed, visitor, name, shape, count));
  OwnedBytes owned;
  owned.data = std::span<const std::byte>(buffer.get(), static_cast<size_t>(*size));
  owned.holder = std::move(buffer);
  return owned;
}

absl::StatusOr<OwnedBytes> FillBytes(std::string_view name, const Shape& shape, int64_t count, Data& data,
                                     int depth) {
  // Grown as the strings are read: the shape's count is not trusted to size it.
  auto buffer = std::make_shared<std::vector<std::byte>>();
  BytesVisitor visitor(name, count, buffer.get());
  const bool completed = Walk(data, depth, visitor);
  RETURN_IF_ERROR(Verdict(completed, visitor, name, shape, count));
  OwnedBytes owned;
  owned.data = std::span<const std::byte>(buffer->data(), buffer->size());
  owned.holder = std::move(buffer);
  return owned;
}

}  // namespace

absl::StatusOr<OwnedBytes> FillFromValue(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                         Data& data, size_t json_size, int depth) {
  // Every element takes at least one byte of JSON: refuse before allocating a
  // buffer for a shape the body cannot possibly fill.
  if (static_cast<uint64_t>(count) > json_size) {
    CountVisitor counter;
    if (!Walk(data, depth, counter)) return counter.status();
    return CountMismatch(name, shape, count, counter.index());
  }
  switch (type) {
    case DataType::kBool: return FillFixed<bool>(name, type, shape, count, data, depth);
    case DataType::kUint8: return FillFixed<uint8_t>(name, type, shape, count, data, depth);
    case DataType::kUint16: return FillFixed<uint16_t>(name, type, shape, count, data, depth);
    case DataType::kUint32: return FillFixed<uint32_t>(name, type, shape, count, data, depth);
    case DataType::kUint64: return FillFixed<uint64_t>(name, type, shape, count, data, depth);
    case DataType::kInt8: return FillFixed<int8_t>(name, type, shape, count, data, depth);
    case DataType::kInt16: return FillFixed<int16_t>(name, type, shape, count, data, depth);
    case DataType::kInt32: return FillFixed<int32_t>(name, type, shape, count, data, depth);
    case DataType::kInt64: return FillFixed<int64_t>(name, type, shape, count, data, depth);
    case DataType::kFp32: return FillFixed<float>(name, type, shape, count, data, depth);
    case DataType::kFp64: return FillFixed<double>(name, type, shape, count, data, depth);
    case DataType::kBytes: return FillBytes(name, shape, count, data, depth);
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
