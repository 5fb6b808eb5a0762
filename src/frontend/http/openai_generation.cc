// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/openai_generation.h"

#include <charconv>
#include <cmath>

#include "core/strings.h"
#include "frontend/http/pipeline_routes.h"
#include "core/json_writer.h"
#include "core/status.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace {

using simdjson::dom::element;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("field '", field, "' ", what));
}

absl::StatusOr<std::optional<double>> Number(simdjson::dom::object& o, std::string_view field, double low,
                                             double high) {
  element e;
  if (o[field].get(e) != simdjson::SUCCESS || e.is_null()) return std::optional<double>();
  double v;
  if (e.get_double().get(v) != simdjson::SUCCESS || !std::isfinite(v) || v < low || v > high) {
    return Bad(field, StrCat("must be a number in [", low, ", ", high, "]"));
  }
  return std::optional<double>(v);
}

absl::StatusOr<std::optional<int64_t>> Integer(simdjson::dom::object& o, std::string_view field, int64_t low,
                                               int64_t high) {
  element e;
  if (o[field].get(e) != simdjson::SUCCESS || e.is_null()) return std::optional<int64_t>();
  int64_t v;
  if (e.get_int64().get(v) != simdjson::SUCCESS || v < low || v > high) {
    return Bad(field, StrCat("must be an integer in [", low, ", ", high, "]"));
  }
  return std::optional<int64_t>(v);
}

void Str(std::string_view s, std::string* out) { AppendJsonString(s, out); }

void Head(bool chat, bool chunk, const CompletionIds& ids, std::string* out) {
  out->append("{\"id\":");
  Str(ids.id, out);
  out->append(",\"object\":\"");
  out->append(chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
  out->append("\",\"created\":");
  char digits[24];  // no temporary string: a stream writes this head per token
  out->append(digits, std::to_chars(digits, digits + sizeof(digits), ids.created).ptr);
  out->append(",\"model\":");
  Str(ids.model, out);
}

void Usage(const generation::GenerationResult& r, std::string* out) {
  out->append("\"usage\":{\"prompt_tokens\":").append(std::to_string(r.prompt_tokens));
  out->append(",\"completion_tokens\":").append(std::to_string(r.completion_tokens));
  out->append(",\"total_tokens\":").append(std::to_string(r.prompt_tokens + r.completion_tokens)).append("}");
}

std::string_view Finish(const generation::GenerationResult& r) {
  return r.finish == generation::FinishReason::kLength ? "length" : "stop";
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(std::string_view body, bool chat) {
  RETURN_IF_ERROR(CheckDuplicateKeys(body));
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  simdjson::dom::object o = doc.get_object().value_unsafe();
  CompletionRequest r;
  r.chat = chat;
  std::string_view s;
  element e;
  if (o["model"].get(s) != simdjson::SUCCESS || s.empty()) return Bad("model", "must be a non-empty string");
  r.model.assign(s);
  if (!chat) {
    if (o["prompt"].get(s) != simdjson::SUCCESS) return Bad("prompt", "must be a string");
    r.prompt.assign(s);
  } else {
    simdjson::dom::array messages;
    if (o["messages"].get(messages) != simdjson::SUCCESS || messages.size() == 0) {
      return Bad("messages", "must be a non-empty array");
    }
    if (messages.size() > 1024) return Bad("messages", "has more than 1024 entries");
    std::vector<std::pair<std::string, std::string>>& turns = r.messages;
    for (element m : messages) {
      std::string_view role, content;
      if (!m.is_object() || m["role"].get(role) != simdjson::SUCCESS ||
          m["content"].get(content) != simdjson::SUCCESS) {
        return Bad("messages", "entries must be objects with string 'role' and 'content'");
      }
      if (role != "system" && role != "user" && role != "assistant" && role != "developer") {
        return Bad("messages", StrCat("has an unknown role '", role, "'"));
      }
      turns.emplace_back(std::string(role), std::string(content));
    }
    if (o["session_id"].get(e) == simdjson::SUCCESS && !e.is_null()) {
      if (e.get(s) != simdjson::SUCCESS) return Bad("session_id", "must be a string");
      r.session_id.assign(s);
    }
  }
  for (std::string_view field : {"echo", "logprobs", "best_of", "suffix", "tools", "functions", "logit_bias"}) {
    if (o[field].get(e) == simdjson::SUCCESS && !e.is_null() && !(e.is_bool() && !e.get_bool().value_unsafe())) {
      return Bad(field, "is not supported");
    }
  }
  ASSIGN_OR_RETURN(auto n, Integer(o, "n", 1, 1));
  (void)n;
  for (std::string_view field : {"presence_penalty", "frequency_penalty"}) {
    ASSIGN_OR_RETURN(auto p, Number(o, field, -2, 2));
    if (p.has_value() && *p != 0) return Bad(field, "is not supported (use repetition_penalty)");
  }
  ASSIGN_OR_RETURN(auto max_tokens, Integer(o, chat && o["max_completion_tokens"].error() == simdjson::SUCCESS
                                               ? "max_completion_tokens" : "max_tokens",
                                            1, 1 << 20));
  if (max_tokens) r.max_tokens = static_cast<int32_t>(*max_tokens);
  ASSIGN_OR_RETURN(auto temperature, Number(o, "temperature", 0, 100));
  if (temperature) r.temperature = static_cast<float>(*temperature);
  ASSIGN_OR_RETURN(auto top_p, Number(o, "top_p", 0, 1));
  if (top_p) r.top_p = static_cast<float>(*top_p);
  ASSIGN_OR_RETURN(auto top_k, Integer(o, "top_k", 0, 1 << 20));
  if (top_k) r.top_k = static_cast<int32_t>(*top_k);
  ASSIGN_OR_RETURN(auto penalty, Number(o, "repetition_penalty", 0, 100));
  if (penalty) r.repetition_penalty = static_cast<float>(*penalty);
  if (o["seed"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    int64_t seed;
    if (e.get_int64().get(seed) != simdjson::SUCCESS) return Bad("seed", "must be an integer");
    r.seed = static_cast<uint64_t>(seed);
  }
  if (o["stop"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    if (e.get(s) == simdjson::SUCCESS) {
      r.stop.emplace_back(s);
    } else {
      simdjson::dom::array stops;
      if (e.get(stops) != simdjson::SUCCESS || stops.size() > 64) {
        return Bad("stop", "must be a string or an array of at most 64 strings");
      }
      for (element x : stops) {
        if (x.get(s) != simdjson::SUCCESS) return Bad("stop", "must hold strings");
        r.stop.emplace_back(s);
      }
    }
  }
  if (o["stream"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    if (e.get(r.stream) != simdjson::SUCCESS) return Bad("stream", "must be a boolean");
  }
  if (o["ignore_eos"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    if (e.get(r.ignore_eos) != simdjson::SUCCESS) return Bad("ignore_eos", "must be a boolean");
  }
  if (o["stream_options"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    element u;
    if (!e.is_object()) return Bad("stream_options", "must be an object");
    if (e["include_usage"].get(u) == simdjson::SUCCESS && !u.is_null() &&
        u.get(r.include_usage) != simdjson::SUCCESS) {
      return Bad("stream_options.include_usage", "must be a boolean");
    }
  }
  return r;
}

std::string OpenAiError(std::string_view message, unsigned http_status) {
  std::string out = "{\"error\":{\"message\":";
  Str(message, &out);
  out.append(",\"type\":\"");
  out.append(http_status == 429   ? "rate_limit_error"
             : http_status >= 500 ? "server_error"
             : http_status == 404 ? "not_found_error"
                                  : "invalid_request_error");
  out.append("\",\"param\":null,\"code\":");
  out.append(http_status == 429 ? "\"rate_limit_exceeded\"}}" : "null}}");
  return out;
}

std::string CompletionJson(bool chat, const CompletionIds& ids, const generation::GenerationResult& result) {
  std::string out;
  Head(chat, false, ids, &out);
  out.append(",\"choices\":[{\"index\":0,");
  if (chat) {
    out.append("\"message\":{\"role\":\"assistant\",\"content\":");
    Str(result.text, &out);
    out.append("},");
  } else {
    out.append("\"text\":");
    Str(result.text, &out);
    out.append(",\"logprobs\":null,");
  }
  out.append("\"finish_reason\":\"").append(Finish(result)).append("\"}],");
  Usage(result, &out);
  out.append("}");
  return out;
}

std::string CompletionChunkJson(bool chat, const CompletionIds& ids, std::string_view delta, bool first,
                                const generation::GenerationResult* finish) {
  std::string out;
  AppendCompletionChunkJson(chat, ids, delta, first, finish, &out);
  return out;
}

void AppendCompletionChunkJson(bool chat, const CompletionIds& ids, std::string_view delta, bool first,
                               const generation::GenerationResult* finish, std::string* out) {
  Head(chat, true, ids, out);
  out->append(",\"choices\":[{\"index\":0,");
  if (chat) {
    out->append("\"delta\":{");
    if (first) out->append("\"role\":\"assistant\"");
    if (!delta.empty() || (first && finish == nullptr)) {
      if (first) out->append(",");
      out->append("\"content\":");
      Str(delta, out);
    }
    out->append("},");
  } else {
    out->append("\"text\":");
    Str(delta, out);
    out->append(",\"logprobs\":null,");
  }
  out->append("\"finish_reason\":");
  if (finish != nullptr) {
    out->append("\"").append(Finish(*finish)).append("\"");
  } else {
    out->append("null");
  }
  out->append("}]}");
}

std::string UsageChunkJson(bool chat, const CompletionIds& ids, const generation::GenerationResult& result) {
  std::string out;
  Head(chat, true, ids, &out);
  out.append(",\"choices\":[],");
  Usage(result, &out);
  out.append("}");
  return out;
}

}  // namespace ortserve::frontend
