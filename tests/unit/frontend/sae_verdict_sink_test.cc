// SPDX-License-Identifier: Apache-2.0
// The SAE endpoint's verdict hook, in process: HandlePipelineRoute on the
// real demo model (real ONNX Runtime session, inline tokenization) hands
// each verdict to the configured VerdictSink, with the fields the audit log
// and the alert outbox need, and answers exactly what it reported.
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backend/ort/ort_session_factory.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/inference_service.h"
#include "gtest/gtest.h"
#include "integration/server_harness.h"
#include "observability/metrics.h"
#include "repository/model_manager.h"

namespace ortserve::frontend {
namespace {

namespace fs = std::filesystem;

class MapHeaders final : public RequestHeaders {
 public:
  std::optional<std::string_view> Get(std::string_view name) const override {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> values;
};

// What the sink saw, copied (the views die with the call).
struct Seen {
  std::string request_id, patient_id, model, version;
  int64_t windows = 0;
  double probability = 0, threshold = 0;
  bool is_sae = false, review = false;
  absl::Duration latency;
};

class RecordingSink final : public pipeline::VerdictSink {
 public:
  // Answers from another thread, later, as a durable sink does; a serious
  // verdict's alert is "queued" under its request id.
  void OnVerdict(const pipeline::Verdict& v, pipeline::VerdictDone done) override {
    pipeline::VerdictOutcome outcome;
    if (v.is_sae) {
      outcome.alert_queued = true;
      outcome.alert_id = std::string(v.request_id);
    }
    {
      absl::MutexLock lock(&mu_);
      seen_.push_back({std::string(v.request_id), std::string(v.patient_id), std::string(v.model),
                       std::string(v.version), v.windows, v.serious_probability, v.threshold, v.is_sae,
                       v.review_recommended, v.latency});
    }
    std::thread([done = std::move(done), outcome = std::move(outcome)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::move(done)(std::move(outcome));
    }).detach();
  }
  std::vector<Seen> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

class SaeVerdictSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ortserve-sae-sink-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::copy(fs::path(testing::SourceDir()) / "models" / "sae_classifier", root_ / "sae_classifier",
             fs::copy_options::recursive);
    auto sessions = backend::OrtSessionFactory::Create(backend::OrtSessionFactory::Options());
    ASSERT_TRUE(sessions.ok()) << sessions.status();
    sessions_ = *std::move(sessions);
    observability::MetricsOptions metric_options;
    metric_options.process_metrics = false;
    metrics_ = *observability::Metrics::Create(metric_options);
    repository::ModelManager::Options manager_options;
    manager_options.repository_path = root_.string();
    manager_options.session_factory = sessions_.get();
    manager_options.metrics = metrics_.get();
    manager_ = *repository::ModelManager::Create(std::move(manager_options));
    ASSERT_TRUE(manager_->LoadAll().ok());
    InferenceService::Options options;
    options.models = manager_.get();
    options.telemetry.metrics = metrics_.get();
    service_ = std::make_unique<InferenceService>(std::move(options));
    service_->SetReady(true);
    routes_.sae_model = "sae_classifier";
    routes_.verdict_sink = &sink_;
  }
  void TearDown() override {
    service_.reset();
    manager_.reset();
    fs::remove_all(root_);
  }

  PipelineAnswer Post(const std::string& body, const MapHeaders* headers) {
    absl::Notification done;
    PipelineAnswer answer;
    PipelineContext context;
    context.headers = headers;
    HandlePipelineRoute(*service_, routes_, RouteId::kSaeAnalyze, body, context, nullptr,
                        [&](PipelineAnswer got) {
                          answer = std::move(got);
                          done.Notify();
                        });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return answer;
  }

  fs::path root_;
  std::unique_ptr<backend::OrtSessionFactory> sessions_;
  std::unique_ptr<observability::Metrics> metrics_;
  std::unique_ptr<repository::ModelManager> manager_;
  std::unique_ptr<InferenceService> service_;
  PipelineRouteOptions routes_;
  RecordingSink sink_;
};

TEST_F(SaeVerdictSinkTest, EachVerdictReachesTheSinkWithWhatTheClientIsTold) {
  MapHeaders headers;
  headers.values["x-request-id"] = "audit-1";
  std::string report;
  for (int i = 0; i < 25; ++i) report += "I had a mild headache today. ";
  report += "Then I could not breathe and my husband called 911.";
  auto answer = Post(R"({"patientId": "p-9", "reportText": ")" + report + R"("})", &headers);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer.request_id, "audit-1");
  auto doc = testing::Json(answer.body);

  auto seen = sink_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].request_id, "audit-1");
  EXPECT_EQ(seen[0].patient_id, "p-9");
  EXPECT_EQ(seen[0].model, "sae_classifier");
  EXPECT_EQ(seen[0].version, "1");
  EXPECT_GT(seen[0].windows, 1);
  EXPECT_EQ(seen[0].windows, doc["windows"].GetInt64());
  EXPECT_DOUBLE_EQ(seen[0].threshold, doc["threshold"].GetDouble());
  EXPECT_GT(seen[0].threshold, 0.0);
  EXPECT_NEAR(seen[0].probability, doc["seriousProbability"].GetDouble(), 1e-6);
  EXPECT_EQ(seen[0].is_sae, doc["isSAE"].GetBool());
  EXPECT_EQ(seen[0].review, doc["reviewRecommended"].GetBool());
  EXPECT_GT(seen[0].latency, absl::ZeroDuration());
  // The client is answered with what the sink made of it.
  if (seen[0].is_sae) {
    EXPECT_TRUE(doc["alertQueued"].GetBool()) << answer.body;
    EXPECT_STREQ(doc["alertId"].GetString(), "audit-1");
  }

  // A refused request is no verdict; the next one is reported on its own.
  answer = Post(R"({"patientId": "p-9", "reportText": ""})", nullptr);
  EXPECT_EQ(answer.status, 400u);
  EXPECT_EQ(answer.request_id.size(), 36u);  // Generated.
  answer = Post(R"({"patientId": "p-10", "reportText": "mild headache"})", nullptr);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  seen = sink_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].patient_id, "p-10");
  EXPECT_EQ(seen[1].windows, 1);
  EXPECT_EQ(seen[1].request_id, answer.request_id);

  // And the verdict counter counted both under the model's version.
  const std::string exposition = metrics_->Serialize();
  double total = 0;
  for (const char* verdict : {"serious", "not_serious", "review"}) {
    total += testing::MetricValue(exposition, "ortserve_sae_verdicts_total",
                                  {R"(model="sae_classifier")", R"(version="1")",
                                   std::string("verdict=\"") + verdict + "\""});
  }
  EXPECT_EQ(total, 2) << exposition;
}

TEST_F(SaeVerdictSinkTest, WithoutASinkVerdictsAreDropped) {
  routes_.verdict_sink = nullptr;
  auto answer = Post(R"({"patientId": "p-1", "reportText": "mild headache"})", nullptr);
  EXPECT_EQ(answer.status, 200u) << answer.body;
  EXPECT_TRUE(sink_.seen().empty());
}

}  // namespace
}  // namespace ortserve::frontend
