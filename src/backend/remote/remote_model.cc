// SPDX-License-Identifier: Apache-2.0
#include "backend/remote/remote_model.h"

#include <algorithm>
#include <optional>
#include <span>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "backend/remote/balancer.h"
#include "backend/remote/remote_config.h"
#include "backend/remote/transport.h"
#include "core/status.h"
#include "core/strings.h"
#include "observability/tracing.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ortserve::backend::remote {
namespace {

constexpr uint32_t kDefaultInflight = 16;
constexpr uint32_t kMaxInflight = 256;  // Runner threads per version (each mostly waiting on a socket).
constexpr uint64_t kMaxTimeoutMs = 3'600'000;

// How a failed call counts.
enum class Outcome { kOk, kTimeout, kUnavailable, kError, kClientError };

Outcome Classify(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return Outcome::kOk;
    case absl::StatusCode::kDeadlineExceeded: return Outcome::kTimeout;
    case absl::StatusCode::kUnavailable: return Outcome::kUnavailable;
    // The request itself was refused: the endpoint is working.
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kCancelled:
      return Outcome::kClientError;
    // Internal, Unknown, DataLoss, Aborted, Unimplemented, and NotFound /
    // Unauthenticated / PermissionDenied (the remote lacks the model or
    // refuses the gateway: its setup, not this request).
    default: return Outcome::kError;
  }
}

// The status a client of this server gets for a remote failure: the
// remote's code where it means the same here, with its message.
absl::Status ClientStatus(const absl::Status& status, std::string_view remote_model, std::string_view endpoint) {
  absl::StatusCode code = status.code();
  switch (code) {
    case absl::StatusCode::kNotFound:  // The model is served here; the remote lost it.
      code = absl::StatusCode::kUnavailable;
      break;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:  // The gateway's own credentials, not the client's.
    case absl::StatusCode::kUnimplemented:
      code = absl::StatusCode::kInternal;
      break;
    default: break;
  }
  return absl::Status(code, StrCat("remote model '", remote_model, "' at ", endpoint, ": ", status.message()));
}

struct Endpoint {
  std::string label;  // host:port as configured.
  std::unique_ptr<Transport> transport;
  prometheus::Counter* ok = nullptr;
  prometheus::Counter* timeout = nullptr;
  prometheus::Counter* unavailable = nullptr;
  prometheus::Counter* error = nullptr;
  prometheus::Counter* client_error = nullptr;
  prometheus::Counter* ejections = nullptr;
  prometheus::Gauge* up = nullptr;
};

void Inc(prometheus::Counter* counter) {
  if (counter != nullptr) counter->Increment();
}

// The endpoints of one remote model version and what they share: the
// balancer, the retry budget and the health checker. Thread-safe.
class RemoteModel {
 public:
  struct Settings {
    std::string model, version;  // Local, for span attributes.
    std::string remote_name, remote_version;
    absl::Duration timeout;
    uint32_t max_retries = 0;
    bool retries_allowed = true;
    double retry_budget = 0.2;
    absl::Duration health_interval;  // Zero: no health checks.
    BalancerOptions balancer;
  };

  RemoteModel(Settings settings, std::vector<Endpoint> endpoints, ModelSignature signature, const Clock* clock,
              prometheus::Counter* retries)
      : settings_(std::move(settings)),
        endpoints_(std::move(endpoints)),
        signature_(std::move(signature)),
        balancer_(endpoints_.size(), settings_.balancer, clock),
        budget_(settings_.retry_budget),
        retries_(retries) {}

  ~RemoteModel() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (health_.joinable()) health_.join();
  }

  const ModelSignature& signature() const { return signature_; }
  Balancer& balancer() { return balancer_; }
  std::vector<Endpoint>& endpoints() { return endpoints_; }

  void StartHealthChecks() {
    if (settings_.health_interval <= absl::ZeroDuration()) return;
    health_ = std::thread([this] { HealthLoop(); });
  }

  // One call, retries included. With a sampled `parent`, the call is a
  // client span `remote <endpoint>` under it, and the request carries that
  // span's traceparent so the remote's spans join the trace.
  absl::Status Call(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                    std::vector<Tensor>* outputs, const RequestTrace* parent) {
    if (parent == nullptr || !parent->sampled()) return Attempts(inputs, output_names, outputs, {}, nullptr);
    observability::Span span = observability::ChildSpan(*parent, "", "remote", settings_.model, settings_.version,
                                                        absl::Now());
    span.kind = observability::Span::Kind::kClient;
    RequestTrace trace;
    trace.trace_id = span.context.trace_id;
    trace.span_id = span.context.span_id;
    trace.tracer = parent->tracer;
    CallTrace record;
    const absl::Status status = Attempts(inputs, output_names, outputs, trace, &record);
    span.end = absl::Now();
    const std::string& endpoint = record.endpoint >= 0 ? endpoints_[record.endpoint].label : "none";
    span.name = StrCat("remote ", endpoint);
    span.attributes.emplace_back("ai.remote.endpoint", endpoint);
    span.attributes.emplace_back("ai.remote.model", settings_.remote_name);
    if (!settings_.remote_version.empty()) span.attributes.emplace_back("ai.remote.version", settings_.remote_version);
    span.attributes.emplace_back("ai.remote.status", std::string(absl::StatusCodeToString(status.code())));
    span.attributes.emplace_back("ai.remote.retries", static_cast<int64_t>(record.retries));
    span.error = !status.ok();
    if (!status.ok()) span.status_message = std::string(status.message());
    parent->tracer->Export(std::move(span));
    return status;
  }

 private:
  // What a traced call records: the endpoint that gave the last answer (-1:
  // none was tried) and how many retries it took.
  struct CallTrace {
    int endpoint = -1;
    uint32_t retries = 0;
  };

  absl::Status Attempts(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                        std::vector<Tensor>* outputs, const RequestTrace& trace, CallTrace* record) {
    InferRequest request;
    request.trace = trace;
    request.model_name = settings_.remote_name;
    request.model_version = settings_.remote_version;
    request.inputs.assign(inputs.begin(), inputs.end());
    request.outputs.reserve(output_names.size());
    for (const std::string& name : output_names) request.outputs.push_back(RequestedOutput{name, true, 0, {}});
    // One deadline for the call, retries included.
    request.deadline = absl::Now() + settings_.timeout;
    budget_.OnCall();
    uint64_t tried = 0;
    absl::Status last;
    for (uint32_t attempt = 0;; ++attempt) {
      const int e = balancer_.Pick(tried);
      if (e < 0) {
        if (attempt > 0) return last;
        return absl::UnavailableError(StrCat("remote model '", settings_.remote_name, "': every endpoint is ejected ",
                                             "after failures or failing its health check"));
      }
      tried |= uint64_t{1} << e;
      if (record != nullptr) {
        record->endpoint = e;
        record->retries = attempt;
      }
      Endpoint& endpoint = endpoints_[e];
      absl::StatusOr<InferResponse> response = endpoint.transport->Infer(request);
      const Outcome outcome = Classify(response.status());
      const bool failure = outcome != Outcome::kOk && outcome != Outcome::kClientError;
      if (balancer_.Finish(e, failure)) Inc(endpoint.ejections);
      switch (outcome) {
        case Outcome::kOk: Inc(endpoint.ok); break;
        case Outcome::kTimeout: Inc(endpoint.timeout); break;
        case Outcome::kUnavailable: Inc(endpoint.unavailable); break;
        case Outcome::kError: Inc(endpoint.error); break;
        case Outcome::kClientError: Inc(endpoint.client_error); break;
      }
      if (response.ok()) return TakeOutputs(std::move(*response), output_names, outputs, endpoint.label);
      last = ClientStatus(response.status(), settings_.remote_name, endpoint.label);
      // Only a call the remote surely did not answer is tried again: refused
      // or lost connections and 503s; never a timeout (the time is spent) or
      // a model error (it may have run).
      const bool retryable = outcome == Outcome::kUnavailable && settings_.retries_allowed;
      if (!retryable || attempt >= settings_.max_retries || absl::Now() >= request.deadline) return last;
      if (!budget_.TryRetry()) return last;
      Inc(retries_);
    }
  }

  absl::Status TakeOutputs(InferResponse response, std::span<const std::string> output_names,
                           std::vector<Tensor>* outputs, std::string_view endpoint) {
    for (const std::string& name : output_names) {
      Tensor* found = nullptr;
      for (Tensor& tensor : response.outputs) {
        if (tensor.name == name) found = &tensor;
      }
      const TensorSpec* spec = signature_.FindOutput(name);
      if (found == nullptr || (spec != nullptr && found->type != spec->type)) {
        return absl::InternalError(StrCat("remote model '", settings_.remote_name, "' at ", endpoint,
                                          found == nullptr ? " did not return output '" : " returned output '", name,
                                          found == nullptr ? "'" : "' with another type"));
      }
      outputs->push_back(std::move(*found));
    }
    return absl::OkStatus();
  }

  void HealthLoop() {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), settings_.health_interval);
        if (stopping_) return;
      }
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        absl::StatusOr<bool> ready = endpoints_[i].transport->Ready();
        const bool healthy = ready.ok() && *ready;
        balancer_.SetHealthy(static_cast<int>(i), healthy);
        if (endpoints_[i].up != nullptr) endpoints_[i].up->Set(healthy ? 1 : 0);
      }
    }
  }

  const Settings settings_;
  std::vector<Endpoint> endpoints_;
  const ModelSignature signature_;
  Balancer balancer_;
  RetryBudget budget_;
  prometheus::Counter* const retries_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread health_;
};

class RemoteSession final : public Session {
 public:
  explicit RemoteSession(std::shared_ptr<RemoteModel> model) : model_(std::move(model)) {}
  const ModelSignature& signature() const override { return model_->signature(); }
  absl::Status Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                   std::vector<Tensor>* outputs) override {
    return model_->Call(inputs, output_names, outputs, nullptr);
  }
  absl::Status RunTraced(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                         std::vector<Tensor>* outputs, const RequestTrace& parent) override {
    return model_->Call(inputs, output_names, outputs, &parent);
  }
  std::string device_name() const override { return "remote"; }

 private:
  const std::shared_ptr<RemoteModel> model_;
};

}  // namespace

absl::StatusOr<RemoteLoad> LoadRemoteModel(const config::ModelConfig& config, const RemoteLoadOptions& options) {
  const config::ModelRemote& remote = config.remote();
  const std::string where = StrCat("model '", options.model, "': remote");
  if (!config.has_remote() || remote.endpoints().empty()) {
    return absl::InvalidArgumentError(StrCat(where, ".endpoints must name at least one host:port"));
  }
  if (static_cast<size_t>(remote.endpoints_size()) > kMaxEndpoints) {
    return absl::InvalidArgumentError(StrCat(where, ".endpoints: at most ", kMaxEndpoints));
  }
  if (remote.timeout_ms() > kMaxTimeoutMs) {
    return absl::InvalidArgumentError(StrCat(where, ".timeout_ms: at most ", kMaxTimeoutMs));
  }
  if (remote.eject_ms() > kMaxTimeoutMs || remote.health_check_interval_ms() > static_cast<int64_t>(kMaxTimeoutMs) ||
      remote.health_check_interval_ms() < -1) {
    return absl::InvalidArgumentError(StrCat(where, ": eject_ms and health_check_interval_ms must be at most ",
                                             kMaxTimeoutMs, " (health_check_interval_ms -1: off)"));
  }
  if (remote.max_retries() >= kMaxEndpoints) {
    return absl::InvalidArgumentError(StrCat(where, ".max_retries: at most ", kMaxEndpoints - 1));
  }
  if (!(remote.retry_budget() >= 0 && remote.retry_budget() <= 1)) {
    return absl::InvalidArgumentError(StrCat(where, ".retry_budget must be in [0, 1]"));
  }
  uint64_t inflight = remote.max_inflight();
  if (inflight == 0) {
    for (const auto& group : config.instance_group()) inflight += static_cast<uint64_t>(std::max(0, group.count()));
    if (inflight == 0) inflight = kDefaultInflight;
  }
  if (inflight > kMaxInflight) {
    return absl::InvalidArgumentError(StrCat(where, ".max_inflight (or the instance counts): at most ", kMaxInflight));
  }

  RemoteModel::Settings settings;
  settings.model = options.model;
  settings.version = options.version;
  settings.remote_name = remote.model_name().empty() ? options.model : remote.model_name();
  settings.remote_version = remote.model_version();
  settings.timeout = absl::Milliseconds(remote.timeout_ms() == 0 ? 10'000 : static_cast<int64_t>(remote.timeout_ms()));
  settings.max_retries = remote.max_retries();
  settings.retries_allowed = !remote.not_idempotent();
  settings.retry_budget = remote.retry_budget() == 0 ? 0.2 : remote.retry_budget();
  settings.health_interval = remote.health_check_interval_ms() < 0   ? absl::ZeroDuration()
                             : remote.health_check_interval_ms() == 0 ? absl::Seconds(5)
                                                                      : absl::Milliseconds(remote.health_check_interval_ms());
  settings.balancer.policy = remote.load_balancing() == config::ModelRemote::LEAST_OUTSTANDING
                                 ? BalancePolicy::kLeastOutstanding
                                 : BalancePolicy::kRoundRobin;
  settings.balancer.eject_after_failures = remote.eject_after_failures() == 0 ? 5 : remote.eject_after_failures();
  settings.balancer.eject_for = absl::Milliseconds(remote.eject_ms() == 0 ? 10'000 : static_cast<int64_t>(remote.eject_ms()));

  WireProtocol protocol = WireProtocol::kKServeHttp;
  switch (remote.protocol()) {
    case config::ModelRemote::KSERVE_GRPC: protocol = WireProtocol::kKServeGrpc; break;
    case config::ModelRemote::TFSERVING_REST: protocol = WireProtocol::kTfServingRest; break;
    default: break;
  }
  ModelSignature config_signature;
  if (protocol == WireProtocol::kTfServingRest) {
    absl::StatusOr<ModelSignature> from_config = SignatureFromConfig(config);
    if (!from_config.ok()) return absl::InvalidArgumentError(StrCat(where, ": ", from_config.status().message()));
    config_signature = std::move(*from_config);
  }

  // Metric series (prometheus-cpp returns the existing family or child on a
  // reload).
  prometheus::Family<prometheus::Counter>* calls = nullptr;
  prometheus::Family<prometheus::Counter>* ejections = nullptr;
  prometheus::Family<prometheus::Gauge>* up = nullptr;
  prometheus::Counter* retries = nullptr;
  if (options.registry != nullptr) {
    calls = &prometheus::BuildCounter()
                 .Name("ortserve_remote_calls_total")
                 .Help("Calls to remote model endpoints by outcome (ok, timeout, unavailable, error, client_error)")
                 .Register(*options.registry);
    ejections = &prometheus::BuildCounter()
                     .Name("ortserve_remote_ejections_total")
                     .Help("Remote endpoints taken out of rotation after consecutive failures")
                     .Register(*options.registry);
    up = &prometheus::BuildGauge()
              .Name("ortserve_remote_endpoint_healthy")
              .Help("1 when the remote endpoint's last health check found the model ready")
              .Register(*options.registry);
    retries = &prometheus::BuildCounter()
                   .Name("ortserve_remote_retries_total")
                   .Help("Remote calls tried again on another endpoint")
                   .Register(*options.registry)
                   .Add({{"model", options.model}, {"version", options.version}});
  }

  if (remote.tls().cert_file().empty() != remote.tls().key_file().empty()) {
    return absl::InvalidArgumentError(StrCat(where, ".tls: cert_file and key_file go together (mTLS)"));
  }
  std::vector<Endpoint> endpoints;
  for (const std::string& text : remote.endpoints()) {
    absl::StatusOr<EndpointAddress> parsed = ParseEndpoint(text);
    if (!parsed.ok()) return absl::InvalidArgumentError(StrCat(where, ": ", parsed.status().message()));
    absl::StatusOr<bool> tls = UsesTls(*parsed, text, remote);
    if (!tls.ok()) return absl::InvalidArgumentError(StrCat(where, ": ", tls.status().message()));
    TransportOptions transport;
    transport.protocol = protocol;
    transport.host = parsed->host;
    transport.port = parsed->port;
    transport.tls = *tls;
    transport.tls_ca_file = remote.tls().ca_file();
    transport.tls_cert_file = remote.tls().cert_file();
    transport.tls_key_file = remote.tls().key_file();
    transport.tls_server_name = remote.tls().server_name();
    transport.model_name = settings.remote_name;
    transport.model_version = settings.remote_version;
    transport.timeout = settings.timeout;
    transport.json_tensors = remote.json_tensors();
    transport.signature = config_signature;
    Endpoint endpoint;
    endpoint.label = text;
    absl::StatusOr<std::unique_ptr<Transport>> made = MakeTransport(std::move(transport));
    if (!made.ok()) return absl::Status(made.status().code(), StrCat(where, " endpoint ", text, ": ", made.status().message()));
    endpoint.transport = std::move(*made);
    if (calls != nullptr) {
      auto child = [&](const char* outcome) {
        return &calls->Add({{"model", options.model}, {"version", options.version}, {"endpoint", text}, {"outcome", outcome}});
      };
      endpoint.ok = child("ok");
      endpoint.timeout = child("timeout");
      endpoint.unavailable = child("unavailable");
      endpoint.error = child("error");
      endpoint.client_error = child("client_error");
      endpoint.ejections = &ejections->Add({{"model", options.model}, {"version", options.version}, {"endpoint", text}});
      endpoint.up = &up->Add({{"model", options.model}, {"version", options.version}, {"endpoint", text}});
    }
    endpoints.push_back(std::move(endpoint));
  }

  // The load needs one endpoint that answers ready (and, for KServe, gives
  // the model's tensors); the others start unhealthy until a check passes.
  std::vector<bool> healthy(endpoints.size(), false);
  std::optional<ModelSignature> signature;
  std::string errors;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    absl::StatusOr<bool> ready = endpoints[i].transport->Ready();
    if (ready.ok() && *ready && protocol != WireProtocol::kTfServingRest && !signature) {
      absl::StatusOr<ModelSignature> metadata = endpoints[i].transport->Metadata();
      if (metadata.ok()) {
        signature = std::move(*metadata);
      } else {
        ready = metadata.status();
      }
    }
    healthy[i] = ready.ok() && *ready;
    if (!healthy[i]) {
      errors += StrCat(errors.empty() ? "" : "; ", endpoints[i].label, ": ",
                ready.ok() ? "model not ready" : ready.status().message());
    }
  }
  if (protocol == WireProtocol::kTfServingRest) signature = std::move(config_signature);
  const bool any_ready = std::find(healthy.begin(), healthy.end(), true) != healthy.end();
  if (!any_ready || !signature) {
    return absl::UnavailableError(StrCat(where, " '", settings.remote_name, "' is not ready on any endpoint (", errors, ")"));
  }
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (endpoints[i].up != nullptr) endpoints[i].up->Set(healthy[i] ? 1 : 0);
  }

  auto model = std::make_shared<RemoteModel>(std::move(settings), std::move(endpoints), *signature,
                                             options.clock != nullptr ? options.clock : Clock::Real(), retries);
  for (size_t i = 0; i < healthy.size(); ++i) model->balancer().SetHealthy(static_cast<int>(i), healthy[i]);
  model->StartHealthChecks();
  RemoteLoad load;
  load.signature = model->signature();
  for (uint64_t i = 0; i < inflight; ++i) load.sessions.push_back(std::make_shared<RemoteSession>(model));
  return load;
}

void FillRemoteConfigTensors(const ModelSignature& signature, config::ModelConfig* config) {
  if (config->input_size() > 0 || config->output_size() > 0) return;
  const bool batched = config->max_batch_size() > 0;
  auto fill = [&](const TensorSpec& spec, auto* tensor) {
    tensor->set_name(spec.name);
    config::DataType type = config::TYPE_INVALID;
    config::DataType_Parse(std::string(DataTypeConfigName(spec.type)), &type);
    tensor->set_data_type(type);
    for (size_t d = batched && !spec.dims.empty() ? 1 : 0; d < spec.dims.size(); ++d) tensor->add_dims(spec.dims[d]);
  };
  for (const TensorSpec& spec : signature.inputs) fill(spec, config->add_input());
  for (const TensorSpec& spec : signature.outputs) fill(spec, config->add_output());
}

}  // namespace ortserve::backend::remote
