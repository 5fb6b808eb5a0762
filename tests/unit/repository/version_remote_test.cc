// SPDX-License-Identifier: Apache-2.0
// Per-version remote models: a version folder's remote.pbtxt turns that
// version's config into a remote one; everything else stays the model's.
#include "repository/version_remote.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;

config::ModelConfig LocalConfig() {
  config::ModelConfig config;
  config.set_name("m");
  config.set_platform("onnxruntime_onnx");
  config.set_backend("onnxruntime");
  config.set_max_batch_size(8);
  config.mutable_routing()->add_split()->set_version(1);
  return config;
}

TEST(VersionRemoteTest, TheFileMakesTheVersionRemoteAndKeepsTheRestOfTheModelsConfig) {
  absl::StatusOr<config::ModelConfig> out = ApplyVersionRemote(
      LocalConfig(), "endpoints: \"https://a:1\"\nmodel_name: \"m2\"\nprotocol: KSERVE_GRPC\ntls { ca_file: \"/ca\" }\n",
      "m/2/remote.pbtxt");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->platform(), "remote");
  EXPECT_EQ(out->backend(), "remote");
  EXPECT_EQ(out->remote().endpoints(0), "https://a:1");
  EXPECT_EQ(out->remote().model_name(), "m2");
  EXPECT_EQ(out->remote().protocol(), config::ModelRemote::KSERVE_GRPC);
  EXPECT_EQ(out->remote().tls().ca_file(), "/ca");
  EXPECT_EQ(out->max_batch_size(), 8);
  EXPECT_EQ(out->routing().split_size(), 1);
}

TEST(VersionRemoteTest, ReplacesAPlatformRemoteModelsBlock) {
  config::ModelConfig config = LocalConfig();
  config.set_platform("remote");
  config.mutable_remote()->add_endpoints("old:1");
  config.mutable_remote()->set_timeout_ms(5);
  absl::StatusOr<config::ModelConfig> out = ApplyVersionRemote(config, "endpoints: \"new:2\"", "f");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->remote().endpoints_size(), 1);
  EXPECT_EQ(out->remote().endpoints(0), "new:2");
  EXPECT_EQ(out->remote().timeout_ms(), 0u);
}

TEST(VersionRemoteTest, AnUnknownFieldOrBadTextFailsWithItsPlace) {
  absl::StatusOr<config::ModelConfig> typo = ApplyVersionRemote(LocalConfig(), "endpoints: \"a:1\"\nendpoint: \"b:2\"", "m/2/remote.pbtxt");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("m/2/remote.pbtxt:2:"), std::string_view::npos) << typo.status();
  EXPECT_NE(typo.status().message().find("endpoint"), std::string_view::npos);
  EXPECT_FALSE(ApplyVersionRemote(LocalConfig(), "endpoints: [", "f").ok());
  absl::StatusOr<config::ModelConfig> bad_utf8 =
      ApplyVersionRemote(LocalConfig(), "model_name: \"\\xff\\xfe\"", "f");
  ASSERT_FALSE(bad_utf8.ok());
  EXPECT_NE(bad_utf8.status().message().find("model_name"), std::string_view::npos) << bad_utf8.status();
}

class VersionRemoteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("version_remote_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "1");
    fs::create_directories(dir_ / "2");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(VersionRemoteFileTest, OnlyAVersionWithTheFileIsRemote) {
  std::ofstream(dir_ / "2" / kVersionRemoteFile) << "endpoints: \"h:9\"\n";
  auto local = VersionRemoteConfig(LocalConfig(), dir_.string(), 1);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_FALSE(local->has_value());
  auto remote = VersionRemoteConfig(LocalConfig(), dir_.string(), 2);
  ASSERT_TRUE(remote.ok()) << remote.status();
  ASSERT_TRUE(remote->has_value());
  EXPECT_EQ((*remote)->remote().endpoints(0), "h:9");
  EXPECT_FALSE(VersionRemoteConfig(LocalConfig(), dir_.string(), 3)->has_value());  // No folder at all.
}

TEST_F(VersionRemoteFileTest, AFileTooLargeToBeARemoteBlockIsRefused) {
  std::ofstream(dir_ / "2" / kVersionRemoteFile) << std::string(70 * 1024, '#');
  auto remote = VersionRemoteConfig(LocalConfig(), dir_.string(), 2);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(remote.status().message().find("remote.pbtxt"), std::string_view::npos);
}

}  // namespace
}  // namespace ortserve::repository
