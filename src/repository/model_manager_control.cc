// SPDX-License-Identifier: Apache-2.0
// ModelManager's explicit model control (--model-control-mode=explicit): load
// and unload by request, on the loader threads, and the cancellation of a
// load in progress that an unload or shutdown asks for.
#include "absl/synchronization/notification.h"
#include "core/strings.h"
#include "repository/model_manager.h"

namespace ortserve::repository {

absl::Status ModelManager::CheckExplicit(std::string_view what, std::string_view name) const {
  if (options_.control_mode != ModelControlMode::kExplicit) {
    return absl::FailedPreconditionError(StrCat("cannot ", what, " model '", name,
                                                "': explicit model load and unload need "
                                                "--model-control-mode=explicit (the server runs in mode '",
                                                ModelControlModeName(options_.control_mode), "')"));
  }
  return source_->ValidateName(name);
}

absl::Status ModelManager::LoadModel(std::string_view name, std::string_view config_json) {
  absl::Notification done;
  absl::Status result;
  LoadModelAsync(std::string(name), std::string(config_json), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void ModelManager::LoadModelAsync(std::string name, std::string config_json,
                                  std::function<void(absl::Status)> done) {
  if (absl::Status status = CheckExplicit("load", name); !status.ok()) return done(std::move(status));
  auto task = [this, name, config_json = std::move(config_json), done]() {
    done(ReloadAndEnforceBudget(name, config_json.empty() ? nullptr : &config_json, LoadReason::kExplicit));
  };
  if (!loaders_->Submit(std::move(task))) {
    done(absl::UnavailableError(StrCat("cannot load model '", name, "': the server is shutting down")));
  }
}

absl::Status ModelManager::UnloadModel(std::string_view name) {
  absl::Notification done;
  absl::Status result;
  UnloadModelAsync(std::string(name), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void ModelManager::UnloadModelAsync(std::string name, std::function<void(absl::Status)> done) {
  if (absl::Status status = CheckExplicit("unload", name); !status.ok()) return done(std::move(status));
  // A load in progress (a long warm-up) is cancelled at once, not waited for.
  CancelLoad(name, StrCat("model '", name, "' was unloaded during its load"));
  // On a loader thread: it waits for a load of the same model to finish.
  auto task = [this, name, done]() {
    absl::MutexLock load_lock(ModelLoadLock(name));
    done(UnloadModelNow(name, "unloaded"));
  };
  if (!loaders_->Submit(std::move(task))) {
    done(absl::UnavailableError(StrCat("cannot unload model '", name, "': the server is shutting down")));
  }
}

absl::Status ModelManager::UnloadModelNow(const std::string& name, std::string_view why) {
  std::vector<ModelHandle> retired;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(StrCat("cannot unload unknown model '", name, "'"));
    for (auto& [version, slot] : it->second.versions) {
      if (slot.handle) retired.push_back(std::move(slot.handle));
      slot.handle = nullptr;
      slot.state = ModelState::kUnavailable;
      slot.reason = std::string(why);
    }
    it->second.scanned = false;  // A later load reads the folder afresh.
    // An unloaded model stays unloaded: no request may load it lazily again
    // (a LoadModel or a rescan reads its config again).
    it->second.lazy = false;
  }
  if (options_.info) options_.info(StrCat("model '", name, "' unloaded (", why, "); ", retired.size(),
                                          " version(s) release once their requests finish"));
  // Dropped outside the lock; the release thread destroys each once drained.
  retired.clear();
  return absl::OkStatus();
}

void ModelManager::CancelLoad(const std::string& name, std::string why) {
  std::shared_ptr<backend::CancelToken> token;
  {
    absl::MutexLock lock(&mu_);
    auto it = load_cancels_.find(name);
    if (it == load_cancels_.end()) return;
    token = it->second;
  }
  if (options_.info) options_.info(StrCat("cancelling the load of model '", name, "': ", why));
  token->Cancel(std::move(why));  // Outside mu_: it calls into the session.
}

}  // namespace ortserve::repository
