// SPDX-License-Identifier: Apache-2.0
// CollectionStore: the collections of every tenant, kept durable under one
// directory (--collections-dir). Each collection is a folder
//   <dir>/t_<tenant>/c_<name>/collection.json   its model and parameters
//                            /wal.log           changes since the snapshot (wal.h)
//                            /snapshot.bin      every document at a sequence number
//                            /graph-<seq>.hnsw  the HNSW graph of that snapshot (snapshot.h)
// A write is logged (and, under FsyncPolicy::kAlways, fdatasync'ed) before
// it is acknowledged; a snapshot is taken when the log passes
// `snapshot_log_bytes`, then the log is emptied. Open replays each
// collection's snapshot and log; a torn or corrupt log tail is cut off (it
// was never acknowledged) and reported.
//
// Thread-safe. Work is synchronous; Submit runs it on the store's own
// worker threads so that callers on event loops are not blocked by a scan
// or an fdatasync.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "retrieval/collection.h"
#include "retrieval/wal.h"

namespace ortserve::retrieval {

// A collection's name: 1 to 64 of [A-Za-z0-9._-], not starting with '.'.
absl::Status ValidateCollectionName(std::string_view name);
// A tenant's name as used for collections: 1 to 128 of [A-Za-z0-9._-].
absl::Status ValidateTenantName(std::string_view tenant);

// What a collection is: the model that embeds its text (may be empty: the
// collection takes vectors only) and its index parameters.
struct CollectionInfo {
  std::string model;
  CollectionParams params;
  bool operator==(const CollectionInfo&) const = default;
};

// What Open found, per collection, for the log and the stats endpoint.
struct RecoveryReport {
  std::string tenant, name;
  uint64_t snapshot_documents = 0;
  bool graph_loaded = false;     // The HNSW graph came from the snapshot (not rebuilt).
  std::string graph_problem;     // Why the snapshot's graph was not used; empty: no problem.
  uint64_t log_batches = 0;      // Replayed from the log.
  uint64_t dropped_bytes = 0;    // Torn or corrupt tail cut off.
  std::string dropped_reason;
  double snapshot_seconds = 0;  // Of `seconds`: the snapshot and its graph (loaded or rebuilt).
  double seconds = 0;
};

class CollectionStore {
 public:
  struct Options {
    std::string dir;                                // Required; created when missing.
    FsyncPolicy fsync = FsyncPolicy::kAlways;       // --collections-fsync
    uint64_t snapshot_log_bytes = 64 << 20;         // --collections-snapshot-bytes
    uint64_t max_collection_bytes = uint64_t{1} << 30;  // Cap on a collection's max_bytes
    size_t max_collections_per_tenant = 64;
    int workers = 2;                                // Threads that run Submit's work.
    size_t max_pending = 1024;                      // Submit refuses past this many waiting.
  };

  // Opens `options.dir`, recovering every collection in it. DataLoss naming
  // the file for a snapshot or collection.json that is damaged (those are
  // written atomically: damage is not a crash's doing and is not skipped).
  static absl::StatusOr<std::unique_ptr<CollectionStore>> Open(Options options);
  // Stops the workers (pending work runs first).
  ~CollectionStore();

  // Runs `work` on a worker thread. Unavailable when max_pending are waiting.
  absl::Status Submit(absl::AnyInvocable<void() &&> work);

  // Creates `name` for `tenant`. Returns true when created, false when it
  // existed with the same info (idempotent PUT); AlreadyExists when it exists
  // with other info; InvalidArgument for bad names or parameters;
  // ResourceExhausted past max_collections_per_tenant.
  absl::StatusOr<bool> Create(std::string_view tenant, std::string_view name, const CollectionInfo& info);
  // Removes the collection and its files. NotFound when absent.
  absl::Status Drop(std::string_view tenant, std::string_view name);
  // NotFound when absent.
  absl::StatusOr<CollectionInfo> Info(std::string_view tenant, std::string_view name) const;
  absl::StatusOr<CollectionStats> Stats(std::string_view tenant, std::string_view name) const;
  std::vector<std::string> List(std::string_view tenant) const;

  // Applies `changes` as one batch: checked (Collection::Check), logged,
  // applied, synced per the fsync policy. OK means acknowledged: it
  // survives a crash. On error nothing was applied.
  absl::Status Write(std::string_view tenant, std::string_view name, std::vector<Change> changes);
  absl::StatusOr<std::vector<Hit>> Query(std::string_view tenant, std::string_view name, std::vector<float> vector,
                                         size_t top_k, const Filter& filter, bool exact = false) const;
  absl::StatusOr<Document> Get(std::string_view tenant, std::string_view name, std::string_view id) const;
  // Sets the collection's HNSW query breadth (collection.json is rewritten:
  // it lasts across restarts). InvalidArgument outside 8..4096.
  absl::Status SetEfSearch(std::string_view tenant, std::string_view name, uint32_t ef_search);
  // Takes a snapshot now and empties the log.
  absl::Status Snapshot(std::string_view tenant, std::string_view name);

  const std::vector<RecoveryReport>& recovery() const { return recovery_; }
  const Options& options() const { return options_; }

 private:
  struct Entry;
  using Key = std::pair<std::string, std::string>;  // tenant, name

  explicit CollectionStore(Options options);
  absl::StatusOr<std::shared_ptr<Entry>> Find(std::string_view tenant, std::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::shared_ptr<Entry>> Recover(const std::string& tenant, const std::string& name,
                                                 const std::string& dir);
  absl::Status SnapshotLocked(Entry& entry);
  void Work();

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<Key, std::shared_ptr<Entry>> collections_ ABSL_GUARDED_BY(mu_);
  uint64_t trash_counter_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RecoveryReport> recovery_;  // Written by Open only.

  absl::Mutex queue_mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::vector<std::thread> workers_;
};

// The collection's info as JSON (collection.json), and back (InvalidArgument
// for anything malformed or out of range).
std::string InfoToJson(const CollectionInfo& info);
absl::StatusOr<CollectionInfo> InfoFromJson(std::string_view json);

}  // namespace ortserve::retrieval
