// SPDX-License-Identifier: Apache-2.0
// AccessControl: the one check both front ends make before a request reaches
// its handler (authenticate, authorize by route class and model), and the
// audit log they record model control, admin actions and refusals in.
// docs/security.md is the reference for the route classes and the events.
//
// With authentication off (no authenticator, or one that is disabled) every
// request is the anonymous identity with every scope: Check costs one branch.
// Without an audit log, Record costs one branch.
//
// Thread-safe (immutable; the authenticator and the audit log are).
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "admission/authenticator.h"
#include "admission/authorizer.h"
#include "admission/identity.h"
#include "observability/audit_log.h"

namespace ortserve::frontend {

class AccessControl {
 public:
  struct Options {
    // Not owned; null: authentication off.
    const admission::Authenticator* authenticator = nullptr;
    admission::Authorizer::Options authorizer{};
    // Not owned; null: nothing is recorded.
    observability::AuditLog* audit = nullptr;
  };
  AccessControl() : AccessControl(Options{}) {}
  explicit AccessControl(Options options)
      : authenticator_(options.authenticator), authorizer_(options.authorizer), audit_(options.audit) {}

  bool enabled() const { return authenticator_ != nullptr && authenticator_->enabled(); }
  bool auditing() const { return audit_ != nullptr; }
  const admission::Authorizer& authorizer() const { return authorizer_; }

  // The identity `request` proves for a request of class `route` naming
  // `model` (empty: none); without a class (an unknown endpoint) any valid
  // credential will do. Unauthenticated (401) or PermissionDenied (403)
  // otherwise; a refusal is recorded in the audit log with `address` and
  // `action` (e.g. "http POST /v2/logging", "grpc RepositoryModelLoad").
  absl::StatusOr<admission::IdentityPtr> Check(const admission::AuthRequest& request, std::optional<admission::RouteClass> route,
                                               std::string_view model, std::string_view address,
                                               std::string_view action) const;

  // Authorizes an identity Check already gave (the messages of a stream
  // each name their model): PermissionDenied, recorded, when refused.
  absl::Status Authorize(const admission::Identity& identity, admission::RouteClass route, std::string_view model,
                         std::string_view address, std::string_view action) const;

  // Records a request refused before Check could judge it (e.g. a gRPC call
  // with a credential repeated in its metadata) and returns `status`.
  absl::Status Refuse(absl::Status status, std::string_view address, std::string_view action) const;

  // Records an action that was allowed (model control, admin): success when
  // `status` is OK, failure (with its message) otherwise. Errors of the log
  // itself are counted there and logged once here, never returned: an audit
  // failure does not undo an action already done.
  void Record(observability::AuditEvent::Type type, const admission::Identity* identity, std::string_view address,
              std::string_view action, std::string_view model, const absl::Status& status) const;

 private:
  const admission::Authenticator* authenticator_;
  const admission::Authorizer authorizer_;
  observability::AuditLog* audit_;
};

}  // namespace ortserve::frontend
