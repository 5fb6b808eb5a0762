// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/generate_stream.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/status.h"
#include "core/strings.h"
#include "core/tensor.h"
#include "frontend/generate_request.h"
#include "generation/generation_config.h"
#include "repository/model_version.h"

namespace ortserve::frontend {

namespace {

using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

constexpr std::string_view kFinalResponse = "triton_final_response";

// KServe and Triton request parameters a generate request may carry without
// their being generate parameters.
bool IsReservedParameter(std::string_view key) {
  return key == "priority" || key == "timeout" || key == "binary_data_output" || key == "headers" ||
         key.starts_with("sequence_") || key.starts_with("triton_");
}

absl::Status BadInput(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("input '", name, "' ", what));
}

// A one-element input (a BYTES input of `stop` may hold up to 64) as a
// parameter value; views into the request's tensor bytes.
absl::StatusOr<GenerateValue> ValueOf(const Tensor& t, int64_t count) {
  GenerateValue v;
  if (t.type == DataType::kBytes) {
    if (count < 1 || count > 64) return BadInput(t.name, StrCat("must hold 1 to 64 elements, got ", count));
    ASSIGN_OR_RETURN(std::vector<std::string_view> elements, SplitBytesElements(t.data, count, t.name));
    if (count == 1) {
      v.kind = GenerateValue::Kind::kString;
      v.s = elements[0];
    } else {
      v.kind = GenerateValue::Kind::kStrings;
      v.strings = std::move(elements);
    }
    return v;
  }
  if (count != 1) return BadInput(t.name, StrCat("must hold one element, got ", count));
  auto read = [&](auto sample) {
    decltype(sample) x;
    std::memcpy(&x, t.data.data(), sizeof(x));
    return x;
  };
  switch (t.type) {
    case DataType::kBool: v.kind = GenerateValue::Kind::kBool; v.b = read(uint8_t{}) != 0; break;
    case DataType::kInt8: v.kind = GenerateValue::Kind::kInt; v.i = read(int8_t{}); break;
    case DataType::kInt16: v.kind = GenerateValue::Kind::kInt; v.i = read(int16_t{}); break;
    case DataType::kInt32: v.kind = GenerateValue::Kind::kInt; v.i = read(int32_t{}); break;
    case DataType::kInt64: v.kind = GenerateValue::Kind::kInt; v.i = read(int64_t{}); break;
    case DataType::kUint8: v.kind = GenerateValue::Kind::kInt; v.i = read(uint8_t{}); break;
    case DataType::kUint16: v.kind = GenerateValue::Kind::kInt; v.i = read(uint16_t{}); break;
    case DataType::kUint32: v.kind = GenerateValue::Kind::kInt; v.i = read(uint32_t{}); break;
    case DataType::kUint64: {
      const uint64_t u = read(uint64_t{});
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        v.kind = GenerateValue::Kind::kUint;
        v.u = u;
      } else {
        v.kind = GenerateValue::Kind::kInt;
        v.i = static_cast<int64_t>(u);
      }
      break;
    }
    case DataType::kFp32: v.kind = GenerateValue::Kind::kDouble; v.d = read(float{}); break;
    case DataType::kFp64: v.kind = GenerateValue::Kind::kDouble; v.d = read(double{}); break;
    default: return BadInput(t.name, StrCat("has datatype ", DataTypeName(t.type), ", which no parameter takes"));
  }
  return v;
}

GenerateValue ValueOf(const ParameterValue& p) {
  GenerateValue v;
  if (const auto* b = std::get_if<bool>(&p)) {
    v.kind = GenerateValue::Kind::kBool;
    v.b = *b;
  } else if (const auto* i = std::get_if<int64_t>(&p)) {
    v.kind = GenerateValue::Kind::kInt;
    v.i = *i;
  } else if (const auto* u = std::get_if<uint64_t>(&p)) {
    v.kind = *u > static_cast<uint64_t>(INT64_MAX) ? GenerateValue::Kind::kUint : GenerateValue::Kind::kInt;
    v.u = *u;
    v.i = static_cast<int64_t>(*u);
  } else if (const auto* d = std::get_if<double>(&p)) {
    v.kind = GenerateValue::Kind::kDouble;
    v.d = *d;
  } else if (const auto* s = std::get_if<std::string>(&p)) {
    v.kind = GenerateValue::Kind::kString;
    v.s = *s;
  }
  return v;
}

// One response of `model`'s answer to request `id`: `text` as text_output.
void TextResponse(const repository::ModelVersion& model, const std::string& id, std::string_view text, bool final,
                  const generation::GenerationResult* finish, ModelInferResponse* out) {
  out->set_model_name(model.name);
  out->set_model_version(model.version_string);
  out->set_id(id);
  auto* output = out->add_outputs();
  output->set_name("text_output");
  output->set_datatype("BYTES");
  output->add_shape(1);
  std::string* raw = out->add_raw_output_contents();
  const uint32_t size = static_cast<uint32_t>(text.size());
  const unsigned char prefix[4] = {static_cast<unsigned char>(size), static_cast<unsigned char>(size >> 8),
                                   static_cast<unsigned char>(size >> 16), static_cast<unsigned char>(size >> 24)};
  raw->reserve(4 + text.size());
  raw->append(reinterpret_cast<const char*>(prefix), 4).append(text);
  SetFinalResponse(final, out);
  if (finish != nullptr) {
    auto& params = *out->mutable_parameters();
    params["finish_reason"].set_string_param(finish->finish == generation::FinishReason::kLength ? "length" : "stop");
    params["prompt_tokens"].set_int64_param(finish->prompt_tokens);
    params["completion_tokens"].set_int64_param(finish->completion_tokens);
  }
}

}  // namespace

void SetFinalResponse(bool final, ModelInferResponse* response) {
  (*response->mutable_parameters())[std::string(kFinalResponse)].set_bool_param(final);
}

absl::StatusOr<CompletionRequest> DecodeGrpcGenerateRequest(const InferRequest& request) {
  CompletionRequest r;
  r.model = request.model_name;
  bool have_text = false;
  for (const Tensor& t : request.inputs) {
    // Raw inputs are otherwise checked by the executor: bytes against type and shape.
    RETURN_IF_ERROR(ValidateTensorBytes(t));
    ASSIGN_OR_RETURN(int64_t count, ElementCount(t.shape));
    if (t.name == "text_input") {
      if (t.type != DataType::kBytes || count != 1) return BadInput(t.name, "must be one BYTES element");
      ASSIGN_OR_RETURN(std::vector<std::string_view> text, SplitBytesElements(t.data, 1, t.name));
      r.prompt.assign(text[0]);
      have_text = true;
    } else if (IsGenerateParameter(t.name)) {
      ASSIGN_OR_RETURN(GenerateValue v, ValueOf(t, count));
      RETURN_IF_ERROR(ApplyGenerateParameter(t.name, v, &r));
    } else {
      return BadInput(t.name, "is not an input of a generative model (text_input and the generate parameters)");
    }
  }
  if (!have_text) return BadInput("text_input", "is required");
  for (const auto& [key, value] : request.parameters) {
    if (IsGenerateParameter(key)) {
      RETURN_IF_ERROR(ApplyGenerateParameter(key, ValueOf(value), &r));
    } else if (!IsReservedParameter(key)) {
      return absl::InvalidArgumentError(StrCat("unknown parameter '", key, "'"));
    }
  }
  for (const RequestedOutput& output : request.outputs) {
    if (output.name != "text_output") {
      return absl::InvalidArgumentError(StrCat("unknown output '", output.name, "': a generative model has text_output"));
    }
  }
  return r;
}

absl::Status StartGrpcGeneration(const ModelHandle& model, const InferRequest& request,
                                 std::shared_ptr<const CancellationFlag> cancel, GenerateEmit emit) {
  ASSIGN_OR_RETURN(CompletionRequest parsed, DecodeGrpcGenerateRequest(request));
  const generation::GenerationModel& gen = *model->generation;
  generation::GenerationRequest generate;
  RETURN_IF_ERROR(BuildGenerationRequest(parsed, gen, &generate));
  // Shared by the callbacks, which run one at a time on the decode loop.
  struct Job {
    ModelHandle model;  // pins the version while the sequence runs
    std::string id;
    bool stream = false;
    GenerateEmit emit;
  };
  auto job = std::make_shared<Job>(Job{model, request.id, parsed.stream, std::move(emit)});
  generation::ContinuousBatcher::Callbacks callbacks;
  callbacks.on_text = [job, cancel](std::string_view delta) {
    if (cancel != nullptr && cancel->cancelled()) return false;
    if (job->stream) {
      ModelStreamInferResponse response;
      TextResponse(*job->model, job->id, delta, false, nullptr, response.mutable_infer_response());
      job->emit(std::move(response), false, absl::StatusCode::kOk);
    }
    return true;
  };
  callbacks.on_done = [job](absl::StatusOr<generation::GenerationResult> result) {
    ModelStreamInferResponse response;
    if (!result.ok()) {
      response.set_error_message(std::string(ToStd(result.status().message())));
      auto* r = response.mutable_infer_response();
      r->set_model_name(job->model->name);
      r->set_model_version(job->model->version_string);
      r->set_id(job->id);
      SetFinalResponse(true, r);
      job->emit(std::move(response), true, result.status().code());
    } else {
      TextResponse(*job->model, job->id, job->stream ? std::string_view() : std::string_view(result->text), true,
                   &*result, response.mutable_infer_response());
      job->emit(std::move(response), true,
                result->finish == generation::FinishReason::kCancelled ? absl::StatusCode::kCancelled
                                                                       : absl::StatusCode::kOk);
    }
    job->emit = nullptr;  // what it holds (the stream) is released here, on the loop
    job->model.reset();
  };
  return gen.batcher().Submit(std::move(generate), std::move(cancel), std::move(callbacks));
}

}  // namespace ortserve::frontend
