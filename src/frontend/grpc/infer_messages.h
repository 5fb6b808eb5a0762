// SPDX-License-Identifier: Apache-2.0
// ModelInfer's request and response messages, recycled across calls: gRPC
// allocates them through InferMessageAllocator, the decoded InferRequest
// shares ownership of the request message (raw tensors stay views into it,
// no copy), and once gRPC has released a pair and the request has let go of
// it, the pair is cleared and kept for the next call. Clearing keeps the
// messages' strings and repeated fields allocated, so a warm server parses
// and encodes a small request without allocating a message, a tensor entry
// or a tensor buffer. Pairs whose contents grew past kMaxPooledMessageBytes
// are freed instead, and at most kMaxIdleMessagePairs wait, so the pool
// holds at most kMaxIdleMessagePairs × kMaxPooledMessageBytes of buffers
// beyond what calls in flight use.
//
// Thread-safety: InferMessageAllocator is thread-safe; a pair is used by
// one call at a time.
#pragma once

#include <grpcpp/support/message_allocator.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/grpc_service.pb.h"

namespace ortserve::frontend {

// A pair whose request and response together are larger than this is not
// kept for reuse (a large tensor's buffer would stay allocated).
inline constexpr size_t kMaxPooledMessageBytes = 256 * 1024;
// At most this many pairs wait for reuse; more are freed.
inline constexpr size_t kMaxIdleMessagePairs = 128;

struct InferMessagePair {
  inference::ModelInferRequest request;
  inference::ModelInferResponse response;
};

// gRPC's holder of one call's pair. Release (gRPC, when the call is over)
// drops the call's reference; shared_request() gives the decoded request its
// own.
class InferMessages final
    : public grpc::MessageHolder<inference::ModelInferRequest, inference::ModelInferResponse> {
 public:
  explicit InferMessages(std::shared_ptr<InferMessagePair> pair);
  void Release() override { delete this; }
  std::shared_ptr<const inference::ModelInferRequest> shared_request() const {
    return {pair_, &pair_->request};
  }

 private:
  std::shared_ptr<InferMessagePair> pair_;
};

// The allocator ModelInfer's messages must come from (the call casts
// GetRpcAllocatorState() to InferMessages). Owns the idle pairs; pairs still
// in use when it is destroyed are freed when their last owner lets go.
class InferMessageAllocator final
    : public grpc::MessageAllocator<inference::ModelInferRequest, inference::ModelInferResponse> {
 public:
  InferMessageAllocator();
  grpc::MessageHolder<inference::ModelInferRequest, inference::ModelInferResponse>* AllocateMessages() override;
  // Pairs waiting for reuse (for tests and diagnostics).
  size_t idle() const;

 private:
  struct Pool {
    mutable absl::Mutex mu;
    std::vector<std::unique_ptr<InferMessagePair>> idle ABSL_GUARDED_BY(mu);
    // Clears `pair` and keeps it, or frees it when it is oversized or the
    // pool is full.
    void Return(InferMessagePair* pair);
  };
  // Shared with every pair's deleter, so a pair let go after the allocator
  // is gone still has a pool to return to.
  std::shared_ptr<Pool> pool_;
};

}  // namespace ortserve::frontend
