// SPDX-License-Identifier: Apache-2.0
// Remote models (issue 26): a model version whose runs are forwarded to
// another inference server. To the scheduler it is a set of Sessions like any
// other, so admission, routing (A/B, shadow, fallback), the response cache,
// batching, deadlines and metrics apply unchanged.
//
// Concurrency: each Session is one scheduler runner; a runner waits for its
// remote call (the sockets live in the transports' non-blocking pools, not
// in the runner), so the number of sessions (`max_inflight`, or the
// instance_group counts) is the number of calls in flight to the remote.
// docs/model_config.md ("Remote models") says how to size it. Each
// Session is used by one runner thread at a time; LoadRemoteModel may be
// called from any thread (the loader pool).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "core/clock.h"
#include "proto/model_config.pb.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ortserve::backend::remote {

struct RemoteLoad {
  ModelSignature signature;  // From the remote's metadata (KServe) or the config (TF Serving).
  std::vector<std::shared_ptr<Session>> sessions;  // One per call in flight; all share the endpoints.
};

struct RemoteLoadOptions {
  std::string model;    // The local model name.
  std::string version;  // The local version, for metric labels.
  // Prometheus registry for the ortserve_remote_* series; null: none.
  prometheus::Registry* registry = nullptr;
  const Clock* clock = nullptr;  // Null: Clock::Real().
};

// Checks `config.remote()`, connects to its endpoints and reads the remote
// model's tensors. Fails when the config is wrong (InvalidArgument) or when
// no endpoint answers that the model is ready (Unavailable, with each
// endpoint's error). Starts the health checker, which lives as long as the
// sessions.
absl::StatusOr<RemoteLoad> LoadRemoteModel(const config::ModelConfig& config, const RemoteLoadOptions& options);

// Fills `config`'s inputs and outputs from the remote's signature when it
// declares none (dims without the batch dimension when max_batch_size > 0),
// so that the config completion does not turn on batching the remote did not
// ask for.
void FillRemoteConfigTensors(const ModelSignature& signature, config::ModelConfig* config);

}  // namespace ortserve::backend::remote
