// SPDX-License-Identifier: Apache-2.0
// LruLazyLoading on its own, against a fake host (no manager, no files, no
// sessions): single-flight loads, waiter timeouts, the retry backoff, idle
// unloads and memory-budget eviction. Time is a FakeClock; loader tasks run
// on the test thread when the test says so.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "absl/strings/cord.h"
#include "absl/synchronization/notification.h"
#include "core/strings.h"
#include "fakes/fake_clock.h"
#include "repository/lazy_loading.h"

namespace ortserve::repository {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);  // Upper bound; tests finish far sooner.

// The manager's side, in memory. Loader tasks queue until RunTasks().
// Thread-safe.
class FakeLazyHost final : public LazyModelHost {
 public:
  explicit FakeLazyHost(Clock* clock) : clock_(clock) {}

  // A model the host knows: `use.loaded` gives it a version now.
  void Add(LazyModelUse use) {
    absl::MutexLock lock(&mu_);
    Model& model = models_[use.name];
    model.use = use;
    if (use.loaded) Publish(model, use.memory_bytes, use.last_used_ns);
  }
  void FailLoads(absl::Status status) {
    absl::MutexLock lock(&mu_);
    load_result_ = std::move(status);
  }
  int loads() const {
    absl::MutexLock lock(&mu_);
    return loads_;
  }
  std::vector<std::string> unloaded() const {
    absl::MutexLock lock(&mu_);
    return unloaded_;
  }
  size_t pending_tasks() const {
    absl::MutexLock lock(&mu_);
    return tasks_.size();
  }
  // Waits (real time, bounded) until `n` tasks are queued.
  bool WaitForTasks(size_t n) const {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return tasks_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  // Runs the queued loader tasks on this thread, in order.
  void RunTasks() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  void StopLoaders() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }

  absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(StrCat("unknown model '", name, "'"));
    if (!it->second.handle) return absl::UnavailableError(StrCat("model '", name, "' is not ready"));
    return it->second.handle;
  }
  std::optional<LazyModelUse> Use(std::string_view name) const override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return std::nullopt;
    return UseOf(it->second);
  }
  std::vector<LazyModelUse> Uses() const override {
    absl::MutexLock lock(&mu_);
    std::vector<LazyModelUse> uses;
    for (const auto& [name, model] : models_) uses.push_back(UseOf(model));
    return uses;
  }
  absl::Status LoadLazy(const std::string& name, bool* loaded_any) override {
    absl::MutexLock lock(&mu_);
    ++loads_;
    Model& model = models_[name];
    if (!load_result_.ok()) {
      model.use.last_error = std::string(load_result_.message());
      return load_result_;
    }
    Publish(model, model.use.memory_bytes, absl::ToUnixNanos(clock_->Now()));
    *loaded_any = true;
    return absl::OkStatus();
  }
  size_t UnloadLazy(const std::string& name, const std::function<bool(const LazyModelUse&)>& still) override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end() || !it->second.use.lazy || !it->second.handle) return 0;
    if (still && !still(UseOf(it->second))) return 0;
    it->second.handle.reset();
    unloaded_.push_back(name);
    return 1;
  }
  bool Submit(std::function<void()> task) override {
    absl::MutexLock lock(&mu_);
    if (stopped_) return false;
    tasks_.push_back(std::move(task));
    return true;
  }

 private:
  struct Model {
    LazyModelUse use;  // Its settings; loaded, bytes and use come from `handle`.
    ModelHandle handle;
  };
  void Publish(Model& model, uint64_t bytes, int64_t used_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto version = std::make_shared<ModelVersion>();
    version->name = model.use.name;
    version->memory_bytes = bytes;
    version->last_used_ns = used_ns;
    model.handle = std::move(version);
    model.use.published_seq = ++seq_;
  }
  static LazyModelUse UseOf(const Model& model) {
    LazyModelUse use = model.use;
    use.loaded = model.handle != nullptr;
    use.memory_bytes = use.loaded ? model.handle->memory_bytes : 0;
    use.last_used_ns = use.loaded ? model.handle->last_used_ns.load() : 0;
    return use;
  }

  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Model, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  absl::Status load_result_ ABSL_GUARDED_BY(mu_);
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> unloaded_ ABSL_GUARDED_BY(mu_);
};

// One request's answer, waited for with a deadline.
struct Answer {
  absl::Notification done;
  absl::StatusOr<ModelHandle> result = absl::UnknownError("not answered");
  std::function<void(absl::StatusOr<ModelHandle>)> Callback() {
    return [this](absl::StatusOr<ModelHandle> r) {
      result = std::move(r);
      done.Notify();
    };
  }
  bool Wait() { return done.WaitForNotificationWithTimeout(kWait); }
};

LazyModelUse Lazy(std::string name, absl::Duration timeout = absl::Seconds(10),
                  absl::Duration idle = absl::ZeroDuration()) {
  LazyModelUse use;
  use.name = std::move(name);
  use.lazy = true;
  use.load_timeout = timeout;
  use.idle_unload = idle;
  return use;
}

class LazyLoadingPolicyTest : public ::testing::Test {
 protected:
  void Start(uint64_t budget = 0) {
    LruLazyLoading::Options options;
    options.host = &host_;
    options.clock = &clock_;
    options.memory_budget_bytes = budget;
    options.lazy_event = [this](std::string_view model, LazyEvent event) {
      absl::MutexLock lock(&mu_);
      events_.push_back(StrCat(model, ":", LazyEventName(event)));
    };
    policy_ = *LruLazyLoading::Create(std::move(options));
  }
  std::vector<std::string> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  ::ortserve::testing::FakeClock clock_;  // Outlives the policy.
  FakeLazyHost host_{&clock_};
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<LruLazyLoading> policy_;
};

TEST_F(LazyLoadingPolicyTest, ConcurrentRequestsShareOneLoadAndAllGetTheHandle) {
  host_.Add(Lazy("m"));
  Start();
  Answer first, second;
  policy_->Acquire("m", "", first.Callback());
  policy_->Acquire("m", "", second.Callback());
  EXPECT_EQ(host_.pending_tasks(), 1u);  // One load for both.
  host_.RunTasks();
  ASSERT_TRUE(first.Wait());
  ASSERT_TRUE(second.Wait());
  ASSERT_TRUE(first.result.ok()) << first.result.status();
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  EXPECT_EQ(*first.result, *second.result);
  EXPECT_EQ(host_.loads(), 1);
  EXPECT_EQ(events(), (std::vector<std::string>{"m:load_started", "m:loaded"}));
}

TEST_F(LazyLoadingPolicyTest, AWaiterPastTheLoadTimeoutIsToldToRetryWhileTheLoadGoesOn) {
  host_.Add(Lazy("m", absl::Seconds(5)));
  Start();
  Answer waiting;
  policy_->Acquire("m", "", waiting.Callback());
  clock_.Advance(absl::Seconds(4));
  EXPECT_FALSE(waiting.done.HasBeenNotified());
  clock_.Advance(absl::Seconds(1));  // The janitor wakes on the jump.
  ASSERT_TRUE(waiting.Wait());
  EXPECT_EQ(waiting.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waiting.result.status().GetPayload(kRetryAfterPayload), absl::Cord("1"));
  EXPECT_EQ(host_.pending_tasks(), 1u);  // The load was not abandoned.
  host_.RunTasks();
  EXPECT_EQ(host_.loads(), 1);
}

TEST_F(LazyLoadingPolicyTest, AFailedLoadAnswersItsErrorAndIsNotRetriedForASecond) {
  host_.Add(Lazy("m"));
  host_.FailLoads(absl::InternalError("bad weights"));
  Start();
  Answer first;
  policy_->Acquire("m", "", first.Callback());
  host_.RunTasks();
  ASSERT_TRUE(first.Wait());
  EXPECT_NE(first.result.status().message().find("bad weights"), std::string_view::npos) << first.result.status();

  Answer soon;
  policy_->Acquire("m", "", soon.Callback());  // Answered at once, no new load.
  ASSERT_TRUE(soon.done.HasBeenNotified());
  EXPECT_EQ(soon.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(soon.result.status().GetPayload(kRetryAfterPayload).has_value());
  EXPECT_EQ(host_.pending_tasks(), 0u);

  clock_.Advance(absl::Seconds(1));
  host_.FailLoads(absl::OkStatus());
  Answer later;
  policy_->Acquire("m", "", later.Callback());
  host_.RunTasks();
  ASSERT_TRUE(later.Wait());
  EXPECT_TRUE(later.result.ok()) << later.result.status();
  EXPECT_EQ(host_.loads(), 2);
}

TEST_F(LazyLoadingPolicyTest, ChangedFilesLiftTheBackoffAtOnce) {
  host_.Add(Lazy("m"));
  host_.FailLoads(absl::InternalError("bad weights"));
  Start();
  Answer first;
  policy_->Acquire("m", "", first.Callback());
  host_.RunTasks();
  ASSERT_TRUE(first.Wait());
  host_.FailLoads(absl::OkStatus());
  policy_->FilesChanged("m");
  Answer retry;
  policy_->Acquire("m", "", retry.Callback());
  EXPECT_EQ(host_.pending_tasks(), 1u);
  host_.RunTasks();
  ASSERT_TRUE(retry.Wait());
  EXPECT_TRUE(retry.result.ok()) << retry.result.status();
}

TEST_F(LazyLoadingPolicyTest, AnIdleModelUnloadsOnTheClockAndUseKeepsItLoaded) {
  host_.Add(Lazy("m", absl::Seconds(10), absl::Seconds(30)));
  Start();
  Answer loaded;
  policy_->Acquire("m", "", loaded.Callback());
  host_.RunTasks();
  ASSERT_TRUE(loaded.Wait());
  ASSERT_TRUE(loaded.result.ok());

  clock_.Advance(absl::Seconds(20));
  (*loaded.result)->Touch(clock_.Now());  // A use restarts the idle period.
  clock_.Advance(absl::Seconds(20));      // 40 s after the load, 20 s after the use.
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(host_.unloaded().empty());

  clock_.Advance(absl::Seconds(5));  // 30 s after the use.
  ASSERT_TRUE(host_.WaitForTasks(1));
  host_.RunTasks();
  EXPECT_EQ(host_.unloaded(), (std::vector<std::string>{"m"}));
  EXPECT_EQ(events().back(), "m:idle_unloaded");
}

TEST_F(LazyLoadingPolicyTest, TheBudgetEvictsTheLeastRecentlyUsedLazyModelOnly) {
  const int64_t t = absl::ToUnixNanos(clock_.Now());
  LazyModelUse pinned;  // Not lazy: nothing would load it again.
  pinned.name = "pinned";
  pinned.loaded = true;
  pinned.memory_bytes = 100;
  pinned.last_used_ns = t - 3000;
  host_.Add(pinned);
  LazyModelUse old_one = Lazy("old");
  old_one.loaded = true;
  old_one.memory_bytes = 100;
  old_one.last_used_ns = t - 2000;
  host_.Add(old_one);
  LazyModelUse recent = Lazy("recent");
  recent.loaded = true;
  recent.memory_bytes = 100;
  recent.last_used_ns = t - 1000;
  host_.Add(recent);
  host_.Add(Lazy("new"));
  Start(/*budget=*/350);

  Answer loaded;
  policy_->Acquire("new", "", loaded.Callback());
  host_.RunTasks();  // Loads "new" (0 bytes: the fake's default), then the budget.
  ASSERT_TRUE(loaded.Wait());
  EXPECT_TRUE(host_.unloaded().empty());  // 300 <= 350.

  host_.Add(Lazy("big"));
  LazyModelUse big = *host_.Use("big");
  big.memory_bytes = 150;
  host_.Add(big);
  Answer loaded_big;
  policy_->Acquire("big", "", loaded_big.Callback());
  host_.RunTasks();  // 450 > 350: the least recently used lazy one goes.
  ASSERT_TRUE(loaded_big.Wait());
  EXPECT_EQ(host_.unloaded(), (std::vector<std::string>{"old"}));
  EXPECT_EQ(events().back(), "old:evicted");
}

TEST_F(LazyLoadingPolicyTest, ShutdownAnswersWaitersAndRefusesLaterRequests) {
  host_.Add(Lazy("m"));
  Start();
  Answer waiting;
  policy_->Acquire("m", "", waiting.Callback());
  policy_->Shutdown();
  ASSERT_TRUE(waiting.done.HasBeenNotified());
  EXPECT_EQ(waiting.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(waiting.result.status().message().find("shutting down"), std::string_view::npos);
  Answer after;
  policy_->Acquire("m", "", after.Callback());
  ASSERT_TRUE(after.done.HasBeenNotified());
  EXPECT_NE(after.result.status().message().find("shutting down"), std::string_view::npos);
}

TEST_F(LazyLoadingPolicyTest, ALoadThatCannotBeQueuedAnswersShuttingDown) {
  host_.Add(Lazy("m"));
  host_.StopLoaders();
  Start();
  Answer answer;
  policy_->Acquire("m", "", answer.Callback());
  ASSERT_TRUE(answer.done.HasBeenNotified());
  EXPECT_NE(answer.result.status().message().find("shutting down"), std::string_view::npos);
}

}  // namespace
}  // namespace ortserve::repository
