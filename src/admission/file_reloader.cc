// SPDX-License-Identifier: Apache-2.0
#include "admission/file_reloader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace ortserve::admission {
namespace {

int64_t Nanos(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

absl::Status ErrnoStatus(int err, std::string_view what, const std::string& path) {
  std::string message = StrCat("cannot ", what, " '", path, "': ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

// Reads a whole regular file of at most `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  std::string out;
  absl::Status status;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, "read", path);
      break;
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      status = absl::FailedPreconditionError(StrCat("'", path, "' is larger than ", max_bytes, " bytes"));
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!status.ok()) return status;
  return out;
}

}  // namespace

FileSetReader::FileSetReader(Options options) : options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = Clock::Real();
}

absl::StatusOr<FileSetReader::Stamp> FileSetReader::StatPath(const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(StrCat("'", path, "' is not a regular file"));
  if (static_cast<uint64_t>(st.st_size) > options_.max_file_bytes) {
    return absl::FailedPreconditionError(
        StrCat("'", path, "' is larger than ", options_.max_file_bytes, " bytes (", st.st_size, ")"));
  }
  Stamp stamp;
  stamp.device = static_cast<uint64_t>(st.st_dev);
  stamp.inode = static_cast<uint64_t>(st.st_ino);
  stamp.size = static_cast<uint64_t>(st.st_size);
  stamp.mtime_ns = Nanos(st.st_mtim);
  stamp.ctime_ns = Nanos(st.st_ctim);
  return stamp;
}

absl::StatusOr<std::optional<std::vector<std::string>>> FileSetReader::ReadIfChanged() {
  std::vector<Stamp> stamps;
  stamps.reserve(options_.paths.size());
  for (const std::string& path : options_.paths) {
    auto stamp = StatPath(path);
    if (!stamp.ok()) return stamp.status();
    stamps.push_back(*stamp);
  }
  if (have_read_ && stamps == stamps_) {
    bool racy = false;
    const int64_t read_ns = absl::ToUnixNanos(last_read_time_);
    for (const Stamp& s : stamps) {
      if (read_ns - s.ctime_ns < absl::ToInt64Nanoseconds(options_.racy_window)) racy = true;
    }
    if (!racy) return std::nullopt;
  }

  const absl::Time read_time = options_.clock->Now();
  std::vector<std::string> contents;
  contents.reserve(options_.paths.size());
  std::string digest_input;
  for (const std::string& path : options_.paths) {
    auto text = ReadSmallFile(path, options_.max_file_bytes);
    if (!text.ok()) return text.status();
    // Length-prefixed, so that moving bytes between files is a change.
    digest_input.append(StrCat(text->size(), ":"));
    digest_input.append(*text);
    contents.push_back(*std::move(text));
  }
  const Digest256 digest = Sha256(digest_input);
  // The stamps were taken before the read: a write during the read changes
  // them again, and the next check reads once more.
  stamps_ = std::move(stamps);
  last_read_time_ = read_time;
  if (have_read_ && digest == content_digest_) return std::nullopt;
  have_read_ = true;
  content_digest_ = digest;
  return contents;
}

}  // namespace ortserve::admission
