// SPDX-License-Identifier: Apache-2.0
// Text pipelines end to end (issue 5): the real ortserve binary serving the
// demo SAE classifier and the demo embedding model, driven over REST: the SAE
// analyze API, KServe v2 infer with BYTES text, TEI /embed and /predict,
// OpenAI /v1/embeddings, concurrency, and padding invariance.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

std::string Quote(const std::string& text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  return buffer.GetString();
}

std::string SaeBody(const std::string& text) {
  return R"({"patientId": "patient-7", "reportText": )" + Quote(text) + "}";
}

struct Example {
  std::string text;
  std::string label;  // The most probable label (argmax).
  bool is_sae = false;  // p(serious) >= the config's threshold.
  double p_serious = 0;
  std::vector<double> probabilities;  // Calibrated, in labels.txt order.
  std::vector<int64_t> input_ids;
};

// The examples of models/sae_classifier/metrics.json (computed by the
// training script from the exported model, independently of ortserve, with
// the calibration temperature that config.pbtxt carries).
std::vector<Example> MetricsExamples() {
  std::ifstream in(SourceDir() + "/models/sae_classifier/metrics.json");
  std::stringstream text;
  text << in.rdbuf();
  auto doc = Json(text.str());
  std::vector<Example> examples;
  for (const auto& e : doc["examples"].GetArray()) {
    Example example{e["text"].GetString(), e["predicted_label"].GetString(), e["is_sae"].GetBool(),
                    e["p_serious"].GetDouble(), {}, {}};
    for (const auto& p : e["probabilities"].GetArray()) example.probabilities.push_back(p.GetDouble());
    for (const auto& id : e["input_ids"].GetArray()) example.input_ids.push_back(id.GetInt64());
    examples.push_back(std::move(example));
  }
  return examples;
}

Example MetricsExample(const std::string& text) {
  for (auto& example : MetricsExamples()) {
    if (example.text == text) return example;
  }
  ADD_FAILURE() << "no example in metrics.json for " << text;
  return {};
}

double CalibrationTemperature() {
  std::ifstream in(SourceDir() + "/models/sae_classifier/metrics.json");
  std::stringstream text;
  text << in.rdbuf();
  return Json(text.str())["calibration"]["temperature"].GetDouble();
}

std::vector<float> Floats(const rapidjson::Value& array) {
  std::vector<float> out;
  for (const auto& v : array.GetArray()) out.push_back(v.GetFloat());
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--tokenizer-threads", "2",
                                        "--sae-max-report-chars", "2000"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  HttpClient Client() { return HttpClient(server_->http_port()); }

  // /embed for one text, normalize off (raw mean pooling).
  std::vector<float> EmbedAlone(HttpClient& client, const std::string& text) {
    auto res = client.Post("/embed", R"({"inputs": )" + Quote(text) + R"(, "normalize": false, "truncate": true})");
    EXPECT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    return Floats(doc[0]);
  }

  static ServerProcess* server_;
};
ServerProcess* PipelineTest::server_ = nullptr;

TEST_F(PipelineTest, SaeAnalyzeMatchesTheModelsExpectedAnswers) {
  auto client = Client();
  const auto examples = MetricsExamples();
  ASSERT_GE(examples.size(), 10u);
  bool saw_negation = false;
  for (const auto& example : examples) {
    auto res = client.Post("/api/v1/sae/analyze", SaeBody(example.text));
    ASSERT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    const bool serious = example.is_sae;
    EXPECT_EQ(doc["isSAE"].GetBool(), serious) << example.text;
    const double confidence = serious ? example.p_serious : 1 - example.p_serious;
    EXPECT_NEAR(doc["confidence"].GetDouble(), confidence, 1e-4) << example.text;
    EXPECT_NEAR(doc["seriousProbability"].GetDouble(), example.p_serious, 1e-4) << example.text;
    EXPECT_STREQ(doc["label"].GetString(), example.label.c_str());
    EXPECT_STREQ(doc["modelVersion"].GetString(), "sae_classifier/1");
    EXPECT_STREQ(doc["patientId"].GetString(), "patient-7");
    EXPECT_GT(doc["requestId"].GetStringLength(), 0u);
    saw_negation |= example.text.find("no chest pain") != std::string::npos && !serious;
  }
  EXPECT_TRUE(saw_negation);
}

TEST_F(PipelineTest, SaeAnalyzeRejectsEveryInvalidBodyWith4xxAndAMessage) {
  auto client = Client();
  const std::string long_text(2001, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"not json", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"reportText": "chest pain"})", "missing field 'patientId'"},
      {R"({"patientId": "p"})", "missing field 'reportText'"},
      {R"({"patientId": 12, "reportText": "chest pain"})", "'patientId' must be a string"},
      {R"({"patientId": "p", "reportText": 3.5})", "'reportText' must be a string"},
      {R"({"patientId": "p", "reportText": null})", "'reportText' must be a string"},
      {R"({"patientId": "p", "reportText": ["chest pain"]})", "'reportText' must be a string"},
      {R"({"patientId": "", "reportText": "chest pain"})", "'patientId' must not be empty"},
      {R"({"patientId": "p", "reportText": ""})", "'reportText' must not be empty"},
      {R"({"patientId": "p", "reportText": "  \n "})", "'reportText' must not be empty"},
  };
  for (const auto& [body, message] : cases) {
    auto res = client.Post("/api/v1/sae/analyze", body);
    EXPECT_EQ(res.status, 400u) << body;
    auto doc = Json(res.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << res.body;
    EXPECT_NE(std::string(doc["error"].GetString()).find(message), std::string::npos)
        << body << " -> " << res.body;
  }
  EXPECT_EQ(client.Get("/api/v1/sae/analyze").status, 405u);
  // Over the hard limit (--sae-max-report-chars): 413, not a silent cut.
  auto res = client.Post("/api/v1/sae/analyze", R"({"patientId": "p", "reportText": ")" + long_text + R"("})");
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_NE(res.body.find("limit is 2000"), std::string::npos) << res.body;
}

TEST_F(PipelineTest, KserveInferTakesBytesTextRowsAndShowsTheTextSignature) {
  auto client = Client();
  auto meta = Json(client.Get("/v2/models/sae_classifier").body);
  EXPECT_STREQ(meta["inputs"][0]["name"].GetString(), "text");
  EXPECT_STREQ(meta["inputs"][0]["datatype"].GetString(), "BYTES");
  EXPECT_STREQ(meta["outputs"][0]["name"].GetString(), "label");

  auto res = client.Post("/v2/models/sae_classifier/infer", R"({"id": "rows", "inputs": [{"name": "text",
      "datatype": "BYTES", "shape": [3], "data": ["cant breath", "mild headache today",
      "I passed out in the bathroom this morning"]}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["id"].GetString(), "rows");
  std::map<std::string, const rapidjson::Value*> outputs;
  for (const auto& out : doc["outputs"].GetArray()) outputs[out["name"].GetString()] = &out;
  ASSERT_EQ(outputs.count("label"), 1u);
  // Expected values: metrics.json (the exported model run in torch).
  const Example expected[3] = {MetricsExample("cant breath"), MetricsExample("mild headache today"),
                               MetricsExample("I passed out in the bathroom this morning")};
  const auto& labels = (*outputs["label"])["data"];
  EXPECT_STREQ(labels[0].GetString(), "serious");
  EXPECT_STREQ(labels[1].GetString(), "not_serious");
  EXPECT_STREQ(labels[2].GetString(), "serious");
  const auto& probs = (*outputs["probabilities"]);
  EXPECT_EQ(probs["shape"][0].GetInt(), 3);
  const int n = probs["shape"][1].GetInt();
  EXPECT_EQ(n, 3) << "not_serious, serious, out_of_scope";
  for (int row = 0; row < 3; ++row) {
    double sum = 0;
    for (int k = 0; k < n; ++k) {
      const double p = probs["data"][row * n + k].GetDouble();
      sum += p;
      ASSERT_LT(static_cast<size_t>(k), expected[row].probabilities.size());
      EXPECT_NEAR(p, expected[row].probabilities[static_cast<size_t>(k)], 1e-4) << expected[row].text;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  const auto& positive = (*outputs["is_positive"])["data"];
  EXPECT_TRUE(positive[0].GetBool());
  EXPECT_FALSE(positive[1].GetBool());

  // Asking for one output returns only it; a model input name is not a text input.
  res = client.Post("/v2/models/sae_classifier/infer", R"({"inputs": [{"name": "text", "datatype": "BYTES",
      "shape": [1], "data": ["cant breath"]}], "outputs": [{"name": "positive_probability"}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  doc = Json(res.body);
  ASSERT_EQ(doc["outputs"].Size(), 1u);
  EXPECT_NEAR(doc["outputs"][0]["data"][0].GetDouble(), MetricsExample("cant breath").p_serious, 1e-4);
  res = client.Post("/v2/models/sae_classifier/infer", R"({"inputs": [{"name": "input_ids", "datatype": "INT64",
      "shape": [1, 2], "data": [2, 3]}]})");
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.body.find("'text'"), std::string::npos) << res.body;
  res = client.Post("/v2/models/sae_classifier/infer", R"({"inputs": [{"name": "text", "datatype": "FP32",
      "shape": [1], "data": [1.0]}]})");
  EXPECT_EQ(res.status, 400u);
}

TEST_F(PipelineTest, TeiPredictReturnsLabelsSortedByScore) {
  auto client = Client();
  auto res = client.Post("/predict", R"({"inputs": "I have been thinking about killing myself"})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.Size(), 3u) << "one score per label";
  EXPECT_STREQ(doc[0]["label"].GetString(), "serious");
  EXPECT_NEAR(doc[0]["score"].GetDouble(), MetricsExample("I have been thinking about killing myself").p_serious, 1e-4);
  EXPECT_GE(doc[0]["score"].GetDouble(), doc[1]["score"].GetDouble());

  res = client.Post("/predict", R"({"inputs": ["mild headache today", "cant breath"], "raw_scores": true})");
  ASSERT_EQ(res.status, 200u) << res.body;
  doc = Json(res.body);
  ASSERT_EQ(doc.Size(), 2u);
  EXPECT_STREQ(doc[0][0]["label"].GetString(), "not_serious");
  EXPECT_STREQ(doc[1][0]["label"].GetString(), "serious");
  // Raw scores are the model's own logits: their softmax at the calibration
  // temperature (config.pbtxt) is the served probability.
  const double t = CalibrationTemperature();
  double denominator = 0;
  for (const auto& entry : doc[1].GetArray()) denominator += std::exp((entry["score"].GetDouble() - doc[1][0]["score"].GetDouble()) / t);
  EXPECT_NEAR(1 / denominator, MetricsExample("cant breath").p_serious, 1e-4);

  res = client.Post("/predict", R"({"inputs": [["a", "b"]]})");
  EXPECT_EQ(res.status, 422u) << res.body;
  EXPECT_STREQ(Json(res.body)["error_type"].GetString(), "Validation");
}

TEST_F(PipelineTest, TeiEmbedReturnsNormalizedVectorsAndRefusesTooLongInput) {
  auto client = Client();
  auto res = client.Post("/embed", R"({"inputs": ["hello there", "my arm is sore"]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  ASSERT_EQ(doc.Size(), 2u);
  for (const auto& row : doc.GetArray()) {
    ASSERT_EQ(row.Size(), 64u);
    double norm = 0;
    for (const auto& v : row.GetArray()) norm += v.GetDouble() * v.GetDouble();
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
  res = client.Post("/embed", R"({"inputs": "hello there"})");
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(Json(res.body).Size(), 1u);

  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  res = client.Post("/embed", R"({"inputs": ")" + long_text + R"(", "truncate": false})");
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_STREQ(Json(res.body)["error_type"].GetString(), "Validation");
  res = client.Post("/embed", R"({"inputs": ")" + long_text + R"(", "truncate": true})");
  EXPECT_EQ(res.status, 200u) << res.body;
  res = client.Post("/embed", R"({"inputs": []})");
  EXPECT_EQ(res.status, 422u) << res.body;
}

TEST_F(PipelineTest, OpenAiEmbeddingsAnswerInTheirShapeWithUsage) {
  auto client = Client();
  auto res = client.Post("/v1/embeddings",
                         R"({"input": ["hello there", "my arm is sore"], "model": "text_embedding",
                             "encoding_format": "float"})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["object"].GetString(), "list");
  EXPECT_STREQ(doc["model"].GetString(), "text_embedding");
  ASSERT_EQ(doc["data"].Size(), 2u);
  EXPECT_STREQ(doc["data"][1]["object"].GetString(), "embedding");
  EXPECT_EQ(doc["data"][1]["index"].GetInt(), 1);
  EXPECT_EQ(doc["data"][1]["embedding"].Size(), 64u);
  // [CLS] hello there [SEP] and [CLS] my arm is sore [SEP]: at least 4 + 6 tokens.
  EXPECT_GE(doc["usage"]["prompt_tokens"].GetInt(), 10);
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), doc["usage"]["total_tokens"].GetInt());

  // The same vector as TEI's normalized /embed; no model field: --embed-model.
  auto tei = Json(client.Post("/embed", R"({"inputs": "hello there"})").body);
  res = client.Post("/v1/embeddings", R"({"input": "hello there"})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto single = Json(res.body);
  const auto a = Floats(single["data"][0]["embedding"]);
  const auto b = Floats(tei[0]);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5);

  res = client.Post("/v1/embeddings", R"({"input": "x", "model": "no_such_model"})");
  EXPECT_EQ(res.status, 404u) << res.body;
  EXPECT_STREQ(Json(res.body)["error"]["code"].GetString(), "model_not_found");
  res = client.Post("/v1/embeddings", R"({"model": "text_embedding"})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_STREQ(Json(res.body)["error"]["type"].GetString(), "invalid_request_error");
}

TEST_F(PipelineTest, ConcurrentRequestsAreAllAnsweredCorrectly) {
  const auto examples = MetricsExamples();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  std::vector<int> wrong(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(server_->http_port());
      for (int i = 0; i < kPerThread; ++i) {
        const auto& example = examples[static_cast<size_t>(t * kPerThread + i) % examples.size()];
        auto res = client.Post("/api/v1/sae/analyze", SaeBody(example.text));
        if (res.status != 200u) {
          ++wrong[t];
          continue;
        }
        auto doc = Json(res.body);
        if (doc["isSAE"].GetBool() != example.is_sae ||
            std::abs(doc["seriousProbability"].GetDouble() - example.p_serious) > 1e-4) {
          ++wrong[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

TEST_F(PipelineTest, RowsPaddedInOneBatchGiveTheSameResultAsAlone) {
  auto client = Client();
  const std::string short_text = "cant breath";
  // 4 and 13 tokens: the same length bucket (up to 16), so the batcher pads
  // the short row to the long one when they share a batch.
  const std::string long_text = "i had a seizure last night and my arm is sore";
  // Alone: each its own length, no padding.
  const auto short_alone = EmbedAlone(client, short_text);
  const auto long_alone = EmbedAlone(client, long_text);
  // Together in one request: both rows are queued at once and batched.
  for (int round = 0; round < 3; ++round) {
    auto res = client.Post("/embed", R"({"inputs": [)" + Quote(short_text) + ", " + Quote(long_text) +
                                         R"(], "normalize": false})");
    ASSERT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    const auto s = Floats(doc[0]);
    const auto l = Floats(doc[1]);
    for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(s[i], short_alone[i], 1e-4);
    for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(l[i], long_alone[i], 1e-4);
  }
  // Concurrently from two connections, and the classifier too.
  auto sae = [&](const std::string& text) {
    HttpClient c(server_->http_port());
    return Json(c.Post("/api/v1/sae/analyze", SaeBody(text)).body)["seriousProbability"].GetDouble();
  };
  const double p_short = sae(short_text);
  const double p_long = sae(long_text);
  for (int round = 0; round < 5; ++round) {
    double got_short = 0, got_long = 0;
    std::thread a([&] { got_short = sae(short_text); });
    std::thread b([&] { got_long = sae(long_text); });
    a.join();
    b.join();
    EXPECT_NEAR(got_short, p_short, 1e-4);
    EXPECT_NEAR(got_long, p_long, 1e-4);
  }
}

}  // namespace
}  // namespace ortserve::testing
