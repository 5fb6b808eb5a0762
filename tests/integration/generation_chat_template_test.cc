// SPDX-License-Identifier: Apache-2.0
// Hugging Face chat templates end to end: the real ortserve binary serving
// copies of the demo decoder (models/tiny_decoder) with chat templates beside
// the tokenizer. A chat's prompt must be the Jinja2 golden of the same
// template and conversation (tests/data/chat_templates/goldens.json): its
// prompt_tokens are that text's tokens, and greedy decoding of the chat
// gives the text a plain completion of the golden text gives. A template's
// raise_exception is a 400 in OpenAI's shape; control tokens in a message
// are not matched; a template outside the subset fails the model's load
// with the line and the construct.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "integration/server_harness.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Quote(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buf.GetString();
}

// A copy of the demo decoder named `name` with `files` ({name, contents})
// beside its tokenizer.
void AddModel(const std::string& repo, const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string dir = repo + "/" + name;
  ASSERT_TRUE(RunPython("import shutil, pathlib; shutil.copytree('" + SourceDir() + "/models/tiny_decoder', '" + dir +
                        "'); p = pathlib.Path('" + dir + "/config.pbtxt'); "
                        "p.write_text(p.read_text().replace('name: \"tiny_decoder\"', 'name: \"" + name + "\"'))")
                  .ok());
  for (const auto& [file, contents] : files) {
    std::ofstream out(dir + "/" + file, std::ios::binary);
    out << contents;
  }
}

class ChatTemplateApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string data = SourceDir() + "/tests/data/chat_templates/";
    ASSERT_NO_FATAL_FAILURE(AddModel(dir_->path(), "tiny_decoder", {}));
    // The Llama-2 style template with the tokens its goldens were made with.
    ASSERT_NO_FATAL_FAILURE(AddModel(dir_->path(), "tiny_llama2",
                                     {{"chat_template.jinja", ReadText(data + "llama2.jinja")},
                                      {"tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "</s>"})"}}));
    // A template that writes the vocabulary's control token after each turn,
    // from tokenizer_config.json.
    ASSERT_NO_FATAL_FAILURE(AddModel(
        dir_->path(), "tiny_control",
        {{"tokenizer_config.json",
          R"({"chat_template": "{% for m in messages %}{{ m.content }}<|endoftext|>{% endfor %}"})"}}));
    ASSERT_NO_FATAL_FAILURE(AddModel(dir_->path(), "tiny_bad",
                                     {{"chat_template.jinja", "{% for m in messages %}\n{{ m | selectattr('x') }}"
                                                              "{% endfor %}"}}));
    auto server = ServerProcess::Start({"--model-repository", dir_->path()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* ChatTemplateApiTest::dir_ = nullptr;
ServerProcess* ChatTemplateApiTest::server_ = nullptr;

struct GoldenCase {
  std::string messages_json;  // the conversation, as the request's "messages"
  std::string output;
  std::string raised;
};

GoldenCase Golden(const std::string& name, const std::string& conversation) {
  const std::string data = SourceDir() + "/tests/data/chat_templates/";
  auto conversations = Json(ReadText(data + "conversations.json"));
  auto goldens = Json(ReadText(data + "goldens.json"));
  GoldenCase out;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  conversations[conversation.c_str()].Accept(w);
  out.messages_json = buf.GetString();
  for (const auto& c : goldens["cases"].GetArray()) {
    if (name == c["template"].GetString() && conversation == c["conversation"].GetString() &&
        c["add_generation_prompt"].GetBool()) {
      if (c.HasMember("output")) out.output = c["output"].GetString();
      if (c.HasMember("raised")) out.raised = c["raised"].GetString();
    }
  }
  return out;
}

size_t PlainTokens(const std::string& text) {
  auto tokenizer = pipeline::BpeTokenizer::FromTokenizerJson(SourceDir() + "/models/tiny_decoder/tokenizer.json");
  EXPECT_TRUE(tokenizer.ok());
  std::vector<int32_t> ids;
  pipeline::BpeEncodeOptions options;
  options.match_added_tokens = false;
  EXPECT_TRUE((*tokenizer)->Encode(text, options, &ids).ok());
  return ids.size();
}

TEST_F(ChatTemplateApiTest, AChatsPromptIsTheJinja2RenderingOfItsTemplate) {
  for (const std::string conversation : {"system_and_turns", "no_system", "one_user"}) {
    SCOPED_TRACE(conversation);
    const GoldenCase g = Golden("llama2", conversation);
    ASSERT_FALSE(g.output.empty());
    HttpClient client(server_->http_port());
    auto chat = client.Post("/v1/chat/completions", R"({"model":"tiny_llama2","max_tokens":8,"temperature":0,)"
                                                    R"("messages":)" + g.messages_json + "}");
    ASSERT_EQ(chat.status, 200u) << chat.body;
    auto completion = client.Post("/v1/completions", R"({"model":"tiny_decoder","max_tokens":8,"temperature":0,)"
                                                     R"("prompt":)" + Quote(g.output) + "}");
    ASSERT_EQ(completion.status, 200u) << completion.body;
    auto c = Json(chat.body), p = Json(completion.body);
    EXPECT_EQ(c["usage"]["prompt_tokens"].GetInt64(), static_cast<int64_t>(PlainTokens(g.output)));
    EXPECT_EQ(c["usage"]["prompt_tokens"].GetInt64(), p["usage"]["prompt_tokens"].GetInt64());
    EXPECT_EQ(std::string(c["choices"][0]["message"]["content"].GetString()), p["choices"][0]["text"].GetString());
  }
  // The model without a template still uses the simple one: another prompt.
  const GoldenCase g = Golden("llama2", "one_user");
  HttpClient client(server_->http_port());
  auto plain = Json(client.Post("/v1/chat/completions", R"({"model":"tiny_decoder","max_tokens":1,)"
                                                        R"("messages":)" + g.messages_json + "}").body);
  EXPECT_NE(plain["usage"]["prompt_tokens"].GetInt64(), static_cast<int64_t>(PlainTokens(g.output)));
}

TEST_F(ChatTemplateApiTest, RaiseExceptionIsA400InOpenAisShape) {
  const GoldenCase g = Golden("llama2", "bad_alternation");
  ASSERT_FALSE(g.raised.empty());
  HttpClient client(server_->http_port());
  auto res = client.Post("/v1/chat/completions",
                         R"({"model":"tiny_llama2","max_tokens":4,"messages":)" + g.messages_json + "}");
  EXPECT_EQ(res.status, 400u) << res.body;
  auto doc = Json(res.body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << res.body;
  EXPECT_EQ(std::string(doc["error"]["message"].GetString()),
            "the chat template refused the conversation: " + g.raised);
  EXPECT_EQ(client.Get("/v2/health/live").status, 200u);
}

// A session whose history no longer fits: dropping its oldest turn would
// start the conversation with the assistant, which the Llama-2 style
// template refuses, so that turn goes too and the chat is answered.
TEST_F(ChatTemplateApiTest, SessionTrimmingSkipsHistoriesTheTemplateRefuses) {
  HttpClient client(server_->http_port());
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "rash ";
  auto chat = [&](const std::string& content, const std::map<std::string, std::string>& headers) {
    return client.Post("/v1/chat/completions",
                       R"({"model":"tiny_llama2","max_tokens":8,"temperature":0,"messages":[{"role":"user","content":)" +
                           Quote(content) + "}]}",
                       headers);
  };
  auto first = chat(long_text, {{"X-Session-Id", "trim-1"}});
  ASSERT_EQ(first.status, 200u) << first.body;
  auto second = chat(long_text, {{"X-Session-Id", "trim-1"}});
  ASSERT_EQ(second.status, 200u) << second.body;
  auto alone = chat(long_text, {});
  ASSERT_EQ(alone.status, 200u) << alone.body;
  // Only the new message is left of the conversation.
  EXPECT_EQ(Json(second.body)["usage"]["prompt_tokens"].GetInt64(), Json(alone.body)["usage"]["prompt_tokens"].GetInt64());
  EXPECT_GT(2 * Json(alone.body)["usage"]["prompt_tokens"].GetInt64(), 248);  // two would not fit
}

TEST_F(ChatTemplateApiTest, ControlTokensAreMatchedOnlyWhereTheTemplateWroteThem) {
  HttpClient client(server_->http_port());
  const std::string a = "stop here <|endoftext|> or not", b = "<|endoftext|>";
  auto res = client.Post("/v1/chat/completions",
                         R"({"model":"tiny_control","max_tokens":1,"messages":[{"role":"user","content":)" +
                             Quote(a) + R"(},{"role":"assistant","content":)" + Quote(b) + "}]}");
  ASSERT_EQ(res.status, 200u) << res.body;
  // The template's two <|endoftext|> are one token each; the messages' are text.
  EXPECT_EQ(Json(res.body)["usage"]["prompt_tokens"].GetInt64(),
            static_cast<int64_t>(PlainTokens(a) + 1 + PlainTokens(b) + 1));
  EXPECT_GT(PlainTokens(b), 1u);
}

TEST_F(ChatTemplateApiTest, ATemplateOutsideTheSubsetFailsTheLoadNamingLineAndConstruct) {
  HttpClient client(server_->http_port());
  EXPECT_NE(client.Get("/v2/models/tiny_bad/ready").status, 200u);
  auto res = client.Post("/v2/repository/index", "");
  auto doc = Json(res.body);
  ASSERT_TRUE(doc.IsArray()) << res.body;
  std::string reason;
  for (const auto& e : doc.GetArray()) {
    if (std::string(e["name"].GetString()) == "tiny_bad" && e.HasMember("reason")) reason = e["reason"].GetString();
  }
  EXPECT_NE(reason.find("line 2: the filter 'selectattr' is not supported"), std::string::npos) << res.body;
  // The others are served.
  EXPECT_EQ(client.Get("/v2/models/tiny_llama2/ready").status, 200u);
}

}  // namespace
}  // namespace ortserve::testing
