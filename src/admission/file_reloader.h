// SPDX-License-Identifier: Apache-2.0
// Files that are re-read when they change, without a restart: the API key
// file, the JWT key set, TLS certificates and keys. A change is noticed by
// polling stat(2) at an interval read from an injected Clock, and confirmed by
// content (a rewrite with identical bytes is no change); a bad new version is
// reported and the last good value stays in service.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "admission/crypto.h"
#include "core/clock.h"

namespace ortserve::admission {

// Reads a fixed list of files and says whether their content changed since
// the last read that returned it.
//
// A file is read again when its stat identity (device, inode, size, mtime,
// ctime) changed, or when its ctime was within `racy_window` of the moment it
// was last read: timestamps advance in coarse ticks, so a rewrite within the
// same tick keeps the identity (git's "racily clean" rule). stat(2) follows
// symbolic links, so a Kubernetes Secret volume's `..data` swap is seen.
//
// Not thread-safe: one caller at a time (ReloadingFiles serialises).
class FileSetReader {
 public:
  struct Options {
    std::vector<std::string> paths{};
    // A file larger than this is refused (these are small text files; the
    // bound keeps a mistaken path from reading a disk image into memory).
    size_t max_file_bytes = size_t{1} << 20;
    // Compared with file ctimes, so it must follow the real clock. Not owned.
    const Clock* clock = nullptr;
    absl::Duration racy_window = absl::Seconds(2);
  };
  explicit FileSetReader(Options options);

  // The contents of every file (in `paths` order) when any changed since the
  // last call that returned contents; nullopt when none did. The first call
  // always returns contents. Errors: NotFound / PermissionDenied / Internal
  // naming the file that cannot be read, FailedPrecondition for one over
  // `max_file_bytes` or not a regular file.
  absl::StatusOr<std::optional<std::vector<std::string>>> ReadIfChanged();

 private:
  struct Stamp {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  absl::StatusOr<Stamp> StatPath(const std::string& path) const;

  Options options_;
  bool have_read_ = false;
  std::vector<Stamp> stamps_;    // Of the last read.
  absl::Time last_read_time_;    // From options_.clock.
  Digest256 content_digest_{};   // Of every file's bytes, length-prefixed.
};

// A value parsed from a set of files, kept current: Current() re-checks the
// files when `check_interval` has passed since the last check (one caller
// does the check while the others keep using the current value) and swaps in
// the new value when the files changed and parse again. CheckNow() checks at
// once (for SIGHUP or an admin endpoint).
//
// Errors at Create are returned (a server must not start without its keys or
// certificates). Errors at a later check keep the last good value; they are
// passed to `on_reload` once per distinct error and are available from
// last_status() until a check succeeds.
//
// Thread-safe. Current() takes a reader lock to copy a shared_ptr; the check
// itself (a stat per file, a read and a parse when they changed) runs on the
// calling thread without blocking the others.
template <typename T>
class ReloadingFiles {
 public:
  using Parser = std::function<absl::StatusOr<std::shared_ptr<const T>>(const std::vector<std::string>& contents)>;
  struct Options {
    std::vector<std::string> paths{};
    Parser parse{};
    absl::Duration check_interval = absl::Seconds(2);
    size_t max_file_bytes = size_t{1} << 20;
    // Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
    // Told the outcome of each check that found changed files (OK: the new
    // value is in service), of a failing check whose error differs from the
    // previous one, and of the first good check after a failing one. Runs on the checking thread, with no lock held.
    std::function<void(const absl::Status&)> on_reload{};
  };

  static absl::StatusOr<std::unique_ptr<ReloadingFiles>> Create(Options options) {
    if (!options.parse) return absl::InvalidArgumentError("ReloadingFiles needs a parser");
    if (options.clock == nullptr) options.clock = Clock::Real();
    std::unique_ptr<ReloadingFiles> files(new ReloadingFiles(std::move(options)));
    absl::MutexLock check_lock(&files->check_mu_);
    auto contents = files->reader_.ReadIfChanged();
    if (!contents.ok()) return contents.status();
    auto value = files->options_.parse(**contents);
    if (!value.ok()) return value.status();
    absl::MutexLock value_lock(&files->value_mu_);
    files->value_ = *std::move(value);
    files->next_check_ns_.store(absl::ToUnixNanos(files->options_.clock->Now() + files->options_.check_interval),
                                std::memory_order_relaxed);
    return files;
  }

  // The current value; checks the files first when a check is due.
  std::shared_ptr<const T> Current() {
    const int64_t now_ns = absl::ToUnixNanos(options_.clock->Now());
    if (now_ns >= next_check_ns_.load(std::memory_order_relaxed) && check_mu_.TryLock()) {
      // Another thread may have checked between the load and the lock.
      if (now_ns >= next_check_ns_.load(std::memory_order_relaxed)) {
        next_check_ns_.store(now_ns + absl::ToInt64Nanoseconds(options_.check_interval), std::memory_order_relaxed);
        Report(CheckLocked());
      }
      check_mu_.Unlock();
    }
    absl::ReaderMutexLock lock(&value_mu_);
    return value_;
  }

  // Checks the files now. OK when they are unchanged or the new value is in
  // service; otherwise the error, with the last good value kept.
  absl::Status CheckNow() {
    std::optional<absl::Status> report;
    absl::Status status;
    {
      absl::MutexLock lock(&check_mu_);
      report = CheckLocked();
      absl::MutexLock value_lock(&value_mu_);
      status = last_status_;
    }
    Report(std::move(report));
    return status;
  }

  // OK, or the error of the last check while it is still the latest outcome.
  absl::Status last_status() const {
    absl::ReaderMutexLock lock(&value_mu_);
    return last_status_;
  }

 private:
  explicit ReloadingFiles(Options options)
      : options_(std::move(options)),
        reader_(FileSetReader::Options{.paths = options_.paths,
                                       .max_file_bytes = options_.max_file_bytes,
                                       .clock = options_.clock}) {}

  // Returns what to report (nullopt: nothing new).
  std::optional<absl::Status> CheckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(check_mu_) {
    absl::Status outcome;
    bool changed = false;
    auto contents = reader_.ReadIfChanged();
    if (!contents.ok()) {
      outcome = contents.status();
    } else if (contents->has_value()) {
      changed = true;
      auto value = options_.parse(**contents);
      parse_status_ = value.status();
      outcome = parse_status_;
      if (value.ok()) {
        absl::MutexLock lock(&value_mu_);
        value_ = *std::move(value);
      }
    } else {
      // Unchanged bytes keep the verdict of their last parse.
      outcome = parse_status_;
    }
    absl::MutexLock lock(&value_mu_);
    // Report a new value, a recovery, and each distinct error once.
    const bool report = outcome.ok() ? (changed || !last_status_.ok()) : outcome != last_status_;
    last_status_ = outcome;
    if (report) return outcome;
    return std::nullopt;
  }

  void Report(std::optional<absl::Status> status) {
    if (status.has_value() && options_.on_reload) options_.on_reload(*status);
  }

  const Options options_;
  absl::Mutex check_mu_;
  FileSetReader reader_ ABSL_GUARDED_BY(check_mu_);
  // Of the last parse (of the bytes the reader last returned).
  absl::Status parse_status_ ABSL_GUARDED_BY(check_mu_);
  std::atomic<int64_t> next_check_ns_{0};
  mutable absl::Mutex value_mu_ ABSL_ACQUIRED_AFTER(check_mu_);
  std::shared_ptr<const T> value_ ABSL_GUARDED_BY(value_mu_);
  absl::Status last_status_ ABSL_GUARDED_BY(value_mu_);
};

}  // namespace ortserve::admission
