// SPDX-License-Identifier: Apache-2.0
#include "repository/single_model_layout.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "repository/model_source.h"

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;

class Folder {
 public:
  Folder() {
    std::string templ = (fs::temp_directory_path() / "single-layout-XXXXXX").string();
    path_ = mkdtemp(templ.data());
  }
  ~Folder() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const { std::ofstream(path_ + "/" + name) << text; }
  size_t Entries() const { return std::distance(fs::directory_iterator(path_), {}); }

 private:
  std::string path_;
};

TEST(SingleModelLayoutTest, ATritonLayoutIsLeftAlone) {
  Folder repo;
  fs::create_directories(repo.path() + "/iris/1");
  repo.Write("iris/1/model.onnx", "bytes");
  auto staged = StagedRepository::StageIfSingleModel(repo.path(), "iris");
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_EQ(*staged, nullptr);
}

TEST(SingleModelLayoutTest, ATopLevelModelIsStagedAsVersionOneWithItsConfig) {
  Folder repo, staging;
  repo.Write("model.onnx", "onnx bytes");
  repo.Write("config.pbtxt", "max_batch_size: 4\n");
  auto staged = StagedRepository::StageIfSingleModel(repo.path(), "sae", staging.path());
  ASSERT_TRUE(staged.ok()) << staged.status();
  ASSERT_NE(*staged, nullptr);
  EXPECT_EQ((*staged)->model_name(), "sae");
  auto names = ListModelNames((*staged)->path());
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, std::vector<std::string>{"sae"});
  auto snapshot = ReadModelSnapshot((*staged)->path(), "sae");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_TRUE(snapshot->has_config);
  EXPECT_EQ(snapshot->config_text, "max_batch_size: 4\n");
  EXPECT_EQ(snapshot->version_fingerprints.size(), 1u);
  EXPECT_TRUE(snapshot->version_fingerprints.contains(1));

  // An edit of the original is seen through the staged layout (polls follow it).
  const uint64_t before = snapshot->fingerprint;
  repo.Write("model.onnx", "other onnx bytes");
  auto again = ReadModelSnapshot((*staged)->path(), "sae");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->fingerprint, before);

  const std::string path = (*staged)->path();
  staged->reset();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(repo.Entries(), 2u) << "the source folder must not change";
}

TEST(SingleModelLayoutTest, NamesThatCouldEscapeAreRefused) {
  Folder repo;
  repo.Write("model.onnx", "onnx bytes");
  for (const char* name : {"", "..", "../x", "a/b", ".hidden", "a\\b"}) {
    auto staged = StagedRepository::StageIfSingleModel(repo.path(), name);
    EXPECT_EQ(staged.status().code(), absl::StatusCode::kInvalidArgument) << "'" << name << "'";
  }
}

TEST(SingleModelLayoutTest, AMissingStagingParentIsAClearError) {
  Folder repo;
  repo.Write("model.onnx", "onnx bytes");
  auto staged = StagedRepository::StageIfSingleModel(repo.path(), "m", "/nonexistent/staging");
  EXPECT_EQ(staged.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(staged.status().message().find("/nonexistent/staging"), std::string::npos);
}

}  // namespace
}  // namespace ortserve::repository
