// SPDX-License-Identifier: Apache-2.0
// Authorizer: whether an Identity may use a class of route, and a model.
// Refusals are PermissionDenied (HTTP 403, gRPC PERMISSION_DENIED) naming
// what the credential lacks.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "admission/authenticator.h"
#include "admission/identity.h"

namespace ortserve::admission {

// The classes of route a server has; each route belongs to one. docs/security.md
// lists the routes of each class.
enum class RouteClass {
  // Liveness and readiness probes (server and per-model). Open by default.
  kHealth,
  // Server and model metadata, model configuration and statistics. Needs
  // infer or model_control; a named model must be on the allow list.
  kMetadata,
  // Inference, including the pipelines (SAE, embeddings, OpenAI). Needs
  // infer; the model must be on the allow list.
  kInfer,
  // Model load and unload, the repository index. Needs model_control; a
  // named model must be on the allow list.
  kModelControl,
  // Log settings, profiles, trace settings, the console. Needs admin.
  kAdmin,
  // The Prometheus endpoint. Needs metrics unless opened.
  kMetrics,
};
std::string_view RouteClassName(RouteClass route);

// Thread-safe (immutable).
class Authorizer {
 public:
  struct Options {
    // Health routes need no credential (probes carry none).
    bool open_health = true;
    // The metrics endpoint needs no credential (for a scraper on a trusted
    // network).
    bool open_metrics = false;
  };
  explicit Authorizer(Options options) : options_(options) {}

  // True when `route` needs no credential: authentication is skipped and the
  // request is AnonymousIdentity().
  bool IsOpen(RouteClass route) const;

  // OK, or PermissionDenied naming the missing scope or the model that is not
  // on the identity's allow list. `model` is the model the request names
  // (empty for routes that name none); routes that list models (repository
  // index, server statistics) should filter with identity.models.Allows().
  absl::Status Authorize(const Identity& identity, RouteClass route, std::string_view model = {}) const;

 private:
  Options options_;
};

// The whole check for one request: an open route gives AnonymousIdentity();
// otherwise authenticates (Unauthenticated) and authorizes (PermissionDenied).
absl::StatusOr<IdentityPtr> Admit(const Authenticator& authenticator, const Authorizer& authorizer,
                                  const AuthRequest& request, RouteClass route, std::string_view model = {});

}  // namespace ortserve::admission
