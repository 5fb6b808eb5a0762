// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/triton_generation.h"

#include <cmath>

#include "core/json_writer.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/pipeline_routes.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace {

using simdjson::dom::element;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("field '", field, "' ", what));
}

absl::StatusOr<double> Number(element e, std::string_view field, double low, double high) {
  double v;
  if (e.get_double().get(v) != simdjson::SUCCESS || !std::isfinite(v) || v < low || v > high) {
    return Bad(field, StrCat("must be a number in [", low, ", ", high, "]"));
  }
  return v;
}

absl::StatusOr<int64_t> Integer(element e, std::string_view field, int64_t low, int64_t high) {
  int64_t v;
  if (e.get_int64().get(v) != simdjson::SUCCESS || v < low || v > high) {
    return Bad(field, StrCat("must be an integer in [", low, ", ", high, "]"));
  }
  return v;
}

// One parameter, wherever it was given.
absl::Status Parameter(std::string_view key, element e, CompletionRequest* r) {
  if (key == "max_tokens") {
    ASSIGN_OR_RETURN(int64_t v, Integer(e, key, 1, 1 << 20));
    r->max_tokens = static_cast<int32_t>(v);
  } else if (key == "temperature") {
    ASSIGN_OR_RETURN(double v, Number(e, key, 0, 100));
    r->temperature = static_cast<float>(v);
  } else if (key == "top_p") {
    ASSIGN_OR_RETURN(double v, Number(e, key, 0, 1));
    r->top_p = static_cast<float>(v);
  } else if (key == "top_k") {
    ASSIGN_OR_RETURN(int64_t v, Integer(e, key, 0, 1 << 20));
    r->top_k = static_cast<int32_t>(v);
  } else if (key == "repetition_penalty") {
    ASSIGN_OR_RETURN(double v, Number(e, key, 0, 100));
    r->repetition_penalty = static_cast<float>(v);
  } else if (key == "seed") {
    int64_t seed;
    if (e.get_int64().get(seed) != simdjson::SUCCESS) return Bad(key, "must be an integer");
    r->seed = static_cast<uint64_t>(seed);
  } else if (key == "stop") {
    std::string_view s;
    r->stop.clear();
    if (e.get(s) == simdjson::SUCCESS) {
      r->stop.emplace_back(s);
    } else {
      simdjson::dom::array stops;
      if (e.get(stops) != simdjson::SUCCESS || stops.size() > 64) {
        return Bad(key, "must be a string or an array of at most 64 strings");
      }
      for (element x : stops) {
        if (x.get(s) != simdjson::SUCCESS) return Bad(key, "must hold strings");
        r->stop.emplace_back(s);
      }
    }
  } else if (key == "ignore_eos") {
    if (e.get(r->ignore_eos) != simdjson::SUCCESS) return Bad(key, "must be a boolean");
  } else if (key == "stream") {
    bool ignored;
    if (e.get(ignored) != simdjson::SUCCESS) return Bad(key, "must be a boolean");
  } else {
    return absl::InvalidArgumentError(StrCat("unknown field '", key, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseTritonGenerateRequest(std::string_view body) {
  RETURN_IF_ERROR(CheckDuplicateKeys(body));
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  CompletionRequest r;
  bool have_text = false;
  simdjson::dom::object fields = doc.get_object().value_unsafe();
  for (auto [key, value] : fields) {
    if (key == "text_input") {
      std::string_view s;
      if (value.get(s) != simdjson::SUCCESS) return Bad(key, "must be a string");
      r.prompt.assign(s);
      have_text = true;
    } else if (key == "parameters") {
      simdjson::dom::object params;
      if (value.get(params) != simdjson::SUCCESS) return Bad(key, "must be an object");
      for (auto [name, v] : params) RETURN_IF_ERROR(Parameter(name, v, &r));
    } else if (key == "id") {
      // Triton's request id: accepted, not echoed (the generate response has none).
    } else {
      RETURN_IF_ERROR(Parameter(key, value, &r));
    }
  }
  if (!have_text) return Bad("text_input", "is required");
  return r;
}

std::string TritonGenerateJson(std::string_view model, std::string_view version, std::string_view text,
                               const generation::GenerationResult* finish) {
  std::string out = "{\"model_name\":";
  AppendJsonString(model, &out);
  out.append(",\"model_version\":");
  AppendJsonString(version, &out);
  out.append(",\"text_output\":");
  AppendJsonString(text, &out);
  if (finish != nullptr) {
    out.append(",\"finish_reason\":\"")
        .append(finish->finish == generation::FinishReason::kLength ? "length" : "stop")
        .append("\",\"prompt_tokens\":")
        .append(std::to_string(finish->prompt_tokens))
        .append(",\"completion_tokens\":")
        .append(std::to_string(finish->completion_tokens));
  }
  out.append("}");
  return out;
}

std::string TritonError(std::string_view message) {
  std::string out = "{\"error\":";
  AppendJsonString(message, &out);
  out.append("}");
  return out;
}

}  // namespace ortserve::frontend
