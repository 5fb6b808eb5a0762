// SPDX-License-Identifier: Apache-2.0
#include "client/grpc_codec.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>
#include <variant>
#include <string>
#include <utility>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::client {
namespace {

absl::Status Malformed(std::string_view what) {
  return absl::InternalError(StrCat("malformed response from the server: ", what));
}

void EncodeParameters(const Parameters& parameters,
                      google::protobuf::Map<std::string, inference::InferParameter>* out) {
  for (const auto& [key, value] : parameters) {
    inference::InferParameter& wire = (*out)[key];
    std::visit(
        [&wire](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            wire.set_bool_param(v);
          } else if constexpr (std::is_same_v<V, int64_t>) {
            wire.set_int64_param(v);
          } else if constexpr (std::is_same_v<V, uint64_t>) {
            wire.set_uint64_param(v);
          } else if constexpr (std::is_same_v<V, double>) {
            wire.set_double_param(v);
          } else {
            wire.set_string_param(v);
          }
        },
        value);
  }
}

// Keys sorted: protobuf maps have no order.
void DecodeParameters(const google::protobuf::Map<std::string, inference::InferParameter>& wire, Parameters* out) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : wire) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    const inference::InferParameter& p = wire.at(key);
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: out->Set(key, p.bool_param()); break;
      case inference::InferParameter::kInt64Param: out->Set(key, p.int64_param()); break;
      case inference::InferParameter::kUint64Param: out->Set(key, p.uint64_param()); break;
      case inference::InferParameter::kDoubleParam: out->Set(key, p.double_param()); break;
      case inference::InferParameter::kStringParam: out->Set(key, p.string_param()); break;
      default: break;  // Unset: nothing to report.
    }
  }
}

template <typename T, typename Repeated>
void AppendAs(const Repeated& values, std::vector<std::byte>* out) {
  for (const auto& v : values) {
    T value = static_cast<T>(v);
    const auto* bytes = reinterpret_cast<const std::byte*>(&value);
    out->insert(out->end(), bytes, bytes + sizeof(T));
  }
}

// Typed `contents` into core/tensor.h's layout; nullopt when the datatype has
// no contents field (FP16/BF16).
std::optional<std::vector<std::byte>> ContentsBytes(DataType type, const inference::InferTensorContents& c) {
  std::vector<std::byte> out;
  switch (type) {
    case DataType::kBool: AppendAs<uint8_t>(c.bool_contents(), &out); break;
    case DataType::kInt8: AppendAs<int8_t>(c.int_contents(), &out); break;
    case DataType::kInt16: AppendAs<int16_t>(c.int_contents(), &out); break;
    case DataType::kInt32: AppendAs<int32_t>(c.int_contents(), &out); break;
    case DataType::kInt64: AppendAs<int64_t>(c.int64_contents(), &out); break;
    case DataType::kUint8: AppendAs<uint8_t>(c.uint_contents(), &out); break;
    case DataType::kUint16: AppendAs<uint16_t>(c.uint_contents(), &out); break;
    case DataType::kUint32: AppendAs<uint32_t>(c.uint_contents(), &out); break;
    case DataType::kUint64: AppendAs<uint64_t>(c.uint64_contents(), &out); break;
    case DataType::kFp32: AppendAs<float>(c.fp32_contents(), &out); break;
    case DataType::kFp64: AppendAs<double>(c.fp64_contents(), &out); break;
    case DataType::kBytes:
      for (const std::string& s : c.bytes_contents()) AppendBytesElement(s, &out);
      break;
    default: return std::nullopt;
  }
  return out;
}

absl::StatusOr<TensorMetadata> DecodeTensor(const inference::ModelMetadataResponse::TensorMetadata& wire) {
  TensorMetadata out;
  out.name = wire.name();
  auto type = DataTypeFromName(wire.datatype());
  if (!type) return Malformed(StrCat("tensor '", wire.name(), "': unknown datatype '", wire.datatype(), "'"));
  out.type = *type;
  out.shape.assign(wire.shape().begin(), wire.shape().end());
  return out;
}

}  // namespace

absl::Status EncodeGrpcInferRequest(const InferRequest& request, inference::ModelInferRequest* out) {
  out->Clear();
  out->set_model_name(request.model_name);
  out->set_model_version(request.model_version);
  out->set_id(request.id);
  Parameters parameters = request.parameters;
  if (request.priority != 0) parameters.Set("priority", static_cast<int64_t>(request.priority));
  EncodeParameters(parameters, out->mutable_parameters());
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& tensor = request.inputs[i];
    RETURN_IF_ERROR(ValidateTensorBytes(tensor));
    auto* input = out->add_inputs();
    input->set_name(tensor.name);
    input->set_datatype(std::string(DataTypeName(tensor.type)));
    for (int64_t dim : tensor.shape) input->add_shape(dim);
    if (i < request.input_parameters.size()) EncodeParameters(request.input_parameters[i], input->mutable_parameters());
    out->add_raw_input_contents(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
  }
  for (const RequestedOutput& requested : request.outputs) {
    auto* output = out->add_outputs();
    output->set_name(requested.name);
    Parameters output_parameters = requested.parameters;
    if (requested.classification > 0) {
      output_parameters.Set("classification", static_cast<int64_t>(requested.classification));
    }
    EncodeParameters(output_parameters, output->mutable_parameters());
  }
  return absl::OkStatus();
}

absl::StatusOr<InferResponse> DecodeGrpcInferResponse(std::shared_ptr<const inference::ModelInferResponse> message) {
  const inference::ModelInferResponse& m = *message;
  InferResponse response;
  response.model_name = m.model_name();
  response.model_version = m.model_version();
  response.id = m.id();
  DecodeParameters(m.parameters(), &response.parameters);
  const bool raw = m.raw_output_contents_size() > 0;
  if (raw && m.raw_output_contents_size() != m.outputs_size()) {
    return Malformed(StrCat(m.raw_output_contents_size(), " raw_output_contents for ", m.outputs_size(), " outputs"));
  }
  for (int i = 0; i < m.outputs_size(); ++i) {
    const auto& output = m.outputs(i);
    auto type = DataTypeFromName(output.datatype());
    if (!type) return Malformed(StrCat("output '", output.name(), "': unknown datatype '", output.datatype(), "'"));
    Shape shape(output.shape().begin(), output.shape().end());
    Tensor tensor;
    if (raw) {
      const std::string& bytes = m.raw_output_contents(i);
      tensor.name = output.name();
      tensor.type = *type;
      tensor.shape = std::move(shape);
      tensor.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
      tensor.holder = message;
    } else {
      auto bytes = ContentsBytes(*type, output.contents());
      if (!bytes) return Malformed(StrCat("output '", output.name(), "': ", output.datatype(), " sent as contents"));
      tensor = MakeOwnedTensor(output.name(), *type, std::move(shape), std::move(*bytes));
    }
    if (absl::Status valid = ValidateTensorBytes(tensor); !valid.ok()) return Malformed(ToStd(valid.message()));
    response.outputs.push_back(std::move(tensor));
  }
  return response;
}

absl::StatusOr<ModelMetadata> DecodeGrpcModelMetadata(const inference::ModelMetadataResponse& message) {
  ModelMetadata out;
  out.name = message.name();
  out.versions.assign(message.versions().begin(), message.versions().end());
  out.platform = message.platform();
  for (const auto& input : message.inputs()) {
    ASSIGN_OR_RETURN(TensorMetadata tensor, DecodeTensor(input));
    out.inputs.push_back(std::move(tensor));
  }
  for (const auto& output : message.outputs()) {
    ASSIGN_OR_RETURN(TensorMetadata tensor, DecodeTensor(output));
    out.outputs.push_back(std::move(tensor));
  }
  return out;
}

ServerMetadata DecodeGrpcServerMetadata(const inference::ServerMetadataResponse& message) {
  ServerMetadata out;
  out.name = message.name();
  out.version = message.version();
  out.extensions.assign(message.extensions().begin(), message.extensions().end());
  return out;
}

std::vector<ModelIndexEntry> DecodeGrpcRepositoryIndex(const inference::RepositoryIndexResponse& message) {
  std::vector<ModelIndexEntry> out;
  for (const auto& model : message.models()) {
    out.push_back({model.name(), model.version(), model.state(), model.reason()});
  }
  return out;
}

}  // namespace ortserve::client
