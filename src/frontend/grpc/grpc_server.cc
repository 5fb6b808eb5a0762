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
#include "core/strings.h"
#include "frontend/grpc/grpc_codec.h"
#include "observability/request_record.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::frontend {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

constexpr std::string_view kServiceName = "inference.GRPCInferenceService";
constexpr std::string_view kModelInferMethod = "/inference.GRPCInferenceService/ModelInfer";
constexpr std::string_view kModelStreamInferMethod = "/inference.GRPCInferenceService/ModelStreamInfer";

// The call's client metadata as RequestHeaders (gRPC delivers keys in lower
// case). A view: valid while the call's ServerContext lives.
class MetadataHeaders final : public RequestHeaders {
 public:
  explicit MetadataHeaders(const grpc::CallbackServerContext* context) : context_(context) {}
  std::optional<std::string_view> Get(std::string_view lowercase_name) const override {
    const auto& metadata = context_->client_metadata();
    auto it = metadata.find(grpc::string_ref(lowercase_name.data(), lowercase_name.size()));
    if (it == metadata.end()) return std::nullopt;
    return std::string_view(it->second.data(), it->second.size());
  }

 private:
  const grpc::CallbackServerContext* context_;
};

// The W3C `traceparent` the client sent in the call's metadata, or "".
std::string_view TraceparentOf(const RequestHeaders& headers) {
  return headers.Get("traceparent").value_or(std::string_view());
}

// The RPC's deadline as absl time; InfiniteFuture when it has none.
absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// Labels for the classification extension, from the answering version.
EncodeOptions EncodeOptionsFor(const InferenceService& service, const InferResponse& response,
                               ModelHandle* keep) {
  EncodeOptions options;
  auto model = service.GetModel(response.model_name, response.model_version);
  if (!model.ok() || (*model)->labels.empty()) return options;
  *keep = *model;
  options.labels = [labels = &(*keep)->labels](std::string_view output) {
    auto it = labels->find(std::string(output));
    return it == labels->end() ? std::span<const std::string>() : std::span<const std::string>(it->second);
  };
  return options;
}

// Encodes `result` for the request whose output choices are `choices`.
absl::Status EncodeResult(const InferenceService& service, absl::StatusOr<InferResponse> result,
                          const InferRequest& choices, ModelInferResponse* out) {
  if (!result.ok()) return result.status();
  ModelHandle labels_owner;
  const EncodeOptions options = EncodeOptionsFor(service, *result, &labels_owner);
  return EncodeModelInferResponse(*result, choices, options, out);
}

// Decodes `message`, bounds its deadline by the RPC's, and attaches
// `cancellation`. Errors: the codec's, and DEADLINE_EXCEEDED when the RPC's
// deadline has already passed.
absl::StatusOr<std::unique_ptr<InferRequest>> PrepareRequest(std::shared_ptr<const ModelInferRequest> message,
                                                             absl::Time rpc_deadline,
                                                             std::shared_ptr<CancellationFlag> cancellation) {
  const absl::Time now = absl::Now();
  auto decoded = DecodeModelInferRequest(std::move(message), now);
  if (!decoded.ok()) return decoded.status();
  auto request = std::make_unique<InferRequest>(*std::move(decoded));
  request->deadline = std::min(request->deadline, rpc_deadline);
  if (request->deadline <= now) {
    return absl::DeadlineExceededError(
        StrCat("the deadline of the request to model '", request->model_name, "' passed before it was queued"));
  }
  request->cancellation = std::move(cancellation);
  return request;
}

// Output choices the encoder needs after the request went to the scheduler.
InferRequest ChoicesOf(const InferRequest& request) {
  InferRequest choices;
  choices.outputs = request.outputs;
  choices.binary_data_output = request.binary_data_output;
  return choices;
}

// ModelInfer's messages, allocated by gRPC through InferAllocator so that the
// decoded InferRequest can share ownership of the request message: raw
// tensors stay valid however long the scheduler keeps the request, without a
// copy. gRPC calls Release when the RPC is over; the InferRequest's payload
// may hold the messages longer.
class InferMessages : public grpc::MessageHolder<ModelInferRequest, ModelInferResponse> {
 public:
  InferMessages() : messages_(std::make_shared<Pair>()) {
    set_request(&messages_->request);
    set_response(&messages_->response);
  }
  void Release() override { delete this; }
  std::shared_ptr<const ModelInferRequest> shared_request() const {
    return {messages_, &messages_->request};
  }

 private:
  struct Pair {
    ModelInferRequest request;
    ModelInferResponse response;
  };
  std::shared_ptr<Pair> messages_;
};

class InferAllocator : public grpc::MessageAllocator<ModelInferRequest, ModelInferResponse> {
 public:
  grpc::MessageHolder<ModelInferRequest, ModelInferResponse>* AllocateMessages() override {
    return new InferMessages();
  }
};

// One ModelInfer call. Owned jointly by gRPC (until OnDone) and by the
// inference callback (until it returns); whichever finishes last deletes it.
// Runs on gRPC's callback threads and, for the callback, a scheduler thread.
class InferReactor : public grpc::ServerUnaryReactor {
 public:
  InferReactor(InferenceService* service, grpc::CallbackServerContext* context,
               std::shared_ptr<const ModelInferRequest> request, ModelInferResponse* response)
      : service_(service),
        response_(response),
        cancellation_(std::make_shared<CancellationFlag>()),
        headers_(context),
        record_(&service->telemetry(), observability::Protocol::kGrpc, TraceparentOf(headers_)) {
    record_.MarkInference();
    // W3C trace context: the caller learns this request's span, as over HTTP.
    if (std::string traceparent = record_.ResponseTraceparent(); !traceparent.empty()) {
      context->AddInitialMetadata("traceparent", traceparent);
    }
    auto prepared = PrepareRequest(std::move(request), DeadlineOf(context), cancellation_);
    if (!prepared.ok()) {
      refs_.store(1);
      Answer(prepared.status());
      return;
    }
    (*prepared)->headers = &headers_;
    choices_ = ChoicesOf(**prepared);
    service_->Infer(*std::move(prepared), [this](absl::StatusOr<InferResponse> result) {
      Answer(EncodeResult(*service_, std::move(result), choices_, response_));
      Unref();
    }, &record_);
  }

  void OnCancel() override { cancellation_->Cancel(); }
  // The answer is sent (or the call is over): metrics, span and access log.
  void OnDone() override {
    record_.Finish({"POST", kModelInferMethod, static_cast<unsigned>(code_)}, observability::OutcomeFor(code_),
                   response_bytes_, error_);
    Unref();
  }

 private:
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Finishes the RPC with `status`, keeping what OnDone records. gRPC orders
  // OnDone after Finish, so these fields are written before they are read.
  void Answer(const absl::Status& status) {
    code_ = status.code();
    if (status.ok()) {
      response_bytes_ = response_->ByteSizeLong();
    } else {
      error_ = std::string(ToStd(status.message()));
    }
    Finish(ToGrpcStatus(status));
  }

  InferenceService* const service_;
  ModelInferResponse* const response_;
  std::shared_ptr<CancellationFlag> cancellation_;
  MetadataHeaders headers_;
  observability::RequestRecord record_;
  absl::StatusCode code_ = absl::StatusCode::kUnknown;
  size_t response_bytes_ = 0;
  std::string error_;
  InferRequest choices_;
  std::atomic<int> refs_{2};  // gRPC's reference and the inference callback's.
};

// One ModelStreamInfer call. Reads requests while fewer than
// max_in_flight are unanswered, queues each to the service, and writes the
// answers in request order, one write at a time. Lives until gRPC's OnDone
// and every inference callback have released it. Thread-safe (mu_).
class StreamReactor : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamReactor(InferenceService* service, grpc::CallbackServerContext* context, int max_in_flight)
      : service_(service), context_(context), headers_(context), max_in_flight_(max_in_flight) {
    Act(Next());
  }

  ~StreamReactor() override {
    // Messages never written (the client went away) are recorded as cancelled.
    std::deque<std::unique_ptr<Slot>> unwritten;
    {
      absl::MutexLock lock(&mu_);
      unwritten.swap(pending_);
    }
    for (auto& slot : unwritten) FinishRecord(*slot, absl::StatusCode::kCancelled, 0);
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<ModelInferRequest> message;
    Slot* slot = nullptr;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok) {
        reads_done_ = true;
      } else {
        message = std::move(next_message_);
        auto owned = std::make_unique<Slot>();
        // Each message is one inference request: its own record and span, a
        // child of the stream's `traceparent` when the client sent one.
        owned->record.emplace(&service_->telemetry(), observability::Protocol::kGrpc, TraceparentOf(headers_));
        owned->record->MarkInference();
        owned->cancellation = std::make_shared<CancellationFlag>();
        if (cancelled_) owned->cancellation->Cancel();
        slot = owned.get();
        pending_.push_back(std::move(owned));
        ++refs_;  // The inference callback's.
      }
    }
    if (slot != nullptr) Submit(slot, std::move(message));
    Act(Next());
  }

  void OnWriteDone(bool ok) override {
    std::unique_ptr<Slot> written;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      written = std::move(pending_.front());
      pending_.pop_front();
      if (!ok) failed_ = true;
    }
    FinishRecord(*written, ok ? written->code : absl::StatusCode::kCancelled,
                 ok ? written->response.ByteSizeLong() : 0);
    written.reset();
    Act(Next());
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    for (auto& slot : pending_) slot->cancellation->Cancel();
  }

  void OnDone() override { Unref(); }

 private:
  struct Slot {
    std::shared_ptr<CancellationFlag> cancellation;
    ModelStreamInferResponse response;
    bool ready = false;
    absl::StatusCode code = absl::StatusCode::kOk;  // The message's answer.
    std::optional<observability::RequestRecord> record;
  };

  static void FinishRecord(Slot& slot, absl::StatusCode code, size_t bytes) {
    if (!slot.record) return;
    slot.record->Finish({"POST", kModelStreamInferMethod, static_cast<unsigned>(code)},
                        observability::OutcomeFor(code), bytes, slot.response.error_message());
    slot.record.reset();
  }
  // What to start after releasing mu_ (gRPC operations are never started
  // with the lock held).
  struct Action {
    ModelInferRequest* read = nullptr;
    const ModelStreamInferResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };

  void Submit(Slot* slot, std::shared_ptr<ModelInferRequest> message) {
    const std::string id = message->id();
    const std::string model = message->model_name();
    auto fail = [&](const absl::Status& status) {
      slot->code = status.code();
      slot->response.set_error_message(std::string(ToStd(status.message())));
      slot->response.mutable_infer_response()->set_id(id);
      slot->response.mutable_infer_response()->set_model_name(model);
    };
    auto prepared = PrepareRequest(std::move(message), DeadlineOf(context_), slot->cancellation);
    if (!prepared.ok()) {
      fail(prepared.status());
      return Complete(slot);
    }
    (*prepared)->headers = &headers_;
    auto choices = std::make_shared<InferRequest>(ChoicesOf(**prepared));
    service_->Infer(*std::move(prepared), [this, slot, choices, id, model](absl::StatusOr<InferResponse> result) {
      const absl::Status status =
          EncodeResult(*service_, std::move(result), *choices, slot->response.mutable_infer_response());
      slot->code = status.code();
      if (!status.ok()) {
        slot->response.Clear();
        slot->response.set_error_message(std::string(ToStd(status.message())));
        slot->response.mutable_infer_response()->set_id(id);
        slot->response.mutable_infer_response()->set_model_name(model);
      }
      Complete(slot);
    }, &*slot->record);
  }

  // Marks `slot` answered, writes what can be written, drops the callback's
  // reference.
  void Complete(Slot* slot) {
    {
      absl::MutexLock lock(&mu_);
      slot->ready = true;
    }
    Act(Next());
    Unref();
  }

  Action Next() {
    absl::MutexLock lock(&mu_);
    Action action;
    if (finished_) return action;
    if (!writing_ && !failed_ && !pending_.empty() && pending_.front()->ready) {
      writing_ = true;
      action.write = &pending_.front()->response;
    }
    if (!reading_ && !reads_done_ && !failed_ && !cancelled_ &&
        static_cast<int>(pending_.size()) < max_in_flight_) {
      reading_ = true;
      next_message_ = std::make_shared<ModelInferRequest>();
      action.read = next_message_.get();
    }
    if (!writing_ && !reading_ && ((reads_done_ && pending_.empty()) || failed_ || cancelled_)) {
      finished_ = true;
      action.finish = cancelled_ || failed_ ? grpc::Status::CANCELLED : grpc::Status::OK;
    }
    return action;
  }

  void Act(const Action& action) {
    if (action.write != nullptr) StartWrite(action.write);
    if (action.read != nullptr) StartRead(action.read);
    if (action.finish) Finish(*action.finish);
  }

  void Unref() {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  InferenceService* const service_;
  grpc::CallbackServerContext* const context_;
  const MetadataHeaders headers_;  // The stream's metadata, shared by its messages.
  const int max_in_flight_;
  absl::Mutex mu_;
  std::deque<std::unique_ptr<Slot>> pending_ ABSL_GUARDED_BY(mu_);  // Unanswered or unwritten, in order.
  std::shared_ptr<ModelInferRequest> next_message_ ABSL_GUARDED_BY(mu_);  // The read in flight.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // A write failed: the client is gone.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's, plus one per inference in flight.
};

// The service. Thread-safe: stateless apart from the InferenceService.
class Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  Service(InferenceService* service, int max_stream_in_flight)
      : service_(service), max_stream_in_flight_(max_stream_in_flight) {
    SetMessageAllocatorFor_ModelInfer(&allocator_);
  }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(service_->Live());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(service_->Ready());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(service_->GetModel(request->name(), request->version()).ok());
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    EncodeServerMetadata(response);
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    auto metadata = service_->GetModelMetadata(request->name(), request->version());
    if (metadata.ok()) EncodeModelMetadata(*metadata, response);
    return Done(context, metadata.status());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context, const ModelInferRequest*,
                                       ModelInferResponse* response) override {
    auto* messages = static_cast<InferMessages*>(context->GetRpcAllocatorState());
    return new InferReactor(service_, context, messages->shared_request(), response);
  }

  grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* context) override {
    return new StreamReactor(service_, context, max_stream_in_flight_);
  }

  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* context,
                                        const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) override {
    auto model = service_->GetModel(request->name(), request->version());
    if (model.ok()) *response->mutable_config() = (*model)->config;
    return Done(context, model.status());
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* context,
                                            const inference::ModelStatisticsRequest* request,
                                            inference::ModelStatisticsResponse* response) override {
    // As REST: no name = every ready version of every model; a name without
    // a version = every ready version of that model.
    std::vector<ModelHandle> models;
    if (request->name().empty() || request->version().empty()) {
      for (const auto& entry : service_->Index()) {
        if (entry.state != repository::ModelState::kReady) continue;
        if (!request->name().empty() && entry.name != request->name()) continue;
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
    EncodeRepositoryIndex(service_->Index(), request->ready(), response);
    return Done(context, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* context,
                                                const inference::RepositoryModelLoadRequest* request,
                                                inference::RepositoryModelLoadResponse*) override {
    std::string config;  // Triton's clients send a config override as parameters["config"].
    if (auto it = request->parameters().find("config"); it != request->parameters().end()) {
      config = it->second.string_param();
    }
    auto* reactor = context->DefaultReactor();
    // `done` runs once, on a loader thread or inline when refused up front.
    service_->LoadModel(request->model_name(), std::move(config),
                        [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* context,
                                                  const inference::RepositoryModelUnloadRequest* request,
                                                  inference::RepositoryModelUnloadResponse*) override {
    auto* reactor = context->DefaultReactor();
    service_->UnloadModel(request->model_name(),
                          [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
    return reactor;
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

  InferenceService* const service_;
  const int max_stream_in_flight_;
  InferAllocator allocator_;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(ToStd(status.message())));
}

struct GrpcServer::Impl {
  Options options;
  std::unique_ptr<Service> service;
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
  impl->service = std::make_unique<Service>(o.service, o.max_stream_in_flight);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // An IPv6 literal needs brackets before the port.
  const std::string host = o.address.find(':') != std::string::npos && o.address.front() != '['
                               ? StrCat("[", o.address, "]")
                               : o.address;
  builder.AddListeningPort(StrCat(host, ":", o.port), grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
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
