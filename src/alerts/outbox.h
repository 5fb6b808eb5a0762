// SPDX-License-Identifier: Apache-2.0
// Outbox: the durable queue of alerts waiting for delivery, one SQLite
// database on local disk (WAL journal, synchronous=FULL). Once Enqueue
// returns OK the alert is on disk: a crash or `kill -9` of the process loses
// nothing, and the next Open finds it pending.
//
// One row per (receiver, alert id). The alert id is the verdict's request id
// and is the idempotency key: enqueueing the same id again for a receiver is
// a no-op, and the dispatcher sends it as the `Idempotency-Key` header.
//
// Ordering: per (receiver, patient key) the rows form a queue in enqueue
// order (`seq`); DueHeads returns only the oldest pending row of each group,
// so a patient's later alert is never offered before an earlier pending one.
//
// Bounds (docs/alerts.md, "Retention and bounds"):
//  - at most `max_undelivered` rows pending or failed: Enqueue refuses the
//    whole alert (ResourceExhausted) beyond that; a pending alert is never
//    evicted to make room;
//  - delivered rows are kept for `retention` (they answer repeated enqueues of
//    the same id and show what was sent) and at most `max_delivered_rows`;
//    Purge (called by the dispatcher) deletes the older ones first;
//  - failed rows stay until ReplayFailed or their retention ends.
//
// One process owns an outbox at a time: Open takes an exclusive lock on
// "<path>.lock" (flock, released by the kernel when the process dies) and
// answers FailedPrecondition when another process holds it.
//
// Thread-safe: one connection behind a mutex; each call is one short
// transaction. Never call it on an event-loop thread: Enqueue waits for
// fsync (milliseconds, more on a slow disk).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ortserve::alerts {

enum class AlertState {
  // Waiting for its next attempt (or for an earlier alert of its patient).
  kPending = 0,
  // The receiver answered 2xx.
  kDelivered = 1,
  // Given up (attempts or age exhausted); waits for ReplayFailed.
  kFailed = 2,
};
std::string_view AlertStateName(AlertState state);  // "pending", "delivered", "failed"

// An alert to enqueue.
struct NewAlert {
  std::string alert_id;     // The idempotency key: the verdict's request id.
  std::string patient_key;  // PatientKeyHasher::Hash of the patient id; never the raw id.
  absl::Time created;       // The verdict's time (the delivery-delay metric starts here).
  std::string payload;      // The JSON body every receiver gets.
};

// One row of the outbox.
struct OutboxEntry {
  int64_t seq = 0;  // Enqueue order, over the whole outbox.
  std::string receiver;
  std::string alert_id;
  std::string patient_key;
  absl::Time created;
  std::string payload;
  AlertState state = AlertState::kPending;
  int attempts = 0;            // Failed and successful attempts so far.
  absl::Time next_attempt;     // When a pending row may be tried next.
  std::string last_error;      // The last failed attempt's error ("" if none).
  absl::Time delivered_at = absl::InfinitePast();  // When the receiver accepted it.
};

// Exponential backoff with "equal jitter": after the n-th failed attempt the
// next one waits d = min(initial * multiplier^(n-1), max), then a uniformly
// random part of it is taken off: the wait is in [d * (1 - jitter), d].
struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(500);
  double multiplier = 2.0;
  absl::Duration max = absl::Seconds(30);
  double jitter = 0.5;  // In [0, 1].
  // `failed_attempts` >= 1; `u` uniform in [0, 1).
  absl::Duration Delay(int failed_attempts, double u) const;
};

struct OutboxOptions {
  std::string path;  // The SQLite file; its folder must exist.
  size_t max_undelivered = 10000;
  absl::Duration retention = absl::Hours(24 * 7);
  size_t max_delivered_rows = 100000;
  BackoffPolicy backoff;
  // An alert goes to kFailed after this many failed attempts (0: no limit)...
  int max_attempts = 0;
  // ... or once it has been pending this long since enqueue (or replay).
  absl::Duration give_up_after = absl::Hours(24);
  Clock* clock = Clock::Real();
  // Uniform in [0, 1) for the jitter; null: a generator seeded at Open.
  std::function<double()> random;
};

struct EnqueueResult {
  int inserted = 0;    // Rows added (one per receiver that did not have the id).
  int duplicates = 0;  // Receivers that already had the id (any state).
};

struct SnapshotQuery {
  std::optional<AlertState> state;  // None: every state.
  std::string receiver;             // Empty: every receiver.
  size_t limit = 100;               // At most 10000.

  static SnapshotQuery Of(AlertState state, size_t limit = 100) {
    SnapshotQuery q;
    q.state = state;
    q.limit = limit;
    return q;
  }
};

class Outbox {
 public:
  // Opens or creates the database and its schema. Errors: FailedPrecondition
  // when another process holds the outbox, Internal for SQLite errors,
  // InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(OutboxOptions options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Adds `alert` for each receiver, in one transaction, durable on return.
  // Idempotent per (receiver, alert id). Errors: ResourceExhausted when the
  // new rows would pass max_undelivered (nothing is added), InvalidArgument
  // for an empty id or receiver list, Internal for SQLite errors.
  absl::StatusOr<EnqueueResult> Enqueue(const NewAlert& alert, const std::vector<std::string>& receivers);

  // The oldest pending row of each (receiver, patient key) group whose next
  // attempt is due at the clock's now, earliest due first, at most `limit`.
  absl::StatusOr<std::vector<OutboxEntry>> DueHeads(size_t limit);
  // The earliest next attempt after the clock's now of a group's oldest
  // pending row; nullopt when none. (Due heads are DueHeads' business.)
  absl::StatusOr<std::optional<absl::Time>> NextAttemptTime();

  // The attempt on row `seq` succeeded.
  absl::Status MarkDelivered(int64_t seq);
  // The attempt on row `seq` failed with `error`: the row is rescheduled by
  // the backoff policy, or becomes kFailed when max_attempts or
  // give_up_after is reached. Returns the row's new state.
  absl::StatusOr<AlertState> MarkAttemptFailed(int64_t seq, std::string_view error);

  // Operations: rows by state and receiver, newest first (payload included).
  absl::StatusOr<std::vector<OutboxEntry>> Snapshot(const SnapshotQuery& query);
  // Operations: failed rows (of `receiver`, or all when empty; of one
  // `alert_id` when not empty) become pending, due now, with a fresh
  // give_up_after. Returns how many.
  absl::StatusOr<int> ReplayFailed(std::string_view receiver = {}, std::string_view alert_id = {});
  // Pending rows of `receiver` (the metrics' gauge).
  absl::StatusOr<int64_t> PendingCount(std::string_view receiver);
  // Rows per state for one receiver ("": all).
  absl::StatusOr<std::map<AlertState, int64_t>> Counts(std::string_view receiver = {});
  // Deletes delivered rows past retention or over max_delivered_rows (oldest
  // first) and failed rows past retention. Returns how many.
  absl::StatusOr<int> Purge();

  const OutboxOptions& options() const { return options_; }

 private:
  explicit Outbox(OutboxOptions options);
  absl::Status Init();
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Prepare(const char* sql, sqlite3_stmt** stmt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SqlError(std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double Random() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  OutboxOptions options_;
  int lock_fd_ = -1;
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t undelivered_ ABSL_GUARDED_BY(mu_) = 0;  // Pending + failed rows.
  uint64_t rng_state_ ABSL_GUARDED_BY(mu_) = 0;
  sqlite3_stmt* insert_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* due_heads_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* next_time_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* pending_count_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* delivered_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* get_row_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* reschedule_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace ortserve::alerts
