// SPDX-License-Identifier: Apache-2.0
// The dynamic batcher's token budget (max_batch_tokens) and length grouping.
#include <memory>
#include <string>
#include <vector>

#include "fakes/fake_clock.h"
#include "fakes/fake_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "unit/scheduler/test_util.h"

namespace ortserve::scheduler {
namespace {

using ::ortserve::testing::FakeClock;
using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;
using test::Collector;
using test::MakeFloatRequest;
using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(10);

class TokenBudgetTest : public ::testing::Test {
 protected:
  TokenBudgetTest()
      : session_(std::make_shared<FakeSession>(
            MakeSignature({{"INPUT0", DataType::kFp32, {-1, -1}}}, {{"OUTPUT0", DataType::kFp32, {-1, -1}}}))) {
    options_.model_name = "m";
    options_.model_version = "1";
    options_.instances = {session_};
    options_.clock = &clock_;
    options_.max_batch_size = 8;
    options_.dynamic_batching = true;
    options_.max_queue_delay = absl::Hours(1);
    options_.pad_variable_dims = true;
    options_.sequence_axis = 1;
  }
  ~TokenBudgetTest() override {
    session_->Release();
    if (scheduler_) scheduler_->Stop();
  }
  void Start() {
    auto created = CreateScheduler(options_);
    ASSERT_TRUE(created.ok()) << created.status();
    scheduler_ = std::move(created).value();
  }
  // A request of one row with `length` tokens.
  void Send(const std::string& id, int64_t length) {
    scheduler_->Enqueue(MakeFloatRequest(id, {1, length}, std::vector<float>(static_cast<size_t>(length), 1.0f)),
                        collector_.Callback(id));
  }

  FakeClock clock_;
  std::shared_ptr<FakeSession> session_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  Collector collector_;
};

TEST_F(TokenBudgetTest, CutsBatchBeforeRowsTimesLongestExceedsTheBudget) {
  options_.max_batch_tokens = 40;
  Start();
  for (int i = 0; i < 6; ++i) Send("r" + std::to_string(i), 10);
  // 4 rows x 10 tokens fill the budget: that batch is cut at once.
  ASSERT_TRUE(session_->WaitForRunsFinished(1, kWait));
  ASSERT_TRUE(collector_.WaitFor(4, kWait));
  EXPECT_EQ(collector_.size(), 4u);
  scheduler_->Stop();  // Flushes the other two.
  ASSERT_TRUE(collector_.WaitFor(6, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(4, 2));
}

TEST_F(TokenBudgetTest, PaddedCostCountsTheLongestRow) {
  options_.max_batch_tokens = 64;
  Start();
  Send("a", 17);  // Bucket 32.
  Send("b", 30);  // Same bucket: 2 x 30 = 60 fits.
  Send("c", 20);  // 3 x 30 = 90 would not: the batch is cut without it.
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  scheduler_->Stop();
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  const auto shapes = session_->batch_shapes();
  ASSERT_EQ(shapes.size(), 2u);
  EXPECT_EQ(shapes[0][0], Shape({2, 30}));  // Padded to the longest of its batch only.
  EXPECT_EQ(shapes[1][0], Shape({1, 20}));
}

TEST_F(TokenBudgetTest, RequestOverTheBudgetRunsAlone) {
  options_.max_batch_tokens = 16;
  Start();
  Send("long", 50);
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  ASSERT_TRUE(collector_.Get("long").ok()) << collector_.Get("long").status();
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1));
}

TEST_F(TokenBudgetTest, GroupsRequestsByLengthStartingWithTheOldest) {
  options_.max_batch_tokens = 4096;
  Start();
  Send("short1", 4);
  Send("long1", 100);
  Send("short2", 9);
  Send("long2", 120);
  Send("short3", 16);
  clock_.Advance(absl::Hours(1));  // The oldest request's delay has passed.
  ASSERT_TRUE(collector_.WaitFor(5, kWait));
  const auto shapes = session_->batch_shapes();
  ASSERT_EQ(shapes.size(), 2u);
  // The oldest request's bucket first, short texts never padded to long ones.
  EXPECT_EQ(shapes[0][0], Shape({3, 16}));
  EXPECT_EQ(shapes[1][0], Shape({2, 120}));
  EXPECT_THAT(collector_.Order(), ElementsAre("short1", "short2", "short3", "long1", "long2"));
  EXPECT_EQ(collector_.Get("short2")->outputs[0].shape, Shape({1, 16}));
}

TEST_F(TokenBudgetTest, HigherPriorityHeadLeadsTheBatch) {
  options_.max_batch_tokens = 4096;
  options_.priority_levels = 2;
  options_.default_priority_level = 2;
  Start();
  scheduler_->Enqueue(MakeFloatRequest("low-short", {1, 4}, std::vector<float>(4, 1.0f), 2),
                      collector_.Callback("low-short"));
  scheduler_->Enqueue(MakeFloatRequest("high-long", {1, 100}, std::vector<float>(100, 1.0f), 1),
                      collector_.Callback("high-long"));
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  EXPECT_THAT(collector_.Order(), ElementsAre("high-long", "low-short"));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 1));
}

TEST_F(TokenBudgetTest, NegativeBudgetIsRejected) {
  options_.max_batch_tokens = -1;
  EXPECT_FALSE(CreateScheduler(options_).ok());
}

}  // namespace
}  // namespace ortserve::scheduler
