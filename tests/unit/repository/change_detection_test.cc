// SPDX-License-Identifier: Apache-2.0
// Change detection by stat identity + content hash (FileHashCache), what a
// poll of an unchanged repository reads, and the explicit-mode index listing
// model folders that were never loaded.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fakes/fake_clock.h"
#include "fakes/fake_session_factory.h"
#include "repository/model_manager.h"
#include "repository/model_source.h"

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;

constexpr size_t kLargeModelBytes = 10 << 20;

int64_t CtimeNanos(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
}

int64_t MtimeNanos(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

class RepositoryDir {
 public:
  RepositoryDir() {
    root_ = fs::temp_directory_path() /
            ("ortserve-cd-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~RepositoryDir() { fs::remove_all(root_); }

  const fs::path& root() const { return root_; }
  fs::path Write(const fs::path& rel, const std::string& bytes) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary | std::ios::trunc) << bytes;
    return root_ / rel;
  }

  // Rewrites `rel` with `bytes` (the same size) and puts its mtime back, as a
  // copy tool that preserves timestamps would; repeats until the ctime moved
  // off `old_ctime` (timestamps advance in ticks), bounded by a deadline.
  void RewriteKeepingMtime(const fs::path& rel, const std::string& bytes, int64_t old_ctime) {
    const fs::path path = root_ / rel;
    const auto mtime = fs::last_write_time(path);
    const int64_t mtime_ns = MtimeNanos(path);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      Write(rel, bytes);
      fs::last_write_time(path, mtime);
    } while (CtimeNanos(path) == old_ctime && absl::Now() < deadline);
    ASSERT_NE(CtimeNanos(path), old_ctime);
    ASSERT_EQ(MtimeNanos(path), mtime_ns) << "the mtime must be restored exactly";
  }

 private:
  fs::path root_;
};

// A clock an hour ahead of the real one: every file the test wrote is old
// enough for its hash to be reused (see FileHashCache, "Racy files").
testing::FakeClock* ClockPastEveryFile() {
  static testing::FakeClock clock;
  clock.SetTime(absl::Now() + absl::Hours(1));
  return &clock;
}

TEST(FileHashCacheTest, ASecondFingerprintOfAnUnchangedLargeModelReadsNothing) {
  RepositoryDir repo;
  repo.Write("m/config.pbtxt", "max_batch_size: 4");
  repo.Write("m/1/model.onnx", std::string(kLargeModelBytes, 'w'));
  FileHashCache cache({.clock = ClockPastEveryFile()});

  auto first = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(cache.stats().files_read, 2u);
  EXPECT_GE(cache.stats().bytes_read, kLargeModelBytes);

  auto second = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(cache.stats().files_read, 2u);
  EXPECT_EQ(cache.stats().files_reused, 2u);
  EXPECT_EQ(second->fingerprint, first->fingerprint);
  // The config text comes from the cache too.
  EXPECT_TRUE(second->has_config);
  EXPECT_EQ(second->config_text, "max_batch_size: 4");
}

TEST(FileHashCacheTest, ASameSizeRewriteThatRestoresTheMtimeIsReadAndSeen) {
  RepositoryDir repo;
  const fs::path model = repo.Write("m/1/model.onnx", std::string(kLargeModelBytes, 'a'));
  FileHashCache cache({.clock = ClockPastEveryFile()});
  auto before = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(before.ok()) << before.status();
  const uint64_t read_before = cache.stats().files_read;

  std::string changed(kLargeModelBytes, 'a');
  changed[kLargeModelBytes / 2] = 'b';
  repo.RewriteKeepingMtime("m/1/model.onnx", changed, CtimeNanos(model));
  ClockPastEveryFile();

  auto after = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(cache.stats().files_read, read_before + 1);
  EXPECT_NE(after->version_fingerprints.at(1), before->version_fingerprints.at(1));
  EXPECT_NE(after->fingerprint, before->fingerprint);
  EXPECT_EQ(after->model_fingerprint, before->model_fingerprint);
}

TEST(FileHashCacheTest, ATouchReadsTheFileAgainButIsNoChange) {
  RepositoryDir repo;
  const fs::path model = repo.Write("m/1/model.onnx", "abcd");
  FileHashCache cache({.clock = ClockPastEveryFile()});
  auto before = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(before.ok());
  fs::last_write_time(model, fs::last_write_time(model) + std::chrono::hours(1));
  auto after = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(cache.stats().files_read, 2u);
  EXPECT_EQ(after->fingerprint, before->fingerprint);
  // Read once more with the new identity, then reused.
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  EXPECT_EQ(cache.stats().files_read, 2u);
}

TEST(FileHashCacheTest, AFileHashedWithinItsTimestampTickIsReadAgainUntilItIsOldEnough) {
  RepositoryDir repo;
  const fs::path model = repo.Write("m/1/model.onnx", "abcd");
  // The hash is taken in the very tick the file was written: a write later in
  // that tick would keep its identity, so the hash may not be reused.
  testing::FakeClock clock(absl::FromUnixNanos(CtimeNanos(model)));
  FileHashCache cache({.clock = &clock, .racy_window = absl::Seconds(2)});
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  EXPECT_EQ(cache.stats().files_read, 2u);
  EXPECT_EQ(cache.stats().files_reused, 0u);

  // Still inside the window: read again.
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  EXPECT_EQ(cache.stats().files_read, 3u);
  // Hashed once the file is older than the window: that hash is reused.
  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  EXPECT_EQ(cache.stats().files_read, 4u);
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  EXPECT_EQ(cache.stats().files_read, 4u);
  EXPECT_EQ(cache.stats().files_reused, 1u);
}

TEST(FileHashCacheTest, EntriesOfRemovedFilesAndFoldersAreDropped) {
  RepositoryDir repo;
  repo.Write("m/config.pbtxt", "");
  repo.Write("m/1/model.onnx", "one");
  repo.Write("m/2/model.onnx", "two");
  repo.Write("m/2/model.onnx.data", "weights");
  repo.Write("n/1/model.onnx", "n");
  FileHashCache cache({.clock = ClockPastEveryFile()});
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "m", &cache).ok());
  ASSERT_TRUE(ReadModelSnapshot(repo.root().string(), "n", &cache).ok());
  EXPECT_EQ(cache.stats().entries, 5u);

  fs::remove_all(repo.root() / "m" / "2");
  auto m = ReadModelSnapshot(repo.root().string(), "m", &cache);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->version_fingerprints.size(), 1u);
  EXPECT_EQ(cache.stats().entries, 3u);

  cache.RetainModels({(repo.root() / "m").string()});
  EXPECT_EQ(cache.stats().entries, 2u);
  fs::remove_all(repo.root() / "m");
  EXPECT_EQ(ReadModelSnapshot(repo.root().string(), "m", &cache).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.stats().entries, 0u);
}

// The manager over a repository on disk, with sessions from a fake factory.
class ChangeDetectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend::ModelSignature s;
    s.inputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});
    s.outputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});
    factory_.AddModel("/", s);
  }
  ModelManager& Start(ModelControlMode mode, std::vector<std::string> startup = {}) {
    ModelManager::Options options;
    options.repository_path = repo_.root().string();
    options.session_factory = &factory_;
    options.load_threads = 2;
    options.control_mode = mode;
    options.startup_models = std::move(startup);
    options.file_hash_cache.clock = ClockPastEveryFile();
    auto manager = ModelManager::Create(std::move(options));
    EXPECT_TRUE(manager.ok());
    manager_ = *std::move(manager);
    EXPECT_TRUE(manager_->LoadAll().ok());
    return *manager_;
  }
  std::map<std::string, ModelIndexEntry> IndexByKey() const {
    std::map<std::string, ModelIndexEntry> index;
    for (const auto& e : manager_->Index()) index[e.name + ":" + e.version] = e;
    return index;
  }

  RepositoryDir repo_;
  testing::FakeSessionFactory factory_;
  std::unique_ptr<ModelManager> manager_;
};

TEST_F(ChangeDetectionTest, PollOfAnUnchangedLargeModelReadsNothingAndARewriteStillReloads) {
  repo_.Write("m/config.pbtxt", "max_batch_size: 4");
  const fs::path model = repo_.Write("m/1/model.onnx", std::string(kLargeModelBytes, 'x'));
  auto& manager = Start(ModelControlMode::kPoll);
  auto served = manager.GetModel("m", "");
  ASSERT_TRUE(served.ok()) << served.status();
  const FileHashCache::Stats loaded = manager.file_hash_stats();
  EXPECT_EQ(loaded.files_read, 2u);
  EXPECT_EQ(factory_.created().size(), 1u);

  for (int poll = 0; poll < 3; ++poll) ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.file_hash_stats().files_read, loaded.files_read);
  EXPECT_EQ(manager.file_hash_stats().bytes_read, loaded.bytes_read);
  EXPECT_EQ(manager.GetModel("m", "")->get(), served->get());

  std::string changed(kLargeModelBytes, 'x');
  changed[0] = 'y';
  repo_.RewriteKeepingMtime("m/1/model.onnx", changed, CtimeNanos(model));
  ClockPastEveryFile();
  ASSERT_TRUE(manager.PollOnce().ok());
  // Only the rewritten file was read; the model loaded again and swapped in.
  EXPECT_EQ(manager.file_hash_stats().files_read, loaded.files_read + 1);
  EXPECT_EQ(factory_.created().size(), 2u);
  auto reloaded = manager.GetModel("m", "");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_NE(reloaded->get(), served->get());

  // A removed model folder leaves the cache.
  served = absl::UnknownError("dropped");
  reloaded = absl::UnknownError("dropped");
  fs::remove_all(repo_.root() / "m");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.file_hash_stats().entries, 0u);
}

TEST_F(ChangeDetectionTest, ExplicitModeIndexListsNeverLoadedFoldersByName) {
  repo_.Write("a/1/model.onnx", "a");
  repo_.Write("b/config.pbtxt", "this config is never parsed for the index {");
  repo_.Write("b/2/model.onnx", "b");
  repo_.Write(".hidden/1/model.onnx", "h");
  repo_.Write("not_a_folder", "file");
  const fs::path outside = repo_.root().string() + "-outside";
  fs::create_directories(outside / "1");
  fs::create_symlink(outside, repo_.root() / "escape");
  auto& manager = Start(ModelControlMode::kExplicit, {"a"});

  auto index = manager.Index();
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0].name, "a");
  EXPECT_EQ(index[0].version, "1");
  EXPECT_EQ(index[0].state, ModelState::kReady);
  EXPECT_EQ(index[1].name, "b");
  EXPECT_EQ(index[1].version, "");
  EXPECT_EQ(index[1].state, ModelState::kUnavailable);
  EXPECT_EQ(index[1].reason, kNeverLoadedReason);
  // Listed is not loaded.
  EXPECT_EQ(manager.GetModel("b", "").status().code(), absl::StatusCode::kNotFound);

  // A folder copied in after start shows at the next index call.
  repo_.Write("c/1/model.onnx", "c");
  EXPECT_EQ(IndexByKey().at("c:").reason, kNeverLoadedReason);

  // Loaded, a folder is listed by its versions; unloaded, they stay listed.
  repo_.Write("b/config.pbtxt", "");
  ASSERT_TRUE(manager.LoadModel("b").ok());
  auto by_key = IndexByKey();
  EXPECT_EQ(by_key.count("b:"), 0u);
  EXPECT_EQ(by_key.at("b:2").state, ModelState::kReady);
  ASSERT_TRUE(manager.UnloadModel("b").ok());
  by_key = IndexByKey();
  EXPECT_EQ(by_key.count("b:"), 0u);
  EXPECT_EQ(by_key.at("b:2").state, ModelState::kUnavailable);
  EXPECT_EQ(by_key.at("b:2").reason, "unloaded");

  // A removed folder that was never loaded leaves the index.
  fs::remove_all(repo_.root() / "c");
  EXPECT_EQ(IndexByKey().count("c:"), 0u);
  fs::remove_all(outside);
}

TEST_F(ChangeDetectionTest, OtherModesIndexOnlyWhatTheyLoaded) {
  repo_.Write("a/1/model.onnx", "a");
  auto& manager = Start(ModelControlMode::kNone);
  repo_.Write("later/1/model.onnx", "later");
  auto index = manager.Index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].name, "a");
}

}  // namespace
}  // namespace ortserve::repository
