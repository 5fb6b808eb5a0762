// SPDX-License-Identifier: Apache-2.0
// The JSON part of an infer request, read with simdjson's on-demand API.
//
// simdjson's first stage (finding the tokens) runs in its library, on the
// kernel it picks for the CPU at run time (AVX2, AVX-512, ...). The on-demand
// walk compiled here is its portable kernel: it parses the numbers, which is
// scalar work in every kernel.
#include "frontend/http/json_tensor_data.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fast_float/fast_float.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/kserve/reserved_parameters.h"

namespace ortserve::frontend::rest_internal {

absl::Status NotJson(simdjson::error_code error) {
  return absl::InvalidArgumentError(StrCat("request body is not valid JSON: ", simdjson::error_message(error)));
}

}  // namespace ortserve::frontend::rest_internal

namespace ortserve::frontend::rest_internal {

namespace ondemand = simdjson::ondemand;

namespace {



template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}




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

// The `data` value a visitor walks: a value inside the document, or the root
// array of a document of its own (a large body's run, json_tensor_data.h),
// which on-demand reads through the array only (its scalar getters are for
// values inside a document).
struct Data {
  ondemand::value value;
  ondemand::array root_array;
  bool is_root_array = false;
};

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



// Nesting depths of the values the decoder reads (the body's object is 1).
constexpr int kFieldDepth = 2;   // A field of the body: "inputs", "outputs", ...
constexpr int kInputDepth = 3;   // An element of "inputs" or "outputs".
constexpr int kTensorDepth = 4;  // A field of one: "shape", "data", "parameters", ...

// ---------------------------------------------------------------------------
// Large bodies: numeric runs.
//
// simdjson's first stage indexes every token of the text it is given (4 bytes
// each: for "0,0,0,..." twice the text). In a large body nearly all of that is
// "data" arrays of numbers, which need no index: a body of 8 MiB or more is
// scanned once for them ("runs": a "data" key's array holding only numbers,
// true/false/null and nested arrays, of 16 KiB or more), each run is replaced
// by "[]" in a copy of the rest (the envelope, which simdjson parses), and the
// run is parsed straight from the body into its tensor. Anything unusual in a
// run (a value of the wrong kind, a count or range error, malformed JSON) is
// handed to simdjson on that run alone, so messages are the same either way.
// The price is CPU: about 1.6x the instructions per number of the simdjson
// path (a scalar scan for the runs, then fast_float per number), paid only by
// bodies large enough for their memory to matter.

#ifdef ORTSERVE_JSON_SMALL_RUNS  // The fuzz build: small inputs take this path too.
constexpr size_t kRunBodyBytes = 64;
constexpr size_t kMinRunBytes = 4;
#else
constexpr size_t kRunBodyBytes = size_t{8} << 20;
constexpr size_t kMinRunBytes = size_t{16} << 10;
#endif

struct Run {
  size_t envelope_offset = 0;  // Where its "[]" starts in the envelope.
  const char* begin = nullptr;  // Its '[' in the body.
  const char* end = nullptr;    // Just past its ']'.
  bool read = false;
};

struct Context {
  size_t json_size = 0;                 // The whole JSON part of the body.
  const char* envelope = nullptr;       // The text simdjson parses.
  const char* buffer_end = nullptr;     // End of the readable body (for a run's own parse).
  std::vector<Run>* runs = nullptr;     // Sorted by envelope_offset; null: none.
};

inline bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// What FindRuns does with each byte outside strings.
enum class RunChar : uint8_t {
  kValue,    // Part of a number or true/false/null, a comma or whitespace: may be in a run.
  kSpecial,  // " : [ ] { }: handled one by one.
  kOther,    // Anything else: the arrays it is in are not runs.
};

constexpr auto kRunChars = [] {
  std::array<RunChar, 256> table{};
  for (auto& c : table) c = RunChar::kOther;
  for (unsigned char c : std::string_view("0123456789-+.eEtrufalsn,\t\n\r ")) table[c] = RunChar::kValue;
  for (unsigned char c : std::string_view("\":[]{}")) table[c] = RunChar::kSpecial;
  return table;
}();

// Finds the runs of `json` (see above). Gives up (no runs; simdjson then reads
// the whole body and reports what is wrong) on brackets that do not match.
std::vector<Run> FindRuns(const char* json, size_t size) {
  struct Open {
    const char* begin;
    bool array;
    bool data_key;
  };
  std::vector<Run> runs;
  std::vector<Open> open;
  size_t first_pure = 0;  // open[i] for i < first_pure holds something a run cannot.
  bool after_data_key = false;  // The last tokens were "data" and ':'.
  const char* string_begin = nullptr;
  std::string_view last_string;
  char previous = 0;  // The last character outside strings and whitespace.
  const char* const end = json + size;
  for (const char* p = json; p < end; ++p) {
    // Most bytes of a large body are digits: skip them in a tight loop.
    // Most bytes of a large body are numbers and commas: skip them in a tight
    // loop, then look back for the last of them that was not whitespace.
    if (kRunChars[static_cast<unsigned char>(*p)] == RunChar::kValue) {
      const char* last = p;
      while (last + 1 < end && kRunChars[static_cast<unsigned char>(last[1])] == RunChar::kValue) ++last;
      const char* q = last;
      while (q >= p && IsJsonSpace(*q)) --q;
      if (q >= p) previous = *q == ',' ? ',' : 'v';
      p = last;
      continue;
    }
    const char c = *p;
    switch (c) {
      case '"': {
        string_begin = p + 1;
        for (++p; p < end && *p != '"'; ++p) {
          if (*p == '\\') ++p;
        }
        if (p >= end) return {};
        last_string = std::string_view(string_begin, static_cast<size_t>(p - string_begin));
        first_pure = open.size();
        previous = '"';
        break;
      }
      case ':':
        after_data_key = previous == '"' && last_string == "data";
        first_pure = open.size();
        previous = ':';
        break;
      case '[':
        open.push_back({p, true, previous == ':' && after_data_key});
        previous = '[';
        break;
      case ']': {
        if (open.empty() || !open.back().array) return {};
        const Open top = open.back();
        const bool pure = open.size() - 1 >= first_pure;
        open.pop_back();
        first_pure = std::min(first_pure, open.size());
        if (pure && top.data_key && static_cast<size_t>(p + 1 - top.begin) >= kMinRunBytes) {
          runs.push_back({0, top.begin, p + 1, false});
        }
        previous = ']';
        break;
      }
      case '{':
        open.push_back({p, false, false});
        first_pure = open.size();
        previous = '{';
        break;
      case '}':
        if (open.empty() || open.back().array) return {};
        open.pop_back();
        first_pure = std::min(first_pure, open.size());
        previous = '}';
        break;
      case ',':
        previous = ',';
        break;
      default:  // RunChar::kOther.
        first_pure = open.size();
        previous = 'v';
        break;
    }
  }
  if (!open.empty()) return {};
  return runs;
}

// The end of the JSON number at `p`, or null when there is none; *integer:
// it has neither fraction nor exponent.
const char* ScanNumber(const char* p, const char* end, bool* integer) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const char* q = p;
  if (q < end && *q == '-') ++q;
  if (q >= end) return nullptr;
  if (*q == '0') {
    ++q;
  } else if (*q >= '1' && *q <= '9') {
    while (q < end && digit(*q)) ++q;
  } else {
    return nullptr;
  }
  *integer = true;
  if (q < end && *q == '.') {
    const char* digits = ++q;
    while (q < end && digit(*q)) ++q;
    if (q == digits) return nullptr;
    *integer = false;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    ++q;
    if (q < end && (*q == '+' || *q == '-')) ++q;
    const char* digits = q;
    while (q < end && digit(*q)) ++q;
    if (q == digits) return nullptr;
    *integer = false;
  }
  return q;
}


// Reads one leaf at [p, end) into *value; false when it is not the plain case
// (simdjson then reads the run for the message). Null `out`: only checks it.
template <typename T>
bool ReadLeaf(const char*& p, const char* end, std::byte* out) {
  if constexpr (std::is_same_v<T, bool>) {
    bool b;
    if (end - p >= 4 && std::memcmp(p, "true", 4) == 0) {
      b = true;
      p += 4;
    } else if (end - p >= 5 && std::memcmp(p, "false", 5) == 0) {
      b = false;
      p += 5;
    } else {
      return false;
    }
    if (out != nullptr) std::memcpy(out, &b, 1);
    return true;
  } else {
    bool integer = false;
    const char* number_end = ScanNumber(p, end, &integer);
    if (number_end == nullptr) return false;
    if constexpr (std::is_floating_point_v<T>) {
      double d;
      const auto result = fast_float::from_chars(p, number_end, d);
      if (result.ec != std::errc() || result.ptr != number_end || !std::isfinite(d)) return false;
      if constexpr (std::is_same_v<T, float>) {
        if (std::fabs(d) >= 0x1.ffffffp+127) return false;
      }
      if (out != nullptr) {
        const T value = static_cast<T>(d);
        std::memcpy(out, &value, sizeof(T));
      }
    } else {
      if (!integer) return false;
      int64_t v;
      const auto result = std::from_chars(p, number_end, v);
      if (result.ec != std::errc() || result.ptr != number_end) return false;
      if constexpr (std::is_signed_v<T>) {
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return false;
      } else {
        if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return false;
      }
      if (out != nullptr) {
        const T value = static_cast<T>(v);
        std::memcpy(out, &value, sizeof(T));
      }
    }
    p = number_end;
    return true;
  }
}

// Parses the run [begin, end) (an array, nested to any depth) as exactly
// `count` leaves of T into `out` (null: only checks the grammar of numbers
// and literals, any count). False when anything is not the plain case.
template <typename T>
bool ScanRun(const char* begin, const char* end, int64_t count, int depth, std::byte* out) {
  int64_t index = 0;
  int level = 0;
  bool expect_value = true;  // After '[' or ',': a value (or, after '[', a ']').
  bool after_open = false;
  for (const char* p = begin; p < end;) {
    const char c = *p;
    if (IsJsonSpace(c)) {
      ++p;
      continue;
    }
    if (expect_value) {
      if (c == '[') {
        if (depth + level >= kMaxJsonDepth) return false;
        ++level;
        ++p;
        after_open = true;
        continue;
      }
      if (c == ']' && after_open) {
        expect_value = false;  // An empty array: handled as a close below.
      } else {
        if (level == 0) return false;
        if (out != nullptr) {
          if (index == count) return false;
          if (!ReadLeaf<T>(p, end, out + static_cast<size_t>(index) * sizeof(T))) return false;
        } else {
          bool integer;
          const char* number_end;
          if (end - p >= 4 && (std::memcmp(p, "true", 4) == 0 || std::memcmp(p, "null", 4) == 0)) {
            p += 4;
          } else if (end - p >= 5 && std::memcmp(p, "false", 5) == 0) {
            p += 5;
          } else if ((number_end = ScanNumber(p, end, &integer)) != nullptr) {
            p = number_end;
          } else {
            return false;
          }
        }
        ++index;
        expect_value = false;
        after_open = false;
        continue;
      }
    }
    // After a value: ',' or ']'.
    after_open = false;
    if (c == ',') {
      if (level == 0) return false;
      expect_value = true;
      ++p;
    } else if (c == ']') {
      if (level == 0) return false;
      --level;
      ++p;
      if (level == 0) {
        // The run ends here: nothing but whitespace may follow in it.
        while (p < end && IsJsonSpace(*p)) ++p;
        return p == end && (out == nullptr || index == count);
      }
    } else {
      return false;
    }
  }
  return false;
}

// The run's own document, for what ScanRun does not take: simdjson reads it
// (the body after it, up to `buffer_end`, serves as padding).
absl::StatusOr<OwnedBytes> FillFromRunWithSimdjson(std::string_view name, DataType type, const Shape& shape,
                                                   int64_t count, const Run& run, const Context& context, int depth) {
  ondemand::parser parser;
  ondemand::document document;
  const size_t length = static_cast<size_t>(run.end - run.begin);
  if (auto error = parser.iterate(run.begin, length, static_cast<size_t>(context.buffer_end - run.begin))
                       .get(document)) {
    return NotJson(error);
  }
  Data data;
  data.is_root_array = true;
  if (auto error = document.get_array().get(data.root_array)) return NotJson(error);
  return FillFromValue(name, type, shape, count, data, context.json_size, depth);
}

template <typename T>
absl::StatusOr<OwnedBytes> FillFromRun(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                       const Run& run, const Context& context, int depth) {
  if (static_cast<uint64_t>(count) <= context.json_size) {
    const size_t size = static_cast<size_t>(count) * sizeof(T);  // count <= json_size: no overflow.
    std::shared_ptr<std::byte[]> buffer = std::make_shared_for_overwrite<std::byte[]>(size);
    if (ScanRun<T>(run.begin, run.end, count, depth, buffer.get())) {
      OwnedBytes owned;
      owned.data = std::span<const std::byte>(buffer.get(), size);
      owned.holder = std::move(buffer);
      return owned;
    }
  }
  return FillFromRunWithSimdjson(name, type, shape, count, run, context, depth);
}

// The run whose placeholder `value` is, if it is one.
Run* RunAt(ondemand::value& value, const Context& context) {
  if (context.runs == nullptr || context.runs->empty()) return nullptr;
  const std::string_view token = value.raw_json_token();
  if (token.empty() || token[0] != '[') return nullptr;
  const size_t offset = static_cast<size_t>(token.data() - context.envelope);
  auto it = std::lower_bound(context.runs->begin(), context.runs->end(), offset,
                             [](const Run& run, size_t at) { return run.envelope_offset < at; });
  if (it == context.runs->end() || it->envelope_offset != offset) return nullptr;
  return &*it;
}

absl::StatusOr<OwnedBytes> FillFromJson(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                        ondemand::value data, const Context& context, int depth) {
  Run* run = RunAt(data, context);
  if (run == nullptr) {
    Data value{data, {}, false};
    return FillFromValue(name, type, shape, count, value, context.json_size, depth);
  }
  run->read = true;
  switch (type) {
    case DataType::kBool: return FillFromRun<bool>(name, type, shape, count, *run, context, depth);
    case DataType::kUint8: return FillFromRun<uint8_t>(name, type, shape, count, *run, context, depth);
    case DataType::kUint16: return FillFromRun<uint16_t>(name, type, shape, count, *run, context, depth);
    case DataType::kUint32: return FillFromRun<uint32_t>(name, type, shape, count, *run, context, depth);
    case DataType::kUint64: return FillFromRun<uint64_t>(name, type, shape, count, *run, context, depth);
    case DataType::kInt8: return FillFromRun<int8_t>(name, type, shape, count, *run, context, depth);
    case DataType::kInt16: return FillFromRun<int16_t>(name, type, shape, count, *run, context, depth);
    case DataType::kInt32: return FillFromRun<int32_t>(name, type, shape, count, *run, context, depth);
    case DataType::kInt64: return FillFromRun<int64_t>(name, type, shape, count, *run, context, depth);
    case DataType::kFp32: return FillFromRun<float>(name, type, shape, count, *run, context, depth);
    case DataType::kFp64: return FillFromRun<double>(name, type, shape, count, *run, context, depth);
    default: return FillFromRunWithSimdjson(name, type, shape, count, *run, context, depth);
  }
}

// A run no input read (under an ignored key) is still checked to be JSON.
absl::Status CheckUnreadRuns(const Context& context) {
  if (context.runs == nullptr) return absl::OkStatus();
  for (const Run& run : *context.runs) {
    if (run.read || ScanRun<double>(run.begin, run.end, 0, kFieldDepth, nullptr)) continue;
    ondemand::parser parser;
    ondemand::document document;
    if (auto error = parser.iterate(run.begin, static_cast<size_t>(run.end - run.begin),
                                    static_cast<size_t>(context.buffer_end - run.begin))
                         .get(document)) {
      return NotJson(error);
    }
    ondemand::array array;
    if (auto error = document.get_array().get(array)) return NotJson(error);
    for (auto child : array) {
      ondemand::value element;
      if (auto error = child.get(element)) return NotJson(error);
      RETURN_IF_ERROR(SkipValue(element, kFieldDepth + 1));
    }
  }
  return absl::OkStatus();
}

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
  if (!entry->binary_size && !entry->has_data) {
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
  if (json_size >= kRunBodyBytes) runs = FindRuns(text, json_size);
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
