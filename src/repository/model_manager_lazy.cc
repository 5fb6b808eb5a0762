// SPDX-License-Identifier: Apache-2.0
// ModelManager's side of the lazy-loading seam: the request path's
// AcquireModelAsync, which hands lazy models that are not loaded to the lazy
// layer (lazy_loading.h), and the LazyModelHost calls that layer makes back:
// the model's use, a lazy load, an unload back to "not loaded".
#include <algorithm>

#include "core/strings.h"
#include "repository/model_manager.h"

namespace ortserve::repository {

void ModelManager::AcquireModelAsync(std::string name, std::string version,
                                     std::function<void(absl::StatusOr<ModelHandle>)> done) {
  absl::StatusOr<ModelHandle> found;
  bool lazy = false;
  {
    absl::MutexLock lock(&mu_);
    found = shutting_down_ ? absl::UnavailableError(StrCat("model '", name, "': server is shutting down"))
                           : GetModelLocked(name, version);
    if (!shutting_down_ && !found.ok() && found.status().code() == absl::StatusCode::kUnavailable) {
      auto it = models_.find(name);
      lazy = it != models_.end() && it->second.lazy && !UseOf(name, it->second).loaded;
    }
  }
  if (lazy) return lazy_->Acquire(std::move(name), std::move(version), std::move(done));
  if (found.ok()) (*found)->Touch(clock_->Now());
  done(std::move(found));
}

LazyModelUse ModelManager::UseOf(const std::string& name, const ModelEntry& entry) {
  LazyModelUse use;
  use.name = name;
  use.lazy = entry.lazy;
  use.published_seq = entry.published_seq;
  use.load_timeout = entry.lazy_load_timeout;
  use.idle_unload = entry.lazy_idle_unload;
  use.last_error = entry.last_error;
  for (const auto& [v, slot] : entry.versions) {
    if (!slot.handle) continue;
    use.loaded = true;
    use.memory_bytes += slot.handle->memory_bytes;
    use.last_used_ns = std::max(use.last_used_ns, slot.handle->last_used_ns.load(std::memory_order_relaxed));
  }
  return use;
}

std::optional<LazyModelUse> ModelManager::Use(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return std::nullopt;
  return UseOf(it->first, it->second);
}

std::vector<LazyModelUse> ModelManager::Uses() const {
  std::vector<LazyModelUse> uses;
  absl::MutexLock lock(&mu_);
  uses.reserve(models_.size());
  for (const auto& [name, entry] : models_) uses.push_back(UseOf(name, entry));
  return uses;
}

absl::Status ModelManager::LoadLazy(const std::string& name, bool* loaded_any) {
  return ReloadModel(name, nullptr, LoadReason::kLazyAcquire, loaded_any);
}

size_t ModelManager::UnloadLazy(const std::string& name, const std::function<bool(const LazyModelUse&)>& still) {
  absl::MutexLock load_lock(ModelLoadLock(name));
  std::vector<ModelHandle> retired;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end() || !it->second.lazy) return 0;
    if (still && !still(UseOf(name, it->second))) return 0;
    for (auto& [version, slot] : it->second.versions) {
      if (!slot.handle) continue;
      retired.push_back(std::move(slot.handle));
      slot.handle = nullptr;
      slot.state = ModelState::kUnavailable;
      slot.reason = kLazyNotLoadedReason;
      slot.loaded_fingerprint = 0;
    }
    if (retired.empty()) return 0;
    // Versions that were not serving (a failed load) go back to "not loaded"
    // too: the next request tries them again.
    for (auto& [version, slot] : it->second.versions) {
      slot.state = ModelState::kUnavailable;
      slot.reason = kLazyNotLoadedReason;
    }
  }
  const size_t count = retired.size();
  retired.clear();  // Outside the lock: the release thread destroys them once drained.
  return count;
}

bool ModelManager::Submit(std::function<void()> task) { return loaders_->Submit(std::move(task)); }

bool ModelManager::ConfigSaysLazy(const std::string& name) const {
  auto text = source_->ReadConfigText(name);
  if (!text.ok()) return false;
  std::vector<std::string> warnings;  // Reported when it loads, not here.
  auto config = ParseModelConfig(*text, name, &warnings);
  return config.ok() && config->lazy_loading().enable();
}

}  // namespace ortserve::repository
