// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/message_allocator.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <deque>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "admission/grpc_tls.h"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/grpc/collection_calls.h"
#include "frontend/grpc/grpc_codec.h"
#include "frontend/grpc/grpc_settings.h"
#include "frontend/grpc/infer_calls.h"
#include "observability/request_record.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::frontend {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

constexpr std::string_view kServiceName = "inference.GRPCInferenceService";
using admission::RouteClass;

// The peer as "ip:port" (gRPC says "ipv4:1.2.3.4:5" / "ipv6:[::1]:5").
std::string PeerOf(grpc::CallbackServerContext* context) {
  std::string peer = context->peer();
  for (std::string_view prefix : {"ipv4:", "ipv6:"}) {
    if (peer.starts_with(prefix)) peer.erase(0, prefix.size());
  }
  return peer;
}

class Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  Service(InferenceService* service, admission::Admission* admission, int max_stream_in_flight,
          const AccessControl* access, bool tls)
      : service_(service),
        admission_(admission),
        max_stream_in_flight_(max_stream_in_flight),
        access_(access != nullptr ? access : &no_access_),
        tls_(tls) {
    SetMessageAllocatorFor_ModelInfer(allocator_.get());
  }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    if (auto refused = Check(context, RouteClass::kHealth, {}, "ServerLive")) return refused;
    response->set_live(service_->Live());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    if (auto refused = Check(context, RouteClass::kHealth, {}, "ServerReady")) return refused;
    response->set_ready(service_->Ready());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    if (auto refused = Check(context, RouteClass::kHealth, {}, "ModelReady")) return refused;
    response->set_ready(service_->GetModel(request->name(), request->version()).ok());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    if (auto refused = Check(context, RouteClass::kMetadata, {}, "ServerMetadata")) return refused;
    EncodeServerMetadata(service_->Extensions(), response);
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    if (auto refused = Check(context, RouteClass::kMetadata, request->name(), "ModelMetadata")) return refused;
    auto metadata = service_->GetModelMetadata(request->name(), request->version());
    if (metadata.ok()) EncodeModelMetadata(*metadata, response);
    return Done(context, metadata.status());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context, const ModelInferRequest* request,
                                       ModelInferResponse* response) override {
    admission::IdentityPtr identity;
    if (auto refused = Check(context, RouteClass::kInfer, request->model_name(), "ModelInfer", &identity)) {
      return refused;
    }
    return StartModelInfer(service_, admission_, context, response, identity.get());
  }

  grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* context) override {
    // The stream's credential is checked once, at its start; each message's
    // model against the identity's list as it arrives.
    admission::IdentityPtr identity;
    absl::Status refused = Admit(context, RouteClass::kInfer, {}, "ModelStreamInfer", &identity);
    return StartModelStreamInfer(service_, admission_, context, max_stream_in_flight_,
                                 StreamAccess{access_, std::move(identity), std::move(refused),
                                              access_->auditing() ? PeerOf(context) : std::string()});
  }

  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* context,
                                        const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) override {
    if (auto refused = Check(context, RouteClass::kMetadata, request->name(), "ModelConfig")) return refused;
    auto config = service_->GetServedConfig(request->name(), request->version());
    if (config.ok()) *response->mutable_config() = *std::move(config);
    return Done(context, config.status());
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* context,
                                            const inference::ModelStatisticsRequest* request,
                                            inference::ModelStatisticsResponse* response) override {
    admission::IdentityPtr identity;
    if (absl::Status refused = Admit(context, RouteClass::kMetadata, request->name(), "ModelStatistics", &identity);
        !refused.ok()) {
      return Done(context, refused);
    }
    // As REST: no name = every ready version of every model; a name without
    // a version = every ready version of that model.
    std::vector<ModelHandle> models;
    if (request->name().empty() || request->version().empty()) {
      for (const auto& entry : service_->Index()) {
        if (entry.state != repository::ModelState::kReady) continue;
        if (!request->name().empty() && entry.name != request->name()) continue;
        if (!identity->models.Allows(entry.name)) continue;
        if (auto model = service_->GetModel(entry.name, entry.version); model.ok()) models.push_back(*model);
      }
    }
    if (!request->name().empty() && models.empty()) {
      auto model = service_->GetModel(request->name(), request->version());
      if (!model.ok()) return Done(context, model.status());
      models.push_back(*model);
    }
    EncodeModelStatistics(models, response);
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* context,
                                            const inference::RepositoryIndexRequest* request,
                                            inference::RepositoryIndexResponse* response) override {
    admission::IdentityPtr identity;
    if (absl::Status refused = Admit(context, RouteClass::kModelControl, {}, "RepositoryIndex", &identity);
        !refused.ok()) {
      return Done(context, refused);
    }
    auto index = service_->Index();
    // Only the models the credential may use (all while authentication is off).
    if (!identity->models.AllowsAll()) {
      std::erase_if(index, [&](const auto& entry) { return !identity->models.Allows(entry.name); });
    }
    EncodeRepositoryIndex(index, request->ready(), response);
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* context,
                                                const inference::RepositoryModelLoadRequest* request,
                                                inference::RepositoryModelLoadResponse*) override {
    admission::IdentityPtr identity;
    if (absl::Status refused =
            Admit(context, RouteClass::kModelControl, request->model_name(), "RepositoryModelLoad", &identity);
        !refused.ok()) {
      return Done(context, refused);
    }
    // Triton's clients send a config override as parameters["config"]; model
    // files in the request ("file:<path>") are refused as over HTTP.
    std::string config;
    for (const auto& [key, value] : request->parameters()) {
      if (key == "config") {
        if (value.parameter_choice_case() != inference::ModelRepositoryParameter::kStringParam) {
          return Done(context, absl::InvalidArgumentError(
                                   "load parameter 'config' must be a string holding the model config JSON"));
        }
        config = value.string_param();
      } else if (key.rfind("file:", 0) == 0) {
        return Done(context, absl::InvalidArgumentError(StrCat(
                                 "load parameter '", key, "' (model file contents in the request) is not supported")));
      }
    }
    auto* reactor = context->DefaultReactor();
    // `done` runs once, on a loader thread or inline when refused up front.
    service_->LoadModel(request->model_name(), std::move(config),
                        [this, reactor, identity, model = request->model_name(),
                         peer = access_->auditing() ? PeerOf(context) : std::string()](absl::Status status) {
                          access_->Record(observability::AuditEvent::Type::kModelControl, identity.get(), peer,
                                          "model.load", model, status);
                          reactor->Finish(ToGrpcStatus(status));
                        });
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* context,
                                                  const inference::RepositoryModelUnloadRequest* request,
                                                  inference::RepositoryModelUnloadResponse*) override {
    admission::IdentityPtr identity;
    if (absl::Status refused =
            Admit(context, RouteClass::kModelControl, request->model_name(), "RepositoryModelUnload", &identity);
        !refused.ok()) {
      return Done(context, refused);
    }
    auto* reactor = context->DefaultReactor();
    service_->UnloadModel(request->model_name(),
                          [this, reactor, identity, model = request->model_name(),
                           peer = access_->auditing() ? PeerOf(context) : std::string()](absl::Status status) {
                            access_->Record(observability::AuditEvent::Type::kModelControl, identity.get(), peer,
                                            "model.unload", model, status);
                            reactor->Finish(ToGrpcStatus(status));
                          });
    return reactor;
  }

  grpc::ServerUnaryReactor* LogSettings(grpc::CallbackServerContext* context,
                                        const inference::LogSettingsRequest* request,
                                        inference::LogSettingsResponse* response) override {
    admission::IdentityPtr identity;
    if (absl::Status refused = Admit(context, RouteClass::kAdmin, {}, "LogSettings", &identity); !refused.ok()) {
      return Done(context, refused);
    }
    absl::Status status = HandleLogSettings(service_->telemetry().logging, *request, response);
    access_->Record(observability::AuditEvent::Type::kAdmin, identity.get(),
                    access_->auditing() ? PeerOf(context) : std::string(),
                    request->settings().empty() ? "logging.read" : "logging.update", {}, status);
    return Done(context, status);
  }

  grpc::ServerUnaryReactor* TraceSetting(grpc::CallbackServerContext* context,
                                         const inference::TraceSettingRequest* request,
                                         inference::TraceSettingResponse* response) override {
    admission::IdentityPtr identity;
    if (absl::Status refused = Admit(context, RouteClass::kAdmin, request->model_name(), "TraceSetting", &identity);
        !refused.ok()) {
      return Done(context, refused);
    }
    absl::Status status = HandleTraceSetting(*service_, *request, response);
    access_->Record(observability::AuditEvent::Type::kAdmin, identity.get(),
                    access_->auditing() ? PeerOf(context) : std::string(),
                    request->settings().empty() ? "trace.read" : "trace.update", request->model_name(), status);
    return Done(context, status);
  }

  // System shared memory: as the infer route class (a client registers what
  // its requests then read and write).
  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(grpc::CallbackServerContext* context,
                                                     const inference::SystemSharedMemoryStatusRequest* request,
                                                     inference::SystemSharedMemoryStatusResponse* response) override {
    if (auto refused = Check(context, RouteClass::kInfer, {}, "SystemSharedMemoryStatus")) return refused;
    return Done(context, HandleShmStatus(service_->shared_memory(), *request, response));
  }
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(grpc::CallbackServerContext* context,
                                                       const inference::SystemSharedMemoryRegisterRequest* request,
                                                       inference::SystemSharedMemoryRegisterResponse*) override {
    if (auto refused = Check(context, RouteClass::kInfer, {}, "SystemSharedMemoryRegister")) return refused;
    return Done(context,
                HandleShmRegister(service_->shared_memory(), *request, IsLoopbackGrpcPeer(context->peer())));
  }
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(grpc::CallbackServerContext* context,
                                                         const inference::SystemSharedMemoryUnregisterRequest* request,
                                                         inference::SystemSharedMemoryUnregisterResponse*) override {
    if (auto refused = Check(context, RouteClass::kInfer, {}, "SystemSharedMemoryUnregister")) return refused;
    return Done(context, service_->shared_memory().Unregister(request->name()));
  }

  // CUDA shared memory (CUDA IPC handles) is not served: the answer says so,
  // so that Triton's clients report it instead of reading success.
  grpc::ServerUnaryReactor* CudaSharedMemoryStatus(grpc::CallbackServerContext* context,
                                                   const inference::CudaSharedMemoryStatusRequest*,
                                                   inference::CudaSharedMemoryStatusResponse*) override {
    return Done(context, NotServed("CudaSharedMemoryStatus", kNoCudaShm));
  }
  grpc::ServerUnaryReactor* CudaSharedMemoryRegister(grpc::CallbackServerContext* context,
                                                     const inference::CudaSharedMemoryRegisterRequest*,
                                                     inference::CudaSharedMemoryRegisterResponse*) override {
    return Done(context, NotServed("CudaSharedMemoryRegister", kNoCudaShm));
  }
  grpc::ServerUnaryReactor* CudaSharedMemoryUnregister(grpc::CallbackServerContext* context,
                                                       const inference::CudaSharedMemoryUnregisterRequest*,
                                                       inference::CudaSharedMemoryUnregisterResponse*) override {
    return Done(context, NotServed("CudaSharedMemoryUnregister", kNoCudaShm));
  }

 private:
  static constexpr std::string_view kNoCudaShm =
      "CUDA shared memory is not supported on this server; send tensors in the request or use system shared memory";

  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

 public:
  // The identity of the call (anonymous while authentication is off), or
  // the refusal (Unauthenticated, PermissionDenied), recorded in the audit log.
  // Public for the collections service, which admits its calls the same way.
  absl::Status Admit(grpc::CallbackServerContext* context, RouteClass route, std::string_view model,
                     std::string_view method, admission::IdentityPtr* identity) const {
    if (!access_->enabled()) {
      *identity = admission::AnonymousIdentity();
      return absl::OkStatus();
    }
    const std::string action = access_->auditing() ? StrCat("grpc ", method) : std::string();
    const std::string peer = access_->auditing() ? PeerOf(context) : std::string();
    admission::AuthRequest request;
    const auto& metadata = context->client_metadata();
    for (const std::string_view key : {admission::kAuthorizationMetadata, admission::kApiKeyMetadata}) {
      auto [first, last] = metadata.equal_range(grpc::string_ref(key.data(), key.size()));
      if (first == last) continue;
      if (std::next(first) != last) {
        return access_->Refuse(absl::UnauthenticatedError(StrCat("send one credential: '", key,
                                                                 "' appears more than once in the metadata")),
                               peer, action);
      }
      const std::string_view value(first->second.data(), first->second.size());
      (key == admission::kAuthorizationMetadata ? request.authorization : request.api_key) = value;
    }
    std::string subject;
    if (tls_) {
      if (auto auth_context = context->auth_context()) subject = admission::GrpcVerifiedClientSubject(*auth_context);
      request.client_cert_subject = subject;
    }
    auto checked = access_->Check(request, route, model, peer, action);
    if (!checked.ok()) return checked.status();
    *identity = *std::move(checked);
    return absl::OkStatus();
  }

  // Null when the call may go on; otherwise the finished call's reactor.
  // `identity` (optional) receives who the credential names.

 private:
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context, RouteClass route, std::string_view model,
                                  std::string_view method, admission::IdentityPtr* identity = nullptr) const {
    if (!access_->enabled()) return nullptr;
    admission::IdentityPtr checked;
    absl::Status refused = Admit(context, route, model, method, identity != nullptr ? identity : &checked);
    return refused.ok() ? nullptr : Done(context, refused);
  }

  InferenceService* const service_;
  admission::Admission* const admission_;
  const int max_stream_in_flight_;
  const AccessControl no_access_;
  const AccessControl* const access_;
  const bool tls_;
  std::unique_ptr<grpc::MessageAllocator<ModelInferRequest, ModelInferResponse>> allocator_ =
      MakeInferAllocator();
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(ToStd(status.message())));
}

struct GrpcServer::Impl {
  Options options;
  std::unique_ptr<Service> service;
  std::unique_ptr<CollectionsService> collections;  // Null unless collections are on.
  UnknownMethodService unknown_methods;  // Declared before server: outlives it.
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::atomic<bool> stopped{false};
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcServer::~GrpcServer() { Stop(); }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(Options options) {
  if (options.service == nullptr) return absl::InvalidArgumentError("GrpcServer needs a service");
  if (options.max_stream_in_flight < 1) options.max_stream_in_flight = 1;
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const Options& o = impl->options;
  impl->service = std::make_unique<Service>(o.service, o.admission, o.max_stream_in_flight, o.access,
                                            o.credentials != nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // An IPv6 literal needs brackets before the port.
  const std::string host = o.address.find(':') != std::string::npos && o.address.front() != '['
                               ? StrCat("[", o.address, "]")
                               : o.address;
  builder.AddListeningPort(StrCat(host, ":", o.port),
                           o.credentials != nullptr ? o.credentials : grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
  if (o.collections != nullptr) {
    impl->collections = std::make_unique<CollectionsService>(
        o.service, o.collections, [service = impl->service.get()](grpc::CallbackServerContext* context,
                                                                  std::string_view method,
                                                                  admission::IdentityPtr* identity) {
          return service->Admit(context, RouteClass::kInfer, {}, method, identity);
        });
    builder.RegisterService(impl->collections.get());
  }
  builder.RegisterCallbackGenericService(&impl->unknown_methods);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<size_t>(o.max_message_bytes, static_cast<size_t>(INT_MAX))));
  builder.SetMaxSendMessageSize(-1);
  // Without this, a second server on a taken port would silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(StrCat("cannot listen for gRPC on ", o.address, ":", o.port));
  }
  auto server = std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
  server->SetServing(false);
  return server;
}

void GrpcServer::SetServing(bool serving) {
  if (!impl_ || !impl_->server) return;
  grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // The overall status ("").
  health->SetServingStatus(std::string(kServiceName), serving);
}

void GrpcServer::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  SetServing(false);
  impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + impl_->options.shutdown_grace));
  impl_->server->Wait();
}

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

}  // namespace ortserve::frontend
