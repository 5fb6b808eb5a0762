// SPDX-License-Identifier: Apache-2.0
#include "observability/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace ortserve::observability {
namespace {

constexpr size_t kMaxFieldBytes = 8192;

absl::Status ErrnoError(int err, std::string_view what, std::string_view path) {
  std::string message = StrCat("audit log: cannot ", what, " '", path, "': ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// TODO(#15): use core's JSON string escaper once it lands.
// Appends `s` as a JSON string literal. Always valid UTF-8 out: well-formed
// sequences are copied, every byte of an ill-formed one becomes U+FFFD;
// control characters, U+2028 and U+2029 are escaped. Input past
// kMaxFieldBytes is dropped and "…" marks the cut.
void AppendAuditJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool cut = false;
  if (s.size() > kMaxFieldBytes) {
    s = s.substr(0, kMaxFieldBytes);
    cut = true;
  }
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\f':
          out->append("\\f");
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out->append("\\u00");
            out->push_back(kHex[c >> 4]);
            out->push_back(kHex[c & 15]);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(p + i, s.size() - i);
    if (length == 0) {
      out->append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
      continue;
    }
    // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR end lines for some
    // readers of JSON lines; escape them.
    if (length == 3 && p[i] == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
      out->append(p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
    } else {
      out->append(reinterpret_cast<const char*>(p + i), length);
    }
    i += length;
  }
  if (cut) out->append("\xE2\x80\xA6");  // …
  out->push_back('"');
}

void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->push_back(',');
  AppendAuditJsonString(out, name);
  out->push_back(':');
  AppendAuditJsonString(out, value);
}

void AppendOptionalField(std::string* out, std::string_view name, std::string_view value) {
  if (!value.empty()) AppendField(out, name, value);
}

// Everything after `{"seq":N` up to and including the newline.
void AppendBody(const AuditEvent& event, absl::Time time, std::string* out) {
  AppendField(out, "time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()));
  AppendField(out, "type", AuditEventTypeName(event.type));
  out->append(",\"client\":{\"id\":");
  AppendAuditJsonString(out, event.client_id.empty() ? std::string_view("anonymous") : event.client_id);
  AppendField(out, "kind", event.client_kind.empty() ? std::string_view("anonymous") : event.client_kind);
  AppendOptionalField(out, "tenant", event.tenant);
  out->push_back('}');
  AppendOptionalField(out, "address", event.address);
  AppendField(out, "action", event.action);
  AppendOptionalField(out, "model", event.model);
  AppendOptionalField(out, "version", event.version);
  AppendField(out, "outcome", AuditOutcomeName(event.outcome));
  AppendOptionalField(out, "message", event.message);
  if (!event.extra.empty()) {
    out->append(",\"extra\":{");
    bool first = true;
    for (const auto& [key, value] : event.extra) {
      if (!first) out->push_back(',');
      first = false;
      AppendAuditJsonString(out, key);
      out->push_back(':');
      AppendAuditJsonString(out, value);
    }
    out->push_back('}');
  }
  out->append("}\n");
}

absl::StatusOr<int> OpenForAppend(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "open", path);
  return fd;
}

// Makes a created or renamed directory entry durable.
void SyncDirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Writes all of `iov` (the caller holds the lock, so no other line of this
// process can land in between). Returns the bytes written and the errno of a
// failure (0 when complete).
std::pair<size_t, int> WriteAll(int fd, struct iovec* iov, int count) {
  size_t written = 0;
  while (count > 0) {
    const ssize_t n = ::writev(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return {written, errno};
    }
    if (n == 0) return {written, EIO};
    written += static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return {written, 0};
}

}  // namespace

// An open descriptor, closed when the last writer (or the log) lets go of it,
// so that a sync outside the lock never races a rotation's close.
struct AuditLog::OpenFile {
  explicit OpenFile(int fd) : fd(fd) {}
  ~OpenFile() { ::close(fd); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  const int fd;
};

std::string_view AuditEventTypeName(AuditEvent::Type type) {
  switch (type) {
    case AuditEvent::Type::kModelControl:
      return "model_control";
    case AuditEvent::Type::kAdmin:
      return "admin";
    case AuditEvent::Type::kCredentialRefused:
      return "credential_refused";
    case AuditEvent::Type::kAccessDenied:
      return "access_denied";
    case AuditEvent::Type::kVerdict:
      return "sae_verdict";
  }
  return "unknown";
}

std::string_view AuditOutcomeName(AuditEvent::Outcome outcome) {
  switch (outcome) {
    case AuditEvent::Outcome::kSuccess:
      return "success";
    case AuditEvent::Outcome::kFailure:
      return "failure";
    case AuditEvent::Outcome::kRefused:
      return "refused";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Create(Options options) {
  if (options.path.empty()) return absl::InvalidArgumentError("audit log: the path is empty");
  if (options.clock == nullptr) options.clock = Clock::Real();
  ASSIGN_OR_RETURN(const int fd, OpenForAppend(options.path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(err, "stat", options.path);
  }
  SyncDirectoryOf(options.path);
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  absl::MutexLock lock(&log->mu_);
  log->file_ = std::make_shared<OpenFile>(fd);
  log->size_ = static_cast<uint64_t>(st.st_size);
  log->last_sync_ = log->options_.clock->Now();
  return log;
}

AuditLog::~AuditLog() {
  if (options_.sync != SyncPolicy::kNone) Sync().IgnoreError();
}

absl::Status AuditLog::Record(const AuditEvent& event) {
  const absl::Time now = options_.clock->Now();
  thread_local std::string body;
  body.clear();
  AppendBody(event, event.time == absl::InfinitePast() ? now : event.time, &body);

  std::shared_ptr<OpenFile> file;
  std::shared_ptr<OpenFile> rotated_out;  // Released after the lock.
  bool sync = false;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (options_.max_bytes > 0 && size_ > 0 && size_ + body.size() + 24 > options_.max_bytes) {
      rotated_out = RotateLocked();
    }
    const uint64_t seq = seq_ + 1;
    // A line cut short earlier (full disk) is ended first, so this one
    // starts on a line of its own.
    char prefix[40];
    const int prefix_len = std::snprintf(prefix, sizeof(prefix), "%s{\"seq\":%llu", torn_ ? "\n" : "",
                                         static_cast<unsigned long long>(seq));
    struct iovec iov[2] = {{prefix, static_cast<size_t>(prefix_len)}, {body.data(), body.size()}};
    const auto [written, err] = WriteAll(file_->fd, iov, 2);
    size_ += written;
    if (written > 0) torn_ = false;
    if (err != 0) {
      ++stats_.write_errors;
      if (written > 0) {
        // The seq is spent (its fragment is in the file), which marks the gap.
        seq_ = seq;
        torn_ = ::write(file_->fd, "\n", 1) != 1;
        if (!torn_) ++size_;
      }
      status = ErrnoError(err, "append to", options_.path);
    } else {
      seq_ = seq;
      ++stats_.lines;
      file = file_;
      sync = options_.sync == SyncPolicy::kEveryLine ||
             (options_.sync == SyncPolicy::kInterval && now - last_sync_ >= options_.sync_interval);
      if (sync) last_sync_ = now;
    }
  }
  // The renamed file's last lines become durable before it is let go.
  if (rotated_out != nullptr && options_.sync != SyncPolicy::kNone) ::fdatasync(rotated_out->fd);
  if (sync && ::fdatasync(file->fd) != 0) {
    const int err = errno;
    absl::MutexLock lock(&mu_);
    ++stats_.write_errors;
    return ErrnoError(err, "sync", options_.path);
  }
  return status;
}

std::shared_ptr<AuditLog::OpenFile> AuditLog::RotateLocked() {
  // A name that sorts by time and never repeats within a process.
  const std::string target =
      StrCat(options_.path, ".", absl::FormatTime("%Y%m%dT%H%M%E6SZ", options_.clock->Now(), absl::UTCTimeZone()), "-",
             seq_);
  if (::renameat2(AT_FDCWD, options_.path.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    // The file keeps growing rather than losing a line.
    ++stats_.rotation_errors;
    return nullptr;
  }
  auto fd = OpenForAppend(options_.path);
  if (!fd.ok()) {
    // Lines go on into the renamed file.
    ++stats_.rotation_errors;
    return nullptr;
  }
  SyncDirectoryOf(options_.path);
  std::shared_ptr<OpenFile> old = std::move(file_);
  file_ = std::make_shared<OpenFile>(*fd);
  size_ = 0;
  torn_ = false;
  ++stats_.rotations;
  return old;
}

absl::Status AuditLog::Reopen() {
  ASSIGN_OR_RETURN(const int fd, OpenForAppend(options_.path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    absl::MutexLock lock(&mu_);
    ++stats_.rotation_errors;
    return ErrnoError(err, "stat", options_.path);
  }
  SyncDirectoryOf(options_.path);
  auto fresh = std::make_shared<OpenFile>(fd);
  std::shared_ptr<OpenFile> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::exchange(file_, std::move(fresh));
    size_ = static_cast<uint64_t>(st.st_size);
    torn_ = false;
    ++stats_.rotations;
  }
  if (options_.sync != SyncPolicy::kNone && ::fdatasync(old->fd) != 0) {
    return ErrnoError(errno, "sync", options_.path);
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Sync() {
  std::shared_ptr<OpenFile> file;
  {
    absl::MutexLock lock(&mu_);
    file = file_;
    last_sync_ = options_.clock->Now();
  }
  if (::fdatasync(file->fd) != 0) return ErrnoError(errno, "sync", options_.path);
  return absl::OkStatus();
}

AuditLog::Stats AuditLog::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace ortserve::observability
