// SPDX-License-Identifier: Apache-2.0
#include "frontend/inference_service.h"

#include "core/status.h"
#include "core/strings.h"
#include "frontend/text_inference.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::frontend {
namespace {

std::string ShapeString(const Shape& shape) { return ShapeToString(shape); }

bool ShapeMatches(const Shape& served, const Shape& actual) {
  if (served.size() != actual.size()) return false;
  for (size_t i = 0; i < served.size(); ++i) {
    if (served[i] != -1 && served[i] != actual[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view InferenceService::ServerVersion() { return "0.1.0"; }

const std::vector<std::string>& InferenceService::Extensions() {
  static const std::vector<std::string> extensions = {
      "classification", "model_repository", "schedule_policy", "model_configuration",
      "binary_tensor_data", "parameters", "statistics"};
  return extensions;
}

absl::StatusOr<ModelMetadata> InferenceService::GetModelMetadata(std::string_view name,
                                                                 std::string_view version) const {
  ASSIGN_OR_RETURN(ModelHandle model, GetModel(name, version));
  ModelMetadata metadata;
  metadata.name = model->name;
  metadata.platform = model->config.platform();
  metadata.last_load_error = options_.models->LastLoadError(model->name);
  for (const auto& entry : Index()) {
    if (entry.name == model->name && entry.state == repository::ModelState::kReady) {
      metadata.versions.push_back(entry.version);
    }
  }
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

absl::Status InferenceService::ValidateRequest(const repository::ModelVersion& model, InferRequest& request) {
  if (model.text_pipeline != nullptr) return ValidateTextRequest(model, request);
  const auto& config = model.config;
  int64_t batch = -1;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& tensor = request.inputs[i];
    const config::ModelInput* declared = nullptr;
    for (const auto& input : config.input()) {
      if (input.name() == tensor.name) declared = &input;
    }
    if (declared == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("unexpected input '", tensor.name, "' for model '", model.name, "'"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (request.inputs[j].name == tensor.name) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' appears more than once"));
      }
    }
    const auto want_type = DataTypeFromConfigName(config::DataType_Name(declared->data_type()));
    if (want_type != tensor.type) {
      return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has datatype ",
                                               DataTypeName(tensor.type), ", model '", model.name,
                                               "' expects ", DataTypeName(want_type.value_or(DataType::kInvalid))));
    }
    const Shape served = repository::ServedShape(config, declared->dims());
    if (!ShapeMatches(served, tensor.shape)) {
      return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has shape ", ShapeString(tensor.shape),
                                               ", model '", model.name, "' expects ", ShapeString(served)));
    }
    if (config.max_batch_size() > 0) {
      const int64_t rows = tensor.shape[0];
      if (rows < 1 || rows > config.max_batch_size()) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has batch size ", rows,
                                                 ", model '", model.name, "' accepts 1 to ",
                                                 config.max_batch_size()));
      }
      if (batch >= 0 && rows != batch) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has batch size ", rows,
                                                 " but other inputs have ", batch));
      }
      batch = rows;
    }
    RETURN_IF_ERROR(ValidateTensorBytes(tensor));
  }
  for (const auto& input : config.input()) {
    if (input.optional()) continue;
    if (request.FindInput(input.name()) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("model '", model.name, "' expects input '", input.name(), "', which the request lacks"));
    }
  }
  for (const auto& output : request.outputs) {
    bool known = false;
    for (const auto& declared : config.output()) known |= declared.name() == output.name;
    if (!known) {
      return absl::InvalidArgumentError(
          StrCat("unexpected requested output '", output.name, "' for model '", model.name, "'"));
    }
  }
  return absl::OkStatus();
}

bool InferenceService::Ready() const {
  if (!ready_.load(std::memory_order_acquire)) return false;
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
  auto model = GetModel(request->model_name, request->model_version);
  if (!model.ok()) return std::move(done)(model.status());
  observability::VersionMetrics* metrics = (*model)->metrics;
  if (record != nullptr) record->SetModel(metrics);
  if (absl::Status status = ValidateRequest(**model, *request); !status.ok()) {
    (*model)->stats->fail.Record(absl::ZeroDuration());
    return std::move(done)(std::move(status));
  }
  // Admitted: counted as pending (the autoscaling signal) and in flight (the
  // shutdown drain waits for it) until its answer has been handed over.
  if (metrics != nullptr) metrics->RequestAdmitted();
  inflight_.fetch_add(1, std::memory_order_acq_rel);
  done = [this, metrics, done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
    if (metrics != nullptr) metrics->RequestAnswered();
    std::move(done)(std::move(result));
    inflight_.fetch_sub(1, std::memory_order_acq_rel);
  };
  if (request->arrival == absl::InfinitePast()) request->arrival = options_.clock->Now();
  if ((*model)->text_pipeline != nullptr) {
    return InferText(*std::move(model), std::move(request), options_.tokenization_pool, std::move(done));
  }
  scheduler::Scheduler* scheduler = (*model)->scheduler.get();
  // The callback holds the handle so the version outlives the request.
  scheduler->Enqueue(std::move(request),
                     [handle = *std::move(model), done = std::move(done)](
                         absl::StatusOr<InferResponse> result) mutable { std::move(done)(std::move(result)); });
}

}  // namespace ortserve::frontend
