// SPDX-License-Identifier: Apache-2.0
#include "retrieval/wal.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace ortserve::retrieval {
namespace {

static_assert(std::endian::native == std::endian::little, "the log format is little-endian");

constexpr uint8_t kBatchKind = 1;

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads little-endian values and byte strings from a payload, every length
// checked against what is left.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Get(T& value) {
    if (data_.size() < sizeof(T)) return false;
    std::memcpy(&value, data_.data(), sizeof(T));
    data_.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(size_t n, std::string_view& out) {
    if (data_.size() < n) return false;
    out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

uint32_t FrameCrc(uint32_t length, std::string_view payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(&length), sizeof(length));
  // zlib's length is a uInt: payloads are at most kMaxRecordBytes.
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(crc);
}

void PutChange(std::string& out, const Change& change) {
  Put<uint8_t>(out, static_cast<uint8_t>(change.kind));
  Put<uint16_t>(out, static_cast<uint16_t>(change.document.id.size()));
  out.append(change.document.id);
  if (change.kind == Change::Kind::kUpsert) {
    Put<uint32_t>(out, static_cast<uint32_t>(change.document.vector.size()));
    out.append(reinterpret_cast<const char*>(change.document.vector.data()),
               change.document.vector.size() * sizeof(float));
    Put<uint32_t>(out, static_cast<uint32_t>(change.document.metadata.size()));
    out.append(change.document.metadata);
  }
}

absl::Status GetChange(Reader& in, Change& change) {
  uint8_t op = 0;
  uint16_t id_length = 0;
  std::string_view id;
  if (!in.Get(op) || (op != 1 && op != 2)) return absl::DataLossError("a change's op is not 1 or 2");
  if (!in.Get(id_length) || id_length == 0 || id_length > kMaxIdBytes || !in.Bytes(id_length, id)) {
    return absl::DataLossError("a document id is out of bounds");
  }
  change.kind = static_cast<Change::Kind>(op);
  change.document.id.assign(id);
  if (change.kind == Change::Kind::kDelete) return absl::OkStatus();
  uint32_t dimension = 0;
  std::string_view values;
  if (!in.Get(dimension) || dimension == 0 || dimension > kMaxDimension ||
      !in.Bytes(size_t{dimension} * sizeof(float), values)) {
    return absl::DataLossError("a vector's dimension is out of bounds");
  }
  change.document.vector.resize(dimension);
  std::memcpy(change.document.vector.data(), values.data(), values.size());
  uint32_t metadata_length = 0;
  std::string_view metadata;
  if (!in.Get(metadata_length) || metadata_length > kMaxMetadataBytes || !in.Bytes(metadata_length, metadata)) {
    return absl::DataLossError("a document's metadata is out of bounds");
  }
  change.document.metadata.assign(metadata);
  return absl::OkStatus();
}

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InternalError(StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// read() exactly `n` bytes; false at a short read (end of file) or error.
bool ReadExactly(int fd, char* out, size_t n) {
  while (n > 0) {
    const ssize_t got = ::read(fd, out, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(std::string_view name) {
  if (name == "always") return FsyncPolicy::kAlways;
  if (name == "never") return FsyncPolicy::kNever;
  return absl::InvalidArgumentError(StrCat("unknown fsync policy '", name, "' (use always or never)"));
}

void AppendFrame(std::string_view payload, std::string& out) {
  const auto length = static_cast<uint32_t>(payload.size());
  Put<uint32_t>(out, length);
  Put<uint32_t>(out, FrameCrc(length, payload));
  out.append(payload);
}

absl::StatusOr<std::string> EncodeBatch(const Batch& batch) {
  if (batch.changes.size() > kMaxBatchChanges) {
    return absl::InvalidArgumentError(StrCat("a batch holds at most ", kMaxBatchChanges, " changes"));
  }
  uint64_t size = 13;
  for (const Change& change : batch.changes) {
    size += 3 + change.document.id.size() + 8 + change.document.vector.size() * sizeof(float) +
            change.document.metadata.size();
    if (change.document.id.size() > kMaxIdBytes || change.document.metadata.size() > kMaxMetadataBytes ||
        change.document.vector.size() > kMaxDimension) {
      return absl::InvalidArgumentError("a change is over the log's bounds");
    }
  }
  if (size > kMaxRecordBytes) {
    return absl::InvalidArgumentError(StrCat("the batch is ", size, " bytes, over the log's ", kMaxRecordBytes,
                                             "-byte record bound; send fewer documents at once"));
  }
  std::string out;
  out.reserve(size);
  Put<uint8_t>(out, kBatchKind);
  Put<uint64_t>(out, batch.sequence);
  Put<uint32_t>(out, static_cast<uint32_t>(batch.changes.size()));
  for (const Change& change : batch.changes) PutChange(out, change);
  return out;
}

absl::StatusOr<Batch> DecodeBatch(std::string_view payload) {
  Reader in(payload);
  uint8_t kind = 0;
  uint32_t count = 0;
  Batch batch;
  if (!in.Get(kind) || kind != kBatchKind) return absl::DataLossError("a record is not a batch");
  if (!in.Get(batch.sequence) || !in.Get(count) || count > kMaxBatchChanges) {
    return absl::DataLossError("a batch's header is out of bounds");
  }
  batch.changes.resize(count);
  for (Change& change : batch.changes) {
    if (auto s = GetChange(in, change); !s.ok()) return s;
  }
  if (!in.empty()) return absl::DataLossError("a batch has bytes after its last change");
  return batch;
}

std::string EncodeDocument(std::string_view id, const float* vector, uint32_t dimension, std::string_view metadata) {
  std::string out;
  out.reserve(11 + id.size() + size_t{dimension} * sizeof(float) + metadata.size());
  Put<uint8_t>(out, static_cast<uint8_t>(Change::Kind::kUpsert));
  Put<uint16_t>(out, static_cast<uint16_t>(id.size()));
  out.append(id);
  Put<uint32_t>(out, dimension);
  out.append(reinterpret_cast<const char*>(vector), size_t{dimension} * sizeof(float));
  Put<uint32_t>(out, static_cast<uint32_t>(metadata.size()));
  out.append(metadata);
  return out;
}

absl::StatusOr<Document> DecodeDocument(std::string_view payload) {
  Reader in(payload);
  Change change;
  if (auto s = GetChange(in, change); !s.ok()) return s;
  if (change.kind != Change::Kind::kUpsert || !in.empty()) return absl::DataLossError("a snapshot entry is malformed");
  return std::move(change.document);
}

absl::StatusOr<uint64_t> ReadFrames(int fd, const std::function<absl::Status(std::string_view)>& visit,
                                    std::string* stopped) {
  uint64_t good = 0;
  std::string payload;
  stopped->clear();
  for (;;) {
    char header[8];
    const ssize_t got = ::read(fd, header, 1);
    if (got == 0) return good;  // A clean end.
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(StrCat("reading the log: ", std::strerror(errno)));
    }
    if (!ReadExactly(fd, header + 1, sizeof(header) - 1)) {
      *stopped = "a torn frame header";
      return good;
    }
    uint32_t length = 0, crc = 0;
    std::memcpy(&length, header, 4);
    std::memcpy(&crc, header + 4, 4);
    if (length > kMaxRecordBytes) {
      *stopped = StrCat("a frame length of ", length, " bytes (over ", kMaxRecordBytes, ")");
      return good;
    }
    payload.resize(length);
    if (!ReadExactly(fd, payload.data(), length)) {
      *stopped = "a torn frame";
      return good;
    }
    if (FrameCrc(length, payload) != crc) {
      *stopped = "a frame whose CRC does not match";
      return good;
    }
    if (auto s = visit(payload); !s.ok()) return s;
    good += sizeof(header) + length;
  }
}

WalWriter::WalWriter(int fd, uint64_t length, FsyncPolicy policy)
    : fd_(fd), policy_(policy), written_(length), synced_(length) {}

WalWriter::~WalWriter() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(const std::string& path, uint64_t valid_length,
                                                           FsyncPolicy policy) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("opening", path);
  if (::ftruncate(fd, static_cast<off_t>(valid_length)) != 0 || ::fdatasync(fd) != 0 ||
      ::lseek(fd, static_cast<off_t>(valid_length), SEEK_SET) < 0) {
    absl::Status status = Errno("cutting", path);
    ::close(fd);
    return status;
  }
  return std::unique_ptr<WalWriter>(new WalWriter(fd, valid_length, policy));
}

absl::StatusOr<uint64_t> WalWriter::Append(std::string_view payload) {
  if (payload.size() > kMaxRecordBytes) return absl::InvalidArgumentError("a log record is over its bound");
  std::string frame;
  frame.reserve(8 + payload.size());
  AppendFrame(payload, frame);
  absl::MutexLock lock(&append_mu_);
  const uint64_t before = written_.load(std::memory_order_relaxed);
  if (!WriteAll(fd_, frame)) {
    absl::Status status = absl::UnavailableError(StrCat("writing the log failed: ", std::strerror(errno)));
    // Leave no partial frame behind for the next append to follow.
    if (::ftruncate(fd_, static_cast<off_t>(before)) != 0 || ::lseek(fd_, static_cast<off_t>(before), SEEK_SET) < 0) {
      return absl::InternalError("writing the log failed and its tail could not be cut back");
    }
    return status;
  }
  const uint64_t after = before + frame.size();
  written_.store(after, std::memory_order_release);
  return after;
}

absl::Status WalWriter::Sync(uint64_t length) {
  if (policy_ == FsyncPolicy::kNever) return absl::OkStatus();
  absl::MutexLock lock(&sync_mu_);
  if (synced_ >= length) return absl::OkStatus();  // Another writer's sync covered it.
  const uint64_t target = written_.load(std::memory_order_acquire);
  if (::fdatasync(fd_) != 0) return absl::UnavailableError(StrCat("syncing the log failed: ", std::strerror(errno)));
  synced_ = target;
  return absl::OkStatus();
}

absl::Status WalWriter::Truncate() {
  absl::MutexLock lock(&append_mu_);
  absl::MutexLock sync_lock(&sync_mu_);
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) < 0 || ::fdatasync(fd_) != 0) {
    return absl::InternalError(StrCat("emptying the log failed: ", std::strerror(errno)));
  }
  written_.store(0, std::memory_order_release);
  synced_ = 0;
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("syncing", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& dir, const std::string& name, std::string_view contents) {
  const std::string temp = StrCat(dir, "/.", name, ".tmp");
  const std::string path = StrCat(dir, "/", name);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("creating", temp);
  const bool ok = WriteAll(fd, contents) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Errno("writing", temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) return Errno("renaming", temp);
  return SyncDirectory(dir);
}

}  // namespace ortserve::retrieval
