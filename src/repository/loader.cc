// SPDX-License-Identifier: Apache-2.0
#include "repository/loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "backend/remote/remote_model.h"
#include "core/status.h"
#include "generation/generation_config.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "pipeline/text_pipeline.h"
#include "repository/version_remote.h"
#include "repository/warmup.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Bytes of every regular file under `dir` (the version folder: model.onnx and
// its external data). Unreadable entries count as 0: an estimate.
uint64_t FolderBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec) || file_ec) continue;
    const uintmax_t size = it->file_size(file_ec);
    if (!file_ec) total += size;
  }
  return total;
}

absl::StatusOr<scheduler::SchedulerOptions> SchedulerOptionsFrom(const ModelVersion& version) {
  const ModelConfig& config = version.config;
  scheduler::SchedulerOptions options;
  options.model_name = version.name;
  options.model_version = version.version_string;
  options.max_batch_size = config.max_batch_size();
  if (config.has_dynamic_batching()) {
    const auto& db = config.dynamic_batching();
    options.dynamic_batching = true;
    options.preferred_batch_sizes.assign(db.preferred_batch_size().begin(), db.preferred_batch_size().end());
    options.max_queue_delay = absl::Microseconds(static_cast<int64_t>(db.max_queue_delay_microseconds()));
    options.max_queue_size = db.default_queue_policy().max_queue_size();
    options.priority_levels = static_cast<uint32_t>(db.priority_levels());
    options.default_priority_level = static_cast<uint32_t>(db.default_priority_level());
    options.default_timeout =
        absl::Microseconds(static_cast<int64_t>(db.default_queue_policy().default_timeout_microseconds()));
    options.allow_timeout_override = db.default_queue_policy().allow_timeout_override() ||
                                     db.default_queue_policy().default_timeout_microseconds() == 0;
    options.pad_variable_dims = db.pad_variable_dims();
    options.pad_value = db.pad_value();
    if (db.max_padded_batch_bytes() > 0) options.max_padded_batch_bytes = db.max_padded_batch_bytes();
    // CompleteModelConfig refused times past an hour.
    options.latency_target = absl::Microseconds(static_cast<int64_t>(db.latency_target_microseconds()));
    options.run_when_idle = !db.wait_when_idle();
  }
  // Text pipelines: a token budget per batch, measured on dim 1 ([batch, seq]).
  options.max_batch_tokens = config.text_pipeline().max_batch_tokens();
  options.sequence_axis = 1;
  options.stats = version.stats.get();
  options.metrics = version.metrics;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionLoader>> SessionLoader::Create(Options options) {
  if (options.session_factory == nullptr) return absl::InvalidArgumentError("SessionLoader needs a session factory");
  return std::unique_ptr<SessionLoader>(new SessionLoader(std::move(options)));
}

SessionLoader::SessionLoader(Options options)
    : options_(std::move(options)), clock_(options_.clock != nullptr ? options_.clock : Clock::Real()) {}

absl::StatusOr<std::unique_ptr<ModelVersion>> SessionLoader::Load(const LoadSpec& spec) {
  const std::string& name = spec.name;
  const std::string& model_dir = spec.model_dir;
  const int64_t version = spec.version;
  // A version folder with remote.pbtxt is a remote version of a model
  // whose other versions may be local (version_remote.h).
  ASSIGN_OR_RETURN(std::optional<ModelConfig> version_remote, VersionRemoteConfig(*spec.config, model_dir, version));
  const ModelConfig& base_config = version_remote ? *version_remote : *spec.config;
  const uint64_t files_fingerprint = spec.files_fingerprint;
  const ModelHandle& previous = spec.previous;
  backend::CancelToken never;
  backend::CancelToken& cancel = spec.cancel != nullptr ? *spec.cancel : never;

  RETURN_IF_ERROR(cancel.status());
  const absl::Time load_start = clock_->Now();
  const std::string filename =
      base_config.default_model_filename().empty() ? "model.onnx" : base_config.default_model_filename();
  const std::string path = (fs::path(model_dir) / std::to_string(version) / filename).string();

  std::vector<std::string> warnings;
  // A remote model (issue 26): sessions that forward to another server; its
  // tensors come from the remote. Never reused: the remote block may change.
  const bool remote = base_config.platform() == "remote";
  std::vector<std::shared_ptr<backend::Session>> remote_sessions;
  std::vector<backend::SessionOptions> instance_options;
  if (remote) {
    backend::remote::RemoteLoadOptions remote_options{
        .model = name,
        .version = std::to_string(version),
        .registry = options_.metrics != nullptr ? options_.metrics->registry().get() : nullptr,
        .clock = clock_};
    ASSIGN_OR_RETURN(backend::remote::RemoteLoad load, backend::remote::LoadRemoteModel(base_config, remote_options));
    remote_sessions = std::move(load.sessions);
    instance_options.resize(remote_sessions.size());
  } else {
    ASSIGN_OR_RETURN(backend::SessionOptions session_options,
                     SessionOptionsFromConfig(base_config, path, &warnings));
    ASSIGN_OR_RETURN(instance_options, InstanceSessionOptions(base_config, session_options));
  }
  // A config-only change (batching, instance count, warm-up, ...) reuses the
  // sessions of the version it replaces when the model files and that
  // instance's session options (device included) are unchanged: the weights
  // are not read again.
  auto reusable = [&](size_t i) -> std::shared_ptr<backend::Session> {
    if (remote) return remote_sessions[i];
    if (previous == nullptr || previous->files_fingerprint != files_fingerprint ||
        i >= previous->sessions.size() || i >= previous->instance_options.size() ||
        !(previous->instance_options[i] == instance_options[i])) {
      return nullptr;
    }
    return previous->sessions[i];
  };
  std::shared_ptr<backend::Session> first = reusable(0);
  if (!first) {
    ASSIGN_OR_RETURN(first, options_.session_factory->Create(instance_options[0]));
  }

  auto model = std::make_unique<ModelVersion>();
  model->name = name;
  model->version = version;
  model->version_string = std::to_string(version);
  model->config = base_config;
  model->signature = first->signature();
  if (remote) backend::remote::FillRemoteConfigTensors(model->signature, &model->config);
  RETURN_IF_ERROR(CompleteModelConfig(name, model->signature, &model->config, &warnings));
  for (const auto& w : warnings) {
    if (options_.warn) options_.warn(w);
  }

  for (const auto& output : model->config.output()) {
    if (output.label_filename().empty()) continue;
    const fs::path label_path = fs::path(model_dir) / output.label_filename();
    ASSIGN_OR_RETURN(std::string text, ReadFile(label_path));
    std::vector<std::string> labels;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(line);
    }
    model->labels[output.name()] = std::move(labels);
  }
  if (model->config.has_text_pipeline()) {  // Issue 5: text in, labels/embeddings out.
    ASSIGN_OR_RETURN(model->text_pipeline,
                     pipeline::TextPipeline::FromConfig(model->config, model_dir, model->signature));
  }

  // One session per instance: separate sessions run truly in parallel, each
  // with its own intra-op pool (and, on a GPU, its own stream).
  std::vector<std::shared_ptr<backend::Session>> instances;
  instances.push_back(std::move(first));
  for (size_t i = 1; i < instance_options.size(); ++i) {
    RETURN_IF_ERROR(cancel.status());
    if (auto session = reusable(i)) {
      instances.push_back(std::move(session));
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<backend::Session> session,
                     options_.session_factory->Create(instance_options[i]));
    instances.push_back(std::move(session));
  }
  // A GPU instance builds its batches in pinned memory (one DMA each); when
  // the provider has no pinned allocator they come from pageable memory,
  // correct but slower to copy. Say so once per load rather than silently.
  for (size_t i = 0; i < instances.size(); ++i) {
    if (instance_options[i].device != backend::DeviceKind::kGpu || !options_.warn) continue;
    if (!instances[i]->AllocateHostBuffer(1).pinned()) {
      options_.warn(StrCat("model '", name, "' version ", version, " instance ", i, " on ",
                           instances[i]->device_name(),
                           ": no pinned host memory from the CUDA provider; batches are copied to the GPU "
                           "from pageable memory (slower)"));
    }
  }
  model->sessions = instances;
  if (model->config.has_generation()) {  // Issue 22: a decoder that generates text.
    auto loaded = generation::GenerationModel::Load(
        model->config, model_dir, model->sessions[0],
        options_.metrics != nullptr ? options_.metrics->ForGeneration(name, model->version_string) : nullptr);
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(), StrCat("model '", name, "': ", ToStd(loaded.status().message())));
    }
    model->generation = *std::move(loaded);
    for (const std::string& w : model->generation->warnings()) {
      if (options_.warn) options_.warn(StrCat("model '", name, "': ", w));
    }
  }
  model->instance_options = std::move(instance_options);
  model->files_fingerprint = files_fingerprint;
  model->memory_bytes = FolderBytes(fs::path(model_dir) / std::to_string(version));

  // Warm-up runs on the sessions directly, before any request can see them.
  RETURN_IF_ERROR(RunWarmup(model->config, model_dir, instances, &cancel));

  model->stats = std::make_unique<ModelStats>(model->config.max_batch_size());
  if (options_.metrics != nullptr) model->metrics = options_.metrics->ForVersion(name, model->version_string);
  ASSIGN_OR_RETURN(scheduler::SchedulerOptions sched, SchedulerOptionsFrom(*model));
  sched.instances = std::move(instances);
  ASSIGN_OR_RETURN(model->scheduler, scheduler::CreateScheduler(std::move(sched)));

  if (model->metrics != nullptr) model->metrics->SetLoadDuration(clock_->Now() - load_start);
  model->Touch(clock_->Now());  // The idle clock starts at load.
  return model;
}

}  // namespace ortserve::repository
