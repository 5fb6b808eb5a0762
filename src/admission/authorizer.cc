// SPDX-License-Identifier: Apache-2.0
#include "admission/authorizer.h"

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::admission {
namespace {

// The scopes any one of which opens a route class (empty: a credential is
// enough).
ScopeSet ScopesFor(RouteClass route) {
  switch (route) {
    case RouteClass::kHealth:
      return {};
    case RouteClass::kMetadata:
      return {Scope::kInfer, Scope::kModelControl};
    case RouteClass::kInfer:
      return {Scope::kInfer};
    case RouteClass::kModelControl:
      return {Scope::kModelControl};
    case RouteClass::kAdmin:
      return {Scope::kAdmin};
    case RouteClass::kMetrics:
      return {Scope::kMetrics};
  }
  return {Scope::kAdmin};
}

bool ChecksModel(RouteClass route) {
  return route == RouteClass::kMetadata || route == RouteClass::kInfer || route == RouteClass::kModelControl;
}

}  // namespace

std::string_view RouteClassName(RouteClass route) {
  switch (route) {
    case RouteClass::kHealth:
      return "health";
    case RouteClass::kMetadata:
      return "metadata";
    case RouteClass::kInfer:
      return "infer";
    case RouteClass::kModelControl:
      return "model_control";
    case RouteClass::kAdmin:
      return "admin";
    case RouteClass::kMetrics:
      return "metrics";
  }
  return "unknown";
}

bool Authorizer::IsOpen(RouteClass route) const {
  return (route == RouteClass::kHealth && options_.open_health) ||
         (route == RouteClass::kMetrics && options_.open_metrics);
}

absl::Status Authorizer::Authorize(const Identity& identity, RouteClass route, std::string_view model) const {
  if (IsOpen(route)) return absl::OkStatus();
  const ScopeSet needed = ScopesFor(route);
  if (!needed.empty() && !identity.scopes.HasAny(needed)) {
    return absl::PermissionDeniedError(StrCat("credential '", identity.id, "' lacks the scope for ",
                                              RouteClassName(route), " routes (needs ",
                                              needed.ToString(), "; has ",
                                              identity.scopes.empty() ? "none" : identity.scopes.ToString(), ")"));
  }
  if (ChecksModel(route) && !model.empty() && !identity.models.Allows(model)) {
    // The model name comes from the request: bound what is echoed.
    return absl::PermissionDeniedError(StrCat("credential '", identity.id, "' may not use model '",
                                              model.substr(0, 128), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<IdentityPtr> Admit(const Authenticator& authenticator, const Authorizer& authorizer,
                                  const AuthRequest& request, RouteClass route, std::string_view model) {
  if (authorizer.IsOpen(route)) return AnonymousIdentity();
  ASSIGN_OR_RETURN(IdentityPtr identity, authenticator.Authenticate(request));
  RETURN_IF_ERROR(authorizer.Authorize(*identity, route, model));
  return identity;
}

}  // namespace ortserve::admission
