// SPDX-License-Identifier: Apache-2.0
// OpenAI completions and chat completions end to end (issue 22): the real
// ortserve binary serving the demo decoder (models/tiny_decoder), whole and
// streamed as Server-Sent Events, against the torch greedy goldens.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/server_harness.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::testing {
namespace {

class GenerationApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(RunPython("import shutil; shutil.copytree('" + SourceDir() + "/models/tiny_decoder', '" +
                          dir_->path() + "/tiny_decoder')")
                    .ok());
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
TempDir* GenerationApiTest::dir_ = nullptr;
ServerProcess* GenerationApiTest::server_ = nullptr;

// The first golden case: prompt, the text of its greedy ids, how many tokens.
struct Golden {
  std::string prompt;
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool eos = false;
};

Golden FirstGolden() {
  std::ifstream in(SourceDir() + "/tests/data/generation/greedy_goldens.json");
  std::stringstream s;
  s << in.rdbuf();
  auto doc = Json(s.str());
  const auto& c = doc["cases"][0];
  auto tokenizer = pipeline::BpeTokenizer::FromTokenizerJson(SourceDir() + "/models/tiny_decoder/tokenizer.json");
  EXPECT_TRUE(tokenizer.ok());
  std::vector<int32_t> ids;
  for (const auto& v : c["output_ids"].GetArray()) ids.push_back(v.GetInt());
  Golden g;
  g.prompt = c["prompt"].GetString();
  g.prompt_tokens = c["prompt_ids"].Size();
  g.completion_tokens = static_cast<int64_t>(ids.size());
  g.eos = ids.back() == doc["eos_token_id"].GetInt();
  if (g.eos) ids.pop_back();
  g.text = *(*tokenizer)->Decode(ids);
  return g;
}

// The data lines of an event stream, in order.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  return out;
}

TEST_F(GenerationApiTest, CompletionMatchesTheTorchGreedyGoldenWholeAndStreamed) {
  const Golden g = FirstGolden();
  HttpClient client(server_->http_port());
  const std::string request = R"({"model":"tiny_decoder","prompt":")" + g.prompt + R"(","max_tokens":)" +
                              std::to_string(g.completion_tokens) + R"(,"temperature":0)";
  auto res = client.Post("/v1/completions", request + "}");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  EXPECT_STREQ(doc["model"].GetString(), "tiny_decoder");
  EXPECT_EQ(std::string(doc["choices"][0]["text"].GetString()), g.text);
  EXPECT_STREQ(doc["choices"][0]["finish_reason"].GetString(), g.eos ? "stop" : "length");
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt64(), g.prompt_tokens);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt64(), g.completion_tokens);
  EXPECT_EQ(doc["usage"]["total_tokens"].GetInt64(), g.prompt_tokens + g.completion_tokens);

  // Streamed on the same keep-alive connection: chunks whose texts add up.
  res = client.Post("/v1/completions", request + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.Header("content-type"), "text/event-stream");
  EXPECT_EQ(res.Header("transfer-encoding"), "chunked");
  const auto events = Events(res.body);
  ASSERT_GE(events.size(), 3u) << res.body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    auto e = Json(events[i]);
    EXPECT_STREQ(e["object"].GetString(), "text_completion");
    if (e["choices"].Size() == 0) {  // the usage chunk
      EXPECT_EQ(e["usage"]["completion_tokens"].GetInt64(), g.completion_tokens);
      continue;
    }
    text += e["choices"][0]["text"].GetString();
    if (!e["choices"][0]["finish_reason"].IsNull()) finish = e["choices"][0]["finish_reason"].GetString();
  }
  EXPECT_EQ(text, g.text);
  EXPECT_EQ(finish, g.eos ? "stop" : "length");
  // The connection is still good for the next request.
  EXPECT_EQ(client.Get("/v2/health/live").status, 200u);
}

// Many streams at once on the server's few event loops (their events are
// handed over once per decode step and loop, several of a stream in one
// write while its last write is in flight): each stream's events add up to
// its whole answer (greedy: the same text as answered whole), with one
// finish, the usage and the end marker.
TEST_F(GenerationApiTest, ConcurrentStreamsEachGetTheirWholeAnswer) {
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "The headache started",
                                            "After the second dose I had a fever"};
  constexpr int kStreams = 12;
  auto body = [&](int i, bool stream) {
    return R"({"model":"tiny_decoder","prompt":")" + prompts[i % prompts.size()] +
           R"(","temperature":0,"ignore_eos":true,"max_tokens":)" + std::to_string(20 + 7 * i) +
           (stream ? R"(,"stream":true,"stream_options":{"include_usage":true}})" : "}");
  };
  std::vector<std::string> want(kStreams);
  HttpClient client(server_->http_port());
  for (int i = 0; i < kStreams; ++i) {
    auto res = client.Post("/v1/completions", body(i, false));
    ASSERT_EQ(res.status, 200u) << res.body;
    want[i] = Json(res.body)["choices"][0]["text"].GetString();
  }
  std::vector<HttpResponse> got(kStreams);
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      HttpClient c(server_->http_port());
      got[i] = c.Post("/v1/completions", body(i, true));
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_EQ(got[i].status, 200u) << got[i].body;
    const auto events = Events(got[i].body);
    ASSERT_GE(events.size(), 3u) << got[i].body;
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    int finishes = 0, usages = 0;
    for (size_t k = 0; k + 1 < events.size(); ++k) {
      auto e = Json(events[k]);
      if (e["choices"].Size() == 0) {
        ++usages;
        EXPECT_EQ(e["usage"]["completion_tokens"].GetInt64(), 20 + 7 * i);
        continue;
      }
      text += e["choices"][0]["text"].GetString();
      if (!e["choices"][0]["finish_reason"].IsNull()) ++finishes;
    }
    EXPECT_EQ(text, want[i]) << "stream " << i;
    EXPECT_EQ(finishes, 1);
    EXPECT_EQ(usages, 1);
  }
}

TEST_F(GenerationApiTest, ChatCompletionsWholeAndStreamed) {
  HttpClient client(server_->http_port());
  const std::string request =
      R"({"model":"tiny_decoder","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":"I have a rash"}],"max_tokens":6,"temperature":0.8,"seed":7)";
  auto res = client.Post("/v1/chat/completions", request + "}");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["object"].GetString(), "chat.completion");
  EXPECT_STREQ(doc["choices"][0]["message"]["role"].GetString(), "assistant");
  const std::string whole = doc["choices"][0]["message"]["content"].GetString();
  // The same seed gives the same text, streamed.
  res = client.Post("/v1/chat/completions", request + R"(,"stream":true})");
  ASSERT_EQ(res.status, 200u) << res.body;
  const auto events = Events(res.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    auto e = Json(events[i]);
    EXPECT_STREQ(e["object"].GetString(), "chat.completion.chunk");
    const auto& delta = e["choices"][0]["delta"];
    if (i == 0) EXPECT_STREQ(delta["role"].GetString(), "assistant");
    if (delta.HasMember("content")) text += delta["content"].GetString();
  }
  EXPECT_EQ(text, whole);
}

TEST_F(GenerationApiTest, ErrorsComeInOpenAisShape) {
  HttpClient client(server_->http_port());
  auto expect = [&](const std::string& target, const std::string& body, unsigned status, const std::string& part) {
    auto res = client.Post(target, body);
    EXPECT_EQ(res.status, status) << body << " -> " << res.body;
    auto doc = Json(res.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << res.body;
    EXPECT_NE(std::string(doc["error"]["message"].GetString()).find(part), std::string::npos) << res.body;
    EXPECT_TRUE(doc["error"].HasMember("type"));
  };
  expect("/v1/completions", R"({"model":"nope","prompt":"x"})", 404, "nope");
  expect("/v1/completions", R"({"model":"tiny_decoder","prompt":"x","temperature":-1})", 400, "temperature");
  expect("/v1/completions", R"({"model":"tiny_decoder","prompt":"x","max_tokens":250})", 400, "max_tokens");
  expect("/v1/completions", R"({"model":"tiny_decoder","prompt":"x","n":2})", 400, "'n'");
  expect("/v1/completions", R"({"model":"tiny_decoder"})", 400, "prompt");
  expect("/v1/completions", R"({"model":"tiny_decoder","prompt":"x","prompt":"y"})", 400, "prompt");
  expect("/v1/completions", "{not json", 400, "JSON");
  expect("/v1/chat/completions", R"({"model":"tiny_decoder","messages":[]})", 400, "messages");
  expect("/v1/chat/completions", R"({"model":"tiny_decoder","messages":[{"role":"x","content":"y"}]})", 400,
         "role");
  expect("/v1/completions", std::string(R"({"model":"tiny_decoder","prompt":")") + "\xC3(" + "\"}", 400, "");
  // The model is listed.
  auto models = Json(client.Get("/v1/models").body);
  bool listed = false;
  for (const auto& m : models["data"].GetArray()) listed |= std::string(m["id"].GetString()) == "tiny_decoder";
  EXPECT_TRUE(listed);
}

// Triton's generate extension: /generate answers whole, /generate_stream as
// Server-Sent Events; the text is the greedy golden's either way.
TEST_F(GenerationApiTest, TritonGenerateAndGenerateStream) {
  const Golden g = FirstGolden();
  HttpClient client(server_->http_port());
  const std::string request = R"({"text_input":")" + g.prompt + R"(","parameters":{"max_tokens":)" +
                              std::to_string(g.completion_tokens) + R"(,"temperature":0}})";
  auto res = client.Post("/v2/models/tiny_decoder/generate", request);
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.Header("content-type"), "application/json");
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["model_name"].GetString(), "tiny_decoder");
  EXPECT_STREQ(doc["model_version"].GetString(), "1");
  EXPECT_EQ(std::string(doc["text_output"].GetString()), g.text);
  EXPECT_EQ(doc["completion_tokens"].GetInt64(), g.completion_tokens);
  // With the version in the path, and parameters beside text_input.
  res = client.Post("/v2/models/tiny_decoder/versions/1/generate",
                    R"({"text_input":")" + g.prompt + R"(","max_tokens":)" + std::to_string(g.completion_tokens) +
                        R"(,"temperature":0})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(std::string(Json(res.body)["text_output"].GetString()), g.text);

  res = client.Post("/v2/models/tiny_decoder/generate_stream", request);
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.Header("content-type"), "text/event-stream");
  const auto events = Events(res.body);
  ASSERT_GE(events.size(), 2u) << res.body;
  std::string text;
  for (const std::string& e : events) {
    auto chunk = Json(e);
    EXPECT_STREQ(chunk["model_name"].GetString(), "tiny_decoder");
    EXPECT_STREQ(chunk["model_version"].GetString(), "1");
    text += chunk["text_output"].GetString();
  }
  EXPECT_EQ(text, g.text);
  auto last = Json(events.back());
  EXPECT_STREQ(last["finish_reason"].GetString(), g.eos ? "stop" : "length");
  EXPECT_EQ(client.Get("/v2/health/live").status, 200u);  // the connection is still good
}

TEST_F(GenerationApiTest, TritonGenerateErrorsAreTritonsShape) {
  HttpClient client(server_->http_port());
  auto expect = [&](const std::string& target, const std::string& body, unsigned status, const std::string& part) {
    auto res = client.Post(target, body);
    EXPECT_EQ(res.status, status) << body << " -> " << res.body;
    auto doc = Json(res.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) << res.body;
    EXPECT_NE(std::string(doc["error"].GetString()).find(part), std::string::npos) << res.body;
  };
  expect("/v2/models/tiny_decoder/generate", R"({"parameters":{}})", 400, "text_input");
  expect("/v2/models/tiny_decoder/generate", R"({"text_input":3})", 400, "text_input");
  expect("/v2/models/tiny_decoder/generate", R"({"text_input":"x","parameters":{"temperature":-1}})", 400,
         "temperature");
  expect("/v2/models/tiny_decoder/generate", R"({"text_input":"x","parameters":{"beam_width":2}})", 400,
         "beam_width");
  expect("/v2/models/tiny_decoder/generate", R"({"text_input":"x","parameters":{"max_tokens":250}})", 400,
         "max_tokens");
  expect("/v2/models/tiny_decoder/generate_stream", "{not json", 400, "JSON");
  expect("/v2/models/nope/generate", R"({"text_input":"x"})", 404, "nope");
  expect("/v2/models/tiny_decoder/versions/9/generate", R"({"text_input":"x"})", 404, "");
}

// A conversation session: the second turn's prompt holds the first turn
// (its question and the answer given), exactly as if the client had sent
// the whole conversation itself.
TEST_F(GenerationApiTest, ASessionsSecondTurnSeesTheFirst) {
  HttpClient client(server_->http_port());
  auto chat = [&](const std::string& messages, const std::map<std::string, std::string>& headers,
                  const std::string& extra = "") {
    auto res = client.Post("/v1/chat/completions",
                           R"({"model":"tiny_decoder","max_tokens":5,"temperature":0,"messages":)" + messages +
                               extra + "}",
                           headers);
    EXPECT_EQ(res.status, 200u) << res.body;
    return Json(res.body);
  };
  const std::string first = R"({"role":"user","content":"I have a rash"})";
  const std::string second = R"({"role":"user","content":"It itches at night"})";
  auto turn1 = chat("[" + first + "]", {{"X-Session-Id", "patient-7"}});
  const std::string answer1 = turn1["choices"][0]["message"]["content"].GetString();
  auto turn2 = chat("[" + second + "]", {{"X-Session-Id", "patient-7"}});

  // The same conversation sent whole, without a session.
  std::string quoted;
  {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(answer1.c_str(), static_cast<rapidjson::SizeType>(answer1.size()));
    quoted = buf.GetString();
  }
  auto whole = chat("[" + first + R"(,{"role":"assistant","content":)" + quoted + "}," + second + "]", {});
  EXPECT_EQ(turn2["usage"]["prompt_tokens"].GetInt64(), whole["usage"]["prompt_tokens"].GetInt64());
  EXPECT_EQ(std::string(turn2["choices"][0]["message"]["content"].GetString()),
            whole["choices"][0]["message"]["content"].GetString());
  // Another session (named in the body) starts empty.
  auto other = chat("[" + second + "]", {}, R"(,"session_id":"patient-8")");
  auto alone = chat("[" + second + "]", {});
  EXPECT_EQ(other["usage"]["prompt_tokens"].GetInt64(), alone["usage"]["prompt_tokens"].GetInt64());
  EXPECT_LT(alone["usage"]["prompt_tokens"].GetInt64(), turn2["usage"]["prompt_tokens"].GetInt64());
  // A session id that breaks the rules is refused by name.
  auto bad = client.Post("/v1/chat/completions",
                         R"({"model":"tiny_decoder","max_tokens":2,"messages":[)" + first + "]}",
                         {{"X-Session-Id", "a/b"}});
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("session id"), std::string::npos) << bad.body;
}

}  // namespace
}  // namespace ortserve::testing
