// SPDX-License-Identifier: Apache-2.0
// ShadowMirror: the router's shadow traffic. For a model whose config has
// `routing { shadow { ... } }`, a sampled copy of each request runs on the
// candidate after the primary was queued, never delaying or failing the
// primary's answer; once both answers are in, they are compared off the
// answer path (router/shadow.h) and the result is counted.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "core/infer_request.h"
#include "repository/model_provider.h"
#include "router/shadow.h"

namespace ortserve::router {

class Router;

class ShadowMirror {
 public:
  // `router` outlives the mirror (it owns it).
  explicit ShadowMirror(Router* router);
  ~ShadowMirror();

  // A mirrored request: `compare` takes the primary's answer, `launch`
  // queues the copy on the shadow target. Both empty when not mirrored.
  struct Launch {
    std::function<void(const absl::StatusOr<InferResponse>&)> compare;
    absl::AnyInvocable<void() &&> launch;
  };
  // Copies `request` for `model`'s shadow target when its routing samples
  // it, the target is ready, and a shadow slot of the model is free.
  Launch MaybeMirror(const repository::ModelHandle& model, const InferRequest& request);

 private:
  ShadowLimiter& LimiterFor(const std::string& model);

  Router* router_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<ShadowLimiter>, std::less<>> limiters_ ABSL_GUARDED_BY(mu_);
  // Declared last: destroyed first, it runs the comparisons still queued
  // (they release slots of limiters_) before anything they use goes.
  std::unique_ptr<ComparisonWorker> comparer_;
};

}  // namespace ortserve::router
