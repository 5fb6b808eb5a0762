// SPDX-License-Identifier: Apache-2.0
// Lazy loading: registration without load, single-flight loads on the first
// request, load timeouts with a retry hint, idle unload, and the memory
// budget's least-recently-used eviction. Time is a FakeClock the tests move:
// no test waits for a timeout or an idle period in real time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/synchronization/notification.h"
#include "fakes/controlled_session_factory.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_session.h"
#include "repository/model_manager.h"

namespace ortserve::repository {
namespace {
namespace fs = std::filesystem;
using ::ortserve::testing::FakeSession;

constexpr absl::Duration kWait = absl::Seconds(20);  // Upper bound; tests finish far sooner.

using ControlledFactory = ::ortserve::testing::ControlledSessionFactory;

// What the manager reported through its callbacks, with waits on it.
// Thread-safe.
class Recorder {
 public:
  void Event(std::string_view model, LazyEvent event) {
    absl::MutexLock lock(&mu_);
    events_.emplace_back(std::string(model), event);
  }
  void Warn(const std::string& text) {
    absl::MutexLock lock(&mu_);
    warnings_.push_back(text);
  }
  size_t Count(std::string_view model, LazyEvent event) const {
    absl::MutexLock lock(&mu_);
    return CountLocked(model, event);
  }
  // Waits until `model` had `event` at least `n` times; false on timeout.
  bool WaitFor(std::string_view model, LazyEvent event, size_t n = 1) const {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return CountLocked(model, event) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  // Waits until `n` warnings name `text`; false on timeout.
  bool WaitForWarning(std::string_view text, size_t n = 1) const {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return WarningsLocked(text) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  size_t Warnings(std::string_view text) const {
    absl::MutexLock lock(&mu_);
    return WarningsLocked(text);
  }
  // Every event and warning so far, for failure messages.
  std::string Dump() const {
    absl::MutexLock lock(&mu_);
    std::string text = "events:";
    for (const auto& [model, event] : events_) text += " " + model + "/" + std::string(LazyEventName(event));
    for (const auto& warning : warnings_) text += "\nwarning: " + warning;
    return text;
  }

 private:
  size_t CountLocked(std::string_view model, LazyEvent event) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    size_t n = 0;
    for (const auto& [m, e] : events_) n += m == model && e == event;
    return n;
  }
  size_t WarningsLocked(std::string_view text) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    size_t n = 0;
    for (const auto& w : warnings_) n += w.find(text) != std::string::npos;
    return n;
  }
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, LazyEvent>> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> warnings_ ABSL_GUARDED_BY(mu_);
};

// One AcquireModelAsync answer.
struct Answer {
  absl::Notification done;
  absl::StatusOr<ModelHandle> result;
  bool answered_inline = false;  // On the calling thread, before AcquireModelAsync returned.
};

std::string RetryAfter(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  return payload ? std::string(*payload) : "";
}

// Parameter: loader threads.
class LazyLoadingTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ortserve-lazy-" + std::to_string(::getpid()) + "-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!factory_.gate_open.HasBeenNotified()) factory_.gate_open.Notify();  // Never leave a loader parked.
    manager_.reset();
    fs::remove_all(root_);
  }

  void WriteFile(const fs::path& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary | std::ios::trunc) << text;
  }
  void AddVersion(const std::string& model, int version, size_t bytes = 4) {
    WriteFile(fs::path(model) / std::to_string(version) / "model.onnx", std::string(bytes, 'w'));
  }
  // A lazy model with one version; `lazy_fields` go inside lazy_loading { }.
  void AddLazy(const std::string& model, const std::string& lazy_fields = "", size_t bytes = 4) {
    AddVersion(model, 1, bytes);
    WriteFile(fs::path(model) / "config.pbtxt", "lazy_loading { enable: true " + lazy_fields + " }");
  }

  ModelManager& Start(ModelControlMode mode = ModelControlMode::kNone, std::vector<std::string> startup = {},
                      uint64_t budget = 0) {
    manager_.reset();
    ModelManager::Options options;
    options.repository_path = root_.string();
    options.session_factory = &factory_;
    options.load_threads = GetParam();
    options.control_mode = mode;
    options.startup_models = std::move(startup);
    options.memory_budget_bytes = budget;
    options.clock = &clock_;
    options.warn = [this](const std::string& w) { recorder_.Warn(w); };
    options.lazy_event = [this](std::string_view model, LazyEvent event) { recorder_.Event(model, event); };
    auto manager = ModelManager::Create(std::move(options));
    EXPECT_TRUE(manager.ok());
    manager_ = *std::move(manager);
    EXPECT_TRUE(manager_->LoadAll().ok());
    return *manager_;
  }

  std::shared_ptr<Answer> Acquire(const std::string& model, const std::string& version = "") {
    auto answer = std::make_shared<Answer>();
    const std::thread::id caller = std::this_thread::get_id();
    manager_->AcquireModelAsync(model, version, [answer, caller](absl::StatusOr<ModelHandle> result) {
      answer->answered_inline = std::this_thread::get_id() == caller;
      answer->result = std::move(result);
      answer->done.Notify();
    });
    return answer;
  }
  // Acquires and waits for the answer.
  absl::StatusOr<ModelHandle> AcquireAndWait(const std::string& model, const std::string& version = "") {
    auto answer = Acquire(model, version);
    if (!answer->done.WaitForNotificationWithTimeout(kWait)) return absl::DeadlineExceededError("no answer");
    return answer->result;
  }

  ModelIndexEntry Entry(const std::string& model, const std::string& version) {
    for (const auto& e : manager_->Index()) {
      if (e.name == model && e.version == version) return e;
    }
    return {};
  }

  fs::path root_;
  ::ortserve::testing::FakeClock clock_;  // Declared before the manager: outlives it.
  ControlledFactory factory_;
  Recorder recorder_;
  std::unique_ptr<ModelManager> manager_;
};

TEST_P(LazyLoadingTest, LazyModelsAreRegisteredNotLoadedInEveryControlMode) {
  AddVersion("eager", 1);
  AddLazy("lazy");
  AddVersion("lazy", 2);
  for (ModelControlMode mode : {ModelControlMode::kNone, ModelControlMode::kPoll, ModelControlMode::kExplicit}) {
    SCOPED_TRACE(ModelControlModeName(mode));
    auto& manager = Start(mode, {"eager"});
    EXPECT_EQ(factory_.CreatedFor("/lazy/"), 0u);
    EXPECT_TRUE(manager.GetModel("eager", "").ok());
    // The version policy's choice (latest: 2) is listed, not loaded.
    const ModelIndexEntry entry = Entry("lazy", "2");
    EXPECT_EQ(entry.name, "lazy");
    EXPECT_EQ(entry.state, ModelState::kUnavailable);
    EXPECT_EQ(entry.reason, kLazyNotLoadedReason);
    EXPECT_EQ(Entry("lazy", "1").name, "");
    auto model = manager.GetModel("lazy", "");
    EXPECT_EQ(model.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(std::string(model.status().message()).find("lazy"), std::string::npos) << model.status();
  }
}

TEST_P(LazyLoadingTest, PollRegistersANewLazyModelWithoutLoadingIt) {
  AddVersion("eager", 1);
  auto& manager = Start(ModelControlMode::kPoll);
  AddLazy("late");
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(Entry("late", "1").reason, kLazyNotLoadedReason);
  EXPECT_EQ(factory_.CreatedFor("/late/"), 0u);
  // Polling again with nothing changed loads nothing either.
  ASSERT_TRUE(manager.PollOnce().ok());
  EXPECT_EQ(factory_.CreatedFor("/late/"), 0u);
  ASSERT_TRUE(AcquireAndWait("late").ok());
  EXPECT_EQ(factory_.CreatedFor("/late/"), 1u);
}

TEST_P(LazyLoadingTest, FirstAcquireLoadsTheModelAndAnswersTheHandle) {
  AddLazy("lazy");
  auto& manager = Start();
  auto answer = Acquire("lazy");
  ASSERT_TRUE(answer->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(answer->result.ok()) << answer->result.status();
  EXPECT_FALSE(answer->answered_inline);
  const ModelHandle handle = *answer->result;
  EXPECT_EQ(handle->name, "lazy");
  EXPECT_EQ(handle->version, 1);
  EXPECT_EQ(handle->memory_bytes, 4u);
  EXPECT_GT(handle->last_used_ns.load(), 0);
  EXPECT_EQ(Entry("lazy", "1").state, ModelState::kReady);
  EXPECT_EQ(recorder_.Count("lazy", LazyEvent::kLoadStarted), 1u);
  EXPECT_TRUE(recorder_.WaitFor("lazy", LazyEvent::kLoaded));

  // READY now: the next acquire is answered inline with the same version.
  auto again = Acquire("lazy", "1");
  ASSERT_TRUE(again->done.HasBeenNotified());
  EXPECT_TRUE(again->answered_inline);
  ASSERT_TRUE(again->result.ok());
  EXPECT_EQ(again->result->get(), handle.get());
  EXPECT_EQ(manager.GetModel("lazy", "")->get(), handle.get());
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 1u);
}

TEST_P(LazyLoadingTest, ConcurrentAcquiresShareOneLoad) {
  AddLazy("lazy");
  Start();
  factory_.GateCreate("/lazy/");
  std::vector<std::shared_ptr<Answer>> answers(20);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < answers.size(); ++i) {
    threads.emplace_back([&, i] { answers[i] = Acquire("lazy"); });
  }
  for (auto& t : threads) t.join();  // Every request is in before the load may end.
  ASSERT_TRUE(factory_.gate_entered.WaitForNotificationWithTimeout(kWait));
  for (const auto& answer : answers) EXPECT_FALSE(answer->done.HasBeenNotified());
  factory_.gate_open.Notify();
  for (const auto& answer : answers) {
    ASSERT_TRUE(answer->done.WaitForNotificationWithTimeout(kWait));
    ASSERT_TRUE(answer->result.ok()) << answer->result.status();
    EXPECT_EQ(answer->result->get(), answers[0]->result->get());
  }
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 1u);
  EXPECT_EQ(recorder_.Count("lazy", LazyEvent::kLoadStarted), 1u);
}

TEST_P(LazyLoadingTest, ALoadSlowerThanTheTimeoutAnswersRetryLaterAndGoesOn) {
  AddLazy("lazy", "load_timeout_ms: 50");
  auto& manager = Start();
  factory_.GateCreate("/lazy/");
  auto first = Acquire("lazy");
  ASSERT_TRUE(factory_.gate_entered.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(first->done.HasBeenNotified());
  clock_.Advance(absl::Milliseconds(49));  // Not yet.
  EXPECT_FALSE(first->done.HasBeenNotified());
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(first->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(first->result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(first->result.status().message(), "model 'lazy' is loading (lazy); retry later");
  EXPECT_EQ(RetryAfter(first->result.status()), "1");
  EXPECT_EQ(recorder_.Count("lazy", LazyEvent::kLoadTimedOut), 1u);
  EXPECT_FALSE(manager.GetModel("lazy", "").ok());

  // A request during the load joins it (no second load) and times out too.
  auto second = Acquire("lazy");
  clock_.Advance(absl::Milliseconds(50));
  ASSERT_TRUE(second->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(second->answered_inline);
  EXPECT_EQ(RetryAfter(second->result.status()), "1");

  factory_.gate_open.Notify();
  ASSERT_TRUE(recorder_.WaitFor("lazy", LazyEvent::kLoaded));
  auto later = Acquire("lazy");
  ASSERT_TRUE(later->done.HasBeenNotified());
  EXPECT_TRUE(later->result.ok()) << later->result.status();
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 1u);
  EXPECT_EQ(recorder_.Count("lazy", LazyEvent::kLoadStarted), 1u);
}

TEST_P(LazyLoadingTest, AnIdleModelUnloadsAndTheNextRequestLoadsItAgain) {
  AddLazy("lazy", "idle_unload_seconds: 1");
  auto& manager = Start();
  {
    auto handle = AcquireAndWait("lazy");
    ASSERT_TRUE(handle.ok()) << handle.status();
  }
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_TRUE(manager.GetModel("lazy", "").ok());  // Not idle long enough yet.
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(recorder_.WaitFor("lazy", LazyEvent::kIdleUnloaded));
  EXPECT_EQ(Entry("lazy", "1").state, ModelState::kUnavailable);
  EXPECT_EQ(Entry("lazy", "1").reason, kLazyNotLoadedReason);
  EXPECT_EQ(manager.GetModel("lazy", "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(manager.WaitForLiveVersions(0, kWait));

  auto again = AcquireAndWait("lazy");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 2u);
  EXPECT_EQ(recorder_.Count("lazy", LazyEvent::kLoadStarted), 2u);
}

TEST_P(LazyLoadingTest, UseKeepsAModelFromIdleUnload) {
  AddLazy("a_used", "idle_unload_seconds: 1");
  AddLazy("b_unused", "idle_unload_seconds: 1");
  auto& manager = Start();
  auto used = AcquireAndWait("a_used");
  ASSERT_TRUE(used.ok()) << used.status();
  ASSERT_TRUE(AcquireAndWait("b_unused").ok());
  // A request marks `used` (as the request path does), far ahead.
  (*used)->Touch(clock_.Now() + absl::Hours(1));
  used = absl::UnknownError("dropped");
  clock_.Advance(absl::Seconds(2));
  // b_unused loaded after a_used: once it is unloaded, a_used's load-time
  // deadline has passed too, and only the use kept it (the janitor queues
  // idle unloads in name order, so a wrong a_used unload would come first).
  ASSERT_TRUE(recorder_.WaitFor("b_unused", LazyEvent::kIdleUnloaded));
  EXPECT_TRUE(manager.GetModel("a_used", "").ok());
  EXPECT_EQ(recorder_.Count("a_used", LazyEvent::kIdleUnloaded), 0u);
}

TEST_P(LazyLoadingTest, TheMemoryBudgetEvictsTheLeastRecentlyUsedLazyModel) {
  AddLazy("a", "", 1000);
  AddLazy("b", "", 1000);
  AddLazy("c", "", 1000);
  auto& manager = Start(ModelControlMode::kNone, {}, /*budget=*/2500);
  auto a = AcquireAndWait("a");
  ASSERT_TRUE(a.ok()) << a.status();
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(AcquireAndWait("b").ok());
  // `a` loaded first but was used last: `b` is the least recently used.
  (*a)->Touch(clock_.Now() + absl::Seconds(1));
  *a = nullptr;
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(AcquireAndWait("c").ok());
  ASSERT_TRUE(recorder_.WaitFor("b", LazyEvent::kEvicted)) << recorder_.Dump();
  EXPECT_EQ(Entry("b", "1").reason, kLazyNotLoadedReason);
  EXPECT_TRUE(manager.GetModel("a", "").ok());
  EXPECT_TRUE(manager.GetModel("c", "").ok());
  EXPECT_EQ(recorder_.Count("a", LazyEvent::kEvicted), 0u);
  EXPECT_EQ(recorder_.Count("c", LazyEvent::kEvicted), 0u);
  EXPECT_TRUE(manager.WaitForLiveVersions(2, kWait));

  // An evicted model loads again on its next request (evicting another).
  ASSERT_TRUE(AcquireAndWait("b").ok());
  EXPECT_EQ(factory_.CreatedFor("/b/"), 2u);
}

TEST_P(LazyLoadingTest, NonLazyModelsAreNeverEvicted) {
  AddVersion("big", 1, 5000);
  AddLazy("l1", "", 1000);
  AddLazy("l2", "", 1000);
  auto& manager = Start(ModelControlMode::kNone, {}, /*budget=*/3000);
  // Over budget from the start, with nothing evictable: a warning.
  EXPECT_EQ(recorder_.Warnings("over the memory budget"), 1u);
  ASSERT_TRUE(AcquireAndWait("l1").ok());
  // l1 was just loaded and `big` is not lazy: nothing to evict, warned again.
  ASSERT_TRUE(recorder_.WaitForWarning("over the memory budget", 2));
  EXPECT_TRUE(manager.GetModel("l1", "").ok());
  // l2 loads later: l1 is evicted, `big` never.
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(AcquireAndWait("l2").ok());
  ASSERT_TRUE(recorder_.WaitFor("l1", LazyEvent::kEvicted));
  ASSERT_TRUE(recorder_.WaitForWarning("over the memory budget", 3));
  EXPECT_TRUE(manager.GetModel("big", "").ok());
  EXPECT_TRUE(manager.GetModel("l2", "").ok());
  EXPECT_EQ(recorder_.Count("big", LazyEvent::kEvicted), 0u);
}

TEST_P(LazyLoadingTest, ShutdownAnswersPendingWaiters) {
  AddLazy("lazy");
  auto& manager = Start();
  factory_.GateCreate("/lazy/");
  auto answer = Acquire("lazy");
  ASSERT_TRUE(factory_.gate_entered.WaitForNotificationWithTimeout(kWait));
  // Shutdown waits for the parked load; the waiter is answered before that.
  std::thread shutdown([&] { manager.Shutdown(); });
  ASSERT_TRUE(answer->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(answer->result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(answer->result.status().message()).find("server is shutting down"), std::string::npos)
      << answer->result.status();
  factory_.gate_open.Notify();
  shutdown.join();
  auto after = Acquire("lazy");
  ASSERT_TRUE(after->answered_inline);
  EXPECT_EQ(after->result.status().code(), absl::StatusCode::kUnavailable);
}

TEST_P(LazyLoadingTest, AcquireAnswersInlineWhenThereIsNothingToLoad) {
  AddVersion("eager", 1);
  AddVersion("broken", 1);
  AddLazy("lazy");
  factory_.FailCreate("/broken/");
  Start();
  auto ready = Acquire("eager");
  EXPECT_TRUE(ready->answered_inline);
  EXPECT_TRUE(ready->result.ok());
  auto unknown = Acquire("nope");
  EXPECT_TRUE(unknown->answered_inline);
  EXPECT_EQ(unknown->result.status().code(), absl::StatusCode::kNotFound);
  auto broken = Acquire("broken");
  EXPECT_TRUE(broken->answered_inline);
  EXPECT_EQ(broken->result.status().code(), absl::StatusCode::kUnavailable);
  auto no_version = Acquire("lazy", "7");
  EXPECT_TRUE(no_version->answered_inline);
  EXPECT_EQ(no_version->result.status().code(), absl::StatusCode::kNotFound);
  auto bad_version = Acquire("lazy", "x");
  EXPECT_TRUE(bad_version->answered_inline);
  EXPECT_EQ(bad_version->result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 0u);
}

TEST_P(LazyLoadingTest, AFailedLazyLoadAnswersItsErrorAndBacksOff) {
  AddLazy("lazy");
  factory_.FailCreate("/lazy/");
  auto& manager = Start();
  auto failed = AcquireAndWait("lazy");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(failed.status().message()).find("protobuf parsing failed"), std::string::npos)
      << failed.status();
  EXPECT_NE(manager.LastLoadError("lazy").find("protobuf parsing failed"), std::string::npos);
  // Right after the failure: the error at once, with a retry hint, no new load.
  auto again = Acquire("lazy");
  EXPECT_TRUE(again->answered_inline);
  EXPECT_EQ(again->result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RetryAfter(again->result.status()), "1");
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 1u);
}

TEST_P(LazyLoadingTest, ExplicitLoadLoadsALazyModelNowAndUnloadStopsLazyLoads) {
  AddLazy("lazy");
  auto& manager = Start(ModelControlMode::kExplicit, {});
  EXPECT_EQ(Entry("lazy", "1").reason, kLazyNotLoadedReason);
  ASSERT_TRUE(manager.LoadModel("lazy").ok());
  EXPECT_TRUE(manager.GetModel("lazy", "").ok());
  ASSERT_TRUE(manager.UnloadModel("lazy").ok());
  auto refused = Acquire("lazy");
  EXPECT_TRUE(refused->answered_inline);
  EXPECT_EQ(refused->result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(factory_.CreatedFor("/lazy/"), 1u);
  ASSERT_TRUE(manager.LoadModel("lazy").ok());
  EXPECT_TRUE(Acquire("lazy")->answered_inline);
}

INSTANTIATE_TEST_SUITE_P(LoaderThreads, LazyLoadingTest, ::testing::Values(1, 3));

}  // namespace
}  // namespace ortserve::repository
