// SPDX-License-Identifier: Apache-2.0
// core/json_writer.h: the one string escaper (every output parses as JSON and
// is valid UTF-8, whatever the input bytes) and the writer built on it.
#include "core/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>

#include "core/utf8.h"
#include "simdjson.h"

namespace ortserve {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8.

std::string Escape(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// Parses a JSON string literal with simdjson, which rejects invalid JSON and
// invalid UTF-8; returns what it decodes to, or "<invalid: ...>".
std::string Decode(const std::string& literal) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(literal).get(root); error != simdjson::SUCCESS) {
    return std::string("<invalid: ") + simdjson::error_message(error) + ">";
  }
  std::string_view value;
  if (root.get_string().get(value) != simdjson::SUCCESS) return "<invalid: not a string>";
  return std::string(value);
}

size_t Count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

TEST(JsonEscapeTest, EveryControlCharacterIsEscapedAndDecodesBack) {
  for (int c = 0; c < 0x20; ++c) {
    const std::string input(1, static_cast<char>(c));
    const std::string escaped = Escape(input);
    std::string expected;
    switch (c) {
      case '\b': expected = R"("\b")"; break;
      case '\f': expected = R"("\f")"; break;
      case '\n': expected = R"("\n")"; break;
      case '\r': expected = R"("\r")"; break;
      case '\t': expected = R"("\t")"; break;
      default: {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "\"\\u%04x\"", c);
        expected = buf;
      }
    }
    EXPECT_EQ(escaped, expected) << "control character " << c;
    EXPECT_EQ(Decode(escaped), input) << "control character " << c;
  }
}

TEST(JsonEscapeTest, QuoteAndBackslashAreEscapedAndOtherAsciiPassesThrough) {
  EXPECT_EQ(Escape(R"(say "hi" \ bye)"), R"("say \"hi\" \\ bye")");
  std::string printable;
  for (int c = 0x20; c < 0x80; ++c) {
    if (c != '"' && c != '\\') printable.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(Escape(printable), "\"" + printable + "\"");  // DEL (0x7f) is legal in JSON.
  EXPECT_EQ(Escape(""), "\"\"");
}

TEST(JsonEscapeTest, ValidUtf8PassesThroughUnchanged) {
  const std::string samples[] = {
      "\xC2\x80",          // U+0080, the first two-byte character.
      "\xDF\xBF",          // U+07FF, the last.
      "\xE0\xA0\x80",      // U+0800, the first three-byte character.
      "\xED\x9F\xBF",      // U+D7FF, just below the surrogates.
      "\xEE\x80\x80",      // U+E000, just above them.
      "\xEF\xBF\xBF",      // U+FFFF.
      "\xF0\x90\x80\x80",  // U+10000, the first four-byte character.
      "\xF4\x8F\xBF\xBF",  // U+10FFFF, the last code point.
      "\xE2\x80\xA8",      // U+2028, legal unescaped in JSON.
      "na\xC3\xAFve caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
  };
  for (const std::string& s : samples) {
    EXPECT_EQ(Escape(s), "\"" + s + "\"");
    EXPECT_EQ(Decode(Escape(s)), s);
  }
}

TEST(JsonEscapeTest, EachByteOfAnInvalidSequenceBecomesOneReplacementCharacter) {
  struct Case {
    std::string input;
    std::string escaped;  // Between the quotes.
  };
  const Case cases[] = {
      {"\x80", R"(\ufffd)"},                                   // A lone continuation byte.
      {"\xBF\x80", R"(\ufffd\ufffd)"},
      {"\xC0\xAF", R"(\ufffd\ufffd)"},                         // Overlong '/'.
      {"\xC1\xBF", R"(\ufffd\ufffd)"},                         // Overlong, the other lead.
      {"\xE0\x80\xAF", R"(\ufffd\ufffd\ufffd)"},               // Overlong, three bytes.
      {"\xE0\x9F\xBF", R"(\ufffd\ufffd\ufffd)"},               // Overlong U+07FF.
      {"\xF0\x80\x80\xAF", R"(\ufffd\ufffd\ufffd\ufffd)"},     // Overlong, four bytes.
      {"\xF0\x8F\xBF\xBF", R"(\ufffd\ufffd\ufffd\ufffd)"},     // Overlong U+FFFF.
      {"\xED\xA0\x80", R"(\ufffd\ufffd\ufffd)"},               // U+D800, a high surrogate.
      {"\xED\xBF\xBF", R"(\ufffd\ufffd\ufffd)"},               // U+DFFF, a low surrogate.
      {"\xED\xA0\xBD\xED\xB8\x80", std::string(R"(\ufffd)") + R"(\ufffd\ufffd\ufffd\ufffd\ufffd)"},  // CESU-8 pair.
      {"\xF4\x90\x80\x80", R"(\ufffd\ufffd\ufffd\ufffd)"},     // U+110000, past the last code point.
      {"\xF5\x80\x80\x80", R"(\ufffd\ufffd\ufffd\ufffd)"},
      {"\xF8\x88\x80\x80\x80", R"(\ufffd\ufffd\ufffd\ufffd\ufffd)"},  // Old five-byte form.
      {"\xFE", R"(\ufffd)"},
      {"\xFF", R"(\ufffd)"},
      {"\xC3", R"(\ufffd)"},                                   // Truncated at the end.
      {"\xE2\x82", R"(\ufffd\ufffd)"},
      {"\xF0\x9F\x98", R"(\ufffd\ufffd\ufffd)"},
      {"\xE2\x82" "A", R"(\ufffd\ufffdA)"},                    // Truncated, then ASCII survives.
      {"\xC3" "\xC3\xA9", "\\ufffd\xC3\xA9"},                  // Truncated, then a valid character survives.
      {"a\xFF" "b\n", R"(a\ufffdb\n)"},
  };
  for (const Case& c : cases) {
    const std::string escaped = Escape(c.input);
    EXPECT_EQ(escaped, "\"" + c.escaped + "\"") << "input bytes " << ::testing::PrintToString(c.input);
    const std::string decoded = Decode(escaped);
    EXPECT_TRUE(IsValidUtf8(decoded)) << decoded;
    EXPECT_EQ(Count(decoded, kReplacement), Count(c.escaped, R"(\ufffd)")) << decoded;
  }
}

TEST(JsonEscapeTest, ArbitraryBytesAlwaysMakeValidJsonAndUtf8) {
  std::mt19937 rng(15);  // Fixed seed: the same inputs on every run.
  std::uniform_int_distribution<int> byte(0, 255), length(0, 24);
  for (int i = 0; i < 20000; ++i) {
    std::string input(static_cast<size_t>(length(rng)), '\0');
    for (char& c : input) c = static_cast<char>(byte(rng));
    const std::string escaped = Escape(input);
    ASSERT_LE(escaped.size(), JsonStringBound(input.size()));
    const std::string decoded = Decode(escaped);
    ASSERT_TRUE(IsValidUtf8(decoded)) << ::testing::PrintToString(input) << " -> " << escaped;
    if (IsValidUtf8(input)) {
      ASSERT_EQ(decoded, input) << escaped;
    } else {
      ASSERT_NE(decoded.find(kReplacement), std::string::npos) << escaped;
    }
  }
}

TEST(JsonEscapeTest, EscapeStaysWithinItsBoundForTheWorstInput) {
  const std::string worst(100, '\x01');  // Six characters each.
  std::string out(JsonStringBound(worst.size()), '\0');
  char* end = EscapeJsonString(worst, out.data());
  EXPECT_EQ(static_cast<size_t>(end - out.data()), JsonStringBound(worst.size()));
}

TEST(JsonWriterTest, StringsAndKeysGoThroughTheEscaper) {
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter writer(stream);
  writer.StartObject();
  writer.Key("k\"1");
  writer.String("v\xFF");
  writer.Key(std::string_view("k2"));
  writer.String(std::string("a\0b", 3));
  writer.Key("k3");
  writer.String("x\ty", 3);
  writer.EndObject();
  EXPECT_EQ(out, R"({"k\"1":"v\ufffd","k2":"a\u0000b","k3":"x\ty"})");
  EXPECT_TRUE(writer.IsComplete());
}

TEST(JsonWriterTest, FloatsAreShortestRoundTripWithStringsForNonFinite) {
  auto write = [](auto value) {
    std::string out;
    JsonStringStream stream(&out);
    JsonWriter writer(stream);
    writer.StartArray();
    WriteJsonFloat(writer, value);
    writer.EndArray();
    return out;
  };
  EXPECT_EQ(write(0.1f), "[0.1]");
  EXPECT_EQ(write(0.1), "[0.1]");
  EXPECT_EQ(write(3.0), "[3.0]");
  EXPECT_EQ(write(-0.0f), "[-0.0]");
  EXPECT_EQ(write(1e300), "[1e+300]");
  EXPECT_EQ(write(std::numeric_limits<float>::quiet_NaN()), R"(["NaN"])");
  EXPECT_EQ(write(std::numeric_limits<double>::infinity()), R"(["Infinity"])");
  EXPECT_EQ(write(-std::numeric_limits<float>::infinity()), R"(["-Infinity"])");
  EXPECT_EQ(write(std::numeric_limits<double>::denorm_min()), "[5e-324]");
}

TEST(JsonWriterTest, ParametersKeepTheirOrderAndTypes) {
  Parameters parameters;
  parameters.Set("b", true);
  parameters.Set("i", int64_t{-3});
  parameters.Set("u", uint64_t{18446744073709551615u});
  parameters.Set("d", 2.0);
  parameters.Set("s", std::string("\xC3(\x01"));
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter writer(stream);
  WriteParameters(writer, parameters);
  EXPECT_EQ(out, R"({"b":true,"i":-3,"u":18446744073709551615,"d":2.0,"s":"\ufffd(\u0001"})");
}

TEST(JsonWriterTest, DeepNestingPastTheInlineStackStillWorks) {
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter writer(stream);
  for (int i = 0; i < 500; ++i) writer.StartArray();
  for (int i = 0; i < 500; ++i) writer.EndArray();
  EXPECT_TRUE(writer.IsComplete());
  EXPECT_EQ(out, std::string(500, '[') + std::string(500, ']'));
}

}  // namespace
}  // namespace ortserve
