// SPDX-License-Identifier: Apache-2.0
// FakeModelSource: a repository in memory, for ModelManager tests without
// folders. Models are set and removed by the test; fingerprints are the
// numbers the test gives (change one to simulate new bytes on disk).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"
#include "repository/model_source.h"

namespace ortserve::testing {

// Thread-safe.
class FakeModelSource final : public repository::ModelSource {
 public:
  // Model `name` with `config_text` (empty: no config.pbtxt) and versions
  // (number -> fingerprint of its files). Replaces what was there.
  void SetModel(const std::string& name, std::string config_text, std::map<int64_t, uint64_t> versions) {
    absl::MutexLock lock(&mu_);
    models_[name] = {std::move(config_text), std::move(versions)};
  }
  void RemoveModel(const std::string& name) {
    absl::MutexLock lock(&mu_);
    models_.erase(name);
  }
  // Read() calls so far for `name`.
  int reads(const std::string& name) const {
    absl::MutexLock lock(&mu_);
    auto it = reads_.find(name);
    return it == reads_.end() ? 0 : it->second;
  }

  absl::StatusOr<std::vector<std::string>> ListModels() override {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [name, model] : models_) names.push_back(name);
    return names;
  }
  absl::StatusOr<std::vector<std::string>> ListLoadableModels() override { return ListModels(); }
  absl::StatusOr<repository::ModelSnapshot> Read(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    ++reads_[name];
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError("no model folder '" + name + "'");
    repository::ModelSnapshot snapshot;
    snapshot.name = name;
    snapshot.dir = "/fake-repository/" + name;
    snapshot.has_config = !it->second.config.empty();
    snapshot.config_text = it->second.config;
    snapshot.model_fingerprint = absl::Hash<std::string>()(it->second.config);
    snapshot.version_fingerprints = it->second.versions;
    snapshot.fingerprint = snapshot.model_fingerprint;
    for (const auto& [v, fp] : it->second.versions) {
      snapshot.fingerprint = absl::Hash<std::tuple<uint64_t, int64_t, uint64_t>>()({snapshot.fingerprint, v, fp});
    }
    return snapshot;
  }
  absl::StatusOr<std::string> ReadConfigText(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end() || it->second.config.empty()) return absl::NotFoundError("no config for " + name);
    return it->second.config;
  }
  void RetainOnly(const std::vector<std::string>&) override {}
  absl::Status ValidateName(std::string_view name) const override {
    if (name.empty() || name.find('/') != std::string_view::npos || name.find("..") != std::string_view::npos) {
      return absl::InvalidArgumentError("bad model name '" + std::string(name) + "'");
    }
    return absl::OkStatus();
  }
  absl::Status CheckFiles(const repository::ModelSnapshot&) const override { return absl::OkStatus(); }

 private:
  struct Model {
    std::string config;
    std::map<int64_t, uint64_t> versions;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> reads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::testing
