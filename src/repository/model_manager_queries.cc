// SPDX-License-Identifier: Apache-2.0
// ModelManager's read side: what requests and the index see of the state the
// manager owns (GetModel, Index, ReadyVersions, LastLoadError, live
// versions). Each takes the manager's lock briefly and never waits on a load.
#include <algorithm>

#include "core/strings.h"
#include "repository/model_manager.h"

namespace ortserve::repository {

absl::StatusOr<ModelHandle> ModelManager::GetModel(std::string_view name, std::string_view version) const {
  absl::MutexLock lock(&mu_);
  return GetModelLocked(name, version);
}

absl::StatusOr<ModelHandle> ModelManager::GetModelLocked(std::string_view name, std::string_view version) const {
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(StrCat("unknown model '", name, "'"));
  }
  const ModelEntry& entry = it->second;
  if (version.empty()) {
    for (auto v = entry.versions.rbegin(); v != entry.versions.rend(); ++v) {
      if (v->second.state == ModelState::kReady) return v->second.handle;
    }
    std::string reason = entry.reason;
    for (const auto& [v, slot] : entry.versions) {
      if (!slot.reason.empty()) reason = slot.reason;
      if (slot.state == ModelState::kLoading) reason = "it is loading";
    }
    if (entry.versions.empty() && reason.empty()) reason = "it is loading";
    return absl::UnavailableError(
        StrCat("model '", name, "' is not ready", reason.empty() ? "" : ": ", reason));
  }
  auto parsed = ParseVersionNumber(version);
  if (!parsed) {
    return absl::InvalidArgumentError(StrCat("model version '", version, "' is not a non-negative integer"));
  }
  auto v = entry.versions.find(*parsed);
  if (v == entry.versions.end()) {
    return absl::NotFoundError(StrCat("model '", name, "' has no version ", version));
  }
  if (v->second.state != ModelState::kReady) {
    return absl::UnavailableError(StrCat("model '", name, "' version ", version, " is not ready",
                                         v->second.reason.empty() ? "" : ": ", v->second.reason));
  }
  return v->second.handle;
}

std::vector<ModelIndexEntry> ModelManager::Index() const {
  // kExplicit: the folders a client could load, listed before taking the
  // lock (one directory listing, no config read), so a slow disk delays only
  // this call. An unreadable repository adds nothing: the index still shows
  // what the manager knows.
  std::vector<std::string> folders;
  if (options_.control_mode == ModelControlMode::kExplicit) {
    auto listed = source_->ListLoadableModels();
    if (listed.ok()) folders = *std::move(listed);
  }
  absl::MutexLock lock(&mu_);
  std::vector<ModelIndexEntry> index;
  bool added = false;
  for (auto& name : folders) {
    if (models_.find(name) != models_.end()) continue;
    index.push_back({std::move(name), "", ModelState::kUnavailable, kNeverLoadedReason});
    added = true;
  }
  for (const auto& [name, entry] : models_) {
    if (entry.versions.empty()) {
      index.push_back({name, "", entry.reason.empty() ? ModelState::kLoading : ModelState::kUnavailable,
                       entry.reason});
      continue;
    }
    for (const auto& [version, slot] : entry.versions) {
      // A model-level failure (e.g. a config that no longer parses) is newer
      // than any version's reason (a load that gets that far clears it), and
      // shows on the versions that keep serving.
      std::string reason = entry.reason.empty() ? slot.reason : entry.reason;
      index.push_back({name, std::to_string(version), slot.state, std::move(reason)});
    }
  }
  if (added) {
    // By name; stable, so each model's versions keep their numeric order.
    std::stable_sort(index.begin(), index.end(),
                     [](const ModelIndexEntry& a, const ModelIndexEntry& b) { return a.name < b.name; });
  }
  return index;
}

std::vector<std::string> ModelManager::ReadyVersions(std::string_view name) const {
  std::vector<std::string> versions;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return versions;
  for (const auto& [version, slot] : it->second.versions) {
    if (slot.state == ModelState::kReady) versions.push_back(std::to_string(version));
  }
  return versions;
}

std::string ModelManager::LastLoadError(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  return it == models_.end() ? "" : it->second.last_error;
}

size_t ModelManager::LiveVersionCount() const { return releases_->live(); }

bool ModelManager::WaitForLiveVersions(size_t n, absl::Duration timeout) const {
  return releases_->WaitForLive(n, timeout);
}

}  // namespace ortserve::repository
