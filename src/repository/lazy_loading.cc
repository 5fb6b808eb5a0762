// SPDX-License-Identifier: Apache-2.0
// LruLazyLoading: single-flight lazy loads and their waiters, the janitor
// (waiter timeouts, idle unloads) on the injected Clock, and the memory
// budget's least-recently-used eviction. Loads and unloads are the host's
// (the ModelManager's); this file only decides when.
#include "repository/lazy_loading.h"

#include <algorithm>
#include <limits>

#include "absl/strings/cord.h"
#include "core/strings.h"
#include "scheduler/observable_clock.h"

namespace ortserve::repository {
namespace {

// A failed lazy load is not tried again sooner than this: requests meanwhile
// get its error at once instead of starting load after failing load.
constexpr absl::Duration kRetryBackoff = absl::Seconds(1);

// Unavailable with a retry hint of `seconds` (at least 1).
absl::Status RetryLater(std::string message, int64_t seconds) {
  absl::Status status = absl::UnavailableError(std::move(message));
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(std::max<int64_t>(1, seconds))));
  return status;
}

absl::Status ShuttingDown(std::string_view name) {
  return absl::UnavailableError(StrCat("model '", name, "': server is shutting down"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LruLazyLoading>> LruLazyLoading::Create(Options options) {
  if (options.host == nullptr) return absl::InvalidArgumentError("LruLazyLoading needs a host");
  return std::unique_ptr<LruLazyLoading>(new LruLazyLoading(std::move(options)));
}

LruLazyLoading::LruLazyLoading(Options options)
    : options_(std::move(options)),
      host_(options_.host),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()) {
  // A clock that jumps (a test's FakeClock) wakes the janitor, whose waits
  // for deadlines are in that clock's time.
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) {
    observable->AddObserver(this, [this] { WakeJanitor(); });
  }
  janitor_ = std::thread([this] { JanitorLoop(); });
}

LruLazyLoading::~LruLazyLoading() { Shutdown(); }

void LruLazyLoading::Acquire(std::string name, std::string version,
                             std::function<void(absl::StatusOr<ModelHandle>)> done) {
  absl::StatusOr<ModelHandle> found;
  bool start_load = false;
  {
    absl::MutexLock lock(&mu_);
    // Looked up again under mu_: a load that finished since the manager
    // looked has published, or its waiters are still ours to answer.
    found = stopped_ ? ShuttingDown(name) : host_->GetModel(name, version);
    std::optional<LazyModelUse> use;
    if (!stopped_ && !found.ok() && found.status().code() == absl::StatusCode::kUnavailable) {
      use = host_->Use(name);
    }
    if (use && use->lazy && !use->loaded) {
      const absl::Time now = clock_->Now();
      const History& history = history_[name];
      auto load = loads_.find(name);
      if (load == loads_.end() && now - history.failed_at < kRetryBackoff) {
        // The last load failed a moment ago: its error, not another load.
        found = RetryLater(StrCat("model '", name, "' failed to load (lazy): ", use->last_error),
                           absl::ToInt64Seconds(
                               absl::Ceil(history.failed_at + kRetryBackoff - now, absl::Seconds(1))));
      } else {
        if (load == loads_.end()) {
          load = loads_.emplace(name, Load{now, {}}).first;
          start_load = true;
        }
        load->second.waiters.push_back({std::move(version), now + use->load_timeout, std::move(done)});
        done = nullptr;
      }
    }
  }
  if (done) {
    if (found.ok()) (*found)->Touch(clock_->Now());
    done(std::move(found));
    return;
  }
  WakeJanitor();  // A new deadline.
  if (!start_load) return;
  Emit(name, LazyEvent::kLoadStarted, StrCat("model '", name, "': first request, lazy load started"));
  if (!host_->Submit([this, name] { RunLoad(name); })) {
    // Shutting down: answer the waiters here (Shutdown may have run already).
    std::vector<Waiter> waiters;
    {
      absl::MutexLock lock(&mu_);
      auto load = loads_.find(name);
      if (load != loads_.end()) {
        waiters = std::move(load->second.waiters);
        loads_.erase(load);
      }
    }
    for (auto& waiter : waiters) waiter.done(ShuttingDown(name));
  }
}

void LruLazyLoading::RunLoad(const std::string& name) {
  const absl::Time start = clock_->Now();
  bool loaded_any = false;
  const absl::Status status = host_->LoadLazy(name, &loaded_any);
  const absl::Duration took = clock_->Now() - start;
  std::vector<std::pair<Waiter, absl::StatusOr<ModelHandle>>> answers;
  {
    absl::MutexLock lock(&mu_);
    std::vector<Waiter> waiters;
    if (auto load = loads_.find(name); load != loads_.end()) {
      waiters = std::move(load->second.waiters);
      loads_.erase(load);
    }
    History& history = history_[name];
    if (status.ok()) {
      history.last_load_duration = took;
      history.failed_at = absl::InfinitePast();
    } else {
      history.failed_at = clock_->Now();
    }
    for (auto& waiter : waiters) {
      absl::StatusOr<ModelHandle> result = host_->GetModel(name, waiter.version);
      if (!result.ok() && !status.ok() && result.status().code() == absl::StatusCode::kUnavailable) {
        result = absl::UnavailableError(StrCat("model '", name, "' failed to load (lazy): ", status.message()));
      }
      answers.emplace_back(std::move(waiter), std::move(result));
    }
  }
  WakeJanitor();  // The idle clock of the loaded versions runs from now.
  for (auto& [waiter, result] : answers) {
    if (result.ok()) (*result)->Touch(clock_->Now());
    waiter.done(std::move(result));
  }
  answers.clear();
  if (status.ok()) {
    Emit(name, LazyEvent::kLoaded, StrCat("model '", name, "' loaded lazily in ", absl::FormatDuration(took)));
  }
  if (loaded_any) Loaded(name);
}

void LruLazyLoading::FilesChanged(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (auto it = history_.find(name); it != history_.end()) it->second.failed_at = absl::InfinitePast();
}

void LruLazyLoading::IdleUnload(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    idle_unload_queued_.erase(name);
  }
  absl::Duration idle_for;
  // Checked again under the load lock: a request may have come since the
  // janitor looked.
  const size_t retired = host_->UnloadLazy(name, [&](const LazyModelUse& use) {
    idle_for = use.idle_unload;
    return use.loaded && use.idle_unload > absl::ZeroDuration() &&
           clock_->Now() - absl::FromUnixNanos(use.last_used_ns) >= use.idle_unload;
  });
  if (retired > 0) {
    Emit(name, LazyEvent::kIdleUnloaded,
         StrCat("model '", name, "' unloaded (idle for ", absl::FormatDuration(idle_for), "); ", retired,
                " version(s) release once their requests finish; the next request loads it again"));
  }
  WakeJanitor();  // Its next idle deadline, if it stayed.
}

void LruLazyLoading::Loaded(const std::string& just_loaded) { EnforceMemoryBudget(just_loaded); }

void LruLazyLoading::EnforceMemoryBudget(const std::string& just_loaded) {
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget == 0) return;
  // Each pass unloads one model or stops; the bound only guards against a
  // victim that keeps coming back.
  for (int pass = 0; pass < 1000; ++pass) {
    // Candidates are the lazy models used less recently than `just_loaded`
    // and published before it. When loads finish concurrently, each one's
    // enforcement thus leaves the later ones alone (a model loaded a moment
    // later for a waiting request is never the victim) and never evicts what
    // is more recently used than itself; the last load's enforcement settles
    // the budget.
    const std::vector<LazyModelUse> uses = host_->Uses();
    uint64_t loaded_seq = std::numeric_limits<uint64_t>::max();
    int64_t loaded_used = std::numeric_limits<int64_t>::max();
    for (const LazyModelUse& use : uses) {
      if (use.name != just_loaded) continue;
      loaded_seq = use.published_seq;
      if (use.loaded) loaded_used = use.last_used_ns;
    }
    uint64_t total = 0;
    std::string victim;
    int64_t victim_used = 0;
    bool newer_loaded = false;
    for (const LazyModelUse& use : uses) {
      total += use.memory_bytes;
      if (!use.loaded || !use.lazy || use.name == just_loaded) continue;
      if (use.published_seq > loaded_seq) {
        newer_loaded = true;
        continue;
      }
      if (use.last_used_ns >= loaded_used) continue;
      if (victim.empty() || use.last_used_ns < victim_used) {
        victim = use.name;
        victim_used = use.last_used_ns;
      }
    }
    if (total <= budget) return;
    if (victim.empty() && newer_loaded) return;  // A newer load's enforcement decides.
    if (victim.empty()) {
      if (options_.warn) {
        options_.warn(StrCat("loaded models use ", total, " bytes of model files, over the memory budget of ", budget,
                             " bytes (after loading model '", just_loaded,
                             "'), and no lazy model used less recently than it is loaded to evict"));
      }
      return;
    }
    const size_t retired = host_->UnloadLazy(victim, nullptr);
    if (retired == 0) continue;  // Changed meanwhile (unloaded, no longer lazy): look again.
    Emit(victim, LazyEvent::kEvicted,
         StrCat("model '", victim, "' unloaded (evicted, least recently used: loaded models used ", total,
                " bytes, over the memory budget of ", budget, " bytes); ", retired,
                " version(s) release once their requests finish; the next request loads it again"));
  }
}

void LruLazyLoading::WakeJanitor() {
  absl::MutexLock lock(&janitor_mu_);
  ++janitor_wakeups_;
}

void LruLazyLoading::JanitorLoop() {
  uint64_t seen = 0;
  for (;;) {
    {
      absl::MutexLock lock(&janitor_mu_);
      if (stop_janitor_) return;
      seen = janitor_wakeups_;
    }
    const absl::Time now = clock_->Now();
    absl::Time next = absl::InfiniteFuture();
    std::vector<std::pair<std::string, Waiter>> expired;
    std::vector<std::pair<std::string, int64_t>> retry_after;
    std::vector<std::string> idle;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [name, load] : loads_) {
        auto& waiters = load.waiters;
        auto split = std::partition(waiters.begin(), waiters.end(),
                                    [&](const Waiter& w) { return w.deadline > now; });
        for (auto w = waiters.begin(); w != split; ++w) next = std::min(next, w->deadline);
        if (split == waiters.end()) continue;
        // The retry hint: what a previous load of this model took, less the
        // time this one has run; 1 s when unknown.
        int64_t seconds = 1;
        if (auto it = history_.find(name);
            it != history_.end() && it->second.last_load_duration > absl::ZeroDuration()) {
          seconds = absl::ToInt64Seconds(
              absl::Ceil(it->second.last_load_duration - (now - load.started), absl::Seconds(1)));
        }
        retry_after.emplace_back(name, std::max<int64_t>(1, seconds));
        for (auto w = split; w != waiters.end(); ++w) expired.emplace_back(name, std::move(*w));
        waiters.erase(split, waiters.end());
      }
      if (!stopped_) {
        for (const LazyModelUse& use : host_->Uses()) {
          if (!use.lazy || !use.loaded || use.idle_unload <= absl::ZeroDuration() ||
              idle_unload_queued_.contains(use.name)) {
            continue;
          }
          const absl::Time deadline = absl::FromUnixNanos(use.last_used_ns) + use.idle_unload;
          if (deadline <= now) {
            idle_unload_queued_.insert(use.name);
            idle.push_back(use.name);
          } else {
            next = std::min(next, deadline);
          }
        }
      }
    }
    // Outside the lock: answers, events and the unload tasks.
    for (const auto& [name, seconds] : retry_after) {
      Emit(name, LazyEvent::kLoadTimedOut,
           StrCat("model '", name, "': lazy load still running after load_timeout_ms; waiting requests "
                  "answered Unavailable, retry in ", seconds, " s"));
    }
    for (auto& [name, waiter] : expired) {
      int64_t seconds = 1;
      for (const auto& [n, s] : retry_after) {
        if (n == name) seconds = s;
      }
      // One event per request answered (the log line above is per model).
      if (options_.lazy_event) options_.lazy_event(name, LazyEvent::kLoadTimedOut);
      waiter.done(RetryLater(StrCat("model '", name, "' is loading (lazy); retry later"), seconds));
    }
    expired.clear();
    for (const auto& name : idle) {
      if (!host_->Submit([this, name] { IdleUnload(name); })) {
        absl::MutexLock lock(&mu_);
        idle_unload_queued_.erase(name);
      }
    }
    absl::MutexLock lock(&janitor_mu_);
    auto woken = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(janitor_mu_) {
      return stop_janitor_ || janitor_wakeups_ != seen;
    };
    // In the clock's time: a FakeClock's jump wakes this wait (observer).
    janitor_mu_.AwaitWithTimeout(absl::Condition(&woken), next == absl::InfiniteFuture()
                                                              ? absl::InfiniteDuration()
                                                              : next - clock_->Now());
    if (stop_janitor_) return;
  }
}

void LruLazyLoading::Shutdown() {
  std::vector<std::pair<std::string, Waiter>> waiters;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [name, load] : loads_) {
      for (auto& waiter : load.waiters) waiters.emplace_back(name, std::move(waiter));
      load.waiters.clear();  // The load itself ends with the host's loaders.
    }
  }
  {
    absl::MutexLock lock(&janitor_mu_);
    stop_janitor_ = true;
  }
  if (janitor_.joinable()) janitor_.join();
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) observable->RemoveObserver(this);
  for (auto& [name, waiter] : waiters) waiter.done(ShuttingDown(name));
}

void LruLazyLoading::Emit(const std::string& name, LazyEvent event, const std::string& log) {
  if (options_.info) options_.info(log);
  // kLoadTimedOut is counted per request by the janitor itself.
  if (options_.lazy_event && event != LazyEvent::kLoadTimedOut) options_.lazy_event(name, event);
}

}  // namespace ortserve::repository
