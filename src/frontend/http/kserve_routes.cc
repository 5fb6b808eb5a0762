// SPDX-License-Identifier: Apache-2.0
// Connection: the KServe v2 model endpoints (metadata, readiness, config,
// statistics, infer).
#include <algorithm>
#include <charconv>

#include "core/strings.h"
#include "frontend/http/connection.h"
#include "frontend/http/rest_json.h"
#include "repository/model_manager.h"

namespace ortserve::frontend {

void Connection::ModelMetadata(const RouteMatch& route) {
  auto metadata = options_.service->GetModelMetadata(route.model, route.version);
  if (!metadata.ok()) return Send(Error(metadata.status()));
  Send(Ok(ModelMetadataJson(*metadata)));
}

void Connection::ModelReady(const RouteMatch& route) {
  Send(Bare(options_.service->GetModel(route.model, route.version).ok() ? 200 : 400));
}

void Connection::ModelConfig(const RouteMatch& route) {
  auto config = options_.service->GetServedConfig(route.model, route.version);
  if (!config.ok()) return Send(Error(config.status()));
  Send(Ok(repository::ModelConfigToJson(*config)));
}

Connection::Reply Connection::Stats(const std::string& name, const std::string& version) {
  InferenceService& service = *options_.service;
  std::vector<ModelHandle> models;
  if (name.empty()) {
    for (const auto& entry : service.Index()) {
      if (entry.state != repository::ModelState::kReady) continue;
      // Only the models the credential may use (all while authentication is off).
      if (identity_ && !identity_->models.Allows(entry.name)) continue;
      if (auto model = service.GetModel(entry.name, entry.version); model.ok()) models.push_back(*model);
    }
  } else if (version.empty()) {
    // Every ready version of the model, as Triton does.
    for (const auto& entry : service.Index()) {
      if (entry.name != name || entry.state != repository::ModelState::kReady) continue;
      if (auto model = service.GetModel(entry.name, entry.version); model.ok()) models.push_back(*model);
    }
    if (models.empty()) {
      auto model = service.GetModel(name, version);
      if (!model.ok()) return Error(model.status());
    }
  } else {
    auto model = service.GetModel(name, version);
    if (!model.ok()) return Error(model.status());
    models.push_back(*model);
  }
  return Ok(ModelStatsJson(models));
}

void Connection::ResolveModelForRecord(const std::string& name, const std::string& version) {
  // An error path: the lookup's lock is fine.
  if (auto model = options_.service->GetModel(name, version); model.ok()) record_->SetModel((*model)->metrics);
}

void Connection::Infer(std::string name, std::string version) {
  record_->MarkInference();
  auto& request = parser_->get();
  std::optional<size_t> header_length;
  auto header = request["Inference-Header-Content-Length"];
  if (!header.empty()) {
    size_t value = 0;
    auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), value);
    if (ec != std::errc() || end != header.data() + header.size()) {
      ResolveModelForRecord(name, version);
      return Send(Error(400, StrCat("Inference-Header-Content-Length '", std::string_view(header.data(), header.size()),
                                    "' is not a non-negative integer")));
    }
    header_length = value;
  }
  // The body becomes the request's payload: binary tensors are views into
  // it. It stays in body_ for the next request unless someone still holds it.
  if (body_.use_count() != 1) body_ = std::make_shared<std::string>();
  body_->swap(request.body());
  const std::shared_ptr<std::string>& body = body_;
  const absl::Time now = absl::Now();
  absl::StatusOr<InferRequest> decoded;
  if (header_length == 0) {
    auto model = options_.service->GetModel(name, version);
    if (!model.ok()) return Send(Error(model.status()));
    decoded = DecodeRawRequestFor(**model, body);
  } else {
    decoded = DecodeInferRequest(body->data(), body->size(), body->capacity(), header_length, body, now);
  }
  // Inputs in shared memory become views of their regions.
  if (decoded.ok() && !options_.service->shared_memory().empty()) {
    if (absl::Status status = options_.service->shared_memory().ResolveInputs(&*decoded); !status.ok()) {
      decoded = status;
    }
  }
  if (!decoded.ok()) {
    ResolveModelForRecord(name, version);
    return Send(Error(decoded.status()));
  }
  auto infer = std::make_unique<InferRequest>(*std::move(decoded));
  infer->model_name = std::move(name);
  infer->model_version = std::move(version);
  infer->arrival = now;
  infer->cancellation = cancellation_ = FreshCancellation();
  // Routing reads X-Model-Version and the sticky key from the headers,
  // which live in the parser until the next request is read.
  headers_.request = &request;
  infer->headers = &headers_;
  // Encoding needs the request's output choices after the scheduler has
  // consumed the request.
  encode_request_.outputs = infer->outputs;
  encode_request_.binary_data_output = infer->binary_data_output;
  options_.service->Infer(std::move(infer),
                          [self = shared_from_this()](absl::StatusOr<InferResponse> result) mutable {
                            // Back onto this connection's thread to encode and write.
                            self->Post([self, result = std::move(result)]() mutable {
                              self->OnInferDone(std::move(result));
                            });
                          },
                          &*record_);
  WatchForClose();
}

absl::StatusOr<InferRequest> Connection::DecodeRawRequestFor(const repository::ModelVersion& model,
                                                             const std::shared_ptr<std::string>& body) {
  if (model.config.input_size() != 1) {
    return absl::InvalidArgumentError(StrCat(
        "Inference-Header-Content-Length: 0 sends the body as the only input, but model '", model.name, "' has ",
        model.config.input_size(), " inputs"));
  }
  const auto& input = model.config.input(0);
  const DataType type = *DataTypeFromConfigName(config::DataType_Name(input.data_type()));
  RawInputSpec spec;
  spec.name = input.name();
  spec.type = type;
  const Shape shape = repository::ServedShape(model.config, input.dims());
  spec.shape.assign(shape.begin(), shape.end());
  return DecodeRawInferRequest(body->data(), body->size(), spec, body, absl::Now());
}

void Connection::OnInferDone(absl::StatusOr<InferResponse> result) {
  cancellation_.reset();
  if (!result.ok()) return Send(Error(result.status()));
  response_ = std::move(result).value();
  // Outputs asked for in shared memory are written there first.
  if (!options_.service->shared_memory().empty()) {
    if (absl::Status status = options_.service->shared_memory().WriteOutputs(encode_request_, &*response_);
        !status.ok()) {
      return Send(Error(status));
    }
  }
  // Labels matter only to the classification extension; skip the model
  // lookup (and the manager's lock) on the common path.
  const bool classify = std::any_of(encode_request_.outputs.begin(), encode_request_.outputs.end(),
                                    [](const RequestedOutput& o) { return o.classification > 0; });
  ModelHandle model;
  if (classify) {
    if (auto found = options_.service->GetModel(response_->model_name, response_->model_version); found.ok()) {
      model = *std::move(found);
    }
  }
  EncodeOptions encode_options;
  if (model != nullptr && !model->labels.empty()) {
    encode_options.labels = [labels = &model->labels](std::string_view output) {
      auto it = labels->find(std::string(output));
      return it == labels->end() ? std::span<const std::string>() : std::span<const std::string>(it->second);
    };
  }
  if (auto status = EncodeInferResponse(*response_, encode_request_, encode_options, &encoded_); !status.ok()) {
    return Send(Error(status));
  }
  // The reply takes the encoded JSON by swapping buffers with it, so both
  // keep their capacity for the connection's next response.
  reply_.status = 200;
  reply_.content_type = encoded_.has_binary() ? "application/octet-stream" : kJson;
  reply_.headers.clear();
  reply_.body.swap(encoded_.json);
  reply_.inference_header_length = encoded_.has_binary() ? reply_.body.size() : Reply::kNoHeaderLength;
  SendReply(encoded_.binary, encoded_.binary_size);
}

}  // namespace ortserve::frontend
