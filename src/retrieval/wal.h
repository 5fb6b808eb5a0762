// SPDX-License-Identifier: Apache-2.0
// The write-ahead log of a collection and the record codec it shares with
// snapshots.
//
// On disk a log is a sequence of frames:
//   u32 length | u32 crc32(length bytes, payload) | payload (length bytes)
// little-endian, length at most kMaxRecordBytes. A payload is one batch:
//   u8 kind=1 | u64 sequence | u32 count | count changes
// and a change is
//   u8 op (1 upsert, 2 delete) | u16 id length | id
//   [upsert: u32 dimension | dimension f32 | u32 metadata length | metadata]
// One batch is one frame, so a batch is recovered whole or not at all.
// Reading stops at the first frame that is short, over-long or fails its
// CRC (a write torn by a crash, or damage): what follows is dropped.
//
// WalWriter: thread-safe (Append is serialized; Sync may run beside it).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "retrieval/collection.h"

namespace ortserve::retrieval {

// The largest frame payload accepted, written or read.
inline constexpr uint32_t kMaxRecordBytes = 32 << 20;
// The most changes in one batch.
inline constexpr uint32_t kMaxBatchChanges = 4096;

// When the log is flushed to stable storage (fdatasync).
enum class FsyncPolicy : uint8_t {
  // Before a write is acknowledged (concurrent writers share one fdatasync).
  // Acknowledged writes survive a process kill and a power loss.
  kAlways,
  // Never by the server: acknowledged writes survive a process kill (they
  // are in the kernel's page cache) but may be lost on a power loss.
  kNever,
};
// "always" / "never".
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(std::string_view name);

struct Batch {
  uint64_t sequence = 0;
  std::vector<Change> changes;
};

// A batch as a frame payload. InvalidArgument when it would exceed
// kMaxRecordBytes or kMaxBatchChanges.
absl::StatusOr<std::string> EncodeBatch(const Batch& batch);
// The batch in `payload`; DataLoss naming what is wrong for anything that
// is not one well-formed batch (every length checked against what is left
// and against the collection's bounds).
absl::StatusOr<Batch> DecodeBatch(std::string_view payload);

// One document as a frame payload (snapshots), and back.
std::string EncodeDocument(std::string_view id, const float* vector, uint32_t dimension, std::string_view metadata);
absl::StatusOr<Document> DecodeDocument(std::string_view payload);

// Appends the frame of `payload` to `out`.
void AppendFrame(std::string_view payload, std::string& out);

// Reads frames from `fd` starting at its current offset; calls `visit` with
// each payload. Returns the bytes of whole, valid frames read; stops at a
// torn or corrupt frame (`*stopped` says why; empty when the end was clean).
// A Status from `visit` ends the read and is returned.
absl::StatusOr<uint64_t> ReadFrames(int fd, const std::function<absl::Status(std::string_view)>& visit,
                                    std::string* stopped);

class WalWriter {
 public:
  // Opens (creating) the log at `path` and cuts it to `valid_length` bytes
  // (dropping a torn tail that recovery found), then syncs it.
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(const std::string& path, uint64_t valid_length,
                                                         FsyncPolicy policy);
  ~WalWriter();

  // Appends one frame; returns the log's length after it. On a failed or
  // short write the log is cut back to where it was (the write is refused).
  absl::StatusOr<uint64_t> Append(std::string_view payload) ABSL_LOCKS_EXCLUDED(append_mu_);
  // Makes the log durable up to `length` under kAlways (one fdatasync
  // covers every writer waiting); no-op under kNever.
  absl::Status Sync(uint64_t length) ABSL_LOCKS_EXCLUDED(sync_mu_);
  // Empties the log (after a snapshot holds everything in it), synced.
  absl::Status Truncate() ABSL_LOCKS_EXCLUDED(append_mu_, sync_mu_);
  uint64_t size() const { return written_.load(std::memory_order_acquire); }

 private:
  WalWriter(int fd, uint64_t length, FsyncPolicy policy);
  const int fd_;
  const FsyncPolicy policy_;
  absl::Mutex append_mu_;
  absl::Mutex sync_mu_ ABSL_ACQUIRED_AFTER(append_mu_);
  std::atomic<uint64_t> written_;
  uint64_t synced_ ABSL_GUARDED_BY(sync_mu_);
};

// Durable file helpers (POSIX): write `contents` to `dir`/`name` through a
// temporary file, fsync, rename, fsync `dir`.
absl::Status WriteFileAtomically(const std::string& dir, const std::string& name, std::string_view contents);
// write() all of `data` to `fd`, retrying on EINTR and short writes.
bool WriteAll(int fd, std::string_view data);

// fsync a directory (after a create, rename or remove in it).
absl::Status SyncDirectory(const std::string& dir);

}  // namespace ortserve::retrieval
