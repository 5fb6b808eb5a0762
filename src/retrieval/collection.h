// SPDX-License-Identifier: Apache-2.0
// Collection: one in-memory vector collection. Documents are upserted by a
// string id (a vector plus metadata), deleted by id, and searched for the
// nearest vectors to a query under an optional metadata filter. Below
// `exact_threshold` live documents a query scans every vector (exact); from
// there on it walks an HNSW graph (hnswlib), deletions marked in the graph.
//
// Durability is not here: CollectionStore logs each change before it calls
// Apply. Thread-safe: queries share a reader lock; changes take it alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "retrieval/graph_file.h"
#include "retrieval/metadata.h"

namespace hnswlib {
template <typename T>
class SpaceInterface;
}  // namespace hnswlib

namespace ortserve::retrieval {

// How distance is measured.
enum class Metric : uint8_t {
  kCosine,        // Cosine similarity; vectors are stored normalized. Score: similarity (higher is nearer).
  kInnerProduct,  // Dot product. Score: the dot product (higher is nearer).
  kL2,            // Euclidean distance. Score: the distance (lower is nearer).
};
// "cosine", "ip", "l2".
std::string_view MetricName(Metric metric);
// The metric named `name` ("cosine", "ip" or "inner_product", "l2").
absl::StatusOr<Metric> ParseMetric(std::string_view name);

// Bounds every collection obeys, whatever its client asks.
inline constexpr uint32_t kMaxDimension = 4096;
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxTopK = 1000;

struct CollectionParams {
  uint32_t dimension = 0;              // 1..kMaxDimension
  Metric metric = Metric::kCosine;
  uint32_t m = 16;                     // HNSW links per node, 2..64
  uint32_t ef_construction = 200;      // HNSW build breadth, 8..4096
  uint32_t ef_search = 128;            // HNSW query breadth, 8..4096 (bench/results/2026-12-07-retrieval-recall.md)
  uint32_t exact_threshold = 5000;     // Live documents below which queries are exact (0..1e7)
  uint64_t max_bytes = 256 << 20;      // Memory bound (estimate of what the collection holds)

  // InvalidArgument naming the first field out of its range.
  absl::Status Validate() const;
  bool operator==(const CollectionParams&) const = default;
};

// One document as written: id, vector, metadata JSON ("" or "{}": none).
struct Document {
  std::string id;
  std::vector<float> vector;
  std::string metadata;
};

// A change to a collection: an upsert or a delete (by id).
struct Change {
  enum class Kind : uint8_t {
    kUpsert = 1,  // Insert `document`, or replace the one with its id.
    kDelete = 2,  // Remove the document `document.id` (absent: no-op).
  };
  Kind kind = Kind::kUpsert;
  Document document;
};

struct Hit {
  std::string id;
  float score = 0;
  std::string metadata;  // Compact JSON.
};

struct CollectionStats {
  uint64_t documents = 0;
  uint64_t bytes = 0;       // Estimated memory held.
  uint64_t max_bytes = 0;
  bool indexed = false;     // Whether the HNSW graph exists.
  uint64_t deleted_slots = 0;  // Deleted slots waiting for reuse.
  uint64_t index_builds = 0;   // Graphs built from the vectors since the collection was opened.
  bool index_loaded = false;   // Whether the graph was read from a snapshot instead.
};

class Collection {
 public:
  // InvalidArgument when `params` are out of range.
  static absl::StatusOr<std::unique_ptr<Collection>> Create(const CollectionParams& params);
  ~Collection();

  // The parameters the collection was created with, ef_search as
  // SetEfSearch last set it.
  CollectionParams params() const ABSL_LOCKS_EXCLUDED(mu_);

  // Sets the HNSW query breadth from now on (InvalidArgument outside
  // 8..4096). Takes the writer lock: queries in flight finish first.
  absl::Status SetEfSearch(uint32_t ef_search) ABSL_LOCKS_EXCLUDED(mu_);

  // Checks `changes` without applying them: ids and vectors within bounds,
  // vectors of the collection's dimension with finite values (and, for
  // cosine, not all zero), metadata that parses, and room under max_bytes
  // once all are applied (ResourceExhausted names the bound). Returns the
  // parsed metadata of each change (for Apply).
  absl::StatusOr<std::vector<Metadata>> Check(const std::vector<Change>& changes) const ABSL_LOCKS_EXCLUDED(mu_);
  // Applies changes that Check accepted (in order), with their metadata.
  // Internal only on an index failure (hnswlib allocation), which leaves the
  // collection consistent up to the failing change.
  absl::Status Apply(const std::vector<Change>& changes, std::vector<Metadata> metadata) ABSL_LOCKS_EXCLUDED(mu_);

  // The `top_k` nearest live documents to `query` that `filter` accepts,
  // nearest first. InvalidArgument for a wrong dimension, a non-finite
  // value, or top_k outside 1..kMaxTopK. `exact` forces a full scan.
  absl::StatusOr<std::vector<Hit>> Search(std::vector<float> query, size_t top_k, const Filter& filter,
                                          bool exact = false) const ABSL_LOCKS_EXCLUDED(mu_);

  // The document `id` (its stored vector: normalized under cosine), or NotFound.
  absl::StatusOr<Document> Get(std::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);

  CollectionStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `visit(slot, id, vector, metadata)` for every live document in
  // slot order, under the reader lock (writers wait; queries go on), and
  // returns the slot count. For snapshots.
  template <typename F>
  uint32_t ForEach(F&& visit) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
      const Slot& s = slots_[slot];
      if (s.live) visit(slot, s.id, VectorOf(slot), s.metadata.json);
    }
    return static_cast<uint32_t>(slots_.size());
  }
  // The slots, live or free (what ForEach returns).
  uint32_t SlotCount() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    return static_cast<uint32_t>(slots_.size());
  }
  // Writes the HNSW graph to `path` (graph_file.h). NotFound when the
  // collection has none; Internal when writing fails. Under the reader lock:
  // the file matches what ForEach saw if no change ran in between.
  absl::StatusOr<GraphFile> SaveIndex(const std::string& path) const ABSL_LOCKS_EXCLUDED(mu_);

  // Recovery from a snapshot, on a new collection, before any other call:
  // Restore places documents that Check accepted at their slots as the
  // snapshot has them (the graph's labels), vectors as stored, building no
  // graph; then FinishRestore frees the slots no document took, loads the
  // graph from `graph_path` (when not empty) and checks it against the
  // documents (every live slot a node, every node's vector the slot's), and
  // when that fails (`*problem` says why) or there is no graph, builds one
  // if the collection is over its exact_threshold. Restore: DataLoss for a
  // slot out of range or taken, a repeated id, or a slot count over what
  // max_bytes allows. FinishRestore: Internal only when building fails.
  absl::Status Restore(uint32_t slot_count, const std::vector<uint32_t>& slots, const std::vector<Change>& changes,
                       std::vector<Metadata> metadata) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FinishRestore(const std::string& graph_path, const GraphFile& graph, std::string* problem)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Slot {
    std::string id;
    Metadata metadata;
    bool live = false;
  };
  struct Index;  // The hnswlib graph and its space.

  explicit Collection(const CollectionParams& params);
  const float* VectorOf(uint32_t slot) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return vectors_.data() + size_t{slot} * params_.dimension;
  }
  // What one document costs in the memory bound.
  uint64_t Cost(size_t id_bytes, size_t metadata_bytes) const;
  absl::Status Upsert(Document& document, Metadata metadata) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Delete(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BuildIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads the graph at `path` and checks it against the slots (FinishRestore).
  absl::Status LoadIndex(const std::string& path, const GraphFile& file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Exact scan of the live slots.
  std::vector<std::pair<float, uint32_t>> Scan(const float* query, size_t top_k, const Filter& filter) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float Distance(const float* a, const float* b) const;

  const CollectionParams params_;
  // The space that measures distances (hnswlib's, SIMD): inner product
  // (1 - dot) for cosine and ip, squared L2 for l2. Immutable.
  const std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  float (*const distance_)(const void*, const void*, const void*);
  void* const distance_param_;
  mutable absl::Mutex mu_;
  uint32_t ef_search_ ABSL_GUARDED_BY(mu_);  // params_.ef_search until SetEfSearch.
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<float> vectors_ ABSL_GUARDED_BY(mu_);  // slot * dimension
  absl::flat_hash_map<std::string, uint32_t> by_id_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_slots_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Index> index_ ABSL_GUARDED_BY(mu_);
  uint64_t index_builds_ ABSL_GUARDED_BY(mu_) = 0;
  bool index_loaded_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ortserve::retrieval
