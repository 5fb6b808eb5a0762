// SPDX-License-Identifier: Apache-2.0
#include "repository/model_manager.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<int64_t> ParseVersion(std::string_view text) {
  int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 0) return std::nullopt;
  return version;
}

// The versions the policy picks from those present on disk.
std::vector<int64_t> SelectVersions(const config::ModelVersionPolicy& policy, std::vector<int64_t> present) {
  std::sort(present.begin(), present.end());
  if (policy.has_all()) return present;
  if (policy.has_specific()) {
    std::vector<int64_t> chosen;
    for (int64_t v : policy.specific().versions()) {
      if (std::binary_search(present.begin(), present.end(), v)) chosen.push_back(v);
    }
    return chosen;
  }
  const size_t n = std::max<uint32_t>(1, policy.latest().num_versions());
  if (present.size() > n) present.erase(present.begin(), present.end() - static_cast<ptrdiff_t>(n));
  return present;
}

absl::StatusOr<scheduler::SchedulerOptions> SchedulerOptionsFrom(const ModelVersion& version) {
  const ModelConfig& config = version.config;
  scheduler::SchedulerOptions options;
  options.model_name = version.name;
  options.model_version = version.version_string;
  options.max_batch_size = config.max_batch_size();
  if (config.has_dynamic_batching()) {
    const auto& db = config.dynamic_batching();
    options.dynamic_batching = true;
    options.preferred_batch_sizes.assign(db.preferred_batch_size().begin(), db.preferred_batch_size().end());
    options.max_queue_delay = absl::Microseconds(static_cast<int64_t>(db.max_queue_delay_microseconds()));
    options.max_queue_size = db.default_queue_policy().max_queue_size();
    options.priority_levels = static_cast<uint32_t>(db.priority_levels());
    options.default_priority_level = static_cast<uint32_t>(db.default_priority_level());
    options.default_timeout =
        absl::Microseconds(static_cast<int64_t>(db.default_queue_policy().default_timeout_microseconds()));
    options.allow_timeout_override = db.default_queue_policy().allow_timeout_override() ||
                                     db.default_queue_policy().default_timeout_microseconds() == 0;
    options.pad_variable_dims = db.pad_variable_dims();
    options.pad_value = db.pad_value();
  }
  options.stats = version.stats.get();
  return options;
}

}  // namespace

ModelVersion::~ModelVersion() {
  if (scheduler) scheduler->Stop();
}

std::string_view ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

ModelManager::ModelManager(Options options) : options_(std::move(options)) {}

ModelManager::~ModelManager() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(Options options) {
  if (options.session_factory == nullptr) {
    return absl::InvalidArgumentError("ModelManager needs a session factory");
  }
  if (options.load_threads < 1) options.load_threads = 1;
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options)));
}

absl::Status ModelManager::LoadAll() {
  std::error_code ec;
  if (!fs::is_directory(options_.repository_path, ec)) {
    return absl::NotFoundError(
        StrCat("model repository '", options_.repository_path, "' is not a directory"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(options_.repository_path, ec)) {
    if (!entry.is_directory()) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  {
    absl::MutexLock lock(&mu_);
    for (const auto& name : names) models_[name];
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  const size_t threads = std::min<size_t>(static_cast<size_t>(options_.load_threads), names.size());
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < names.size(); i = next++) LoadModel(names[i]);
    });
  }
  for (auto& thread : pool) thread.join();
  return absl::OkStatus();
}

void ModelManager::LoadModel(const std::string& name) {
  const fs::path model_dir = fs::path(options_.repository_path) / name;
  auto fail_model = [&](std::string reason) {
    absl::MutexLock lock(&mu_);
    models_[name].reason = std::move(reason);
  };

  ModelConfig base_config;
  std::error_code ec;
  if (fs::exists(model_dir / "config.pbtxt", ec)) {
    auto text = ReadFile(model_dir / "config.pbtxt");
    if (!text.ok()) return fail_model(std::string(ToStd(text.status().message())));
    std::vector<std::string> warnings;
    auto parsed = ParseModelConfig(*text, (model_dir / "config.pbtxt").string(), &warnings);
    for (const auto& w : warnings) {
      if (options_.warn) options_.warn(w);
    }
    if (!parsed.ok()) return fail_model(std::string(ToStd(parsed.status().message())));
    base_config = *std::move(parsed);
  }

  std::vector<int64_t> present;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    if (!entry.is_directory()) continue;
    if (auto v = ParseVersion(entry.path().filename().string())) present.push_back(*v);
  }
  const config::ModelVersionPolicy policy =
      base_config.has_version_policy() ? base_config.version_policy() : config::ModelVersionPolicy();
  const std::vector<int64_t> chosen = SelectVersions(policy, std::move(present));
  if (chosen.empty()) {
    return fail_model(StrCat("model '", name, "' has no version directory (e.g. ", name,
                             "/1/model.onnx) that its version policy selects"));
  }
  {
    absl::MutexLock lock(&mu_);
    for (int64_t v : chosen) models_[name].versions[v].state = ModelState::kLoading;
  }
  for (int64_t v : chosen) {
    auto loaded = LoadVersion(name, model_dir.string(), v, base_config);
    absl::MutexLock lock(&mu_);
    VersionSlot& slot = models_[name].versions[v];
    if (loaded.ok()) {
      slot.state = ModelState::kReady;
      slot.handle = *std::move(loaded);
    } else {
      slot.state = ModelState::kUnavailable;
      slot.reason = std::string(ToStd(loaded.status().message()));
    }
  }
}

absl::StatusOr<ModelHandle> ModelManager::LoadVersion(const std::string& name, const std::string& model_dir,
                                                      int64_t version, const ModelConfig& base_config) {
  const std::string filename =
      base_config.default_model_filename().empty() ? "model.onnx" : base_config.default_model_filename();
  const std::string path = (fs::path(model_dir) / std::to_string(version) / filename).string();

  std::vector<std::string> warnings;
  ASSIGN_OR_RETURN(backend::SessionOptions session_options,
                   SessionOptionsFromConfig(base_config, path, &warnings));
  ASSIGN_OR_RETURN(std::unique_ptr<backend::Session> first, options_.session_factory->Create(session_options));

  auto model = std::make_shared<ModelVersion>();
  model->name = name;
  model->version = version;
  model->version_string = std::to_string(version);
  model->config = base_config;
  model->signature = first->signature();
  RETURN_IF_ERROR(CompleteModelConfig(name, model->signature, &model->config, &warnings));
  for (const auto& w : warnings) {
    if (options_.warn) options_.warn(w);
  }

  for (const auto& output : model->config.output()) {
    if (output.label_filename().empty()) continue;
    const fs::path label_path = fs::path(model_dir) / output.label_filename();
    ASSIGN_OR_RETURN(std::string text, ReadFile(label_path));
    std::vector<std::string> labels;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(line);
    }
    model->labels[output.name()] = std::move(labels);
  }

  // One session per instance: separate sessions run truly in parallel, each
  // with its own intra-op pool.
  std::vector<std::shared_ptr<backend::Session>> instances;
  instances.push_back(std::move(first));
  int total = 0;
  for (const auto& group : model->config.instance_group()) total += group.count();
  for (int i = 1; i < total; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<backend::Session> session,
                     options_.session_factory->Create(session_options));
    instances.push_back(std::move(session));
  }

  model->stats = std::make_unique<ModelStats>(model->config.max_batch_size());
  ASSIGN_OR_RETURN(scheduler::SchedulerOptions sched, SchedulerOptionsFrom(*model));
  sched.instances = std::move(instances);
  ASSIGN_OR_RETURN(model->scheduler, scheduler::CreateScheduler(std::move(sched)));
  return ModelHandle(std::move(model));
}

absl::StatusOr<ModelHandle> ModelManager::GetModel(std::string_view name, std::string_view version) const {
  absl::MutexLock lock(&mu_);
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
    return absl::UnavailableError(
        StrCat("model '", name, "' is not ready", reason.empty() ? "" : ": ", reason));
  }
  auto parsed = ParseVersion(version);
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
  absl::MutexLock lock(&mu_);
  std::vector<ModelIndexEntry> index;
  for (const auto& [name, entry] : models_) {
    if (entry.versions.empty()) {
      index.push_back({name, "", entry.reason.empty() ? ModelState::kLoading : ModelState::kUnavailable,
                       entry.reason});
      continue;
    }
    for (const auto& [version, slot] : entry.versions) {
      index.push_back({name, std::to_string(version), slot.state, slot.reason});
    }
  }
  return index;
}

void ModelManager::Shutdown() {
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
  for (const auto& handle : handles) handle->scheduler->Stop();
}

}  // namespace ortserve::repository
