// SPDX-License-Identifier: Apache-2.0
// Executor: what the router hands a request to once it has a version. The
// server's executor checks the request against the version's signature and
// queues it to the version's scheduler (through its text pipeline when the
// model has one); router tests use a fake that answers at once.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "core/infer_request.h"
#include "repository/model_provider.h"

namespace ortserve::router {

// Thread-safe (implementations must be).
class Executor {
 public:
  virtual ~Executor() = default;

  // The request's checks against `model` (input names, types, shapes, batch
  // size, byte sizes, requested outputs; a text model's text signature).
  // InvalidArgument naming the tensor or parameter. May normalise the
  // request (nothing today).
  virtual absl::Status Validate(const repository::ModelVersion& model, InferRequest& request) = 0;

  // Runs a validated request on `model`; `done` is called exactly once. When
  // `version_held` is false the executor keeps `model` alive until `done`
  // has returned; when true the caller already does.
  virtual void Execute(repository::ModelHandle model, std::unique_ptr<InferRequest> request, InferCallback done,
                       bool version_held) = 0;
};

}  // namespace ortserve::router
