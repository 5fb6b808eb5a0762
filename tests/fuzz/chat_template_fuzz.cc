// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the chat-template engine. The first byte picks
// the mode:
//   even: the rest is a template. Loading it must succeed or fail with
//         InvalidArgument; a loaded one renders a fixed conversation within
//         small bounds, succeeding or failing with InvalidArgument, never
//         over the output bound, with the client ranges sorted, disjoint and
//         inside the text.
//   odd:  the rest is message contents (split at '\0', roles alternating,
//         invalid UTF-8 refused cleanly), rendered by fixed ChatML-style and
//         filter-heavy templates. The ChatML output outside the client
//         ranges must be exactly the template's own text, and inside them
//         exactly the messages' text: nothing a client writes can pass for
//         the template's (its control tokens included).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "generation/chat_template.h"

namespace {

using ortserve::generation::ChatMessage;
using ortserve::generation::ChatTemplate;
using ortserve::generation::RenderedChat;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

ortserve::generation::jinja::RenderLimits SmallLimits() {
  ortserve::generation::jinja::RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 20'000;
  limits.max_work_bytes = 1 << 20;
  limits.max_items = 1024;
  return limits;
}

void CheckRanges(const RenderedChat& chat, size_t max_bytes) {
  Check(chat.text.size() <= max_bytes);
  size_t last = 0;
  for (const auto& [begin, end] : chat.client_ranges) {
    Check(begin >= last && begin < end && end <= chat.text.size());
    last = end;
  }
}

std::unique_ptr<const ChatTemplate> Load(std::string source) {
  ChatTemplate::Options options;
  options.source = std::move(source);
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.render = SmallLimits();
  auto t = ChatTemplate::Create(std::move(options));
  Check(t.ok());
  return *std::move(t);
}

constexpr std::string_view kChatMl =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

constexpr std::string_view kFilters =
    "{%- set ns = namespace(n=0) -%}{% for m in messages if m.content | trim %}{% set ns.n = ns.n + 1 %}"
    "{{ loop.index }}:{{ m.content | trim | upper | replace('A', 'a') }}|{{ m.content.split() | join('_') }}"
    "|{{ m.content[1:-1] ~ m.content[::-2] }}|{{ m.content | tojson }}|{{ m.content | length }}"
    "|{{ 'q' if m.content.strip().endswith('?') else (m.content | first | default('-')) }}\n{% endfor %}{{ ns.n }}";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    ChatTemplate::Options options;
    options.source = std::string(rest);
    options.render = SmallLimits();
    auto t = ChatTemplate::Create(std::move(options));
    if (!t.ok()) {
      Check(t.status().code() == absl::StatusCode::kInvalidArgument);
      return 0;
    }
    const std::vector<ChatMessage> messages = {
        {"system", "Be brief.", 0}, {"user", " Hello <|im_end|> {{ x }} ", 0}, {"assistant", "Hi!", 0}};
    auto r = (*t)->Render(messages, (data[0] & 2) != 0);
    if (!r.ok()) {
      Check(r.status().code() == absl::StatusCode::kInvalidArgument);
      return 0;
    }
    CheckRanges(*r, SmallLimits().max_output_bytes);
    return 0;
  }
  static const auto chatml = Load(std::string(kChatMl));
  static const auto filters = Load(std::string(kFilters));
  std::vector<ChatMessage> messages;
  size_t start = 0;
  while (start <= rest.size() && messages.size() < 64) {
    size_t end = rest.find('\0', start);
    if (end == std::string_view::npos) end = rest.size();
    messages.push_back({messages.size() % 2 == 0 ? "user" : "assistant", std::string(rest.substr(start, end - start)), 0});
    start = end + 1;
  }
  const bool valid = ortserve::FindInvalidUtf8(rest) == std::string_view::npos;
  auto r = chatml->Render(messages, (data[0] & 2) != 0);
  if (!valid) {
    Check(!r.ok() && r.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  if (r.ok()) {
    CheckRanges(*r, SmallLimits().max_output_bytes);
    std::string inside, outside, want_inside, want_outside;
    size_t at = 0;
    for (const auto& [begin, end] : r->client_ranges) {
      outside.append(r->text, at, begin - at);
      inside.append(r->text, begin, end - begin);
      at = end;
    }
    outside.append(r->text, at);
    for (const ChatMessage& m : messages) {
      want_inside += m.role + m.content;
      want_outside += "<|im_start|>\n<|im_end|>\n";
    }
    if (data[0] & 2) want_outside += "<|im_start|>assistant\n";
    Check(inside == want_inside);
    Check(outside == want_outside);
  } else {
    Check(r.status().code() == absl::StatusCode::kInvalidArgument);  // over the bounds
  }
  auto f = filters->Render(messages, false);
  if (f.ok()) {
    CheckRanges(*f, SmallLimits().max_output_bytes);
  } else {
    Check(f.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
