// SPDX-License-Identifier: Apache-2.0
// SharedMemoryManager's registration policy on real POSIX shared memory
// objects, and how gRPC peer strings are read.
#include "frontend/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace ortserve::frontend {
namespace {

using Clients = SharedMemoryPolicy::Clients;

// A shared memory object of `size` bytes, unlinked at the end.
class Object {
 public:
  Object(const std::string& stem, off_t size) : key_("/" + stem + "_" + std::to_string(::getpid())) {
    ::shm_unlink(key_.c_str());
    const int fd = ::shm_open(key_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, size), 0);
    ::close(fd);
  }
  ~Object() { ::shm_unlink(key_.c_str()); }
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

TEST(SharedMemoryPolicyTest, LoopbackClientsOnlyByDefault) {
  Object object("shm_policy_default", 4096);
  SharedMemoryManager manager;
  EXPECT_TRUE(manager.offered());
  const absl::Status far = manager.Register("r", object.key(), 0, 64, /*loopback_client=*/false);
  EXPECT_EQ(far.code(), absl::StatusCode::kPermissionDenied) << far;
  EXPECT_TRUE(manager.empty());
  EXPECT_TRUE(manager.Register("r", object.key(), 0, 64, /*loopback_client=*/true).ok());
  EXPECT_FALSE(manager.empty());
}

TEST(SharedMemoryPolicyTest, AnyClientWhenAllowed) {
  Object object("shm_policy_any", 4096);
  SharedMemoryManager manager({.clients = Clients::kAny, .key_prefix = ""});
  EXPECT_TRUE(manager.Register("r", object.key(), 0, 64, /*loopback_client=*/false).ok());
}

TEST(SharedMemoryPolicyTest, OffRefusesEveryone) {
  Object object("shm_policy_off", 4096);
  SharedMemoryManager manager({.clients = Clients::kOff, .key_prefix = ""});
  EXPECT_FALSE(manager.offered());
  const absl::Status refused = manager.Register("r", object.key(), 0, 64, /*loopback_client=*/true);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(manager.empty());
}

TEST(SharedMemoryPolicyTest, KeysMustCarryThePrefix) {
  Object good("shm_prefix_yes", 4096), bad("shm_other", 4096);
  SharedMemoryManager manager({.clients = Clients::kLoopback, .key_prefix = "shm_prefix_"});
  const absl::Status refused = manager.Register("bad", bad.key(), 0, 64, true);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("/shm_prefix_"), std::string_view::npos) << refused;
  EXPECT_TRUE(manager.Register("good", good.key(), 0, 64, true).ok());
}

TEST(SharedMemoryPolicyTest, ParsesTheFlag) {
  EXPECT_EQ(*ParseSharedMemoryClients("off"), Clients::kOff);
  EXPECT_EQ(*ParseSharedMemoryClients("loopback"), Clients::kLoopback);
  EXPECT_EQ(*ParseSharedMemoryClients("any"), Clients::kAny);
  EXPECT_FALSE(ParseSharedMemoryClients("yes").ok());
}

TEST(GrpcPeerTest, LoopbackPeers) {
  EXPECT_TRUE(IsLoopbackGrpcPeer("ipv4:127.0.0.1:4321"));
  EXPECT_TRUE(IsLoopbackGrpcPeer("ipv4:127.8.9.10:1"));
  EXPECT_TRUE(IsLoopbackGrpcPeer("ipv6:[::1]:4321"));
  EXPECT_TRUE(IsLoopbackGrpcPeer("ipv6:%5B::1%5D:4321"));
  EXPECT_TRUE(IsLoopbackGrpcPeer("ipv6:[::ffff:127.0.0.1]:4321"));
  EXPECT_TRUE(IsLoopbackGrpcPeer("unix:/run/ortserve.sock"));
}

TEST(GrpcPeerTest, OtherPeers) {
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv4:192.0.2.7:4321"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv4:128.0.0.1:4321"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv6:[fd00::2]:4321"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv6:%5Bfd00::2%5D:4321"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv6:[::ffff:10.0.0.1]:4321"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv6:[::1"));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv4:"));
  EXPECT_FALSE(IsLoopbackGrpcPeer(""));
  EXPECT_FALSE(IsLoopbackGrpcPeer("ipv4:localhost:1"));
}

}  // namespace
}  // namespace ortserve::frontend
