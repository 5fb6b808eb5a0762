// SPDX-License-Identifier: Apache-2.0
// Where a model's chat template comes from (docs/model_config.md, "Chat
// templates"): generation.chat_template (a template file or a
// tokenizer_config.json), else chat_template.jinja, else tokenizer_config.json
// beside the tokenizer, else none; the template's bos/eos tokens; and the
// load errors naming the field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/strings.h"
#include "generation/generation_config.h"

namespace ortserve::generation {
namespace {

namespace fs = std::filesystem;

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
  return ORTSERVE_SOURCE_DIR_DEFAULT;
}

class ChatTemplateConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chat_template_config_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::copy_file(SourceDir() + "/models/tiny_decoder/tokenizer.json", dir_ / "tokenizer.json");
    block_.set_tokenizer("tokenizer.json");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  // The loaded template's rendering of one user message, or the load error.
  std::string Render() {
    auto setup = LoadGenerationConfig(block_, dir_.string());
    if (!setup.ok()) return StrCat("error: ", ToStd(setup.status().message()));
    if (setup->chat_template == nullptr) return "none";
    std::vector<ChatMessage> messages = {{"user", "hi", 0}};
    auto r = setup->chat_template->Render(messages, true);
    return r.ok() ? r->text : StrCat("render error: ", ToStd(r.status().message()));
  }
  fs::path dir_;
  config::ModelGeneration block_;
};

TEST_F(ChatTemplateConfigTest, NoTemplateAnywhereMeansTheSimpleOne) {
  EXPECT_EQ(Render(), "none");
  Write("tokenizer_config.json", R"({"eos_token": "</s>"})");  // no chat_template in it
  EXPECT_EQ(Render(), "none");
}

TEST_F(ChatTemplateConfigTest, TheFieldWinsThenChatTemplateJinjaThenTokenizerConfig) {
  Write("tokenizer_config.json", R"({"chat_template": "config:{{ messages[0].content }}", "bos_token": "<s>",
                                     "eos_token": {"content": "</s>"}})");
  EXPECT_EQ(Render(), "config:hi");
  Write("chat_template.jinja", "jinja:{{ bos_token }}{{ messages[0].content }}{{ eos_token }}\n");
  EXPECT_EQ(Render(), "jinja:<s>hi</s>");  // the file's last newline dropped, as Jinja does
  Write("mine.jinja", "field:{{ messages | length }}");
  block_.set_chat_template("mine.jinja");
  EXPECT_EQ(Render(), "field:1");
  Write("other_config.json", R"({"chat_template": [{"name": "default", "template": "named:{{ eos_token }}"}],
                                 "eos_token": "<|eot|>"})");
  block_.set_chat_template("other_config.json");
  EXPECT_EQ(Render(), "named:<|eot|>");
}

TEST_F(ChatTemplateConfigTest, EosTokenFallsBackToTheBlocksFirstEosToken) {
  Write("chat_template.jinja", "[{{ bos_token }}|{{ eos_token }}]");
  EXPECT_EQ(Render(), "[|<|endoftext|>]");  // the default eos, in this vocabulary
  block_.add_eos_token("<|endoftext|>");
  EXPECT_EQ(Render(), "[|<|endoftext|>]");
}

TEST_F(ChatTemplateConfigTest, LoadErrorsNameTheFieldAndFile) {
  block_.set_chat_template("../outside.jinja");
  EXPECT_NE(Render().find("generation.chat_template must not contain '..'"), std::string::npos) << Render();
  block_.set_chat_template("missing.jinja");
  EXPECT_NE(Render().find("generation.chat_template: cannot read"), std::string::npos) << Render();
  Write("empty_config.json", "{}");
  block_.set_chat_template("empty_config.json");
  EXPECT_NE(Render().find("has no chat_template"), std::string::npos) << Render();
  Write("bad.jinja", "ok\n{% macro m() %}{% endmacro %}");
  block_.set_chat_template("bad.jinja");
  EXPECT_NE(Render().find("bad.jinja\": line 2: the tag 'macro' is not supported"), std::string::npos) << Render();
  block_.clear_chat_template();
  Write("tokenizer_config.json", R"({"chat_template": 7})");
  EXPECT_NE(Render().find("tokenizer_config.json\": chat_template must be a string"), std::string::npos) << Render();
}

}  // namespace
}  // namespace ortserve::generation
