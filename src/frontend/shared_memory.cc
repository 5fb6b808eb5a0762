// SPDX-License-Identifier: Apache-2.0
#include "frontend/shared_memory.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace ortserve::frontend {
namespace {

// Closes a descriptor at scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// The (region, offset, byte size) `parameters` name; `what` names the tensor.
struct ShmRange {
  std::string_view region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};
absl::StatusOr<ShmRange> ReadRange(const Parameters& parameters, std::string_view what) {
  ShmRange range;
  auto region = parameters.FindString(kShmRegion);
  if (!region) return absl::InvalidArgumentError(StrCat(what, ": ", kShmRegion, " must be a string"));
  range.region = *region;
  auto size = parameters.FindInt(kShmByteSize);
  if (!size || *size < 0) {
    return absl::InvalidArgumentError(
        StrCat(what, " names shared memory region '", range.region, "' but no non-negative ", kShmByteSize));
  }
  range.byte_size = static_cast<uint64_t>(*size);
  if (parameters.Find(kShmOffset) != nullptr) {
    auto offset = parameters.FindInt(kShmOffset);
    if (!offset || *offset < 0) {
      return absl::InvalidArgumentError(StrCat(what, ": ", kShmOffset, " must be a non-negative integer"));
    }
    range.offset = static_cast<uint64_t>(*offset);
  }
  return range;
}

}  // namespace

SharedMemoryRegion::~SharedMemoryRegion() {
  if (base_ != nullptr) ::munmap(base_, map_length_);
}

absl::StatusOr<std::span<std::byte>> SharedMemoryRegion::Slice(uint64_t offset, uint64_t size,
                                                                std::string_view what) const {
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, size, &end) || end > byte_size_) {
    return absl::InvalidArgumentError(StrCat(what, ": shared memory range [", offset, ", +", size,
                                             ") lies outside region '", name_, "' of ", byte_size_, " bytes"));
  }
  return bytes().subspan(offset, size);
}

absl::StatusOr<SharedMemoryPolicy::Clients> ParseSharedMemoryClients(std::string_view text) {
  if (text == "off") return SharedMemoryPolicy::Clients::kOff;
  if (text == "loopback") return SharedMemoryPolicy::Clients::kLoopback;
  if (text == "any") return SharedMemoryPolicy::Clients::kAny;
  return absl::InvalidArgumentError(
      StrCat("--system-shared-memory must be off, loopback or any, not '", text.substr(0, 64), "'"));
}

bool IsLoopbackGrpcPeer(std::string_view peer) {
  if (peer.starts_with("unix:") || peer.starts_with("unix-abstract:")) return true;
  std::string host;
  if (peer.starts_with("ipv4:")) {
    peer.remove_prefix(5);
    host = std::string(peer.substr(0, peer.rfind(':')));
  } else if (peer.starts_with("ipv6:")) {
    peer.remove_prefix(5);
    // "[::1]:5", or with the brackets percent-encoded ("%5B::1%5D:5").
    size_t open = 0, end = std::string_view::npos;
    if (peer.starts_with("[")) {
      open = 1;
      end = peer.find(']');
    } else if (peer.size() > 3 && peer[0] == '%' && peer[1] == '5' && (peer[2] == 'B' || peer[2] == 'b')) {
      open = 3;
      end = std::min(peer.find("%5D"), peer.find("%5d"));
    }
    if (open == 0 || end == std::string_view::npos) return false;
    host = std::string(peer.substr(open, end - open));
    if (const size_t zone = host.find('%'); zone != std::string::npos) host.resize(zone);
  } else {
    return false;
  }
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

SharedMemoryManager::~SharedMemoryManager() {
  absl::MutexLock lock(&mu_);
  regions_.clear();
}

namespace {
absl::Status TooMany() {
  return absl::ResourceExhaustedError(StrCat(SharedMemoryManager::kMaxRegions,
                                             " shared memory regions are registered, the most at once; unregister one"));
}
}  // namespace

absl::Status SharedMemoryManager::Register(std::string_view name, std::string_view key, uint64_t offset,
                                           uint64_t byte_size, bool loopback_client) {
  switch (policy_.clients) {
    case SharedMemoryPolicy::Clients::kOff:
      return absl::FailedPreconditionError(
          "system shared memory is turned off on this server (--system-shared-memory=off); send tensors in the "
          "request");
    case SharedMemoryPolicy::Clients::kLoopback:
      if (!loopback_client) {
        return absl::PermissionDeniedError(
            "system shared memory can be registered only over a loopback connection (a client on this host); "
            "--system-shared-memory=any allows every client");
      }
      break;
    case SharedMemoryPolicy::Clients::kAny: break;
  }
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        StrCat("a shared memory region needs a name of 1 to ", kMaxNameBytes, " bytes"));
  }
  if (key.size() < 2 || key.size() > 255 || key[0] != '/' || key.find('/', 1) != std::string_view::npos ||
      key.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("shared memory key '", key.substr(0, 300), "' must be '/name' (one leading '/', at most 255 bytes)"));
  }
  if (!key.substr(1).starts_with(policy_.key_prefix)) {
    return absl::PermissionDeniedError(StrCat("shared memory key '", key, "' does not begin with '/",
                                              policy_.key_prefix, "' (--shared-memory-key-prefix)"));
  }
  if (byte_size == 0) return absl::InvalidArgumentError(StrCat("shared memory region '", name, "' has byte_size 0"));
  {
    absl::MutexLock lock(&mu_);
    if (regions_.contains(name)) {
      return absl::AlreadyExistsError(StrCat("shared memory region '", name, "' is already registered"));
    }
    if (regions_.size() >= kMaxRegions) return TooMany();
  }
  const std::string key_string(key);
  const int fd = ::shm_open(key_string.c_str(), O_RDWR, 0);
  if (fd < 0) {
    const int error = errno;
    const std::string why = StrCat("cannot open shared memory key '", key, "': ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(why);
    if (error == EACCES) return absl::PermissionDeniedError(why);
    return absl::InvalidArgumentError(why);
  }
  FdCloser closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) return absl::InternalError(StrCat("cannot stat shared memory key '", key, "'"));
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, byte_size, &end) || end > static_cast<uint64_t>(info.st_size)) {
    return absl::InvalidArgumentError(StrCat("shared memory region '", name, "': offset ", offset, " + byte_size ",
                                             byte_size, " exceeds key '", key, "' of ", info.st_size, " bytes"));
  }
  auto region = std::shared_ptr<SharedMemoryRegion>(new SharedMemoryRegion());
  region->name_ = std::string(name);
  region->key_ = key_string;
  region->offset_ = offset;
  region->byte_size_ = byte_size;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  region->map_offset_ = offset - offset % page;
  region->map_length_ = static_cast<size_t>(end - region->map_offset_);
  void* base = ::mmap(nullptr, region->map_length_, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                      static_cast<off_t>(region->map_offset_));
  if (base == MAP_FAILED) {
    return absl::InternalError(StrCat("cannot map shared memory key '", key, "': ", std::strerror(errno)));
  }
  region->base_ = static_cast<std::byte*>(base);
  absl::MutexLock lock(&mu_);
  if (regions_.size() >= kMaxRegions) return TooMany();
  if (!regions_.try_emplace(std::string(name), std::move(region)).second) {
    return absl::AlreadyExistsError(StrCat("shared memory region '", name, "' is already registered"));
  }
  return absl::OkStatus();
}

absl::Status SharedMemoryManager::Unregister(std::string_view name) {
  std::shared_ptr<const SharedMemoryRegion> released;  // Unmapped (if last) after the lock.
  std::map<std::string, std::shared_ptr<const SharedMemoryRegion>, std::less<>> all;
  absl::MutexLock lock(&mu_);
  if (name.empty()) {
    all.swap(regions_);
    return absl::OkStatus();
  }
  auto it = regions_.find(name);
  if (it == regions_.end()) return absl::NotFoundError(StrCat("no shared memory region '", name, "' is registered"));
  released = std::move(it->second);
  regions_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::shared_ptr<const SharedMemoryRegion>>> SharedMemoryManager::Status(
    std::string_view name) const {
  std::vector<std::shared_ptr<const SharedMemoryRegion>> out;
  if (!name.empty()) {
    auto region = Find(name);
    if (!region.ok()) return region.status();
    out.push_back(*std::move(region));
    return out;
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [key, region] : regions_) out.push_back(region);
  return out;
}

absl::StatusOr<std::shared_ptr<const SharedMemoryRegion>> SharedMemoryManager::Find(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = regions_.find(name);
  if (it == regions_.end()) return absl::NotFoundError(StrCat("no shared memory region '", name, "' is registered"));
  return it->second;
}

absl::Status SharedMemoryManager::ResolveInputs(InferRequest* request) const {
  for (size_t i = 0; i < request->inputs.size() && i < request->input_parameters.size(); ++i) {
    const Parameters& parameters = request->input_parameters[i];
    if (!NamesSharedMemory(parameters)) continue;
    Tensor& tensor = request->inputs[i];
    const std::string what = StrCat("input '", tensor.name, "'");
    if (!tensor.data.empty()) {
      return absl::InvalidArgumentError(StrCat(what, " has data and names a shared memory region; send one"));
    }
    auto range = ReadRange(parameters, what);
    if (!range.ok()) return range.status();
    auto region = Find(range->region);
    if (!region.ok()) return absl::InvalidArgumentError(StrCat(what, ": ", region.status().message()));
    auto bytes = (*region)->Slice(range->offset, range->byte_size, what);
    if (!bytes.ok()) return bytes.status();
    tensor.data = *bytes;
    tensor.holder = *region;  // Keeps the mapping for the request's life.
    if (absl::Status valid = ValidateTensorBytes(tensor); !valid.ok()) {
      return absl::InvalidArgumentError(StrCat(what, " in shared memory: ", valid.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status SharedMemoryManager::WriteOutputs(const InferRequest& request, InferResponse* response) const {
  for (const RequestedOutput& requested : request.outputs) {
    if (!NamesSharedMemory(requested.parameters)) continue;
    const std::string what = StrCat("output '", requested.name, "'");
    const Tensor* tensor = nullptr;
    for (const Tensor& output : response->outputs) {
      if (output.name == requested.name) tensor = &output;
    }
    if (tensor == nullptr) return absl::InvalidArgumentError(StrCat(what, " is not in the model's response"));
    auto range = ReadRange(requested.parameters, what);
    if (!range.ok()) return range.status();
    if (tensor->data.size() > range->byte_size) {
      return absl::InvalidArgumentError(StrCat(what, " has ", tensor->data.size(), " bytes, more than its ",
                                               kShmByteSize, " of ", range->byte_size));
    }
    auto region = Find(range->region);
    if (!region.ok()) return absl::InvalidArgumentError(StrCat(what, ": ", region.status().message()));
    auto bytes = (*region)->Slice(range->offset, tensor->data.size(), what);
    if (!bytes.ok()) return bytes.status();
    if (!tensor->data.empty()) std::memcpy(bytes->data(), tensor->data.data(), tensor->data.size());
  }
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
