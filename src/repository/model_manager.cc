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
  LruLazyLoading::Options lazy;
  lazy.host = this;
  lazy.clock = clock_;
  lazy.memory_budget_bytes = options_.memory_budget_bytes;
  lazy.info = options_.info;
  lazy.warn = options_.warn;
  lazy.lazy_event = options_.lazy_event;
  lazy_ = *LruLazyLoading::Create(std::move(lazy));  // Fails only without a host.
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
  if (options_.control_mode == ModelControlMode::kPoll && options_.poll_interval > absl::ZeroDuration()) {
    absl::MutexLock lock(&poller_mu_);
    if (poller_ == nullptr) {
      RepositoryPoller::Options poll;
      poll.interval = options_.poll_interval;
      poll.clock = clock_;
      poll.poll = [this] { return PollOnce(); };
      poll.error = options_.error;
      ASSIGN_OR_RETURN(poller_, RepositoryPoller::Start(std::move(poll)));
    }
  }
  return absl::OkStatus();
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
  if (loaded_any) lazy_->Loaded(name);
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
  bool files_changed = false;
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
      files_changed = !entry.scanned || entry.scan_fingerprint != scan_fingerprint;
      entry.scan_fingerprint = scan_fingerprint;
      entry.scanned = true;
      entry.reason.clear();
      // New files deserve a fresh try at once.
      if (files_changed) entry.last_error.clear();
    }
  }
  if (registered) {
    if (files_changed) lazy_->FilesChanged(name);
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
  std::unique_ptr<RepositoryPoller> poller;
  {
    absl::MutexLock lock(&poller_mu_);
    poller = std::move(poller_);
  }
  poller.reset();  // Joins it, after a poll in progress.
  std::vector<std::shared_ptr<backend::CancelToken>> loads;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const auto& [name, token] : load_cancels_) loads.push_back(token);
  }
  // Waiting requests are answered; the lazy loads themselves end with the
  // loaders.
  lazy_->Shutdown();
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
