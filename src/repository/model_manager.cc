// SPDX-License-Identifier: Apache-2.0
#include "repository/model_manager.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <limits>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/hash/hash.h"
#include "absl/strings/cord.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "core/status.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "repository/model_source.h"
#include "repository/version_policy.h"
#include "scheduler/observable_clock.h"
#include "repository/warmup.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

std::string Message(const absl::Status& status) { return std::string(ToStd(status.message())); }

constexpr absl::Duration kDefaultLazyLoadTimeout = absl::Milliseconds(10000);

uint64_t Combine(uint64_t a, uint64_t b) { return absl::Hash<std::pair<uint64_t, uint64_t>>()({a, b}); }

// Triton's JSON config (the protobuf JSON mapping). Unknown fields are errors:
// silently dropping part of an override would serve something else than asked.
absl::StatusOr<ModelConfig> ParseModelConfigJson(std::string_view json, std::string_view model) {
  ModelConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &config, options);
  if (!status.ok()) {
    auto message = status.message();
    return absl::InvalidArgumentError(StrCat("model '", model, "': config override is not a valid model config: ",
                                             std::string_view(message.data(), message.size())));
  }
  return config;
}

// File names the config points at must stay inside the model folder.
absl::Status ValidateConfigFileNames(const ModelConfig& config) {
  RETURN_IF_ERROR(ValidateRelativeFileName("default_model_filename", config.default_model_filename()));
  for (const auto& output : config.output()) {
    RETURN_IF_ERROR(ValidateRelativeFileName(StrCat("output '", output.name(), "' label_filename"),
                                             output.label_filename()));
  }
  return absl::OkStatus();
}

}  // namespace

ModelManager::ModelManager(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      releases_(std::make_shared<ReleaseQueue>(options_.released)),
      loaders_(std::make_unique<LoaderPool>(options_.load_threads)) {
  if (options_.source != nullptr) {
    source_ = options_.source;
  } else {
    owned_source_ = std::make_unique<FileSystemModelSource>(FileSystemModelSource::Options{
        options_.repository_path, options_.link_roots, options_.file_hash_cache});
    source_ = owned_source_.get();
  }
  if (options_.loader != nullptr) {
    loader_ = options_.loader;
  } else {
    SessionLoader::Options loader;
    loader.session_factory = options_.session_factory;
    loader.metrics = options_.metrics;
    loader.warn = options_.warn;
    loader.clock = clock_;
    // Create checks the factory; ModelManager::Create checked it first.
    owned_loader_ = *SessionLoader::Create(std::move(loader));
    loader_ = owned_loader_.get();
  }
  releases_->Start();
  // A clock that jumps (a test's FakeClock) wakes the janitor, whose waits
  // for deadlines are in that clock's time.
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) {
    observable->AddObserver(this, [this] { WakeJanitor(); });
  }
  janitor_ = std::thread([this] { JanitorLoop(); });
}

ModelManager::~ModelManager() {
  Shutdown();
  // A load that outlived Shutdown's bound still uses this object: wait for it.
  loaders_->Stop();
  // The slots' handles go now; the release queue is stopped, so they are
  // destroyed inline here (their schedulers are already stopped).
  absl::MutexLock lock(&mu_);
  models_.clear();
}

ModelManager::LoadedUse ModelManager::LoadedUseOf(const ModelEntry& entry) {
  LoadedUse use;
  for (const auto& [v, slot] : entry.versions) {
    if (!slot.handle) continue;
    use.loaded = true;
    use.memory_bytes += slot.handle->memory_bytes;
    use.last_used_ns = std::max(use.last_used_ns, slot.handle->last_used_ns.load(std::memory_order_relaxed));
  }
  return use;
}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(Options options) {
  if (options.session_factory == nullptr && options.loader == nullptr) {
    return absl::InvalidArgumentError("ModelManager needs a session factory or a loader");
  }
  if (options.load_threads < 1) options.load_threads = 1;
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options)));
}

absl::Status ModelManager::LoadAll() {
  ASSIGN_OR_RETURN(std::vector<std::string> present, source_->ListModels());
  std::vector<std::string> names;
  if (options_.control_mode == ModelControlMode::kExplicit) {
    for (const auto& name : options_.startup_models) {
      if (name == "*") {
        names.insert(names.end(), present.begin(), present.end());
        continue;
      }
      if (absl::Status valid = source_->ValidateName(name); !valid.ok()) {
        RecordFailure(name, Message(valid), 0);
        continue;
      }
      names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    // Lazy models are registered in every mode: scan the other folders'
    // configs for them (ReloadModel then registers without loading).
    std::vector<std::string> lazy;
    for (const auto& name : present) {
      if (!std::binary_search(names.begin(), names.end(), name) && ConfigSaysLazy(name)) lazy.push_back(name);
    }
    names.insert(names.end(), lazy.begin(), lazy.end());
  } else {
    names = std::move(present);
  }
  absl::BlockingCounter pending(static_cast<int>(names.size()));
  for (const auto& name : names) {
    if (!loaders_->Submit([this, &name, &pending] {
          (void)ReloadAndEnforceBudget(name, nullptr, LoadReason::kScan);
          pending.DecrementCount();
        })) {
      pending.DecrementCount();
    }
  }
  pending.Wait();
  if (options_.control_mode == ModelControlMode::kPoll && options_.poll_interval > absl::ZeroDuration() &&
      !poller_.joinable()) {
    poller_ = std::thread([this] { PollLoop(); });
  }
  return absl::OkStatus();
}

void ModelManager::PollLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&poll_mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(poll_mu_) { return stop_polling_; };
      if (poll_mu_.AwaitWithTimeout(absl::Condition(&stop), options_.poll_interval)) return;
    }
    if (absl::Status status = PollOnce(); !status.ok() && options_.error) {
      options_.error(StrCat("repository poll failed: ", status.message()));
    }
  }
}

absl::Status ModelManager::PollOnce() {
  // Fingerprints are compared outside the lock; snapshot what is known first.
  std::map<std::string, std::optional<uint64_t>> known;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : models_) {
      known[name] = entry.scanned ? std::optional<uint64_t>(entry.scan_fingerprint) : std::nullopt;
    }
  }
  ASSIGN_OR_RETURN(ModelSource::Changes changes, source_->Poll(known));
  const std::vector<std::string>& changed = changes.changed;
  const std::vector<std::string>& removed = changes.removed;
  for (const auto& name : removed) {
    absl::MutexLock load_lock(ModelLoadLock(name));
    bool serving = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = models_.find(name);
      if (it == models_.end()) continue;
      for (const auto& [v, slot] : it->second.versions) serving |= slot.handle != nullptr;
      if (!serving) {
        models_.erase(it);
        continue;
      }
    }
    (void)UnloadModelNow(name, "its folder was removed from the repository");
    absl::MutexLock lock(&mu_);
    models_.erase(name);
  }
  absl::BlockingCounter pending(static_cast<int>(changed.size()));
  for (const auto& name : changed) {
    if (!loaders_->Submit([this, &name, &pending] {
          (void)ReloadAndEnforceBudget(name, nullptr, LoadReason::kScan);
          pending.DecrementCount();
        })) {
      pending.DecrementCount();
    }
  }
  pending.Wait();
  return absl::OkStatus();
}

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

absl::Mutex* ModelManager::ModelLoadLock(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto& slot = load_locks_[name];
  if (!slot) slot = std::make_unique<absl::Mutex>();
  return slot.get();
}

void ModelManager::RecordFailure(const std::string& name, const std::string& message, uint64_t scan_fingerprint) {
  {
    absl::MutexLock lock(&mu_);
    ModelEntry& entry = models_[name];
    entry.reason = message;
    entry.last_error = message;
    entry.scan_fingerprint = scan_fingerprint;
    entry.scanned = scan_fingerprint != 0;
  }
  if (options_.error) options_.error(message);
}

absl::Status ModelManager::ReloadAndEnforceBudget(const std::string& name, const std::string* config_json,
                                                  LoadReason reason) {
  bool loaded_any = false;
  absl::Status status = ReloadModel(name, config_json, reason, &loaded_any);
  if (loaded_any) EnforceMemoryBudget(name);
  return status;
}

absl::Status ModelManager::ReloadModel(const std::string& name, const std::string* config_json,
                                       LoadReason reason, bool* loaded_any) {
  absl::MutexLock load_lock(ModelLoadLock(name));
  auto cancel = std::make_shared<backend::CancelToken>();
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError(StrCat("cannot load model '", name, "': shutting down"));
    models_[name];  // Known from now on (LOADING until a version is chosen).
    load_cancels_[name] = cancel;  // Unload and Shutdown cancel it from here.
  }
  struct ForgetToken {
    ModelManager* manager;
    const std::string& name;
    ~ForgetToken() {
      absl::MutexLock lock(&manager->mu_);
      manager->load_cancels_.erase(name);
    }
  } forget_token{this, name};
  auto snapshot = source_->Read(name);
  if (!snapshot.ok()) {
    if (absl::IsNotFound(snapshot.status())) {
      // No such folder: a model that never had a version is forgotten, so
      // that loading made-up names adds no index entries or metric series
      // (issue #14.5); one that served keeps its entry and the error.
      absl::MutexLock lock(&mu_);
      auto it = models_.find(name);
      if (it != models_.end() && it->second.versions.empty()) {
        models_.erase(it);
        return snapshot.status();
      }
    }
    RecordFailure(name, StrCat("model '", name, "': ", snapshot.status().message()), 0);
    return snapshot.status();
  }
  const uint64_t scan_fingerprint =
      config_json ? Combine(snapshot->fingerprint, absl::Hash<std::string>()(*config_json)) : snapshot->fingerprint;
  auto fail_model = [&](const absl::Status& status) {
    RecordFailure(name, Message(status), scan_fingerprint);
    return status;
  };

  // The config: the override, config.pbtxt, or nothing (auto-complete).
  ModelConfig base_config;
  uint64_t config_fingerprint = snapshot->model_fingerprint;
  if (config_json != nullptr) {
    auto parsed = ParseModelConfigJson(*config_json, name);
    if (!parsed.ok()) return fail_model(parsed.status());
    base_config = *std::move(parsed);
    config_fingerprint = Combine(config_fingerprint, absl::Hash<std::string>()(*config_json));
  } else if (snapshot->has_config) {
    const std::string source = (fs::path(snapshot->dir) / "config.pbtxt").string();
    std::vector<std::string> warnings;
    auto parsed = ParseModelConfig(snapshot->config_text, source, &warnings);
    for (const auto& w : warnings) {
      if (options_.warn) options_.warn(w);
    }
    if (!parsed.ok()) return fail_model(parsed.status());
    base_config = *std::move(parsed);
  }
  if (absl::Status inside = source_->CheckFiles(*snapshot); !inside.ok()) {
    return fail_model(absl::InvalidArgumentError(StrCat("model '", name, "': ", inside.message())));
  }
  if (absl::Status valid = ValidateConfigFileNames(base_config); !valid.ok()) {
    return fail_model(absl::InvalidArgumentError(StrCat("model '", name, "': ", valid.message())));
  }

  std::vector<int64_t> present;
  for (const auto& [v, fp] : snapshot->version_fingerprints) present.push_back(v);
  const config::ModelVersionPolicy policy =
      base_config.has_version_policy() ? base_config.version_policy() : config::ModelVersionPolicy();
  const std::vector<int64_t> chosen = SelectVersions(policy, std::move(present));
  if (chosen.empty()) {
    return fail_model(absl::NotFoundError(StrCat("model '", name, "' has no version directory (e.g. ", name,
                                                 "/1/model.onnx) that its version policy selects")));
  }

  // Lazy models: a scan registers them; only a request (or LoadModel) loads.
  const bool lazy = base_config.lazy_loading().enable();
  bool registered = false;
  {
    absl::MutexLock lock(&mu_);
    ModelEntry& entry = models_[name];
    entry.lazy = lazy;
    const uint64_t timeout_ms = base_config.lazy_loading().load_timeout_ms();
    entry.lazy_load_timeout = timeout_ms == 0 ? kDefaultLazyLoadTimeout
                                              : absl::Milliseconds(static_cast<int64_t>(
                                                    std::min<uint64_t>(timeout_ms, uint64_t{1} << 40)));
    entry.lazy_idle_unload = absl::Seconds(static_cast<int64_t>(
        std::min<uint64_t>(base_config.lazy_loading().idle_unload_seconds(), uint64_t{1} << 40)));
    bool loaded = false;
    for (const auto& [v, slot] : entry.versions) loaded |= slot.handle != nullptr;
    registered = lazy && reason == LoadReason::kScan && !loaded;
    if (registered) {
      // Nothing serves: list the versions a request would load, load none.
      entry.versions.clear();
      for (int64_t v : chosen) {
        VersionSlot& slot = entry.versions[v];
        slot.state = ModelState::kUnavailable;
        slot.reason = kLazyNotLoadedReason;
      }
      const bool changed = !entry.scanned || entry.scan_fingerprint != scan_fingerprint;
      entry.scan_fingerprint = scan_fingerprint;
      entry.scanned = true;
      entry.reason.clear();
      if (changed) {
        // New files deserve a fresh try at once.
        entry.last_error.clear();
        entry.lazy_failed_at = absl::InfinitePast();
      }
    }
  }
  if (registered) {
    if (options_.info) options_.info(StrCat("model '", name, "' registered, ", kLazyNotLoadedReason));
    return absl::OkStatus();
  }

  // What must load: versions not served, or served from other bytes.
  std::map<int64_t, uint64_t> to_load;
  std::map<int64_t, ModelHandle> previous;  // What each load replaces.
  {
    std::map<int64_t, uint64_t> wanted;
    for (int64_t v : chosen) wanted[v] = Combine(config_fingerprint, snapshot->version_fingerprints.at(v));
    absl::MutexLock lock(&mu_);
    ModelEntry& entry = models_[name];
    std::map<int64_t, ServedVersion> current;
    for (const auto& [v, slot] : entry.versions) current[v] = {slot.handle != nullptr, slot.loaded_fingerprint};
    for (int64_t v : VersionsToLoad(chosen, wanted, current)) {
      to_load[v] = wanted[v];
      VersionSlot& slot = entry.versions[v];
      previous[v] = slot.handle;
      if (!slot.handle) {
        slot.state = ModelState::kLoading;
        slot.reason.clear();
      }
    }
  }

  // The loads themselves: no manager lock held, so other models keep serving.
  std::map<int64_t, absl::StatusOr<ModelHandle>> loaded;
  for (const auto& [v, fp] : to_load) {
    loaded.emplace(v, LoadVersion(name, snapshot->dir, v, base_config, snapshot->version_fingerprints.at(v),
                                  previous[v], *cancel));
  }

  std::vector<ModelHandle> retired;
  absl::Status first_error;
  std::vector<std::string> events;
  {
    absl::MutexLock lock(&mu_);
    ModelEntry& entry = models_[name];
    for (auto& [v, result] : loaded) {
      VersionSlot& slot = entry.versions[v];
      if (result.ok()) {
        if (loaded_any != nullptr) *loaded_any = true;
        const bool swapped = slot.handle != nullptr;
        if (swapped) retired.push_back(std::move(slot.handle));
        events.push_back(StrCat("model '", name, "' version ", v,
                                swapped ? " reloaded and swapped in" : " is READY"));
        slot.handle = *std::move(result);
        entry.published_seq = ++publish_seq_;
        slot.state = ModelState::kReady;
        slot.reason.clear();
        slot.loaded_fingerprint = to_load[v];
        continue;
      }
      const std::string message = StrCat("model '", name, "' version ", v, ": ", result.status().message());
      if (first_error.ok()) first_error = absl::Status(result.status().code(), message);
      if (slot.handle) {
        // Rollback: the previous load of this version keeps serving.
        slot.state = ModelState::kReady;
        slot.reason = StrCat("reload failed, serving the previous load: ", result.status().message());
      } else {
        slot.state = ModelState::kUnavailable;
        slot.reason = Message(result.status());
      }
    }
    // Versions the policy dropped: stale failures go now; served ones only
    // once everything chosen is READY, so the model never stops serving.
    std::map<int64_t, bool> serving;
    for (int64_t v : chosen) entry.versions[v];  // Chosen versions all have a slot.
    for (const auto& [v, slot] : entry.versions) serving[v] = slot.handle != nullptr;
    for (int64_t v : VersionsToRetire(chosen, serving)) {
      auto it = entry.versions.find(v);
      if (it->second.handle) {
        events.push_back(StrCat("model '", name, "' version ", v, " retired"));
        retired.push_back(std::move(it->second.handle));
      }
      entry.versions.erase(it);
    }
    entry.scan_fingerprint = scan_fingerprint;
    entry.scanned = true;
    entry.reason.clear();
    entry.last_error = first_error.ok() ? "" : Message(first_error);
  }
  retired.clear();  // Outside the lock: the release thread destroys them once drained.
  if (options_.info) {
    for (const auto& event : events) options_.info(event);
  }
  if (!first_error.ok() && options_.error) options_.error(Message(first_error));
  return first_error;
}

absl::StatusOr<ModelHandle> ModelManager::LoadVersion(const std::string& name, const std::string& model_dir,
                                                      int64_t version, const ModelConfig& base_config,
                                                      uint64_t files_fingerprint, const ModelHandle& previous,
                                                      backend::CancelToken& cancel) {
  LoadSpec spec;
  spec.name = name;
  spec.model_dir = model_dir;
  spec.version = version;
  spec.config = &base_config;
  spec.files_fingerprint = files_fingerprint;
  spec.previous = previous;
  spec.cancel = &cancel;
  ASSIGN_OR_RETURN(std::unique_ptr<ModelVersion> model, loader_->Load(spec));
  // The deleter hands the version to the release thread (see the class comment).
  releases_->Created();
  std::shared_ptr<ReleaseQueue> releases = releases_;
  return ModelHandle(model.release(), [releases](const ModelVersion* version) {
    releases->Push(const_cast<ModelVersion*>(version));
  });
}

void ModelManager::Shutdown() {
  {
    absl::MutexLock lock(&poll_mu_);
    stop_polling_ = true;
  }
  if (poller_.joinable()) poller_.join();
  std::vector<std::pair<std::string, LazyWaiter>> waiters;
  std::vector<std::shared_ptr<backend::CancelToken>> loads;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const auto& [name, token] : load_cancels_) loads.push_back(token);
    for (auto& [name, load] : lazy_loads_) {
      for (auto& waiter : load.waiters) waiters.emplace_back(name, std::move(waiter));
      load.waiters.clear();  // The load itself ends with the loaders.
    }
  }
  {
    absl::MutexLock lock(&janitor_mu_);
    stop_janitor_ = true;
  }
  if (janitor_.joinable()) janitor_.join();
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) observable->RemoveObserver(this);
  for (auto& [name, waiter] : waiters) {
    waiter.done(absl::UnavailableError(StrCat("model '", name, "': server is shutting down")));
  }
  waiters.clear();
  // Loads in progress stop (warm-ups within one run); queued ones see
  // shutting_down_ and end at once.
  for (const auto& token : loads) token->Cancel("the server is shutting down");
  loads.clear();
  if (!loaders_->Stop(options_.stop_loads_timeout)) {
    std::string stuck;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [name, token] : load_cancels_) stuck += StrCat(stuck.empty() ? "" : ", ", "'", name, "'");
    }
    if (options_.error) {
      options_.error(StrCat("shutdown: model load(s) ", stuck.empty() ? "(unknown)" : stuck, " still running ",
                            absl::FormatDuration(options_.stop_loads_timeout),
                            " after being cancelled; not waiting for them"));
    }
  }
  std::vector<ModelHandle> handles;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : models_) {
      for (const auto& [version, slot] : entry.versions) {
        if (slot.handle) handles.push_back(slot.handle);
      }
    }
  }
  // Outside the lock: Stop drains in-flight requests, whose callbacks may call
  // back into the manager.
  for (const auto& handle : handles) {
    if (handle->scheduler) handle->scheduler->Stop();
  }
  handles.clear();
  releases_->Stop();
}

}  // namespace ortserve::repository
