// SPDX-License-Identifier: Apache-2.0
// AdaptiveBatchLimit's rule, and the dynamic batcher following it on a model
// whose run time grows with its rows (a fake session that advances a fake
// clock by a fixed time per row).
#include "scheduler/adaptive_batching.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_clock.h"
#include "fakes/fake_session.h"
#include "scheduler/scheduler.h"
#include "test_util.h"

namespace ortserve::scheduler {
namespace {

using ::ortserve::testing::FakeClock;
using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;
using ::testing::ElementsAre;

AdaptiveBatchLimit Limit(int64_t max_batch, absl::Duration max_delay = absl::Milliseconds(5)) {
  return AdaptiveBatchLimit({.target = absl::Milliseconds(20), .max_batch_size = max_batch, .max_queue_delay = max_delay});
}

TEST(AdaptiveBatchLimitTest, StartsAtOneRowAndTheConfiguredDelay) {
  const AdaptiveBatchLimit limit = Limit(64);
  EXPECT_EQ(limit.batch_size(), 1);
  EXPECT_EQ(limit.queue_delay(), absl::Milliseconds(5));
}

TEST(AdaptiveBatchLimitTest, GrowsByOneRowPerFullBatchWhileTwoRunsFitTheTarget) {
  AdaptiveBatchLimit limit = Limit(64);
  // 1 ms per row: two runs of b rows fit 20 ms up to b = 10.
  std::vector<int64_t> sizes;
  for (int i = 0; i < 30; ++i) {
    const int64_t rows = limit.batch_size();
    limit.Observe(rows, absl::Milliseconds(rows));
    sizes.push_back(limit.batch_size());
  }
  EXPECT_EQ(sizes[0], 2);
  EXPECT_EQ(sizes[8], 10);
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), 10);
  EXPECT_EQ(sizes.back(), 10);
  // What the target leaves after two runs of 10 rows: nothing.
  EXPECT_EQ(limit.queue_delay(), absl::ZeroDuration());
}

TEST(AdaptiveBatchLimitTest, ABatchBelowTheLimitLeavesIt) {
  AdaptiveBatchLimit limit = Limit(64, absl::Milliseconds(50));
  limit.Observe(1, absl::Milliseconds(1));
  limit.Observe(2, absl::Milliseconds(2));
  ASSERT_EQ(limit.batch_size(), 3);
  for (int i = 0; i < 10; ++i) limit.Observe(1, absl::Milliseconds(1));  // Light load: batches of one.
  EXPECT_EQ(limit.batch_size(), 3);
  // The delay is what two runs at the limit leave: 20 - 2 x 1 ms x 3.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(limit.queue_delay()), 14.0, 0.01);
}

TEST(AdaptiveBatchLimitTest, ShrinksMultiplicativelyOnAMiss) {
  AdaptiveBatchLimit limit = Limit(64, absl::Milliseconds(50));
  for (int i = 0; i < 20; ++i) limit.Observe(limit.batch_size(), absl::Microseconds(100) * limit.batch_size());
  ASSERT_EQ(limit.batch_size(), 21);
  // The model slows down (another tenant on the core): 5 ms per row.
  limit.Observe(21, absl::Milliseconds(105));
  EXPECT_EQ(limit.batch_size(), 15);  // floor(21 x 0.75)
  limit.Observe(15, absl::Milliseconds(75));
  EXPECT_EQ(limit.batch_size(), 11);
  limit.Observe(2, absl::Milliseconds(10));  // Within the target at 2 rows, but not full.
  EXPECT_EQ(limit.batch_size(), 11);
  limit.Observe(1, absl::Milliseconds(11));  // Over it even at one row: shrinks all the same.
  EXPECT_EQ(limit.batch_size(), 8);
}

TEST(AdaptiveBatchLimitTest, ABacklogBatchAboveTheLimitFeedsOnlyTheRunTimeAverage) {
  AdaptiveBatchLimit limit = Limit(64, absl::Milliseconds(50));
  for (int i = 0; i < 4; ++i) limit.Observe(limit.batch_size(), absl::Milliseconds(limit.batch_size()));
  ASSERT_EQ(limit.batch_size(), 5);
  // 64 rows in 32 ms: two such runs pass the target, but the batch was above
  // the limit (a backlog), so the limit stays; the average per row moves.
  limit.Observe(64, absl::Milliseconds(32));
  EXPECT_EQ(limit.batch_size(), 5);
  // Per row: 1 ms + (0.5 - 1) / 8 = 0.9375 ms; delay 20 - 2 x 0.9375 x 5.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(limit.queue_delay()), 10.625, 0.01);
}

TEST(AdaptiveBatchLimitTest, StaysWithinTheConfiguredBounds) {
  AdaptiveBatchLimit limit = Limit(4, absl::Milliseconds(2));
  for (int i = 0; i < 10; ++i) limit.Observe(limit.batch_size(), absl::Microseconds(10));
  EXPECT_EQ(limit.batch_size(), 4);
  EXPECT_EQ(limit.queue_delay(), absl::Milliseconds(2));  // Not more than max_queue_delay.
  for (int i = 0; i < 10; ++i) limit.Observe(limit.batch_size(), absl::Seconds(1));
  EXPECT_EQ(limit.batch_size(), 1);
  EXPECT_EQ(limit.queue_delay(), absl::ZeroDuration());
}

// The batcher with a latency target: its batches follow the limit.
class AdaptiveBatcherTest : public ::testing::Test {
 protected:
  AdaptiveBatcherTest() {
    auto compute = [this](std::span<const Tensor> inputs, std::span<const std::string> names,
                          FakeSession::Outputs& outputs) {
      clock_.Advance(per_row_.load() * inputs[0].shape[0]);  // The run takes its time on the clock.
      return FakeSession::CopyInputs(inputs, names, outputs);
    };
    session_ = std::make_shared<FakeSession>(
        MakeSignature({{"INPUT0", DataType::kFp32, {-1, 1}}}, {{"OUTPUT0", DataType::kFp32, {-1, 1}}}), compute);
    options_.model_name = "m";
    options_.model_version = "1";
    options_.instances = {session_};
    options_.clock = &clock_;
    options_.max_batch_size = 64;
    options_.dynamic_batching = true;
    options_.max_queue_delay = absl::Hours(1);
    options_.latency_target = absl::Milliseconds(20);
  }
  ~AdaptiveBatcherTest() override {
    if (scheduler_) scheduler_->Stop();
  }

  void SendAndWait(int n) {
    const size_t before = collector_.size();
    for (int i = 0; i < n; ++i) {
      const std::string id = std::to_string(sent_++);
      scheduler_->Enqueue(test::MakeFloatRequest(id, {1, 1}, {1.0f}), collector_.Callback(id));
    }
    ASSERT_TRUE(collector_.WaitFor(before + static_cast<size_t>(n), absl::Seconds(10)));
  }

  FakeClock clock_;
  std::atomic<absl::Duration> per_row_{absl::Milliseconds(1)};
  std::shared_ptr<FakeSession> session_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  test::Collector collector_;
  int sent_ = 0;
};

TEST_F(AdaptiveBatcherTest, BatchesGrowWithinTheTargetAndABacklogIsServedWithFullBatches) {
  auto created = CreateScheduler(options_);
  ASSERT_TRUE(created.ok()) << created.status();
  scheduler_ = std::move(created).value();
  // 200 requests at once, 1 ms per row (on the clock): batches of 1, 2, ...
  // rows while the oldest request has waited less than the 20 ms target.
  // Before the seventh batch it has waited 1 + 2 + ... + 6 = 21 ms: the
  // target is lost for the backlog, which then runs in batches of
  // max_batch_size (64, 64, and the 51 left). The first run is held until
  // all 200 are queued, so that they all arrive at the same (fake) time.
  session_->Hold();
  for (int i = 0; i < 200; ++i) {
    const std::string id = std::to_string(sent_++);
    scheduler_->Enqueue(test::MakeFloatRequest(id, {1, 1}, {1.0f}), collector_.Callback(id));
  }
  ASSERT_TRUE(session_->WaitForRunsStarted(1, absl::Seconds(10)));
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(200, absl::Seconds(10)));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 2, 3, 4, 5, 6, 64, 64, 51));
  // The backlog batches left the limit where the learning had brought it
  // (7 rows, whose two runs fit the target), and it goes on growing by one
  // row per full batch: the batch waits for its 7, then 8, then 9 rows (the
  // queue delay the target leaves, 6 ms, 4 ms, 2 ms, never passes on the
  // fake clock while the requests arrive).
  SendAndWait(7);
  SendAndWait(8);
  SendAndWait(9);
  const std::vector<int64_t> sizes = session_->batch_sizes();
  EXPECT_THAT(std::vector<int64_t>(sizes.begin() + 9, sizes.end()), ElementsAre(7, 8, 9));
}

TEST_F(AdaptiveBatcherTest, WithoutATargetTheBatchIsTheConfiguredSize) {
  options_.latency_target = absl::ZeroDuration();
  auto created = CreateScheduler(options_);
  ASSERT_TRUE(created.ok()) << created.status();
  scheduler_ = std::move(created).value();
  SendAndWait(128);
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(64, 64));
}

}  // namespace
}  // namespace ortserve::scheduler
