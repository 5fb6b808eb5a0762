// SPDX-License-Identifier: Apache-2.0
#include "alerts/alert_flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>

namespace ortserve::alerts {
namespace {

class AlertFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("alerts_flags_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "s1") << "secret-one-0123456789\n";
    std::ofstream(dir_ / "s2") << "secret-two-0123456789\n";
    std::ofstream(dir_ / "pk") << "patient-key-0123456789\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<std::optional<AlertServiceOptions>> Parse(std::vector<std::string> args) {
    CLI::App app;
    AlertFlags flags;
    AddAlertFlags(app, &flags);
    args.insert(args.begin(), "ortserve");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
    return BuildAlertServiceOptions(flags);
  }
  std::string P(const char* name) { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(AlertFlagsTest, NoAlertFlagsMeansAlertsOff) {
  auto options = Parse({});
  ASSERT_TRUE(options.ok());
  EXPECT_FALSE(options->has_value());
}

TEST_F(AlertFlagsTest, ParsesRepeatedWebhooksWithTheirSecrets) {
  auto options = Parse({"--alert-webhook", "pi=https://pi.example.org/hooks/sae?x=1", "--alert-webhook",
                        "backup=http://127.0.0.1:9000/", "--alert-webhook-secret-file", "pi=" + P("s1"),
                        "--alert-webhook-secret-file", "backup=" + P("s2"), "--alert-outbox", P("outbox.db"),
                        "--alert-patient-hash-key-file", P("pk"), "--alert-max-pending", "500"});
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(options->has_value());
  const AlertServiceOptions& o = **options;
  ASSERT_EQ(o.dispatcher.receivers.size(), 2u);
  EXPECT_EQ(o.dispatcher.receivers[0].name, "pi");
  EXPECT_EQ(o.dispatcher.receivers[0].secret, "secret-one-0123456789");
  EXPECT_EQ(o.dispatcher.receivers[1].url, "http://127.0.0.1:9000/");
  EXPECT_EQ(o.dispatcher.receivers[1].secret, "secret-two-0123456789");
  EXPECT_EQ(o.patient_hash_key, "patient-key-0123456789");
  EXPECT_EQ(o.outbox.path, P("outbox.db"));
  EXPECT_EQ(o.outbox.max_undelivered, 500u);
}

TEST_F(AlertFlagsTest, RefusesIncompleteOrContradictoryFlags) {
  const std::vector<std::string> base = {"--alert-outbox", P("o.db"), "--alert-patient-hash-key-file", P("pk")};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), base.begin(), base.end());
    return Parse(extra).status();
  };
  // Each case names its problem.
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--alert-webhook", "pi=http://h/"}, "no --alert-webhook-secret-file pi"},
      {{"--alert-webhook", "pi=ftp://h/", "--alert-webhook-secret-file", "pi=" + P("s1")}, "scheme"},
      {{"--alert-webhook", "pi=http://user:pw@h/", "--alert-webhook-secret-file", "pi=" + P("s1")}, "user info"},
      {{"--alert-webhook", "http://h/"}, "NAME=VALUE"},
      {{"--alert-webhook", "pi=http://h/", "--alert-webhook", "pi=http://g/", "--alert-webhook-secret-file",
        "pi=" + P("s1")},
       "twice"},
      {{"--alert-webhook", "pi=http://h/", "--alert-webhook-secret-file", "pi=" + P("s1"),
        "--alert-webhook-secret-file", "other=" + P("s2")},
       "no --alert-webhook defines"},
      {{"--alert-webhook", "pi=http://h/", "--alert-webhook-secret-file", "pi=" + P("missing")}, "cannot read"},
      {{"--alert-webhook", "pi=http://h/", "--alert-webhook-secret-file", "pi=" + P("s1"), "--alert-max-pending",
        "0"},
       "--alert-max-pending"},
      {{}, "without any --alert-webhook"},
  };
  for (const auto& [args, message] : cases) {
    absl::Status status = with(args);
    const absl::StatusCode expected =
        message == "cannot read" ? absl::StatusCode::kNotFound : absl::StatusCode::kInvalidArgument;
    EXPECT_EQ(status.code(), expected) << message << ": " << status;
    EXPECT_NE(std::string(status.message()).find(message), std::string::npos) << status;
  }
  auto no_outbox = Parse({"--alert-webhook", "pi=http://h/", "--alert-webhook-secret-file", "pi=" + P("s1"),
                          "--alert-patient-hash-key-file", P("pk")});
  EXPECT_NE(std::string(no_outbox.status().message()).find("--alert-outbox"), std::string::npos);
}

}  // namespace
}  // namespace ortserve::alerts
