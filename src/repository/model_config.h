// SPDX-License-Identifier: Apache-2.0
// Model configuration: parsing config.pbtxt, completing it from the model, and
// turning it into session and scheduler options.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "proto/model_config.pb.h"

namespace ortserve::repository {

using config::ModelConfig;

// Parses protobuf text format. Fields Triton has and ortserve does not act on,
// and unknown fields, are appended to `warnings` by name (the config still
// loads). Errors: InvalidArgument with the line and column of a syntax error.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view text, std::string_view source,
                                             std::vector<std::string>* warnings);

// Limits CompleteModelConfig (priority levels) and InstanceSessionOptions
// (instances) enforce, so that a config typo fails the load with a clear
// error instead of exhausting memory.
inline constexpr uint32_t kMaxPriorityLevels = 1024;
inline constexpr uint64_t kMaxInstances = 64;  // Per model version, over all groups.
// Bounds on what a config may ask of the loader (issue #14: a config
// override in a load request comes from a client).
inline constexpr int kMaxWarmupEntries = 64;    // model_warmup entries.
inline constexpr uint32_t kMaxWarmupCount = 1000;  // Runs of one entry.
inline constexpr int kMaxOrtThreads = 256;      // intra_op_thread_count, inter_op_thread_count.

// Completes `config` from the model's own signature, as Triton's auto-complete
// does: name, platform, missing inputs/outputs and their types and dims, and
// max_batch_size (4, with dynamic batching, when every input and output has a
// variable first dimension and the config said nothing). Checks what the
// config declares against the model: unknown tensor names, type mismatches,
// incompatible dims. Errors: InvalidArgument naming the tensor and field.
absl::Status CompleteModelConfig(std::string_view model_name, const backend::ModelSignature& model,
                                 ModelConfig* config, std::vector<std::string>* warnings);

// Session options from the config's `parameters` and `optimization`, for
// a CPU instance; InstanceSessionOptions places each instance (Triton's ONNX
// Runtime backend parameter names:
// intra_op_thread_count, inter_op_thread_count, execution_mode,
// enable_mem_arena, enable_mem_pattern). Errors: InvalidArgument for a value
// that does not parse.
absl::StatusOr<backend::SessionOptions> SessionOptionsFromConfig(const ModelConfig& config,
                                                                 std::string model_path,
                                                                 std::vector<std::string>* warnings);

// One SessionOptions per model instance, in instance order, as Triton places
// them: each `instance_group` adds `count` instances of its kind, and a
// KIND_GPU group adds `count` instances on each GPU of its `gpus` (GPU 0 when
// the list is empty; Triton would use every visible GPU). A GPU instance runs
// through IoBinding unless the `io_binding` parameter says otherwise; a CPU
// instance never unless it says so. `base` is SessionOptionsFromConfig's
// result. No group: one CPU instance. Errors: InvalidArgument for a negative
// GPU id or a KIND_MODEL group.
absl::StatusOr<std::vector<backend::SessionOptions>> InstanceSessionOptions(const ModelConfig& config,
                                                                            const backend::SessionOptions& base);

// The shape a request tensor must have, as clients see it: the config's dims,
// with a leading -1 batch dimension when max_batch_size > 0.
Shape ServedShape(const ModelConfig& config, const google::protobuf::RepeatedField<int64_t>& dims);

// The config as Triton-shaped JSON (the REST `config` endpoint).
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace ortserve::repository
