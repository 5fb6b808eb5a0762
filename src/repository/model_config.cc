// SPDX-License-Identifier: Apache-2.0
#include "repository/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "repository/config_parameters.h"

namespace ortserve::repository {
namespace {

using google::protobuf::RepeatedField;

class WarningCollector final : public google::protobuf::io::ErrorCollector {
 public:
  WarningCollector(std::string_view source, std::vector<std::string>* warnings)
      : source_(source), warnings_(warnings) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_error_.empty()) {
      first_error_ = StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    if (warnings_) {
      warnings_->push_back(StrCat(source_, ":", line + 1, ":", column + 1, ": ", message,
                                  " (ignored: ortserve does not know this field)"));
    }
  }
  const std::string& first_error() const { return first_error_; }

 private:
  std::string source_;
  std::vector<std::string>* warnings_;
  std::string first_error_;
};

std::optional<DataType> ToDataType(config::DataType type) {
  return DataTypeFromConfigName(config::DataType_Name(type));
}

config::DataType ToConfigType(DataType type) {
  config::DataType out = config::TYPE_INVALID;
  config::DataType_Parse(std::string(DataTypeConfigName(type)), &out);
  return out;
}

template <typename Dims>
std::string DimsString(const Dims& dims) {
  return StrCat("[", StrJoin(dims, ","), "]");
}

// Two dims agree when equal or when either side is variable.
bool DimsCompatible(std::span<const int64_t> declared, std::span<const int64_t> model) {
  if (declared.size() != model.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i) {
    if (declared[i] != model[i] && declared[i] != -1 && model[i] != -1) return false;
  }
  return true;
}

// Completes and checks one config tensor (input or output) against the model.
template <typename ConfigTensor>
absl::Status CompleteTensor(std::string_view kind, const backend::TensorSpec& spec,
                            int max_batch_size, ConfigTensor* tensor) {
  if (tensor->data_type() == config::TYPE_INVALID) {
    tensor->set_data_type(ToConfigType(spec.type));
  } else if (ToDataType(tensor->data_type()) != spec.type) {
    return absl::InvalidArgumentError(
        StrCat(kind, " '", spec.name, "': config data_type ", config::DataType_Name(tensor->data_type()),
               " does not match the model's ", DataTypeConfigName(spec.type)));
  }
  std::span<const int64_t> model_dims(spec.dims.data(), spec.dims.size());
  if (max_batch_size > 0) {
    if (model_dims.empty() || (model_dims[0] != -1 && model_dims[0] < max_batch_size)) {
      return absl::InvalidArgumentError(StrCat(
          kind, " '", spec.name, "': max_batch_size is ", max_batch_size, " but the model's shape ",
          DimsString(spec.dims), " has no variable batch dimension"));
    }
    model_dims = model_dims.subspan(1);
  }
  if (tensor->dims_size() == 0 && !tensor->has_reshape()) {
    for (int64_t d : model_dims) tensor->add_dims(d);
  } else if (!tensor->has_reshape()) {
    std::span<const int64_t> declared(tensor->dims().data(), static_cast<size_t>(tensor->dims_size()));
    if (!DimsCompatible(declared, model_dims)) {
      return absl::InvalidArgumentError(StrCat(
          kind, " '", spec.name, "': config dims ", DimsString(declared),
          max_batch_size > 0 ? " (without the batch dimension)" : "",
          " do not match the model's ", DimsString(model_dims)));
    }
  }
  return absl::OkStatus();
}

void WarnUnsupported(const ModelConfig& config, std::string_view name, std::vector<std::string>* warnings) {
  auto warn = [&](std::string_view field) {
    if (warnings) {
      warnings->push_back(StrCat("model '", name, "': config field '", field,
                                 "' is not supported by ortserve and is ignored"));
    }
  };
  if (config.has_sequence_batching()) warn("sequence_batching");
  if (config.has_ensemble_scheduling()) warn("ensemble_scheduling");
  if (config.has_model_operations()) warn("model_operations");
  if (config.has_model_transaction_policy()) warn("model_transaction_policy");
  if (config.has_model_repository_agents()) warn("model_repository_agents");
  if (!config.cc_model_filenames().empty()) warn("cc_model_filenames");
  if (!config.metric_tags().empty()) warn("metric_tags");
  if (config.batch_input_size() > 0) warn("batch_input");
  if (config.batch_output_size() > 0) warn("batch_output");
  if (!config.runtime().empty()) warn("runtime");
  if (config.has_dynamic_batching()) {
    const auto& db = config.dynamic_batching();
    if (db.preserve_ordering()) warn("dynamic_batching.preserve_ordering");
    if (db.default_queue_policy().timeout_action() == config::ModelQueuePolicy::DELAY) {
      warn("dynamic_batching.default_queue_policy.timeout_action: DELAY");
    }
    if (!db.priority_queue_policy().empty()) warn("dynamic_batching.priority_queue_policy");
  }
  for (const auto& input : config.input()) {
    if (input.has_reshape()) warn(StrCat("input[", input.name(), "].reshape"));
    if (input.is_shape_tensor()) warn(StrCat("input[", input.name(), "].is_shape_tensor"));
    if (input.allow_ragged_batch()) warn(StrCat("input[", input.name(), "].allow_ragged_batch"));
    if (input.format() != config::ModelInput::FORMAT_NONE) warn(StrCat("input[", input.name(), "].format"));
  }
  for (const auto& output : config.output()) {
    if (output.has_reshape()) warn(StrCat("output[", output.name(), "].reshape"));
  }
  if (config.optimization().has_execution_accelerators()) warn("optimization.execution_accelerators");
}

}  // namespace

namespace {

// The path of the first string field of `message` holding invalid UTF-8
// ("parameters.key"), or "". Text format lets escapes ("\xff") put any bytes
// in a string; proto3 strings must be UTF-8 (serializing fails, JSON cannot
// carry them), so such a config is refused at parse time.
std::string FindInvalidUtf8Field(const google::protobuf::Message& message) {
  using google::protobuf::FieldDescriptor;
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      if (field->type() == FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const std::string& value = field->is_repeated()
                                       ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                                       : reflection->GetStringReference(message, field, &scratch);
        if (!IsValidUtf8(value)) return field->name();
      } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const auto& child = field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                                 : reflection->GetMessage(message, field);
        if (std::string inner = FindInvalidUtf8Field(child); !inner.empty()) return StrCat(field->name(), ".", inner);
      }
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view text, std::string_view source,
                                             std::vector<std::string>* warnings) {
  ModelConfig config;
  WarningCollector collector(source, warnings);
  google::protobuf::TextFormat::Parser parser;
  parser.AllowUnknownField(true);
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        collector.first_error().empty() ? StrCat(source, ": not a valid model config")
                                        : collector.first_error());
  }
  if (std::string field = FindInvalidUtf8Field(config); !field.empty()) {
    return absl::InvalidArgumentError(StrCat(source, ": field ", field, " is not valid UTF-8"));
  }
  return config;
}

// The ortserve extensions that need no model to check: routing, shadow,
// fallback, response cache.
absl::Status CheckExtensions(std::string_view model_name, ModelConfig* config, std::vector<std::string>* warnings) {
  const auto& routing = config->routing();
  for (int i = 0; i < routing.split_size(); ++i) {
    const auto& split = routing.split(i);
    if (split.version() <= 0) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': routing.split[", i, "].version must be > 0"));
    }
    if (!(split.weight() > 0) || !std::isfinite(split.weight())) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': routing.split[", i,
                                               "].weight must be a positive number, got ", split.weight()));
    }
    for (int j = 0; j < i; ++j) {
      if (routing.split(j).version() == split.version()) {
        return absl::InvalidArgumentError(StrCat("model '", model_name, "': routing.split names version ",
                                                 split.version(), " twice"));
      }
    }
  }
  if (!routing.sticky_header().empty() && !routing.sticky_parameter().empty()) {
    return absl::InvalidArgumentError(
        StrCat("model '", model_name, "': set routing.sticky_header or routing.sticky_parameter, not both"));
  }
  if (routing.has_shadow()) {
    const auto& shadow = routing.shadow();
    if (!(shadow.fraction() > 0 && shadow.fraction() <= 1)) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': routing.shadow.fraction must be in (0, 1], got ",
                                               shadow.fraction()));
    }
    if ((shadow.model().empty() || shadow.model() == model_name) && shadow.version() <= 0) {
      return absl::InvalidArgumentError(StrCat("model '", model_name,
                                               "': routing.shadow onto the model itself needs a version"));
    }
  }
  if (routing.fallback_model() == model_name && routing.fallback_version() <= 0) {
    return absl::InvalidArgumentError(StrCat("model '", model_name,
                                             "': routing.fallback_model names the model itself without a version"));
  }
  if (routing.fallback_model().empty() && routing.fallback_version() != 0) {
    return absl::InvalidArgumentError(
        StrCat("model '", model_name, "': routing.fallback_version needs routing.fallback_model"));
  }
  if (routing.has_circuit_breaker()) {
    const auto& breaker = routing.circuit_breaker();
    const std::string where = StrCat("model '", model_name, "': routing.circuit_breaker.");
    auto rate_ok = [](double rate) { return rate == 0 || (rate > 0 && rate <= 1); };
    if (!rate_ok(breaker.error_rate())) {
      return absl::InvalidArgumentError(StrCat(where, "error_rate must be in (0, 1], got ", breaker.error_rate()));
    }
    if (!rate_ok(breaker.slow_call_rate())) {
      return absl::InvalidArgumentError(
          StrCat(where, "slow_call_rate must be in (0, 1], got ", breaker.slow_call_rate()));
    }
    constexpr uint64_t kHourMs = 3600000;
    for (auto [name, value] : {std::pair<const char*, uint64_t>{"window_ms", breaker.window_ms()},
                               {"open_ms", breaker.open_ms()}, {"slow_call_ms", breaker.slow_call_ms()}}) {
      if (value > kHourMs) {
        return absl::InvalidArgumentError(StrCat(where, name, " must be at most ", kHourMs, ", got ", value));
      }
    }
    if (breaker.min_requests() > 1000000) {
      return absl::InvalidArgumentError(
          StrCat(where, "min_requests must be at most 1000000, got ", breaker.min_requests()));
    }
    if (breaker.half_open_requests() > 1000) {
      return absl::InvalidArgumentError(
          StrCat(where, "half_open_requests must be at most 1000, got ", breaker.half_open_requests()));
    }
  }
  if (config->response_cache().enable() && config->nondeterministic()) {
    if (warnings) {
      warnings->push_back(StrCat("model '", model_name,
                                 "': response_cache is off because the model is declared nondeterministic"));
    }
    config->mutable_response_cache()->set_enable(false);
  }
  return absl::OkStatus();
}

absl::Status CompleteModelConfig(std::string_view model_name, const backend::ModelSignature& model,
                                 ModelConfig* config, std::vector<std::string>* warnings) {
  RETURN_IF_ERROR(CheckExtensions(model_name, config, warnings));
  if (config->name().empty()) {
    config->set_name(std::string(model_name));
  } else if (config->name() != model_name) {
    return absl::InvalidArgumentError(StrCat("config name '", config->name(),
                                             "' differs from the model's directory name '", model_name, "'"));
  }
  const bool remote = config->platform() == "remote";  // Issue 26: served by another server.
  if (!remote && !config->platform().empty() && config->platform() != "onnxruntime_onnx") {
    return absl::InvalidArgumentError(StrCat("model '", model_name, "': platform '", config->platform(),
                                             "' is not supported; ortserve serves onnxruntime_onnx and remote"));
  }
  if (!config->backend().empty() && config->backend() != (remote ? "remote" : "onnxruntime")) {
    return absl::InvalidArgumentError(StrCat("model '", model_name, "': backend '", config->backend(),
                                             "' is not supported; ortserve serves onnxruntime"));
  }
  if (!remote && config->has_remote()) {
    return absl::InvalidArgumentError(StrCat("model '", model_name, "': a remote block needs platform \"remote\""));
  }
  config->set_platform(remote ? "remote" : "onnxruntime_onnx");
  config->set_backend(remote ? "remote" : "onnxruntime");
  if (config->max_batch_size() < 0) {
    return absl::InvalidArgumentError(StrCat("model '", model_name, "': max_batch_size must be >= 0"));
  }

  // Triton's auto-complete: a model that can batch, described by no config,
  // gets max_batch_size 4 and dynamic batching.
  if (config->input_size() == 0 && config->output_size() == 0 && config->max_batch_size() == 0) {
    bool batchable = !model.inputs.empty();
    for (const auto* list : {&model.inputs, &model.outputs}) {
      for (const auto& spec : *list) {
        if (spec.dims.empty() || spec.dims[0] != -1) batchable = false;
      }
    }
    if (batchable) {
      config->set_max_batch_size(4);
      if (!config->has_dynamic_batching()) config->mutable_dynamic_batching();
    }
  }

  for (auto& input : *config->mutable_input()) {
    const backend::TensorSpec* spec = model.FindInput(input.name());
    if (spec == nullptr) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': config input '", input.name(),
                                               "' is not an input of the model"));
    }
  }
  for (const auto& spec : model.inputs) {
    auto it = std::find_if(config->mutable_input()->begin(), config->mutable_input()->end(),
                           [&](const auto& in) { return in.name() == spec.name; });
    config::ModelInput* input = it != config->mutable_input()->end() ? &*it : nullptr;
    if (input == nullptr) {
      input = config->add_input();
      input->set_name(spec.name);
    }
    RETURN_IF_ERROR(CompleteTensor("input", spec, config->max_batch_size(), input));
  }
  for (auto& output : *config->mutable_output()) {
    const backend::TensorSpec* spec = model.FindOutput(output.name());
    if (spec == nullptr) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': config output '", output.name(),
                                               "' is not an output of the model"));
    }
    RETURN_IF_ERROR(CompleteTensor("output", *spec, config->max_batch_size(), &output));
  }
  if (config->output_size() == 0) {
    for (const auto& spec : model.outputs) {
      auto* output = config->add_output();
      output->set_name(spec.name);
      RETURN_IF_ERROR(CompleteTensor("output", spec, config->max_batch_size(), output));
    }
  }
  if (config->instance_group_size() == 0) {
    auto* group = config->add_instance_group();
    group->set_kind(config::ModelInstanceGroup::KIND_CPU);
    group->set_count(1);
  }
  for (auto& group : *config->mutable_instance_group()) {
    if (group.count() <= 0) group.set_count(1);
    if (group.kind() == config::ModelInstanceGroup::KIND_AUTO) group.set_kind(config::ModelInstanceGroup::KIND_CPU);
    if (group.kind() == config::ModelInstanceGroup::KIND_MODEL) {
      return absl::InvalidArgumentError(
          StrCat("model '", model_name, "': instance_group kind KIND_MODEL is not supported"));
    }
  }
  if (config->has_dynamic_batching()) {
    if (config->max_batch_size() == 0) {
      if (warnings) {
        warnings->push_back(StrCat("model '", model_name,
                                   "': dynamic_batching is ignored because max_batch_size is 0"));
      }
      config->clear_dynamic_batching();
    } else {
      for (int size : config->dynamic_batching().preferred_batch_size()) {
        if (size <= 0 || size > config->max_batch_size()) {
          return absl::InvalidArgumentError(
              StrCat("model '", model_name, "': preferred_batch_size ", size,
                     " must be between 1 and max_batch_size ", config->max_batch_size()));
        }
      }
      // Times become signed microseconds: past an hour (a typo of many
      // digits, or a value past int64 that would turn negative) fail the load.
      constexpr uint64_t kHourUs = uint64_t{3600} * 1000 * 1000;
      const auto& db = config->dynamic_batching();
      for (const auto& [field, value] :
           {std::pair<const char*, uint64_t>{"max_queue_delay_microseconds", db.max_queue_delay_microseconds()},
            {"default_queue_policy.default_timeout_microseconds",
             db.default_queue_policy().default_timeout_microseconds()},
            {"latency_target_microseconds", db.latency_target_microseconds()}}) {
        if (value > kHourUs) {
          return absl::InvalidArgumentError(StrCat("model '", model_name, "': dynamic_batching ", field, " ", value,
                                                   " is more than an hour (", kHourUs, ")"));
        }
      }
      // Each level is a queue: a typo of many digits must fail the load, not
      // take the server's memory.
      if (config->dynamic_batching().priority_levels() > kMaxPriorityLevels) {
        return absl::InvalidArgumentError(
            StrCat("model '", model_name, "': dynamic_batching priority_levels ",
                   config->dynamic_batching().priority_levels(), " is more than the ", kMaxPriorityLevels,
                   " ortserve supports"));
      }
    }
  }
  // Warm-up runs before the version serves, on a loader thread: bound what
  // a config (which explicit mode accepts from any client with model
  // control) can make it do.
  if (config->model_warmup_size() > kMaxWarmupEntries) {
    return absl::InvalidArgumentError(StrCat("model '", model_name, "': ", config->model_warmup_size(),
                                             " model_warmup entries, more than ", kMaxWarmupEntries));
  }
  for (const auto& warmup : config->model_warmup()) {
    if (warmup.count() > kMaxWarmupCount) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': model_warmup '", warmup.name(),
                                               "' count ", warmup.count(), " is more than ", kMaxWarmupCount));
    }
    // batch_size is unsigned: only the upper bound can be broken.
    if (config->max_batch_size() > 0 && warmup.batch_size() > static_cast<uint32_t>(config->max_batch_size())) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': model_warmup '", warmup.name(),
                                               "' batch_size ", warmup.batch_size(),
                                               " must be between 0 and max_batch_size ", config->max_batch_size()));
    }
  }
  for (const char* key : {"intra_op_thread_count", "inter_op_thread_count"}) {
    ASSIGN_OR_RETURN(int threads, config_parameters::Int(*config, key, 0));
    if (threads < 0 || threads > kMaxOrtThreads) {
      return absl::InvalidArgumentError(StrCat("model '", model_name, "': parameter '", key, "' ", threads,
                                               " is not between 0 and ", kMaxOrtThreads));
    }
  }
  if (!config->has_version_policy()) config->mutable_version_policy()->mutable_latest()->set_num_versions(1);
  WarnUnsupported(*config, model_name, warnings);
  return absl::OkStatus();
}

Shape ServedShape(const ModelConfig& config, const RepeatedField<int64_t>& dims) {
  Shape shape;
  if (config.max_batch_size() > 0) shape.push_back(-1);
  for (int64_t d : dims) shape.push_back(d);
  return shape;
}

std::string ModelConfigToJson(const ModelConfig& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(config, &json, options);

  // Proto3 JSON writes 64-bit integers as strings; Triton's clients expect
  // numbers (dims, delays, versions), so rewrite them.
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError()) return json;
  static constexpr std::string_view kInt64Fields[] = {
      "dims", "shape", "versions", "max_queue_delay_microseconds", "priority_levels",
      "default_priority_level", "default_timeout_microseconds", "latency_target_microseconds"};
  auto fix = [&](auto& self, rapidjson::Value& value) -> void {
    if (value.IsObject()) {
      for (auto& member : value.GetObject()) {
        std::string_view key(member.name.GetString(), member.name.GetStringLength());
        const bool numeric = std::find(std::begin(kInt64Fields), std::end(kInt64Fields), key) !=
                             std::end(kInt64Fields);
        auto to_number = [&](rapidjson::Value& v) {
          if (!v.IsString()) return;
          int64_t n = 0;
          const char* s = v.GetString();
          auto [end, ec] = std::from_chars(s, s + v.GetStringLength(), n);
          if (ec == std::errc() && end == s + v.GetStringLength()) v.SetInt64(n);
        };
        if (numeric && member.value.IsArray()) {
          for (auto& element : member.value.GetArray()) to_number(element);
        } else if (numeric) {
          to_number(member.value);
        } else {
          self(self, member.value);
        }
      }
    } else if (value.IsArray()) {
      for (auto& element : value.GetArray()) self(self, element);
    }
  };
  fix(fix, doc);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace ortserve::repository
