// SPDX-License-Identifier: Apache-2.0
// Traffic features end to end, on the real ortserve binary: weighted and
// sticky version splits with the X-Model-Version override, shadow traffic
// with agreement metrics, fallback models, the response cache, and lazy
// loading with idle unload and the memory budget.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

// Writes y = x + addend models at repo/<model>/<version>/model.onnx.
void MakeAddModels(const std::string& repo, const std::vector<std::tuple<std::string, int, float>>& models) {
  std::vector<std::pair<std::string, float>> paths;
  for (const auto& [model, version, addend] : models) {
    paths.emplace_back(repo + "/" + model + "/" + std::to_string(version) + "/model.onnx", addend);
  }
  absl::Status status = WriteAddModels(paths);
  ASSERT_TRUE(status.ok()) << status;
}

void WriteConfig(const std::string& repo, const std::string& model, const std::string& extra) {
  fs::create_directories(fs::path(repo) / model);
  std::ofstream(fs::path(repo) / model / "config.pbtxt")
      << "max_batch_size: 8\n"
         "version_policy { all {} }\n"
         "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
         "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n"
      << extra;
}

std::string Body(float a, float b, const std::string& parameters = "") {
  std::string body = R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[)" + std::to_string(a) +
                     "," + std::to_string(b) + "]}]";
  if (!parameters.empty()) body += R"(,"parameters":)" + parameters;
  return body + "}";
}

struct Answer {
  unsigned status = 0;
  std::string model;
  std::string version;
  std::vector<float> y;
  rapidjson::Document doc;
  std::string body;
  std::string retry_after;
};

Answer Infer(HttpClient& client, const std::string& target, const std::string& body,
             const std::map<std::string, std::string>& headers = {}) {
  Answer answer;
  auto res = client.Post(target, body, headers);
  answer.status = res.status;
  answer.body = res.body;
  answer.retry_after = res.Header("retry-after");
  if (res.status != 200) return answer;
  answer.doc = Json(res.body);
  answer.model = answer.doc["model_name"].GetString();
  answer.version = answer.doc["model_version"].GetString();
  for (const auto& v : answer.doc["outputs"][0]["data"].GetArray()) answer.y.push_back(v.GetFloat());
  return answer;
}

std::string Scrape(uint16_t port) {
  HttpClient client(port);
  return client.Get("/metrics").body;
}

class TrafficTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TempDir();
    const std::string& r = repo_->path();
    MakeAddModels(r, {{"ab", 1, 1}, {"ab", 2, 2},
                      {"primary", 1, 1}, {"candidate", 1, 1.5f},
                      {"fragile", 1, 1}, {"backup", 1, 100},
                      {"cached", 1, 7}, {"random", 1, 3},
                      {"busy_primary", 1, 1}, {"held", 1, 1}});
    WriteConfig(r, "ab",
                "routing { split { version: 1 weight: 80 } split { version: 2 weight: 20 } "
                "sticky_header: \"X-Patient-Id\" }\n");
    WriteConfig(r, "primary", "routing { shadow { model: \"candidate\" fraction: 1.0 } }\n");
    WriteConfig(r, "candidate", "");
    // The shadow target holds its queue for 2 s: one shadow request fills
    // the one slot, and the next ones are dropped.
    WriteConfig(r, "busy_primary", "routing { shadow { model: \"held\" fraction: 1.0 max_in_flight: 1 } }\n");
    WriteConfig(r, "held", "dynamic_batching { max_queue_delay_microseconds: 2000000 preferred_batch_size: [8] wait_when_idle: true }\n");
    WriteConfig(r, "fragile",
                "dynamic_batching { max_queue_delay_microseconds: 0 }\nrouting { fallback_model: \"backup\" }\n");
    WriteConfig(r, "backup", "");
    WriteConfig(r, "cached", "response_cache { enable: true }\n");
    WriteConfig(r, "random", "response_cache { enable: true }\nnondeterministic: true\n");
    // Version 2 of `fragile` is corrupt: it never becomes READY.
    fs::create_directories(fs::path(r) / "fragile" / "2");
    std::ofstream(fs::path(r) / "fragile" / "2" / "model.onnx") << "not an onnx model";
    auto server = ServerProcess::Start({"--model-repository", r, "--metrics-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
  }
  static TempDir* repo_;
  static ServerProcess* server_;
};
TempDir* TrafficTest::repo_ = nullptr;
ServerProcess* TrafficTest::server_ = nullptr;

TEST_F(TrafficTest, WeightedSplitFollowsItsRatioAndTheResponseNamesTheVersion) {
  HttpClient client(server_->http_port());
  std::map<std::string, int> by_version;
  constexpr int kRequests = 1000;
  for (int i = 0; i < kRequests; ++i) {
    Answer a = Infer(client, "/v2/models/ab/infer", Body(1, 2));
    ASSERT_EQ(a.status, 200u) << a.body;
    ++by_version[a.version];
    // The answer is the version's own: y = x + version.
    ASSERT_NEAR(a.y[0], 1 + std::stof(a.version), 1e-5);
  }
  // 20% of 1000: sd = sqrt(1000 * 0.2 * 0.8) = 12.6; 5 sd either side.
  EXPECT_NEAR(by_version["2"], 200, 63);
  EXPECT_EQ(by_version["1"] + by_version["2"], kRequests);
  const std::string m = Scrape(server_->metrics_port());
  EXPECT_GE(MetricValue(m, "ortserve_route_total", {R"(model="ab")", R"(version="2")", R"(reason="split")"}), 137);
}

TEST_F(TrafficTest, StickyKeyKeepsEachPatientOnOneVersion) {
  HttpClient client(server_->http_port());
  std::map<std::string, int> patients_by_version;
  for (int patient = 0; patient < 60; ++patient) {
    const std::map<std::string, std::string> headers = {{"X-Patient-Id", "patient-" + std::to_string(patient)}};
    std::string first;
    for (int i = 0; i < 5; ++i) {
      Answer a = Infer(client, "/v2/models/ab/infer", Body(1, 2), headers);
      ASSERT_EQ(a.status, 200u) << a.body;
      if (first.empty()) first = a.version;
      EXPECT_EQ(a.version, first) << "patient " << patient << " moved between versions";
    }
    ++patients_by_version[first];
  }
  EXPECT_GT(patients_by_version["2"], 0);  // The split still holds across keys.
  EXPECT_GT(patients_by_version["1"], patients_by_version["2"]);
}

TEST_F(TrafficTest, OverrideHeaderAndExplicitVersionWinOverTheSplit) {
  HttpClient client(server_->http_port());
  for (int i = 0; i < 20; ++i) {
    Answer a = Infer(client, "/v2/models/ab/infer", Body(1, 2), {{"X-Model-Version", "2"}});
    ASSERT_EQ(a.status, 200u) << a.body;
    EXPECT_EQ(a.version, "2");
    Answer b = Infer(client, "/v2/models/ab/versions/1/infer", Body(1, 2), {{"X-Model-Version", "2"}});
    ASSERT_EQ(b.status, 200u) << b.body;
    EXPECT_EQ(b.version, "1");
  }
  Answer bad = Infer(client, "/v2/models/ab/infer", Body(1, 2), {{"X-Model-Version", "9"}});
  EXPECT_EQ(bad.status, 404u) << bad.body;
}

TEST_F(TrafficTest, ShadowLeavesPrimaryAnswersUnchangedAndCountsAgreement) {
  HttpClient client(server_->http_port());
  constexpr int kRequests = 30;
  for (int i = 0; i < kRequests; ++i) {
    // Row argmax: column 1 when i is even, column 0 when odd; candidate adds
    // 1.5 instead of 1, so labels agree and the difference is 0.5.
    const float a = i % 2 == 0 ? 0 : 5;
    const float b = i % 2 == 0 ? 5 : 0;
    Answer answer = Infer(client, "/v2/models/primary/infer", Body(a, b));
    ASSERT_EQ(answer.status, 200u) << answer.body;
    EXPECT_EQ(answer.model, "primary");
    EXPECT_NEAR(answer.y[0], a + 1, 1e-5);
    EXPECT_NEAR(answer.y[1], b + 1, 1e-5);
  }
  const std::vector<std::string> labels = {R"(model="primary")", R"(shadow_model="candidate")"};
  auto compared = [&] {
    std::vector<std::string> l = labels;
    l.push_back(R"(result="compared")");
    return MetricValue(Scrape(server_->metrics_port()), "ortserve_shadow_requests_total", l);
  };
  ASSERT_TRUE(WaitUntil([&] { return compared() == kRequests; })) << compared();
  const std::string m = Scrape(server_->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_shadow_label_rows_total", labels), kRequests);
  EXPECT_EQ(MetricValue(m, "ortserve_shadow_label_agreements_total", labels), kRequests);
  EXPECT_NEAR(MetricValue(m, "ortserve_shadow_max_abs_difference_sum", labels), 0.5 * kRequests, 1e-3);
  // The shadow ran on the candidate for real.
  EXPECT_GE(MetricValue(m, "ortserve_execution_total", {R"(model="candidate")"}), 1);
}

TEST_F(TrafficTest, ShadowBeyondItsInFlightBoundIsDroppedAndCountedNotWaitedFor) {
  HttpClient client(server_->http_port());
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Answer a = Infer(client, "/v2/models/busy_primary/infer", Body(1, 2));
    ASSERT_EQ(a.status, 200u) << a.body;
    // The primary never waits for its shadow (held for 2 s).
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  }
  const std::vector<std::string> labels = {R"(model="busy_primary")", R"(shadow_model="held")"};
  auto count = [&](const char* result) {
    std::vector<std::string> l = labels;
    l.push_back(std::string(R"(result=")") + result + "\"");
    return MetricValue(Scrape(server_->metrics_port()), "ortserve_shadow_requests_total", l);
  };
  EXPECT_EQ(count("dropped"), 4);
  ASSERT_TRUE(WaitUntil([&] { return count("compared") == 1; }, 10)) << count("compared");
}

TEST_F(TrafficTest, FallbackAnswersWhenThePrimaryTimesOutOrIsUnavailable) {
  HttpClient client(server_->http_port());
  // A 1 us queue timeout has passed before the request reaches the queue.
  Answer timed_out = Infer(client, "/v2/models/fragile/infer", Body(1, 2, R"({"timeout":1})"));
  ASSERT_EQ(timed_out.status, 200u) << timed_out.body;
  EXPECT_EQ(timed_out.model, "backup");
  EXPECT_NEAR(timed_out.y[0], 101, 1e-5);
  ASSERT_TRUE(timed_out.doc.HasMember("parameters")) << timed_out.body;
  EXPECT_STREQ(timed_out.doc["parameters"]["fallback_from"].GetString(), "fragile:1");
  EXPECT_NE(std::string(timed_out.doc["parameters"]["fallback_reason"].GetString()).find("fragile"),
            std::string::npos);

  // Version 2 failed to load: asking for it gets the fallback's answer.
  Answer unavailable = Infer(client, "/v2/models/fragile/infer", Body(1, 2), {{"X-Model-Version", "2"}});
  ASSERT_EQ(unavailable.status, 200u) << unavailable.body;
  EXPECT_EQ(unavailable.model, "backup");

  // A healthy request is the primary's; a bad request is never rescued.
  Answer healthy = Infer(client, "/v2/models/fragile/infer", Body(1, 2));
  ASSERT_EQ(healthy.status, 200u);
  EXPECT_EQ(healthy.model, "fragile");
  EXPECT_NEAR(healthy.y[0], 2, 1e-5);
  auto bad = client.Post("/v2/models/fragile/infer",
                         R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  EXPECT_EQ(bad.status, 400u);
  const std::string m = Scrape(server_->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_fallback_total", {R"(model="backup")"}), 2);
}

TEST_F(TrafficTest, ResponseCacheHitsRepeatsAndStaysOffForNondeterministicModels) {
  HttpClient client(server_->http_port());
  Answer first = Infer(client, "/v2/models/cached/infer", Body(1, 2));
  Answer second = Infer(client, "/v2/models/cached/infer", Body(1, 2));
  Answer other = Infer(client, "/v2/models/cached/infer", Body(3, 4));
  ASSERT_EQ(first.status, 200u);
  ASSERT_EQ(second.status, 200u);
  EXPECT_EQ(first.y, second.y);
  EXPECT_EQ(second.version, "1");
  EXPECT_NEAR(other.y[0], 10, 1e-5);
  // Scheduling parameters do not split the cache.
  Answer prioritised = Infer(client, "/v2/models/cached/infer", Body(1, 2, R"({"priority":1})"));
  EXPECT_EQ(prioritised.y, first.y);
  // A run is counted just after its answers are sent: wait for the count.
  std::string m;
  EXPECT_TRUE(WaitUntil([&] {
    m = Scrape(server_->metrics_port());
    return MetricValue(m, "ortserve_execution_total", {R"(model="cached")"}) >= 2;
  }, 10));
  EXPECT_EQ(MetricValue(m, "ortserve_cache_lookups_total", {R"(model="cached")", R"(result="hit")"}), 2);
  EXPECT_EQ(MetricValue(m, "ortserve_cache_lookups_total", {R"(model="cached")", R"(result="miss")"}), 2);
  EXPECT_EQ(MetricValue(m, "ortserve_execution_total", {R"(model="cached")"}), 2);
  EXPECT_GT(MetricValue(m, "ortserve_cache_bytes"), 0);
  // Triton's statistics extension counts them too.
  auto stats = Json(client.Get("/v2/models/cached/stats").body);
  const auto& inference = stats["model_stats"][0]["inference_stats"];
  EXPECT_EQ(inference["cache_hit"]["count"].GetInt(), 2);
  EXPECT_EQ(inference["cache_miss"]["count"].GetInt(), 2);

  for (int i = 0; i < 3; ++i) ASSERT_EQ(Infer(client, "/v2/models/random/infer", Body(1, 2)).status, 200u);
  std::string after;
  EXPECT_TRUE(WaitUntil([&] {
    after = Scrape(server_->metrics_port());
    return MetricValue(after, "ortserve_execution_total", {R"(model="random")"}) >= 3;
  }, 10));
  EXPECT_EQ(MetricValue(after, "ortserve_cache_lookups_total", {R"(model="random")", R"(result="miss")"}), 0);
  EXPECT_EQ(MetricValue(after, "ortserve_execution_total", {R"(model="random")"}), 3);
  EXPECT_NE(server_->Output().find("declared nondeterministic"), std::string::npos);
}

TEST(ResponseCacheReleaseTest, UnloadingAModelGivesItsCachedAnswersBack) {
  TempDir repo;
  MakeAddModels(repo.path(), {{"cached", 1, 7}, {"other", 1, 1}});
  WriteConfig(repo.path(), "cached", "response_cache { enable: true }\n");
  WriteConfig(repo.path(), "other", "response_cache { enable: true }\n");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0",
                                      "--model-control-mode", "explicit", "--load-model", "*"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  ASSERT_EQ(Infer(client, "/v2/models/cached/infer", Body(1, 2)).status, 200u);
  ASSERT_EQ(Infer(client, "/v2/models/cached/infer", Body(3, 4)).status, 200u);
  ASSERT_EQ(Infer(client, "/v2/models/other/infer", Body(1, 2)).status, 200u);
  std::string m = Scrape((*server)->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_cache_entries"), 3);
  const double all_bytes = MetricValue(m, "ortserve_cache_bytes");

  ASSERT_EQ(client.Post("/v2/repository/models/cached/unload", "").status, 200u);
  // Released once drained (at once here): only `other`'s entry is left.
  EXPECT_TRUE(WaitUntil([&] {
    m = Scrape((*server)->metrics_port());
    return MetricValue(m, "ortserve_cache_entries") == 1;
  }, 10)) << m;
  EXPECT_GT(MetricValue(m, "ortserve_cache_bytes"), 0);
  EXPECT_LT(MetricValue(m, "ortserve_cache_bytes"), all_bytes);
  // `other` still hits.
  ASSERT_EQ(Infer(client, "/v2/models/other/infer", Body(1, 2)).status, 200u);
  m = Scrape((*server)->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_cache_lookups_total", {R"(model="other")", R"(result="hit")"}), 1);
}

// The index entries of `model`: state of each.
std::string ModelState(HttpClient& client, const std::string& model) {
  auto doc = Json(client.Post("/v2/repository/index", "").body);
  std::string state;
  for (const auto& e : doc.GetArray()) {
    if (model == e["name"].GetString()) state = e.HasMember("state") ? e["state"].GetString() : "";
  }
  return state;
}

TEST(LazyModelTest, LoadsOnFirstRequestUnloadsWhenIdleAndEvictsLeastRecentlyUsed) {
  TempDir repo;
  const std::string& r = repo.path();
  MakeAddModels(r, {{"idle", 1, 1}, {"lazy_a", 1, 2}, {"lazy_b", 1, 3}, {"eager", 1, 4}});
  WriteConfig(r, "idle", "lazy_loading { enable: true idle_unload_seconds: 1 }\n");
  WriteConfig(r, "lazy_a", "lazy_loading { enable: true }\n");
  WriteConfig(r, "lazy_b", "lazy_loading { enable: true }\n");
  WriteConfig(r, "eager", "");
  // Room for the eager model and one of the lazy ones (the model files are
  // the same size), not two.
  const auto size = fs::file_size(fs::path(r) / "lazy_a" / "1" / "model.onnx");
  auto server = ServerProcess::Start({"--model-repository", r, "--metrics-port", "0",
                                      "--model-memory-budget-bytes", std::to_string(2 * size + size / 2)});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(ModelState(client, "idle"), "UNAVAILABLE");
  EXPECT_EQ(ModelState(client, "eager"), "READY");

  Answer first = Infer(client, "/v2/models/idle/infer", Body(1, 2));
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_NEAR(first.y[0], 2, 1e-5);
  EXPECT_EQ(ModelState(client, "idle"), "READY");
  // Idle for a second: unloaded, and the next request loads it again.
  ASSERT_TRUE(WaitUntil([&] { return ModelState(client, "idle") != "READY"; }, 10));
  EXPECT_EQ(Infer(client, "/v2/models/idle/infer", Body(1, 2)).status, 200u);

  // The budget holds one lazy model next to `eager` (and `idle`, unloaded
  // again first): loading b evicts a, the least recently used.
  ASSERT_TRUE(WaitUntil([&] { return ModelState(client, "idle") != "READY"; }, 10));
  ASSERT_EQ(Infer(client, "/v2/models/lazy_a/infer", Body(1, 2)).status, 200u);
  ASSERT_EQ(Infer(client, "/v2/models/lazy_b/infer", Body(1, 2)).status, 200u);
  ASSERT_TRUE(WaitUntil([&] { return ModelState(client, "lazy_a") != "READY"; }, 10));
  EXPECT_EQ(ModelState(client, "lazy_b"), "READY");
  EXPECT_EQ(ModelState(client, "eager"), "READY");  // Never evicted.
  const std::string m = Scrape((*server)->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_model_lazy_events_total", {R"(model="lazy_a")", R"(event="evicted")"}), 1);
  EXPECT_GE(MetricValue(m, "ortserve_model_lazy_events_total", {R"(model="idle")", R"(event="idle_unloaded")"}), 1);
}

TEST(LazyModelTest, RequestThatOutwaitsTheLoadGets503WithRetryAfter) {
  TempDir repo;
  MakeAddModels(repo.path(), {{"slow", 1, 1}});
  // The load includes 50,000 warm-up runs (a few hundred ms: 50 entries of
  // 1,000, the most one entry may ask), far beyond a 1 ms wait even when a
  // busy machine wakes the timeout late (a bare session creation was not: 1
  // run in 30 under load answered 200).
  std::string warmup = "lazy_loading { enable: true load_timeout_ms: 1 }\nmodel_warmup [ ";
  for (int i = 0; i < 50; ++i) {
    warmup += std::string(i ? ", " : "") +
              "{ name: \"w\" batch_size: 1 count: 1000 inputs { key: \"x\" value: "
              "{ data_type: TYPE_FP32 dims: [ 2 ] zero_data: true } } }";
  }
  WriteConfig(repo.path(), "slow", warmup + " ]\n");
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  Answer waited = Infer(client, "/v2/models/slow/infer", Body(1, 2));
  EXPECT_EQ(waited.status, 503u) << waited.body;
  EXPECT_FALSE(waited.retry_after.empty());
  EXPECT_NE(waited.body.find("slow"), std::string::npos);
  // The load carried on: a later request is served.
  EXPECT_TRUE(WaitUntil([&] { return Infer(client, "/v2/models/slow/infer", Body(1, 2)).status == 200u; }, 20));
}

}  // namespace
}  // namespace ortserve::testing
