// SPDX-License-Identifier: Apache-2.0
// Set ALLOC_TRACE=1 to print a backtrace for each counted allocation.
// Proves the hot-path rule: after warm-up, serving a request of a seen shape
// allocates nothing on the heap between Enqueue and completion. Links
// tests/common/counting_new.cc, which replaces the global operator new, so it
// is its own test executable.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/counting_new.h"
#include "fakes/fake_session.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"

namespace ortserve::scheduler {
namespace {

using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;

constexpr int kRequests = 1000;

// Counts answers; the callback captures one pointer, so it fits inline.
struct Done {
  absl::Mutex mu;
  int ok ABSL_GUARDED_BY(mu) = 0;
  int failed ABSL_GUARDED_BY(mu) = 0;

  bool WaitFor(int n) {
    absl::MutexLock lock(&mu);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ok + failed >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(60));
  }
};

struct Prepared {
  std::vector<std::unique_ptr<InferRequest>> requests;
  std::vector<InferCallback> callbacks;
};

// Builds the requests and callbacks up front: the test's own allocations.
Prepared Prepare(Done* done, const std::vector<std::string>& requested) {
  Prepared prepared;
  for (int i = 0; i < kRequests; ++i) {
    auto request = std::make_unique<InferRequest>();
    request->model_name = "classifier";
    request->model_version = "1";
    request->id = "request-id-" + std::to_string(i);
    const int rows = 1 + i % 2;
    std::vector<float> values(static_cast<size_t>(rows) * 4, static_cast<float>(i));
    request->inputs.push_back(
        MakeTensor<float>("INPUT0", DataType::kFp32, {rows, 4}, std::span<const float>(values)));
    request->inputs.push_back(
        MakeTensor<float>("INPUT1", DataType::kFp32, {rows, 4}, std::span<const float>(values)));
    for (const auto& name : requested) request->outputs.push_back({.name = name});
    prepared.requests.push_back(std::move(request));
    prepared.callbacks.push_back([done, i](absl::StatusOr<InferResponse> result) {
      const bool good = result.ok() && result->outputs.size() == 2 &&
                        result->outputs[0].values<float>()[0] == static_cast<float>(i);
      absl::MutexLock lock(&done->mu);
      ++(good ? done->ok : done->failed);
    });
  }
  return prepared;
}

struct Case {
  const char* name;
  bool dynamic_batching;
  int instances;
  std::vector<std::string> output_names;  // Model outputs.
  bool request_outputs;                   // Requests name their outputs.
};

class AllocationTest : public ::testing::TestWithParam<Case> {};

TEST_P(AllocationTest, ServingAWarmShapeAllocatesNothingInTheScheduler) {
  const Case& c = GetParam();
  // The first warm-up round holds the runners until all its requests are
  // queued, so the queue reaches the deepest it can be in the measured round
  // (which, on a busy machine, may find the runners slower than in warm-up).
  absl::Notification all_queued;
  std::atomic<bool> hold{true};
  auto session = std::make_shared<FakeSession>(
      MakeSignature({{"INPUT0", DataType::kFp32, {-1, 4}}, {"INPUT1", DataType::kFp32, {-1, 4}}},
                    {{c.output_names[0], DataType::kFp32, {-1, 4}}, {c.output_names[1], DataType::kFp32, {-1, 4}}}),
      [&](std::span<const Tensor> inputs, std::span<const std::string> names, FakeSession::Outputs& outputs) {
        if (hold.load()) all_queued.WaitForNotification();
        t_in_session = true;  // Excludes the model's own work, as ORT's would be.
        absl::Status status = FakeSession::CopyInputs(inputs, names, outputs);
        t_in_session = false;
        return status;
      });
  session->set_record_shapes(false);
  ModelStats stats(8);
  SchedulerOptions options;
  options.model_name = "classifier";
  options.model_version = "1";
  for (int i = 0; i < c.instances; ++i) options.instances.push_back(session);
  options.max_batch_size = 8;
  options.dynamic_batching = c.dynamic_batching;
  options.max_queue_delay = absl::Microseconds(100);
  options.stats = &stats;
  auto created = CreateScheduler(options);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<Scheduler> scheduler = std::move(created).value();
  const std::vector<std::string> requested = c.request_outputs ? c.output_names : std::vector<std::string>{};

  // Warm-up: the same shapes, the same queue depth; twice, so that every
  // runner has met the batch sizes the timing can produce.
  for (int round = 0; round < 2; ++round) {
    Done warm;
    Prepared first = Prepare(&warm, requested);
    for (int i = 0; i < kRequests; ++i) {
      scheduler->Enqueue(std::move(first.requests[i]), std::move(first.callbacks[i]));
    }
    if (round == 0) {
      hold = false;
      all_queued.Notify();
    }
    ASSERT_TRUE(warm.WaitFor(kRequests));
  }

  Done done;
  Prepared second = Prepare(&done, requested);
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < kRequests; ++i) {
    scheduler->Enqueue(std::move(second.requests[i]), std::move(second.callbacks[i]));
  }
  const bool finished = done.WaitFor(kRequests);
  g_counting = false;
  ASSERT_TRUE(finished);
  {
    absl::MutexLock lock(&done.mu);
    EXPECT_EQ(done.ok, kRequests);
  }
  EXPECT_EQ(g_allocations.load(), 0u) << "heap allocations while serving " << kRequests << " warm requests";
  scheduler->Stop();
}

INSTANTIATE_TEST_SUITE_P(
    Configurations, AllocationTest,
    ::testing::Values(Case{"DynamicBatching", true, 1, {"OUTPUT0", "OUTPUT1"}, false},
                      Case{"DynamicBatchingTwoRunners", true, 2, {"OUTPUT0", "OUTPUT1"}, false},
                      Case{"OneRequestPerRun", false, 1, {"OUTPUT0", "OUTPUT1"}, false},
                      Case{"LongRequestedOutputNames", true, 2,
                           {"probabilities_for_every_class", "logits_before_the_softmax"}, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ortserve::scheduler
