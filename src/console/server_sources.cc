// SPDX-License-Identifier: Apache-2.0
#include "console/server_sources.h"

#include <set>

#include "core/strings.h"
#include "observability/metrics.h"
#include "prometheus/metric_family.h"
#include "repository/model_manager.h"

namespace ortserve::console {
namespace {

std::string Target(const std::string& model, int64_t version) {
  if (version <= 0) return model;
  return StrCat(model, ":", version);
}

// Instances and devices of a loaded version, from the sessions it runs on.
void DescribeInstances(const repository::ModelVersion& version, VersionInfo* out) {
  out->instances = static_cast<int>(version.sessions.size());
  std::set<std::string> devices;
  for (const backend::SessionOptions& options : version.instance_options) {
    devices.insert(options.device == backend::DeviceKind::kCpu ? std::string("cpu")
                                                               : StrCat("gpu", options.gpu_device_id));
  }
  if (devices.empty() && out->instances > 0) devices.insert("cpu");
  for (const std::string& device : devices) {
    if (!out->devices.empty()) out->devices.push_back(',');
    out->devices.append(device);
  }
  out->memory_bytes = version.memory_bytes;
}

}  // namespace

std::vector<prometheus::MetricFamily> ServerSources::CollectMetrics() {
  if (options_.metrics == nullptr) return {};
  return options_.metrics->Collect();
}

std::vector<ModelInfo> ServerSources::Models() {
  std::vector<ModelInfo> models;
  if (options_.models == nullptr) return models;
  const repository::ModelManager& manager = *options_.models;
  for (const repository::ModelIndexEntry& entry : manager.Index()) {
    if (models.empty() || models.back().name != entry.name) {
      models.emplace_back();
      models.back().name = entry.name;
      models.back().last_error = manager.LastLoadError(entry.name);
    }
    ModelInfo& model = models.back();
    VersionInfo version;
    version.version = entry.version;
    version.state = std::string(repository::ModelStateName(entry.state));
    version.reason = entry.reason;
    if (entry.state == repository::ModelState::kReady && !entry.version.empty()) {
      if (auto handle = manager.GetModel(entry.name, entry.version); handle.ok()) {
        DescribeInstances(**handle, &version);
        // The routing of the model is its highest ready version's config
        // (the one requests that name no version consult).
        const repository::ModelConfig& config = (*handle)->config;
        model.max_batch_size = config.max_batch_size();
        model.routing = RoutingInfo();
        for (const auto& split : config.routing().split()) {
          model.routing.split.push_back({StrCat(split.version()), split.weight()});
        }
        if (config.routing().has_shadow()) {
          const auto& shadow = config.routing().shadow();
          model.routing.shadow_target = Target(shadow.model().empty() ? entry.name : shadow.model(), shadow.version());
          model.routing.shadow_fraction = shadow.fraction();
        }
        if (!config.routing().fallback_model().empty()) {
          model.routing.fallback = Target(config.routing().fallback_model(), config.routing().fallback_version());
        }
        model.routing.cache = config.response_cache().enable();
      }
    }
    model.versions.push_back(std::move(version));
  }
  return models;
}

ServerInfo ServerSources::Server() {
  ServerInfo info;
  info.ready = options_.ready ? options_.ready() : false;
  info.open_connections = options_.open_connections ? options_.open_connections() : -1;
  if (options_.models != nullptr) {
    info.control_mode = std::string(repository::ModelControlModeName(options_.models->control_mode()));
  }
  info.sae_model = options_.sae_model;
  return info;
}

}  // namespace ortserve::console
