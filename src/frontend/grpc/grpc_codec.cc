// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/grpc_codec.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "core/status.h"
#include "core/strings.h"
#include "frontend/kserve/classification.h"
#include "frontend/kserve/reserved_parameters.h"
#include "frontend/shared_memory.h"

namespace ortserve::frontend {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}

std::string_view ContentsFieldFor(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return "uint_contents";
    case DataType::kUint64: return "uint64_contents";
    case DataType::kFp32: return "fp32_contents";
    case DataType::kFp64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    default: return "";
  }
}

// How many values each contents field holds, by field name.
std::vector<std::pair<std::string_view, int>> ContentsCounts(const InferTensorContents& c) {
  return {{"bool_contents", c.bool_contents_size()},     {"int_contents", c.int_contents_size()},
          {"int64_contents", c.int64_contents_size()},   {"uint_contents", c.uint_contents_size()},
          {"uint64_contents", c.uint64_contents_size()}, {"fp32_contents", c.fp32_contents_size()},
          {"fp64_contents", c.fp64_contents_size()},     {"bytes_contents", c.bytes_contents_size()}};
}

// Appends `values` narrowed to T (range-checked) to `out`.
template <typename T, typename Wire>
absl::Status AppendNarrowed(const google::protobuf::RepeatedField<Wire>& values, std::string_view tensor,
                            DataType type, std::vector<std::byte>* out) {
  out->resize(values.size() * sizeof(T));
  auto* dst = reinterpret_cast<T*>(out->data());
  for (int i = 0; i < values.size(); ++i) {
    const Wire v = values[i];
    if (v < static_cast<Wire>(std::numeric_limits<T>::min()) ||
        v > static_cast<Wire>(std::numeric_limits<T>::max())) {
      return Invalid("input '", tensor, "': contents value ", v, " at index ", i, " is out of range for ",
                     DataTypeName(type));
    }
    dst[i] = static_cast<T>(v);
  }
  return absl::OkStatus();
}

template <typename T>
void AppendSame(const google::protobuf::RepeatedField<T>& values, std::vector<std::byte>* out) {
  out->resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out->data(), values.data(), out->size());
}

// Converts an input's typed contents into the tensor byte layout.
absl::StatusOr<std::vector<std::byte>> ContentsToBytes(const InferTensorContents& contents, std::string_view name,
                                                       DataType type, const Shape& shape, int64_t count) {
  const std::string_view field = ContentsFieldFor(type);
  if (field.empty()) {
    return Invalid("input '", name, "' has datatype ", DataTypeName(type),
                   ", which has no contents field; send it in raw_input_contents");
  }
  int64_t have = 0;
  for (const auto& [other, n] : ContentsCounts(contents)) {
    if (other == field) {
      have = n;
    } else if (n > 0) {
      return Invalid("input '", name, "' has datatype ", DataTypeName(type), " but sets contents.", other,
                     "; use contents.", field);
    }
  }
  if (have != count) {
    return Invalid("input '", name, "' with shape ", ShapeToString(shape), " needs ", count,
                   " values in contents.", field, ", got ", have);
  }
  std::vector<std::byte> bytes;
  switch (type) {
    case DataType::kBool: {
      bytes.resize(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        bytes[i] = static_cast<std::byte>(contents.bool_contents(static_cast<int>(i)) ? 1 : 0);
      }
      break;
    }
    case DataType::kInt8:
      RETURN_IF_ERROR(AppendNarrowed<int8_t>(contents.int_contents(), name, type, &bytes));
      break;
    case DataType::kInt16:
      RETURN_IF_ERROR(AppendNarrowed<int16_t>(contents.int_contents(), name, type, &bytes));
      break;
    case DataType::kInt32: AppendSame(contents.int_contents(), &bytes); break;
    case DataType::kInt64: AppendSame(contents.int64_contents(), &bytes); break;
    case DataType::kUint8:
      RETURN_IF_ERROR(AppendNarrowed<uint8_t>(contents.uint_contents(), name, type, &bytes));
      break;
    case DataType::kUint16:
      RETURN_IF_ERROR(AppendNarrowed<uint16_t>(contents.uint_contents(), name, type, &bytes));
      break;
    case DataType::kUint32: AppendSame(contents.uint_contents(), &bytes); break;
    case DataType::kUint64: AppendSame(contents.uint64_contents(), &bytes); break;
    case DataType::kFp32: AppendSame(contents.fp32_contents(), &bytes); break;
    case DataType::kFp64: AppendSame(contents.fp64_contents(), &bytes); break;
    case DataType::kBytes:
      for (const std::string& element : contents.bytes_contents()) AppendBytesElement(element, &bytes);
      break;
    default: break;
  }
  return bytes;
}

void Duration(const DurationStat& stat, inference::StatisticDuration* out) {
  out->set_count(stat.count());
  out->set_ns(stat.ns());
}

}  // namespace

absl::Status DecodeParameters(const google::protobuf::Map<std::string, InferParameter>& wire, std::string_view where,
                              Parameters* out) {
  std::vector<const google::protobuf::MapPair<std::string, InferParameter>*> sorted;
  sorted.reserve(wire.size());
  for (const auto& entry : wire) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* entry : sorted) {
    const InferParameter& p = entry->second;
    switch (p.parameter_choice_case()) {
      case InferParameter::kBoolParam: out->Set(entry->first, p.bool_param()); break;
      case InferParameter::kInt64Param: out->Set(entry->first, static_cast<int64_t>(p.int64_param())); break;
      case InferParameter::kStringParam: out->Set(entry->first, p.string_param()); break;
      case InferParameter::kDoubleParam: out->Set(entry->first, p.double_param()); break;
      case InferParameter::kUint64Param: out->Set(entry->first, static_cast<uint64_t>(p.uint64_param())); break;
      default: return Invalid(where, " parameter '", entry->first, "' has no value");
    }
  }
  return absl::OkStatus();
}

void EncodeParameters(const Parameters& parameters, google::protobuf::Map<std::string, InferParameter>* out) {
  for (const auto& [key, value] : parameters) {
    InferParameter& p = (*out)[key];
    std::visit(
        [&p](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            p.set_bool_param(v);
          } else if constexpr (std::is_same_v<V, int64_t>) {
            p.set_int64_param(v);
          } else if constexpr (std::is_same_v<V, uint64_t>) {
            p.set_uint64_param(v);
          } else if constexpr (std::is_same_v<V, double>) {
            p.set_double_param(v);
          } else {
            p.set_string_param(v);
          }
        },
        value);
  }
}

absl::StatusOr<InferRequest> DecodeModelInferRequest(std::shared_ptr<const ModelInferRequest> message,
                                                     absl::Time now) {
  const ModelInferRequest& wire = *message;
  InferRequest request;
  request.model_name = wire.model_name();
  request.model_version = wire.model_version();
  request.id = wire.id();
  request.arrival = now;
  RETURN_IF_ERROR(DecodeParameters(wire.parameters(), "request", &request.parameters));
  RETURN_IF_ERROR(ReadRequestParameters(now, &request));
  request.binary_data_output = true;  // gRPC always answers in raw_output_contents.

  // Inputs in shared memory (their parameters name a region, resolved by
  // the front end) have no entry in raw_input_contents.
  int in_shared_memory = 0;
  for (const auto& input : wire.inputs()) in_shared_memory += input.parameters().count(std::string(kShmRegion)) > 0 ? 1 : 0;
  const int raw_count = wire.raw_input_contents_size();
  if (raw_count > 0 && raw_count != wire.inputs_size() - in_shared_memory) {
    return Invalid("raw_input_contents has ", raw_count, " entries but the request has ",
                   wire.inputs_size() - in_shared_memory,
                   " inputs outside shared memory; send one entry per input, in input order");
  }
  int raw_index = 0;
  request.inputs.reserve(wire.inputs_size());
  request.input_parameters.resize(wire.inputs_size());
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& input = wire.inputs(i);
    if (input.name().empty()) return Invalid("inputs[", i, "] has no name");
    const std::string& name = input.name();
    std::optional<DataType> type = DataTypeFromName(input.datatype());
    if (!type) return Invalid("input '", name, "' has unknown datatype '", input.datatype(), "'");
    Tensor tensor;
    tensor.name = name;
    tensor.type = *type;
    for (int64_t d : input.shape()) {
      if (d < 0) return Invalid("input '", name, "' has negative dimension ", d, " in shape");
      tensor.shape.push_back(d);
    }
    auto count = ElementCount(tensor.shape);
    if (!count.ok()) return Invalid("input '", name, "': ", ToStd(count.status().message()));
    if (!input.parameters().empty()) {
      RETURN_IF_ERROR(DecodeParameters(input.parameters(), StrCat("input '", name, "'"), &request.input_parameters[i]));
    }
    if (NamesSharedMemory(request.input_parameters[i])) {
      if (input.has_contents()) return Invalid("input '", name, "' sets contents and names a shared memory region");
    } else if (raw_count > 0) {
      if (input.has_contents()) {
        return Invalid("input '", name, "' sets contents while the request uses raw_input_contents; use one");
      }
      const std::string& raw = wire.raw_input_contents(raw_index++);
      tensor.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(raw.data()), raw.size());
      tensor.holder = message;
    } else {
      if (!input.has_contents()) {
        return Invalid("input '", name, "' has no data: set its contents or send raw_input_contents");
      }
      ASSIGN_OR_RETURN(std::vector<std::byte> bytes,
                       ContentsToBytes(input.contents(), name, *type, tensor.shape, *count));
      Tensor owned = MakeOwnedTensor(name, *type, tensor.shape, std::move(bytes));
      tensor.data = owned.data;
      tensor.holder = std::move(owned.holder);
    }
    request.inputs.push_back(std::move(tensor));
  }

  for (int i = 0; i < wire.outputs_size(); ++i) {
    const auto& wanted = wire.outputs(i);
    if (wanted.name().empty()) return Invalid("outputs[", i, "] has no name");
    for (const auto& previous : request.outputs) {
      if (previous.name == wanted.name()) return Invalid("output '", wanted.name(), "' is requested more than once");
    }
    RequestedOutput output;
    output.name = wanted.name();
    if (!wanted.parameters().empty()) {
      RETURN_IF_ERROR(DecodeParameters(wanted.parameters(), StrCat("output '", output.name, "'"), &output.parameters));
    }
    RETURN_IF_ERROR(ReadOutputParameters(&output));
    output.binary_data = true;
    request.outputs.push_back(std::move(output));
  }
  request.payload = std::move(message);
  return request;
}

absl::Status EncodeModelInferResponse(const InferResponse& response, const InferRequest& request,
                                      const EncodeOptions& options, inference::ModelInferResponse* out) {
  out->Clear();
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  out->set_id(response.id);
  EncodeParameters(response.parameters, out->mutable_parameters());

  SelectedOutputs selected;
  RETURN_IF_ERROR(SelectOutputs(response, request, &selected));
  std::vector<std::byte> classes;  // Made only for classification outputs.
  Shape classes_shape;
  for (const SelectedOutput& item : selected) {
    const Tensor& tensor = *item.tensor;
    auto* output = out->add_outputs();
    output->set_name(tensor.name);
    std::string* raw = out->add_raw_output_contents();
    if (item.shared_memory) {  // Its data is in the region; its entry in raw_output_contents stays empty.
      output->set_datatype(std::string(DataTypeName(tensor.type)));
      for (int64_t d : tensor.shape) output->add_shape(d);
      Parameters parameters = item.requested->parameters;
      parameters.Set(std::string(kShmByteSize), static_cast<int64_t>(tensor.data.size()));
      EncodeParameters(parameters, output->mutable_parameters());
      continue;
    }
    if (item.classification > 0) {
      std::span<const std::string> labels;
      if (options.labels) labels = options.labels(tensor.name);
      RETURN_IF_ERROR(Classify(tensor, item.classification, labels, &classes, &classes_shape));
      output->set_datatype(std::string(DataTypeName(DataType::kBytes)));
      for (int64_t d : classes_shape) output->add_shape(d);
      raw->assign(reinterpret_cast<const char*>(classes.data()), classes.size());
      EncodeParameters(item.requested->parameters, output->mutable_parameters());
      continue;
    }
    if (absl::Status status = ValidateTensorBytes(tensor); !status.ok()) {
      return absl::InternalError(StrCat("output '", tensor.name, "' is malformed: ", ToStd(status.message())));
    }
    output->set_datatype(std::string(DataTypeName(tensor.type)));
    for (int64_t d : tensor.shape) output->add_shape(d);
    raw->assign(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
  }
  return absl::OkStatus();
}

void EncodeServerMetadata(const std::vector<std::string>& extensions, inference::ServerMetadataResponse* out) {
  out->set_name(std::string(InferenceService::kServerName));
  out->set_version(std::string(InferenceService::ServerVersion()));
  for (const auto& extension : extensions) out->add_extensions(extension);
}

void EncodeModelMetadata(const ModelMetadata& metadata, inference::ModelMetadataResponse* out) {
  out->set_name(metadata.name);
  for (const auto& v : metadata.versions) out->add_versions(v);
  out->set_platform(metadata.platform);
  auto tensors = [](const std::vector<TensorMetadata>& from, auto* to) {
    for (const auto& t : from) {
      auto* tensor = to->Add();
      tensor->set_name(t.name);
      tensor->set_datatype(std::string(DataTypeName(t.type)));
      for (int64_t d : t.shape) tensor->add_shape(d);
    }
  };
  tensors(metadata.inputs, out->mutable_inputs());
  tensors(metadata.outputs, out->mutable_outputs());
}

void EncodeModelStatistics(const std::vector<ModelHandle>& models, inference::ModelStatisticsResponse* out) {
  for (const auto& model : models) {
    const ModelStats& s = *model->stats;
    auto* m = out->add_model_stats();
    m->set_name(model->name);
    m->set_version(model->version_string);
    m->set_last_inference(static_cast<uint64_t>(s.last_inference_ms.load(std::memory_order_relaxed)));
    m->set_inference_count(s.inference_count.load(std::memory_order_relaxed));
    m->set_execution_count(s.execution_count.load(std::memory_order_relaxed));
    auto* stats = m->mutable_inference_stats();
    Duration(s.success, stats->mutable_success());
    Duration(s.fail, stats->mutable_fail());
    Duration(s.queue, stats->mutable_queue());
    Duration(s.compute_input, stats->mutable_compute_input());
    Duration(s.compute_infer, stats->mutable_compute_infer());
    Duration(s.compute_output, stats->mutable_compute_output());
    Duration(s.cache_hit, stats->mutable_cache_hit());
    Duration(s.cache_miss, stats->mutable_cache_miss());
    for (size_t size = 1; size <= s.max_tracked_batch(); ++size) {
      const BatchSizeStats& b = s.batch(size);
      if (b.compute_infer.count() == 0) continue;
      auto* batch = m->add_batch_stats();
      batch->set_batch_size(size);
      Duration(b.compute_input, batch->mutable_compute_input());
      Duration(b.compute_infer, batch->mutable_compute_infer());
      Duration(b.compute_output, batch->mutable_compute_output());
    }
  }
}

void EncodeRepositoryIndex(const std::vector<repository::ModelIndexEntry>& index, bool ready_only,
                           inference::RepositoryIndexResponse* out) {
  for (const auto& entry : index) {
    if (ready_only && entry.state != repository::ModelState::kReady) continue;
    auto* model = out->add_models();
    model->set_name(entry.name);
    model->set_version(entry.version);
    model->set_state(std::string(repository::ModelStateName(entry.state)));
    model->set_reason(entry.reason);
  }
}

}  // namespace ortserve::frontend
