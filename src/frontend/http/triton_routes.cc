// SPDX-License-Identifier: Apache-2.0
// Connection: Triton's trace-setting and shared-memory extensions, and the
// GET routes of TEI (/info, /health) and OpenAI (/v1/models).
#include "core/json_writer.h"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "pipeline/text_pipeline.h"
#include "repository/model_manager.h"
#include "simdjson.h"

namespace ortserve::frontend {
namespace {

// {"trace_level":["TIMESTAMPS"],"trace_rate":"1000",...}: trace_level as a
// list, the others as strings (Triton's shape).
std::string TraceSettingsJson(const observability::TraceSettings::Map& settings) {
  std::string out = "{";
  for (const auto& [key, values] : settings) {
    if (out.size() > 1) out.push_back(',');
    AppendJsonString(key, &out);
    out.push_back(':');
    if (key == "trace_level") {
      out.push_back('[');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendJsonString(values[i], &out);
      }
      out.push_back(']');
    } else {
      AppendJsonString(values.empty() ? std::string_view() : std::string_view(values[0]), &out);
    }
  }
  out.push_back('}');
  return out;
}

// A POST body: each setting a string, an integer, a list of strings, or
// null (clear it).
absl::StatusOr<observability::TraceSettings::Updates> ParseTraceUpdates(const std::string& body) {
  observability::TraceSettings::Updates updates;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return updates;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object object;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || doc.get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("trace settings must be a JSON object");
  }
  for (auto field : object) {
    const std::string key(field.key);
    std::optional<observability::TraceSettings::Values>& values = updates[key];
    std::string_view text;
    int64_t number = 0;
    simdjson::dom::array list;
    if (field.value.is_null()) continue;  // Clear.
    values.emplace();
    if (field.value.get(text) == simdjson::SUCCESS) {
      values->emplace_back(text);
    } else if (field.value.get(number) == simdjson::SUCCESS) {
      values->push_back(std::to_string(number));
    } else if (field.value.get(list) == simdjson::SUCCESS) {
      for (auto item : list) {
        if (item.get(text) != simdjson::SUCCESS) {
          return absl::InvalidArgumentError(StrCat("trace setting '", key, "' must be a list of strings"));
        }
        values->emplace_back(text);
      }
    } else {
      return absl::InvalidArgumentError(
          StrCat("trace setting '", key, "' must be a string, an integer, a list of strings or null"));
    }
  }
  return updates;
}

// [{"name","key","offset","byte_size"}, ...]
std::string ShmStatusJson(const std::vector<std::shared_ptr<const SharedMemoryRegion>>& regions) {
  std::string out = "[";
  for (const auto& region : regions) {
    if (out.size() > 1) out.push_back(',');
    out.append("{\"name\":");
    AppendJsonString(region->name(), &out);
    out.append(",\"key\":");
    AppendJsonString(region->key(), &out);
    out.append(StrCat(",\"offset\":", region->offset(), ",\"byte_size\":", region->byte_size(), "}"));
  }
  out.push_back(']');
  return out;
}

// {"key": "/name", "offset": N, "byte_size": N}; offset optional.
absl::Status RegisterShm(SharedMemoryManager& manager, std::string_view name, const std::string& body,
                         bool loopback_client) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return absl::InvalidArgumentError("shared memory registration must be a JSON object");
  }
  std::string_view key;
  if (doc["key"].get(key) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("shared memory registration needs \"key\" (a string)");
  }
  uint64_t offset = 0, byte_size = 0;
  simdjson::dom::element value;
  if (doc["offset"].get(value) == simdjson::SUCCESS && value.get(offset) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("shared memory registration's \"offset\" must be a non-negative integer");
  }
  if (doc["byte_size"].get(value) != simdjson::SUCCESS || value.get(byte_size) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("shared memory registration needs \"byte_size\" (a non-negative integer)");
  }
  return manager.Register(name, key, offset, byte_size, loopback_client);
}

}  // namespace

void Connection::TritonExtension(const RouteMatch& route) {
  switch (route.id) {
    case RouteId::kTraceSetting: {
      observability::TraceSettings::Updates updates;
      if (parser_->get().method() == boost::beast::http::verb::post) {
        auto parsed = ParseTraceUpdates(parser_->get().body());
        if (!parsed.ok()) return Send(Error(parsed.status()));
        updates = *std::move(parsed);
      }
      auto settings = options_.service->TraceSetting(route.model, updates);
      if (!settings.ok()) return Send(Error(settings.status()));
      return Send(Ok(TraceSettingsJson(*settings)));
    }
    case RouteId::kSystemShmStatus: {
      auto regions = options_.service->shared_memory().Status(route.model);
      if (!regions.ok()) return Send(Error(regions.status()));
      return Send(Ok(ShmStatusJson(*regions)));
    }
    case RouteId::kSystemShmRegister: {
      absl::Status status =
          RegisterShm(options_.service->shared_memory(), route.model, parser_->get().body(), LoopbackPeer());
      return Send(status.ok() ? Ok("") : Error(status));
    }
    case RouteId::kSystemShmUnregister: {
      absl::Status status = options_.service->shared_memory().Unregister(route.model);
      return Send(status.ok() ? Ok("") : Error(status));
    }
    case RouteId::kCudaShm:
      return Send(Error(400,
                        "CUDA shared memory is not supported on this server; send tensors in the request or use "
                        "system shared memory"));
    default:
      return Send(Error(501, "this extension is not available yet"));
  }
}

}  // namespace ortserve::frontend

namespace ortserve::frontend {

void Connection::CompatRoute(RouteId id) {
  InferenceService& service = *options_.service;
  // TEI serves one model: the --embed-model, else the --predict-model.
  const std::string& tei_model =
      !options_.pipeline.embed_model.empty() ? options_.pipeline.embed_model : options_.pipeline.predict_model;
  switch (id) {
    case RouteId::kTeiHealth: {
      if (tei_model.empty()) return Send(Bare(service.Ready() ? 200 : 503));
      return Send(Bare(service.GetModel(tei_model, "").ok() ? 200 : 503));
    }
    case RouteId::kTeiInfo: {
      if (tei_model.empty()) {
        return Send(Error(404, "no TEI model is configured (--embed-model or --predict-model)"));
      }
      auto model = service.GetModel(tei_model, "");
      if (!model.ok()) return Send(Error(model.status()));
      const pipeline::TextPipeline* text = (*model)->text_pipeline.get();
      std::string out = "{\"model_id\":";
      AppendJsonString(tei_model, &out);
      out.append(",\"model_sha\":null,\"model_dtype\":\"float32\",\"model_type\":");
      if (text != nullptr && text->options().task == pipeline::TextPipeline::Task::kClassification) {
        out.append("{\"classifier\":{\"id2label\":{");
        for (size_t i = 0; i < text->labels().size(); ++i) {
          if (i > 0) out.push_back(',');
          AppendJsonString(std::to_string(i), &out);
          out.push_back(':');
          AppendJsonString(text->labels()[i], &out);
        }
        out.append("}}}");
      } else {
        const bool mean = (*model)->config.text_pipeline().pooling() == config::TextPipeline::MEAN;
        out.append(mean ? "{\"embedding\":{\"pooling\":\"mean\"}}" : "{\"embedding\":{\"pooling\":\"cls\"}}");
      }
      const auto& config = (*model)->config;
      out.append(StrCat(",\"max_input_length\":", text != nullptr ? text->options().max_length : 0,
                        ",\"max_batch_tokens\":", config.text_pipeline().max_batch_tokens(),
                        ",\"max_batch_requests\":", config.max_batch_size(), ",\"version\":"));
      AppendJsonString(InferenceService::ServerVersion(), &out);
      out.push_back('}');
      return Send(Ok(std::move(out)));
    }
    case RouteId::kOpenAiModels: {
      // Every model with a READY version (that the credential may use).
      std::string out = "{\"object\":\"list\",\"data\":[";
      std::string last;
      bool first = true;
      for (const auto& entry : service.Index()) {
        if (entry.state != repository::ModelState::kReady || entry.name == last) continue;
        if (identity_ && !identity_->models.Allows(entry.name)) continue;
        last = entry.name;
        if (!first) out.push_back(',');
        first = false;
        out.append("{\"id\":");
        AppendJsonString(entry.name, &out);
        out.append(",\"object\":\"model\",\"created\":0,\"owned_by\":\"ortserve\"}");
      }
      out.append("]}");
      return Send(Ok(std::move(out)));
    }
    default: break;
  }
  Send(Error(404, "no such endpoint"));
}

}  // namespace ortserve::frontend
