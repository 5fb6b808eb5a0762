// SPDX-License-Identifier: Apache-2.0
// The bundled INT8 SAE model against its FP32 model, on the real ortserve
// binary (issue 24, docs/int8.md): sae_classifier shadows every SAE request
// onto sae_classifier_int8 with the committed example block
// (deploy/examples/sae_int8_shadow.pbtxt); the probe set
// (data/sae/probes.jsonl) goes through POST /api/v1/sae/analyze; the label
// agreement the shadow reports on /metrics must reach the bar that
// `make int8-models` holds the sibling to, and the INT8 model's own verdicts
// (asked directly over KServe v2) may lose at most one point of recall on
// serious reports. Properties, not today's numbers: a retrained FP32 model
// with a regenerated sibling passes or fails on the same bars.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

constexpr double kMinAgreement = 0.97;  // scripts/make_int8_models.sh's MIN_AGREEMENT
constexpr double kMaxRecallLoss = 0.01;

struct Probe {
  std::string text;
  bool serious = false;
};

std::vector<Probe> LoadProbes() {
  std::ifstream in(SourceDir() + "/data/sae/probes.jsonl");
  std::vector<Probe> probes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto doc = Json(line);
    if (!doc.IsObject() || !doc.HasMember("text") || !doc.HasMember("label")) continue;
    probes.push_back({doc["text"].GetString(), std::string(doc["label"].GetString()) == "serious"});
  }
  return probes;
}

std::string JsonString(const std::string& s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buffer.GetString();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double Recall(const std::vector<Probe>& probes, const std::vector<bool>& verdicts) {
  int tp = 0, fn = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    if (probes[i].serious) (verdicts[i] ? tp : fn)++;
  }
  return static_cast<double>(tp) / std::max(1, tp + fn);
}

TEST(Int8ShadowTest, ShadowAgreementAndRecallOfTheInt8SiblingMeetTheBar) {
  // A repository of the two bundled models, the FP32 one with the example
  // shadow block appended to its own config.
  TempDir repo;
  for (const char* model : {"sae_classifier", "sae_classifier_int8"}) {
    fs::copy(fs::path(SourceDir()) / "models" / model, fs::path(repo.path()) / model, fs::copy_options::recursive);
  }
  const std::string example = ReadFile(fs::path(SourceDir()) / "deploy/examples/sae_int8_shadow.pbtxt");
  ASSERT_NE(example.find("sae_classifier_int8"), std::string::npos);
  std::ofstream(fs::path(repo.path()) / "sae_classifier" / "config.pbtxt", std::ios::app) << "\n" << example;

  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());

  const auto probes = LoadProbes();
  ASSERT_GE(probes.size(), 300u);
  std::vector<bool> fp32, int8;
  for (const auto& probe : probes) {
    auto res = client.Post("/api/v1/sae/analyze",
                           R"({"patientId":"int8-probe","reportText":)" + JsonString(probe.text) + "}");
    ASSERT_EQ(res.status, 200u) << probe.text << ": " << res.body;
    fp32.push_back(Json(res.body)["isSAE"].GetBool());
    // The INT8 model's own verdict, read as the SAE API reads a report (windows).
    res = client.Post("/v2/models/sae_classifier_int8/infer",
                      R"({"parameters":{"sliding_window":true},"inputs":[{"name":"text","shape":[1],)"
                      R"("datatype":"BYTES","data":[)" + JsonString(probe.text) + R"(]}],"outputs":[{"name":"is_positive"}]})");
    ASSERT_EQ(res.status, 200u) << probe.text << ": " << res.body;
    auto doc = Json(res.body);
    ASSERT_EQ(std::string(doc["model_name"].GetString()), "sae_classifier_int8");
    int8.push_back(doc["outputs"][0]["data"][0].GetBool());
  }

  // Every SAE request was mirrored and compared (one at a time: none dropped).
  const std::vector<std::string> labels = {R"(model="sae_classifier")", R"(shadow_model="sae_classifier_int8")"};
  const double n = static_cast<double>(probes.size());
  std::string metrics;
  auto compared = [&] {
    HttpClient scrape((*server)->metrics_port());
    metrics = scrape.Get("/metrics").body;
    std::vector<std::string> l = labels;
    l.push_back(R"(result="compared")");
    return MetricValue(metrics, "ortserve_shadow_requests_total", l);
  };
  EXPECT_TRUE(WaitUntil([&] { return compared() >= n; })) << compared() << " of " << n << "\n" << metrics;
  const double rows = MetricValue(metrics, "ortserve_shadow_label_rows_total", labels);
  const double agreements = MetricValue(metrics, "ortserve_shadow_label_agreements_total", labels);
  ASSERT_EQ(rows, n) << metrics;
  EXPECT_GE(agreements / rows, kMinAgreement) << agreements << " of " << rows << " labels agree";

  // The INT8 model loses at most one point of recall on serious probes.
  const double recall_fp32 = Recall(probes, fp32);
  const double recall_int8 = Recall(probes, int8);
  EXPECT_GE(recall_int8, recall_fp32 - kMaxRecallLoss) << "fp32 " << recall_fp32 << " int8 " << recall_int8;
  int verdicts_agree = 0;
  for (size_t i = 0; i < probes.size(); ++i) verdicts_agree += fp32[i] == int8[i] ? 1 : 0;
  EXPECT_GE(verdicts_agree / n, kMinAgreement);
  std::cerr << "int8 shadow: label agreement " << agreements / rows << ", verdict agreement " << verdicts_agree / n
            << ", recall fp32 " << recall_fp32 << " int8 " << recall_int8 << "\n";
}

}  // namespace
}  // namespace ortserve::testing
