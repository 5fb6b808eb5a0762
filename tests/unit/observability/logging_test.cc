// SPDX-License-Identifier: Apache-2.0
#include "observability/logging.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

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
