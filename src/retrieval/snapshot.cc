// SPDX-License-Identifier: Apache-2.0
#include "retrieval/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/strings.h"
#include "retrieval/wal.h"

namespace ortserve::retrieval {
namespace {

namespace fs = std::filesystem;

constexpr char kMagicV1[8] = {'O', 'R', 'T', 'S', 'N', 'A', 'P', '1'};
constexpr char kMagicV2[8] = {'O', 'R', 'T', 'S', 'N', 'A', 'P', '2'};
constexpr std::string_view kEndV1 = "ORTSNEND";
constexpr size_t kHeaderBytes = 8 + 8 + 4;
// Documents checked and placed at once while recovering.
constexpr size_t kRecoveryBatch = 1024;
constexpr char kSlots = 'S', kDocument = 'D', kGraph = 'G', kEnd = 'E';

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// A frame body of exactly sizeof(T) after its kind byte.
template <typename T>
bool Get(std::string_view body, size_t at, T& value) {
  if (body.size() < at + sizeof(T)) return false;
  std::memcpy(&value, body.data() + at, sizeof(T));
  return true;
}

std::string GraphName(uint64_t sequence) { return StrCat("graph-", sequence, ".hnsw"); }

// Removes graph files (and temporaries) of `dir` other than `keep`.
void RemoveOtherGraphs(const std::string& dir, const std::string& keep) {
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir, ec)) {
    const std::string name = file.path().filename().string();
    if (name != keep && (name.starts_with("graph-") || name.starts_with(".graph-"))) {
      std::error_code ignored;
      fs::remove(file.path(), ignored);
    }
  }
}

}  // namespace

absl::Status WriteSnapshot(const std::string& dir, uint64_t sequence, const Collection& collection) {
  // The graph first: under its final name only once whole and synced.
  const std::string graph_name = GraphName(sequence);
  std::optional<GraphFile> graph;
  {
    const std::string temp = StrCat(dir, "/.", graph_name, ".tmp");
    auto saved = collection.SaveIndex(temp);
    if (saved.ok()) {
      if (::rename(temp.c_str(), StrCat(dir, "/", graph_name).c_str()) != 0) {
        return absl::InternalError(StrCat("cannot rename ", temp, ": ", std::strerror(errno)));
      }
      graph = *saved;
    } else if (saved.status().code() != absl::StatusCode::kNotFound) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return saved.status();
    }
  }
  const uint32_t dimension = collection.params().dimension;
  const std::string temp = StrCat(dir, "/.snapshot.bin.tmp");
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(StrCat("cannot create ", temp, ": ", std::strerror(errno)));
  std::string buffer;
  buffer.append(kMagicV2, 8);
  Put<uint64_t>(buffer, sequence);
  Put<uint32_t>(buffer, dimension);
  const uint32_t slots = collection.SlotCount();
  std::string body(1, kSlots);
  Put<uint32_t>(body, slots);
  AppendFrame(body, buffer);
  bool ok = true;
  uint64_t count = 0;
  const uint32_t slots_after = collection.ForEach(
      [&](uint32_t slot, const std::string& id, const float* vector, const std::string& metadata) {
        body.assign(1, kDocument);
        Put<uint32_t>(body, slot);
        body += EncodeDocument(id, vector, dimension, metadata);
        AppendFrame(body, buffer);
        ++count;
        if (buffer.size() >= (1 << 20)) {
          ok = ok && WriteAll(fd, buffer);
          buffer.clear();
        }
      });
  if (graph.has_value()) {
    body.assign(1, kGraph);
    Put<uint64_t>(body, graph->bytes);
    Put<uint32_t>(body, graph->crc);
    AppendFrame(body, buffer);
  }
  body.assign(1, kEnd);
  Put<uint64_t>(body, count);
  AppendFrame(body, buffer);
  ok = ok && WriteAll(fd, buffer) && ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) return absl::InternalError(StrCat("writing ", temp, " failed: ", std::strerror(error)));
  if (slots_after != slots) return absl::InternalError("the collection changed while its snapshot was written");
  if (::rename(temp.c_str(), StrCat(dir, "/snapshot.bin").c_str()) != 0) {
    return absl::InternalError(StrCat("cannot rename ", temp, ": ", std::strerror(errno)));
  }
  if (auto s = SyncDirectory(dir); !s.ok()) return s;
  RemoveOtherGraphs(dir, graph.has_value() ? graph_name : "");
  return absl::OkStatus();
}

absl::StatusOr<SnapshotReport> ReadSnapshot(const std::string& dir, Collection& collection) {
  SnapshotReport report;
  const std::string path = StrCat(dir, "/snapshot.bin");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    RemoveOtherGraphs(dir, "");
    return report;
  }
  const uint32_t dimension = collection.params().dimension;
  char header[kHeaderBytes];
  int version = 0;
  absl::Status status = absl::OkStatus();
  if (::read(fd, header, sizeof(header)) != static_cast<ssize_t>(sizeof(header))) {
    status = absl::DataLossError("bad header");
  } else {
    version = std::memcmp(header, kMagicV1, 8) == 0 ? 1 : std::memcmp(header, kMagicV2, 8) == 0 ? 2 : 0;
    uint32_t stored_dimension = 0;
    std::memcpy(&report.sequence, header + 8, 8);
    std::memcpy(&stored_dimension, header + 16, 4);
    if (version == 0) status = absl::DataLossError("bad header");
    else if (stored_dimension != dimension) status = absl::DataLossError("dimension differs from collection.json");
  }

  std::vector<Change> pending;
  std::vector<uint32_t> pending_slots;
  std::optional<uint32_t> slot_count;
  std::optional<GraphFile> graph;
  bool ended = false;
  auto flush = [&]() -> absl::Status {
    if (pending.empty()) return absl::OkStatus();
    auto metadata = collection.Check(pending);
    if (!metadata.ok()) return metadata.status();
    absl::Status s = version == 1 ? collection.Apply(pending, *std::move(metadata))
                                  : collection.Restore(*slot_count, pending_slots, pending, *std::move(metadata));
    pending.clear();
    pending_slots.clear();
    return s;
  };
  auto end = [&](uint64_t count) -> absl::Status {
    if (count != report.documents) return absl::DataLossError("document count differs");
    ended = true;
    return absl::OkStatus();
  };
  auto visit = [&](std::string_view payload) -> absl::Status {
    if (ended) return absl::DataLossError("frames after the end marker");
    if (version == 1) {
      if (payload.starts_with(kEndV1)) {
        uint64_t count = 0;
        if (payload.size() != kEndV1.size() + 8) return absl::DataLossError("bad end marker");
        std::memcpy(&count, payload.data() + kEndV1.size(), 8);
        return end(count);
      }
      auto document = DecodeDocument(payload);
      if (!document.ok()) return document.status();
      pending.push_back(Change{Change::Kind::kUpsert, *std::move(document)});
    } else {
      const char kind = payload.empty() ? '\0' : payload[0];
      if (kind == kSlots) {
        uint32_t n = 0;
        if (slot_count.has_value() || payload.size() != 5 || !Get(payload, 1, n)) return absl::DataLossError("bad slot count");
        slot_count = n;
        return absl::OkStatus();
      }
      if (!slot_count.has_value()) return absl::DataLossError("no slot count before the documents");
      if (kind == kGraph) {
        GraphFile file;
        if (graph.has_value() || payload.size() != 13 || !Get(payload, 1, file.bytes) || !Get(payload, 9, file.crc)) {
          return absl::DataLossError("bad graph record");
        }
        graph = file;
        return absl::OkStatus();
      }
      if (kind == kEnd) {
        uint64_t count = 0;
        if (payload.size() != 9 || !Get(payload, 1, count)) return absl::DataLossError("bad end marker");
        return end(count);
      }
      uint32_t slot = 0;
      if (kind != kDocument || graph.has_value() || !Get(payload, 1, slot)) return absl::DataLossError("bad frame");
      auto document = DecodeDocument(payload.substr(5));
      if (!document.ok()) return document.status();
      pending.push_back(Change{Change::Kind::kUpsert, *std::move(document)});
      pending_slots.push_back(slot);
    }
    ++report.documents;
    return pending.size() >= kRecoveryBatch ? flush() : absl::OkStatus();
  };
  if (status.ok()) {
    std::string stopped;
    auto read = ReadFrames(fd, visit, &stopped);
    if (!read.ok()) status = read.status();
    else if (!stopped.empty()) status = absl::DataLossError(stopped);
    else if (!ended) status = absl::DataLossError("no end marker");
    if (status.ok()) status = flush();
  }
  ::close(fd);
  if (!status.ok()) {
    return absl::DataLossError(StrCat(path, " is damaged (", ToStd(status.message()), "); move it aside to start without it"));
  }
  // A graph file the snapshot does not name is left from a crash: removed.
  const std::string graph_name = graph.has_value() ? GraphName(report.sequence) : "";
  RemoveOtherGraphs(dir, graph_name);
  if (version == 2) {
    const std::string graph_path = graph.has_value() ? StrCat(dir, "/", graph_name) : "";
    if (auto s = collection.FinishRestore(graph_path, graph.value_or(GraphFile{}), &report.graph_problem); !s.ok()) {
      return s;
    }
    report.graph_loaded = graph.has_value() && report.graph_problem.empty();
  }
  return report;
}

}  // namespace ortserve::retrieval
