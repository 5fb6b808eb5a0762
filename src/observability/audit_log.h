// SPDX-License-Identifier: Apache-2.0
// The audit log: an append-only file of JSON lines, apart from the access
// log, recording who did what to the server: model control, admin actions,
// refused credentials and requests (and, from the SAE pipeline, verdicts).
//
// One event is one line:
//   {"seq":17,"time":"2025-03-01T10:00:00.123456Z","type":"model_control",
//    "client":{"id":"ci-runner","kind":"api_key","tenant":"acme"},
//    "address":"10.0.0.7:51512","action":"model.load","model":"iris","version":"2",
//    "outcome":"success","message":"...","extra":{"k":"v"}}
// `seq` counts lines from 1 in the order they are in the file, per process
// start: a gap means a line that could not be written. Empty fields are left
// out. Strings are valid UTF-8 always (invalid bytes become U+FFFD); each
// string is cut at 8 KiB with "…" appended.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"

namespace ortserve::observability {

// One thing worth recording. The views must stay valid for the Record call.
struct AuditEvent {
  enum class Type {
    // Model load or unload, through REST or gRPC.
    kModelControl,
    // Log settings, profiles, trace settings, the console.
    kAdmin,
    // A request whose credential was missing, malformed or did not verify.
    kCredentialRefused,
    // A request whose credential lacked the scope or the model.
    kAccessDenied,
    // An SAE verdict (alerts/verdict_recorder.h): one line per answered report.
    kVerdict,
  };
  enum class Outcome {
    // The action was done.
    kSuccess,
    // The action was allowed but failed (e.g. a model that does not load).
    kFailure,
    // The request was refused (401 / 403).
    kRefused,
  };

  // When it happened; InfinitePast: now, from the log's clock.
  absl::Time time = absl::InfinitePast();
  Type type = Type::kAdmin;
  // Identity::id and the name of Identity::kind ("anonymous" when none).
  std::string_view client_id{};
  std::string_view client_kind{};
  std::string_view tenant{};
  // The peer "ip:port".
  std::string_view address{};
  // What was asked, e.g. "model.load", "logging.update", "http POST /v2/logging".
  std::string_view action{};
  std::string_view model{};
  std::string_view version{};
  Outcome outcome = Outcome::kSuccess;
  // The status message or other detail; never a secret.
  std::string_view message{};
  // More fields, under "extra" (e.g. a verdict's score).
  absl::Span<const std::pair<std::string_view, std::string_view>> extra{};
};

std::string_view AuditEventTypeName(AuditEvent::Type type);
std::string_view AuditOutcomeName(AuditEvent::Outcome outcome);

// Appends audit events to a file.
//
// Writing: the line is built outside the lock; under the lock it is written
// with one writev(2) on an O_APPEND descriptor (a short write is continued;
// when the disk is full, the fragment is ended with a newline, now or before
// the next line, so every later line stays whole). No user-space buffer: once Record returns OK, the line is in
// the kernel and survives a crash of the process.
//
// Durability (SyncPolicy): kEveryLine calls fdatasync before Record returns,
// so the line also survives a power loss; kInterval does so when the last
// sync is older than sync_interval (a later Record or Sync() covers a quiet
// period); kNone leaves it to the kernel. The sync runs outside the lock, so
// writers wait on the lock only for each other's writev.
//
// Rotation, without losing a line:
// - by an outside tool (logrotate's default "create" mode, not
//   "copytruncate"): it renames the file and signals the server, which calls
//   Reopen(); lines written in between land in the renamed file.
// - by size: with max_bytes set, a line that would take the file past it
//   first renames the file to "<path>.<UTC time>-<last seq>" and opens a new
//   one. Rotated files are never deleted here; retention is the operator's.
// Every line goes to exactly one file: rotation swaps the descriptor under
// the same lock as the writes. When a new file cannot be opened, lines keep
// going to the old one and the error is returned by Reopen / counted.
//
// Thread-safe. A Record call blocks for its writev (and, with kEveryLine,
// its fdatasync); it never waits for another thread's sync.
class AuditLog {
 public:
  enum class SyncPolicy {
    // fdatasync before Record returns.
    kEveryLine,
    // fdatasync when the last one is older than sync_interval.
    kInterval,
    // Never (the kernel writes back on its own schedule).
    kNone,
  };
  struct Options {
    std::string path{};
    SyncPolicy sync = SyncPolicy::kEveryLine;
    absl::Duration sync_interval = absl::Seconds(1);
    // Size rotation threshold in bytes; 0: off.
    uint64_t max_bytes = 0;
    // Event times and sync intervals. Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
  };
  struct Stats {
    uint64_t lines = 0;         // Lines written whole.
    uint64_t write_errors = 0;  // Records that failed.
    uint64_t rotations = 0;     // Size rotations and reopens done.
    uint64_t rotation_errors = 0;
  };

  // Opens (creating, mode 0600) `path` for appending. Errors: InvalidArgument
  // for an empty path; the open(2) error otherwise.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Create(Options options);
  // Syncs (per the policy) and closes.
  ~AuditLog();

  // Appends one line. Internal / ResourceExhausted when it could not be
  // written whole; the caller decides whether the action may go on.
  absl::Status Record(const AuditEvent& event);

  // Opens `path` again and sends later lines there (after an outside
  // rotation renamed the file; SIGHUP). On error the current file stays.
  absl::Status Reopen();

  // fdatasync now (for a periodic timer with SyncPolicy::kInterval).
  absl::Status Sync();

  Stats stats() const;
  const std::string& path() const { return options_.path; }

 private:
  struct OpenFile;
  explicit AuditLog(Options options) : options_(std::move(options)) {}
  // Renames the full file and opens a new one; returns the old file, for the
  // caller to release outside the lock.
  std::shared_ptr<OpenFile> RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<OpenFile> file_ ABSL_GUARDED_BY(mu_);
  uint64_t size_ ABSL_GUARDED_BY(mu_) = 0;  // Bytes in file_.
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  // The last write left a fragment without its newline.
  bool torn_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_sync_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::observability
