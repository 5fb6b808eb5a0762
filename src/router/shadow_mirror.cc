// SPDX-License-Identifier: Apache-2.0
#include "router/shadow_mirror.h"

#include <vector>

#include "absl/random/random.h"
#include "observability/metrics.h"
#include "repository/model_manager.h"
#include "router/router.h"

namespace ortserve::router {
namespace {

double UniformDraw() {
  thread_local absl::InsecureBitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

// The two answers of a mirrored request; whichever arrives second compares.
struct ShadowPair {
  absl::Mutex mu;
  bool primary_done ABSL_GUARDED_BY(mu) = false;
  bool shadow_done ABSL_GUARDED_BY(mu) = false;
  bool primary_ok ABSL_GUARDED_BY(mu) = false;
  bool shadow_ok ABSL_GUARDED_BY(mu) = false;
  // Views sharing the responses' holders: no bytes are copied.
  std::vector<Tensor> primary ABSL_GUARDED_BY(mu);
  std::vector<Tensor> shadow ABSL_GUARDED_BY(mu);
  observability::ShadowMetrics* metrics = nullptr;
  ShadowLimiter* limiter = nullptr;

  void Finish() {
    // Both sides are in; nothing else touches the pair now.
    std::vector<Tensor> p, s;
    bool p_ok, s_ok;
    {
      absl::MutexLock lock(&mu);
      p.swap(primary);
      s.swap(shadow);
      p_ok = primary_ok;
      s_ok = shadow_ok;
    }
    if (metrics != nullptr) {
      using Result = observability::ShadowMetrics::Result;
      if (!p_ok) {
        metrics->Record(Result::kPrimaryFailed);
      } else if (!s_ok) {
        metrics->Record(Result::kShadowFailed);
      } else {
        const OutputComparison c = CompareOutputs(p, s);
        metrics->Record(Result::kCompared);
        metrics->RecordComparison(c.label_rows, c.label_agreements, c.max_abs_difference);
      }
    }
    limiter->Release();
  }
};

}  // namespace

ShadowMirror::ShadowMirror(Router* router) : router_(router) {
  if (!router_->options_.run_comparison) {
    comparer_ = std::make_unique<ComparisonWorker>();
    router_->options_.run_comparison = [worker = comparer_.get()](absl::AnyInvocable<void() &&> task) {
      worker->Submit(std::move(task));
    };
  }
}

ShadowMirror::~ShadowMirror() = default;

ShadowLimiter& ShadowMirror::LimiterFor(const std::string& model) {
  absl::MutexLock lock(&mu_);
  auto& slot = limiters_[model];
  if (!slot) slot = std::make_unique<ShadowLimiter>();
  return *slot;
}

ShadowMirror::Launch ShadowMirror::MaybeMirror(const repository::ModelHandle& model, const InferRequest& request) {
  const config::ModelRouting& routing = model->config.routing();
  if (!routing.has_shadow()) return {};
  const config::ModelShadow& policy = routing.shadow();
  if (policy.fraction() < 1 && UniformDraw() >= policy.fraction()) return {};
  const Router::Options& options = router_->options_;
  const std::string& target_name = policy.model().empty() ? model->name : policy.model();
  const std::string target_version = policy.version() > 0 ? std::to_string(policy.version()) : std::string();
  auto target = options.models->GetModel(target_name, target_version);
  observability::ShadowMetrics* shadow_metrics =
      options.metrics == nullptr ? nullptr
                                 : options.metrics->ForShadow(model->name, target_name,
                                                              target.ok() ? (*target)->version_string : target_version);
  ShadowLimiter& limiter = LimiterFor(model->name);
  const uint32_t limit = policy.max_in_flight() > 0 ? policy.max_in_flight() : 64;
  const bool draining = options.draining && options.draining();
  if (!target.ok() || draining || !limiter.TryAcquire(limit)) {
    if (shadow_metrics != nullptr) shadow_metrics->Record(observability::ShadowMetrics::Result::kDropped);
    return {};
  }
  auto pair = std::make_shared<ShadowPair>();
  pair->metrics = shadow_metrics;
  pair->limiter = &limiter;
  std::unique_ptr<InferRequest> copy = CopyForShadow(request);
  copy->model_name = target_name;
  copy->model_version = (*target)->version_string;
  copy->arrival = options.clock->Now();
  // Counted in flight so that a shutdown drain waits for it.
  if (options.count_shadow) options.count_shadow(+1);
  Launch launch;
  launch.launch = [this, pair, target = *std::move(target), copy = std::move(copy)]() mutable {
    Router::Pass pass;
    pass.shadow = false;
    pass.fallback = false;
    pass.cache = false;
    pass.mirror = true;
    router_->Dispatch(std::move(target), RouteReason::kExplicit, std::move(copy),
                      [this, pair](absl::StatusOr<InferResponse> result) {
                        bool finish;
                        {
                          absl::MutexLock lock(&pair->mu);
                          pair->shadow_done = true;
                          pair->shadow_ok = result.ok();
                          if (result.ok()) pair->shadow = std::move(result->outputs);
                          finish = pair->primary_done;
                        }
                        const Router::Options& options = router_->options_;
                        if (finish) options.run_comparison([pair] { pair->Finish(); });
                        if (options.count_shadow) options.count_shadow(-1);
                      },
                      nullptr, std::move(pass));
  };
  // On the primary's answer path: it keeps views of the answer (no bytes
  // copied) and leaves the comparison to run_comparison, off that path.
  launch.compare = [this, pair](const absl::StatusOr<InferResponse>& result) {
    bool finish;
    {
      absl::MutexLock lock(&pair->mu);
      pair->primary_done = true;
      pair->primary_ok = result.ok();
      if (result.ok()) pair->primary = result->outputs;
      finish = pair->shadow_done;
    }
    if (finish) router_->options_.run_comparison([pair] { pair->Finish(); });
  };
  return launch;
}

}  // namespace ortserve::router
