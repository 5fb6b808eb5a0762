// SPDX-License-Identifier: Apache-2.0
// The chat-template engine against Jinja2 itself: the committed templates
// rendered over the committed conversations must equal, byte for byte, what
// scripts/generation/make_chat_template_goldens.py got from python3-jinja2
// set up as transformers sets it up. Then the errors: constructs outside the
// subset fail at load with their line, raise_exception is a clear error, and
// the bounds stop runaway templates.
#include "generation/chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/bpe_tokenizer.h"
#include "simdjson.h"

namespace ortserve::generation {
namespace {

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
  return ORTSERVE_SOURCE_DIR_DEFAULT;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DataDir() { return SourceDir() + "/tests/data/chat_templates/"; }

std::string Str(simdjson::dom::element e) { return std::string(std::string_view(e)); }

std::vector<ChatMessage> Messages(simdjson::dom::array a) {
  std::vector<ChatMessage> out;
  for (simdjson::dom::element m : a) {
    out.push_back({Str(m["role"]), Str(m["content"]), 0});
  }
  return out;
}

absl::StatusOr<std::unique_ptr<const ChatTemplate>> Make(std::string source, jinja::RenderLimits limits = {}) {
  ChatTemplate::Options options;
  options.source = std::move(source);
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.render = limits;
  return ChatTemplate::Create(std::move(options));
}

absl::StatusOr<std::string> RenderText(std::string source, std::vector<ChatMessage> messages = {},
                                       jinja::RenderLimits limits = {}) {
  auto t = Make(std::move(source), limits);
  if (!t.ok()) return t.status();
  auto r = (*t)->Render(messages, true);
  if (!r.ok()) return r.status();
  return r->text;
}

TEST(ChatTemplateTest, MatchesJinja2GoldensByteForByte) {
  simdjson::dom::parser parser;
  const std::string conversations_json = ReadFile(DataDir() + "conversations.json");
  const std::string goldens_json = ReadFile(DataDir() + "goldens.json");
  simdjson::dom::parser parser2;
  simdjson::dom::element conversations = parser.parse(conversations_json);
  simdjson::dom::element goldens = parser2.parse(goldens_json);
  size_t checked = 0, raised = 0;
  std::map<std::string, std::unique_ptr<const ChatTemplate>> templates;
  for (simdjson::dom::element c : goldens["cases"].get_array()) {
    const std::string name = Str(c["template"]);
    const std::string conversation = Str(c["conversation"]);
    SCOPED_TRACE(name + " over " + conversation);
    ChatTemplate::Options options;
    options.source = ReadFile(DataDir() + name + ".jinja");
    options.bos_token = Str(c["bos_token"]);
    options.eos_token = Str(c["eos_token"]);
    auto t = ChatTemplate::Create(std::move(options));
    ASSERT_TRUE(t.ok()) << t.status();
    const auto messages = Messages(conversations[conversation].get_array());
    auto r = (*t)->Render(messages, bool(c["add_generation_prompt"]));
    std::string_view expected;
    if (c["output"].get(expected) == simdjson::SUCCESS) {
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->text, expected);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(ToStd(r.status().message()),
                "the chat template refused the conversation: " + Str(c["raised"]));
      ++raised;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 72u);  // 6 templates x 6 conversations x add_generation_prompt
  EXPECT_EQ(raised, 2u);
}

// Small templates, a construct or a few each (snippets.json), over one
// conversation: each must equal Jinja2's rendering.
TEST(ChatTemplateTest, SnippetsMatchJinja2ByteForByte) {
  simdjson::dom::parser parser, parser2;
  const std::string conversations_json = ReadFile(DataDir() + "conversations.json");
  const std::string goldens_json = ReadFile(DataDir() + "goldens.json");
  simdjson::dom::element conversations = parser.parse(conversations_json);
  simdjson::dom::element goldens = parser2.parse(goldens_json);
  const auto messages = Messages(conversations["system_and_turns"].get_array());
  size_t checked = 0;
  for (simdjson::dom::element c : goldens["snippets"].get_array()) {
    const std::string source = Str(c["source"]);
    SCOPED_TRACE(source);
    auto t = Make(source);
    ASSERT_TRUE(t.ok()) << t.status();
    auto r = (*t)->Render(messages, true);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, Str(c["output"]));
    ++checked;
  }
  EXPECT_GE(checked, 35u);
}

TEST(ChatTemplateTest, MarksTheBytesThatCameFromTheMessages) {
  auto t = Make("{% for m in messages %}<|im_start|>{{ m.role + '\\n' + m.content | trim }}<|im_end|>{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<ChatMessage> messages = {{"user", "  hi <|im_end|> ", 0}};
  auto r = (*t)->Render(messages, false);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->text, "<|im_start|>user\nhi <|im_end|><|im_end|>");
  // "user" and "hi <|im_end|>" are the client's; "<|im_start|>", "\n" and the
  // last "<|im_end|>" are the template's.
  const size_t user = r->text.find("user"), hi = r->text.find("hi");
  ASSERT_EQ(r->client_ranges.size(), 2u);
  EXPECT_EQ(r->client_ranges[0], std::make_pair(user, user + 4));
  EXPECT_EQ(r->client_ranges[1], std::make_pair(hi, hi + std::string("hi <|im_end|>").size()));
}

TEST(ChatTemplateTest, ControlTokensInMessagesAreNotMatchedByTheTokenizer) {
  pipeline::BpeTokenizer::Options options;
  for (int b = 0; b < 256; ++b) {
    char buf[4];
    const int n = EncodeUtf8(pipeline::ByteLevelCodePoint(static_cast<unsigned char>(b)), buf);
    options.vocab.emplace_back(std::string(buf, static_cast<size_t>(n)), b);
  }
  options.added_tokens.push_back({"<|im_end|>", 256, true});
  auto tokenizer = pipeline::BpeTokenizer::Create(std::move(options));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto t = Make("{{ messages[0].content }}<|im_end|>");
  ASSERT_TRUE(t.ok());
  std::vector<ChatMessage> messages = {{"user", "a<|im_end|>", 0}};
  auto r = (*t)->Render(messages, false);
  ASSERT_TRUE(r.ok());
  pipeline::BpeEncodeOptions encode;
  encode.literal_ranges = r->client_ranges;
  std::vector<int32_t> ids;
  ASSERT_TRUE((*tokenizer)->Encode(r->text, encode, &ids).ok());
  // One control token (the template's), and the client's text as bytes.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 256), 1);
  EXPECT_EQ(ids.back(), 256);
  EXPECT_EQ(ids.size(), 1u + std::string("a<|im_end|>").size());  // one id per byte: no merges
  // Without the ranges the client's copy would be a control token too.
  encode.literal_ranges = {};
  ASSERT_TRUE((*tokenizer)->Encode(r->text, encode, &ids).ok());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 256), 2);
}

struct LoadError {
  std::string source;
  std::string message;  // a substring of the error
};

class ChatTemplateLoadTest : public testing::TestWithParam<LoadError> {};

TEST_P(ChatTemplateLoadTest, FailsAtLoadNamingTheLineAndConstruct) {
  auto t = Make(GetParam().source);
  ASSERT_FALSE(t.ok()) << "loaded: " << GetParam().source;
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ToStd(t.status().message()).find(GetParam().message), std::string_view::npos) << t.status();
}

INSTANTIATE_TEST_SUITE_P(
    Unsupported, ChatTemplateLoadTest,
    testing::Values(
        LoadError{"a\n{% macro f() %}x{% endmacro %}", "line 2: the tag 'macro' is not supported"},
        LoadError{"{{ messages | selectattr('role') }}", "line 1: the filter 'selectattr' is not supported"},
        LoadError{"\n\n{{ x is divisibleby 3 }}", "line 3: the test 'divisibleby' is not supported"},
        LoadError{"{{ m.format(1) }}", "the method 'format()' is not supported"},
        LoadError{"{{ strftime_now('%Y') }}", "the function 'strftime_now()' is not supported"},
        LoadError{"{{ 1.5 }}", "float numbers are not supported"},
        LoadError{"{{ 4 / 2 }}", "true division"},
        LoadError{"{% include 'x' %}", "the tag 'include' is not supported"},
        LoadError{"{% raw %}x{% endraw %}", "the tag 'raw' is not supported"},
        LoadError{"{% for x in y recursive %}{% endfor %}", "recursive"},
        LoadError{"{% if x %}", "ends before 'elif' or 'else' or 'endif'"},
        LoadError{"{% endif %}", "'endif' without its opening tag"},
        LoadError{"{% break %}", "'break' outside a for loop"},
        LoadError{"{{ x", "unclosed '{{'"},
        LoadError{"{# x", "unclosed comment"},
        LoadError{"{{ 'abc }}", "unterminated string"},
        LoadError{"{{ x | replace('a') }}", "takes 2 to 3 positional arguments, got 1"},
        LoadError{"{{ x | tojson(ensure_ascii=true) }}", "has no argument 'ensure_ascii'"},
        LoadError{"{{ raise_exception() }}", "takes 1 positional arguments, got 0"},
        LoadError{"{{ {1: 2} }}", "dict keys must be string literals"},
        LoadError{"{{ x(1) }}", "the function 'x()' is not supported"},
        LoadError{"{{ 99999999999999999999 }}", "does not fit in 64 bits"},
        LoadError{"{{ '\\N{DASH}' }}", "escape \\N is not supported"},
        LoadError{"{{ " + std::string(100, '(') + "1" + std::string(100, ')') + " }}", "nests more than 64 deep"},
        LoadError{"\xff", "not valid UTF-8"}));

TEST(ChatTemplateTest, RaiseExceptionIsAClearInvalidArgument) {
  auto r = RenderText("{% if messages[0].role != 'user' %}{{ raise_exception('the first turn must be the user\\'s') }}{% endif %}",
                      {{"assistant", "hi", 0}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToStd(r.status().message()), "the chat template refused the conversation: the first turn must be the user's");
}

TEST(ChatTemplateTest, RenderErrorsNameTheLine) {
  auto r = RenderText("ok\n{{ messages[0].content + 1 }}", {{"user", "hi", 0}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ToStd(r.status().message()),
            "chat template line 2: unsupported operand types for +: 'string' and 'integer'");
  r = RenderText("{{ nothing.attr }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ToStd(r.status().message()), "chat template line 1: 'nothing' is undefined");
  r = RenderText("{% set x = 1 %}\n{% set x.a = 2 %}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("line 2: cannot set an attribute of 'x'"), std::string_view::npos);
  r = RenderText("{{ messages | tojson }}{{ undefined_name | tojson }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("not JSON serializable"), std::string_view::npos);
}

TEST(ChatTemplateTest, RunawayLoopsStopAtTheStepBound) {
  jinja::RenderLimits limits;
  limits.max_steps = 10'000;
  auto r = RenderText("{% for i in range(65536) %}{% for j in range(65536) %}{% endfor %}{% endfor %}", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("more than 10000 steps"), std::string_view::npos) << r.status();
  r = RenderText("{{ range(100000) | length }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("more than the limit of 65536"), std::string_view::npos);
}

TEST(ChatTemplateTest, OutputAndStringsStopAtTheSizeBound) {
  jinja::RenderLimits limits;
  limits.max_output_bytes = 1000;
  auto r = RenderText("{% for i in range(200) %}0123456789{% endfor %}", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("over the limit of 1000 bytes"), std::string_view::npos) << r.status();
  // Doubling a string in a namespace: stopped by the size of one string.
  r = RenderText("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                 {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("more than the limit of 1000"), std::string_view::npos) << r.status();
  r = RenderText("{{ 'x' * 100000 }}", {}, limits);
  ASSERT_FALSE(r.ok());
  // Nesting values in a loop: stopped by the depth bound before printing recurses.
  r = RenderText("{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("nest more than 32 deep"), std::string_view::npos) << r.status();
  // Exact output at the bound passes.
  limits.max_output_bytes = 2000;
  r = RenderText("{% for i in range(200) %}0123456789{% endfor %}", {}, limits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size(), 2000u);
}

TEST(ChatTemplateTest, IntegerOverflowIsAnError) {
  auto r = RenderText("{{ 9223372036854775807 + 1 }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(ToStd(r.status().message()).find("integer overflow"), std::string_view::npos);
  r = RenderText("{{ 2 ** 64 }}");
  ASSERT_FALSE(r.ok());
  r = RenderText("{{ 1 // 0 }}");
  ASSERT_FALSE(r.ok());
}

TEST(ChatTemplateTest, ReadsTokenizerConfigTemplatesAndTokens) {
  auto c = ParseTokenizerConfig(R"({"chat_template": "{{ x }}", "bos_token": "<s>",
                                    "eos_token": {"content": "</s>", "lstrip": false}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->chat_template, "{{ x }}");
  EXPECT_EQ(c->bos_token, "<s>");
  EXPECT_EQ(c->eos_token, "</s>");
  c = ParseTokenizerConfig(R"({"chat_template": [{"name": "tool_use", "template": "a"},
                                                 {"name": "default", "template": "b"}], "bos_token": null})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->chat_template, "b");
  EXPECT_EQ(c->bos_token, "");
  EXPECT_FALSE(ParseTokenizerConfig(R"({"chat_template": 3})").ok());
  EXPECT_FALSE(ParseTokenizerConfig(R"({"chat_template": [{"name": "tool_use", "template": "a"}]})").ok());
  EXPECT_FALSE(ParseTokenizerConfig("[").ok());
  c = ParseTokenizerConfig("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->chat_template.empty());
}

}  // namespace
}  // namespace ortserve::generation
