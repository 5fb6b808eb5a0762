// SPDX-License-Identifier: Apache-2.0
#include "retrieval/collection_store.h"

#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "retrieval/snapshot.h"

namespace ortserve::retrieval {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxInfoBytes = 4096;
constexpr size_t kMaxModelNameBytes = 256;

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

std::string TenantDir(const std::string& root, std::string_view tenant) { return StrCat(root, "/t_", tenant); }

// Reads a small file whole (at most `limit` bytes).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::DataLossError(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  std::string out(limit + 1, '\0');
  size_t have = 0;
  while (have < out.size()) {
    const ssize_t n = ::read(fd, out.data() + have, out.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  ::close(fd);
  if (have > limit) return absl::DataLossError(StrCat(path, " is longer than ", limit, " bytes"));
  out.resize(have);
  return out;
}

}  // namespace

// One open collection. Changes hold write_mu from check to log to apply, so
// the log's order is the order they were applied in; queries do not take it.
struct CollectionStore::Entry {
  std::string tenant, name, dir;
  CollectionInfo info;
  std::unique_ptr<Collection> collection;
  std::unique_ptr<WalWriter> wal;
  absl::Mutex write_mu;
  uint64_t next_sequence ABSL_GUARDED_BY(write_mu) = 1;
  bool dropped ABSL_GUARDED_BY(write_mu) = false;
};

absl::Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.' ||
      !std::all_of(name.begin(), name.end(), IsNameByte)) {
    return absl::InvalidArgumentError(
        StrCat("collection name must be 1 to 64 of [A-Za-z0-9._-], not starting with '.'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTenantName(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 128 || !std::all_of(tenant.begin(), tenant.end(), IsNameByte)) {
    return absl::PermissionDeniedError("the credential's tenant cannot own collections (it must be 1 to 128 of "
                                       "[A-Za-z0-9._-])");
  }
  return absl::OkStatus();
}

std::string InfoToJson(const CollectionInfo& info) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("model");
  w.String(info.model.data(), static_cast<rapidjson::SizeType>(info.model.size()));
  w.Key("dimension");
  w.Uint(info.params.dimension);
  w.Key("metric");
  const std::string_view metric = MetricName(info.params.metric);
  w.String(metric.data(), static_cast<rapidjson::SizeType>(metric.size()));
  w.Key("m");
  w.Uint(info.params.m);
  w.Key("ef_construction");
  w.Uint(info.params.ef_construction);
  w.Key("ef_search");
  w.Uint(info.params.ef_search);
  w.Key("exact_threshold");
  w.Uint(info.params.exact_threshold);
  w.Key("max_bytes");
  w.Uint64(info.params.max_bytes);
  w.EndObject();
  return buffer.GetString();
}

absl::StatusOr<CollectionInfo> InfoFromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (json.size() > kMaxInfoBytes || parser.parse(json.data(), json.size()).get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("collection info is not a JSON object");
  }
  CollectionInfo info;
  std::string_view text;
  if (object["model"].get(text) != simdjson::SUCCESS || text.size() > kMaxModelNameBytes) {
    return absl::InvalidArgumentError("collection info lacks 'model'");
  }
  info.model.assign(text);
  if (object["metric"].get(text) != simdjson::SUCCESS) return absl::InvalidArgumentError("collection info lacks 'metric'");
  auto metric = ParseMetric(text);
  if (!metric.ok()) return metric.status();
  info.params.metric = *metric;
  auto number = [&](const char* key, uint64_t& out) -> absl::Status {
    if (object[key].get(out) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat("collection info lacks '", key, "'"));
    }
    return absl::OkStatus();
  };
  uint64_t dimension = 0, m = 0, efc = 0, efs = 0, exact = 0;
  for (auto [key, out] : {std::pair{"dimension", &dimension}, {"m", &m}, {"ef_construction", &efc},
                          {"ef_search", &efs}, {"exact_threshold", &exact}, {"max_bytes", &info.params.max_bytes}}) {
    if (auto s = number(key, *out); !s.ok()) return s;
  }
  if (dimension > kMaxDimension || m > 64 || efc > 4096 || efs > 4096 || exact > 10'000'000) {
    return absl::InvalidArgumentError("collection info is out of range");
  }
  info.params.dimension = static_cast<uint32_t>(dimension);
  info.params.m = static_cast<uint32_t>(m);
  info.params.ef_construction = static_cast<uint32_t>(efc);
  info.params.ef_search = static_cast<uint32_t>(efs);
  info.params.exact_threshold = static_cast<uint32_t>(exact);
  if (auto s = info.params.Validate(); !s.ok()) return s;
  return info;
}

CollectionStore::CollectionStore(Options options) : options_(std::move(options)) {}

CollectionStore::~CollectionStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

absl::StatusOr<std::unique_ptr<CollectionStore>> CollectionStore::Open(Options options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("the collections directory is not set");
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return absl::InternalError(StrCat("cannot create ", options.dir, ": ", ec.message()));
  auto store = std::unique_ptr<CollectionStore>(new CollectionStore(std::move(options)));
  const std::string& root = store->options_.dir;
  // Collections dropped while the server went down finish going.
  fs::remove_all(StrCat(root, "/trash"), ec);
  for (const auto& tenant_dir : fs::directory_iterator(root, ec)) {
    const std::string tenant_file = tenant_dir.path().filename().string();
    if (!tenant_dir.is_directory() || !tenant_file.starts_with("t_")) continue;
    const std::string tenant = tenant_file.substr(2);
    if (!ValidateTenantName(tenant).ok()) continue;
    for (const auto& dir : fs::directory_iterator(tenant_dir.path(), ec)) {
      const std::string file = dir.path().filename().string();
      if (file.starts_with(".new_")) {  // A creation the crash interrupted: never acknowledged.
        std::error_code ignored;
        fs::remove_all(dir.path(), ignored);
        continue;
      }
      if (!dir.is_directory() || !file.starts_with("c_")) continue;
      const std::string name = file.substr(2);
      if (!ValidateCollectionName(name).ok()) continue;
      auto entry = store->Recover(tenant, name, dir.path().string());
      if (!entry.ok()) return entry.status();
      absl::MutexLock lock(&store->mu_);
      store->collections_[{tenant, name}] = *std::move(entry);
    }
  }
  if (ec) return absl::InternalError(StrCat("cannot list ", root, ": ", ec.message()));
  for (int i = 0; i < std::max(1, store->options_.workers); ++i) {
    store->workers_.emplace_back([s = store.get()] { s->Work(); });
  }
  return store;
}

absl::StatusOr<std::shared_ptr<CollectionStore::Entry>> CollectionStore::Recover(const std::string& tenant,
                                                                                 const std::string& name,
                                                                                 const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  RecoveryReport report;
  report.tenant = tenant;
  report.name = name;
  auto text = ReadSmallFile(StrCat(dir, "/collection.json"), kMaxInfoBytes);
  if (!text.ok()) return text.status();
  auto info = InfoFromJson(*text);
  if (!info.ok()) return absl::DataLossError(StrCat(dir, "/collection.json: ", ToStd(info.status().message())));
  auto entry = std::make_shared<Entry>();
  entry->tenant = tenant;
  entry->name = name;
  entry->dir = dir;
  entry->info = *info;
  auto collection = Collection::Create(info->params);
  if (!collection.ok()) return collection.status();
  entry->collection = *std::move(collection);
  Collection& c = *entry->collection;

  // The snapshot: written whole and renamed into place, so any damage is not
  // a crash's doing; it stops recovery of this collection (and the server).
  // A graph file that does not check out is only a cost: it is rebuilt.
  auto snapshot = ReadSnapshot(dir, c);
  if (!snapshot.ok()) return snapshot.status();
  const uint64_t snapshot_sequence = snapshot->sequence;
  report.snapshot_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.snapshot_documents = snapshot->documents;
  report.graph_loaded = snapshot->graph_loaded;
  report.graph_problem = snapshot->graph_problem;
  if (!report.graph_problem.empty()) {
    spdlog::warn("collection {}/{}: its snapshot's graph was not used ({}); rebuilt from the documents", tenant, name,
                 report.graph_problem);
  }

  // The log: replayed past the snapshot's sequence; a torn or corrupt tail
  // is cut off (such a write was never acknowledged).
  const std::string log_path = StrCat(dir, "/wal.log");
  uint64_t valid = 0, last_sequence = snapshot_sequence, file_size = 0;
  if (const int fd = ::open(log_path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    file_size = static_cast<uint64_t>(std::max<off_t>(0, ::lseek(fd, 0, SEEK_END)));
    ::lseek(fd, 0, SEEK_SET);
    std::string stopped;
    bool undecodable = false;
    auto read = ReadFrames(
        fd,
        [&](std::string_view payload) -> absl::Status {
          auto batch = DecodeBatch(payload);
          if (!batch.ok() || (batch->sequence <= last_sequence && batch->sequence > snapshot_sequence)) {
            undecodable = true;  // A frame whose CRC holds but whose content does not: stop here.
            return absl::CancelledError();
          }
          if (batch->sequence > snapshot_sequence) {
            auto metadata = c.Check(batch->changes);
            if (metadata.ok()) {
              if (auto s = c.Apply(batch->changes, *std::move(metadata)); !s.ok()) return s;
            } else {
              spdlog::warn("collection {}/{}: log batch {} no longer applies ({}); skipped", tenant, name,
                           batch->sequence, ToStd(metadata.status().message()));
            }
            last_sequence = batch->sequence;
            ++report.log_batches;
          }
          valid += 8 + payload.size();
          return absl::OkStatus();
        },
        &stopped);
    ::close(fd);
    if (!read.ok() && !undecodable) return read.status();
    if (undecodable) stopped = "a frame whose content does not decode";
    report.dropped_reason = stopped;
  }
  report.dropped_bytes = file_size > valid ? file_size - valid : 0;
  auto wal = WalWriter::Open(log_path, valid, options_.fsync);
  if (!wal.ok()) return wal.status();
  entry->wal = *std::move(wal);
  {
    absl::MutexLock lock(&entry->write_mu);
    entry->next_sequence = last_sequence + 1;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (report.dropped_bytes > 0) {
    spdlog::warn("collection {}/{}: cut {} bytes off its log ({}); those writes were never acknowledged", tenant,
                 name, report.dropped_bytes, report.dropped_reason.empty() ? "a torn frame" : report.dropped_reason);
  }
  spdlog::info("collection {}/{} recovered: {} documents from the snapshot (graph {}) in {:.3f} s, then {} log "
               "batches: {:.3f} s in all",
               tenant, name, report.snapshot_documents,
               report.graph_loaded ? "loaded" : (c.Stats().indexed ? "rebuilt" : "none"), report.snapshot_seconds,
               report.log_batches, report.seconds);
  recovery_.push_back(std::move(report));
  return entry;
}

absl::Status CollectionStore::Submit(absl::AnyInvocable<void() &&> work) {
  absl::MutexLock lock(&queue_mu_);
  if (stopping_) return absl::UnavailableError("the collection store is stopping");
  if (queue_.size() >= options_.max_pending) {
    return absl::UnavailableError(StrCat("the collection store has ", options_.max_pending,
                                         " operations waiting; retry later"));
  }
  queue_.push_back(std::move(work));
  return absl::OkStatus();
}

void CollectionStore::Work() {
  for (;;) {
    absl::AnyInvocable<void() &&> work;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](CollectionStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->queue_mu_) { return s->stopping_ || !s->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // Stopping, nothing left.
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(work)();
  }
}

absl::StatusOr<std::shared_ptr<CollectionStore::Entry>> CollectionStore::Find(std::string_view tenant,
                                                                              std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = collections_.find(Key(std::string(tenant), std::string(name)));
  if (it == collections_.end()) return absl::NotFoundError(StrCat("no collection '", name, "'"));
  return it->second;
}

absl::StatusOr<bool> CollectionStore::Create(std::string_view tenant, std::string_view name,
                                             const CollectionInfo& info) {
  if (auto s = ValidateTenantName(tenant); !s.ok()) return s;
  if (auto s = ValidateCollectionName(name); !s.ok()) return s;
  if (auto s = info.params.Validate(); !s.ok()) return s;
  if (info.params.max_bytes > options_.max_collection_bytes) {
    return absl::InvalidArgumentError(StrCat("'max_bytes' may be at most ", options_.max_collection_bytes,
                                             " (--collections-max-bytes)"));
  }
  if (info.model.size() > kMaxModelNameBytes) return absl::InvalidArgumentError("'model' is too long");
  absl::MutexLock lock(&mu_);
  const Key key{std::string(tenant), std::string(name)};
  if (auto it = collections_.find(key); it != collections_.end()) {
    if (it->second->info == info) return false;
    return absl::AlreadyExistsError(StrCat("collection '", name, "' exists with other parameters (",
                                           InfoToJson(it->second->info), ")"));
  }
  size_t owned = 0;
  for (auto it = collections_.lower_bound(Key(key.first, "")); it != collections_.end() && it->first.first == key.first;
       ++it) {
    ++owned;
  }
  if (owned >= options_.max_collections_per_tenant) {
    return absl::ResourceExhaustedError(
        StrCat("the tenant has ", owned, " collections, the most allowed; drop one first"));
  }
  // Built in a staging folder and renamed into place: a crash leaves either
  // no collection or a whole one.
  const std::string tenant_dir = TenantDir(options_.dir, tenant);
  const std::string staging = StrCat(tenant_dir, "/.new_", name);
  const std::string dir = StrCat(tenant_dir, "/c_", name);
  std::error_code ec;
  if (fs::create_directories(tenant_dir, ec); ec) {
    return absl::InternalError(StrCat("cannot create ", tenant_dir, ": ", ec.message()));
  }
  if (auto s = SyncDirectory(options_.dir); !s.ok()) return s;
  fs::remove_all(staging, ec);
  if (fs::create_directory(staging, ec); ec) {
    return absl::InternalError(StrCat("cannot create ", staging, ": ", ec.message()));
  }
  if (auto s = WriteFileAtomically(staging, "collection.json", InfoToJson(info)); !s.ok()) return s;
  if (auto s = WriteFileAtomically(staging, "wal.log", ""); !s.ok()) return s;
  if (::rename(staging.c_str(), dir.c_str()) != 0) {
    return absl::InternalError(StrCat("cannot rename ", staging, ": ", std::strerror(errno)));
  }
  if (auto s = SyncDirectory(tenant_dir); !s.ok()) return s;
  auto entry = std::make_shared<Entry>();
  entry->tenant = key.first;
  entry->name = key.second;
  entry->dir = dir;
  entry->info = info;
  auto collection = Collection::Create(info.params);
  if (!collection.ok()) return collection.status();
  entry->collection = *std::move(collection);
  auto wal = WalWriter::Open(StrCat(dir, "/wal.log"), 0, options_.fsync);
  if (!wal.ok()) return wal.status();
  entry->wal = *std::move(wal);
  collections_[key] = std::move(entry);
  return true;
}

absl::Status CollectionStore::Drop(std::string_view tenant, std::string_view name) {
  std::string trash;
  {
    absl::MutexLock lock(&mu_);
    auto it = collections_.find(Key(std::string(tenant), std::string(name)));
    if (it == collections_.end()) return absl::NotFoundError(StrCat("no collection '", name, "'"));
    std::shared_ptr<Entry> entry = it->second;
    absl::MutexLock write_lock(&entry->write_mu);
    // Renamed out of its tenant's folder first: once that rename is synced
    // the collection is gone for recovery too; removing its files can wait.
    std::error_code ec;
    fs::create_directories(StrCat(options_.dir, "/trash"), ec);
    trash = StrCat(options_.dir, "/trash/", ++trash_counter_, "_", ::getpid(), "_",
                   std::chrono::steady_clock::now().time_since_epoch().count());
    if (::rename(entry->dir.c_str(), trash.c_str()) != 0) {
      return absl::InternalError(StrCat("cannot remove ", entry->dir, ": ", std::strerror(errno)));
    }
    if (auto s = SyncDirectory(TenantDir(options_.dir, tenant)); !s.ok()) return s;
    entry->dropped = true;
    collections_.erase(it);
  }
  std::error_code ec;
  fs::remove_all(trash, ec);
  return absl::OkStatus();
}

absl::StatusOr<CollectionInfo> CollectionStore::Info(std::string_view tenant, std::string_view name) const {
  absl::MutexLock lock(&mu_);  // SetEfSearch changes info under it.
  auto it = collections_.find(Key(std::string(tenant), std::string(name)));
  if (it == collections_.end()) return absl::NotFoundError(StrCat("no collection '", name, "'"));
  return it->second->info;
}

absl::StatusOr<CollectionStats> CollectionStore::Stats(std::string_view tenant, std::string_view name) const {
  auto entry = Find(tenant, name);
  if (!entry.ok()) return entry.status();
  return (*entry)->collection->Stats();
}

std::vector<std::string> CollectionStore::List(std::string_view tenant) const {
  std::vector<std::string> names;
  absl::MutexLock lock(&mu_);
  const std::string t(tenant);
  for (auto it = collections_.lower_bound(Key(t, "")); it != collections_.end() && it->first.first == t; ++it) {
    names.push_back(it->first.second);
  }
  return names;
}

absl::Status CollectionStore::Write(std::string_view tenant, std::string_view name, std::vector<Change> changes) {
  auto found = Find(tenant, name);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  uint64_t logged = 0;
  bool snapshot = false;
  {
    absl::MutexLock lock(&entry.write_mu);
    if (entry.dropped) return absl::NotFoundError(StrCat("no collection '", name, "'"));
    auto metadata = entry.collection->Check(changes);
    if (!metadata.ok()) return metadata.status();
    Batch batch{.sequence = entry.next_sequence, .changes = std::move(changes)};
    auto payload = EncodeBatch(batch);
    if (!payload.ok()) return payload.status();
    auto end = entry.wal->Append(*payload);
    if (!end.ok()) return end.status();
    logged = *end;
    ++entry.next_sequence;
    if (auto s = entry.collection->Apply(batch.changes, *std::move(metadata)); !s.ok()) return s;
    snapshot = entry.wal->size() > options_.snapshot_log_bytes;
  }
  // Outside the write lock, so that writers arriving meanwhile share this
  // fdatasync (group commit).
  if (auto s = entry.wal->Sync(logged); !s.ok()) return s;
  if (snapshot) {
    absl::MutexLock lock(&entry.write_mu);
    if (!entry.dropped && entry.wal->size() > options_.snapshot_log_bytes) {
      // The write is durable already; a failed snapshot only leaves the log long.
      if (auto s = SnapshotLocked(entry); !s.ok()) {
        spdlog::warn("collection {}/{}: snapshot failed: {}", entry.tenant, entry.name, ToStd(s.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Hit>> CollectionStore::Query(std::string_view tenant, std::string_view name,
                                                        std::vector<float> vector, size_t top_k,
                                                        const Filter& filter, bool exact) const {
  auto entry = Find(tenant, name);
  if (!entry.ok()) return entry.status();
  return (*entry)->collection->Search(std::move(vector), top_k, filter, exact);
}

absl::StatusOr<Document> CollectionStore::Get(std::string_view tenant, std::string_view name,
                                              std::string_view id) const {
  auto entry = Find(tenant, name);
  if (!entry.ok()) return entry.status();
  return (*entry)->collection->Get(id);
}

absl::Status CollectionStore::SetEfSearch(std::string_view tenant, std::string_view name, uint32_t ef_search) {
  // mu_ then write_mu, as Drop takes them; entry->info is read under mu_.
  absl::MutexLock lock(&mu_);
  auto it = collections_.find(Key(std::string(tenant), std::string(name)));
  if (it == collections_.end()) return absl::NotFoundError(StrCat("no collection '", name, "'"));
  Entry& entry = *it->second;
  absl::MutexLock write_lock(&entry.write_mu);
  CollectionInfo info = entry.info;
  info.params.ef_search = ef_search;
  if (auto s = info.params.Validate(); !s.ok()) return s;
  if (auto s = WriteFileAtomically(entry.dir, "collection.json", InfoToJson(info)); !s.ok()) return s;
  entry.info = info;
  return entry.collection->SetEfSearch(ef_search);
}

absl::Status CollectionStore::Snapshot(std::string_view tenant, std::string_view name) {
  auto found = Find(tenant, name);
  if (!found.ok()) return found.status();
  absl::MutexLock lock(&(*found)->write_mu);
  if ((*found)->dropped) return absl::NotFoundError(StrCat("no collection '", name, "'"));
  return SnapshotLocked(**found);
}

absl::Status CollectionStore::SnapshotLocked(Entry& entry) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Caller holds entry.write_mu: no change runs meanwhile (queries do), so
  // the documents and the graph written are the same state.
  if (auto s = WriteSnapshot(entry.dir, entry.next_sequence - 1, *entry.collection); !s.ok()) return s;
  // From here the snapshot holds every logged change; a crash before the log
  // is emptied replays nothing twice (batches at or below its sequence are skipped).
  return entry.wal->Truncate();
}

}  // namespace ortserve::retrieval
