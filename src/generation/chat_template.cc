// SPDX-License-Identifier: Apache-2.0
#include "generation/chat_template.h"

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "simdjson.h"

namespace ortserve::generation {

absl::StatusOr<std::unique_ptr<const ChatTemplate>> ChatTemplate::Create(Options options) {
  for (const std::string* token : {&options.bos_token, &options.eos_token}) {
    if (FindInvalidUtf8(*token) != std::string_view::npos) {
      return absl::InvalidArgumentError("the template's bos_token or eos_token is not valid UTF-8");
    }
  }
  std::unique_ptr<ChatTemplate> t(new ChatTemplate(std::move(options)));
  ASSIGN_OR_RETURN(t->body_, jinja::ParseTemplate(t->options_.source, t->options_.parse));
  return std::unique_ptr<const ChatTemplate>(std::move(t));
}

absl::StatusOr<RenderedChat> ChatTemplate::Render(std::span<const ChatMessage> messages,
                                                  bool add_generation_prompt) const {
  using jinja::Value;
  jinja::List list;
  list.reserve(messages.size());
  auto client = [](const std::string& s) {
    jinja::Text t{s, {}};
    t.TaintAllIf(true);
    return Value::String(std::move(t));
  };
  for (const ChatMessage& m : messages) {
    // The engine walks strings by code point: text that is not UTF-8 stops here.
    if (FindInvalidUtf8(m.role) != std::string_view::npos || FindInvalidUtf8(m.content) != std::string_view::npos) {
      return absl::InvalidArgumentError("a message is not valid UTF-8");
    }
    list.push_back(Value::MakeDict({{"role", client(m.role)}, {"content", client(m.content)}}));
  }
  std::vector<std::pair<std::string, Value>> globals = {
      {"messages", Value::MakeList(std::move(list))},
      {"add_generation_prompt", Value::Bool(add_generation_prompt)},
      {"bos_token", Value::String(options_.bos_token)},
      {"eos_token", Value::String(options_.eos_token)},
      {"tools", Value::None()},
      {"documents", Value::None()},
  };
  jinja::RenderResult result;
  if (absl::Status s = jinja::Render(body_, std::move(globals), options_.render, &result); !s.ok()) {
    return absl::InvalidArgumentError(result.raised
                                          ? StrCat("the chat template refused the conversation: ", ToStd(s.message()))
                                          : StrCat("chat template ", ToStd(s.message())));
  }
  RenderedChat out;
  out.text = std::move(result.text.s);
  out.client_ranges.reserve(result.text.tainted.size());
  for (const jinja::Range& r : result.text.tainted) out.client_ranges.emplace_back(r.begin, r.end);
  return out;
}

absl::StatusOr<TokenizerConfigChat> ParseTokenizerConfig(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return absl::InvalidArgumentError(StrCat("not valid JSON: ", simdjson::error_message(err)));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return absl::InvalidArgumentError("not a JSON object");
  TokenizerConfigChat out;
  simdjson::dom::element e;
  if (!obj.at_key("chat_template").get(e) && !e.is_null()) {
    std::string_view s;
    simdjson::dom::array named;
    if (!e.get_string().get(s)) {
      out.chat_template = std::string(s);
    } else if (!e.get_array().get(named)) {
      for (simdjson::dom::element entry : named) {
        std::string_view name, text;
        if (entry.at_key("name").get_string().get(name) || entry.at_key("template").get_string().get(text)) {
          return absl::InvalidArgumentError("chat_template: each entry of the list needs a string name and template");
        }
        if (name == "default") out.chat_template = std::string(text);
      }
      if (out.chat_template.empty()) {
        return absl::InvalidArgumentError("chat_template: the list has no entry named \"default\"");
      }
    } else {
      return absl::InvalidArgumentError("chat_template must be a string or a list of {name, template}");
    }
  }
  for (auto [key, target] : {std::pair{"bos_token", &out.bos_token}, std::pair{"eos_token", &out.eos_token}}) {
    if (obj.at_key(key).get(e) || e.is_null()) continue;
    std::string_view s;
    if (e.get_string().get(s) && e.at_key("content").get_string().get(s)) {
      return absl::InvalidArgumentError(StrCat(key, " must be a string or an object with a string \"content\""));
    }
    *target = std::string(s);
  }
  return out;
}

}  // namespace ortserve::generation
