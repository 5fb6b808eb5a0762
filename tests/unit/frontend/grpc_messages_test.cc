// SPDX-License-Identifier: Apache-2.0
// ModelInfer's recycled message pairs (frontend/grpc/infer_messages.h): when a
// pair comes back, that it comes back cleared, and the bounds on what the
// pool keeps.
#include "frontend/grpc/infer_messages.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ortserve::frontend {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using Holder = grpc::MessageHolder<ModelInferRequest, ModelInferResponse>;

InferMessages* Allocate(InferMessageAllocator& allocator) {
  return static_cast<InferMessages*>(allocator.AllocateMessages());
}

// Fills a pair as a call would: a request with one raw input, an answer.
void FillAsACall(Holder* holder, size_t raw_bytes) {
  ModelInferRequest& request = *holder->request();
  request.set_model_name("weight");
  request.set_id("call-1");
  auto* input = request.add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(static_cast<int64_t>(raw_bytes / 4));
  request.add_raw_input_contents(std::string(raw_bytes, 'r'));
  ModelInferResponse& response = *holder->response();
  response.set_model_name("weight");
  response.set_id("call-1");
  response.add_outputs()->set_name("y");
  response.add_raw_output_contents(std::string(64, 'a'));
}

TEST(InferMessageAllocatorTest, KeepsAPairOnlyOnceGrpcAndTheDecodedRequestHaveLetGo) {
  InferMessageAllocator allocator;
  InferMessages* holder = Allocate(allocator);
  FillAsACall(holder, 8192);
  std::shared_ptr<const ModelInferRequest> decoded = holder->shared_request();
  holder->Release();  // gRPC is done with the call; the scheduler still holds the request.
  EXPECT_EQ(allocator.idle(), 0u);
  EXPECT_EQ(decoded->raw_input_contents(0).size(), 8192u);  // The views stay valid.
  decoded.reset();
  EXPECT_EQ(allocator.idle(), 1u);
}

TEST(InferMessageAllocatorTest, HandsOutAKeptPairClearedWithItsRequestReused) {
  InferMessageAllocator allocator;
  InferMessages* first = Allocate(allocator);
  FillAsACall(first, 8192);
  const ModelInferRequest* kept = first->request();
  first->Release();
  ASSERT_EQ(allocator.idle(), 1u);

  InferMessages* second = Allocate(allocator);
  EXPECT_EQ(allocator.idle(), 0u);
  EXPECT_EQ(second->request(), kept);
  EXPECT_EQ(second->request()->ByteSizeLong(), 0u);
  EXPECT_EQ(second->response()->ByteSizeLong(), 0u);
  EXPECT_EQ(second->request()->inputs_size(), 0);
  EXPECT_EQ(second->response()->raw_output_contents_size(), 0);
  second->Release();
}

TEST(InferMessageAllocatorTest, FreesAPairThatHeldALargeTensor) {
  InferMessageAllocator allocator;
  InferMessages* holder = Allocate(allocator);
  FillAsACall(holder, kMaxPooledMessageBytes + 1);
  holder->Release();
  EXPECT_EQ(allocator.idle(), 0u);
}

TEST(InferMessageAllocatorTest, KeepsAtMostTheIdleBound) {
  InferMessageAllocator allocator;
  std::vector<InferMessages*> calls;
  for (size_t i = 0; i < kMaxIdleMessagePairs + 5; ++i) calls.push_back(Allocate(allocator));
  for (auto* call : calls) call->Release();
  EXPECT_EQ(allocator.idle(), kMaxIdleMessagePairs);
}

TEST(InferMessageAllocatorTest, APairLetGoAfterTheAllocatorIsGoneIsFreed) {
  std::shared_ptr<const ModelInferRequest> decoded;
  {
    InferMessageAllocator allocator;
    InferMessages* holder = Allocate(allocator);
    FillAsACall(holder, 1024);
    decoded = holder->shared_request();
    holder->Release();
  }
  EXPECT_EQ(decoded->model_name(), "weight");
  decoded.reset();  // Returns to the pool the allocator shared; freed with it (ASan checks).
}

class InferMessageAllocatorThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(InferMessageAllocatorThreadsTest, CallsOnManyThreadsEachGetTheirOwnPair) {
  InferMessageAllocator allocator;
  std::vector<std::thread> threads;
  std::vector<int> mixed(GetParam(), 0);
  for (int t = 0; t < GetParam(); ++t) {
    threads.emplace_back([&allocator, &mixed, t] {
      for (int i = 0; i < 500; ++i) {
        InferMessages* holder = Allocate(allocator);
        // A pair in use by another call would show its id here.
        if (!holder->request()->id().empty()) ++mixed[t];
        holder->request()->set_id("thread-" + std::to_string(t));
        holder->response()->set_id(holder->request()->id());
        std::shared_ptr<const ModelInferRequest> decoded = holder->shared_request();
        if (i % 2 == 0) {
          holder->Release();
          decoded.reset();
        } else {
          decoded.reset();
          holder->Release();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < GetParam(); ++t) EXPECT_EQ(mixed[t], 0) << "thread " << t;
  EXPECT_LE(allocator.idle(), static_cast<size_t>(GetParam()));
  EXPECT_GE(allocator.idle(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Threads, InferMessageAllocatorThreadsTest, ::testing::Values(1, 2, 8));

}  // namespace
}  // namespace ortserve::frontend
