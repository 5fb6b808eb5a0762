// SPDX-License-Identifier: Apache-2.0
#include "frontend/access_control.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <utility>

#include "core/strings.h"

namespace ortserve::frontend {
namespace {

using observability::AuditEvent;

// What kind of credential a refused request carried (never its value).
std::string_view Presented(const admission::AuthRequest& request) {
  if (!request.authorization.empty() && !request.api_key.empty()) return "several";
  if (!request.api_key.empty()) return "x-api-key";
  if (!request.authorization.empty()) return "authorization";
  if (!request.client_cert_subject.empty()) return "client_certificate";
  return "none";
}

// A failing audit log is reported once per process (the log counts every
// loss; the operator's alert is on that counter), not once per request.
void ReportAuditError(const absl::Status& status) {
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true)) {
    spdlog::error("audit log: a line could not be written ({}); later failures are counted, not logged",
                  ToStd(status.message()));
  }
}

}  // namespace

absl::StatusOr<admission::IdentityPtr> AccessControl::Check(const admission::AuthRequest& request,
                                                            std::optional<admission::RouteClass> route,
                                                            std::string_view model,
                                                            std::string_view address,
                                                            std::string_view action) const {
  if (!enabled()) return admission::AnonymousIdentity();
  if (route && authorizer_.IsOpen(*route)) return admission::AnonymousIdentity();
  const std::string_view route_class = route ? RouteClassName(*route) : "unknown";
  auto identity = authenticator_->Authenticate(request);
  if (!identity.ok()) {
    if (audit_ != nullptr) {
      const std::pair<std::string_view, std::string_view> extra[] = {{"credential", Presented(request)},
                                                                     {"route_class", route_class}};
      AuditEvent event;
      event.type = AuditEvent::Type::kCredentialRefused;
      event.client_id = "anonymous";
      event.client_kind = "anonymous";
      event.address = address;
      event.action = action;
      event.model = model;
      event.outcome = AuditEvent::Outcome::kRefused;
      event.message = ToStd(identity.status().message());
      event.extra = extra;
      if (auto status = audit_->Record(event); !status.ok()) ReportAuditError(status);
    }
    return identity.status();
  }
  if (!route) return identity;
  if (absl::Status allowed = Authorize(**identity, *route, model, address, action); !allowed.ok()) return allowed;
  return identity;
}

absl::Status AccessControl::Authorize(const admission::Identity& who, admission::RouteClass route,
                                      std::string_view model, std::string_view address,
                                      std::string_view action) const {
  absl::Status allowed = authorizer_.Authorize(who, route, model);
  if (!allowed.ok() && audit_ != nullptr) {
    const std::pair<std::string_view, std::string_view> extra[] = {{"route_class", RouteClassName(route)}};
    AuditEvent event;
    event.type = AuditEvent::Type::kAccessDenied;
    event.client_id = who.id;
    event.client_kind = admission::KindName(who.kind);
    event.tenant = who.tenant;
    event.address = address;
    event.action = action;
    event.model = model;
    event.outcome = AuditEvent::Outcome::kRefused;
    event.message = ToStd(allowed.message());
    event.extra = extra;
    if (auto status = audit_->Record(event); !status.ok()) ReportAuditError(status);
  }
  return allowed;
}

absl::Status AccessControl::Refuse(absl::Status status, std::string_view address, std::string_view action) const {
  if (audit_ != nullptr) {
    AuditEvent event;
    event.type = AuditEvent::Type::kCredentialRefused;
    event.client_id = "anonymous";
    event.client_kind = "anonymous";
    event.address = address;
    event.action = action;
    event.outcome = AuditEvent::Outcome::kRefused;
    event.message = ToStd(status.message());
    if (auto written = audit_->Record(event); !written.ok()) ReportAuditError(written);
  }
  return status;
}

void AccessControl::Record(AuditEvent::Type type, const admission::Identity* identity, std::string_view address,
                           std::string_view action, std::string_view model, const absl::Status& status) const {
  if (audit_ == nullptr) return;
  const admission::Identity& who = identity != nullptr ? *identity : *admission::AnonymousIdentity();
  AuditEvent event;
  event.type = type;
  event.client_id = who.id;
  event.client_kind = admission::KindName(who.kind);
  event.tenant = who.tenant;
  event.address = address;
  event.action = action;
  event.model = model;
  event.outcome = status.ok() ? AuditEvent::Outcome::kSuccess : AuditEvent::Outcome::kFailure;
  event.message = ToStd(status.message());
  if (auto written = audit_->Record(event); !written.ok()) ReportAuditError(written);
}

}  // namespace ortserve::frontend
