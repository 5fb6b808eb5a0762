// SPDX-License-Identifier: Apache-2.0
#include "frontend/inference_service.h"

#include <algorithm>
#include <span>

#include "core/status.h"
#include "core/strings.h"
#include "frontend/model_executor.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::frontend {

std::string_view InferenceService::ServerVersion() { return "0.1.0"; }


absl::StatusOr<ModelMetadata> InferenceService::GetModelMetadata(std::string_view name,
                                                                 std::string_view version) const {
  ASSIGN_OR_RETURN(ModelHandle model, GetModel(name, version));
  ModelMetadata metadata;
  metadata.name = model->name;
  metadata.platform = model->config.platform();
  metadata.last_load_error = options_.models->LastLoadError(model->name);
  metadata.versions = options_.models->ReadyVersions(model->name);
  if (model->text_pipeline != nullptr) {  // The text signature, not the model's own tensors.
    for (const auto& spec : model->text_pipeline->text_inputs()) {
      metadata.inputs.push_back({spec.name, spec.type, spec.dims});
    }
    for (const auto& spec : model->text_pipeline->text_outputs()) {
      metadata.outputs.push_back({spec.name, spec.type, spec.dims});
    }
    return metadata;
  }
  for (const auto& input : model->config.input()) {
    metadata.inputs.push_back({input.name(), *DataTypeFromConfigName(config::DataType_Name(input.data_type())),
                               repository::ServedShape(model->config, input.dims())});
  }
  for (const auto& output : model->config.output()) {
    metadata.outputs.push_back({output.name(),
                                *DataTypeFromConfigName(config::DataType_Name(output.data_type())),
                                repository::ServedShape(model->config, output.dims())});
  }
  return metadata;
}

absl::StatusOr<config::ModelConfig> InferenceService::GetServedConfig(std::string_view name,
                                                                    std::string_view version) const {
  ASSIGN_OR_RETURN(ModelHandle model, GetModel(name, version));
  config::ModelConfig served = model->config;
  if (model->text_pipeline == nullptr) return served;
  const bool batched = served.max_batch_size() > 0;
  // Config dims leave out the batch dimension that metadata shapes lead with.
  auto dims_of = [batched](const Shape& shape) {
    return std::span<const int64_t>(shape.data(), shape.size()).subspan(batched && !shape.empty() ? 1 : 0);
  };
  auto type_of = [](DataType type) {
    config::DataType out = config::TYPE_INVALID;
    config::DataType_Parse(std::string(DataTypeConfigName(type)), &out);
    return out;
  };
  served.clear_input();
  served.clear_output();
  for (const auto& spec : model->text_pipeline->text_inputs()) {
    auto* input = served.add_input();
    input->set_name(spec.name);
    input->set_data_type(type_of(spec.type));
    for (int64_t d : dims_of(spec.dims)) input->add_dims(d);
  }
  for (const auto& spec : model->text_pipeline->text_outputs()) {
    auto* output = served.add_output();
    output->set_name(spec.name);
    output->set_data_type(type_of(spec.type));
    for (int64_t d : dims_of(spec.dims)) output->add_dims(d);
  }
  return served;
}

absl::StatusOr<observability::TraceSettings::Map> InferenceService::TraceSetting(
    std::string_view model, const observability::TraceSettings::Updates& updates) const {
  if (!model.empty()) RETURN_IF_ERROR(GetModel(model, "").status());
  observability::Tracer* tracer = options_.telemetry.tracer;
  if (tracer == nullptr) {
    if (!updates.empty()) {
      return absl::FailedPreconditionError(
          "tracing is off on this server: start ortserve with --otlp-endpoint (and --trace-sampling-ratio) to trace");
    }
    return observability::TraceSettings(0.0).Get({});
  }
  if (updates.empty()) return tracer->settings().Get(model);
  return tracer->settings().Update(model, updates);
}

std::vector<std::string> InferenceService::FailedModels() const {
  std::vector<std::string> failed;
  for (const auto& entry : Index()) {
    if (!failed.empty() && failed.back() == entry.name) continue;
    if (options_.models->LastLoadError(entry.name).empty()) continue;
    if (!options_.models->ReadyVersions(entry.name).empty()) continue;
    failed.push_back(entry.name);
  }
  std::sort(failed.begin(), failed.end());
  failed.erase(std::unique(failed.begin(), failed.end()), failed.end());
  return failed;
}

bool InferenceService::Ready() const {
  if (!ready_.load(std::memory_order_acquire)) return false;
  if (options_.strict_readiness && !FailedModels().empty()) return false;
  for (const std::string& name : options_.required_models) {
    if (!GetModel(name, "").ok()) return false;
  }
  return true;
}

void InferenceService::Infer(std::unique_ptr<InferRequest> request, InferCallback done,
                             observability::RequestRecord* record) {
  if (record != nullptr) {
    record->MarkInference();
    record->SetRequestId(request->id);
  }
  if (draining()) {
    return std::move(done)(absl::UnavailableError(
        StrCat("server is shutting down; model '", request->model_name, "' takes no new requests")));
  }
  // In flight (the shutdown drain waits for it) until its answer has been
  // handed over, whichever versions or models served it.
  inflight_.fetch_add(1, std::memory_order_acq_rel);
  Call* call = AcquireCall(std::move(done));
  if (request->arrival == absl::InfinitePast()) request->arrival = options_.clock->Now();
  // Sampled requests carry their span down, for the tokenization, queue and
  // batch spans; unsampled ones carry an empty trace (nothing is recorded).
  if (record != nullptr && record->traced()) request->trace = record->Trace();
  router_->Route(std::move(request),
                 [this, call](absl::StatusOr<InferResponse> result) { Finish(call, std::move(result)); }, record,
                 &call->slot);
}

InferenceService::Call* InferenceService::AcquireCall(InferCallback done) {
  Call* call;
  {
    absl::MutexLock lock(&calls_mu_);
    call = free_calls_;
    if (call != nullptr) {
      free_calls_ = call->next_free;
    } else {
      call = calls_.emplace_back(std::make_unique<Call>()).get();
    }
  }
  call->done = std::move(done);
  return call;
}

void InferenceService::Finish(Call* call, absl::StatusOr<InferResponse> result) {
  {
    InferCallback done = std::move(call->done);
    ModelHandle model = std::move(call->slot.model);  // Released after `done` returns.
    if (call->slot.pending != nullptr) call->slot.pending->RequestAnswered();
    call->slot.pending = nullptr;
    {
      absl::MutexLock lock(&calls_mu_);
      call->next_free = free_calls_;
      free_calls_ = call;
    }
    std::move(done)(std::move(result));
  }
  // Only now, with the callback and what it captured gone (a front end's
  // connection, say), is the request over: a drain that sees the count reach
  // zero may destroy the front end.
  inflight_.fetch_sub(1, std::memory_order_acq_rel);
}

InferenceService::InferenceService(Options options)
    : options_(std::move(options)),
      shared_memory_(options_.shared_memory),
      extensions_{"classification", "model_repository", "schedule_policy", "model_configuration",
                  "binary_tensor_data", "parameters",     "statistics",      "logging",
                  "trace"} {
  if (shared_memory_.offered()) extensions_.push_back("system_shared_memory");
  router::Executor* executor = options_.executor;
  if (executor == nullptr) {
    own_executor_ = std::make_unique<ModelExecutor>(options_.tokenization_pool);
    executor = own_executor_.get();
  }
  router::Router::Options router_options;
  router_options.models = options_.model_provider != nullptr ? options_.model_provider : options_.models;
  router_options.executor = executor;
  router_options.response_cache = options_.response_cache;
  router_options.clock = options_.clock;
  router_options.metrics = options_.telemetry.metrics;
  router_options.run_comparison = options_.run_comparison;
  router_options.count_shadow = [this](int delta) {
    if (delta > 0) {
      inflight_.fetch_add(1, std::memory_order_acq_rel);
    } else {
      inflight_.fetch_sub(1, std::memory_order_acq_rel);
    }
  };
  router_options.draining = [this] { return draining(); };
  router_ = std::make_unique<router::Router>(std::move(router_options));
}

InferenceService::~InferenceService() = default;

}  // namespace ortserve::frontend
