// SPDX-License-Identifier: Apache-2.0
// retrieval_bench [--n N] [--dim D] [--queries Q] [--ef-construction E] [--ef-search S] [--m M]
//                 [--fsync always|never] [--exact-threshold T] [--dir DIR]
//                 [--vectors FILE] [--ef-sweep 16,32,64,128,256] [--snapshot 1|0] [--rebuild-too 0|1]
//
// One collection of N vectors (cosine), written through a CollectionStore
// in batches of 256 (log + apply, as the HTTP route does):
//   insert/s            documents per second over the whole load
//   recall@10           HNSW's top 10 against the exact scan's, averaged over
//                       the queries (at most 300; 100 from 10^6 on)
//   hnsw q/s, exact q/s single-threaded queries per second
//   recovery s          a child process loads the collection, takes a
//                       snapshot (documents and graph), writes 1% more
//                       documents into the log, is SIGKILLed, and the store
//                       is reopened: snapshot + graph load + log replay.
//                       --snapshot 0: no snapshot, the whole load is replayed
//                       from the log and the graph rebuilt; --rebuild-too 1:
//                       also reopen once more without the graph file
// The vectors are random unit-normal ones, or with --vectors the first N of
// FILE (float32, D values each, as bench/retrieval/embed_corpus.py writes),
// whose next Q vectors are the queries. --ef-sweep measures recall@10 and
// queries/s at each ef_search (CollectionStore::SetEfSearch) on the same
// graph. With --exact-threshold 10000000 no graph is built: the load and the
// recovery then time the log alone, and queries are exact scans.
// Random vectors are the hard case for HNSW (no clusters, every point about
// equally far); real embeddings score higher recall at the same ef.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "retrieval/collection_store.h"

namespace {

using namespace ortserve::retrieval;  // NOLINT(build/namespaces): a small program.
using Clock = std::chrono::steady_clock;

struct Args {
  size_t n = 100000;
  uint32_t dim = 64;
  size_t queries = 1000;
  uint32_t m = CollectionParams{}.m;  // The collection's defaults.
  uint32_t ef_construction = CollectionParams{}.ef_construction;
  uint32_t ef_search = CollectionParams{}.ef_search;
  uint32_t exact_threshold = 1000;  // 10000000: no graph (log and exact scan only)
  std::string fsync = "always";
  std::string dir = "/tmp/retrieval_bench";
  std::string vectors;              // empty: random vectors
  std::vector<uint32_t> ef_sweep;   // empty: ef_search only
  bool snapshot = true;             // false: recovery replays the whole log
  bool rebuild_too = false;         // also time recovery without the graph file
};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::vector<float> RandomVector(std::mt19937& rng, uint32_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

// N + Q vectors: documents then queries.
struct Data {
  std::vector<std::vector<float>> documents, queries;
};

Data MakeData(const Args& args) {
  Data data;
  if (args.vectors.empty()) {
    std::mt19937 rng(1234);
    for (size_t i = 0; i < args.n; ++i) data.documents.push_back(RandomVector(rng, args.dim));
    std::mt19937 query_rng(99);
    for (size_t q = 0; q < args.queries; ++q) data.queries.push_back(RandomVector(query_rng, args.dim));
    return data;
  }
  std::ifstream in(args.vectors, std::ios::binary);
  std::vector<float> v(args.dim);
  for (size_t i = 0; i < args.n + args.queries; ++i) {
    if (!in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)))) {
      std::fprintf(stderr, "%s holds fewer than %zu vectors of %u values\n", args.vectors.c_str(),
                   args.n + args.queries, args.dim);
      std::exit(1);
    }
    (i < args.n ? data.documents : data.queries).push_back(v);
  }
  return data;
}

CollectionInfo Info(const Args& args) {
  CollectionInfo info;
  info.params.dimension = args.dim;
  info.params.metric = Metric::kCosine;
  info.params.m = args.m;
  info.params.ef_construction = args.ef_construction;
  info.params.ef_search = args.ef_search;
  info.params.exact_threshold = args.exact_threshold;
  info.params.max_bytes = uint64_t{1} << 40;
  return info;
}

std::unique_ptr<CollectionStore> Open(const Args& args, uint64_t snapshot_bytes) {
  CollectionStore::Options options;
  options.dir = args.dir;
  options.fsync = *ParseFsyncPolicy(args.fsync);
  options.snapshot_log_bytes = snapshot_bytes;
  options.max_collection_bytes = uint64_t{1} << 40;
  auto store = CollectionStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(store.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(store);
}

// Writes the documents; returns seconds.
double Load(CollectionStore& store, const Args& args, const Data& data) {
  const auto start = Clock::now();
  std::vector<Change> batch;
  for (size_t i = 0; i < args.n; ++i) {
    batch.push_back(Change{Change::Kind::kUpsert,
                           Document{"v" + std::to_string(i), data.documents[i], "{\"i\":" + std::to_string(i) + "}"}});
    if (batch.size() == 256 || i + 1 == args.n) {
      if (auto s = store.Write("bench", "c", std::move(batch)); !s.ok()) {
        std::fprintf(stderr, "write: %s\n", std::string(s.message()).c_str());
        std::exit(1);
      }
      batch.clear();
    }
  }
  return Seconds(start);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // Lines appear as they come, also in a file.
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--n") args.n = std::stoull(value);
    else if (flag == "--dim") args.dim = static_cast<uint32_t>(std::stoul(value));
    else if (flag == "--queries") args.queries = std::stoull(value);
    else if (flag == "--m") args.m = static_cast<uint32_t>(std::stoul(value));
    else if (flag == "--ef-construction") args.ef_construction = static_cast<uint32_t>(std::stoul(value));
    else if (flag == "--ef-search") args.ef_search = static_cast<uint32_t>(std::stoul(value));
    else if (flag == "--fsync") args.fsync = value;
    else if (flag == "--exact-threshold") args.exact_threshold = static_cast<uint32_t>(std::stoul(value));
    else if (flag == "--dir") args.dir = value;
    else if (flag == "--vectors") args.vectors = value;
    else if (flag == "--snapshot") args.snapshot = value == "1";
    else if (flag == "--rebuild-too") args.rebuild_too = value == "1";
    else if (flag == "--ef-sweep") {
      for (size_t at = 0; at < value.size();) {
        const size_t comma = std::min(value.find(',', at), value.size());
        args.ef_sweep.push_back(static_cast<uint32_t>(std::stoul(value.substr(at, comma - at))));
        at = comma + 1;
      }
    }
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::filesystem::remove_all(args.dir);
  const Data data = MakeData(args);
  std::printf("vectors: %zu documents, %zu queries, %u values (%s)\n", args.n, args.queries, args.dim,
              args.vectors.empty() ? "random unit-normal" : args.vectors.c_str());

  // 1. Load through the store (snapshots off) in a child, which reports on a
  // pipe once every write is acknowledged; then kill -9 it.
  int done[2];
  if (pipe(done) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    close(done[0]);
    auto store = Open(args, uint64_t{1} << 40);
    if (!store->Create("bench", "c", Info(args)).ok()) return 1;
    const double seconds = Load(*store, args, data);
    char line[512];
    int n = std::snprintf(line, sizeof line, "insert: %zu documents in %.1f s = %.0f/s (fsync %s, batches of 256)\n",
                          args.n, seconds, args.n / seconds, args.fsync.c_str());
    if (args.snapshot) {
      // The snapshot (documents and graph), then a tail of 1% more
      // documents (near copies of the first ones, new ids) in the log only:
      // recovery loads the first and replays the second into the loaded graph.
      const auto start = Clock::now();
      if (!store->Snapshot("bench", "c").ok()) return 1;
      const double snapshot = Seconds(start);
      std::vector<Change> tail;
      std::mt19937 rng(5);
      std::normal_distribution<float> noise(0, 0.01f);
      for (size_t i = 0; i < args.n / 100; ++i) {
        std::vector<float> v = data.documents[i];
        for (float& x : v) x += noise(rng);
        tail.push_back(Change{Change::Kind::kUpsert, Document{"t" + std::to_string(i), std::move(v), "{}"}});
        if (tail.size() == 256 || i + 1 == args.n / 100) {
          if (!store->Write("bench", "c", std::move(tail)).ok()) return 1;
          tail.clear();
        }
      }
      n += std::snprintf(line + n, sizeof line - static_cast<size_t>(n),
                         "snapshot with the graph: %.1f s; then %zu more documents in the log\n", snapshot,
                         args.n / 100);
    }
    if (write(done[1], line, static_cast<size_t>(n)) != n) return 1;
    for (;;) pause();  // Killed by the parent.
  }
  close(done[1]);
  char line[512] = {};
  const ssize_t got = read(done[0], line, sizeof line - 1);
  if (got <= 0) {
    std::fprintf(stderr, "the loader failed\n");
    return 1;
  }
  std::fputs(line, stdout);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  std::error_code ec;
  const std::string dir = args.dir + "/t_bench/c_c";
  std::printf("killed the loader (signal %d); log %.1f MB, snapshot %.1f MB\n",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0,
              static_cast<double>(std::filesystem::file_size(dir + "/wal.log", ec)) / 1e6,
              static_cast<double>(std::filesystem::file_size(dir + "/snapshot.bin", ec)) / 1e6);
  std::fflush(stdout);

  auto reopen = Clock::now();
  auto store = Open(args, uint64_t{1} << 40);
  double recovery = Seconds(reopen);
  auto stats = store->Stats("bench", "c");
  std::printf("recovery: %.1f s for %llu documents, %.1f s of it the snapshot (%s)\n", recovery,
              static_cast<unsigned long long>(stats->documents), store->recovery()[0].snapshot_seconds,
              stats->index_loaded ? "snapshot + graph loaded + log replayed into it"
              : stats->index_builds > 0 ? "graph rebuilt from the documents"
                                        : "no graph");
  std::fflush(stdout);
  if (args.rebuild_too && stats->index_loaded) {
    // The same recovery with the graph file gone: what it saves.
    store.reset();
    for (const auto& file : std::filesystem::directory_iterator(dir)) {
      if (file.path().filename().string().starts_with("graph-")) std::filesystem::remove(file.path());
    }
    reopen = Clock::now();
    store = Open(args, uint64_t{1} << 40);
    recovery = Seconds(reopen);
    std::printf("recovery without the graph file: %.1f s, %.1f s of it the snapshot (graph rebuilt: %s)\n",
                recovery, store->recovery()[0].snapshot_seconds,
                store->Stats("bench", "c")->index_builds > 0 ? "yes" : "no");
    std::fflush(stdout);
  }

  // 2. Recall@10 and queries/s: the exact scan's top 10 is the truth.
  const std::vector<std::vector<float>>& queries = data.queries;
  const Filter none;
  const size_t exact_queries = std::min<size_t>(queries.size(), args.n >= 1000000 ? 100 : 300);
  auto start = Clock::now();
  std::vector<std::vector<Hit>> exact(exact_queries);
  for (size_t q = 0; q < exact_queries; ++q) exact[q] = *store->Query("bench", "c", queries[q], 10, none, true);
  const double exact_qps = exact_queries / Seconds(start);
  if (!stats->indexed) {
    std::printf("no graph (exact_threshold %u): queries/s exact %.1f (one thread)\n", args.exact_threshold,
                exact_qps);
  } else {
    std::printf("exact scan: %.1f queries/s (one thread)\n", exact_qps);
    std::vector<uint32_t> sweep = args.ef_sweep;
    if (sweep.empty()) sweep.push_back(args.ef_search);
    std::printf("| ef_search | recall@10 | queries/s (one thread) |\n| ---: | ---: | ---: |\n");
    for (uint32_t ef : sweep) {
      if (auto s = store->SetEfSearch("bench", "c", ef); !s.ok()) {
        std::fprintf(stderr, "ef %u: %s\n", ef, std::string(s.message()).c_str());
        return 1;
      }
      std::vector<std::vector<Hit>> approx(queries.size());
      start = Clock::now();
      for (size_t q = 0; q < queries.size(); ++q) approx[q] = *store->Query("bench", "c", queries[q], 10, none);
      const double hnsw_qps = queries.size() / Seconds(start);
      size_t found = 0;
      for (size_t q = 0; q < exact_queries; ++q) {
        for (const Hit& a : approx[q]) {
          for (const Hit& e : exact[q]) found += a.id == e.id;
        }
      }
      std::printf("| %u | %.3f | %.0f |\n", ef, static_cast<double>(found) / (10.0 * exact_queries), hnsw_qps);
    }
    std::printf("(M %u, ef_construction %u; recall over %zu queries, queries/s over %zu)\n", args.m,
                args.ef_construction, exact_queries, queries.size());
  }
  // 3. Snapshot time, for the record.
  start = Clock::now();
  if (auto s = store->Snapshot("bench", "c"); !s.ok()) return 1;
  std::printf("snapshot: %.1f s\n", Seconds(start));
  store.reset();
  std::filesystem::remove_all(args.dir);
  return 0;
}
