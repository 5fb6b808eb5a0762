// SPDX-License-Identifier: Apache-2.0
// The SAE endpoint as a safety team uses it (issue 17), against the real
// ortserve binary and the real demo model: long reports read as windows
// (never cut silently), the hard limits (413), routing (X-Model-Version, a
// split sticky on patientId), X-Request-Id, duplicate keys, patientId
// limits, the request and verdict metrics, and the response fields.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

namespace fs = std::filesystem;

std::string Quote(const std::string& text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  return buffer.GetString();
}

std::string SaeBody(const std::string& text, const std::string& patient = "patient-7") {
  return R"({"patientId": )" + Quote(patient) + R"(, "reportText": )" + Quote(text) + "}";
}

const std::string kEvent = "Then I could not breathe and my husband called 911.";

// A benign report of at least `words` words: mild symptoms, varied so that
// no window is one phrase repeated.
std::string BenignReport(size_t words) {
  static const std::vector<std::string> sentences = {
      "I had a mild headache today.",
      "My arm was a little sore where the shot went in.",
      "Felt a little tired today.",
      "Slept fine last night.",
      "A bit of nausea after lunch but it passed quickly.",
      "No fever today.",
      "Did some gardening and felt okay.",
      "My arm is a bit red and itchy.",
      "Feeling fine otherwise.",
  };
  std::string text;
  size_t count = 0;
  for (size_t i = 0; count < words; ++i) {
    const std::string& s = sentences[i % sentences.size()];
    text += s + " ";
    count += static_cast<size_t>(std::count(s.begin(), s.end(), ' ')) + 1;
  }
  return text;
}

// The report with `event` inserted at the start, middle or end.
std::string WithEvent(const std::string& benign, const std::string& event, int where) {
  if (where == 0) return event + " " + benign;
  if (where == 2) return benign + event;
  size_t middle = benign.find(". ", benign.size() / 2);
  if (middle == std::string::npos) middle = benign.size() / 2;
  return benign.substr(0, middle + 2) + event + " " + benign.substr(middle + 2);
}

class SaeEndpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--tokenizer-threads", "2",
                                        "--sae-max-report-chars", "30000", "--metrics-port", "0",
                                        "--access-log"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  HttpClient Client() { return HttpClient(server_->http_port()); }
  rapidjson::Document Analyze(const std::string& text, const std::string& patient = "patient-7") {
    auto client = Client();
    auto res = client.Post("/api/v1/sae/analyze", SaeBody(text, patient));
    EXPECT_EQ(res.status, 200u) << res.body;
    return Json(res.body);
  }
  std::string Metrics() { return HttpClient(server_->metrics_port()).Get("/metrics").body; }

  static ServerProcess* server_;
};
ServerProcess* SaeEndpointTest::server_ = nullptr;

TEST_F(SaeEndpointTest, AnswersWithEveryDocumentedField) {
  auto doc = Analyze("I felt dizzy after the second dose and then fainted in the kitchen");
  for (const char* field : {"isSAE", "confidence", "seriousProbability", "threshold", "label", "reviewRecommended",
                            "windows", "patientId", "modelVersion", "requestId", "disclaimer"}) {
    EXPECT_TRUE(doc.HasMember(field)) << field;
  }
  const double p = doc["seriousProbability"].GetDouble();
  // The threshold the training script chose and wrote to config.pbtxt (and metrics.json).
  std::ifstream metrics_file(SourceDir() + "/models/sae_classifier/metrics.json");
  std::stringstream metrics;
  metrics << metrics_file.rdbuf();
  const double threshold = Json(metrics.str())["threshold"].GetDouble();
  // As written (0.05), not as the float it is kept in (0.05000000074505806).
  EXPECT_EQ(doc["threshold"].GetDouble(), threshold);
  EXPECT_EQ(doc["isSAE"].GetBool(), p >= doc["threshold"].GetDouble());
  EXPECT_NEAR(doc["confidence"].GetDouble(), doc["isSAE"].GetBool() ? p : 1 - p, 1e-6);  // float digits
  EXPECT_EQ(doc["windows"].GetInt64(), 1);
  EXPECT_FALSE(doc["reviewRecommended"].GetBool());
  EXPECT_STREQ(doc["modelVersion"].GetString(), "sae_classifier/1");
  EXPECT_NE(std::string(doc["disclaimer"].GetString()).find("not a medical device"), std::string::npos);
}

TEST_F(SaeEndpointTest, TheIssuesLongReportIsReadOverSeveralWindowsAndTheEventIsSeen) {
  std::string mild;
  for (int i = 0; i < 25; ++i) mild += "I had a mild headache today. ";
  const auto alone = Analyze(kEvent);
  const auto benign = Analyze(mild);
  const auto report = Analyze(mild + kEvent);
  EXPECT_EQ(alone["windows"].GetInt64(), 1);
  EXPECT_GT(benign["windows"].GetInt64(), 1);
  EXPECT_GT(report["windows"].GetInt64(), 1) << "the report is longer than the model's 32-token windows";
  EXPECT_FALSE(benign["isSAE"].GetBool());
  // The decision is the most serious window's: the window holding the event
  // is read, so the report is at least as serious as the mild part alone.
  EXPECT_GT(report["seriousProbability"].GetDouble(), benign["seriousProbability"].GetDouble());
  // The issue's case: the event alone is serious, and so is the long report.
  EXPECT_TRUE(alone["isSAE"].GetBool()) << alone["seriousProbability"].GetDouble();
  EXPECT_TRUE(report["isSAE"].GetBool()) << "the event must be found in the long report: "
                                         << report["seriousProbability"].GetDouble();

  // The old behaviour, for contrast: KServe text without sliding_window is
  // cut at 128 tokens and never sees the event.
  auto client = Client();
  auto cut = client.Post("/v2/models/sae_classifier/infer",
                         R"({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [)" +
                             Quote(mild + kEvent) + R"(]}], "outputs": [{"name": "positive_probability"}]})");
  ASSERT_EQ(cut.status, 200u) << cut.body;
  const double p_cut = Json(cut.body)["outputs"][0]["data"][0].GetDouble();
  // What the cut reads is the mild part's first 126 tokens, whatever follows.
  auto cut_mild = client.Post("/v2/models/sae_classifier/infer",
                              R"({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [)" +
                                  Quote(mild) + R"(]}], "outputs": [{"name": "positive_probability"}]})");
  ASSERT_EQ(cut_mild.status, 200u) << cut_mild.body;
  EXPECT_NEAR(p_cut, Json(cut_mild.body)["outputs"][0]["data"][0].GetDouble(), 1e-6);
  // Asked for, KServe reads the windows too and says how many.
  auto windowed = client.Post("/v2/models/sae_classifier/infer",
                              R"({"parameters": {"sliding_window": true}, "inputs": [{"name": "text",
                                 "datatype": "BYTES", "shape": [1], "data": [)" +
                                  Quote(mild + kEvent) + R"(]}], "outputs": [{"name": "positive_probability"}]})");
  ASSERT_EQ(windowed.status, 200u) << windowed.body;
  auto w = Json(windowed.body);
  EXPECT_NEAR(w["outputs"][0]["data"][0].GetDouble(), report["seriousProbability"].GetDouble(), 1e-5);
  EXPECT_EQ(w["parameters"]["windows"].GetInt64(), report["windows"].GetInt64());
}

TEST_F(SaeEndpointTest, AnEventAtTheStartMiddleOrEndOfA2000WordReportChangesTheDecision) {
  const std::string benign = BenignReport(2000);
  const auto base = Analyze(benign);
  EXPECT_GT(base["windows"].GetInt64(), 10);
  // A diary of mild symptoms only is no SAE, however long.
  EXPECT_FALSE(base["isSAE"].GetBool()) << base["seriousProbability"].GetDouble();
  // Events of two seriousness criteria (life-threatening, medically
  // important with a hospital stay). Known gap (docs/sae_model.md, "What the
  // model still cannot do"): the demo model misses "I took an overdose of 40
  // tablets." inside this diary, although it flags it alone and after the
  // issue's 25 headache sentences.
  for (const std::string& event : {kEvent, std::string("On Sunday I had a heart attack and was kept in hospital.")}) {
    SCOPED_TRACE(event);
    const auto alone = Analyze(event);
    EXPECT_TRUE(alone["isSAE"].GetBool()) << alone["seriousProbability"].GetDouble();
    for (int where = 0; where < 3; ++where) {
      SCOPED_TRACE(where == 0 ? "start" : where == 1 ? "middle" : "end");
      const auto doc = Analyze(WithEvent(benign, event, where));
      EXPECT_GE(doc["windows"].GetInt64(), base["windows"].GetInt64());
      // The most serious window decides, and one window holds the event.
      EXPECT_GT(doc["seriousProbability"].GetDouble(), base["seriousProbability"].GetDouble());
      EXPECT_TRUE(doc["isSAE"].GetBool()) << "the event must be found in a 2,000-word report: "
                                          << doc["seriousProbability"].GetDouble();
      EXPECT_NEAR(doc["seriousProbability"].GetDouble(), alone["seriousProbability"].GetDouble(), 0.1);
    }
  }
}

TEST_F(SaeEndpointTest, RefusesOnlyAboveTheDocumentedHardLimitsWith413) {
  auto client = Client();
  // Over --sae-max-report-chars (30000 here).
  auto res = client.Post("/api/v1/sae/analyze", SaeBody(std::string(30001, 'a')));
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_NE(res.body.find("the limit is 30000"), std::string::npos) << res.body;
  // Under it, but one token per two characters: 12,000 tokens need 750
  // windows of 30 tokens 16 apart, over text_pipeline.max_windows (512).
  std::string tokens;
  for (int i = 0; i < 12000; ++i) tokens += "a ";
  res = client.Post("/api/v1/sae/analyze", SaeBody(tokens));
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_NE(res.body.find("max_windows"), std::string::npos) << res.body;
  // 6,000 tokens fit (375 windows).
  res = client.Post("/api/v1/sae/analyze", SaeBody(tokens.substr(0, 12000)));
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(Json(res.body)["windows"].GetInt64(), 375);
}

TEST_F(SaeEndpointTest, PredictReadsLongTextsAsWindowsUnlessAskedToTruncate) {
  auto client = Client();
  std::string mild;
  for (int i = 0; i < 25; ++i) mild += "I had a mild headache today. ";
  const auto alone = Analyze(kEvent);
  const auto report = Analyze(mild + kEvent);
  auto res = client.Post("/predict", R"({"inputs": )" + Quote(mild + kEvent) + "}");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  // The scores are the most serious window's, as the SAE API's.
  double serious = -1;
  for (const auto& entry : doc.GetArray()) {
    if (std::string(entry["label"].GetString()) == "serious") serious = entry["score"].GetDouble();
  }
  EXPECT_NEAR(serious, report["seriousProbability"].GetDouble(), 1e-5);
  EXPECT_TRUE(alone["isSAE"].GetBool());
  EXPECT_STREQ(doc[0]["label"].GetString(), "serious");
  // truncate: true is TEI's cut at max_length (128 tokens): the event is lost.
  res = client.Post("/predict", R"({"inputs": )" + Quote(mild + kEvent) + R"(, "truncate": true})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto cut_mild = client.Post("/predict", R"({"inputs": )" + Quote(mild) + R"(, "truncate": true})");
  ASSERT_EQ(cut_mild.status, 200u) << cut_mild.body;
  // The same answer as for the mild part alone: the cut never reaches the event.
  EXPECT_STREQ(Json(res.body)[0]["label"].GetString(), Json(cut_mild.body)[0]["label"].GetString());
  EXPECT_NEAR(Json(res.body)[0]["score"].GetDouble(), Json(cut_mild.body)[0]["score"].GetDouble(), 1e-6);
  // Past the window limit: 413, TEI's Validation error.
  std::string tokens;
  for (int i = 0; i < 12000; ++i) tokens += "a ";
  res = client.Post("/predict", R"({"inputs": )" + Quote(tokens) + "}");
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_STREQ(Json(res.body)["error_type"].GetString(), "Validation");
  // Windows are for classifiers: an embedding model refuses them.
  res = client.Post("/v2/models/text_embedding/infer",
                    R"({"parameters": {"sliding_window": true}, "inputs": [{"name": "text", "datatype": "BYTES",
                        "shape": [1], "data": ["hello"]}]})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("sliding_window"), std::string::npos) << res.body;
}

TEST_F(SaeEndpointTest, EchoesAValidXRequestIdAndReplacesAnInvalidOne) {
  auto client = Client();
  auto res = client.Post("/api/v1/sae/analyze", SaeBody("mild headache"), {{"X-Request-Id", "trial-42.visit:3"}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.Header("x-request-id"), "trial-42.visit:3");
  EXPECT_STREQ(Json(res.body)["requestId"].GetString(), "trial-42.visit:3");

  for (const std::string& bad : {std::string("has space"), std::string(129, 'x'), std::string("a\"b")}) {
    res = client.Post("/api/v1/sae/analyze", SaeBody("mild headache"), {{"X-Request-Id", bad}});
    ASSERT_EQ(res.status, 200u) << res.body;
    const std::string id = Json(res.body)["requestId"].GetString();
    EXPECT_NE(id, bad);
    EXPECT_EQ(id.size(), 36u) << id;  // A fresh UUID.
    EXPECT_EQ(res.Header("x-request-id"), id);
  }
  // Errors carry it too, and the access log names it with the model.
  res = client.Post("/api/v1/sae/analyze", R"({"patientId": ""})", {{"X-Request-Id", "bad-body-1"}});
  EXPECT_EQ(res.status, 400u);
  EXPECT_EQ(res.Header("x-request-id"), "bad-body-1");
  EXPECT_STREQ(Json(res.body)["requestId"].GetString(), "bad-body-1");
  EXPECT_TRUE(WaitUntil([&] {
    const std::string out = server_->Output();
    const size_t at = out.find("trial-42.visit:3");
    return at != std::string::npos && out.find("sae_classifier", out.rfind('\n', at)) != std::string::npos;
  })) << server_->Output();
}

TEST_F(SaeEndpointTest, DuplicateKeysAreRefusedWith400NamingTheKey) {
  auto client = Client();
  auto res = client.Post("/api/v1/sae/analyze",
                         R"({"patientId": "p", "reportText": "mild headache", "reportText": "I cant breathe"})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("duplicate key 'reportText'"), std::string::npos) << res.body;
  // An escaped spelling of the same key is the same key.
  res = client.Post("/api/v1/sae/analyze", R"({"patientId": "p", "patient\u0049d": "q", "reportText": "x"})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("duplicate key 'patientId'"), std::string::npos) << res.body;
  res = client.Post("/predict", R"({"inputs": "mild headache", "inputs": "I cant breathe"})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("duplicate key 'inputs'"), std::string::npos) << res.body;
  res = client.Post("/embed", R"({"inputs": "a", "truncate": true, "truncate": false})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("duplicate key 'truncate'"), std::string::npos) << res.body;
}

TEST_F(SaeEndpointTest, PatientIdIsLimitedInLengthAndToPrintableCharacters) {
  auto client = Client();
  auto post = [&](const std::string& patient_json) {
    return client.Post("/api/v1/sae/analyze", R"({"patientId": )" + patient_json + R"(, "reportText": "mild"})");
  };
  EXPECT_EQ(post(Quote(std::string(128, 'p'))).status, 200u);
  auto res = post(Quote(std::string(129, 'p')));
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.body.find("longer than 128"), std::string::npos) << res.body;
  res = post(Quote(std::string(5000, 'p')));
  EXPECT_EQ(res.status, 400u);
  EXPECT_EQ(res.body.find(std::string(200, 'p')), std::string::npos) << "a refused id is not echoed";
  EXPECT_EQ(post(R"("Zoë-Ødegård 42")").status, 200u);  // Printable UTF-8 is fine.
  for (const char* bad : {R"("p\u0007")", R"("p\nq")", R"("p\u202eq")", R"("\u0085")", R"("p\u2028")"}) {
    res = post(bad);
    EXPECT_EQ(res.status, 400u) << bad;
    EXPECT_NE(res.body.find("patientId"), std::string::npos) << res.body;
  }
}

TEST_F(SaeEndpointTest, TextTrafficIsCountedUnderItsModelWithVerdicts) {
  auto client = Client();
  const std::vector<std::string> series = {"model=\"sae_classifier\"", "version=\"1\"", "protocol=\"http\""};
  auto ok_before = MetricValue(Metrics(), "ortserve_request_total", {series[0], series[1], series[2],
                                                                     "outcome=\"success\""});
  auto bad_before = MetricValue(Metrics(), "ortserve_request_total", {series[0], series[1], series[2],
                                                                      "outcome=\"client_error\""});
  int serious = 0;
  int not_serious = 0;
  for (const std::string& text : {std::string("mild headache today"), kEvent,
                                  std::string("I have been thinking about killing myself")}) {
    (Analyze(text)["isSAE"].GetBool() ? serious : not_serious)++;
  }
  ASSERT_EQ(client.Post("/predict", R"({"inputs": "mild headache"})").status, 200u);
  ASSERT_EQ(client.Post("/api/v1/sae/analyze", R"({"patientId": 1})").status, 400u);
  const std::string after = Metrics();
  EXPECT_GE(MetricValue(after, "ortserve_request_total", {series[0], series[1], series[2], "outcome=\"success\""}),
            std::max(0.0, ok_before) + 4);
  EXPECT_GE(MetricValue(after, "ortserve_request_total",
                        {series[0], series[1], series[2], "outcome=\"client_error\""}),
            std::max(0.0, bad_before) + 1);
  EXPECT_GE(MetricValue(after, "ortserve_sae_verdicts_total", {series[0], series[1], "verdict=\"serious\""}),
            serious);
  const double counted_not_serious =
      MetricValue(after, "ortserve_sae_verdicts_total", {series[0], series[1], "verdict=\"not_serious\""}) +
      MetricValue(after, "ortserve_sae_verdicts_total", {series[0], series[1], "verdict=\"review\""});
  EXPECT_GE(counted_not_serious, not_serious);
}

TEST_F(SaeEndpointTest, GibberishIsSentToReviewInsteadOfJudged) {
  for (const std::string& text : {std::string("asdfgh qwrtzp"), std::string("xkcd zzzqv blorft")}) {
    auto doc = Analyze(text);
    EXPECT_TRUE(doc["reviewRecommended"].GetBool()) << text;
  }
  EXPECT_FALSE(Analyze("I had a mild headache and felt tired")["reviewRecommended"].GetBool());
}

// Two versions of the demo model behind a 50/50 split.
class SaeRoutingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path source = fs::path(SourceDir()) / "models" / "sae_classifier";
    const fs::path model = fs::path(dir_->path()) / "sae_classifier";
    fs::create_directories(model);
    for (const char* file : {"vocab.txt", "labels.txt"}) fs::copy_file(source / file, model / file);
    for (const char* version : {"1", "2"}) {
      fs::create_directories(model / version);
      fs::copy_file(source / "1" / "model.onnx", model / version / "model.onnx");
    }
    std::ifstream in(source / "config.pbtxt");
    std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config += "version_policy { all {} }\nrouting { split { version: 1 weight: 50 } split { version: 2 weight: 50 } }\n";
    std::ofstream(model / "config.pbtxt") << config;
    auto server = ServerProcess::Start({"--model-repository", dir_->path(), "--embed-model", ""});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* SaeRoutingTest::dir_ = nullptr;
ServerProcess* SaeRoutingTest::server_ = nullptr;

TEST_F(SaeRoutingTest, XModelVersionPicksTheVersion) {
  HttpClient client(server_->http_port());
  for (const char* version : {"1", "2", "1"}) {
    auto res = client.Post("/api/v1/sae/analyze", SaeBody("mild headache"), {{"X-Model-Version", version}});
    ASSERT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(std::string(Json(res.body)["modelVersion"].GetString()), std::string("sae_classifier/") + version);
  }
  auto res = client.Post("/api/v1/sae/analyze", SaeBody("mild headache"), {{"X-Model-Version", "7"}});
  EXPECT_EQ(res.status, 404u) << res.body;
}

TEST_F(SaeRoutingTest, TheSplitIsStickyOnPatientId) {
  HttpClient client(server_->http_port());
  std::set<std::string> seen;
  for (int patient = 0; patient < 40; ++patient) {
    std::set<std::string> versions;
    for (int i = 0; i < 5; ++i) {
      auto res = client.Post("/api/v1/sae/analyze", SaeBody("mild headache", "patient-" + std::to_string(patient)));
      ASSERT_EQ(res.status, 200u) << res.body;
      versions.insert(Json(res.body)["modelVersion"].GetString());
    }
    EXPECT_EQ(versions.size(), 1u) << "patient-" << patient << " moved between versions";
    seen.insert(versions.begin(), versions.end());
  }
  EXPECT_EQ(seen.size(), 2u) << "40 patients all landed on one side of a 50/50 split";
}

}  // namespace
}  // namespace ortserve::testing
