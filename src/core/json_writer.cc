// SPDX-License-Identifier: Apache-2.0
#include "core/json_writer.h"

#include <type_traits>
#include <variant>

#include "core/utf8.h"

namespace ortserve {
namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

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
    // Multi-byte UTF-8: copied when well-formed, else U+FFFD for its lead byte
    // alone. The bytes after it are read afresh, so a truncated sequence never
    // swallows the character that follows it.
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

void AppendJsonString(std::string_view s, std::string* out) {
  AppendBounded(out, JsonStringBound(s.size()), [s](char* p) { return EscapeJsonString(s, p); });
}

bool JsonWriter::String(std::string_view s) {
  BeginRaw(rapidjson::kStringType);
  AppendJsonString(s, output());
  return true;
}

void WriteJsonFloat(JsonWriter& writer, double value) {
  writer.BeginRaw(rapidjson::kNumberType);
  AppendBounded(writer.output(), kMaxJsonDoubleChars + 12, [value](char* p) { return FormatJsonFloat(value, p); });
}

void WriteJsonFloat(JsonWriter& writer, float value) {
  writer.BeginRaw(rapidjson::kNumberType);
  AppendBounded(writer.output(), kMaxJsonDoubleChars + 12, [value](char* p) { return FormatJsonFloat(value, p); });
}

void WriteParameters(JsonWriter& writer, const Parameters& parameters) {
  writer.StartObject();
  for (const auto& [key, value] : parameters) {
    writer.Key(key);
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
            WriteJsonFloat(writer, v);
          } else {
            writer.String(v);
          }
        },
        value);
  }
  writer.EndObject();
}

}  // namespace ortserve
