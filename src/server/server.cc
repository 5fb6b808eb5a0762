// SPDX-License-Identifier: Apache-2.0
#include "server/server.h"

#include <spdlog/spdlog.h>

#include "backend/ort/ort_session_factory.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/http/http_server.h"
#include "frontend/inference_service.h"
#include "repository/model_manager.h"

namespace ortserve::server {

struct Server::Impl {
  std::unique_ptr<backend::OrtSessionFactory> sessions;
  std::unique_ptr<repository::ModelManager> models;
  std::unique_ptr<frontend::InferenceService> service;
  std::unique_ptr<frontend::HttpServer> http;
  std::unique_ptr<frontend::GrpcServer> grpc;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  backend::OrtSessionFactory::Options ort_options;
  ort_options.log_severity = options.ort_log_severity;
  ort_options.shared_intra_op_threads = options.ort_intra_op_threads;
  ort_options.shared_inter_op_threads = options.ort_inter_op_threads;
  ort_options.allow_spinning = options.ort_allow_spinning;
  ASSIGN_OR_RETURN(impl->sessions, backend::OrtSessionFactory::Create(ort_options));
  spdlog::info("ONNX Runtime {}", backend::OrtSessionFactory::RuntimeVersion());

  repository::ModelManager::Options model_options;
  model_options.repository_path = options.model_repository;
  model_options.session_factory = impl->sessions.get();
  model_options.load_threads = options.model_load_threads;
  model_options.warn = [](const std::string& warning) { spdlog::warn("{}", warning); };
  ASSIGN_OR_RETURN(impl->models, repository::ModelManager::Create(std::move(model_options)));
  RETURN_IF_ERROR(impl->models->LoadAll());
  for (const auto& entry : impl->models->Index()) {
    if (entry.state == repository::ModelState::kReady) {
      spdlog::info("model '{}' version {} is READY", entry.name, entry.version);
    } else {
      spdlog::error("model '{}'{}{} is {}: {}", entry.name, entry.version.empty() ? "" : " version ",
                    entry.version, repository::ModelStateName(entry.state), entry.reason);
    }
  }

  impl->service = std::make_unique<frontend::InferenceService>(
      frontend::InferenceService::Options{.models = impl->models.get()});

  if (options.http_port >= 0) {
    frontend::HttpServer::Options http;
    http.address = options.http_address;
    http.port = static_cast<uint16_t>(options.http_port);
    http.threads = options.http_threads;
    http.max_body_bytes = options.http_max_body_bytes;
    http.service = impl->service.get();
    ASSIGN_OR_RETURN(impl->http, frontend::HttpServer::Start(std::move(http)));
    // Tests and scripts read the bound port from this line.
    spdlog::info("HTTP listening on {}:{}", options.http_address, impl->http->port());
  }
  if (options.grpc_port >= 0) {
    frontend::GrpcServer::Options grpc_options;
    grpc_options.address = options.grpc_address;
    grpc_options.port = static_cast<uint16_t>(options.grpc_port);
    grpc_options.max_message_bytes = options.grpc_max_message_bytes;
    grpc_options.service = impl->service.get();
    ASSIGN_OR_RETURN(impl->grpc, frontend::GrpcServer::Start(std::move(grpc_options)));
    // Tests and scripts read the bound port from this line.
    spdlog::info("gRPC listening on {}:{}", options.grpc_address, impl->grpc->port());
  }
  impl->service->SetReady(true);
  if (impl->grpc) impl->grpc->SetServing(true);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Stop() {
  if (!impl_) return;
  if (impl_->service) impl_->service->SetReady(false);
  if (impl_->http) impl_->http->Stop();
  if (impl_->grpc) impl_->grpc->Stop();
  if (impl_->models) impl_->models->Shutdown();
}

uint16_t Server::http_port() const { return impl_->http ? impl_->http->port() : 0; }
uint16_t Server::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : 0; }

}  // namespace ortserve::server
