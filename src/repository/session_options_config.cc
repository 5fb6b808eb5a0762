// SPDX-License-Identifier: Apache-2.0
// ONNX Runtime session options from a model config: the `parameters` ORT
// knows, and one SessionOptions per instance of the instance groups
// (model_config.h).
#include <algorithm>
#include <charconv>

#include "core/status.h"
#include "core/strings.h"
#include "repository/config_parameters.h"
#include "repository/model_config.h"

namespace ortserve::repository {
namespace config_parameters {

absl::StatusOr<int> Int(const config::ModelConfig& config, const std::string& key, int fallback) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return fallback;
  const std::string& text = it->second.string_value();
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError(StrCat("model '", config.name(), "': parameter '", key,
                                             "' must be an integer, got '", text, "'"));
  }
  return value;
}

absl::StatusOr<bool> Bool(const config::ModelConfig& config, const std::string& key, bool fallback) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return fallback;
  const std::string& text = it->second.string_value();
  if (text == "1" || text == "true" || text == "True") return true;
  if (text == "0" || text == "false" || text == "False") return false;
  return absl::InvalidArgumentError(StrCat("model '", config.name(), "': parameter '", key,
                                           "' must be true or false, got '", text, "'"));
}

}  // namespace config_parameters

absl::StatusOr<backend::SessionOptions> SessionOptionsFromConfig(const ModelConfig& config,
                                                                 std::string model_path,
                                                                 std::vector<std::string>* warnings) {
  backend::SessionOptions options;
  options.model_path = std::move(model_path);
  ASSIGN_OR_RETURN(options.intra_op_threads, config_parameters::Int(config, "intra_op_thread_count", 0));
  ASSIGN_OR_RETURN(options.inter_op_threads, config_parameters::Int(config, "inter_op_thread_count", 0));
  ASSIGN_OR_RETURN(int mode, config_parameters::Int(config, "execution_mode", 0));
  options.execution_mode = mode == 1 ? backend::ExecutionMode::kParallel : backend::ExecutionMode::kSequential;
  ASSIGN_OR_RETURN(options.enable_cpu_mem_arena, config_parameters::Bool(config, "enable_mem_arena", true));
  ASSIGN_OR_RETURN(options.enable_mem_pattern, config_parameters::Bool(config, "enable_mem_pattern", true));
  // The device, and IoBinding's default, are per instance: InstanceSessionOptions.
  ASSIGN_OR_RETURN(options.io_binding, config_parameters::Bool(config, "io_binding", false));

  // Triton's ONNX Runtime backend: level -1 basic, 1 extended, otherwise all.
  switch (config.optimization().graph().level()) {
    case -1: options.graph_optimization = backend::GraphOptimization::kBasic; break;
    case 1: options.graph_optimization = backend::GraphOptimization::kExtended; break;
    default: options.graph_optimization = backend::GraphOptimization::kAll; break;
  }
  if (auto it = config.parameters().find("graph_optimization_level"); it != config.parameters().end()) {
    const std::string& level = it->second.string_value();
    if (level == "disabled") options.graph_optimization = backend::GraphOptimization::kDisabled;
    else if (level == "basic") options.graph_optimization = backend::GraphOptimization::kBasic;
    else if (level == "extended") options.graph_optimization = backend::GraphOptimization::kExtended;
    else if (level == "all") options.graph_optimization = backend::GraphOptimization::kAll;
    else {
      return absl::InvalidArgumentError(StrCat("model '", config.name(), "': graph_optimization_level '",
                                               level, "' is not one of disabled, basic, extended, all"));
    }
  }
  static constexpr std::string_view kKnown[] = {
      "intra_op_thread_count", "inter_op_thread_count", "execution_mode", "enable_mem_arena",
      "enable_mem_pattern", "graph_optimization_level", "io_binding"};
  for (const auto& [key, value] : config.parameters()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) != std::end(kKnown)) continue;
    if (key.rfind("text_pipeline.", 0) == 0) continue;  // Read by the text pipeline (pipeline/text_pipeline.h).
    if (key.rfind("session.", 0) == 0) {
      // ORT session config entries pass through, e.g. session.intra_op.allow_spinning.
      options.config_entries.emplace_back(key, value.string_value());
    } else if (key == "cuda.enable_cuda_graph") {
      // A captured CUDA graph replays the device addresses of its first run,
      // and ortserve binds each batch's inputs afresh (at addresses the arena
      // picks): replays could read another batch's inputs. Refuse rather than
      // answer wrongly, until inputs live in fixed device buffers.
      ASSIGN_OR_RETURN(bool graph, config_parameters::Bool(config, key, false));
      if (graph) {
        return absl::InvalidArgumentError(StrCat(
            "model '", config.name(), "': cuda.enable_cuda_graph is not supported: a CUDA graph replays fixed "
            "device addresses, but ortserve binds each batch's inputs anew, so replays could compute on stale "
            "inputs; remove the parameter or set it to \"0\""));
      }
    } else if (key.rfind("cuda.", 0) == 0) {
      options.gpu_provider_options.emplace_back(key.substr(5), value.string_value());
    } else if (warnings) {
      warnings->push_back(StrCat("model '", config.name(), "': parameter '", key,
                                 "' is not known to ortserve and is ignored"));
    }
  }
  return options;
}

absl::StatusOr<std::vector<backend::SessionOptions>> InstanceSessionOptions(const ModelConfig& config,
                                                                            const backend::SessionOptions& base) {
  // Each instance is a runner thread and usually a session of its own: a
  // count of many digits must fail the load, not take the server's memory.
  uint64_t total = 0;
  for (const auto& group : config.instance_group()) {
    const uint64_t devices = group.kind() == config::ModelInstanceGroup::KIND_GPU
                                 ? std::max<uint64_t>(1, static_cast<uint64_t>(group.gpus_size()))
                                 : 1;
    total += static_cast<uint64_t>(std::max(1, group.count())) * devices;
    if (total > kMaxInstances) {
      return absl::InvalidArgumentError(StrCat("model '", config.name(), "': instance_group asks for more than ",
                                               kMaxInstances, " instances (count x gpus, summed over groups)"));
    }
  }
  const bool io_binding_set = config.parameters().contains("io_binding");
  std::vector<backend::SessionOptions> instances;
  auto add = [&](backend::DeviceKind device, int gpu, int count) {
    backend::SessionOptions options = base;
    options.device = device;
    options.gpu_device_id = device == backend::DeviceKind::kGpu ? gpu : 0;
    if (!io_binding_set) options.io_binding = device == backend::DeviceKind::kGpu;
    for (int i = 0; i < std::max(1, count); ++i) instances.push_back(options);
  };
  for (const auto& group : config.instance_group()) {
    switch (group.kind()) {
      case config::ModelInstanceGroup::KIND_GPU:
        if (group.gpus().empty()) add(backend::DeviceKind::kGpu, 0, group.count());
        for (int gpu : group.gpus()) {
          if (gpu < 0) {
            return absl::InvalidArgumentError(
                StrCat("model '", config.name(), "': instance_group gpus has a negative GPU id ", gpu));
          }
          add(backend::DeviceKind::kGpu, gpu, group.count());
        }
        break;
      case config::ModelInstanceGroup::KIND_MODEL:
        return absl::InvalidArgumentError(
            StrCat("model '", config.name(), "': instance_group kind KIND_MODEL is not supported"));
      default:  // KIND_CPU, KIND_AUTO (CPU: ortserve picks no GPU on its own).
        add(backend::DeviceKind::kCpu, 0, group.count());
        break;
    }
  }
  if (instances.empty()) add(backend::DeviceKind::kCpu, 0, 1);
  return instances;
}

}  // namespace ortserve::repository
