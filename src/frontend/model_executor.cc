// SPDX-License-Identifier: Apache-2.0
#include "frontend/model_executor.h"

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/text_inference.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::frontend {
namespace {

bool ShapeMatches(const Shape& served, const Shape& actual) {
  if (served.size() != actual.size()) return false;
  for (size_t i = 0; i < served.size(); ++i) {
    if (served[i] != -1 && served[i] != actual[i]) return false;
  }
  return true;
}

}  // namespace

absl::Status ModelExecutor::Validate(const repository::ModelVersion& model, InferRequest& request) {
  if (model.text_pipeline != nullptr) return pipeline::ValidateTextRequest(*model.text_pipeline, model.name, request);
  return ValidateTensorRequest(model, request);
}

void ModelExecutor::Execute(repository::ModelHandle model, std::unique_ptr<InferRequest> request,
                            InferCallback done, bool version_held) {
  if (model->text_pipeline != nullptr) {
    pipeline::TextModel text{.pipeline = model->text_pipeline.get(),
                             .scheduler = model->scheduler.get(),
                             .name = model->name,
                             .version = model->version_string,
                             .metrics = model->metrics};
    text.keepalive = std::move(model);
    return pipeline::InferText(std::move(text), std::move(request), pool_, std::move(done));
  }
  scheduler::Scheduler* scheduler = model->scheduler.get();
  if (version_held) return scheduler->Enqueue(std::move(request), std::move(done));
  // The callback holds the handle so the version outlives the request.
  scheduler->Enqueue(std::move(request), [handle = std::move(model), done = std::move(done)](
                                             absl::StatusOr<InferResponse> result) mutable {
    std::move(done)(std::move(result));
  });
}

absl::Status ModelExecutor::ValidateTensorRequest(const repository::ModelVersion& model,
                                                  const InferRequest& request) {
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
      return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has shape ", ShapeToString(tensor.shape),
                                               ", model '", model.name, "' expects ", ShapeToString(served)));
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
    // ONNX strings are UTF-8: ORT refuses other bytes deep in the run, which
    // would read as a server error. Say which element is wrong instead.
    if (tensor.type == DataType::kBytes) {
      // The layout was checked just above: walk it without copying.
      const std::span<const std::byte> data = tensor.data;
      size_t element = 0;
      for (size_t at = 0; at + 4 <= data.size(); ++element) {
        uint32_t length = 0;
        for (int b = 0; b < 4; ++b) length |= static_cast<uint32_t>(data[at + b]) << (8 * b);
        const std::string_view text(reinterpret_cast<const char*>(data.data() + at + 4), length);
        if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
          return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' element ", element,
                                                   " is not valid UTF-8 (byte ", bad,
                                                   "); string inputs of ONNX models must be UTF-8"));
        }
        at += 4 + length;
      }
    }
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

}  // namespace ortserve::frontend
