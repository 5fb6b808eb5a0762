// SPDX-License-Identifier: Apache-2.0
// ortserve_instance_execution_total: each runner counts the model runs it made;
// ortserve_device_busy_seconds_total: the time each device was running a model.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "scheduler/scheduler.h"
#include "unit/scheduler/test_util.h"

namespace ortserve::scheduler {
namespace {

using ::ortserve::testing::FakeClock;
using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;
using test::Collector;
using test::MakeFloatRequest;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);  // Bound for things that must happen.

// The value of `series` (name and labels, as exposed) in a text exposition; -1 when absent.
double Sample(const std::string& exposition, const std::string& series) {
  const std::string prefix = series + " ";
  for (size_t at = 0; (at = exposition.find(prefix, at)) != std::string::npos; at += prefix.size()) {
    if (at == 0 || exposition[at - 1] == '\n') return std::strtod(exposition.c_str() + at + prefix.size(), nullptr);
  }
  return -1;
}

std::string InstanceSeries(int instance, std::string_view device = "cpu") {
  return StrCat("ortserve_instance_execution_total{device=\"", device, "\",instance=\"", instance,
                "\",model=\"m\",version=\"1\"}");
}

std::string BusySeries(std::string_view device) {
  return StrCat("ortserve_device_busy_seconds_total{device=\"", device, "\"}");
}

class InstanceMetricsTest : public ::testing::TestWithParam<bool> {
 protected:
  InstanceMetricsTest() {
    observability::MetricsOptions metrics_options;
    metrics_options.process_metrics = false;
    metrics_options.gpu_metrics = false;
    metrics_ = *observability::Metrics::Create(metrics_options);
    const auto signature =
        MakeSignature({{"INPUT0", DataType::kFp32, {-1, 1}}}, {{"OUTPUT0", DataType::kFp32, {-1, 1}}});
    // One session per instance, so each instance's runs can be counted apart.
    sessions_ = {std::make_shared<FakeSession>(signature), std::make_shared<FakeSession>(signature)};
    for (auto& session : sessions_) session->set_record_shapes(false);
    options_.model_name = "m";
    options_.model_version = "1";
    options_.instances = {sessions_[0], sessions_[1]};
    options_.max_batch_size = 4;
    // Parameter: with dynamic batching (batches of several requests) or without (one run per request).
    options_.dynamic_batching = GetParam();
    options_.max_queue_delay = absl::Microseconds(100);
    options_.metrics = metrics_->ForVersion("m", "1");
  }
  ~InstanceMetricsTest() override {
    for (auto& session : sessions_) session->Release();
    if (scheduler_) scheduler_->Stop();
  }

  std::unique_ptr<observability::Metrics> metrics_;
  std::vector<std::shared_ptr<FakeSession>> sessions_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_P(InstanceMetricsTest, EachInstanceCountsItsOwnRunsAndTheyAddUpToAllRuns) {
  auto created = CreateScheduler(options_);
  ASSERT_TRUE(created.ok()) << created.status();
  scheduler_ = std::move(created).value();
  // The series exist (at 0) as soon as the runners start.
  std::string text = metrics_->Serialize();
  EXPECT_EQ(Sample(text, InstanceSeries(0)), 0);
  EXPECT_EQ(Sample(text, InstanceSeries(1)), 0);

  // Park both instances, then send two full batches (max_batch_size rows each, so each is cut at
  // once): while one instance holds the first, only the other can run the second.
  Collector collector;
  for (auto& session : sessions_) session->Hold();
  scheduler_->Enqueue(MakeFloatRequest("first", {4, 1}, {1, 2, 3, 4}), collector.Callback("first"));
  scheduler_->Enqueue(MakeFloatRequest("second", {4, 1}, {5, 6, 7, 8}), collector.Callback("second"));
  ASSERT_TRUE(sessions_[0]->WaitForRunsStarted(1, kWait));
  ASSERT_TRUE(sessions_[1]->WaitForRunsStarted(1, kWait));
  for (auto& session : sessions_) session->Release();
  ASSERT_TRUE(collector.WaitFor(2, kWait));

  // Then concurrent load from several producers.
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 250;
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  absl::Notification all_answered;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        scheduler_->Enqueue(MakeFloatRequest(StrCat(p, "-", i), {1, 1}, {static_cast<float>(i)}),
                            [&](absl::StatusOr<InferResponse> result) {
                              if (!result.ok()) ++failed;
                              if (++answered == kProducers * kPerProducer) all_answered.Notify();
                            });
      }
    });
  }
  for (auto& producer : producers) producer.join();
  ASSERT_TRUE(all_answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(failed.load(), 0);
  scheduler_->Stop();

  text = metrics_->Serialize();
  const double instance0 = Sample(text, InstanceSeries(0));
  const double instance1 = Sample(text, InstanceSeries(1));
  const double executions = Sample(text, "ortserve_execution_total{model=\"m\",version=\"1\"}");
  EXPECT_GT(instance0, 0);
  EXPECT_GT(instance1, 0);
  EXPECT_EQ(instance0 + instance1, executions);
  // Each counter is exactly its own session's runs.
  EXPECT_EQ(instance0, sessions_[0]->runs_finished());
  EXPECT_EQ(instance1, sessions_[1]->runs_finished());
  if (!GetParam()) EXPECT_EQ(executions, 2 + kProducers * kPerProducer);
}

TEST_P(InstanceMetricsTest, FailedRunsAreNotCountedLikeExecutionTotal) {
  for (auto& session : sessions_) session->SetFailure(absl::InternalError("boom"));
  auto created = CreateScheduler(options_);
  ASSERT_TRUE(created.ok()) << created.status();
  scheduler_ = std::move(created).value();
  Collector collector;
  for (int i = 0; i < 6; ++i) {
    scheduler_->Enqueue(MakeFloatRequest(StrCat(i), {1, 1}, {1}), collector.Callback(StrCat(i)));
  }
  ASSERT_TRUE(collector.WaitFor(6, kWait));
  scheduler_->Stop();
  const std::string text = metrics_->Serialize();
  EXPECT_EQ(Sample(text, InstanceSeries(0)), 0);
  EXPECT_EQ(Sample(text, InstanceSeries(1)), 0);
  EXPECT_EQ(Sample(text, "ortserve_execution_total{model=\"m\",version=\"1\"}"), 0);
}

TEST_P(InstanceMetricsTest, EachDeviceCountsTheTimeItWasRunningAModel) {
  // Instance 1 runs "on gpu0"; each run takes 5 ms of the fake clock.
  FakeClock clock;
  const auto signature =
      MakeSignature({{"INPUT0", DataType::kFp32, {-1, 1}}}, {{"OUTPUT0", DataType::kFp32, {-1, 1}}});
  auto slow = [&clock](std::span<const Tensor> inputs, std::span<const std::string> names,
                       FakeSession::Outputs& outputs) {
    clock.Advance(absl::Milliseconds(5));
    return FakeSession::CopyInputs(inputs, names, outputs);
  };
  sessions_ = {std::make_shared<FakeSession>(signature, slow), std::make_shared<FakeSession>(signature, slow)};
  sessions_[1]->set_device_name("gpu0");
  options_.instances = {sessions_[0], sessions_[1]};
  options_.clock = &clock;
  options_.max_queue_delay = absl::ZeroDuration();
  auto created = CreateScheduler(options_);
  ASSERT_TRUE(created.ok()) << created.status();
  scheduler_ = std::move(created).value();
  Collector collector;
  for (int i = 0; i < 20; ++i) {
    scheduler_->Enqueue(MakeFloatRequest(StrCat(i), {4, 1}, {1, 2, 3, 4}), collector.Callback(StrCat(i)));
    ASSERT_TRUE(collector.WaitFor(i + 1, kWait));  // One at a time: runs never overlap.
  }
  scheduler_.reset();  // Before `clock` goes.
  const std::string text = metrics_->Serialize();
  const double cpu = Sample(text, BusySeries("cpu"));
  const double gpu = Sample(text, BusySeries("gpu0"));
  EXPECT_EQ(Sample(text, InstanceSeries(0, "cpu")), sessions_[0]->runs_finished());
  EXPECT_EQ(Sample(text, InstanceSeries(1, "gpu0")), sessions_[1]->runs_finished());
  // Runs one after another: each device was busy exactly its runs' 5 ms.
  EXPECT_NEAR(cpu, 0.005 * sessions_[0]->runs_finished(), 1e-9) << text;
  EXPECT_NEAR(gpu, 0.005 * sessions_[1]->runs_finished(), 1e-9) << text;
  EXPECT_NEAR(cpu + gpu, 0.1, 1e-9);
}

TEST(DeviceActivityTest, OverlappingRunsCountOnceAndGapsNotAtAll) {
  observability::MetricsOptions options;
  options.process_metrics = false;
  options.gpu_metrics = false;
  auto metrics = *observability::Metrics::Create(options);
  observability::DeviceActivity* gpu = metrics->ForDevice("gpu0");
  EXPECT_EQ(metrics->ForDevice("gpu0"), gpu);
  const absl::Time t = absl::FromUnixSeconds(1000);
  gpu->RunStarted(t);                          // Instance A.
  gpu->RunStarted(t + absl::Seconds(1));       // Instance B overlaps A.
  gpu->RunFinished(t + absl::Seconds(2));      // A ends; B still runs.
  gpu->RunFinished(t + absl::Seconds(3));      // Busy 0..3.
  gpu->RunStarted(t + absl::Seconds(5));       // After a 2 s idle gap.
  gpu->RunFinished(t + absl::Seconds(6));
  // A start read on another thread just before the last end is not counted twice.
  gpu->RunStarted(t + absl::Milliseconds(5900));
  gpu->RunFinished(t + absl::Seconds(7));
  EXPECT_DOUBLE_EQ(Sample(metrics->Serialize(), BusySeries("gpu0")), 5.0);
  EXPECT_EQ(Sample(metrics->Serialize(), BusySeries("cpu")), -1);  // No runner there.
}

TEST(InstanceMetricsForInstanceTest, UnresolvedVersionHasNoInstanceSeries) {
  observability::MetricsOptions options;
  options.process_metrics = false;
  options.gpu_metrics = false;
  auto metrics = *observability::Metrics::Create(options);
  metrics->Unresolved()->ForInstance(0).RecordExecution();  // A no-op, not a crash.
  observability::InstanceMetrics().RecordExecution();
  EXPECT_THAT(metrics->Serialize(), ::testing::Not(HasSubstr("ortserve_instance_execution_total{")));
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutDynamicBatching, InstanceMetricsTest, ::testing::Bool());

}  // namespace
}  // namespace ortserve::scheduler
