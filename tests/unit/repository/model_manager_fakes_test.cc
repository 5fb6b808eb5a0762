// SPDX-License-Identifier: Apache-2.0
// ModelManager on its seams alone: a FakeModelSource (no folders), a
// FakeLoader (no sessions) and a FakeClock (no waiting). Ownership, publish,
// swap, rollback, retirement, polling, cancellation and lazy idle unload.
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_loader.h"
#include "fakes/fake_model_source.h"
#include "repository/model_manager.h"

namespace ortserve::repository {
namespace {

using ::ortserve::testing::FakeClock;
using ::ortserve::testing::FakeLoader;
using ::ortserve::testing::FakeModelSource;

constexpr absl::Duration kWait = absl::Seconds(20);  // Bound on waits for other threads.

class ModelManagerFakesTest : public ::testing::TestWithParam<int> {
 protected:
  ModelManager& Start(ModelControlMode mode, std::vector<std::string> startup = {}) {
    ModelManager::Options options;
    options.source = &source_;
    options.loader = &loader_;
    options.clock = &clock_;
    options.load_threads = GetParam();
    options.control_mode = mode;
    options.startup_models = std::move(startup);
    options.lazy_event = [this](std::string_view model, LazyEvent event) {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::string(model) + "/" + std::string(LazyEventName(event)));
    };
    auto manager = ModelManager::Create(std::move(options));
    EXPECT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    EXPECT_TRUE(manager_->LoadAll().ok());
    return *manager_;
  }
  int64_t Served(const std::string& model) {
    auto handle = manager_->GetModel(model, "");
    return handle.ok() ? (*handle)->version : -1;
  }
  ModelIndexEntry Entry(const std::string& model, const std::string& version) {
    for (const auto& e : manager_->Index()) {
      if (e.name == model && e.version == version) return e;
    }
    return {};
  }
  bool WaitForEvent(const std::string& event) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
  }

  FakeClock clock_;
  FakeModelSource source_;
  FakeLoader loader_{&clock_};
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ModelManager> manager_;  // Last: destroyed before the fakes.
};

TEST_P(ModelManagerFakesTest, LoadsWhatTheSourceListsAndServesTheVersionPolicysChoice) {
  source_.SetModel("a", "", {{1, 11}, {2, 12}});
  source_.SetModel("b", "version_policy { all { } }", {{1, 21}, {3, 23}});
  Start(ModelControlMode::kNone);
  EXPECT_EQ(Served("a"), 2);
  EXPECT_EQ(Entry("a", "1").name, "");  // Latest 1: version 1 is not loaded.
  EXPECT_EQ(Served("b"), 3);
  EXPECT_EQ(Entry("b", "1").state, ModelState::kReady);
  std::vector<std::string> loads = loader_.loads();
  std::sort(loads.begin(), loads.end());
  EXPECT_EQ(loads, (std::vector<std::string>{"a/2", "b/1", "b/3"}));
}

TEST_P(ModelManagerFakesTest, PollSwapsChangedVersionsAndRollsBackFailedOnes) {
  source_.SetModel("m", "", {{1, 100}});
  auto& manager = Start(ModelControlMode::kPoll);
  const ModelHandle first = *manager.GetModel("m", "");
  // Unchanged: nothing loads.
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(loader_.loads().size(), 1u);
  // New bytes for version 1: a safe swap; the old handle stays valid.
  source_.SetModel("m", "", {{1, 101}});
  ASSERT_TRUE(manager.PollOnce().ok());
  const ModelHandle second = *manager.GetModel("m", "");
  EXPECT_NE(second.get(), first.get());
  EXPECT_EQ(first->version, 1);
  // A new version that fails: version 1 keeps serving, 2 shows the error.
  loader_.SetResult("m", 2, absl::InvalidArgumentError("corrupt model"));
  source_.SetModel("m", "", {{1, 101}, {2, 200}});
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(Served("m"), 1);
  EXPECT_EQ(Entry("m", "2").state, ModelState::kUnavailable);
  EXPECT_NE(Entry("m", "2").reason.find("corrupt model"), std::string::npos);
  EXPECT_NE(manager.LastLoadError("m").find("corrupt model"), std::string::npos);
  // Fixed: 2 serves and 1 retires.
  loader_.SetResult("m", 2, absl::OkStatus());
  source_.SetModel("m", "", {{1, 101}, {2, 201}});
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(Served("m"), 2);
  EXPECT_EQ(Entry("m", "1").name, "");
  EXPECT_TRUE(manager.LastLoadError("m").empty());
  // Removed from the source: unloaded and forgotten.
  source_.RemoveModel("m");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(manager.GetModel("m", "").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ModelManagerFakesTest, UnloadCancelsALoadInProgress) {
  source_.SetModel("slow", "", {{1, 1}});
  auto& manager = Start(ModelControlMode::kExplicit);
  loader_.CloseGate("slow");
  absl::Notification loaded;
  absl::Status load_status;
  manager.LoadModelAsync("slow", "", [&](absl::Status status) {
    load_status = std::move(status);
    loaded.Notify();
  });
  ASSERT_TRUE(loader_.WaitForParked(1, kWait));
  EXPECT_EQ(Entry("slow", "1").state, ModelState::kLoading);
  EXPECT_TRUE(manager.UnloadModel("slow").ok());  // Would wait forever on the gate.
  ASSERT_TRUE(loaded.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(load_status.code(), absl::StatusCode::kCancelled) << load_status;
  EXPECT_EQ(Entry("slow", "1").state, ModelState::kUnavailable);
}

TEST_P(ModelManagerFakesTest, ALazyModelLoadsOnFirstUseAndUnloadsWhenIdleOnTheClock) {
  source_.SetModel("lazy", "lazy_loading { enable: true idle_unload_seconds: 60 }", {{1, 1}});
  auto& manager = Start(ModelControlMode::kNone);
  EXPECT_TRUE(loader_.loads().empty());
  EXPECT_EQ(Entry("lazy", "1").reason, kLazyNotLoadedReason);
  absl::Notification done;
  absl::StatusOr<ModelHandle> result;
  manager.AcquireModelAsync("lazy", "", [&](absl::StatusOr<ModelHandle> r) {
    result = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(result.ok()) << result.status();
  result = absl::UnknownError("dropped");
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(Served("lazy"), 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitForEvent("lazy/idle_unloaded"));
  EXPECT_EQ(Entry("lazy", "1").reason, kLazyNotLoadedReason);
  EXPECT_TRUE(manager.WaitForLiveVersions(0, kWait));
}

INSTANTIATE_TEST_SUITE_P(LoaderThreads, ModelManagerFakesTest, ::testing::Values(1, 3));

}  // namespace
}  // namespace ortserve::repository
