// SPDX-License-Identifier: Apache-2.0
// Shadow traffic through InferenceService on fake sessions: the comparison of
// the two answers runs off the primary's answer path (through
// Options::run_comparison), so a primary is answered while its comparison
// still waits, and the comparison's result is counted once it runs.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "fakes/fake_session_factory.h"
#include "frontend/inference_service.h"
#include "gtest/gtest.h"
#include "integration/server_harness.h"
#include "observability/metrics.h"
#include "repository/model_manager.h"

namespace ortserve::frontend {
namespace {

namespace fs = std::filesystem;

// Comparisons handed to the service, run when the test says.
class HeldComparisons {
 public:
  void Add(absl::AnyInvocable<void() &&> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
  }
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return tasks_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }
  void RunAll() {
    std::vector<absl::AnyInvocable<void() &&>> tasks;
    {
      absl::MutexLock lock(&mu_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) std::move(task)();
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
};

TEST(ShadowServiceTest, PrimaryIsAnsweredBeforeItsComparisonRuns) {
  const fs::path root = fs::temp_directory_path() / ("ortserve-shadow-" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (const char* model : {"primary", "candidate"}) {
    fs::create_directories(root / model / "1");
    std::ofstream(root / model / "1" / "model.onnx") << "fake";
  }
  std::ofstream(root / "primary" / "config.pbtxt")
      << "routing { shadow { model: \"candidate\" fraction: 1.0 max_in_flight: 4 } }\n";
  testing::FakeSessionFactory factory;
  backend::ModelSignature signature;
  signature.inputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});
  signature.outputs.push_back({"x", DataType::kFp32, Shape{-1, 2}});  // The fake copies inputs out.
  factory.AddModel("/", signature);

  observability::MetricsOptions metric_options;
  metric_options.process_metrics = false;
  auto metrics = *observability::Metrics::Create(metric_options);
  repository::ModelManager::Options manager_options;
  manager_options.repository_path = root.string();
  manager_options.session_factory = &factory;
  manager_options.metrics = metrics.get();
  auto manager = *repository::ModelManager::Create(std::move(manager_options));
  ASSERT_TRUE(manager->LoadAll().ok());

  HeldComparisons held;
  InferenceService::Options options;
  options.models = manager.get();
  options.telemetry.metrics = metrics.get();
  options.run_comparison = [&held](absl::AnyInvocable<void() &&> task) { held.Add(std::move(task)); };
  InferenceService service(std::move(options));
  service.SetReady(true);

  constexpr int kRequests = 3;
  for (int i = 0; i < kRequests; ++i) {
    auto request = std::make_unique<InferRequest>();
    request->model_name = "primary";
    const float values[] = {1.0f * i, 2};
    request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {1, 2}, std::span<const float>(values)));
    absl::Notification answered;
    absl::StatusOr<InferResponse> answer = absl::UnknownError("none");
    service.Infer(std::move(request), [&](absl::StatusOr<InferResponse> result) {
      answer = std::move(result);
      answered.Notify();
    });
    // The primary's answer arrives whether or not its comparison has run.
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->model_name, "primary");
    EXPECT_EQ(answer->outputs[0].values<float>()[0], 1.0f * i);
  }
  // Each mirrored request's comparison was handed off, none has run.
  ASSERT_TRUE(held.WaitFor(kRequests));
  const std::vector<std::string> labels = {R"(model="primary")", R"(shadow_model="candidate")"};
  auto compared = [&] {
    std::vector<std::string> l = labels;
    l.push_back(R"(result="compared")");
    return testing::MetricValue(metrics->Serialize(), "ortserve_shadow_requests_total", l);
  };
  EXPECT_EQ(compared(), 0);
  held.RunAll();
  EXPECT_EQ(compared(), kRequests) << metrics->Serialize();
  // The same model answers alike: every label agrees.
  EXPECT_EQ(testing::MetricValue(metrics->Serialize(), "ortserve_shadow_label_agreements_total", labels), kRequests);
  fs::remove_all(root);
}

}  // namespace
}  // namespace ortserve::frontend
