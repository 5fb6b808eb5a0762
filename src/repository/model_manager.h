// SPDX-License-Identifier: Apache-2.0
// ModelManager: owns every model version the server serves, loads them from a
// Triton-layout repository, and hands out handles that pin a version for the
// life of a request.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backend/session.h"
#include "core/model_stats.h"
#include "repository/model_config.h"
#include "scheduler/scheduler.h"

namespace ortserve::repository {

// One loaded version of a model. Immutable once published, except through its
// scheduler (thread-safe) and stats (atomic).
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string version_string;  // "1"
  ModelConfig config;          // Completed (auto-complete applied).
  backend::ModelSignature signature;  // The model's own tensors (full dims).
  // Labels per output name, from output.label_filename (classification).
  std::map<std::string, std::vector<std::string>> labels;
  std::unique_ptr<ModelStats> stats;
  std::unique_ptr<scheduler::Scheduler> scheduler;

  ~ModelVersion();
};

// Pins a version: a request holding one keeps the version (and its sessions)
// alive through a swap or unload.
using ModelHandle = std::shared_ptr<const ModelVersion>;

enum class ModelState {
  kLoading,      // A load is in progress.
  kReady,        // Serving.
  kUnavailable,  // The load failed (see `reason`) or the version was unloaded.
};
std::string_view ModelStateName(ModelState state);  // "LOADING", "READY", "UNAVAILABLE"

struct ModelIndexEntry {
  std::string name;
  std::string version;  // Empty when the model failed before any version was known.
  ModelState state = ModelState::kUnavailable;
  std::string reason;
};

// Thread-safe.
class ModelManager {
 public:
  struct Options {
    std::string repository_path;
    backend::SessionFactory* session_factory = nullptr;  // Not owned.
    int load_threads = 4;
    // Called with each config warning (e.g. an unsupported field), once per load.
    std::function<void(const std::string&)> warn;
  };

  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(Options options);
  ~ModelManager();

  // Scans the repository and loads every model's chosen versions on the load
  // pool; returns when all loads have finished. A model that fails is
  // recorded as UNAVAILABLE with its reason; it never stops the others.
  // Errors: NotFound when the repository path is not a directory.
  absl::Status LoadAll();

  // The version to serve. `version` empty: the highest ready version.
  // Errors: NotFound (unknown model or version), Unavailable (known but not
  // ready, with the reason), InvalidArgument (a version that is not a number).
  absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const;

  // Every model and version the manager knows, sorted by name then version.
  std::vector<ModelIndexEntry> Index() const;

  // Stops every scheduler (intake stops, admitted requests finish). Idempotent.
  void Shutdown();

 private:
  struct VersionSlot {
    ModelState state = ModelState::kLoading;
    std::string reason;
    ModelHandle handle;
  };
  struct ModelEntry {
    std::string reason;  // A model-level failure (bad config, no versions).
    std::map<int64_t, VersionSlot> versions;
  };

  explicit ModelManager(Options options);
  void LoadModel(const std::string& name);
  absl::StatusOr<ModelHandle> LoadVersion(const std::string& name, const std::string& model_dir,
                                          int64_t version, const ModelConfig& base_config);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::repository
