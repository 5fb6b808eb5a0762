// SPDX-License-Identifier: Apache-2.0
// The demo SAE model's quality bar (issue 17), measured through the real
// ortserve binary: every report of the hand-written probe set
// (data/sae/probes.jsonl, written apart from the corpus generator and never
// trained or selected on, docs/sae_model.md) goes through
// POST /api/v1/sae/analyze, and the verdicts must keep their recall on
// serious reports (issue 17's bar: >= 0.97), precision >= 0.90,
// and the served (calibrated) seriousProbability within 0.05 expected
// calibration error. A retrained
// model, a changed threshold or temperature in config.pbtxt, or a tokenizer
// change that costs quality fails here.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

struct Probe {
  std::string text;
  std::string label;  // serious, not_serious or out_of_scope.
  std::string category;
};

std::vector<Probe> LoadProbes() {
  std::ifstream in(SourceDir() + "/data/sae/probes.jsonl");
  std::vector<Probe> probes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("text") || !doc.HasMember("label") ||
        !doc.HasMember("category")) {
      ADD_FAILURE() << "bad probe line: " << line;
      continue;
    }
    probes.push_back({doc["text"].GetString(), doc["label"].GetString(), doc["category"].GetString()});
  }
  return probes;
}

std::string SaeBody(const std::string& text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("patientId");
  w.String("probe-patient");
  w.Key("reportText");
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  w.EndObject();
  return buffer.GetString();
}

class SaeProbesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--tokenizer-threads", "2"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
ServerProcess* SaeProbesTest::server_ = nullptr;

TEST_F(SaeProbesTest, TheProbeSetMeetsTheRecallPrecisionAndCalibrationBar) {
  const auto probes = LoadProbes();
  ASSERT_GE(probes.size(), 300u) << "data/sae/probes.jsonl holds the issue's 300+ probes";
  std::map<std::string, int> per_label;
  for (const auto& p : probes) per_label[p.label]++;
  ASSERT_GE(per_label["serious"], 100);
  ASSERT_GE(per_label["not_serious"], 100);
  ASSERT_GE(per_label["out_of_scope"], 20);

  HttpClient client(server_->http_port());
  int tp = 0, fp = 0, fn = 0, tn = 0;
  int out_of_scope_review = 0;
  int in_scope_review = 0;
  // Reliability bins of seriousProbability: count, sum of p, serious count.
  std::array<double, 10> bin_n{}, bin_p{}, bin_y{};
  std::ostringstream misses;
  for (const auto& probe : probes) {
    auto res = client.Post("/api/v1/sae/analyze", SaeBody(probe.text));
    ASSERT_EQ(res.status, 200u) << probe.text << ": " << res.body;
    auto doc = Json(res.body);
    const bool is_sae = doc["isSAE"].GetBool();
    const double p = doc["seriousProbability"].GetDouble();
    const bool serious = probe.label == "serious";
    ASSERT_GE(p, 0.0);
    ASSERT_LE(p, 1.0);
    EXPECT_EQ(is_sae, p >= doc["threshold"].GetDouble()) << probe.text;
    (serious ? (is_sae ? tp : fn) : (is_sae ? fp : tn))++;
    if (doc["reviewRecommended"].GetBool()) (probe.label == "out_of_scope" ? out_of_scope_review : in_scope_review)++;
    const size_t bin = std::min<size_t>(9, static_cast<size_t>(p * 10));
    bin_n[bin] += 1;
    bin_p[bin] += p;
    bin_y[bin] += serious ? 1 : 0;
    if (is_sae != serious) misses << "  " << probe.label << "/" << probe.category << " p=" << p << ": " << probe.text << "\n";
  }
  const double recall = static_cast<double>(tp) / (tp + fn);
  const double precision = static_cast<double>(tp) / std::max(1, tp + fp);
  double ece = 0;
  for (size_t b = 0; b < bin_n.size(); ++b) {
    if (bin_n[b] > 0) ece += bin_n[b] / static_cast<double>(probes.size()) * std::abs(bin_p[b] / bin_n[b] - bin_y[b] / bin_n[b]);
  }
  const std::string summary = "tp " + std::to_string(tp) + " fp " + std::to_string(fp) + " fn " + std::to_string(fn) +
                              " tn " + std::to_string(tn) + " recall " + std::to_string(recall) + " precision " +
                              std::to_string(precision) + " ECE " + std::to_string(ece) + "\nmisclassified:\n" +
                              misses.str();
  // Issue 17's bar: recall >= 0.97 at precision >= 0.90 and ECE <= 0.05
  // (the bundled model: 154 of 158 serious probes found, docs/sae_model.md).
  std::cerr << "probe set through the server: " << summary;
  EXPECT_GE(recall, 0.97) << summary;
  EXPECT_GE(precision, 0.90) << summary;
  EXPECT_LE(ece, 0.05) << summary;
  // Out-of-scope text (gibberish, greetings, other languages) is mostly sent
  // to review, and in-scope reports mostly are not.
  EXPECT_GE(out_of_scope_review, per_label["out_of_scope"] * 8 / 10) << summary;
  EXPECT_LE(in_scope_review, (per_label["serious"] + per_label["not_serious"]) / 20) << summary;
}

}  // namespace
}  // namespace ortserve::testing
