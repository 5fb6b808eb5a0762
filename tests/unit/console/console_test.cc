// SPDX-License-Identifier: Apache-2.0
// The console's snapshot builder over fake sources: a real Prometheus
// registry fed by the test (the series the server's metrics export), a fixed
// model list, and a clock the test moves.
#include "console/console.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "console/assets.h"
#include "console/scrape.h"
#include "fakes/fake_clock.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "rapidjson/document.h"

namespace ortserve::console {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {0.001, 0.01, 0.1, 1};

// The series the server exports for a model, on a registry the test feeds.
class FakeSources final : public ConsoleSources {
 public:
  FakeSources()
      : requests_(prometheus::BuildCounter().Name("ortserve_request_total").Register(registry_)),
        latency_(prometheus::BuildHistogram().Name("ortserve_request_duration_seconds").Register(registry_)),
        queue_(prometheus::BuildHistogram().Name("ortserve_queue_duration_seconds").Register(registry_)),
        batch_(prometheus::BuildHistogram().Name("ortserve_batch_size").Register(registry_)),
        pending_(prometheus::BuildGauge().Name("ortserve_pending_requests").Register(registry_)),
        routes_(prometheus::BuildCounter().Name("ortserve_route_total").Register(registry_)),
        cache_(prometheus::BuildCounter().Name("ortserve_cache_lookups_total").Register(registry_)),
        sae_(prometheus::BuildCounter().Name("ortserve_sae_verdicts_total").Register(registry_)),
        shadow_(prometheus::BuildCounter().Name("ortserve_shadow_requests_total").Register(registry_)),
        rows_(prometheus::BuildCounter().Name("ortserve_shadow_label_rows_total").Register(registry_)),
        agreements_(prometheus::BuildCounter().Name("ortserve_shadow_label_agreements_total").Register(registry_)),
        cpu_(prometheus::BuildCounter().Name("process_cpu_seconds_total").Register(registry_).Add({})),
        rss_(prometheus::BuildGauge().Name("process_resident_memory_bytes").Register(registry_).Add({})),
        start_(prometheus::BuildGauge().Name("process_start_time_seconds").Register(registry_).Add({})) {
    prometheus::BuildGauge()
        .Name("ortserve_build_info")
        .Register(registry_)
        .Add({{"version", "9.9.9"}, {"commit", "abc123"}, {"onnxruntime", "1.29.0"}})
        .Set(1);
    ModelInfo iris;
    iris.name = "iris";
    iris.max_batch_size = 8;
    iris.versions = {{"1", "READY", "", 2, "cpu", 4096}, {"2", "READY", "", 1, "cpu,gpu0", 8192}};
    iris.routing.split = {{"1", 3}, {"2", 1}};
    iris.routing.shadow_target = "iris:2";
    iris.routing.shadow_fraction = 0.5;
    iris.routing.cache = true;
    ModelInfo broken;
    broken.name = "broken";
    broken.versions = {{"1", "UNAVAILABLE", "model.onnx does not parse", 0, "", 0}};
    broken.last_error = "model.onnx does not parse";
    models_ = {broken, iris};
  }

  std::vector<prometheus::MetricFamily> CollectMetrics() override { return registry_.Collect(); }
  std::vector<ModelInfo> Models() override { return models_; }
  ServerInfo Server() override { return {true, 7, "explicit", "sae"}; }

  // `n` requests of `model`/`version` over HTTP, each taking `seconds`;
  // `failed` of them failed.
  void Requests(const std::string& model, const std::string& version, int n, int failed, double seconds) {
    requests_.Add({{"model", model}, {"version", version}, {"protocol", "http"}, {"outcome", "success"}})
        .Increment(n - failed);
    requests_.Add({{"model", model}, {"version", version}, {"protocol", "http"}, {"outcome", "server_error"}})
        .Increment(failed);
    auto& latency = latency_.Add({{"model", model}, {"version", version}, {"protocol", "http"}}, kLatencyBuckets);
    auto& queue = queue_.Add({{"model", model}, {"version", version}}, kLatencyBuckets);
    for (int i = 0; i < n; ++i) {
      latency.Observe(seconds);
      queue.Observe(seconds / 10);
    }
    routes_.Add({{"model", model}, {"version", version}, {"reason", "split"}}).Increment(n);
  }
  void Batch(const std::string& model, double rows) {
    batch_.Add({{"model", model}, {"version", "1"}}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8}).Observe(rows);
  }
  void Pending(const std::string& model, double n) { pending_.Add({{"model", model}, {"version", "1"}}).Set(n); }
  void Cache(const std::string& model, int hits, int misses) {
    cache_.Add({{"model", model}, {"version", "1"}, {"result", "hit"}}).Increment(hits);
    cache_.Add({{"model", model}, {"version", "1"}, {"result", "miss"}}).Increment(misses);
  }
  void Verdicts(int serious, int not_serious, int review) {
    sae_.Add({{"model", "sae"}, {"version", "1"}, {"verdict", "serious"}}).Increment(serious);
    sae_.Add({{"model", "sae"}, {"version", "1"}, {"verdict", "not_serious"}}).Increment(not_serious);
    sae_.Add({{"model", "sae"}, {"version", "1"}, {"verdict", "review"}}).Increment(review);
  }
  void Shadow(int compared, int rows, int agreements) {
    const prometheus::Labels labels = {{"model", "iris"}, {"shadow_model", "iris"}, {"shadow_version", "2"}};
    auto with_result = labels;
    with_result["result"] = "compared";
    shadow_.Add(with_result).Increment(compared);
    rows_.Add(labels).Increment(rows);
    agreements_.Add(labels).Increment(agreements);
  }
  void Cpu(double seconds) { cpu_.Increment(seconds); }
  void Rss(double bytes) { rss_.Set(bytes); }
  void Start(double unix_seconds) { start_.Set(unix_seconds); }

 private:
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Histogram>& queue_;
  prometheus::Family<prometheus::Histogram>& batch_;
  prometheus::Family<prometheus::Gauge>& pending_;
  prometheus::Family<prometheus::Counter>& routes_;
  prometheus::Family<prometheus::Counter>& cache_;
  prometheus::Family<prometheus::Counter>& sae_;
  prometheus::Family<prometheus::Counter>& shadow_;
  prometheus::Family<prometheus::Counter>& rows_;
  prometheus::Family<prometheus::Counter>& agreements_;
  prometheus::Counter& cpu_;
  prometheus::Gauge& rss_;
  prometheus::Gauge& start_;
  std::vector<ModelInfo> models_;
};

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Console::Options options;
    options.sources = &sources_;
    options.clock = &clock_;
    options.history = 10;
    options.window = 4;
    auto console = Console::Create(options);
    ASSERT_TRUE(console.ok()) << console.status();
    console_ = *std::move(console);
  }

  // Moves the clock a second and samples.
  void Tick() {
    clock_.Advance(absl::Seconds(1));
    console_->SampleNow();
  }

  rapidjson::Document Snapshot(int64_t since) {
    rapidjson::Document doc;
    const auto json = console_->Snapshot(since);
    doc.Parse(json->data(), json->size());
    EXPECT_FALSE(doc.HasParseError()) << *json;
    return doc;
  }

  static const rapidjson::Value& Model(const rapidjson::Document& doc, const char* name) {
    for (const auto& model : doc["models"].GetArray()) {
      if (std::string(model["name"].GetString()) == name) return model;
    }
    ADD_FAILURE() << "no model " << name;
    static const rapidjson::Value kNull;
    return kNull;
  }

  testing::FakeClock clock_;
  FakeSources sources_;
  std::unique_ptr<Console> console_;
};

TEST(ScrapeTest, QuantileInterpolatesInsideTheBucket) {
  Histogram h;
  h.bounds = {0.001, 0.01, 0.1, INFINITY};
  h.cumulative = {0, 100, 100, 100};  // 100 observations in (1 ms, 10 ms].
  EXPECT_NEAR(Quantile(h, 0.5), 0.0055, 1e-9);
  EXPECT_NEAR(Quantile(h, 0.99), 0.00991, 1e-9);
  h.cumulative = {50, 50, 50, 100};  // Half at most 1 ms, half past the largest finite bound.
  EXPECT_NEAR(Quantile(h, 0.25), 0.0005, 1e-9);
  EXPECT_NEAR(Quantile(h, 0.5), 0.001, 1e-9);
  EXPECT_DOUBLE_EQ(Quantile(h, 0.99), 0.1);
  EXPECT_TRUE(std::isnan(Quantile(Histogram(), 0.5)));
}

TEST(ScrapeTest, DeltaNeverGoesNegative) {
  Histogram before, now;
  before.bounds = now.bounds = {1, INFINITY};
  before.cumulative = {5, 9};
  now.cumulative = {3, 12};  // The first bucket went back (a reset).
  const Histogram delta = Delta(now, before);
  EXPECT_EQ(delta.cumulative[0], 0u);
  EXPECT_EQ(delta.cumulative[1], 3u);
}

TEST(ScrapeTest, KeepsAtMostMaxModels) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("ortserve_request_total").Register(registry);
  for (const char* model : {"c", "a", "b", ""}) family.Add({{"model", model}, {"outcome", "success"}}).Increment();
  const Scrape scrape = ReadScrape(registry.Collect(), 2);
  ASSERT_EQ(scrape.models.size(), 2u);  // The unresolved model ("") is never one.
  EXPECT_TRUE(scrape.models.contains("a"));
  EXPECT_TRUE(scrape.models.contains("b"));
}

TEST(ScrapeTest, ReadsGpusAndBuildInfo) {
  prometheus::Registry registry;
  auto& util = prometheus::BuildGauge().Name("ortserve_gpu_utilization_ratio").Register(registry);
  auto& used = prometheus::BuildGauge().Name("ortserve_gpu_memory_used_bytes").Register(registry);
  auto& total = prometheus::BuildGauge().Name("ortserve_gpu_memory_total_bytes").Register(registry);
  for (const char* gpu : {"0", "1"}) {
    util.Add({{"gpu", gpu}, {"uuid", "GPU-x"}}).Set(gpu[0] == '0' ? 0.25 : 0.75);
    used.Add({{"gpu", gpu}, {"uuid", "GPU-x"}}).Set(1 << 30);
    total.Add({{"gpu", gpu}, {"uuid", "GPU-x"}}).Set(80.0 * (1 << 30));
  }
  const Scrape scrape = ReadScrape(registry.Collect(), 10);
  ASSERT_EQ(scrape.server.gpus.size(), 2u);
  EXPECT_EQ(scrape.server.gpus[1].gpu, "1");
  EXPECT_DOUBLE_EQ(scrape.server.gpus[1].utilization, 0.75);
  EXPECT_DOUBLE_EQ(scrape.server.gpus[0].memory_used, 1 << 30);
  EXPECT_DOUBLE_EQ(scrape.server.gpus[0].memory_total, 80.0 * (1 << 30));
  EXPECT_TRUE(std::isnan(scrape.server.cpu_seconds));  // No process series: unknown, not zero.
}

TEST_F(ConsoleTest, RatesLatencyAndErrorsPerSecond) {
  sources_.Start(absl::ToUnixSeconds(clock_.Now()) - 100);
  console_->SampleNow();  // Sample 0: the baseline.
  sources_.Requests("iris", "1", 30, 3, 0.005);  // 30 requests at 5 ms, 3 failed.
  sources_.Requests("iris", "2", 10, 0, 0.005);
  sources_.Cpu(0.5);
  sources_.Rss(100 << 20);
  Tick();  // Sample 1: one second later.

  const auto doc = Snapshot(-1);
  EXPECT_EQ(doc["seq"].GetInt64(), 1);
  const auto& series = doc["series"];
  EXPECT_TRUE(series["full"].GetBool());
  EXPECT_EQ(series["from"].GetInt64(), 0);
  ASSERT_EQ(series["t"].Size(), 2u);
  const auto& iris = series["models"]["iris"];
  EXPECT_TRUE(iris["rps"][0].IsNull());  // No rate before a second sample.
  EXPECT_DOUBLE_EQ(iris["rps"][1].GetDouble(), 40);
  EXPECT_DOUBLE_EQ(iris["errorRate"][1].GetDouble(), 0.075);  // 3 of 40.
  // 5 ms falls in (1 ms, 10 ms]: p50 interpolates to 5.5 ms.
  EXPECT_NEAR(iris["p50"][1].GetDouble(), 5.5, 0.01);
  EXPECT_NEAR(iris["p99"][1].GetDouble(), 9.91, 0.01);
  EXPECT_NEAR(iris["queueP50"][1].GetDouble(), 0.5, 0.01);  // 0.5 ms in (0, 1 ms].
  EXPECT_DOUBLE_EQ(series["cpu"][1].GetDouble(), 0.5);
  EXPECT_NEAR(series["rss"][1].GetDouble(), 100 << 20, (100 << 20) * 1e-3);  // 4 significant digits.
  // A model without traffic draws a zero line, not a gap.
  EXPECT_DOUBLE_EQ(series["models"]["broken"]["rps"][1].GetDouble(), 0);
  EXPECT_TRUE(series["models"]["broken"]["p50"][1].IsNull());

  const auto& server = doc["server"];
  EXPECT_STREQ(server["version"].GetString(), "9.9.9");
  EXPECT_STREQ(server["commit"].GetString(), "abc123");
  EXPECT_EQ(server["uptimeSeconds"].GetInt64(), 101);
  EXPECT_EQ(server["openConnections"].GetInt64(), 7);
  EXPECT_STREQ(server["controlMode"].GetString(), "explicit");
  EXPECT_TRUE(server["ready"].GetBool());

  const auto& model = Model(doc, "iris");
  EXPECT_EQ(model["versions"].Size(), 2u);
  EXPECT_STREQ(model["versions"][1]["devices"].GetString(), "cpu,gpu0");
  EXPECT_EQ(model["versions"][1]["memoryBytes"].GetUint64(), 8192u);
  EXPECT_EQ(model["requests"].GetInt64(), 40);
  const auto& broken = Model(doc, "broken");
  EXPECT_STREQ(broken["lastError"].GetString(), "model.onnx does not parse");
  EXPECT_STREQ(broken["versions"][0]["state"].GetString(), "UNAVAILABLE");
}

TEST_F(ConsoleTest, RoutingSharesCacheShadowAndBatchesOverTheWindow) {
  console_->SampleNow();
  sources_.Requests("iris", "1", 70, 0, 0.002);
  sources_.Requests("iris", "2", 30, 0, 0.002);
  sources_.Cache("iris", 25, 75);
  sources_.Shadow(40, 40, 38);
  for (double rows : {1, 1, 3, 8}) sources_.Batch("iris", rows);
  sources_.Pending("iris", 5);
  Tick();
  const auto doc = Snapshot(-1);
  const auto& iris = Model(doc, "iris");
  const auto& routing = iris["routing"];
  ASSERT_EQ(routing["split"].Size(), 2u);
  EXPECT_DOUBLE_EQ(routing["split"][0]["weight"].GetDouble(), 0.75);  // 3 of 3 + 1.
  ASSERT_EQ(routing["shares"].Size(), 2u);
  EXPECT_STREQ(routing["shares"][0]["version"].GetString(), "1");
  EXPECT_DOUBLE_EQ(routing["shares"][0]["share"].GetDouble(), 0.7);
  EXPECT_DOUBLE_EQ(routing["cacheHitRatio"].GetDouble(), 0.25);
  EXPECT_STREQ(routing["shadow"]["target"].GetString(), "iris:2");
  EXPECT_EQ(routing["shadow"]["compared"].GetInt64(), 40);
  EXPECT_DOUBLE_EQ(routing["shadow"]["agreement"].GetDouble(), 0.95);
  EXPECT_EQ(iris["pending"].GetInt64(), 5);
  // Batch sizes, per bucket: <=1: 2, (1,2]: 0, (2,4]: 1, (4,8]: 1, +Inf: 0.
  const auto& counts = iris["batchSizes"]["counts"];
  ASSERT_EQ(counts.Size(), 5u);
  EXPECT_EQ(counts[0].GetUint64(), 2u);
  EXPECT_EQ(counts[2].GetUint64(), 1u);
  EXPECT_EQ(counts[3].GetUint64(), 1u);
  EXPECT_STREQ(iris["batchSizes"]["le"][4].GetString(), "+Inf");

  // Past the window (4 s), the traffic of the first second no longer counts.
  for (int i = 0; i < 5; ++i) Tick();
  const auto later = Snapshot(-1);
  EXPECT_EQ(Model(later, "iris")["requests"].GetInt64(), 0);
  EXPECT_EQ(Model(later, "iris")["routing"]["shares"][0]["share"].GetType(), rapidjson::kNullType);
}

TEST_F(ConsoleTest, SaeVerdictsPerMinuteAndShares) {
  console_->SampleNow();
  sources_.Verdicts(2, 6, 2);  // 10 verdicts in the first second.
  for (int i = 0; i < 4; ++i) Tick();
  const auto doc = Snapshot(-1);
  const auto& sae = doc["sae"];
  EXPECT_STREQ(sae["model"].GetString(), "sae");
  EXPECT_EQ(sae["verdicts"].GetInt64(), 10);
  EXPECT_DOUBLE_EQ(sae["perMinute"].GetDouble(), 150);  // 10 in a 4 s window.
  EXPECT_DOUBLE_EQ(sae["seriousShare"].GetDouble(), 0.2);
  EXPECT_DOUBLE_EQ(sae["reviewShare"].GetDouble(), 0.2);
  EXPECT_DOUBLE_EQ(doc["series"]["saePerMinute"][4].GetDouble(), 150);
}

TEST_F(ConsoleTest, DeltaAndUnchangedAnswersAreSharedAndSmall) {
  console_->SampleNow();
  Tick();
  Tick();
  const auto full = console_->Snapshot(-1);
  EXPECT_EQ(console_->Snapshot(-1).get(), full.get());  // Built once per sample, shared.
  const auto delta_doc = Snapshot(1);
  EXPECT_FALSE(delta_doc["series"]["full"].GetBool());
  EXPECT_EQ(delta_doc["series"]["from"].GetInt64(), 2);
  EXPECT_EQ(delta_doc["series"]["t"].Size(), 1u);
  EXPECT_EQ(delta_doc["series"]["models"]["iris"]["rps"].Size(), 1u);
  EXPECT_EQ(console_->Snapshot(1).get(), console_->Snapshot(1).get());
  const auto unchanged = Snapshot(2);
  EXPECT_TRUE(unchanged["unchanged"].GetBool());
  EXPECT_FALSE(unchanged.HasMember("models"));
  // A page far behind gets everything again.
  EXPECT_TRUE(Snapshot(0)["series"]["full"].GetBool());
  Tick();
  EXPECT_NE(console_->Snapshot(-1).get(), full.get());  // A new sample, a new document.
}

TEST_F(ConsoleTest, HistoryIsBounded) {
  for (int i = 0; i < 25; ++i) Tick();
  const auto doc = Snapshot(-1);
  EXPECT_EQ(doc["seq"].GetInt64(), 24);
  EXPECT_EQ(doc["series"]["from"].GetInt64(), 15);  // history = 10.
  EXPECT_EQ(doc["series"]["t"].Size(), 10u);
  EXPECT_EQ(doc["series"]["models"]["iris"]["p99"].Size(), 10u);
  const auto& t = doc["series"]["t"];
  for (rapidjson::SizeType i = 1; i < t.Size(); ++i) EXPECT_EQ(t[i].GetInt64() - t[i - 1].GetInt64(), 1000);
}

TEST_F(ConsoleTest, NamesAreEscaped) {
  EXPECT_EQ(Console::CallerJson("a\"b", "api_key", true, {"sae_*"}),
            R"({"id":"a\"b","kind":"api_key","canSetLogLevel":true,"controlModels":["sae_*"]})");
}

TEST(ConsoleCreateTest, RefusesMissingSourcesOrZeroSizes) {
  EXPECT_FALSE(Console::Create({}).ok());
  FakeSources sources;
  Console::Options options;
  options.sources = &sources;
  options.history = 0;
  EXPECT_FALSE(Console::Create(options).ok());
}

TEST(ConsoleAssetsTest, ThePageIsCompiledIn) {
  const Asset* page = FindAsset("console.html");
  ASSERT_NE(page, nullptr);
  EXPECT_NE(page->body.find("/console/console.js"), std::string_view::npos);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(page->etag.front(), '"');
  ASSERT_NE(FindAsset("console.js"), nullptr);
  ASSERT_NE(FindAsset("console.css"), nullptr);
  EXPECT_EQ(FindAsset("../etc/passwd"), nullptr);
  // No third-party origin: the page works offline and under its CSP.
  for (const char* name : {"console.html", "console.js", "console.css"}) {
    EXPECT_EQ(FindAsset(name)->body.find("https://"), std::string_view::npos) << name;
  }
}

}  // namespace
}  // namespace ortserve::console
