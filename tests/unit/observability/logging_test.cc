// SPDX-License-Identifier: Apache-2.0
#include "observability/logging.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "simdjson.h"

namespace ortserve::observability {
namespace {

TEST(LoggingTest, JsonLineEscapesTheMessage) {
  const std::string line = FormatJsonLine(absl::FromUnixMillis(1700000000123), "warning", "a \"quoted\"\nline\\");
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(line.c_str()).HasParseError()) << line;
  EXPECT_STREQ(doc["timestamp"].GetString(), "2023-11-14T22:13:20.123Z");
  EXPECT_STREQ(doc["level"].GetString(), "warning");
  EXPECT_STREQ(doc["message"].GetString(), "a \"quoted\"\nline\\");
}

TEST(LoggingTest, AccessRecordCarriesRequestFields) {
  AccessRecord r{.protocol = "http", .method = "POST", .target = "/v2/models/m/infer", .request_id = "r1",
                 .model = "m", .version = "2", .status = 200, .latency = absl::Microseconds(1500),
                 .response_bytes = 77, .trace_id = "abc"};
  rapidjson::Document doc;
  const std::string json = FormatAccessRecord(LogFormat::kJson, r, absl::FromUnixSeconds(0));
  ASSERT_FALSE(doc.Parse(json.c_str()).HasParseError()) << json;
  EXPECT_STREQ(doc["request_id"].GetString(), "r1");
  EXPECT_STREQ(doc["model"].GetString(), "m");
  EXPECT_STREQ(doc["version"].GetString(), "2");
  EXPECT_EQ(doc["status"].GetInt(), 200);
  EXPECT_DOUBLE_EQ(doc["latency_ms"].GetDouble(), 1.5);
  EXPECT_EQ(doc["response_bytes"].GetInt(), 77);
  EXPECT_STREQ(doc["trace_id"].GetString(), "abc");
  const std::string text = FormatAccessRecord(LogFormat::kText, r, absl::FromUnixSeconds(0));
  EXPECT_NE(text.find("POST /v2/models/m/infer status=200 latency_ms=1.5 bytes=77 model=m version=2"),
            std::string::npos)
      << text;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8.

// simdjson rejects invalid JSON and invalid UTF-8 alike.
std::string StringField(simdjson::dom::parser& parser, const std::string& json, const char* key) {
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return "<not valid JSON and UTF-8>";
  std::string_view value;
  if (root[key].get_string().get(value) != simdjson::SUCCESS) return "<no string field>";
  return std::string(value);
}

TEST(LoggingTest, JsonLineIsValidJsonAndUtf8WhateverTheMessageHolds) {
  const char raw[] = "bad \xff\xfe byte \x01, \x1f, \0, overlong \xc0\xaf, surrogate \xed\xa0\x80, cut \xe2\x82";
  const std::string message(raw, sizeof(raw) - 1);
  const std::string line = FormatJsonLine(absl::FromUnixSeconds(0), "info", message);
  simdjson::dom::parser parser;
  const std::string decoded = StringField(parser, line, "message");
  EXPECT_NE(decoded.find(kReplacement), std::string::npos) << line;
  EXPECT_NE(decoded.find("byte \x01, \x1f, "), std::string::npos) << line;  // Control characters survive escaped.
  EXPECT_NE(decoded.find(std::string_view("\0", 1)), std::string::npos) << line;
}

TEST(LoggingTest, AccessRecordIsValidJsonAndUtf8WhateverTheClientSent) {
  const std::string request_id("id\x00\xff\n", 5);
  AccessRecord r{.protocol = "http", .method = "POST", .target = "/v2/models/\xc3(/infer\r\n", .request_id = request_id,
                 .model = "m\x7f", .version = "\xf4\x90\x80\x80", .status = 400, .latency = absl::Microseconds(1),
                 .response_bytes = 0, .trace_id = ""};
  const std::string json = FormatAccessRecord(LogFormat::kJson, r, absl::FromUnixSeconds(0));
  simdjson::dom::parser parser;
  EXPECT_EQ(StringField(parser, json, "request_id"), std::string("id\0\xEF\xBF\xBD\n", 7)) << json;
  EXPECT_EQ(StringField(parser, json, "target"), "/v2/models/\xEF\xBF\xBD(/infer\r\n") << json;
  EXPECT_EQ(StringField(parser, json, "model"), "m\x7f") << json;
  EXPECT_EQ(StringField(parser, json, "version"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << json;
}

TEST(LoggingTest, SettingsFollowTritonFieldsAndChangeTheLevel) {
  auto logging = *Logging::Install({.format = LogFormat::kJson, .level = "info"});
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
  EXPECT_TRUE(logging->UpdateSettings(R"({"log_verbose_level":2})").ok());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::trace);
  EXPECT_TRUE(logging->UpdateSettings(R"({"log_verbose_level":0,"log_info":false})").ok());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  EXPECT_TRUE(logging->UpdateSettings(R"({"log_warning":false,"log_error":false})").ok());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::off);
  rapidjson::Document doc;
  const std::string settings = logging->SettingsJson();
  ASSERT_FALSE(doc.Parse(settings.c_str()).HasParseError()) << settings;
  EXPECT_FALSE(doc["log_info"].GetBool());
  EXPECT_STREQ(doc["log_file"].GetString(), "");
  EXPECT_STREQ(doc["log_format"].GetString(), "json");
  EXPECT_TRUE(logging->UpdateSettings(R"({"log_format":"ISO8601","log_info":true})").ok());
  doc.Parse(logging->SettingsJson().c_str());
  EXPECT_STREQ(doc["log_format"].GetString(), "text");
}

TEST(LoggingTest, BadSettingsChangeNothingAndNameTheField) {
  auto logging = *Logging::Install({.format = LogFormat::kText, .level = "info"});
  auto status = logging->UpdateSettings(R"({"log_info":false,"log_verbose_level":-1})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("log_verbose_level"), absl::string_view::npos);
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);  // log_info was not applied either.
  EXPECT_FALSE(logging->UpdateSettings(R"({"log_file":"/tmp/x"})").ok());
  EXPECT_FALSE(logging->UpdateSettings(R"({"log_format":"xml"})").ok());
  EXPECT_FALSE(logging->UpdateSettings("[1]").ok());
}

}  // namespace
}  // namespace ortserve::observability
