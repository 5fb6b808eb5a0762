// SPDX-License-Identifier: Apache-2.0
// ServerSources: the console's view of a running server: its metric
// registry, its model manager, and a few callbacks for what only the front
// ends know (readiness, open connections).
//
// Thread-safe as far as its parts are (Metrics and ModelManager are).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "console/console.h"

namespace ortserve::observability {
class Metrics;
}  // namespace ortserve::observability

namespace ortserve::repository {
class ModelManager;
}  // namespace ortserve::repository

namespace ortserve::console {

class ServerSources final : public ConsoleSources {
 public:
  struct Options {
    const observability::Metrics* metrics = nullptr;  // Not owned.
    const repository::ModelManager* models = nullptr;  // Not owned.
    std::function<bool()> ready;                  // Null: reported not ready.
    std::function<int64_t()> open_connections;   // Null: unknown.
    std::string sae_model;
  };
  explicit ServerSources(Options options) : options_(std::move(options)) {}

  std::vector<prometheus::MetricFamily> CollectMetrics() override;
  std::vector<ModelInfo> Models() override;
  ServerInfo Server() override;

 private:
  Options options_;
};

}  // namespace ortserve::console
