// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/infer_calls.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/grpc/grpc_codec.h"
#include "frontend/grpc/generate_stream.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/grpc/infer_messages.h"
#include "observability/request_record.h"
#include "repository/model_version.h"

namespace ortserve::frontend {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

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
  // Outputs asked for in shared memory are written there first.
  if (!service.shared_memory().empty()) RETURN_IF_ERROR(service.shared_memory().WriteOutputs(choices, &*result));
  ModelHandle labels_owner;
  const EncodeOptions options = EncodeOptionsFor(service, *result, &labels_owner);
  return EncodeModelInferResponse(*result, choices, options, out);
}

// Decodes `message`, bounds its deadline by the RPC's, and attaches
// `cancellation`. Errors: the codec's, and DEADLINE_EXCEEDED when the RPC's
// deadline has already passed.
absl::StatusOr<std::unique_ptr<InferRequest>> PrepareRequest(const InferenceService& service,
                                                             std::shared_ptr<const ModelInferRequest> message,
                                                             absl::Time rpc_deadline,
                                                             std::shared_ptr<CancellationFlag> cancellation) {
  const absl::Time now = absl::Now();
  auto decoded = DecodeModelInferRequest(std::move(message), now);
  if (!decoded.ok()) return decoded.status();
  // Inputs in shared memory become views of their regions.
  if (!service.shared_memory().empty()) RETURN_IF_ERROR(service.shared_memory().ResolveInputs(&*decoded));
  auto request = std::make_unique<InferRequest>(*std::move(decoded));
  request->deadline = std::min(request->deadline, rpc_deadline);
  if (request->deadline <= now) {
    return absl::DeadlineExceededError(
        StrCat("the deadline of the request to model '", request->model_name, "' passed before it was queued"));
  }
  request->cancellation = std::move(cancellation);
  return request;
}

// A permit for a request message (none without admission): the model it
// names, and the message's size (raw tensors stay views into it; typed
// contents are copied once when decoded).
// `client` is the rate limits' client key (see ClientKey).
absl::StatusOr<admission::Permit> Admit(admission::Admission* admission, const ModelInferRequest& request,
                                        std::string_view client) {
  if (admission == nullptr) return admission::Permit();
  const uint64_t bytes = request.ByteSizeLong();
  return admission->TryAdmit({.model = request.model_name(), .client = client, .bytes = bytes + bytes / 2});
}

// The rate limits' client key of a call: the credential's id when
// authentication names one (all of a key's connections and addresses share
// its bucket, as over HTTP), else its peer's address without the port
// ("ipv4:127.0.0.1:5000" -> "ipv4:127.0.0.1"), so that a client's
// connections share one bucket.
std::string ClientKey(const grpc::CallbackServerContext* context, const admission::Identity* identity) {
  if (identity != nullptr && identity->kind != admission::Identity::Kind::kAnonymous) {
    return "id:" + identity->id;
  }
  std::string peer = context->peer();
  const size_t colon = peer.rfind(':');
  const size_t scheme = peer.find(':');
  if (colon != std::string::npos && colon != scheme) peer.resize(colon);
  return peer;
}

// Output choices the encoder needs after the request went to the scheduler.
InferRequest ChoicesOf(const InferRequest& request) {
  InferRequest choices;
  choices.outputs = request.outputs;
  choices.binary_data_output = request.binary_data_output;
  return choices;
}

// One ModelInfer call. Owned jointly by gRPC (until OnDone) and by the
// inference callback (until it returns); whichever finishes last deletes it.
// Runs on gRPC's callback threads and, for the callback, a scheduler thread.
class InferReactor : public grpc::ServerUnaryReactor {
 public:
  InferReactor(InferenceService* service, admission::Admission* admission, grpc::CallbackServerContext* context,
               std::shared_ptr<const ModelInferRequest> request, ModelInferResponse* response,
               const admission::Identity* identity)
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
    // The permit holds the message's memory until the call is over. The
    // client key (a string made from the peer) only when there are limits.
    const std::string client = admission != nullptr ? ClientKey(context, identity) : std::string();
    if (auto permit = Admit(admission, *request, client); permit.ok()) {
      permit_ = *std::move(permit);
    } else {
      refs_.store(1);
      Answer(permit.status());
      return;
    }
    auto prepared = PrepareRequest(*service_, std::move(request), DeadlineOf(context), cancellation_);
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
  admission::Permit permit_;
  std::atomic<int> refs_{2};  // gRPC's reference and the inference callback's.
};

// One ModelStreamInfer call. Reads requests while fewer than
// max_in_flight are unanswered, queues each to the service (or, for a model
// with a generation block, to its continuous batcher: generate_stream.h),
// and writes the answers one write at a time: inference answers in request
// order, a generation's responses as they come (each response carries its
// request's id, as Triton's decoupled models do). Lives until gRPC's OnDone
// and every inference and generation in flight have released it.
// Thread-safe (mu_).
class StreamReactor : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamReactor(InferenceService* service, admission::Admission* admission, grpc::CallbackServerContext* context,
                int max_in_flight, StreamAccess access)
      : service_(service),
        admission_(admission),
        client_key_(ClientKey(context, access.identity.get())),
        context_(context),
        headers_(context),
        max_in_flight_(max_in_flight),
        access_(std::move(access)) {
    if (!access_.refused.ok()) {
      // Refused at its start: no message is read.
      Finish(ToGrpcStatus(access_.refused));
      return;
    }
    Act(Next());
  }

  ~StreamReactor() override {
    // Messages never written (the client went away) are recorded as cancelled.
    std::deque<std::unique_ptr<Slot>> unwritten;
    {
      absl::MutexLock lock(&mu_);
      unwritten.swap(pending_);
    }
    for (auto& slot : unwritten) FinishRecord(*slot, absl::StatusCode::kCancelled);
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
        if (cancelled_ || failed_) owned->cancellation->Cancel();
        slot = owned.get();
        pending_.push_back(std::move(owned));
        ++refs_;  // The inference callback's.
      }
    }
    if (slot != nullptr) Submit(slot, std::move(message));
    Act(Next());
  }

  void OnWriteDone(bool ok) override {
    std::unique_ptr<Slot> finished;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      Slot* slot = written_;
      written_ = nullptr;
      if (ok) slot->bytes += slot->out.front().ByteSizeLong();
      slot->out.pop_front();
      if (!ok && !failed_) {
        // The client is gone: generations in flight stop and free their blocks.
        failed_ = true;
        for (auto& s : pending_) s->cancellation->Cancel();
      }
      if (slot->done && slot->out.empty()) {
        for (auto it = pending_.begin(); it != pending_.end(); ++it) {
          if (it->get() == slot) {
            finished = std::move(*it);
            pending_.erase(it);
            break;
          }
        }
      }
      if (finished != nullptr && !ok) finished->code = absl::StatusCode::kCancelled;
    }
    if (finished != nullptr) FinishRecord(*finished, finished->code);
    finished.reset();
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
    admission::Permit permit;  // Until the last answer is written.
    std::shared_ptr<CancellationFlag> cancellation;
    ModelStreamInferResponse response;  // An inference's answer, encoded here first.
    // Responses ready to write, in order; `done` once the last one is here.
    std::deque<ModelStreamInferResponse> out;
    bool done = false;
    bool generation = false;  // Its responses are written as they come.
    absl::StatusCode code = absl::StatusCode::kOk;  // The message's answer.
    std::string error;
    size_t bytes = 0;  // Written so far.
    std::optional<observability::RequestRecord> record;
  };

  static void FinishRecord(Slot& slot, absl::StatusCode code) {
    if (!slot.record) return;
    slot.record->Finish({"POST", kModelStreamInferMethod, static_cast<unsigned>(code)},
                        observability::OutcomeFor(code), code == absl::StatusCode::kCancelled ? 0 : slot.bytes,
                        slot.error);
    slot.record.reset();
  }
  // What to start after releasing mu_ (gRPC operations are never started
  // with the lock held).
  struct Action {
    ModelInferRequest* read = nullptr;
    const ModelStreamInferResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };

  // The error answer of request `id` to `model` (triton_final_response too
  // for a generation, whose client waits for it).
  static void Fail(Slot* slot, const absl::Status& status, const std::string& id, const std::string& model) {
    slot->code = status.code();
    slot->response.Clear();
    slot->response.set_error_message(std::string(ToStd(status.message())));
    slot->response.mutable_infer_response()->set_id(id);
    slot->response.mutable_infer_response()->set_model_name(model);
    if (slot->generation) SetFinalResponse(true, slot->response.mutable_infer_response());
  }

  void Submit(Slot* slot, std::shared_ptr<ModelInferRequest> message) {
    const std::string id = message->id();
    const std::string model = message->model_name();
    auto fail = [&](const absl::Status& status) { Fail(slot, status, id, model); };
    if (access_.access != nullptr && access_.identity != nullptr) {
      if (absl::Status allowed = access_.access->Authorize(*access_.identity, admission::RouteClass::kInfer, model,
                                                           access_.peer, "grpc ModelStreamInfer");
          !allowed.ok()) {
        fail(allowed);
        return Complete(slot);
      }
    }
    if (auto permit = Admit(admission_, *message, client_key_); permit.ok()) {
      slot->permit = *std::move(permit);
    } else {
      fail(permit.status());
      return Complete(slot);
    }
    // A model with a generation block answers with its tokens (generate_stream.h).
    if (auto handle = service_->GetModel(model, message->model_version());
        handle.ok() && (*handle)->generation != nullptr) {
      {
        absl::MutexLock lock(&mu_);
        slot->generation = true;
      }
      return SubmitGeneration(slot, *handle, std::move(message));
    }
    auto prepared = PrepareRequest(*service_, std::move(message), DeadlineOf(context_), slot->cancellation);
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
      if (!status.ok()) Fail(slot, status, id, model);
      Complete(slot);
    }, &*slot->record);
  }

  void SubmitGeneration(Slot* slot, const ModelHandle& handle, std::shared_ptr<ModelInferRequest> message) {
    const std::string id = message->id();
    const std::string model = message->model_name();
    // Counted under its model version, as an inference is.
    if (handle->metrics != nullptr) slot->record->SetModel(handle->metrics);
    slot->record->SetRequestId(id);
    auto decoded = DecodeModelInferRequest(message, absl::Now());
    absl::Status started = decoded.status();
    if (started.ok()) {
      started = StartGrpcGeneration(
          handle, *decoded, slot->cancellation,
          [this, slot](ModelStreamInferResponse response, bool last, absl::StatusCode code) {
            Emit(slot, std::move(response), last, code);
          });
    }
    if (!started.ok()) {
      Fail(slot, started, id, model);
      Complete(slot);
    }
  }

  // A generation's response (on the model's decode loop); the last one drops
  // the generation's reference.
  void Emit(Slot* slot, ModelStreamInferResponse response, bool last, absl::StatusCode code) {
    {
      absl::MutexLock lock(&mu_);
      if (last) {
        slot->done = true;
        slot->code = code;
        if (!response.error_message().empty()) slot->error = response.error_message();
      }
      slot->out.push_back(std::move(response));
    }
    Act(Next());
    if (last) Unref();
  }

  // Marks `slot` answered with its one response, writes what can be
  // written, drops the callback's reference.
  void Complete(Slot* slot) {
    {
      absl::MutexLock lock(&mu_);
      slot->error = slot->response.error_message();
      slot->out.push_back(std::move(slot->response));
      slot->done = true;
    }
    Act(Next());
    Unref();
  }

  Action Next() {
    absl::MutexLock lock(&mu_);
    Action action;
    if (finished_) return action;
    if (!writing_ && !failed_) {
      // Inference answers keep request order among themselves; a
      // generation's responses go as soon as they are here.
      bool inference_waits = false;
      for (auto& slot : pending_) {
        if (!slot->out.empty() && (slot->generation || !inference_waits)) {
          writing_ = true;
          written_ = slot.get();
          action.write = &slot->out.front();
          break;
        }
        if (!slot->generation) inference_waits = true;
      }
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
  admission::Admission* const admission_;  // May be null.
  const std::string client_key_;            // The rate limits' (ClientKey).
  grpc::CallbackServerContext* const context_;
  const MetadataHeaders headers_;  // The stream's metadata, shared by its messages.
  const int max_in_flight_;
  const StreamAccess access_;
  absl::Mutex mu_;
  // Unanswered or not wholly written, in request order.
  std::deque<std::unique_ptr<Slot>> pending_ ABSL_GUARDED_BY(mu_);
  Slot* written_ ABSL_GUARDED_BY(mu_) = nullptr;  // Whose out.front() is being written.
  std::shared_ptr<ModelInferRequest> next_message_ ABSL_GUARDED_BY(mu_);  // The read in flight.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // A write failed: the client is gone.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's, plus one per inference or generation in flight.
};

// The service. Thread-safe: stateless apart from the InferenceService.

}  // namespace

std::unique_ptr<grpc::MessageAllocator<ModelInferRequest, ModelInferResponse>> MakeInferAllocator() {
  return std::make_unique<InferMessageAllocator>();
}

grpc::ServerUnaryReactor* StartModelInfer(InferenceService* service, admission::Admission* admission,
                                          grpc::CallbackServerContext* context, ModelInferResponse* response,
                                          const admission::Identity* identity) {
  auto* messages = static_cast<InferMessages*>(context->GetRpcAllocatorState());
  return new InferReactor(service, admission, context, messages->shared_request(), response, identity);
}

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* StartModelStreamInfer(
    InferenceService* service, admission::Admission* admission, grpc::CallbackServerContext* context,
    int max_in_flight, StreamAccess access) {
  return new StreamReactor(service, admission, context, max_in_flight, std::move(access));
}

}  // namespace ortserve::frontend
