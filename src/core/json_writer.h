// SPDX-License-Identifier: Apache-2.0
// The JSON writer every module uses: RapidJSON's Writer writing straight into
// a std::string, and the one string escaper of the project.
//
// The escaper's output is always valid JSON and valid UTF-8, whatever the
// input bytes: well-formed UTF-8 passes through unchanged; '"' and '\\' are
// escaped; control characters U+0000..U+001F are escaped ("\n", "\t", ... or
// "\u00XX"); every byte that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF, no
// truncated sequences) is written as "\ufffd" (U+FFFD REPLACEMENT CHARACTER).
// JsonWriter's String() and Key() go through this escaper, so nothing written
// with a JsonWriter can be invalid JSON.
//
// Numbers: floating-point values are written in the shortest form that
// round-trips their own type, with ".0" on integral values; JSON has no
// literal for NaN or infinities, so they are the strings "NaN", "Infinity"
// and "-Infinity" (the proto3 JSON mapping).
//
// Thread-safety: the free functions are thread-safe. JsonStringStream and
// JsonWriter are not thread-safe: one per document, on one thread.
//
// Example:
//   std::string out;
//   JsonStringStream stream(&out);
//   JsonWriter writer(stream);
//   writer.StartObject();
//   writer.Key("name");
//   writer.String(name_from_a_client);  // Escaped; invalid bytes become \ufffd.
//   writer.EndObject();
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/parameters.h"
#include "rapidjson/allocators.h"
#include "rapidjson/writer.h"

namespace ortserve {

// A RapidJSON output stream that appends to a std::string, so a document is
// written straight into the string that goes on the wire (no final copy).
// Not thread-safe; one per document.
class JsonStringStream {
 public:
  using Ch = char;
  explicit JsonStringStream(std::string* out) : out_(out) {}
  void Put(char c) { out_->push_back(c); }
  void Flush() {}
  std::string* str() { return out_; }

 private:
  std::string* out_;
};
// RapidJSON's writer calls these unqualified; these overloads (found by ADL)
// replace its generic one-character-at-a-time versions.
inline void PutReserve(JsonStringStream& stream, size_t count) {
  std::string* s = stream.str();
  if (s->capacity() - s->size() < count) s->reserve(std::max(s->size() + count, s->capacity() * 2));
}
inline void PutUnsafe(JsonStringStream& stream, char c) { stream.str()->push_back(c); }

namespace json_internal {
// The writer's stack of open objects and arrays lives in this buffer (room
// for about 60 levels; deeper nesting takes heap memory), so writing a
// document allocates nothing but the output string.
struct JsonWriterStack {
  alignas(std::max_align_t) char buffer[1024];
  rapidjson::MemoryPoolAllocator<> allocator{buffer, sizeof(buffer)};
};
using JsonWriterBase =
    rapidjson::Writer<JsonStringStream, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>>;
}  // namespace json_internal

// RapidJSON's writer over a JsonStringStream, with access to the string so that
// large values (tensor data) can be appended directly. String() and Key() are
// replaced by versions that escape with EscapeJsonString (RapidJSON's own
// would copy invalid UTF-8 through). Not thread-safe.
class JsonWriter : private json_internal::JsonWriterStack, public json_internal::JsonWriterBase {
 public:
  // The stack base is constructed first, so its allocator exists when the writer takes it.
  explicit JsonWriter(JsonStringStream& stream) : json_internal::JsonWriterBase(stream, &allocator) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  std::string* output() { return os_->str(); }

  // A string value or a key (whichever the document expects next).
  bool String(std::string_view s);
  bool String(const char* s, rapidjson::SizeType length, bool /*copy*/ = false) {
    return String(std::string_view(s, length));
  }
  bool Key(std::string_view s) { return String(s); }
  bool Key(const char* s, rapidjson::SizeType length, bool /*copy*/ = false) {
    return String(std::string_view(s, length));
  }

  // Makes the writer account for one value (or key) of `type` that the caller
  // then appends to output() itself.
  void BeginRaw(rapidjson::Type type) { RawValue("", 0, type); }
};

// The most characters EscapeJsonString writes for `bytes` input bytes.
constexpr size_t JsonStringBound(size_t bytes) { return 2 + 6 * bytes; }

// Writes `s` as a JSON string literal (quotes included) at `out`, which must
// have room for JsonStringBound(s.size()) characters. Returns the end.
char* EscapeJsonString(std::string_view s, char* out);

// Appends `s` as a JSON string literal (quotes included) to `out`.
void AppendJsonString(std::string_view s, std::string* out);

// Writes `s` through `writer` as a key or a string value (the same as
// writer.String(s)).
inline void WriteJsonString(JsonWriter& writer, std::string_view s) { writer.String(s); }

// Appends to `out` through a resize-then-trim window of at most `bound`
// characters: `fn(char* begin)` writes at most `bound` characters and returns
// the end. One capacity check for many small writes.
template <typename Fn>
void AppendBounded(std::string* out, size_t bound, Fn&& fn) {
  const size_t at = out->size();
  out->resize(at + bound);
  char* end = fn(out->data() + at);
  out->resize(static_cast<size_t>(end - out->data()));
}

// Room FormatJsonFloat needs; and the longest integer ("-9223372036854775808",
// "18446744073709551615").
constexpr size_t kMaxJsonFloatChars = 16;   // FP32, ".0" included.
constexpr size_t kMaxJsonDoubleChars = 26;  // FP64, ".0" included.
constexpr size_t kMaxJsonIntChars = 20;

// Writes a floating-point number at `p` by the rules above (at most
// kMaxJsonFloatChars for float, kMaxJsonDoubleChars for double). Returns the end.
template <typename F>
char* FormatJsonFloat(F value, char* p) {
  static_assert(std::is_floating_point_v<F>);
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
  char* end = std::to_chars(p, p + kMaxJsonDoubleChars, value).ptr;
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

// Writes a floating-point value through `writer` (FormatJsonFloat's rules).
void WriteJsonFloat(JsonWriter& writer, double value);
void WriteJsonFloat(JsonWriter& writer, float value);

// Writes a protocol parameters map as a JSON object, in its order.
void WriteParameters(JsonWriter& writer, const Parameters& parameters);

}  // namespace ortserve
