// SPDX-License-Identifier: Apache-2.0
// A Hugging Face chat template (the Jinja `chat_template` of a model's
// tokenizer_config.json or chat_template.jinja) rendered as transformers'
// apply_chat_template renders it, in the subset of Jinja that chat templates
// use (docs/model_config.md, "Chat templates", lists it). A template that
// uses anything else fails to load, naming the line and the construct.
//
// The template is operator-supplied and checked at load; the messages are a
// client's and hostile: a render is bounded in steps, bytes built and output
// size, and its errors are InvalidArgument (the client's 400), never a crash.
// The rendered text says which of its bytes came from the messages, so the
// tokenizer matches control tokens (e.g. "<|im_start|>") only where the
// template wrote them.
//
// Example:
//   ASSIGN_OR_RETURN(auto t, ChatTemplate::Create({.source = text, .eos_token = "</s>"}));
//   ASSIGN_OR_RETURN(RenderedChat chat, t->Render(messages, /*add_generation_prompt=*/true));
//
// Thread-safety: thread-safe (immutable once created; Render keeps its state
// on the stack).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "generation/jinja_eval.h"
#include "generation/jinja_parser.h"
#include "generation/session_store.h"

namespace ortserve::generation {

// A rendered conversation: the prompt text and the byte ranges [first,
// second) of it (sorted, disjoint) that came from the messages.
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> client_ranges;
};

class ChatTemplate {
 public:
  struct Options {
    std::string source;     // the Jinja text
    std::string bos_token;  // the template's `bos_token` and `eos_token`
    std::string eos_token;
    jinja::ParseLimits parse;
    jinja::RenderLimits render;
  };
  // InvalidArgument "line N: ..." naming the construct for a template outside
  // the subset or malformed.
  static absl::StatusOr<std::unique_ptr<const ChatTemplate>> Create(Options options);

  // Renders `messages` (the template sees `messages` as a list of {role,
  // content}, `add_generation_prompt`, `bos_token`, `eos_token`, and `tools`
  // and `documents` as none, as transformers passes them). InvalidArgument
  // "the chat template refused the conversation: <message>" when the
  // template calls raise_exception, "chat template line N: ..." for other
  // errors and for the bounds.
  absl::StatusOr<RenderedChat> Render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

 private:
  explicit ChatTemplate(Options options) : options_(std::move(options)) {}
  Options options_;
  jinja::Body body_;
};

// The chat settings of a Hugging Face tokenizer_config.json.
struct TokenizerConfigChat {
  std::string chat_template;  // empty when it has none
  std::string bos_token;      // empty when absent or null
  std::string eos_token;
};
// Reads `chat_template` (a string, or the list of {name, template} whose
// "default" entry is taken), `bos_token` and `eos_token` (strings or
// {"content": ...}). InvalidArgument naming the field for other shapes.
absl::StatusOr<TokenizerConfigChat> ParseTokenizerConfig(std::string_view json);

}  // namespace ortserve::generation
