// SPDX-License-Identifier: Apache-2.0
// A collection's snapshot: every live document, at its slot, as of a log
// sequence number, and the HNSW graph beside it so that recovery need not
// rebuild it.
//
//   <dir>/snapshot.bin               "ORTSNAP2" | u64 sequence | u32 dimension, then
//                                    frames (wal.h's framing), each a kind byte and a body:
//     'S' u32 slot count             first
//     'D' u32 slot | document        one per live document (EncodeDocument's layout)
//     'G' u64 bytes | u32 crc-32     when the collection had a graph, in the file below
//     'E' u64 document count         last
//   <dir>/graph-<sequence>.hnsw      that graph (graph_file.h), exactly the snapshot's documents
//
// The graph file is written and synced before snapshot.bin is renamed into
// place, and older graph files are removed after, so a crash at any point
// leaves a snapshot whose graph file is there. Version 1 snapshots
// ("ORTSNAP1": documents only, without slots) are still read.
//
// Not thread-safe: the caller keeps the collection from changing meanwhile
// (queries may run).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "retrieval/collection.h"

namespace ortserve::retrieval {

// Writes the snapshot of `collection` as of log sequence `sequence` into
// `dir`: graph file, then snapshot.bin (temporary file, fsync, rename, fsync
// of `dir`), then removes older graph files. Internal on a failed write (the
// previous snapshot then stands).
absl::Status WriteSnapshot(const std::string& dir, uint64_t sequence, const Collection& collection);

struct SnapshotReport {
  uint64_t sequence = 0;   // 0: no snapshot.
  uint64_t documents = 0;
  bool graph_loaded = false;
  std::string graph_problem;  // Why the recorded graph was not used (then it was rebuilt); empty: no problem.
};

// Reads `dir`'s snapshot, if any, into `collection` (new and empty), with its
// graph when that checks out (else the graph is rebuilt and graph_problem
// says why). DataLoss naming what is wrong for a damaged snapshot.bin.
absl::StatusOr<SnapshotReport> ReadSnapshot(const std::string& dir, Collection& collection);

}  // namespace ortserve::retrieval
