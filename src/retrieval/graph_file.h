// SPDX-License-Identifier: Apache-2.0
// The HNSW graph of a collection as a file beside its snapshot, so that
// recovery loads the graph instead of rebuilding it. The bytes are
// hnswlib's own (saveIndex / loadIndex, called by Collection: hnswlib's
// headers can be in one translation unit only); the snapshot records the
// file's size and CRC-32. hnswlib's loader trusts its input, so
// CheckGraphFile checks, before hnswlib reads a byte, the size and CRC,
// every header field against the collection's dimension, M,
// ef_construction and slot count, and each node's link-list length.
// Collection checks the rest once loaded (links, labels, vectors).
//
// Stateless functions: safe from any thread (on different files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ortserve::retrieval {

// What the snapshot records about its graph file.
struct GraphFile {
  uint64_t bytes = 0;
  uint32_t crc = 0;
  bool operator==(const GraphFile&) const = default;
};

// What a graph read back must agree with.
struct GraphShape {
  uint32_t dimension = 0;
  uint32_t m = 0;
  uint32_t ef_construction = 0;
  uint64_t max_nodes = 0;   // The collection's slot count: labels are slots.
  uint64_t capacity = 0;    // Nodes to allocate room for (>= max_nodes).
};

// The bytes of hnswlib's header.
inline constexpr size_t kGraphHeaderBytes = 6 * 8 + 4 + 4 + 3 * 8 + 8 + 8;

// After hnswlib's saveIndex wrote `path` (it reports no write error):
// checks that it has the `bytes` the graph implies, syncs it, and returns
// its size and CRC. Internal otherwise.
absl::StatusOr<GraphFile> SealGraphFile(const std::string& path, uint64_t bytes);

// Before hnswlib's loadIndex may read `path`: its size and CRC are the
// snapshot's, its header agrees with `shape`, its link lists fill it.
// Returns its node count; DataLoss naming what did not hold.
absl::StatusOr<uint64_t> CheckGraphFile(const std::string& path, const GraphFile& expected, const GraphShape& shape);

}  // namespace ortserve::retrieval
