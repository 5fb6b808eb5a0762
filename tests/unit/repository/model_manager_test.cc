// SPDX-License-Identifier: Apache-2.0
#include "repository/model_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/synchronization/notification.h"

#include "fakes/fake_session_factory.h"

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ortserve-mm-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    backend::ModelSignature s;
    s.inputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});
    s.outputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});  // FakeSession copies inputs out.
    factory_.AddModel("/", s);
  }
  void TearDown() override { fs::remove_all(root_); }

  void AddVersion(const std::string& model, int version) {
    fs::create_directories(root_ / model / std::to_string(version));
    std::ofstream(root_ / model / std::to_string(version) / "model.onnx") << "fake";
  }
  void WriteConfig(const std::string& model, const std::string& text) {
    fs::create_directories(root_ / model);
    std::ofstream(root_ / model / "config.pbtxt") << text;
  }
  std::unique_ptr<ModelManager> Load() {
    ModelManager::Options options;
    options.repository_path = root_.string();
    options.session_factory = &factory_;
    options.load_threads = 3;
    options.warn = [this](const std::string& w) { warnings_.push_back(w); };
    auto manager = ModelManager::Create(std::move(options));
    EXPECT_TRUE(manager.ok());
    EXPECT_TRUE((*manager)->LoadAll().ok());
    return *std::move(manager);
  }

  fs::path root_;
  testing::FakeSessionFactory factory_;
  std::vector<std::string> warnings_;
};

TEST_F(ModelManagerTest, LatestVersionIsServedByDefault) {
  AddVersion("m", 1);
  AddVersion("m", 3);
  AddVersion("m", 2);
  auto manager = Load();
  auto model = manager->GetModel("m", "");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->version, 3);
  EXPECT_EQ(manager->GetModel("m", "1").status().code(), absl::StatusCode::kNotFound);
  auto index = manager->Index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].version, "3");
  EXPECT_EQ(index[0].state, ModelState::kReady);
}

TEST_F(ModelManagerTest, VersionPoliciesChooseVersions) {
  for (int v : {1, 2, 3}) {
    AddVersion("latest2", v);
    AddVersion("all", v);
    AddVersion("specific", v);
  }
  WriteConfig("latest2", "version_policy: { latest: { num_versions: 2 } }");
  WriteConfig("all", "version_policy: { all: {} }");
  WriteConfig("specific", "version_policy: { specific: { versions: [ 1, 3, 9 ] } }");
  auto manager = Load();
  std::map<std::string, std::vector<std::string>> versions;
  for (const auto& e : manager->Index()) versions[e.name].push_back(e.version);
  EXPECT_EQ(versions["latest2"], (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(versions["all"], (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(versions["specific"], (std::vector<std::string>{"1", "3"}));
  EXPECT_TRUE(manager->GetModel("specific", "1").ok());
  EXPECT_EQ((*manager->GetModel("specific", ""))->version, 3);
}

TEST_F(ModelManagerTest, AFailingModelIsReportedAndOthersLoad) {
  AddVersion("good", 1);
  AddVersion("broken", 1);
  AddVersion("noversions_but_dir", 0);
  fs::remove_all(root_ / "noversions_but_dir" / "0");
  WriteConfig("badconfig", "max_batch_size: {");
  AddVersion("badconfig", 1);
  factory_.FailModel("broken", absl::InvalidArgumentError("protobuf parsing failed"));
  auto manager = Load();
  EXPECT_TRUE(manager->GetModel("good", "").ok());
  auto broken = manager->GetModel("broken", "");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(broken.status().message()).find("protobuf parsing failed"), std::string::npos);
  std::map<std::string, ModelIndexEntry> index;
  for (const auto& e : manager->Index()) index[e.name] = e;
  EXPECT_EQ(index["broken"].state, ModelState::kUnavailable);
  EXPECT_EQ(index["badconfig"].state, ModelState::kUnavailable);
  EXPECT_NE(index["badconfig"].reason.find("config.pbtxt"), std::string::npos) << index["badconfig"].reason;
  EXPECT_EQ(index["noversions_but_dir"].state, ModelState::kUnavailable);
  EXPECT_NE(index["noversions_but_dir"].reason.find("no version"), std::string::npos);
}

TEST_F(ModelManagerTest, UnknownModelAndBadVersionAreDistinguished) {
  AddVersion("m", 1);
  auto manager = Load();
  EXPECT_EQ(manager->GetModel("nope", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager->GetModel("m", "abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager->GetModel("m", "-1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager->GetModel("m", "2").status().code(), absl::StatusCode::kNotFound);
}

// Numbers of many digits in a config (a typo, or a hostile repository) fail
// that model's load with a message naming the field, or load within bounded
// memory; they never take the server down. Each of these crashed a loader
// thread with std::bad_alloc before.
// Issue #14.8: a model folder cannot make the server read files elsewhere on
// the host through symbolic links; links that stay inside the repository
// (or lead to an allowed root) are fine.
TEST_F(ModelManagerTest, SymlinksOutOfTheRepositoryFailTheLoad) {
  const fs::path outside = root_.string() + "-outside";
  fs::create_directories(outside / "1");
  std::ofstream(outside / "1" / "model.onnx") << "fake";
  std::ofstream(outside / "secret.txt") << "not yours";
  AddVersion("linked_file", 1);
  fs::remove(root_ / "linked_file" / "1" / "model.onnx");
  fs::create_symlink(outside / "1" / "model.onnx", root_ / "linked_file" / "1" / "model.onnx");
  AddVersion("linked_labels", 1);
  fs::create_symlink(outside / "secret.txt", root_ / "linked_labels" / "labels.txt");
  fs::create_directories(root_ / "linked_version");
  fs::create_directory_symlink(outside / "1", root_ / "linked_version" / "1");
  AddVersion("dangling", 1);
  fs::create_symlink(root_ / "nowhere", root_ / "dangling" / "1" / "extra.bin");
  AddVersion("inside", 1);
  AddVersion("shared", 1);
  fs::create_symlink(root_ / "shared" / "1" / "model.onnx", root_ / "inside" / "1" / "weights.bin");
  auto manager = Load();
  std::map<std::string, ModelIndexEntry> index;
  for (const auto& e : manager->Index()) index[e.name] = e;
  for (const char* model : {"linked_file", "linked_labels", "linked_version", "dangling"}) {
    EXPECT_EQ(index[model].state, ModelState::kUnavailable) << model;
    EXPECT_NE(index[model].reason.find("symbolic link"), std::string::npos) << model << ": " << index[model].reason;
  }
  EXPECT_EQ(index["inside"].state, ModelState::kReady) << index["inside"].reason;
  fs::remove_all(outside);
}

TEST_F(ModelManagerTest, LinksMayLeadToAnAllowedRoot) {
  const fs::path source = root_.string() + "-source";
  fs::create_directories(source);
  std::ofstream(source / "model.onnx") << "fake";
  fs::create_directories(root_ / "staged" / "1");
  fs::create_symlink(source / "model.onnx", root_ / "staged" / "1" / "model.onnx");
  ModelManager::Options options;
  options.repository_path = root_.string();
  options.session_factory = &factory_;
  options.link_roots = {source.string()};
  auto manager = ModelManager::Create(std::move(options));
  ASSERT_TRUE(manager.ok()) << manager.status();
  ASSERT_TRUE((*manager)->LoadAll().ok());
  bool ready = false;
  for (const auto& e : (*manager)->Index()) ready = ready || (e.name == "staged" && e.state == ModelState::kReady);
  EXPECT_TRUE(ready);
  fs::remove_all(source);
}

// Issue #14.3: a config (which a load request may carry) cannot make the
// loader burn a core for hours or start thousands of threads.
TEST_F(ModelManagerTest, WarmupAndThreadBoundsFailTheLoadNamingTheField) {
  for (const char* model : {"runs", "entries", "warm_batch", "intra", "inter", "fine"}) AddVersion(model, 1);
  const std::string input = "inputs { key: \"x\" value: { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true } }";
  WriteConfig("runs", "max_batch_size: 4 model_warmup [ { name: \"w\" batch_size: 1 count: 4000000000 " + input +
                          " } ]");
  std::string entries = "max_batch_size: 4 model_warmup [ ";
  for (int i = 0; i < 65; ++i) entries += (i ? ", " : "") + std::string("{ name: \"w\" batch_size: 1 ") + input + " }";
  WriteConfig("entries", entries + " ]");
  WriteConfig("warm_batch", "max_batch_size: 4 model_warmup [ { name: \"w\" batch_size: 4096 " + input + " } ]");
  WriteConfig("intra", "parameters { key: \"intra_op_thread_count\" value: { string_value: \"100000\" } }");
  WriteConfig("inter", "parameters { key: \"inter_op_thread_count\" value: { string_value: \"-3\" } }");
  WriteConfig("fine", "max_batch_size: 4 model_warmup [ { name: \"w\" batch_size: 4 count: 3 " + input + " } ]");
  auto manager = Load();
  std::map<std::string, ModelIndexEntry> index;
  for (const auto& e : manager->Index()) index[e.name] = e;
  const std::pair<const char*, const char*> refused[] = {{"runs", "count 4000000000 is more than 1000"},
                                                         {"entries", "65 model_warmup entries"},
                                                         {"warm_batch", "batch_size 4096"},
                                                         {"intra", "'intra_op_thread_count' 100000"},
                                                         {"inter", "'inter_op_thread_count' -3"}};
  for (const auto& [model, reason] : refused) {
    EXPECT_EQ(index[model].state, ModelState::kUnavailable) << model;
    EXPECT_NE(index[model].reason.find(reason), std::string::npos) << model << ": " << index[model].reason;
  }
  EXPECT_EQ(index["fine"].state, ModelState::kReady) << index["fine"].reason;
}

TEST_F(ModelManagerTest, HugeConfigNumbersFailTheLoadClearlyOrStayBounded) {
  for (const char* model : {"good", "levels", "instances", "gpu_instances", "warmup", "batch"}) AddVersion(model, 1);
  WriteConfig("levels", "max_batch_size: 4 dynamic_batching { priority_levels: 4000000000 }");
  WriteConfig("instances", "instance_group [ { count: 2000000000 kind: KIND_CPU } ]");
  WriteConfig("gpu_instances", "instance_group [ { count: 40 kind: KIND_GPU gpus: [ 0, 1 ] } ]");
  WriteConfig("warmup",
              "max_batch_size: 4\n"
              "model_warmup [ { name: \"big\" batch_size: 1 inputs { key: \"x\" value: "
              "{ data_type: TYPE_FP32 dims: [ 100000, 100000 ] zero_data: true } } } ]");
  // A huge max_batch_size is allowed (Triton allows it); what is set up
  // front for it is bounded, and the model serves.
  WriteConfig("batch", "max_batch_size: 2000000000 dynamic_batching { max_queue_delay_microseconds: 100 }");
  auto manager = Load();
  std::map<std::string, ModelIndexEntry> index;
  for (const auto& e : manager->Index()) index[e.name] = e;
  EXPECT_EQ(index["good"].state, ModelState::kReady);
  EXPECT_EQ(index["batch"].state, ModelState::kReady) << index["batch"].reason;
  EXPECT_EQ(index["levels"].state, ModelState::kUnavailable);
  EXPECT_NE(index["levels"].reason.find("priority_levels 4000000000"), std::string::npos) << index["levels"].reason;
  EXPECT_EQ(index["instances"].state, ModelState::kUnavailable);
  EXPECT_NE(index["instances"].reason.find("more than 64 instances"), std::string::npos)
      << index["instances"].reason;
  EXPECT_EQ(index["gpu_instances"].state, ModelState::kUnavailable);  // 40 x 2 GPUs.
  EXPECT_NE(index["gpu_instances"].reason.find("more than 64 instances"), std::string::npos)
      << index["gpu_instances"].reason;
  EXPECT_EQ(index["warmup"].state, ModelState::kUnavailable);
  EXPECT_NE(index["warmup"].reason.find("larger than the 1024 MiB"), std::string::npos) << index["warmup"].reason;

  auto batch = manager->GetModel("batch", "");
  ASSERT_TRUE(batch.ok()) << batch.status();
  auto request = std::make_unique<InferRequest>();
  request->model_name = "batch";
  const float values[] = {1, 2, 3, 4, 5, 6};
  request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {3, 2}, std::span<const float>(values)));
  absl::Notification done;
  absl::StatusOr<InferResponse> answer = absl::UnknownError("no answer");
  (*batch)->scheduler->Enqueue(std::move(request), [&](absl::StatusOr<InferResponse> result) {
    answer = std::move(result);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->outputs.size(), 1u);
  EXPECT_EQ(answer->outputs[0].shape, (Shape{3, 2}));
}

TEST_F(ModelManagerTest, AGpuInstanceWithoutPinnedHostMemoryIsReportedOnce) {
  AddVersion("gpu", 1);
  WriteConfig("gpu", "instance_group [ { count: 2 kind: KIND_GPU gpus: [ 1 ] } ]");
  AddVersion("cpu", 1);
  factory_.set_pinned_host_memory(false);
  auto manager = Load();
  ASSERT_TRUE(manager->GetModel("gpu", "").ok());
  ASSERT_TRUE(manager->GetModel("cpu", "").ok());
  std::vector<std::string> pinned_warnings;
  for (const auto& w : warnings_) {
    if (w.find("pinned host memory") != std::string::npos) pinned_warnings.push_back(w);
  }
  // One per GPU instance; CPU instances need none.
  ASSERT_EQ(pinned_warnings.size(), 2u);
  EXPECT_NE(pinned_warnings[0].find("model 'gpu' version 1 instance 0 on gpu1"), std::string::npos)
      << pinned_warnings[0];
}

TEST_F(ModelManagerTest, AGpuInstanceWithPinnedHostMemoryIsNotReported) {
  AddVersion("gpu", 1);
  WriteConfig("gpu", "instance_group [ { kind: KIND_GPU } ]");
  auto manager = Load();
  ASSERT_TRUE(manager->GetModel("gpu", "").ok());
  for (const auto& w : warnings_) EXPECT_EQ(w.find("pinned host memory"), std::string::npos) << w;
}

TEST_F(ModelManagerTest, InstanceCountCreatesThatManySessions) {
  AddVersion("m", 1);
  WriteConfig("m", "instance_group [ { count: 3 kind: KIND_CPU } ]");
  auto manager = Load();
  ASSERT_TRUE(manager->GetModel("m", "").ok());
  EXPECT_EQ(factory_.created().size(), 3u);
}

TEST_F(ModelManagerTest, HandleKeepsAVersionAliveAfterShutdown) {
  AddVersion("m", 1);
  auto manager = Load();
  ModelHandle handle = *manager->GetModel("m", "");
  manager.reset();
  EXPECT_EQ(handle->name, "m");
  EXPECT_EQ(handle->config.input(0).name(), "x");
}

TEST_F(ModelManagerTest, RepositoryThatIsNotADirectoryIsAnError) {
  ModelManager::Options options;
  options.repository_path = (root_ / "missing").string();
  options.session_factory = &factory_;
  auto manager = ModelManager::Create(std::move(options));
  ASSERT_TRUE(manager.ok());
  EXPECT_EQ((*manager)->LoadAll().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ortserve::repository
