// SPDX-License-Identifier: Apache-2.0
// The lazy-loading layer above the ModelManager: which models load on their
// first request, who waits for that load and how long, when an idle model
// unloads, and which model the memory budget evicts. The manager owns every
// version and does each load and unload; this layer only decides when, and
// asks through LazyModelHost (TF Serving's caching manager over its basic
// manager).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "repository/model_version.h"

namespace ortserve::repository {

// One model as the lazy layer sees it, read from the manager in one step.
struct LazyModelUse {
  std::string name;
  bool lazy = false;           // Its config enables lazy loading (and no unload turned it off).
  bool loaded = false;         // At least one version serves.
  uint64_t memory_bytes = 0;   // Of the loaded versions.
  int64_t last_used_ns = 0;    // Latest ModelVersion::Touch of a loaded version.
  uint64_t published_seq = 0;  // Order of its last publish among all models.
  absl::Duration load_timeout;  // How long a request waits for its lazy load.
  absl::Duration idle_unload;   // Unused this long, it unloads; zero: never.
  std::string last_error;       // Its last failed load, empty if none.
};

// What the lazy layer asks of the manager. The manager implements it.
//
// Thread-safe. None of these is called with a lazy-layer lock held except
// GetModel, Use and Uses, which take only the manager's state lock briefly;
// the manager never calls the lazy layer with that lock held.
class LazyModelHost {
 public:
  virtual ~LazyModelHost() = default;
  // As ModelManager::GetModel.
  virtual absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const = 0;
  // `name` now; nullopt when the manager does not know it.
  virtual std::optional<LazyModelUse> Use(std::string_view name) const = 0;
  // Every model the manager knows.
  virtual std::vector<LazyModelUse> Uses() const = 0;
  // Loads lazy model `name` now, on the calling (loader) thread; sets
  // `loaded_any` when a version was published. Errors: the load's.
  virtual absl::Status LoadLazy(const std::string& name, bool* loaded_any) = 0;
  // Under `name`'s load lock: if it is lazy and loaded, and `still` (may be
  // empty) approves of its use read at that moment, unloads it back to "not
  // loaded" (admitted requests finish). Returns the versions retired; 0 when
  // nothing was unloaded. `still` runs with the manager's lock held and must
  // only read its argument and the clock.
  virtual size_t UnloadLazy(const std::string& name, const std::function<bool(const LazyModelUse&)>& still) = 0;
  // Runs `task` on a loader thread; false when shutting down (not run).
  virtual bool Submit(std::function<void()> task) = 0;
};

// The policy the manager calls for lazy models (see "Lazy loading" in
// model_manager.h for the behaviour users see).
//
// Thread-safe.
class LazyLoadingPolicy {
 public:
  virtual ~LazyLoadingPolicy() = default;
  // A request for lazy model `name`, which the manager found not loaded.
  // `done` runs exactly once, never with a lock held: with the handle
  // (Touch()ed) once the load finishes, the load's error, Unavailable with
  // kRetryAfterPayload when the load outlasts the model's load_timeout or a
  // load failed within the last second, or Unavailable "server is shutting
  // down". It may run inline.
  virtual void Acquire(std::string name, std::string version,
                       std::function<void(absl::StatusOr<ModelHandle>)> done) = 0;
  // A load published a version of `name` (any load, lazy or not): the
  // memory budget is enforced now, on the calling thread.
  virtual void Loaded(const std::string& name) = 0;
  // `name`'s files changed: a failed lazy load may be tried again at once.
  virtual void FilesChanged(const std::string& name) = 0;
  // Answers every waiting request Unavailable "server is shutting down",
  // stops the background thread and refuses later Acquires the same way.
  // Loads in progress end with the manager's loader threads. Idempotent.
  virtual void Shutdown() = 0;
};

// Single-flight lazy loads, waiter timeouts and idle unloads on the injected
// Clock (one janitor thread), and least-recently-used eviction of lazy
// models over a memory budget.
//
// Thread-safe. Threads owned: the janitor (waiter timeouts, idle deadlines);
// loads and unloads run on the host's loader threads.
class LruLazyLoading final : public LazyLoadingPolicy {
 public:
  struct Options {
    LazyModelHost* host = nullptr;  // Required. Not owned; outlives this.
    // Waiter deadlines, idle unloads and the retry backoff. Not owned; null:
    // Clock::Real(). A scheduler::ObservableClock (tests' FakeClock) wakes
    // the janitor whenever it moves, so tests advance time, never sleep.
    Clock* clock = nullptr;
    // Sum of ModelVersion::memory_bytes loaded models may reach before lazy
    // ones are evicted, least recently used first. 0: no budget.
    uint64_t memory_budget_bytes = 0;
    // Each event's log line; from loader or janitor threads, no lock held.
    std::function<void(const std::string&)> info;
    // A budget that no eviction can meet.
    std::function<void(const std::string&)> warn;
    // Each lazy-loading event (kLoadTimedOut once per request answered).
    std::function<void(std::string_view model, LazyEvent event)> lazy_event;
  };
  // Starts the janitor. Errors: InvalidArgument without a host.
  static absl::StatusOr<std::unique_ptr<LruLazyLoading>> Create(Options options);
  ~LruLazyLoading() override;  // Shutdown(), then joins the janitor.

  void Acquire(std::string name, std::string version,
               std::function<void(absl::StatusOr<ModelHandle>)> done) override;
  void Loaded(const std::string& name) override;
  void FilesChanged(const std::string& name) override;
  void Shutdown() override;

 private:
  struct Waiter {
    std::string version;
    absl::Time deadline;
    std::function<void(absl::StatusOr<ModelHandle>)> done;
  };
  // The one load in flight for a model, and who waits on it.
  struct Load {
    absl::Time started;
    std::vector<Waiter> waiters;
  };
  // What this layer remembers of a model between loads.
  struct History {
    absl::Duration last_load_duration;            // Zero until a lazy load succeeded.
    absl::Time failed_at = absl::InfinitePast();  // The last failed lazy load.
  };

  explicit LruLazyLoading(Options options);
  void RunLoad(const std::string& name);
  void IdleUnload(const std::string& name);
  void EnforceMemoryBudget(const std::string& just_loaded);
  void JanitorLoop();
  void WakeJanitor();
  void Emit(const std::string& name, LazyEvent event, const std::string& log);

  const Options options_;
  LazyModelHost* const host_;
  Clock* const clock_;

  // Taken before the host's state lock (Acquire reads the host under it),
  // never across a load or an unload.
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Load, std::less<>> loads_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, History, std::less<>> history_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> idle_unload_queued_ ABSL_GUARDED_BY(mu_);

  // The janitor sleeps until the next waiter or idle deadline, or until
  // woken (a new waiter, a finished load, the clock moved).
  absl::Mutex janitor_mu_;
  uint64_t janitor_wakeups_ ABSL_GUARDED_BY(janitor_mu_) = 0;
  bool stop_janitor_ ABSL_GUARDED_BY(janitor_mu_) = false;
  std::thread janitor_;
};

}  // namespace ortserve::repository
