// SPDX-License-Identifier: Apache-2.0
// The lazy-loading and memory-budget layer of ModelManager (see "Lazy
// loading" in model_manager.h): the request path's AcquireModelAsync, the
// single-flight lazy load and its waiters, the janitor thread (waiter
// timeouts, idle unloads, on the injected Clock) and least-recently-used
// eviction. It changes served versions only through the manager's own
// publish/unload steps; the core load/swap/rollback lives in
// model_manager.cc.
#include <algorithm>
#include <limits>

#include "absl/strings/cord.h"
#include "core/status.h"
#include "core/strings.h"
#include "repository/model_manager.h"

namespace ortserve::repository {
namespace {

// A failed lazy load is not tried again sooner than this: requests meanwhile
// get its error at once instead of starting load after failing load.
constexpr absl::Duration kLazyRetryBackoff = absl::Seconds(1);

// Unavailable with a retry hint of `seconds` (at least 1).
absl::Status RetryLater(std::string message, int64_t seconds) {
  absl::Status status = absl::UnavailableError(std::move(message));
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(std::max<int64_t>(1, seconds))));
  return status;
}

}  // namespace

void ModelManager::AcquireModelAsync(std::string name, std::string version,
                                     std::function<void(absl::StatusOr<ModelHandle>)> done) {
  absl::StatusOr<ModelHandle> found;
  bool start_load = false;
  {
    absl::MutexLock lock(&mu_);
    found = shutting_down_ ? absl::UnavailableError(StrCat("model '", name, "': server is shutting down"))
                           : GetModelLocked(name, version);
    if (!shutting_down_ && !found.ok() && found.status().code() == absl::StatusCode::kUnavailable) {
      auto it = models_.find(name);
      bool loaded = false;
      if (it != models_.end()) {
        for (const auto& [v, slot] : it->second.versions) loaded |= slot.handle != nullptr;
      }
      const absl::Time now = clock_->Now();
      if (it != models_.end() && it->second.lazy && !loaded) {
        ModelEntry& entry = it->second;
        auto load = lazy_loads_.find(name);
        if (load == lazy_loads_.end() && now - entry.lazy_failed_at < kLazyRetryBackoff) {
          // The last load failed a moment ago: its error, not another load.
          found = RetryLater(StrCat("model '", name, "' failed to load (lazy): ", entry.last_error),
                             absl::ToInt64Seconds(absl::Ceil(entry.lazy_failed_at + kLazyRetryBackoff - now,
                                                             absl::Seconds(1))));
        } else {
          if (load == lazy_loads_.end()) {
            load = lazy_loads_.emplace(name, LazyLoad{now, {}}).first;
            start_load = true;
          }
          load->second.waiters.push_back({version, now + entry.lazy_load_timeout, std::move(done)});
          done = nullptr;
        }
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
  EmitLazyEvent(name, LazyEvent::kLoadStarted, StrCat("model '", name, "': first request, lazy load started"));
  if (!loaders_->Submit([this, name] { RunLazyLoad(name); })) {
    // Shutting down: Shutdown answers the waiters (it takes them under mu_).
    std::vector<LazyWaiter> waiters;
    {
      absl::MutexLock lock(&mu_);
      auto load = lazy_loads_.find(name);
      if (load != lazy_loads_.end()) {
        waiters = std::move(load->second.waiters);
        lazy_loads_.erase(load);
      }
    }
    for (auto& waiter : waiters) {
      waiter.done(absl::UnavailableError(StrCat("model '", name, "': server is shutting down")));
    }
  }
}

void ModelManager::RunLazyLoad(const std::string& name) {
  const absl::Time start = clock_->Now();
  bool loaded_any = false;
  const absl::Status status = ReloadModel(name, nullptr, LoadReason::kLazyAcquire, &loaded_any);
  const absl::Duration took = clock_->Now() - start;
  std::vector<std::pair<LazyWaiter, absl::StatusOr<ModelHandle>>> answers;
  {
    absl::MutexLock lock(&mu_);
    auto load = lazy_loads_.find(name);
    std::vector<LazyWaiter> waiters;
    if (load != lazy_loads_.end()) {
      waiters = std::move(load->second.waiters);
      lazy_loads_.erase(load);
    }
    auto it = models_.find(name);
    if (it != models_.end()) {
      if (status.ok()) {
        it->second.last_lazy_load_duration = took;
        it->second.lazy_failed_at = absl::InfinitePast();
      } else {
        it->second.lazy_failed_at = clock_->Now();
      }
    }
    for (auto& waiter : waiters) {
      absl::StatusOr<ModelHandle> result = GetModelLocked(name, waiter.version);
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
    EmitLazyEvent(name, LazyEvent::kLoaded,
                  StrCat("model '", name, "' loaded lazily in ", absl::FormatDuration(took)));
  }
  if (loaded_any) EnforceMemoryBudget(name);
}

bool ModelManager::UnloadLazyNow(const std::string& name, std::string_view why, LazyEvent event) {
  std::vector<ModelHandle> retired;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end() || !it->second.lazy) return false;
    for (auto& [version, slot] : it->second.versions) {
      if (!slot.handle) continue;
      retired.push_back(std::move(slot.handle));
      slot.handle = nullptr;
      slot.state = ModelState::kUnavailable;
      slot.reason = kLazyNotLoadedReason;
      slot.loaded_fingerprint = 0;
    }
    if (retired.empty()) return false;
    // Versions that were not serving (a failed load) go back to "not loaded"
    // too: the next request tries them again.
    for (auto& [version, slot] : it->second.versions) {
      slot.state = ModelState::kUnavailable;
      slot.reason = kLazyNotLoadedReason;
    }
  }
  EmitLazyEvent(name, event,
                StrCat("model '", name, "' unloaded (", why, "); ", retired.size(),
                       " version(s) release once their requests finish; the next request loads it again"));
  retired.clear();  // Outside the lock: the release thread destroys them once drained.
  return true;
}

void ModelManager::IdleUnload(const std::string& name) {
  absl::MutexLock load_lock(ModelLoadLock(name));
  bool idle = false;
  absl::Duration idle_for;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return;
    ModelEntry& entry = it->second;
    entry.idle_unload_queued = false;
    const LoadedUse use = LoadedUseOf(entry);
    // Checked again here: a request may have come since the janitor looked.
    idle = use.loaded && entry.lazy && entry.lazy_idle_unload > absl::ZeroDuration() &&
           clock_->Now() - absl::FromUnixNanos(use.last_used_ns) >= entry.lazy_idle_unload;
    idle_for = entry.lazy_idle_unload;
  }
  if (idle) {
    (void)UnloadLazyNow(name, StrCat("idle for ", absl::FormatDuration(idle_for)), LazyEvent::kIdleUnloaded);
  }
  WakeJanitor();  // Its next idle deadline, if it stayed.
}

void ModelManager::EnforceMemoryBudget(const std::string& just_loaded) {
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget == 0) return;
  // Each pass unloads one model or stops; the bound only guards against a
  // victim that keeps coming back.
  for (int pass = 0; pass < 1000; ++pass) {
    uint64_t total = 0;
    std::string victim;
    // Candidates are the lazy models used less recently than `just_loaded`
    // and published before it. When loads finish concurrently, each one's
    // enforcement thus leaves the later ones alone (a model loaded a moment
    // later for a waiting request is never the victim) and never evicts what
    // is more recently used than itself; the last load's enforcement settles
    // the budget.
    bool newer_loaded = false;
    {
      absl::MutexLock lock(&mu_);
      uint64_t loaded_seq = std::numeric_limits<uint64_t>::max();
      int64_t loaded_used = std::numeric_limits<int64_t>::max();
      if (auto it = models_.find(just_loaded); it != models_.end()) {
        loaded_seq = it->second.published_seq;
        if (const LoadedUse use = LoadedUseOf(it->second); use.loaded) loaded_used = use.last_used_ns;
      }
      int64_t victim_used = 0;
      for (const auto& [name, entry] : models_) {
        const LoadedUse use = LoadedUseOf(entry);
        const int64_t last_used = use.last_used_ns;
        total += use.memory_bytes;
        if (!use.loaded || !entry.lazy || name == just_loaded) continue;
        if (entry.published_seq > loaded_seq) {
          newer_loaded = true;
          continue;
        }
        if (last_used >= loaded_used) continue;
        if (victim.empty() || last_used < victim_used) {
          victim = name;
          victim_used = last_used;
        }
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
    absl::MutexLock load_lock(ModelLoadLock(victim));
    if (!UnloadLazyNow(victim,
                       StrCat("evicted, least recently used: loaded models used ", total,
                              " bytes, over the memory budget of ", budget, " bytes"),
                       LazyEvent::kEvicted)) {
      continue;  // Changed meanwhile (unloaded, no longer lazy): look again.
    }
  }
}

void ModelManager::WakeJanitor() {
  absl::MutexLock lock(&janitor_mu_);
  ++janitor_wakeups_;
}

void ModelManager::JanitorLoop() {
  uint64_t seen = 0;
  for (;;) {
    {
      absl::MutexLock lock(&janitor_mu_);
      if (stop_janitor_) return;
      seen = janitor_wakeups_;
    }
    const absl::Time now = clock_->Now();
    absl::Time next = absl::InfiniteFuture();
    std::vector<std::pair<std::string, LazyWaiter>> expired;
    std::vector<std::pair<std::string, int64_t>> retry_after;
    std::vector<std::string> idle;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [name, load] : lazy_loads_) {
        auto& waiters = load.waiters;
        auto split = std::partition(waiters.begin(), waiters.end(),
                                    [&](const LazyWaiter& w) { return w.deadline > now; });
        for (auto w = waiters.begin(); w != split; ++w) next = std::min(next, w->deadline);
        if (split == waiters.end()) continue;
        // The retry hint: what a previous load of this model took, less the
        // time this one has run; 1 s when unknown.
        int64_t seconds = 1;
        auto it = models_.find(name);
        if (it != models_.end() && it->second.last_lazy_load_duration > absl::ZeroDuration()) {
          seconds = absl::ToInt64Seconds(
              absl::Ceil(it->second.last_lazy_load_duration - (now - load.started), absl::Seconds(1)));
        }
        retry_after.emplace_back(name, std::max<int64_t>(1, seconds));
        for (auto w = split; w != waiters.end(); ++w) expired.emplace_back(name, std::move(*w));
        waiters.erase(split, waiters.end());
      }
      for (auto& [name, entry] : models_) {
        if (!entry.lazy || entry.lazy_idle_unload <= absl::ZeroDuration() || entry.idle_unload_queued) continue;
        const LoadedUse use = LoadedUseOf(entry);
        if (!use.loaded) continue;
        const absl::Time deadline = absl::FromUnixNanos(use.last_used_ns) + entry.lazy_idle_unload;
        if (deadline <= now) {
          entry.idle_unload_queued = true;
          idle.push_back(name);
        } else {
          next = std::min(next, deadline);
        }
      }
    }
    // Outside the lock: answers, events and the unload tasks.
    for (const auto& [name, seconds] : retry_after) {
      EmitLazyEvent(name, LazyEvent::kLoadTimedOut,
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
      if (!loaders_->Submit([this, name] { IdleUnload(name); })) {
        absl::MutexLock lock(&mu_);
        auto it = models_.find(name);
        if (it != models_.end()) it->second.idle_unload_queued = false;
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

void ModelManager::EmitLazyEvent(const std::string& name, LazyEvent event, const std::string& log) {
  if (options_.info) options_.info(log);
  // kLoadTimedOut is counted per request by the janitor itself.
  if (options_.lazy_event && event != LazyEvent::kLoadTimedOut) options_.lazy_event(name, event);
}

bool ModelManager::ConfigSaysLazy(const std::string& name) const {
  auto text = source_->ReadConfigText(name);
  if (!text.ok()) return false;
  std::vector<std::string> warnings;  // Reported when it loads, not here.
  auto config = ParseModelConfig(*text, name, &warnings);
  return config.ok() && config->lazy_loading().enable();
}

}  // namespace ortserve::repository
