// SPDX-License-Identifier: Apache-2.0
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fakes/fake_clock.h"
#include "fakes/fake_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/strings.h"
#include "observability/tracing.h"
#include "scheduler/dynamic_batcher.h"
#include "scheduler/scheduler.h"
#include "unit/scheduler/test_util.h"

namespace ortserve::scheduler {
namespace {

using ::ortserve::testing::FakeClock;
using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;
using test::Collector;
using test::Floats;
using test::MakeFloatRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);  // Bound for things that must happen.

backend::ModelSignature FloatSignature() {
  return MakeSignature({{"INPUT0", DataType::kFp32, {-1, -1}}},
                       {{"OUTPUT0", DataType::kFp32, {-1, -1}}, {"OUTPUT1", DataType::kFp32, {-1, -1}}});
}

// Output 0 doubles the input, output 1 adds one: responses prove the model ran on their rows.
absl::Status DoubleAndIncrement(std::span<const Tensor> inputs, std::span<const std::string> names,
                                FakeSession::Outputs& outputs) {
  const Tensor& input = inputs[0];
  for (const auto& name : names) {
    auto bytes = outputs.Add(name, input.type, input.shape, input.data.size());
    auto* out = reinterpret_cast<float*>(bytes.data());
    auto in = input.values<float>();
    for (size_t i = 0; i < in.size(); ++i) out[i] = name == "OUTPUT0" ? in[i] * 2 : in[i] + 1;
  }
  return absl::OkStatus();
}

class DynamicBatcherTest : public ::testing::Test {
 protected:
  DynamicBatcherTest() : session_(std::make_shared<FakeSession>(FloatSignature(), &DoubleAndIncrement)) {
    options_.model_name = "m";
    options_.model_version = "1";
    options_.instances = {session_};
    options_.clock = &clock_;
    options_.stats = &stats_;
  }
  ~DynamicBatcherTest() override {
    session_->Release();
    if (scheduler_) scheduler_->Stop();
  }

  // Dynamic batching that cuts a batch only at max_batch_size (4) rows: the
  // queue delay never runs out during a test.
  void StartBatchingFourRows() {
    options_.max_batch_size = 4;
    options_.dynamic_batching = true;
    options_.max_queue_delay = absl::Hours(1);
    Start();
  }

  void Start() {
    auto created = CreateScheduler(options_);
    ASSERT_TRUE(created.ok()) << created.status();
    scheduler_ = std::move(created).value();
  }

  // The runner threads start with the scheduler, and go back to the queue
  // after each batch: wait until every one is there, so that the next
  // request finds a runner idle.
  void LetRunnersSettle() {
    auto& batcher = static_cast<DynamicBatcher&>(*scheduler_);
    const absl::Time give_up = absl::Now() + kWait;
    while (batcher.IdleRunnerCount() < options_.instances.size() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_EQ(batcher.IdleRunnerCount(), options_.instances.size());
  }

  // Batches of up to 8 rows with the idle fast path (run_when_idle), the
  // runner waiting at the queue.
  void StartWithIdleFastPath(absl::Duration max_queue_delay) {
    options_.max_batch_size = 8;
    options_.dynamic_batching = true;
    options_.max_queue_delay = max_queue_delay;
    options_.run_when_idle = true;
    Start();
    LetRunnersSettle();
  }

  void Send(std::string id, Shape shape, std::vector<float> values, uint32_t priority = 0) {
    scheduler_->Enqueue(MakeFloatRequest(id, std::move(shape), std::move(values), priority),
                        collector_.Callback(id));
  }

  FakeClock clock_;
  ModelStats stats_{8};
  std::shared_ptr<FakeSession> session_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  Collector collector_;
};

TEST_F(DynamicBatcherTest, CutsBatchWhenMaxBatchSizeRowsArrive) {
  StartBatchingFourRows();
  Send("a", {1, 2}, {1, 2});
  Send("b", {2, 2}, {3, 4, 5, 6});
  Send("c", {1, 2}, {7, 8});
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(4));
  const auto& b = collector_.Get("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->id, "b");
  EXPECT_EQ(b->model_name, "m");
  EXPECT_EQ(b->model_version, "1");
  ASSERT_EQ(b->outputs.size(), 2u);
  EXPECT_EQ(b->outputs[0].name, "OUTPUT0");
  EXPECT_EQ(b->outputs[0].shape, Shape({2, 2}));
  EXPECT_THAT(Floats(b->outputs[0]), ElementsAre(6, 8, 10, 12));
  EXPECT_THAT(Floats(b->outputs[1]), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(Floats(collector_.Get("c")->outputs[0]), ElementsAre(14, 16));
}

TEST_F(DynamicBatcherTest, CutsBatchAtMaxQueueDelay) {
  options_.max_batch_size = 8;
  options_.dynamic_batching = true;
  options_.max_queue_delay = absl::Milliseconds(10);
  Start();
  Send("a", {1, 1}, {1});
  Send("b", {1, 1}, {2});
  clock_.Advance(absl::Milliseconds(9));
  EXPECT_FALSE(session_->WaitForRunsStarted(1, absl::Milliseconds(50)));
  Send("c", {1, 1}, {3});
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  scheduler_->Stop();
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(3));
  EXPECT_EQ(stats_.queue.count(), 3u);
  EXPECT_EQ(stats_.queue.ns(), absl::ToInt64Nanoseconds(absl::Milliseconds(10 + 10 + 1)));
}


TEST_F(DynamicBatcherTest, RunsAtOnceWhenItFindsTheQueueEmptyAndARunnerIdle) {
  StartWithIdleFastPath(absl::Hours(1));  // The fake clock never gets there.
  Send("a", {1, 1}, {1});
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_THAT(Floats(collector_.Get("a")->outputs[0]), ElementsAre(2));
  LetRunnersSettle();
  Send("b", {2, 1}, {2, 3});  // Idle again after the first: no waiting either.
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 2));
  EXPECT_EQ(stats_.queue.ns(), 0);  // Neither waited on the (fake) clock.
}

// A client in a loop sends its next request the moment it has its answer,
// which can be before the runner is back at the queue: the runner has run
// its model and is still answering, and the request must not wait for
// company on that account.
TEST_F(DynamicBatcherTest, RunsAtOnceWhenItArrivesWhileTheRunnerIsStillAnswering) {
  StartWithIdleFastPath(absl::Hours(1));  // The fake clock never gets there.
  InferCallback answer_b = collector_.Callback("b");
  InferCallback answer_a = collector_.Callback("a");
  // a's answer, delivered on the runner thread, sends b before returning.
  scheduler_->Enqueue(MakeFloatRequest("a", {1, 1}, {1}),
                      [&](absl::StatusOr<InferResponse> result) {
                        scheduler_->Enqueue(MakeFloatRequest("b", {1, 1}, {2}), std::move(answer_b));
                        std::move(answer_a)(std::move(result));
                      });
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  EXPECT_THAT(Floats(collector_.Get("b")->outputs[0]), ElementsAre(4));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 1));
}

TEST_F(DynamicBatcherTest, WaitsForCompanyWhenNoRunnerIsIdleEvenIfTheQueueWasEmpty) {
  StartWithIdleFastPath(absl::Milliseconds(10));
  session_->Hold();
  Send("a", {1, 1}, {1});  // Runs at once and is held in the session.
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  Send("b", {1, 1}, {2});  // The queue is empty but the only runner is busy.
  Send("c", {1, 1}, {3});
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_FALSE(session_->WaitForRunsStarted(2, absl::Milliseconds(50)));  // b and c wait for the delay.
  clock_.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 2));
}

// At saturation a runner is idle for a moment after every batch: the first
// request of the next wave must not run alone and leave the rest of the wave
// to the batch after it. Batches with company close the fast path; lone
// batches open it again.
TEST_F(DynamicBatcherTest, WaitsForCompanyAfterBatchesThatHadItAndRunsAtOnceAgainWhenAlone) {
  StartWithIdleFastPath(absl::Milliseconds(10));
  session_->Hold();
  Send("a", {1, 1}, {1});  // Alone: runs at once (held in the session).
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  for (const char* id : {"b", "c", "d", "e"}) Send(id, {1, 1}, {2});
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  clock_.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(collector_.WaitFor(5, kWait));  // b to e: one batch of four.
  // Requests per batch, averaged: 1, then 1.75 after the batch of four.
  int runs = 2;
  for (const char* id : {"f", "g"}) {
    LetRunnersSettle();
    Send(id, {1, 1}, {3});  // Finds the queue empty and the runner idle, yet waits.
    EXPECT_FALSE(session_->WaitForRunsStarted(runs + 1, absl::Milliseconds(50))) << id;
    clock_.Advance(absl::Milliseconds(10));
    ASSERT_TRUE(session_->WaitForRunsStarted(++runs, kWait)) << id;
    ASSERT_TRUE(collector_.WaitFor(runs + 3, kWait)) << id;
  }
  // Two lone batches later (1.56, 1.42) the fast path is open again.
  LetRunnersSettle();
  Send("h", {1, 1}, {4});
  ASSERT_TRUE(collector_.WaitFor(8, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 4, 1, 1, 1));
}

TEST_F(DynamicBatcherTest, WaitsOutTheQueueDelayWhenIdleIfAskedTo) {
  options_.max_batch_size = 8;
  options_.dynamic_batching = true;
  options_.max_queue_delay = absl::Milliseconds(10);
  options_.run_when_idle = false;  // dynamic_batching { wait_when_idle: true }
  Start();
  LetRunnersSettle();
  Send("a", {1, 1}, {1});
  EXPECT_FALSE(session_->WaitForRunsStarted(1, absl::Milliseconds(50)));
  clock_.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1));
}

TEST_F(DynamicBatcherTest, CutsAtLargestReachablePreferredSize) {
  options_.max_batch_size = 8;
  options_.dynamic_batching = true;
  options_.preferred_batch_sizes = {2, 4};
  options_.max_queue_delay = absl::Hours(1);
  Start();
  session_->Hold();
  Send("a", {1, 1}, {1});
  Send("b", {1, 1}, {2});  // Reaches preferred size 2: runs now, held in the session.
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  for (int i = 0; i < 5; ++i) Send(StrCat("q", i), {1, 1}, {float(i)});
  session_->Release();  // Five queued: 2 and 4 are reachable; 4 is the largest.
  ASSERT_TRUE(collector_.WaitFor(6, kWait));
  clock_.Advance(absl::Hours(1));  // The last one waits out the delay.
  ASSERT_TRUE(collector_.WaitFor(7, kWait));
  scheduler_->Stop();  // Stats are final once the runners are done.
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(2, 4, 1));
  EXPECT_EQ(stats_.ForBatch(4)->compute_infer.count(), 1u);
  EXPECT_EQ(stats_.inference_count.load(), 7u);
  EXPECT_EQ(stats_.execution_count.load(), 3u);
}

TEST_F(DynamicBatcherTest, RunsEachRequestAloneWithoutDynamicBatching) {
  options_.max_batch_size = 8;
  Start();
  session_->Hold();
  Send("a", {2, 1}, {1, 2});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  Send("b", {1, 1}, {3});
  Send("c", {1, 1}, {4});
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(2, 1, 1));
}

TEST_F(DynamicBatcherTest, BatchesHigherPriorityRequestsFirst) {
  options_.max_batch_size = 1;
  options_.dynamic_batching = true;
  options_.priority_levels = 3;
  options_.default_priority_level = 2;
  Start();
  session_->Hold();
  Send("first", {1, 1}, {0});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  Send("low", {1, 1}, {1}, 3);
  Send("default", {1, 1}, {2}, 0);
  Send("high", {1, 1}, {3}, 1);
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(4, kWait));
  EXPECT_THAT(collector_.Order(), ElementsAre("first", "high", "default", "low"));
}

TEST_F(DynamicBatcherTest, RejectsPriorityOutsideTheLevels) {
  options_.priority_levels = 2;
  Start();
  Send("x", {1, 1}, {0}, 3);
  ASSERT_EQ(collector_.size(), 1u);  // Answered inline.
  EXPECT_EQ(collector_.Get("x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DynamicBatcherTest, AnswersUnavailableNamingTheModelWhenQueueIsFull) {
  options_.max_batch_size = 4;
  options_.max_queue_size = 2;
  Start();
  session_->Hold();
  Send("running", {1, 1}, {0});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  Send("q1", {1, 1}, {1});
  Send("q2", {1, 1}, {2});
  Send("over", {1, 1}, {3});
  ASSERT_EQ(collector_.size(), 1u);  // Answered inline, before the others.
  const auto& over = collector_.Get("over");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("'m'"));
  EXPECT_EQ(scheduler_->InflightCount(), 3u);
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(4, kWait));
  EXPECT_TRUE(collector_.Get("q2").ok());
}

TEST_F(DynamicBatcherTest, AnswersDeadlineExceededPromptlyWhileRunnerIsBusyAndNeverRuns) {
  options_.max_batch_size = 4;
  Start();
  session_->Hold();
  Send("running", {1, 1}, {0});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  auto request = MakeFloatRequest("late", {1, 1}, {1});
  request->deadline = clock_.Now() + absl::Milliseconds(100);
  scheduler_->Enqueue(std::move(request), collector_.Callback("late"));
  Send("patient", {1, 1}, {2});
  clock_.Advance(absl::Milliseconds(99));
  EXPECT_EQ(collector_.size(), 0u);
  clock_.Advance(absl::Milliseconds(1));
  // The runner is still parked in the session: the deadline thread answers.
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_EQ(collector_.Get("late").status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(session_->runs_started(), 1);
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_EQ(session_->runs_started(), 2);  // "running" and "patient"; never "late".
  scheduler_->Stop();
  EXPECT_EQ(stats_.fail.count(), 1u);
}

TEST_F(DynamicBatcherTest, DefaultTimeoutCapsTheRequestTimeoutUnlessOverrideIsOff) {
  options_.max_batch_size = 4;
  options_.default_timeout = absl::Milliseconds(50);
  options_.allow_timeout_override = false;
  Start();
  session_->Hold();
  Send("running", {1, 1}, {0});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  auto request = MakeFloatRequest("long", {1, 1}, {1});
  request->deadline = clock_.Now() + absl::Hours(1);  // Ignored: override is off.
  scheduler_->Enqueue(std::move(request), collector_.Callback("long"));
  clock_.Advance(absl::Milliseconds(50));
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_EQ(collector_.Get("long").status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(DynamicBatcherTest, DropsCancelledRequestBeforeItIsBatched) {
  options_.max_batch_size = 4;
  options_.dynamic_batching = true;
  Start();
  session_->Hold();
  Send("running", {1, 1}, {0});
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  auto request = MakeFloatRequest("gone", {1, 1}, {1});
  auto flag = std::make_shared<CancellationFlag>();
  request->cancellation = flag;
  scheduler_->Enqueue(std::move(request), collector_.Callback("gone"));
  Send("kept", {1, 1}, {2});
  flag->Cancel();
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_EQ(collector_.Get("gone").status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(1, 1));  // "kept" ran alone.
  EXPECT_TRUE(collector_.Get("kept").ok());
}

TEST_F(DynamicBatcherTest, PadsVariableDimsWithPadValueAndReturnsPaddedOutputs) {
  options_.max_batch_size = 4;
  options_.dynamic_batching = true;
  options_.max_queue_delay = absl::Hours(1);
  options_.pad_variable_dims = true;
  options_.pad_value = -1;
  Start();
  Send("short", {1, 2}, {1, 2});
  Send("long", {2, 3}, {3, 4, 5, 6, 7, 8});
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  ASSERT_EQ(session_->batch_shapes().size(), 1u);
  EXPECT_EQ(session_->batch_shapes()[0][0], Shape({3, 3}));
  const auto& padded = collector_.Get("short");
  ASSERT_TRUE(padded.ok()) << padded.status();
  EXPECT_EQ(padded->outputs[0].shape, Shape({1, 3}));  // Padded size, as documented.
  EXPECT_THAT(Floats(padded->outputs[0]), ElementsAre(2, 4, -2));
  EXPECT_THAT(Floats(collector_.Get("long")->outputs[1]), ElementsAre(4, 5, 6, 7, 8, 9));
}

TEST_F(DynamicBatcherTest, BatchesEqualShapesTogetherAndPassesOverOthersWithoutPadding) {
  StartBatchingFourRows();
  session_->Hold();
  Send("running", {1, 1}, {0});
  clock_.Advance(absl::Hours(1));  // "running" waits out the delay alone.
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));
  Send("two", {1, 2}, {1, 2});
  Send("three", {1, 3}, {1, 2, 3});
  Send("two-again", {1, 2}, {3, 4});
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  clock_.Advance(absl::Hours(1));  // Every queued request has waited its delay.
  ASSERT_TRUE(collector_.WaitFor(4, kWait));
  const auto shapes = session_->batch_shapes();
  ASSERT_EQ(shapes.size(), 3u);
  EXPECT_EQ(shapes[1][0], Shape({2, 2}));  // "two" and "two-again", past "three".
  EXPECT_EQ(shapes[2][0], Shape({1, 3}));
  // Each still gets its own rows back.
  EXPECT_THAT(Floats(collector_.Get("two-again")->outputs[0]), ElementsAre(6, 8));
  EXPECT_THAT(Floats(collector_.Get("three")->outputs[0]), ElementsAre(2, 4, 6));
}

TEST_F(DynamicBatcherTest, BuildsBatchesInTheInstancesHostMemoryAndRunsSinglesInPlace) {
  // A GPU session hands out pinned memory; the batch must be built there, and
  // a request that runs alone must be read from its own bytes (no copy).
  StartBatchingFourRows();
  Send("a", {1, 2}, {1, 2});
  Send("b", {3, 2}, {3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  EXPECT_EQ(session_->runs_on_host_buffers(), 1);
  Send("c", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});  // Fills a batch on its own.
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_THAT(session_->batch_sizes(), ElementsAre(4, 4));
  EXPECT_EQ(session_->runs_on_host_buffers(), 1);
  const int allocated = session_->host_buffers_allocated();
  EXPECT_GE(allocated, 1);
  Send("d", {2, 2}, {1, 2, 3, 4});
  Send("e", {2, 2}, {5, 6, 7, 8});
  ASSERT_TRUE(collector_.WaitFor(5, kWait));
  EXPECT_THAT(Floats(collector_.Get("e")->outputs[0]), ElementsAre(10, 12, 14, 16));
  EXPECT_EQ(session_->runs_on_host_buffers(), 2);
  EXPECT_EQ(session_->host_buffers_allocated(), allocated);  // Warm: reused.
  scheduler_->Stop();
  scheduler_.reset();
  EXPECT_EQ(session_->host_buffers_alive(), 0);  // Given back before the session goes.
}

TEST_F(DynamicBatcherTest, SplitsOutputsAsViewsIntoTheBatchOutput) {
  StartBatchingFourRows();
  Send("a", {1, 2}, {1, 2});
  Send("b", {3, 2}, {3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  const Tensor& a = collector_.Get("a")->outputs[0];
  const Tensor& b = collector_.Get("b")->outputs[0];
  EXPECT_NE(a.holder, nullptr);
  EXPECT_EQ(a.holder, b.holder);  // Both share the one batch output.
  EXPECT_EQ(a.data.size(), 2 * sizeof(float));
  EXPECT_EQ(b.data.data(), a.data.data() + a.data.size());  // Rows 1..3 follow row 0: no copy.
  // The holder owns the batch bytes: the views stay valid after the runner moved on.
  const auto* batch = static_cast<const std::vector<std::byte>*>(a.holder.get());
  EXPECT_EQ(a.data.data(), batch->data());
}

TEST_F(DynamicBatcherTest, ReturnsRequestedOutputsInRequestOrder) {
  options_.max_batch_size = 4;
  Start();
  auto request = MakeFloatRequest("r", {1, 1}, {5});
  request->outputs.push_back({.name = "OUTPUT1"});
  request->outputs.push_back({.name = "OUTPUT0"});
  scheduler_->Enqueue(std::move(request), collector_.Callback("r"));
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  const auto& r = collector_.Get("r");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "OUTPUT1");
  EXPECT_THAT(Floats(r->outputs[0]), ElementsAre(6));
  EXPECT_EQ(r->outputs[1].name, "OUTPUT0");
  EXPECT_THAT(Floats(r->outputs[1]), ElementsAre(10));
}

TEST_F(DynamicBatcherTest, RejectsUnknownOutputAndOversizedBatch) {
  options_.max_batch_size = 2;
  Start();
  auto request = MakeFloatRequest("unknown", {1, 1}, {5});
  request->outputs.push_back({.name = "NOPE"});
  scheduler_->Enqueue(std::move(request), collector_.Callback("unknown"));
  Send("big", {3, 1}, {1, 2, 3});
  ASSERT_EQ(collector_.size(), 2u);
  EXPECT_THAT(std::string(collector_.Get("unknown").status().message()), HasSubstr("NOPE"));
  EXPECT_EQ(collector_.Get("big").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DynamicBatcherTest, FailsEveryRequestOfABatchWhenTheSessionFails) {
  StartBatchingFourRows();
  session_->SetFailure(absl::InternalError("engine broke"));
  Send("a", {2, 1}, {1, 2});
  Send("b", {2, 1}, {3, 4});
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  EXPECT_EQ(collector_.Get("a").status().message(), "engine broke");
  EXPECT_EQ(collector_.Get("b").status().code(), absl::StatusCode::kInternal);
  scheduler_->Stop();
  EXPECT_EQ(stats_.fail.count(), 2u);
  EXPECT_EQ(stats_.success.count(), 0u);
  EXPECT_EQ(scheduler_->InflightCount(), 0u);
}

TEST_F(DynamicBatcherTest, StopDrainsQueuedRequestsAndRejectsNewOnes) {
  StartBatchingFourRows();
  session_->Hold();
  Send("a", {1, 1}, {1});
  Send("b", {1, 1}, {2});
  std::thread stopper([this] { scheduler_->Stop(); });
  ASSERT_TRUE(session_->WaitForRunsStarted(1, kWait));  // Stop cut the batch without the delay.
  session_->Release();
  stopper.join();
  EXPECT_EQ(collector_.size(), 2u);
  EXPECT_TRUE(collector_.Get("a").ok());
  EXPECT_TRUE(collector_.Get("b").ok());
  Send("late", {1, 1}, {3});
  EXPECT_EQ(collector_.Get("late").status().code(), absl::StatusCode::kUnavailable);
  scheduler_->Stop();  // Idempotent.
}

TEST_F(DynamicBatcherTest, RunsInstancesConcurrentlyOnASharedSession) {
  options_.max_batch_size = 4;
  options_.instances = {session_, session_, session_};
  Start();
  session_->Hold();
  Send("a", {1, 1}, {1});
  Send("b", {1, 1}, {2});
  Send("c", {1, 1}, {3});
  ASSERT_TRUE(session_->WaitForRunsStarted(3, kWait));
  EXPECT_EQ(session_->max_concurrent_runs(), 3);
  session_->Release();
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
}

TEST_F(DynamicBatcherTest, RunsRequestsWithoutBatchDimensionAsTheyCome) {
  options_.max_batch_size = 0;
  Start();
  Send("scalar-ish", {3}, {1, 2, 3});
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  const auto& r = collector_.Get("scalar-ish");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Floats(r->outputs[0]), ElementsAre(2, 4, 6));
  scheduler_->Stop();
  EXPECT_EQ(stats_.inference_count.load(), 1u);
}

TEST_F(DynamicBatcherTest, BatchesBytesInputsOfEqualShapeAndSplitsBytesOutputs) {
  auto session = std::make_shared<FakeSession>(
      MakeSignature({{"TEXT", DataType::kBytes, {-1, -1}}}, {{"ECHO", DataType::kBytes, {-1, -1}}}));
  options_.instances = {session};
  options_.max_batch_size = 4;
  options_.dynamic_batching = true;
  options_.max_queue_delay = absl::Hours(1);
  options_.pad_variable_dims = true;  // BYTES are never padded.
  Start();
  auto send = [&](std::string id, Shape shape, std::vector<std::string> text) {
    auto request = std::make_unique<InferRequest>();
    request->id = id;
    request->inputs.push_back(MakeBytesTensor("TEXT", shape, text));
    scheduler_->Enqueue(std::move(request), collector_.Callback(id));
  };
  send("a", {1, 2}, {"x", "yy"});
  send("b", {1, 2}, {"", "zzz"});
  send("c", {1, 1}, {"other shape"});
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(collector_.WaitFor(3, kWait));
  EXPECT_THAT(session->batch_sizes(), ElementsAre(2, 1));
  auto elements = SplitBytesElements(collector_.Get("b")->outputs[0].data, 2, "ECHO");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_THAT(*elements, ElementsAre("", "zzz"));
}

// Many producers, several runner counts: every request gets its own rows back.
class DynamicBatcherStressTest : public ::testing::TestWithParam<int> {};

TEST_P(DynamicBatcherStressTest, AnswersEveryRequestWithItsOwnRowsUnderConcurrency) {
  auto session = std::make_shared<FakeSession>(FloatSignature(), &DoubleAndIncrement);
  session->set_record_shapes(false);
  ModelStats stats(8);
  SchedulerOptions options;
  options.model_name = "m";
  options.model_version = "1";
  for (int i = 0; i < GetParam(); ++i) options.instances.push_back(session);
  options.max_batch_size = 8;
  options.dynamic_batching = true;
  options.preferred_batch_sizes = {4};
  options.max_queue_delay = absl::Microseconds(200);
  options.stats = &stats;
  auto created = CreateScheduler(options);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<Scheduler> scheduler = std::move(created).value();

  constexpr int kProducers = 4;
  constexpr int kPerProducer = 500;
  absl::Mutex mu;
  int answered = 0;
  int wrong = 0;
  int64_t rows_sent = 0;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        const int rows = 1 + (i % 3);
        const float base = static_cast<float>(p * 100000 + i * 10);
        std::vector<float> values;
        for (int r = 0; r < rows; ++r) values.push_back(base + r);
        {
          absl::MutexLock lock(&mu);
          rows_sent += rows;
        }
        scheduler->Enqueue(MakeFloatRequest("r", {rows, 1}, values),
                           [&, values](absl::StatusOr<InferResponse> result) {
                             bool ok = result.ok() && result->outputs.size() == 2;
                             if (ok) {
                               auto doubled = result->outputs[0].values<float>();
                               ok = doubled.size() == values.size();
                               for (size_t k = 0; ok && k < values.size(); ++k) ok = doubled[k] == values[k] * 2;
                             }
                             absl::MutexLock lock(&mu);
                             ++answered;
                             if (!ok) ++wrong;
                           });
      }
    });
  }
  for (auto& producer : producers) producer.join();
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return answered == kProducers * kPerProducer; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)));
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(stats.inference_count.load(), static_cast<uint64_t>(rows_sent));
  }
  scheduler->Stop();
  EXPECT_EQ(scheduler->InflightCount(), 0u);
  EXPECT_EQ(stats.success.count(), static_cast<uint64_t>(kProducers * kPerProducer));
}

INSTANTIATE_TEST_SUITE_P(RunnerCounts, DynamicBatcherStressTest, ::testing::Values(1, 2, 4, 8));

// A session that makes spans of its own (a remote model's call) gets the
// span its run belongs under: the request's span when the batch is that one
// sampled request, else the batch span (a trace of its own, which the
// exported batch span then uses); unsampled runs are not traced.
TEST_F(DynamicBatcherTest, ATracedRunIsParentedByItsLoneRequestOrByTheBatchSpan) {
  auto tracer = observability::Tracer::Create({.sampling_ratio = 1.0});
  ASSERT_TRUE(tracer.ok()) << tracer.status();
  auto sampled = [&](std::string id, Shape shape, std::vector<float> values, uint8_t mark) {
    auto request = MakeFloatRequest(id, std::move(shape), std::move(values));
    request->trace.trace_id.fill(mark);
    request->trace.span_id.fill(mark);
    request->trace.tracer = tracer->get();
    scheduler_->Enqueue(std::move(request), collector_.Callback(id));
  };
  StartBatchingFourRows();
  Send("plain", {4, 1}, {1, 2, 3, 4});  // A full batch, unsampled: Run, not RunTraced.
  ASSERT_TRUE(collector_.WaitFor(1, kWait));
  EXPECT_TRUE(session_->trace_parents().empty());
  sampled("alone", {4, 1}, {1, 2, 3, 4}, 7);
  ASSERT_TRUE(collector_.WaitFor(2, kWait));
  ASSERT_EQ(session_->trace_parents().size(), 1u);
  RequestTrace parent = session_->trace_parents()[0];
  EXPECT_EQ(parent.trace_id[0], 7);
  EXPECT_EQ(parent.span_id[0], 7);
  EXPECT_EQ(parent.tracer, tracer->get());
  sampled("a", {2, 1}, {1, 2}, 8);
  Send("b", {2, 1}, {3, 4});
  ASSERT_TRUE(collector_.WaitFor(4, kWait));
  ASSERT_EQ(session_->trace_parents().size(), 2u);
  parent = session_->trace_parents()[1];
  EXPECT_EQ(parent.tracer, tracer->get());
  EXPECT_NE(parent.trace_id, (std::array<uint8_t, 16>{8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8}));
  EXPECT_NE(parent.trace_id, (std::array<uint8_t, 16>{}));
  EXPECT_NE(parent.span_id, (std::array<uint8_t, 8>{}));
  EXPECT_TRUE(collector_.Get("a").ok());
}

}  // namespace
}  // namespace ortserve::scheduler
