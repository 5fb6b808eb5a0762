// SPDX-License-Identifier: Apache-2.0
// Model lifecycle: control modes, safe swaps with warm-up, rollback, release
// after drain, and the checks that keep requests inside the repository.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "fakes/controlled_session_factory.h"
#include "fakes/fake_session.h"
#include "repository/model_manager.h"
#include "repository/model_source.h"
#include "repository/warmup.h"

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;
using ::ortserve::testing::FakeSession;

using ControlledFactory = ::ortserve::testing::ControlledSessionFactory;

std::unique_ptr<InferRequest> MakeRequest(const std::string& model) {
  auto request = std::make_unique<InferRequest>();
  request->model_name = model;
  const float values[] = {1.f, 2.f};
  request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, Shape{1, 2}, std::span<const float>(values)));
  return request;
}

class ModelLifecycleTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ortserve-lc-" + std::to_string(::getpid()) + "-" +
             std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    manager_.reset();
    fs::remove_all(root_);
  }

  void WriteFile(const fs::path& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary | std::ios::trunc) << text;
  }
  void AddVersion(const std::string& model, int version, const std::string& bytes = "fake") {
    WriteFile(fs::path(model) / std::to_string(version) / "model.onnx", bytes);
  }
  ModelManager& Start(ModelControlMode mode, std::vector<std::string> startup = {}) {
    ModelManager::Options options;
    options.repository_path = root_.string();
    options.session_factory = &factory_;
    options.load_threads = GetParam();
    options.control_mode = mode;
    options.startup_models = std::move(startup);
    options.error = [this](const std::string& e) {
      absl::MutexLock lock(&log_mu_);
      errors_.push_back(e);
    };
    options.released = [this](const std::string& model, const std::string& version) {
      absl::MutexLock lock(&log_mu_);
      released_.push_back(model + "/" + version);
    };
    auto manager = ModelManager::Create(std::move(options));
    EXPECT_TRUE(manager.ok());
    manager_ = *std::move(manager);
    EXPECT_TRUE(manager_->LoadAll().ok());
    return *manager_;
  }
  // Waits until the factory made at least `n` sessions (they appear on a loader thread).
  bool WaitUntilSessions(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (factory_.sessions() < n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }
  int64_t ServedVersion(const std::string& model) {
    auto handle = manager_->GetModel(model, "");
    return handle.ok() ? (*handle)->version : -1;
  }
  ModelIndexEntry Entry(const std::string& model, const std::string& version) {
    for (const auto& e : manager_->Index()) {
      if (e.name == model && e.version == version) return e;
    }
    return {};
  }
  std::vector<std::string> Released() {
    absl::MutexLock lock(&log_mu_);
    return released_;
  }
  // Sends one request through the served version; the result arrives on `done`.
  struct Pending {
    absl::Notification done;
    absl::Status status;
  };
  void Send(const std::string& model, Pending* pending) {
    auto handle = manager_->GetModel(model, "");
    ASSERT_TRUE(handle.ok()) << handle.status();
    scheduler::Scheduler* scheduler = (*handle)->scheduler.get();
    scheduler->Enqueue(MakeRequest(model), [handle = *std::move(handle), pending](
                                               absl::StatusOr<InferResponse> result) mutable {
      pending->status = result.status();
      pending->done.Notify();
    });
  }

  fs::path root_;
  ControlledFactory factory_;
  std::unique_ptr<ModelManager> manager_;
  absl::Mutex log_mu_;
  std::vector<std::string> errors_ ABSL_GUARDED_BY(log_mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(log_mu_);
};

TEST_P(ModelLifecycleTest, ExplicitModeLoadsOnlyStartupModelsThenFollowsTheApi) {
  AddVersion("a", 1);
  AddVersion("b", 1);
  auto& manager = Start(ModelControlMode::kExplicit, {"a"});
  EXPECT_EQ(ServedVersion("a"), 1);
  EXPECT_EQ(manager.GetModel("b", "").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(manager.LoadModel("b").ok());
  EXPECT_EQ(ServedVersion("b"), 1);
  ASSERT_TRUE(manager.UnloadModel("a").ok());
  auto a = manager.GetModel("a", "");
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(a.status().message()).find("unloaded"), std::string::npos) << a.status();
  EXPECT_EQ(Entry("a", "1").state, ModelState::kUnavailable);
  EXPECT_EQ(manager.UnloadModel("never").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager.LoadModel("missing").code(), absl::StatusCode::kNotFound);
  // Issue #14.5: loading names with no folder leaves nothing behind (no
  // index entry, so no metric series), however many are tried.
  const size_t entries = manager.Index().size();
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(manager.LoadModel("made-up-" + std::to_string(i)).code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(manager.Index().size(), entries);
  for (const auto& entry : manager.Index()) EXPECT_NE(entry.name.rfind("made-up-", 0), 0u) << entry.name;
  // Loaded again after an unload.
  ASSERT_TRUE(manager.LoadModel("a").ok());
  EXPECT_EQ(ServedVersion("a"), 1);
}

TEST_P(ModelLifecycleTest, StarLoadsEveryModelInExplicitMode) {
  AddVersion("a", 1);
  AddVersion("b", 2);
  Start(ModelControlMode::kExplicit, {"*"});
  EXPECT_EQ(ServedVersion("a"), 1);
  EXPECT_EQ(ServedVersion("b"), 2);
}

TEST_P(ModelLifecycleTest, LoadAndUnloadAreRefusedOutsideExplicitMode) {
  AddVersion("a", 1);
  auto& manager = Start(ModelControlMode::kNone);
  EXPECT_EQ(manager.LoadModel("a").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager.UnloadModel("a").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ServedVersion("a"), 1);
}

TEST_P(ModelLifecycleTest, ConfigOverrideJsonReplacesConfigPbtxt) {
  AddVersion("m", 1);
  WriteFile("m/config.pbtxt", "max_batch_size: 4");
  auto& manager = Start(ModelControlMode::kExplicit, {"m"});
  ASSERT_EQ((*manager.GetModel("m", ""))->config.max_batch_size(), 4);
  const size_t before = factory_.created();

  ASSERT_TRUE(manager
                  .LoadModel("m", R"({"max_batch_size": 8,
                                      "instance_group": [{"count": 2, "kind": "KIND_CPU"}]})")
                  .ok());
  auto model = manager.GetModel("m", "");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->config.max_batch_size(), 8);
  // The model file did not change: the first session is reused, the second is new.
  EXPECT_EQ(factory_.created() - before, 1u);
  EXPECT_EQ((*model)->sessions.size(), 2u);

  // An override that does not parse, or names an unknown field, changes nothing.
  absl::Status bad = manager.LoadModel("m", R"({"max_batch_size": "eight"})");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  bad = manager.LoadModel("m", R"({"max_batch_sizes": 2})");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*manager.GetModel("m", ""))->config.max_batch_size(), 8);
  EXPECT_NE(manager.LastLoadError("m").find("config override"), std::string::npos) << manager.LastLoadError("m");
  EXPECT_EQ(Entry("m", "1").state, ModelState::kReady);

  // Loading without an override goes back to config.pbtxt.
  ASSERT_TRUE(manager.LoadModel("m").ok());
  EXPECT_EQ((*manager.GetModel("m", ""))->config.max_batch_size(), 4);
  EXPECT_EQ(manager.LastLoadError("m"), "");
}

TEST_P(ModelLifecycleTest, RequestNamesAndConfigFileNamesCannotLeaveTheRepository) {
  AddVersion("m", 1);
  const fs::path outside = root_.string() + "-outside";
  fs::create_directories(outside / "1");
  std::ofstream(outside / "1" / "model.onnx") << "fake";
  fs::create_symlink(outside, root_ / "escape");
  auto& manager = Start(ModelControlMode::kExplicit, {});
  for (std::string name : {std::string(""), std::string(".."), std::string("../m"), std::string("a/b"),
                           std::string("m/../../etc"), std::string("a\\b"), std::string("x\0y", 3),
                           std::string(".hidden"), std::string("escape")}) {
    EXPECT_EQ(manager.LoadModel(name).code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(manager.UnloadModel(name).code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(manager.LoadModel("m", R"({"default_model_filename": "../../escape/1/model.onnx"})").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager.LoadModel("m", R"({"default_model_filename": "/etc/passwd"})").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager.GetModel("escape", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager.GetModel("m", "").status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(manager.LoadModel("m").ok());
  fs::remove_all(outside);
}

TEST_P(ModelLifecycleTest, PollFollowsNewChangedAndRemovedVersionsByContent) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  EXPECT_EQ(ServedVersion("m"), 1);
  size_t created = factory_.created();

  // Nothing changed, or only rewritten with the same bytes: no load.
  ASSERT_TRUE(manager.PollOnce().ok());
  AddVersion("m", 1);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.created(), created);

  // A new version swaps in; the old one is retired and released.
  AddVersion("m", 2);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("m"), 2);
  EXPECT_EQ(manager.GetModel("m", "1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
  EXPECT_EQ(factory_.created(), created + 1);

  // Same size, same name, different bytes: reloaded.
  const ModelVersion* before = manager.GetModel("m", "")->get();
  AddVersion("m", 2, "FAKE");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.created(), created + 2);
  EXPECT_NE(manager.GetModel("m", "")->get(), before);

  // A config change reloads too.
  WriteFile("m/config.pbtxt", "max_batch_size: 2");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ((*manager.GetModel("m", ""))->config.max_batch_size(), 2);

  // A new model appears; a removed one goes.
  AddVersion("n", 5);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("n"), 5);
  fs::remove_all(root_ / "m");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.GetModel("m", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
}

TEST_P(ModelLifecycleTest, ConfigOnlyChangesReuseTheLoadedSessions) {
  WriteFile("m/config.pbtxt", "max_batch_size: 4");
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  const ModelVersion* first = manager.GetModel("m", "")->get();
  ASSERT_EQ(factory_.created(), 1u);

  // Batching changes: a new version object and scheduler, the same session.
  WriteFile("m/config.pbtxt", "max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 100 }");
  ASSERT_TRUE(manager.PollOnce().ok());
  auto second = manager.GetModel("m", "");
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->get(), first);
  EXPECT_EQ((*second)->config.max_batch_size(), 8);
  EXPECT_EQ(factory_.created(), 1u);
  EXPECT_EQ((*second)->sessions.size(), 1u);

  // One more instance: one more session, the first one kept.
  WriteFile("m/config.pbtxt", "max_batch_size: 8 instance_group [ { count: 2 kind: KIND_CPU } ]");
  ASSERT_TRUE(manager.PollOnce().ok());
  auto third = manager.GetModel("m", "");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(factory_.created(), 2u);
  EXPECT_EQ((*third)->sessions.at(0), (*second)->sessions.at(0));

  // Session options change: new sessions.
  WriteFile("m/config.pbtxt", R"(max_batch_size: 8 instance_group [ { count: 2 kind: KIND_CPU } ]
    parameters { key: "intra_op_thread_count" value: { string_value: "1" } })");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.created(), 4u);

  // The model file changes: new sessions, although the config did not change.
  AddVersion("m", 1, "FAKE");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.created(), 6u);
  second = absl::UnknownError("dropped");
  third = absl::UnknownError("dropped");
  EXPECT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
}

TEST_P(ModelLifecycleTest, ACorruptNewVersionKeepsTheLastGoodOneServing) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  factory_.FailCreate("/m/2/");
  AddVersion("m", 2, "not onnx");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("m"), 1);
  ModelIndexEntry failed = Entry("m", "2");
  EXPECT_EQ(failed.state, ModelState::kUnavailable);
  EXPECT_NE(failed.reason.find("protobuf parsing failed"), std::string::npos) << failed.reason;
  EXPECT_EQ(Entry("m", "1").state, ModelState::kReady);
  EXPECT_NE(manager.LastLoadError("m").find("version 2"), std::string::npos) << manager.LastLoadError("m");
  {
    absl::MutexLock lock(&log_mu_);
    ASSERT_FALSE(errors_.empty());
    EXPECT_NE(errors_.back().find("protobuf parsing failed"), std::string::npos);
  }
  // Polling again without a change does not retry the broken version.
  const size_t created = factory_.created();
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.created(), created);

  // The next good version replaces both.
  AddVersion("m", 3);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("m"), 3);
  EXPECT_EQ(manager.Index().size(), 1u);
  EXPECT_EQ(manager.LastLoadError("m"), "");
}

TEST_P(ModelLifecycleTest, ABrokenReloadOfTheServedVersionRollsBack) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  const ModelVersion* served = manager.GetModel("m", "")->get();
  // The config now names an input the model does not have: the reload fails.
  WriteFile("m/config.pbtxt", R"(input [ { name: "nope" data_type: TYPE_FP32 dims: [ 2 ] } ])");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.GetModel("m", "")->get(), served);
  ModelIndexEntry entry = Entry("m", "1");
  EXPECT_EQ(entry.state, ModelState::kReady);
  EXPECT_NE(entry.reason.find("reload failed"), std::string::npos) << entry.reason;
  EXPECT_NE(entry.reason.find("nope"), std::string::npos) << entry.reason;
  // A config that does not even parse: still served, error shown.
  WriteFile("m/config.pbtxt", "max_batch_size: {");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.GetModel("m", "")->get(), served);
  EXPECT_NE(Entry("m", "1").reason.find("config.pbtxt"), std::string::npos) << Entry("m", "1").reason;
  EXPECT_FALSE(manager.LastLoadError("m").empty());
}

TEST_P(ModelLifecycleTest, AFailingWarmupKeepsTheOldVersionServing) {
  WriteFile("m/config.pbtxt", R"(max_batch_size: 4
    model_warmup [ { name: "zeros" batch_size: 2 count: 3
                     inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true } } } ])");
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  ASSERT_EQ(ServedVersion("m"), 1);
  ASSERT_EQ(factory_.sessions(), 1u);
  FakeSession* session = factory_.session(0);
  EXPECT_EQ(session->runs_started(), 3);
  EXPECT_EQ(session->batch_sizes(), (std::vector<int64_t>{2, 2, 2}));

  factory_.FailRuns("/m/2/");
  AddVersion("m", 2);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("m"), 1);
  ModelIndexEntry entry = Entry("m", "2");
  EXPECT_EQ(entry.state, ModelState::kUnavailable);
  EXPECT_NE(entry.reason.find("model_warmup 'zeros'"), std::string::npos) << entry.reason;
  EXPECT_NE(entry.reason.find("kernel failed"), std::string::npos) << entry.reason;
}

// Issue #14.3: a config with a huge warm-up count on a slow model must not
// pin its loader: an unload cancels the warm-up and returns at once.
TEST_P(ModelLifecycleTest, UnloadDuringALongWarmupCancelsItAndReturnsPromptly) {
  WriteFile("slow/config.pbtxt", R"(model_warmup [ { name: "long" count: 1000
                     inputs { key: "x" value: { dims: [ 2 ] zero_data: true } } } ])");
  AddVersion("slow", 1);
  AddVersion("other", 1);
  auto& manager = Start(ModelControlMode::kExplicit, {"other"});
  factory_.HoldRuns("/slow/");  // Every warm-up run parks: an endless warm-up.
  absl::Notification loaded;
  absl::Status load_status;
  manager.LoadModelAsync("slow", "", [&](absl::Status status) {
    load_status = std::move(status);
    loaded.Notify();
  });
  // Wait until the warm-up runs (the session exists and a run is parked).
  ASSERT_TRUE(WaitUntilSessions(2));
  ASSERT_TRUE(factory_.session(1)->WaitForRunsStarted(1, absl::Seconds(20)));

  absl::Notification unloaded;
  absl::Status unload_status;
  const absl::Time start = absl::Now();
  manager.UnloadModelAsync("slow", [&](absl::Status status) {
    unload_status = std::move(status);
    unloaded.Notify();
  });
  ASSERT_TRUE(unloaded.WaitForNotificationWithTimeout(absl::Seconds(20))) << "unload waited for the warm-up";
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(unload_status.ok()) << unload_status;
  ASSERT_TRUE(loaded.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(load_status.code(), absl::StatusCode::kCancelled) << load_status;
  EXPECT_NE(std::string(load_status.message()).find("unloaded during its load"), std::string::npos) << load_status;
  EXPECT_EQ(factory_.session(1)->runs_started(), 1);  // Stopped at the first run of 1000.
  EXPECT_EQ(manager.GetModel("slow", "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ServedVersion("other"), 1);  // Other models never noticed.
  // A later load (runs no longer held) works.
  factory_.session(1)->Release();
}

// Issue #14.3: Shutdown cancels a warm-up in progress instead of waiting on it.
TEST_P(ModelLifecycleTest, ShutdownDuringALongWarmupFinishesPromptly) {
  WriteFile("slow/config.pbtxt", R"(model_warmup [ { name: "long" count: 1000
                     inputs { key: "x" value: { dims: [ 2 ] zero_data: true } } } ])");
  AddVersion("slow", 1);
  auto& manager = Start(ModelControlMode::kExplicit);
  factory_.HoldRuns("/slow/");
  absl::Notification loaded;
  absl::Status load_status;
  manager.LoadModelAsync("slow", "", [&](absl::Status status) {
    load_status = std::move(status);
    loaded.Notify();
  });
  ASSERT_TRUE(WaitUntilSessions(1));
  ASSERT_TRUE(factory_.session(0)->WaitForRunsStarted(1, absl::Seconds(20)));
  absl::Notification stopped;
  std::thread shutdown([&] {
    manager.Shutdown();
    stopped.Notify();
  });
  const bool in_time = stopped.WaitForNotificationWithTimeout(absl::Seconds(20));
  if (!in_time) factory_.session(0)->Release();  // Let the test end.
  shutdown.join();
  ASSERT_TRUE(in_time) << "Shutdown waited for the warm-up";
  ASSERT_TRUE(loaded.HasBeenNotified());
  EXPECT_EQ(load_status.code(), absl::StatusCode::kCancelled) << load_status;
  EXPECT_EQ(factory_.session(0)->runs_started(), 1);
}

TEST_P(ModelLifecycleTest, WarmupRunsOnEveryInstanceBeforeTheVersionIsServed) {
  WriteFile("m/config.pbtxt", R"(instance_group [ { count: 2 kind: KIND_CPU } ]
    model_warmup [ { name: "r" count: 2
                     inputs { key: "x" value: { dims: [ 2 ] random_data: true } } } ])");
  AddVersion("m", 1);
  Start(ModelControlMode::kNone);
  ASSERT_EQ(ServedVersion("m"), 1);
  ASSERT_EQ(factory_.sessions(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(factory_.session(i)->runs_started(), 2) << i;
    ASSERT_FALSE(factory_.session(i)->batch_shapes().empty());
    EXPECT_EQ(factory_.session(i)->batch_shapes()[0][0], (Shape{1, 2}));
  }
}

TEST_P(ModelLifecycleTest, RequestsAdmittedToTheOldVersionFinishOnItAndItIsReleasedAfter) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  FakeSession* old_session = factory_.session(0);
  old_session->Hold();
  Pending pending;
  Send("m", &pending);
  ASSERT_TRUE(old_session->WaitForRunsStarted(1, absl::Seconds(10)));

  AddVersion("m", 2);
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(ServedVersion("m"), 2);
  // The old version is retired but alive: its request still runs.
  EXPECT_EQ(manager.LiveVersionCount(), 2u);
  EXPECT_FALSE(pending.done.HasBeenNotified());

  // The last handle goes on the old version's own runner thread; the release
  // thread destroys it (a destroy there would self-join and abort).
  old_session->Release();
  ASSERT_TRUE(pending.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(pending.status.ok()) << pending.status;
  EXPECT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
}

TEST_P(ModelLifecycleTest, UnloadDrainsInFlightRequestsThenReleasesAndReportsIt) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kExplicit, {"m"});
  FakeSession* session = factory_.session(0);
  session->Hold();
  Pending pending;
  Send("m", &pending);
  ASSERT_TRUE(session->WaitForRunsStarted(1, absl::Seconds(10)));
  ASSERT_TRUE(manager.UnloadModel("m").ok());
  EXPECT_EQ(manager.GetModel("m", "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager.LiveVersionCount(), 1u);
  EXPECT_TRUE(Released().empty()) << "released while a request still ran on it";
  session->Release();
  ASSERT_TRUE(pending.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(pending.status.ok()) << pending.status;
  EXPECT_TRUE(manager.WaitForLiveVersions(0, absl::Seconds(10)));
  EXPECT_EQ(Released(), std::vector<std::string>{"m/1"});
}

TEST_P(ModelLifecycleTest, InstancesAreCreatedPerGpuAndReusedWhenOnlyTheCountGrows) {
  AddVersion("m", 1);
  WriteFile("m/config.pbtxt", "instance_group [ { kind: KIND_GPU count: 1 gpus: [ 0, 1 ] } ]\n");
  auto& manager = Start(ModelControlMode::kPoll);
  ASSERT_EQ(ServedVersion("m"), 1);
  auto created = factory_.created_options();
  ASSERT_EQ(created.size(), 2u);
  EXPECT_EQ(created[0].device, backend::DeviceKind::kGpu);
  EXPECT_EQ(created[0].gpu_device_id, 0);
  EXPECT_EQ(created[1].gpu_device_id, 1);
  EXPECT_TRUE(created[0].io_binding);

  // Two per GPU now: instance 0 (GPU 0) is reused; the new order is
  // GPU 0, GPU 0, GPU 1, GPU 1, so instances 1..3 are created afresh.
  WriteFile("m/config.pbtxt", "instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0, 1 ] } ]\n");
  ASSERT_TRUE(manager.PollOnce().ok());
  created = factory_.created_options();
  ASSERT_EQ(created.size(), 5u);
  EXPECT_EQ(created[2].gpu_device_id, 0);
  EXPECT_EQ(created[3].gpu_device_id, 1);
  EXPECT_EQ(created[4].gpu_device_id, 1);
  auto model = manager.GetModel("m", "");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->sessions.size(), 4u);
}

TEST_P(ModelLifecycleTest, ReadyVersionsListsOnlyServedVersionsInNumericOrder) {
  for (int v : {1, 2, 9, 10}) AddVersion("m", v);
  WriteFile("m/config.pbtxt", "version_policy { all {} }\n");
  factory_.FailCreate("/m/2/");
  auto& manager = Start(ModelControlMode::kExplicit, {"m"});
  EXPECT_EQ(manager.ReadyVersions("m"), (std::vector<std::string>{"1", "9", "10"}));
  EXPECT_TRUE(manager.ReadyVersions("unknown").empty());
  ASSERT_TRUE(manager.UnloadModel("m").ok());
  EXPECT_TRUE(manager.ReadyVersions("m").empty());
}

TEST_P(ModelLifecycleTest, SwappedOutVersionIsReportedReleased) {
  AddVersion("m", 1, "old weights");
  auto& manager = Start(ModelControlMode::kPoll);
  AddVersion("m", 1, "new weights, other size");
  ASSERT_TRUE(manager.PollOnce().ok());
  ASSERT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
  EXPECT_EQ(Released(), std::vector<std::string>{"m/1"});
  EXPECT_EQ(ServedVersion("m"), 1);
}

TEST_P(ModelLifecycleTest, ASlowLoadBlocksNeitherOtherModelsNorTheIndex) {
  AddVersion("fast", 1);
  AddVersion("slow", 1);
  AddVersion("idle", 1);
  auto& manager = Start(ModelControlMode::kExplicit, {"fast"});
  factory_.GateCreate("/slow/");
  absl::Notification loaded;
  absl::Status load_status;
  manager.LoadModelAsync("slow", "", [&](absl::Status s) {
    load_status = s;
    loaded.Notify();
  });
  ASSERT_TRUE(factory_.gate_entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // The load is parked inside session creation: everything else still answers.
  EXPECT_EQ(ServedVersion("fast"), 1);
  EXPECT_EQ(Entry("slow", "1").state, ModelState::kLoading);
  // The index still lists the folder nobody loaded (explicit mode).
  EXPECT_EQ(Entry("idle", "").state, ModelState::kUnavailable);
  EXPECT_EQ(Entry("idle", "").reason, kNeverLoadedReason);
  Pending pending;
  Send("fast", &pending);
  ASSERT_TRUE(pending.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(pending.status.ok());
  factory_.gate_open.Notify();
  ASSERT_TRUE(loaded.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(load_status.ok()) << load_status;
  EXPECT_EQ(ServedVersion("slow"), 1);
}

TEST_P(ModelLifecycleTest, SwapsUnderConcurrentTrafficNeverFailARequest) {
  AddVersion("m", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        Pending pending;
        auto handle = manager.GetModel("m", "");
        if (!handle.ok()) {
          ++failed;
          continue;
        }
        scheduler::Scheduler* scheduler = (*handle)->scheduler.get();
        scheduler->Enqueue(MakeRequest("m"), [handle = *std::move(handle), &pending](
                                                 absl::StatusOr<InferResponse> result) mutable {
          pending.status = result.status();
          pending.done.Notify();
        });
        pending.done.WaitForNotification();
        pending.status.ok() ? ++ok : ++failed;
      }
    });
  }
  int version = 1;
  for (int i = 0; i < 12; ++i) {
    ++version;
    if (i % 4 == 3) factory_.FailCreate("/m/" + std::to_string(version) + "/");
    AddVersion("m", version);
    ASSERT_TRUE(manager.PollOnce().ok());
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ServedVersion("m"), version - 1);  // The last one failed.
  EXPECT_TRUE(manager.WaitForLiveVersions(1, absl::Seconds(10)));
}

INSTANTIATE_TEST_SUITE_P(LoaderThreads, ModelLifecycleTest, ::testing::Values(1, 3));

TEST(WarmupInputsTest, ReadsInputDataFilesAndChecksTheirSize) {
  const fs::path dir = fs::temp_directory_path() / ("ortserve-warmup-" + std::to_string(::getpid()));
  fs::create_directories(dir / "warmup");
  const float values[] = {1.5f, -2.f};
  std::ofstream(dir / "warmup" / "x.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(values), sizeof(values));
  std::ofstream(dir / "warmup" / "short.bin", std::ios::binary) << "abc";

  ModelConfig config;
  config.set_name("m");
  config.set_max_batch_size(4);
  auto* input = config.add_input();
  input->set_name("x");
  input->set_data_type(config::TYPE_FP32);
  input->add_dims(2);
  config::ModelWarmup warmup;
  warmup.set_name("file");
  auto& spec = (*warmup.mutable_inputs())["x"];
  spec.add_dims(2);
  spec.set_input_data_file("x.bin");
  auto inputs = BuildWarmupInputs(config, warmup, dir.string());
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  ASSERT_EQ(inputs->size(), 1u);
  EXPECT_EQ((*inputs)[0].shape, (Shape{1, 2}));
  EXPECT_EQ((*inputs)[0].values<float>()[0], 1.5f);
  EXPECT_EQ((*inputs)[0].values<float>()[1], -2.f);

  spec.set_input_data_file("short.bin");
  EXPECT_EQ(BuildWarmupInputs(config, warmup, dir.string()).status().code(), absl::StatusCode::kInvalidArgument);
  spec.set_input_data_file("../../etc/passwd");
  EXPECT_EQ(BuildWarmupInputs(config, warmup, dir.string()).status().code(), absl::StatusCode::kInvalidArgument);
  spec.set_zero_data(true);
  spec.set_data_type(config::TYPE_INT64);
  spec.clear_dims();
  spec.add_dims(-1);
  EXPECT_EQ(BuildWarmupInputs(config, warmup, dir.string()).status().code(), absl::StatusCode::kInvalidArgument);
  config::ModelWarmup missing;
  missing.set_name("none");
  auto status = BuildWarmupInputs(config, missing, dir.string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("'x'"), std::string::npos) << status;
  fs::remove_all(dir);
}

TEST(ModelSnapshotTest, FingerprintFollowsContentNotTimestamps) {
  const fs::path dir = fs::temp_directory_path() / ("ortserve-snap-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "m" / "1");
  std::ofstream(dir / "m" / "1" / "model.onnx") << "abcd";
  auto a = ReadModelSnapshot(dir.string(), "m");
  ASSERT_TRUE(a.ok());
  fs::last_write_time(dir / "m" / "1" / "model.onnx",
                      fs::last_write_time(dir / "m" / "1" / "model.onnx") + std::chrono::hours(1));
  auto b = ReadModelSnapshot(dir.string(), "m");
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  const auto mtime = fs::last_write_time(dir / "m" / "1" / "model.onnx");
  std::ofstream(dir / "m" / "1" / "model.onnx", std::ios::trunc) << "abce";
  fs::last_write_time(dir / "m" / "1" / "model.onnx", mtime);
  auto c = ReadModelSnapshot(dir.string(), "m");
  EXPECT_NE(a->fingerprint, c->fingerprint);
  EXPECT_EQ(a->model_fingerprint, c->model_fingerprint);
  EXPECT_NE(a->version_fingerprints.at(1), c->version_fingerprints.at(1));
  std::ofstream(dir / "m" / "config.pbtxt") << "max_batch_size: 1";
  auto d = ReadModelSnapshot(dir.string(), "m");
  EXPECT_NE(c->model_fingerprint, d->model_fingerprint);
  EXPECT_TRUE(d->has_config);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ortserve::repository
