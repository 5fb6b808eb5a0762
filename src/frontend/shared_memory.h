// SPDX-License-Identifier: Apache-2.0
// System shared memory (Triton's extension): regions a same-host client
// created with shm_open and registers by name (key, offset, byte_size), so
// that inputs are read from them and outputs written into them instead of
// travelling through the socket.
//
// Lifetime: a region is mapped at registration and unmapped when the last
// holder lets go: the registry holds it until unregistered, and a request
// holds each region it reads or writes until its answer is written
// (tensors' holders). Unregistering a region in use is therefore safe: the
// name is gone at once, the mapping when the request is done. The registry's
// destructor (shutdown) lets go of every region the same way.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/infer_request.h"
#include "frontend/kserve/reserved_parameters.h"

namespace ortserve::frontend {

// Who may register regions (--system-shared-memory, --shared-memory-key-prefix).
struct SharedMemoryPolicy {
  enum class Clients {
    kOff,       // Refused: the extension is not offered.
    kLoopback,  // Only clients on a loopback connection (the default): a
                // client elsewhere cannot have created an object in this
                // host's /dev/shm, so its registration can only be an attack.
    kAny,       // Any client that may infer.
  };
  Clients clients = Clients::kLoopback;
  // Keys must begin with it ("/" + prefix); empty: any "/name".
  std::string key_prefix;
};

// Parses --system-shared-memory's value: "off", "loopback" or "any".
absl::StatusOr<SharedMemoryPolicy::Clients> ParseSharedMemoryClients(std::string_view text);
// Whether a gRPC peer string ("ipv4:127.0.0.1:5", "ipv6:[::1]:5", "unix:...")
// is a connection from this host.
bool IsLoopbackGrpcPeer(std::string_view peer);

// One registered region: byte_size bytes at `offset` in shared memory object `key`.
class SharedMemoryRegion {
 public:
  ~SharedMemoryRegion();  // Unmaps.
  SharedMemoryRegion(const SharedMemoryRegion&) = delete;
  SharedMemoryRegion& operator=(const SharedMemoryRegion&) = delete;

  const std::string& name() const { return name_; }
  const std::string& key() const { return key_; }
  uint64_t offset() const { return offset_; }
  uint64_t byte_size() const { return byte_size_; }
  // The region's bytes [offset, offset + byte_size) of the object.
  std::span<std::byte> bytes() const { return {base_ + (offset_ - map_offset_), byte_size_}; }

  // `size` bytes at `offset` within the region, or InvalidArgument naming
  // `what` when they do not fit (checked arithmetic).
  absl::StatusOr<std::span<std::byte>> Slice(uint64_t offset, uint64_t size, std::string_view what) const;

 private:
  friend class SharedMemoryManager;
  SharedMemoryRegion() = default;
  std::string name_, key_;
  uint64_t offset_ = 0, byte_size_ = 0;
  std::byte* base_ = nullptr;  // The mapping's start (page aligned).
  uint64_t map_offset_ = 0;    // Where in the object the mapping starts.
  size_t map_length_ = 0;
};

class SharedMemoryManager {
 public:
  // What clients may register at once: regions, and the bytes of a name.
  static constexpr size_t kMaxRegions = 64;
  static constexpr size_t kMaxNameBytes = 255;

  explicit SharedMemoryManager(SharedMemoryPolicy policy = {}) : policy_(std::move(policy)) {}
  ~SharedMemoryManager();  // Lets go of every region (unmapped once no request holds it).

  // Opens `key` (shm_open, read-write) and maps [offset, offset + byte_size).
  // Errors: AlreadyExists for a name already registered; InvalidArgument for
  // an empty name, a key that is not "/name" (no other '/'), a zero size, or
  // a range past the object's end; NotFound when no such object exists;
  // PermissionDenied when the server may not open it, when `loopback_client`
  // is false under the default policy, or when the key lacks the policy's
  // prefix; FailedPrecondition when the policy turns the extension off.
  absl::Status Register(std::string_view name, std::string_view key, uint64_t offset, uint64_t byte_size,
                        bool loopback_client);
  // Whether clients may register regions at all (server metadata lists the
  // extension only then).
  bool offered() const { return policy_.clients != SharedMemoryPolicy::Clients::kOff; }
  // Removes `name` (empty: every region). Errors: NotFound for an unknown name.
  absl::Status Unregister(std::string_view name);
  // `name`'s region (empty: all, by name). Errors: NotFound for an unknown name.
  absl::StatusOr<std::vector<std::shared_ptr<const SharedMemoryRegion>>> Status(std::string_view name) const;
  absl::StatusOr<std::shared_ptr<const SharedMemoryRegion>> Find(std::string_view name) const;

  // Points every input of `request` whose parameters name a
  // shared_memory_region (with shared_memory_byte_size and optionally
  // shared_memory_offset) at that range of the region, which the tensor
  // then holds. Errors: InvalidArgument naming the input (unknown region, a
  // range outside it, a size that does not match the input's shape and
  // datatype, or data sent as well).
  absl::Status ResolveInputs(InferRequest* request) const;

  // Copies each output of `response` that `request` asked to be written into
  // a region (requested-output parameters as for inputs) into it, and marks
  // it so that encoders send its shape and parameters without its data
  // (OutputInSharedMemory). Errors: InvalidArgument naming the output
  // (unknown region, range outside it, output larger than
  // shared_memory_byte_size).
  absl::Status WriteOutputs(const InferRequest& request, InferResponse* response) const;

  // Whether any region is registered (requests skip the lookups otherwise).
  bool empty() const {
    absl::MutexLock lock(&mu_);
    return regions_.empty();
  }

 private:
  const SharedMemoryPolicy policy_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const SharedMemoryRegion>, std::less<>> regions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::frontend
