// SPDX-License-Identifier: Apache-2.0
// ModelProvider: how the request path finds the model version that serves a
// request. The ModelManager implements it; router tests use a fake, so
// routing is tested without a repository, loads or threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ortserve::repository {

struct ModelVersion;
// Pins a version: a request holding one keeps the version (and its sessions)
// alive through a swap or unload.
using ModelHandle = std::shared_ptr<const ModelVersion>;

// Thread-safe (implementations must be).
class ModelProvider {
 public:
  virtual ~ModelProvider() = default;

  // The version to serve. `version` empty: the highest ready version.
  // Errors: NotFound (unknown model or version), Unavailable (known but not
  // ready, with the reason; a lazy model not loaded yet), InvalidArgument (a
  // version that is not a number).
  virtual absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const = 0;

  // As GetModel, but a lazy model that is not loaded is loaded first: `done`
  // runs exactly once, never with a lock held, possibly on another thread
  // (after the load, or with Unavailable and a retry hint when the load
  // outlasts the model's load timeout). The calling thread never blocks.
  virtual void AcquireModelAsync(std::string name, std::string version,
                                 std::function<void(absl::StatusOr<ModelHandle>)> done) = 0;
};

}  // namespace ortserve::repository
