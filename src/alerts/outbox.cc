// SPDX-License-Identifier: Apache-2.0
#include "alerts/outbox.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>

#include "core/strings.h"
#include "core/status.h"

namespace ortserve::alerts {
namespace {

// Version 1 of the schema (PRAGMA user_version). Times are Unix microseconds.
// queued_us is when the row was enqueued or last replayed: give_up_after
// counts from there.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS alerts (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  receiver        TEXT    NOT NULL,
  alert_id        TEXT    NOT NULL,
  patient_key     TEXT    NOT NULL,
  created_us      INTEGER NOT NULL,
  queued_us       INTEGER NOT NULL,
  payload         TEXT    NOT NULL,
  state           INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_us INTEGER NOT NULL,
  last_error      TEXT    NOT NULL DEFAULT '',
  delivered_us    INTEGER,
  UNIQUE (receiver, alert_id)
);
CREATE INDEX IF NOT EXISTS alerts_by_group ON alerts (receiver, patient_key, state, seq);
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state, next_attempt_us);
PRAGMA user_version = 1;
)sql";

constexpr const char* kColumns =
    "seq, receiver, alert_id, patient_key, created_us, payload, state, attempts, next_attempt_us, last_error, "
    "delivered_us";

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const unsigned char* text = sqlite3_column_text(stmt, col);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
}

OutboxEntry ReadEntry(sqlite3_stmt* stmt) {
  OutboxEntry e;
  e.seq = sqlite3_column_int64(stmt, 0);
  e.receiver = ColumnText(stmt, 1);
  e.alert_id = ColumnText(stmt, 2);
  e.patient_key = ColumnText(stmt, 3);
  e.created = FromMicros(sqlite3_column_int64(stmt, 4));
  e.payload = ColumnText(stmt, 5);
  e.state = static_cast<AlertState>(sqlite3_column_int(stmt, 6));
  e.attempts = sqlite3_column_int(stmt, 7);
  e.next_attempt = FromMicros(sqlite3_column_int64(stmt, 8));
  e.last_error = ColumnText(stmt, 9);
  if (sqlite3_column_type(stmt, 10) != SQLITE_NULL) e.delivered_at = FromMicros(sqlite3_column_int64(stmt, 10));
  return e;
}

void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

// Resets a cached statement however the caller leaves.
struct StmtReset {
  sqlite3_stmt* stmt;
  ~StmtReset() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

// A statement made for one call.
struct OwnedStmt {
  sqlite3_stmt* stmt = nullptr;
  ~OwnedStmt() { sqlite3_finalize(stmt); }
};

}  // namespace

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kDelivered:
      return "delivered";
    case AlertState::kFailed:
      return "failed";
  }
  return "unknown";
}

absl::Duration BackoffPolicy::Delay(int failed_attempts, double u) const {
  const double cap = absl::ToDoubleSeconds(max);
  double d = absl::ToDoubleSeconds(initial);
  for (int i = 1; i < failed_attempts && d < cap; ++i) d *= multiplier;
  d = std::min(d, cap);
  const double j = std::clamp(jitter, 0.0, 1.0);
  u = std::clamp(u, 0.0, 1.0);
  return absl::Seconds(d * (1.0 - j * u));
}

Outbox::Outbox(OutboxOptions options) : options_(std::move(options)) {}

Outbox::~Outbox() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* stmt : {insert_, due_heads_, next_time_, pending_count_, delivered_, get_row_, reschedule_}) {
    sqlite3_finalize(stmt);
  }
  if (db_ != nullptr) sqlite3_close(db_);
  if (lock_fd_ >= 0) close(lock_fd_);  // Releases the flock.
}

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("alert outbox: the path is empty");
  if (options.max_undelivered == 0) return absl::InvalidArgumentError("alert outbox: max_undelivered must be > 0");
  if (options.backoff.initial <= absl::ZeroDuration() || options.backoff.max < options.backoff.initial ||
      !(options.backoff.multiplier >= 1.0) || !std::isfinite(options.backoff.multiplier)) {
    return absl::InvalidArgumentError("alert outbox: backoff needs 0 < initial <= max and a multiplier >= 1");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  auto outbox = std::unique_ptr<Outbox>(new Outbox(std::move(options)));
  RETURN_IF_ERROR(outbox->Init());
  return outbox;
}

absl::Status Outbox::Init() {
  const std::string lock_path = options_.path + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    return absl::FailedPreconditionError(
        ortserve::StrCat("alert outbox: cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        ortserve::StrCat("alert outbox: ", options_.path, " is in use by another process (", lock_path, " is locked)"));
  }
  std::random_device seed;
  absl::MutexLock lock(&mu_);
  rng_state_ = (static_cast<uint64_t>(seed()) << 32) ^ seed();
  const int rc = sqlite3_open_v2(options_.path.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqlError(ortserve::StrCat("open ", options_.path));
  sqlite3_busy_timeout(db_, 5000);
  {
    // journal_mode answers the mode in force: anything but "wal" (a file
    // system without shared memory, say) is an error, not a silent downgrade.
    OwnedStmt wal;
    RETURN_IF_ERROR(Prepare("PRAGMA journal_mode=WAL", &wal.stmt));
    if (sqlite3_step(wal.stmt) != SQLITE_ROW) return SqlError("PRAGMA journal_mode");
    const std::string mode = ColumnText(wal.stmt, 0);
    if (mode != "wal") {
      return absl::FailedPreconditionError(
          ortserve::StrCat("alert outbox: ", options_.path, " cannot use the WAL journal (mode is ", mode, ")"));
    }
  }
  // FULL: a transaction is on disk (WAL fsynced) before COMMIT returns.
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=OFF"));
  RETURN_IF_ERROR(Exec(kSchema));
  RETURN_IF_ERROR(Prepare(
      "INSERT OR IGNORE INTO alerts (receiver, alert_id, patient_key, created_us, queued_us, payload, state, "
      "attempts, next_attempt_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?5)",
      &insert_));
  RETURN_IF_ERROR(Prepare(ortserve::StrCat("SELECT ", kColumns,
                                       " FROM alerts a WHERE a.state = 0 AND a.next_attempt_us <= ?1 AND a.seq = "
                                       "(SELECT MIN(b.seq) FROM alerts b WHERE b.receiver = a.receiver AND "
                                       "b.patient_key = a.patient_key AND b.state = 0) "
                                       "ORDER BY a.next_attempt_us, a.seq LIMIT ?2")
                              .c_str(),
                          &due_heads_));
  RETURN_IF_ERROR(Prepare(
      "SELECT MIN(a.next_attempt_us) FROM alerts a WHERE a.state = 0 AND a.next_attempt_us > ?1 AND a.seq = "
      "(SELECT MIN(b.seq) FROM alerts b WHERE b.receiver = a.receiver AND b.patient_key = a.patient_key AND "
      "b.state = 0)",
      &next_time_));
  RETURN_IF_ERROR(Prepare("SELECT COUNT(*) FROM alerts WHERE state = 0 AND receiver = ?1", &pending_count_));
  RETURN_IF_ERROR(Prepare(
      "UPDATE alerts SET state = 1, attempts = attempts + 1, delivered_us = ?2, last_error = '' "
      "WHERE seq = ?1 AND state = 0",
      &delivered_));
  RETURN_IF_ERROR(Prepare("SELECT state, attempts, queued_us FROM alerts WHERE seq = ?1", &get_row_));
  RETURN_IF_ERROR(Prepare(
      "UPDATE alerts SET state = ?2, attempts = ?3, next_attempt_us = ?4, last_error = ?5 WHERE seq = ?1",
      &reschedule_));
  OwnedStmt count;
  RETURN_IF_ERROR(Prepare("SELECT COUNT(*) FROM alerts WHERE state IN (0, 2)", &count.stmt));
  if (sqlite3_step(count.stmt) != SQLITE_ROW) return SqlError("count");
  undelivered_ = sqlite3_column_int64(count.stmt, 0);
  return absl::OkStatus();
}

absl::Status Outbox::SqlError(std::string_view what) {
  return absl::InternalError(ortserve::StrCat("alert outbox ", options_.path, ": ", what, ": ",
                                          db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory"));
}

absl::Status Outbox::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(ortserve::StrCat("alert outbox ", options_.path, ": ", message));
  }
  return absl::OkStatus();
}

absl::Status Outbox::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) != SQLITE_OK) return SqlError("prepare");
  return absl::OkStatus();
}

double Outbox::Random() {
  if (options_.random) return options_.random();
  // splitmix64: enough for jitter, and no lock beyond mu_.
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53);
}

absl::StatusOr<EnqueueResult> Outbox::Enqueue(const NewAlert& alert, const std::vector<std::string>& receivers) {
  if (alert.alert_id.empty()) return absl::InvalidArgumentError("alert outbox: the alert id is empty");
  if (receivers.empty()) return absl::InvalidArgumentError("alert outbox: no receiver for the alert");
  const int64_t now = ToMicros(options_.clock->Now());
  absl::MutexLock lock(&mu_);
  // IMMEDIATE: take the write lock now, so the inserts cannot meet a busy
  // database halfway.
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  EnqueueResult result;
  for (const std::string& receiver : receivers) {
    StmtReset reset{insert_};
    BindText(insert_, 1, receiver);
    BindText(insert_, 2, alert.alert_id);
    BindText(insert_, 3, alert.patient_key);
    sqlite3_bind_int64(insert_, 4, ToMicros(alert.created));
    sqlite3_bind_int64(insert_, 5, now);
    BindText(insert_, 6, alert.payload);
    if (sqlite3_step(insert_) != SQLITE_DONE) {
      absl::Status status = SqlError("insert");
      (void)Exec("ROLLBACK");
      return status;
    }
    if (sqlite3_changes(db_) == 1) {
      ++result.inserted;
    } else {
      ++result.duplicates;
    }
  }
  if (undelivered_ + result.inserted > static_cast<int64_t>(options_.max_undelivered)) {
    RETURN_IF_ERROR(Exec("ROLLBACK"));
    return absl::ResourceExhaustedError(ortserve::StrCat("alert outbox is full: ", undelivered_,
                                                     " alerts pending or failed (--alert-max-pending ",
                                                     options_.max_undelivered, ")"));
  }
  if (absl::Status status = Exec("COMMIT"); !status.ok()) {
    (void)Exec("ROLLBACK");
    return status;
  }
  undelivered_ += result.inserted;
  return result;
}

absl::StatusOr<std::vector<OutboxEntry>> Outbox::DueHeads(size_t limit) {
  const int64_t now = ToMicros(options_.clock->Now());
  absl::MutexLock lock(&mu_);
  StmtReset reset{due_heads_};
  sqlite3_bind_int64(due_heads_, 1, now);
  sqlite3_bind_int64(due_heads_, 2, static_cast<int64_t>(std::min<size_t>(limit, 100000)));
  std::vector<OutboxEntry> out;
  int rc;
  while ((rc = sqlite3_step(due_heads_)) == SQLITE_ROW) out.push_back(ReadEntry(due_heads_));
  if (rc != SQLITE_DONE) return SqlError("due heads");
  return out;
}

absl::StatusOr<std::optional<absl::Time>> Outbox::NextAttemptTime() {
  const int64_t now = ToMicros(options_.clock->Now());
  absl::MutexLock lock(&mu_);
  StmtReset reset{next_time_};
  sqlite3_bind_int64(next_time_, 1, now);
  if (sqlite3_step(next_time_) != SQLITE_ROW) return SqlError("next attempt");
  if (sqlite3_column_type(next_time_, 0) == SQLITE_NULL) return std::optional<absl::Time>();
  return std::optional<absl::Time>(FromMicros(sqlite3_column_int64(next_time_, 0)));
}

absl::Status Outbox::MarkDelivered(int64_t seq) {
  const int64_t now = ToMicros(options_.clock->Now());
  absl::MutexLock lock(&mu_);
  StmtReset reset{delivered_};
  sqlite3_bind_int64(delivered_, 1, seq);
  sqlite3_bind_int64(delivered_, 2, now);
  if (sqlite3_step(delivered_) != SQLITE_DONE) return SqlError("mark delivered");
  if (sqlite3_changes(db_) == 1) --undelivered_;
  return absl::OkStatus();
}

absl::StatusOr<AlertState> Outbox::MarkAttemptFailed(int64_t seq, std::string_view error) {
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  AlertState state;
  int attempts;
  absl::Time queued;
  {
    StmtReset reset{get_row_};
    sqlite3_bind_int64(get_row_, 1, seq);
    const int rc = sqlite3_step(get_row_);
    if (rc == SQLITE_DONE) return absl::NotFoundError(ortserve::StrCat("alert outbox: no row ", seq));
    if (rc != SQLITE_ROW) return SqlError("read row");
    state = static_cast<AlertState>(sqlite3_column_int(get_row_, 0));
    attempts = sqlite3_column_int(get_row_, 1);
    queued = FromMicros(sqlite3_column_int64(get_row_, 2));
  }
  if (state != AlertState::kPending) return state;  // Delivered or failed meanwhile.
  attempts = attempts < 1000000 ? attempts + 1 : attempts;
  const bool give_up = (options_.max_attempts > 0 && attempts >= options_.max_attempts) ||
                       now - queued >= options_.give_up_after;
  const AlertState next_state = give_up ? AlertState::kFailed : AlertState::kPending;
  const absl::Time next = give_up ? now : now + options_.backoff.Delay(attempts, Random());
  StmtReset reset{reschedule_};
  sqlite3_bind_int64(reschedule_, 1, seq);
  sqlite3_bind_int(reschedule_, 2, static_cast<int>(next_state));
  sqlite3_bind_int(reschedule_, 3, attempts);
  sqlite3_bind_int64(reschedule_, 4, ToMicros(next));
  BindText(reschedule_, 5, error.substr(0, 1024));
  if (sqlite3_step(reschedule_) != SQLITE_DONE) return SqlError("reschedule");
  return next_state;
}

absl::StatusOr<std::vector<OutboxEntry>> Outbox::Snapshot(const SnapshotQuery& query) {
  std::string sql = ortserve::StrCat("SELECT ", kColumns, " FROM alerts WHERE 1");
  if (query.state.has_value()) sql += " AND state = ?1";
  if (!query.receiver.empty()) sql += " AND receiver = ?2";
  sql += " ORDER BY seq DESC LIMIT ?3";
  absl::MutexLock lock(&mu_);
  OwnedStmt stmt;
  RETURN_IF_ERROR(Prepare(sql.c_str(), &stmt.stmt));
  if (query.state.has_value()) sqlite3_bind_int(stmt.stmt, 1, static_cast<int>(*query.state));
  if (!query.receiver.empty()) BindText(stmt.stmt, 2, query.receiver);
  sqlite3_bind_int64(stmt.stmt, 3, static_cast<int64_t>(std::min<size_t>(query.limit, 10000)));
  std::vector<OutboxEntry> out;
  int rc;
  while ((rc = sqlite3_step(stmt.stmt)) == SQLITE_ROW) out.push_back(ReadEntry(stmt.stmt));
  if (rc != SQLITE_DONE) return SqlError("snapshot");
  return out;
}

absl::StatusOr<int> Outbox::ReplayFailed(std::string_view receiver, std::string_view alert_id) {
  const int64_t now = ToMicros(options_.clock->Now());
  std::string sql = "UPDATE alerts SET state = 0, next_attempt_us = ?1, queued_us = ?1 WHERE state = 2";
  if (!receiver.empty()) sql += " AND receiver = ?2";
  if (!alert_id.empty()) sql += " AND alert_id = ?3";
  absl::MutexLock lock(&mu_);
  OwnedStmt stmt;
  RETURN_IF_ERROR(Prepare(sql.c_str(), &stmt.stmt));
  sqlite3_bind_int64(stmt.stmt, 1, now);
  if (!receiver.empty()) BindText(stmt.stmt, 2, receiver);
  if (!alert_id.empty()) BindText(stmt.stmt, 3, alert_id);
  if (sqlite3_step(stmt.stmt) != SQLITE_DONE) return SqlError("replay");
  return sqlite3_changes(db_);  // Failed rows were already counted as undelivered.
}

absl::StatusOr<int64_t> Outbox::PendingCount(std::string_view receiver) {
  absl::MutexLock lock(&mu_);
  StmtReset reset{pending_count_};
  BindText(pending_count_, 1, receiver);
  if (sqlite3_step(pending_count_) != SQLITE_ROW) return SqlError("pending count");
  return sqlite3_column_int64(pending_count_, 0);
}

absl::StatusOr<std::map<AlertState, int64_t>> Outbox::Counts(std::string_view receiver) {
  std::string sql = "SELECT state, COUNT(*) FROM alerts";
  if (!receiver.empty()) sql += " WHERE receiver = ?1";
  sql += " GROUP BY state";
  absl::MutexLock lock(&mu_);
  OwnedStmt stmt;
  RETURN_IF_ERROR(Prepare(sql.c_str(), &stmt.stmt));
  if (!receiver.empty()) BindText(stmt.stmt, 1, receiver);
  std::map<AlertState, int64_t> out = {
      {AlertState::kPending, 0}, {AlertState::kDelivered, 0}, {AlertState::kFailed, 0}};
  int rc;
  while ((rc = sqlite3_step(stmt.stmt)) == SQLITE_ROW) {
    out[static_cast<AlertState>(sqlite3_column_int(stmt.stmt, 0))] = sqlite3_column_int64(stmt.stmt, 1);
  }
  if (rc != SQLITE_DONE) return SqlError("counts");
  return out;
}

absl::StatusOr<int> Outbox::Purge() {
  const int64_t cutoff = ToMicros(options_.clock->Now() - options_.retention);
  absl::MutexLock lock(&mu_);
  int removed = 0;
  OwnedStmt old_rows;
  RETURN_IF_ERROR(Prepare(
      "DELETE FROM alerts WHERE (state = 1 AND delivered_us < ?1) OR (state = 2 AND created_us < ?1)",
      &old_rows.stmt));
  sqlite3_bind_int64(old_rows.stmt, 1, cutoff);
  if (sqlite3_step(old_rows.stmt) != SQLITE_DONE) return SqlError("purge");
  removed += sqlite3_changes(db_);
  OwnedStmt overflow;
  RETURN_IF_ERROR(Prepare(
      "DELETE FROM alerts WHERE seq IN (SELECT seq FROM alerts WHERE state = 1 ORDER BY seq DESC "
      "LIMIT -1 OFFSET ?1)",
      &overflow.stmt));
  sqlite3_bind_int64(overflow.stmt, 1, static_cast<int64_t>(options_.max_delivered_rows));
  if (sqlite3_step(overflow.stmt) != SQLITE_DONE) return SqlError("purge");
  removed += sqlite3_changes(db_);
  OwnedStmt count;
  RETURN_IF_ERROR(Prepare("SELECT COUNT(*) FROM alerts WHERE state IN (0, 2)", &count.stmt));
  if (sqlite3_step(count.stmt) != SQLITE_ROW) return SqlError("count");
  undelivered_ = sqlite3_column_int64(count.stmt, 0);
  return removed;
}

}  // namespace ortserve::alerts
