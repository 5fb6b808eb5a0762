// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/infer_messages.h"

#include <utility>

namespace ortserve::frontend {

InferMessages::InferMessages(std::shared_ptr<InferMessagePair> pair) : pair_(std::move(pair)) {
  set_request(&pair_->request);
  set_response(&pair_->response);
}

InferMessageAllocator::InferMessageAllocator() : pool_(std::make_shared<Pool>()) {}

grpc::MessageHolder<inference::ModelInferRequest, inference::ModelInferResponse>*
InferMessageAllocator::AllocateMessages() {
  std::unique_ptr<InferMessagePair> pair;
  {
    absl::MutexLock lock(&pool_->mu);
    if (!pool_->idle.empty()) {
      pair = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    }
  }
  if (pair == nullptr) pair = std::make_unique<InferMessagePair>();
  // The pair goes back to the pool when gRPC (InferMessages::Release) and
  // the decoded request (its payload and tensor holders) have both let go.
  std::shared_ptr<InferMessagePair> shared(pair.release(),
                                           [pool = pool_](InferMessagePair* p) { pool->Return(p); });
  return new InferMessages(std::move(shared));
}

size_t InferMessageAllocator::idle() const {
  absl::MutexLock lock(&pool_->mu);
  return pool_->idle.size();
}

void InferMessageAllocator::Pool::Return(InferMessagePair* pair) {
  std::unique_ptr<InferMessagePair> owned(pair);
  // What the messages hold now is about what clearing would keep allocated.
  if (owned->request.ByteSizeLong() + owned->response.ByteSizeLong() > kMaxPooledMessageBytes) return;
  // Cleared outside the lock: clearing touches every field.
  owned->request.Clear();
  owned->response.Clear();
  absl::MutexLock lock(&mu);
  if (idle.size() < kMaxIdleMessagePairs) idle.push_back(std::move(owned));
}

}  // namespace ortserve::frontend
