// SPDX-License-Identifier: Apache-2.0
// What the collection endpoints of both front ends share (REST:
// collection_routes.cc; gRPC: grpc/collection_calls.cc): whose collections a
// caller sees, and how a collection's text is embedded.
//
// Thread-safe: free functions without shared state.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "admission/identity.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/inference_service.h"

namespace ortserve::frontend {

// The tenant whose collections `identity` sees: its tenant; a credential
// without one has its own ("id.<credential id>"); anonymous callers (no
// authentication configured; null) share "default". PermissionDenied when
// that name is not usable (docs/retrieval.md#tenants-and-credentials).
absl::StatusOr<std::string> CollectionTenant(const admission::Identity* identity);

using EmbedDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::vector<float>>>) &&>;

// Embeds `texts` with `model` through the normal inference path (router,
// dynamic batcher, the model's limits), normalized and truncated to the
// model's max_length; calls `done` once, with one vector per text, from the
// thread that completed the run (or inline for a refusal: no model,
// PermissionDenied for a credential whose model list excludes it).
void EmbedForCollection(InferenceService& service, const std::string& model, const admission::Identity* identity,
                        const std::vector<std::string>& texts, const PipelineContext& context,
                        std::shared_ptr<CancellationFlag> cancellation, EmbedDone done);

}  // namespace ortserve::frontend
