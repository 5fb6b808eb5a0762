// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/rest_json.h"

#include "core/json_writer.h"

namespace ortserve::frontend {
namespace {

// Every string goes through core/json_writer.h's escaper, so names and load
// errors with invalid UTF-8 or control characters still make valid JSON.
using Writer = JsonWriter;

void String(Writer& w, std::string_view s) { w.String(s); }
void Key(Writer& w, std::string_view s) { w.Key(s); }

void Tensors(Writer& w, const std::vector<TensorMetadata>& tensors) {
  w.StartArray();
  for (const auto& t : tensors) {
    w.StartObject();
    Key(w, "name");
    String(w, t.name);
    Key(w, "datatype");
    String(w, DataTypeName(t.type));
    Key(w, "shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

void Duration(Writer& w, std::string_view key, const DurationStat& stat) {
  Key(w, key);
  w.StartObject();
  Key(w, "count");
  w.Uint64(stat.count());
  Key(w, "ns");
  w.Uint64(stat.ns());
  w.EndObject();
}

}  // namespace

std::string ServerMetadataJson(const std::vector<std::string>& extensions) {
  std::string out;
  JsonStringStream stream(&out);
  Writer w(stream);
  w.StartObject();
  Key(w, "name");
  String(w, InferenceService::kServerName);
  Key(w, "version");
  String(w, InferenceService::ServerVersion());
  Key(w, "extensions");
  w.StartArray();
  for (const auto& e : extensions) String(w, e);
  w.EndArray();
  w.EndObject();
  return out;
}

std::string ModelMetadataJson(const ModelMetadata& metadata) {
  std::string out;
  JsonStringStream stream(&out);
  Writer w(stream);
  w.StartObject();
  Key(w, "name");
  String(w, metadata.name);
  Key(w, "versions");
  w.StartArray();
  for (const auto& v : metadata.versions) String(w, v);
  w.EndArray();
  Key(w, "platform");
  String(w, metadata.platform);
  Key(w, "inputs");
  Tensors(w, metadata.inputs);
  Key(w, "outputs");
  Tensors(w, metadata.outputs);
  if (!metadata.last_load_error.empty()) {
    // The reason the newest load failed while an older version serves on.
    Key(w, "last_load_error");
    String(w, metadata.last_load_error);
  }
  w.EndObject();
  return out;
}

std::string RepositoryIndexJson(const std::vector<repository::ModelIndexEntry>& index, bool ready_only) {
  std::string out;
  JsonStringStream stream(&out);
  Writer w(stream);
  w.StartArray();
  for (const auto& entry : index) {
    if (ready_only && entry.state != repository::ModelState::kReady) continue;
    w.StartObject();
    Key(w, "name");
    String(w, entry.name);
    if (!entry.version.empty()) {
      Key(w, "version");
      String(w, entry.version);
    }
    Key(w, "state");
    String(w, repository::ModelStateName(entry.state));
    Key(w, "reason");
    String(w, entry.reason);
    w.EndObject();
  }
  w.EndArray();
  return out;
}

std::string ModelStatsJson(const std::vector<ModelHandle>& models) {
  std::string out;
  JsonStringStream stream(&out);
  Writer w(stream);
  w.StartObject();
  Key(w, "model_stats");
  w.StartArray();
  for (const auto& model : models) {
    const ModelStats& s = *model->stats;
    w.StartObject();
    Key(w, "name");
    String(w, model->name);
    Key(w, "version");
    String(w, model->version_string);
    Key(w, "last_inference");
    w.Int64(s.last_inference_ms.load(std::memory_order_relaxed));
    Key(w, "inference_count");
    w.Uint64(s.inference_count.load(std::memory_order_relaxed));
    Key(w, "execution_count");
    w.Uint64(s.execution_count.load(std::memory_order_relaxed));
    Key(w, "inference_stats");
    w.StartObject();
    Duration(w, "success", s.success);
    Duration(w, "fail", s.fail);
    Duration(w, "queue", s.queue);
    Duration(w, "compute_input", s.compute_input);
    Duration(w, "compute_infer", s.compute_infer);
    Duration(w, "compute_output", s.compute_output);
    Duration(w, "cache_hit", s.cache_hit);
    Duration(w, "cache_miss", s.cache_miss);
    w.EndObject();
    Key(w, "batch_stats");
    w.StartArray();
    for (size_t size = 1; size <= s.max_tracked_batch(); ++size) {
      const BatchSizeStats& b = s.batch(size);
      if (b.compute_infer.count() == 0) continue;
      w.StartObject();
      Key(w, "batch_size");
      w.Uint64(size);
      Duration(w, "compute_input", b.compute_input);
      Duration(w, "compute_infer", b.compute_infer);
      Duration(w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace ortserve::frontend
