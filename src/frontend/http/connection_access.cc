// SPDX-License-Identifier: Apache-2.0
// Connection: who may use a route (authentication, scopes, a credential's
// models) and the audit line of the routes that are recorded
// (docs/security.md).
#include <string>

#include "boost/beast/core/string.hpp"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/http/connection.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string_view Sv(beast::string_view v) { return {v.data(), v.size()}; }

// The class of each route (docs/security.md), and the audit action of those
// that are recorded (admin and model control); empty: not recorded.
struct RouteAccess {
  admission::RouteClass route_class;
  std::string_view action;
};

RouteAccess AccessOf(RouteId id, http::verb verb) {
  using admission::RouteClass;
  switch (id) {
    case RouteId::kHealthLive:
    case RouteId::kHealthReady:
    case RouteId::kModelReady:
    case RouteId::kTeiHealth: return {RouteClass::kHealth, {}};
    case RouteId::kTeiInfo:
    case RouteId::kOpenAiModels: return {RouteClass::kMetadata, {}};
    case RouteId::kServerMetadata:
    case RouteId::kAllStats:
    case RouteId::kModelMetadata:
    case RouteId::kModelConfig:
    case RouteId::kModelStats:
    case RouteId::kGenerationStats: return {RouteClass::kMetadata, {}};
    case RouteId::kModelInfer:
    case RouteId::kSaeAnalyze:
    case RouteId::kTeiEmbed:
    case RouteId::kTeiPredict:
    case RouteId::kOpenAiEmbeddings:
    case RouteId::kOpenAiCompletions:
    case RouteId::kOpenAiChatCompletions:
    case RouteId::kTritonGenerate:
    case RouteId::kTritonGenerateStream: return {RouteClass::kInfer, {}};
    case RouteId::kRepositoryIndex: return {RouteClass::kModelControl, {}};
    case RouteId::kRepositoryLoad: return {RouteClass::kModelControl, "model.load"};
    case RouteId::kRepositoryUnload: return {RouteClass::kModelControl, "model.unload"};
    case RouteId::kLogging: return {RouteClass::kAdmin, verb == http::verb::post ? "logging.update" : "logging.read"};
    case RouteId::kProfileCpu: return {RouteClass::kAdmin, "profile.cpu"};
    case RouteId::kProfileHeap: return {RouteClass::kAdmin, "profile.heap"};
    case RouteId::kAlerts: return {RouteClass::kAdmin, "alerts.read"};
    case RouteId::kAlertsReplay: return {RouteClass::kAdmin, "alerts.replay"};
    // The page's files hold no data and are served to anyone (see
    // Authorize); its snapshot needs admin. Reads are not audited.
    case RouteId::kConsole:
    case RouteId::kConsoleScript:
    case RouteId::kConsoleStyle:
    case RouteId::kConsoleSnapshot: return {RouteClass::kAdmin, {}};
    case RouteId::kTraceSetting: return {RouteClass::kAdmin, verb == http::verb::post ? "trace.update" : "trace.read"};
    case RouteId::kSystemShmStatus:
    case RouteId::kSystemShmRegister:
    case RouteId::kSystemShmUnregister:
    case RouteId::kCudaShm: return {RouteClass::kInfer, {}};
    // A credential's collections are its tenant's (collection_routes.cc).
    case RouteId::kCollections:
    case RouteId::kCollection:
    case RouteId::kCollectionDocuments:
    case RouteId::kCollectionDocument:
    case RouteId::kCollectionQuery: return {RouteClass::kInfer, {}};
  }
  return {RouteClass::kAdmin, {}};
}

}  // namespace

bool Connection::Authorize() {
  const AccessControl& access = *context_.access;
  const Request& request = parser_->get();
  identity_.reset();
  if (!route_->ok()) {
    // An unknown endpoint or method still needs a credential when
    // authentication is on: which paths exist is not for anyone to probe.
    if (!access.enabled()) return true;
    const admission::AuthRequest auth{.authorization = Sv(request[http::field::authorization]),
                                      .api_key = Sv(request["X-API-Key"]),
                                      .client_cert_subject = client_subject_};
    auto identity = access.Check(auth, std::nullopt, {}, access.auditing() ? PeerAddress() : std::string(),
                                 "http unknown route");
    if (identity.ok()) return true;
    keep_alive_ = false;
    BeginRecord();
    Reply reply = Error(identity.status());
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ortserve\"");
    Send(std::move(reply));
    return false;
  }
  const RouteMatch& match = **route_;
  const RouteAccess route = AccessOf(match.id, request.method());
  // The model a request names: in its path for KServe routes; the
  // configured model for the text endpoints (an OpenAI body may name
  // another model; docs/security.md "Limits").
  std::string_view model = match.model;
  switch (match.id) {
    case RouteId::kSaeAnalyze: model = options_.pipeline.sae_model; break;
    case RouteId::kTeiEmbed:
    case RouteId::kOpenAiEmbeddings: model = options_.pipeline.embed_model; break;
    case RouteId::kTeiPredict: model = options_.pipeline.predict_model; break;
    case RouteId::kSystemShmStatus:
    case RouteId::kSystemShmRegister:
    case RouteId::kSystemShmUnregister:
    case RouteId::kCudaShm:  // {m} is a region's name.
    case RouteId::kCollections:
    case RouteId::kCollection:
    case RouteId::kCollectionDocuments:
    case RouteId::kCollectionDocument:
    case RouteId::kCollectionQuery: model = {}; break;  // {m} is a collection; its model is checked on use.
    default: break;
  }
  if (!route.action.empty()) {
    audit_action_ = route.action;
    audit_model_control_ = route.route_class == admission::RouteClass::kModelControl;
  }
  if (!access.enabled()) return true;
  // The console's static files are the same for everyone and hold no data:
  // a browser must load them before it can send a credential at all
  // (docs/console.md#access).
  if (match.id == RouteId::kConsole || match.id == RouteId::kConsoleScript || match.id == RouteId::kConsoleStyle) {
    return true;
  }
  const admission::AuthRequest auth{.authorization = Sv(request[http::field::authorization]),
                                    .api_key = Sv(request["X-API-Key"]),
                                    .client_cert_subject = client_subject_};
  // The audit line's action; built only when there is an audit log.
  std::string action;
  if (access.auditing()) {
    action = StrCat("http ", Sv(request.method_string()), " ", Sv(request.target()).substr(0, 512));
  }
  auto identity =
      access.Check(auth, route.route_class, model, access.auditing() ? PeerAddress() : std::string(), action);
  if (identity.ok()) {
    identity_ = *std::move(identity);
    return true;
  }
  // Refused before its body is read: the connection closes after the answer.
  audit_action_ = {};
  keep_alive_ = false;
  BeginRecord();
  Reply reply = Error(identity.status());
  if (identity.status().code() == absl::StatusCode::kUnauthenticated) {
    // RFC 6750: the scheme to use, and (when one was sent) that it failed.
    const bool sent = !auth.authorization.empty() || !auth.api_key.empty();
    reply.headers.emplace_back("WWW-Authenticate", sent ? "Bearer realm=\"ortserve\", error=\"invalid_token\""
                                                        : "Bearer realm=\"ortserve\"");
  }
  Send(std::move(reply));
  return false;
}

absl::Status Connection::CheckBodyModel() {
  // Only credentials limited to some models pay for this look at the body;
  // the route was authorized for the configured model when its header came.
  if (!identity_ || identity_->models.AllowsAll() || context_.access == nullptr) return absl::OkStatus();
  const std::string& body = parser_->get().body();
  simdjson::dom::parser json;
  simdjson::dom::element doc;
  std::string_view model;
  // A body that does not parse, or names no model, is the pipeline's to refuse or default.
  if (json.parse(body).get(doc) != simdjson::SUCCESS || doc["model"].get(model) != simdjson::SUCCESS) {
    return absl::OkStatus();
  }
  std::string action;
  if (context_.access->auditing()) action = "http POST /v1/embeddings";
  return context_.access->Authorize(*identity_, admission::RouteClass::kInfer, model,
                                    context_.access->auditing() ? PeerAddress() : std::string(), action);
}

const std::string& Connection::PeerAddress() {
  if (peer_.empty()) {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? std::string("unknown") : StrCat(endpoint.address().to_string(), ":", endpoint.port());
  }
  return peer_;
}

bool Connection::LoopbackPeer() {
  beast::error_code ec;
  const auto address = stream_.socket().remote_endpoint(ec).address();
  if (ec) return false;
  if (address.is_v4()) return address.to_v4().is_loopback();
  const auto v6 = address.to_v6();
  return v6.is_loopback() ||
         (v6.is_v4_mapped() && boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback());
}

void Connection::AuditAction(unsigned status) {
  const std::string_view action = audit_action_;
  audit_action_ = {};
  if (context_.access == nullptr || !context_.access->auditing()) return;
  const RouteMatch* match = route_ && route_->ok() ? &**route_ : nullptr;
  absl::Status outcome = absl::OkStatus();
  if (status >= 400) {
    outcome = absl::UnknownError(std::string(std::string_view(reply_.body).substr(0, 2048)));
  }
  context_.access->Record(audit_model_control_ ? observability::AuditEvent::Type::kModelControl
                                               : observability::AuditEvent::Type::kAdmin,
                          identity_.get(), PeerAddress(), action, match ? std::string_view(match->model) : "",
                          outcome);
}

}  // namespace ortserve::frontend
