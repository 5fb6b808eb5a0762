// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/triton_generation.h"

#include "core/json_writer.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/generate_request.h"
#include "frontend/http/pipeline_routes.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace {

using simdjson::dom::element;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("field '", field, "' ", what));
}

// A JSON value as the shared parameter rules see it (views into the document).
GenerateValue ValueOf(element e) {
  GenerateValue v;
  switch (e.type()) {
    case simdjson::dom::element_type::BOOL:
      v.kind = GenerateValue::Kind::kBool;
      if (e.get(v.b) != simdjson::SUCCESS) v.kind = GenerateValue::Kind::kOther;
      break;
    case simdjson::dom::element_type::INT64:
      v.kind = GenerateValue::Kind::kInt;
      if (e.get(v.i) != simdjson::SUCCESS) v.kind = GenerateValue::Kind::kOther;
      break;
    case simdjson::dom::element_type::UINT64:
      v.kind = GenerateValue::Kind::kUint;
      if (e.get(v.u) != simdjson::SUCCESS) v.kind = GenerateValue::Kind::kOther;
      break;
    case simdjson::dom::element_type::DOUBLE:
      v.kind = GenerateValue::Kind::kDouble;
      if (e.get(v.d) != simdjson::SUCCESS) v.kind = GenerateValue::Kind::kOther;
      break;
    case simdjson::dom::element_type::STRING:
      v.kind = GenerateValue::Kind::kString;
      if (e.get(v.s) != simdjson::SUCCESS) v.kind = GenerateValue::Kind::kOther;
      break;
    case simdjson::dom::element_type::ARRAY: {
      v.kind = GenerateValue::Kind::kStrings;
      simdjson::dom::array array;
      if (e.get(array) != simdjson::SUCCESS) {
        v.kind = GenerateValue::Kind::kOther;
        break;
      }
      for (element x : array) {
        // More than the 64 stop sequences allowed is refused: no need to hold them all.
        if (v.strings.size() > 64) break;
        std::string_view s;
        if (x.get(s) != simdjson::SUCCESS) {
          v.kind = GenerateValue::Kind::kOther;
          v.strings.clear();
          break;
        }
        v.strings.push_back(s);
      }
      break;
    }
    default:
      break;
  }
  return v;
}

// One parameter, wherever it was given.
absl::Status Parameter(std::string_view key, element e, CompletionRequest* r) {
  return ApplyGenerateParameter(key, ValueOf(e), r);
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
  std::string out;
  AppendTritonGenerateJson(model, version, text, finish, &out);
  return out;
}

void AppendTritonGenerateJson(std::string_view model, std::string_view version, std::string_view text,
                              const generation::GenerationResult* finish, std::string* out) {
  out->append("{\"model_name\":");
  AppendJsonString(model, out);
  out->append(",\"model_version\":");
  AppendJsonString(version, out);
  out->append(",\"text_output\":");
  AppendJsonString(text, out);
  if (finish != nullptr) {
    out->append(",\"finish_reason\":\"")
        .append(finish->finish == generation::FinishReason::kLength ? "length" : "stop")
        .append("\",\"prompt_tokens\":")
        .append(std::to_string(finish->prompt_tokens))
        .append(",\"completion_tokens\":")
        .append(std::to_string(finish->completion_tokens));
  }
  out->append("}");
}

std::string TritonError(std::string_view message) {
  std::string out = "{\"error\":";
  AppendJsonString(message, &out);
  out.append("}");
  return out;
}

}  // namespace ortserve::frontend
