// SPDX-License-Identifier: Apache-2.0
// Large bodies: numeric runs (json_tensor_data_internal.h).
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
//
// The fuzz build defines ORTSERVE_JSON_SMALL_RUNS (src/frontend/http/
// CMakeLists.txt) so that its small inputs take this path too.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/status.h"
#include "fast_float/fast_float.h"
#include "frontend/http/json_tensor_data_internal.h"

namespace ortserve::frontend::rest_internal {

namespace {

#ifdef ORTSERVE_JSON_SMALL_RUNS  // The fuzz build: small inputs take this path too.
constexpr size_t kRunBodyBytes = 64;
constexpr size_t kMinRunBytes = 4;
#else
constexpr size_t kRunBodyBytes = size_t{8} << 20;
constexpr size_t kMinRunBytes = size_t{16} << 10;
#endif

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

}  // namespace

std::vector<Run> FindLargeBodyRuns(const char* json, size_t size) {
  if (size < kRunBodyBytes) return {};
  return FindRuns(json, size);
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

}  // namespace ortserve::frontend::rest_internal
