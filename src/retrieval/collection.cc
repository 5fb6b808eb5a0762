// SPDX-License-Identifier: Apache-2.0
#include "retrieval/collection.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <queue>

#include "core/strings.h"

namespace ortserve::retrieval {

// hnswlib's graph over slot numbers (labels). hnswlib reports errors by
// throwing; every call is wrapped.
struct Collection::Index {
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  size_t capacity = 0;
};

namespace {

std::unique_ptr<hnswlib::SpaceInterface<float>> MakeSpace(Metric metric, uint32_t dimension) {
  if (metric == Metric::kL2) return std::make_unique<hnswlib::L2Space>(dimension);
  return std::make_unique<hnswlib::InnerProductSpace>(dimension);
}

// Scales `v` to unit length; false when it is all zeros.
bool Normalize(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += double{x} * x;
  if (sum <= 0) return false;
  const float scale = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : v) x *= scale;
  return true;
}

absl::Status CheckVector(const std::vector<float>& v, const CollectionParams& params, std::string_view what) {
  if (v.size() != params.dimension) {
    return absl::InvalidArgumentError(
        StrCat(what, " has ", v.size(), " values; the collection's dimension is ", params.dimension));
  }
  for (float x : v) {
    if (!std::isfinite(x)) return absl::InvalidArgumentError(StrCat(what, " holds a value that is not finite"));
  }
  if (params.metric == Metric::kCosine && std::all_of(v.begin(), v.end(), [](float x) { return x == 0; })) {
    return absl::InvalidArgumentError(StrCat(what, " is all zeros (no direction for cosine)"));
  }
  return absl::OkStatus();
}

absl::Status CheckId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(StrCat("document id must be 1 to ", kMaxIdBytes, " bytes"));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) return absl::InvalidArgumentError("document id holds a control character");
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kCosine: return "cosine";
    case Metric::kInnerProduct: return "ip";
    case Metric::kL2: return "l2";
  }
  return "cosine";
}

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  if (name == "cosine") return Metric::kCosine;
  if (name == "ip" || name == "inner_product") return Metric::kInnerProduct;
  if (name == "l2") return Metric::kL2;
  return absl::InvalidArgumentError(StrCat("unknown metric '", name, "' (use cosine, ip or l2)"));
}

absl::Status CollectionParams::Validate() const {
  auto range = [](std::string_view name, uint64_t value, uint64_t low, uint64_t high) -> absl::Status {
    if (value < low || value > high) {
      return absl::InvalidArgumentError(StrCat("'", name, "' must be from ", low, " to ", high, ", not ", value));
    }
    return absl::OkStatus();
  };
  if (auto s = range("dimension", dimension, 1, kMaxDimension); !s.ok()) return s;
  if (auto s = range("m", m, 2, 64); !s.ok()) return s;
  if (auto s = range("ef_construction", ef_construction, 8, 4096); !s.ok()) return s;
  if (auto s = range("ef_search", ef_search, 8, 4096); !s.ok()) return s;
  if (auto s = range("exact_threshold", exact_threshold, 0, 10'000'000); !s.ok()) return s;
  return range("max_bytes", max_bytes, 1 << 16, uint64_t{1} << 40);
}

Collection::Collection(const CollectionParams& params)
    : params_(params),
      space_(MakeSpace(params.metric, params.dimension)),
      distance_(space_->get_dist_func()),
      distance_param_(space_->get_dist_func_param()),
      ef_search_(params.ef_search) {}
Collection::~Collection() = default;

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(const CollectionParams& params) {
  if (auto s = params.Validate(); !s.ok()) return s;
  return std::unique_ptr<Collection>(new Collection(params));
}

CollectionParams Collection::params() const {
  absl::ReaderMutexLock lock(&mu_);
  CollectionParams params = params_;
  params.ef_search = ef_search_;
  return params;
}

absl::Status Collection::SetEfSearch(uint32_t ef_search) {
  CollectionParams params = params_;
  params.ef_search = ef_search;
  if (auto s = params.Validate(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  ef_search_ = ef_search;
  if (index_ != nullptr) index_->graph->setEf(ef_search);
  return absl::OkStatus();
}

uint64_t Collection::Cost(size_t id_bytes, size_t metadata_bytes) const {
  // The vector twice (ours and the graph's), the graph's level-0 links and
  // label, about one upper-level list per M nodes, the id (map key and
  // slot), the metadata text and its parsed fields, fixed overheads.
  const uint64_t vector = uint64_t{params_.dimension} * sizeof(float);
  const uint64_t links = (2 * uint64_t{params_.m} + 1) * 4 + 8 + (uint64_t{params_.m} + 1) * 4 / params_.m + 16;
  return 2 * vector + links + 2 * id_bytes + 2 * metadata_bytes + sizeof(Slot) + 64;
}

absl::StatusOr<std::vector<Metadata>> Collection::Check(const std::vector<Change>& changes) const {
  std::vector<Metadata> parsed;
  parsed.reserve(changes.size());
  for (const Change& change : changes) {
    if (auto s = CheckId(change.document.id); !s.ok()) return s;
    if (change.kind == Change::Kind::kDelete) {
      parsed.emplace_back();
      continue;
    }
    if (auto s = CheckVector(change.document.vector, params_, StrCat("the vector of '", change.document.id, "'"));
        !s.ok()) {
      return s;
    }
    if (change.document.metadata.empty()) {
      parsed.emplace_back();
      continue;
    }
    auto metadata = ParseMetadata(change.document.metadata);
    if (!metadata.ok()) {
      return absl::InvalidArgumentError(
          StrCat("document '", change.document.id, "': ", ToStd(metadata.status().message())));
    }
    parsed.push_back(*std::move(metadata));
  }
  // Room once all are applied: each id's last change decides what it costs.
  absl::ReaderMutexLock lock(&mu_);
  absl::flat_hash_map<std::string_view, int64_t> after;  // id -> cost once applied (0: gone)
  for (size_t i = 0; i < changes.size(); ++i) {
    const Document& d = changes[i].document;
    after[d.id] = changes[i].kind == Change::Kind::kDelete ? 0 : static_cast<int64_t>(Cost(d.id.size(), parsed[i].json.size()));
  }
  int64_t total = static_cast<int64_t>(bytes_);
  for (const auto& [id, cost] : after) {
    if (auto it = by_id_.find(std::string(id)); it != by_id_.end()) {
      total -= static_cast<int64_t>(Cost(id.size(), slots_[it->second].metadata.json.size()));
    }
    total += cost;
  }
  if (total > static_cast<int64_t>(params_.max_bytes)) {
    return absl::ResourceExhaustedError(StrCat("the collection is full: these documents would hold about ", total,
                                               " bytes, over its max_bytes of ", params_.max_bytes,
                                               " (delete documents or create a larger collection)"));
  }
  if (slots_.size() + changes.size() > uint64_t{UINT32_MAX} - 1) {
    return absl::ResourceExhaustedError("the collection is full: no free document slot");
  }
  return parsed;
}

absl::Status Collection::Apply(const std::vector<Change>& changes, std::vector<Metadata> metadata) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < changes.size(); ++i) {
    // Apply takes its own copy of the vector (cosine normalizes it).
    Document document = changes[i].document;
    absl::Status status = changes[i].kind == Change::Kind::kDelete ? Delete(document.id)
                                                                     : Upsert(document, std::move(metadata[i]));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Collection::Upsert(Document& document, Metadata metadata) {
  if (params_.metric == Metric::kCosine) Normalize(document.vector);
  uint32_t slot = 0;
  bool moved = true;
  if (auto it = by_id_.find(document.id); it != by_id_.end()) {
    slot = it->second;
    bytes_ -= Cost(document.id.size(), slots_[slot].metadata.json.size());
    // A client's retry, or a change of metadata only: hnswlib would still
    // re-link the node's whole neighbourhood (about M insertions' work).
    moved = !std::equal(document.vector.begin(), document.vector.end(), VectorOf(slot));
  } else if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
    vectors_.resize(vectors_.size() + params_.dimension);
  }
  std::copy(document.vector.begin(), document.vector.end(), vectors_.begin() + size_t{slot} * params_.dimension);
  Slot& s = slots_[slot];
  s.id = document.id;
  s.metadata = std::move(metadata);
  s.live = true;
  by_id_[s.id] = slot;
  bytes_ += Cost(s.id.size(), s.metadata.json.size());
  if (index_ == nullptr) {
    if (by_id_.size() > params_.exact_threshold) return BuildIndex();
    return absl::OkStatus();
  }
  if (!moved) return absl::OkStatus();
  try {
    if (slots_.size() > index_->capacity) {
      index_->capacity *= 2;
      index_->graph->resizeIndex(index_->capacity);
    }
    // A label already in the graph (an update, or a reused deleted slot) is
    // unmarked and moved; a new one is linked in.
    index_->graph->addPoint(VectorOf(slot), slot);
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("the HNSW index failed to add '", s.id, "': ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status Collection::Delete(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return absl::OkStatus();
  const uint32_t slot = it->second;
  by_id_.erase(it);
  Slot& s = slots_[slot];
  bytes_ -= Cost(s.id.size(), s.metadata.json.size());
  s.live = false;
  s.id.clear();
  s.metadata = Metadata{};
  free_slots_.push_back(slot);
  if (index_ != nullptr) {
    try {
      // A slot that never entered the graph (freed before it was built) has no label.
      index_->graph->markDelete(slot);
    } catch (const std::exception&) {
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::BuildIndex() {
  auto index = std::make_unique<Index>();
  index->capacity = std::max<size_t>(1024, slots_.size() * 2);
  try {
    index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get(), index->capacity, params_.m,
                                                                      params_.ef_construction, /*random_seed=*/100);
    index->graph->setEf(ef_search_);
    for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
      if (slots_[slot].live) index->graph->addPoint(VectorOf(slot), slot);
    }
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("building the HNSW index failed: ", e.what()));
  }
  index_ = std::move(index);
  index_loaded_ = false;
  ++index_builds_;
  return absl::OkStatus();
}

absl::StatusOr<GraphFile> Collection::SaveIndex(const std::string& path) const {
  absl::ReaderMutexLock lock(&mu_);
  if (index_ == nullptr) return absl::NotFoundError("the collection has no graph");
  hnswlib::HierarchicalNSW<float>& graph = *index_->graph;
  // The size hnswlib's saveIndex writes: header, level-0 block, then each
  // node's upper-level lists after their length.
  uint64_t bytes = kGraphHeaderBytes + graph.cur_element_count * graph.size_data_per_element_;
  for (size_t node = 0; node < graph.cur_element_count; ++node) {
    bytes += 4 + uint64_t{graph.size_links_per_element_} * static_cast<uint64_t>(graph.element_levels_[node]);
  }
  try {
    graph.saveIndex(path);
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("saving the graph to ", path, " failed: ", e.what()));
  }
  return SealGraphFile(path, bytes);
}

absl::Status Collection::Restore(uint32_t slot_count, const std::vector<uint32_t>& slots,
                                 const std::vector<Change>& changes, std::vector<Metadata> metadata) {
  absl::MutexLock lock(&mu_);
  // Slots are only added while every slot is taken, so a collection never
  // held more slots than max_bytes has room for documents, plus one batch's
  // upserts (Check bounds a batch's outcome, not its steps; the log allows
  // 4096 changes a batch).
  const uint64_t most = params_.max_bytes / Cost(1, 0) + 4096;
  if (slot_count > most || slots.size() != changes.size()) {
    return absl::DataLossError(StrCat("a slot count of ", slot_count, " is over the ", most, " max_bytes allows"));
  }
  if (slots_.size() < slot_count) {
    slots_.resize(slot_count);
    vectors_.resize(size_t{slot_count} * params_.dimension);
  }
  for (size_t i = 0; i < changes.size(); ++i) {
    const Document& d = changes[i].document;
    const uint32_t slot = slots[i];
    if (changes[i].kind != Change::Kind::kUpsert || slot >= slots_.size() || slots_[slot].live ||
        by_id_.contains(d.id)) {
      return absl::DataLossError(StrCat("document '", d.id, "' has a slot (", slot, ") out of range or taken"));
    }
    std::copy(d.vector.begin(), d.vector.end(), vectors_.begin() + size_t{slot} * params_.dimension);
    Slot& s = slots_[slot];
    s.id = d.id;
    s.metadata = std::move(metadata[i]);
    s.live = true;
    by_id_[s.id] = slot;
    bytes_ += Cost(s.id.size(), s.metadata.json.size());
  }
  return absl::OkStatus();
}

absl::Status Collection::FinishRestore(const std::string& graph_path, const GraphFile& graph, std::string* problem) {
  absl::MutexLock lock(&mu_);
  free_slots_.clear();
  for (uint32_t slot = static_cast<uint32_t>(slots_.size()); slot-- > 0;) {
    if (!slots_[slot].live) free_slots_.push_back(slot);  // The lowest is reused first.
  }
  problem->clear();
  if (!graph_path.empty()) {
    if (auto s = LoadIndex(graph_path, graph); !s.ok()) *problem = ToStd(s.message());
  }
  if (index_ == nullptr && by_id_.size() > params_.exact_threshold) return BuildIndex();
  return absl::OkStatus();
}

absl::Status Collection::LoadIndex(const std::string& path, const GraphFile& file) {
  auto index = std::make_unique<Index>();
  index->capacity = std::max<size_t>(1024, slots_.size() * 2);
  const GraphShape shape{.dimension = params_.dimension,
                         .m = params_.m,
                         .ef_construction = params_.ef_construction,
                         .max_nodes = slots_.size(),
                         .capacity = index->capacity};
  if (auto checked = CheckGraphFile(path, file, shape); !checked.ok()) return checked.status();
  // Only now may hnswlib read it. Its loading constructor leaves the fields
  // loadIndex does not set uninitialized: the deleted count (which loadIndex
  // adds to) and the pointers its destructor frees when loadIndex throws.
  auto graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get());
  graph->cur_element_count = 0;
  graph->num_deleted_ = 0;
  graph->data_level0_memory_ = nullptr;
  graph->linkLists_ = nullptr;
  graph->visited_list_pool_ = nullptr;
  try {
    graph->loadIndex(path, space_.get(), index->capacity);
  } catch (const std::exception& e) {
    // Only an allocation can fail here (the file was checked). Its node
    // lists may be half made: leak them rather than free what is not there.
    graph->cur_element_count = 0;
    return absl::DataLossError(StrCat("hnswlib could not read it: ", e.what()));
  }
  const hnswlib::HierarchicalNSW<float>& g = *graph;
  // The file may have been swapped after it was checked: the links are
  // checked again in memory (within the graph; an upper-level link only to a
  // node that has that level, since a search walks it there).
  if (g.max_elements_ != index->capacity || g.cur_element_count > slots_.size() ||
      g.enterpoint_node_ >= g.cur_element_count || g.element_levels_[g.enterpoint_node_] != g.maxlevel_) {
    return absl::DataLossError("it changed while it was read");
  }
  const auto nodes = static_cast<hnswlib::tableint>(g.cur_element_count);
  for (hnswlib::tableint node = 0; node < nodes; ++node) {
    for (int level = 0; level <= g.element_levels_[node]; ++level) {
      hnswlib::linklistsizeint* list = level == 0 ? g.get_linklist0(node) : g.get_linklist(node, level);
      const size_t size = g.getListCount(list);
      const auto* links = reinterpret_cast<const hnswlib::tableint*>(list + 1);
      if (size > (level == 0 ? g.maxM0_ : g.maxM_)) return absl::DataLossError(StrCat("node ", node, " has too many links"));
      for (size_t j = 0; j < size; ++j) {
        if (links[j] >= nodes || g.element_levels_[links[j]] < level) {
          return absl::DataLossError(StrCat("node ", node, " links outside the graph"));
        }
      }
    }
  }
  // Labels are slots: each node a distinct slot, deleted exactly when the
  // slot is free, holding the slot's vector; every live slot a node.
  if (g.label_lookup_.size() != g.cur_element_count) return absl::DataLossError("two nodes share a label");
  size_t live = 0;
  const size_t vector_bytes = size_t{params_.dimension} * sizeof(float);
  for (hnswlib::tableint node = 0; node < g.cur_element_count; ++node) {
    const hnswlib::labeltype label = g.getExternalLabel(node);
    if (label >= slots_.size() || slots_[label].live == g.isMarkedDeleted(node)) {
      return absl::DataLossError(StrCat("node ", node, " (slot ", label, ") does not match the documents"));
    }
    if (slots_[label].live) {
      if (std::memcmp(g.getDataByInternalId(node), VectorOf(static_cast<uint32_t>(label)), vector_bytes) != 0) {
        return absl::DataLossError(StrCat("node ", node, " holds another vector than slot ", label));
      }
      ++live;
    }
  }
  if (live != by_id_.size()) return absl::DataLossError(StrCat(by_id_.size() - live, " documents are not in it"));
  index->graph = std::move(graph);
  index->graph->setEf(ef_search_);  // loadIndex leaves hnswlib's default of 10.
  index_ = std::move(index);
  index_loaded_ = true;
  return absl::OkStatus();
}

float Collection::Distance(const float* a, const float* b) const {
  // hnswlib's own (SIMD) distance, so that exact scans and the graph agree.
  return distance_(a, b, distance_param_);
}

std::vector<std::pair<float, uint32_t>> Collection::Scan(const float* query, size_t top_k,
                                                         const Filter& filter) const {
  // A max-heap of the best top_k so far: its top is the worst kept.
  std::priority_queue<std::pair<float, uint32_t>> best;
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Slot& s = slots_[slot];
    if (!s.live || (!filter.empty() && !filter.Matches(s.metadata))) continue;
    const float d = Distance(query, VectorOf(slot));
    if (best.size() < top_k) {
      best.emplace(d, slot);
    } else if (d < best.top().first) {
      best.pop();
      best.emplace(d, slot);
    }
  }
  std::vector<std::pair<float, uint32_t>> out(best.size());
  for (size_t i = out.size(); i-- > 0;) {
    out[i] = best.top();
    best.pop();
  }
  return out;
}

absl::StatusOr<std::vector<Hit>> Collection::Search(std::vector<float> query, size_t top_k, const Filter& filter,
                                                    bool exact) const {
  if (top_k < 1 || top_k > kMaxTopK) {
    return absl::InvalidArgumentError(StrCat("top_k must be from 1 to ", kMaxTopK, ", not ", top_k));
  }
  if (auto s = CheckVector(query, params_, "the query vector"); !s.ok()) return s;
  if (params_.metric == Metric::kCosine) Normalize(query);
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::pair<float, uint32_t>> found;
  const size_t live = by_id_.size();
  if (index_ == nullptr || exact || live < params_.exact_threshold) {
    found = Scan(query.data(), top_k, filter);
  } else {
    // Ask the graph for more than top_k when a filter may reject some, four
    // times more each round; past a few thousand candidates the filter is
    // selective enough that a scan of the matching documents is cheaper.
    constexpr size_t kMostCandidates = 4096;
    size_t want = filter.empty() ? top_k : top_k * 4;
    for (;;) {
      found.clear();
      try {
        auto result = index_->graph->searchKnn(query.data(), std::min(want, live));
        while (!result.empty()) {
          const auto [distance, label] = result.top();
          result.pop();
          const auto slot = static_cast<uint32_t>(label);
          if (slot < slots_.size() && slots_[slot].live &&
              (filter.empty() || filter.Matches(slots_[slot].metadata))) {
            found.emplace_back(distance, slot);
          }
        }
      } catch (const std::exception& e) {
        return absl::InternalError(StrCat("the HNSW search failed: ", e.what()));
      }
      if (found.size() >= top_k || want >= live) break;
      if (want * 4 > kMostCandidates) {
        found = Scan(query.data(), top_k, filter);
        break;
      }
      want *= 4;
    }
    std::sort(found.begin(), found.end());
    if (found.size() > top_k) found.resize(top_k);
  }
  std::vector<Hit> hits;
  hits.reserve(found.size());
  for (const auto& [distance, slot] : found) {
    float score = params_.metric == Metric::kL2 ? std::sqrt(std::max(distance, 0.0f)) : 1.0f - distance;
    hits.push_back(Hit{slots_[slot].id, score, slots_[slot].metadata.json});
  }
  return hits;
}

absl::StatusOr<Document> Collection::Get(std::string_view id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return absl::NotFoundError(StrCat("no document '", id, "'"));
  const float* v = VectorOf(it->second);
  return Document{std::string(id), std::vector<float>(v, v + params_.dimension), slots_[it->second].metadata.json};
}

CollectionStats Collection::Stats() const {
  absl::ReaderMutexLock lock(&mu_);
  return CollectionStats{.documents = by_id_.size(),
                         .bytes = bytes_,
                         .max_bytes = params_.max_bytes,
                         .indexed = index_ != nullptr,
                         .deleted_slots = free_slots_.size(),
                         .index_builds = index_builds_,
                         .index_loaded = index_loaded_};
}

}  // namespace ortserve::retrieval
