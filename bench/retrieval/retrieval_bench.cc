// SPDX-License-Identifier: Apache-2.0
// retrieval_bench [--n N] [--dim D] [--queries Q] [--ef-construction E] [--ef-search S] [--m M]
//                 [--fsync always|never] [--exact-threshold T] [--dir DIR]
//
// One collection of N random unit-normal vectors (cosine), written through a
// CollectionStore in batches of 256 (log + apply, as the HTTP route does):
//   insert/s            documents per second over the whole load
//   recall@10           HNSW's top 10 against the exact scan's, averaged over Q queries
//   hnsw q/s, exact q/s single-threaded queries per second
//   recovery s          a child process loads the collection with snapshots
//                       off (everything in the log), is SIGKILLed, and the
//                       store is reopened: replay + HNSW rebuild
// With --exact-threshold 10000000 no graph is built: the load and the
// recovery then time the log alone, and queries are exact scans.
// Random vectors are the hard case for HNSW (no clusters); real embeddings
// score higher recall at the same ef.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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
  uint32_t m = 16;
  uint32_t ef_construction = 100;
  uint32_t ef_search = 64;
  uint32_t exact_threshold = 1000;  // 10000000: no graph (log and exact scan only)
  std::string fsync = "always";
  std::string dir = "/tmp/retrieval_bench";
};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::vector<float> RandomVector(std::mt19937& rng, uint32_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
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

// Writes args.n vectors (seeded: the same set every time); returns seconds.
double Load(CollectionStore& store, const Args& args) {
  std::mt19937 rng(1234);
  const auto start = Clock::now();
  std::vector<Change> batch;
  for (size_t i = 0; i < args.n; ++i) {
    batch.push_back(Change{Change::Kind::kUpsert, Document{"v" + std::to_string(i), RandomVector(rng, args.dim),
                                                           "{\"i\":" + std::to_string(i) + "}"}});
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
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::filesystem::remove_all(args.dir);

  // 1. Load through the store (snapshots off) in a child, which reports on a
  // pipe once every write is acknowledged; then kill -9 it.
  int done[2];
  if (pipe(done) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    close(done[0]);
    auto store = Open(args, uint64_t{1} << 40);
    if (!store->Create("bench", "c", Info(args)).ok()) return 1;
    const double seconds = Load(*store, args);
    char line[256];
    const int n = std::snprintf(line, sizeof line, "insert: %zu documents in %.1f s = %.0f/s (fsync %s, batches of 256)\n",
                                args.n, seconds, args.n / seconds, args.fsync.c_str());
    if (write(done[1], line, static_cast<size_t>(n)) != n) return 1;
    for (;;) pause();  // Killed by the parent.
  }
  close(done[1]);
  char line[256] = {};
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
  const uintmax_t log_bytes = std::filesystem::file_size(args.dir + "/t_bench/c_c/wal.log", ec);
  std::printf("killed the loader (signal %d); log %.1f MB\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0,
              static_cast<double>(log_bytes) / 1e6);
  std::fflush(stdout);

  const auto reopen = Clock::now();
  auto store = Open(args, uint64_t{1} << 40);
  const double recovery = Seconds(reopen);
  auto stats = store->Stats("bench", "c");
  std::printf("recovery: %.1f s for %llu documents (replay + HNSW rebuild)\n", recovery,
              static_cast<unsigned long long>(stats->documents));
  std::fflush(stdout);

  // 2. Recall@10 and queries/s.
  std::mt19937 rng(99);
  std::vector<std::vector<float>> queries;
  for (size_t q = 0; q < args.queries; ++q) queries.push_back(RandomVector(rng, args.dim));
  const Filter none;
  std::vector<std::vector<Hit>> approx(queries.size());
  auto start = Clock::now();
  for (size_t q = 0; q < queries.size(); ++q) approx[q] = *store->Query("bench", "c", queries[q], 10, none);
  const double hnsw_qps = queries.size() / Seconds(start);
  const size_t exact_queries = std::min<size_t>(queries.size(), args.n >= 1000000 ? 100 : 300);
  size_t found = 0;
  start = Clock::now();
  std::vector<std::vector<Hit>> exact(exact_queries);
  for (size_t q = 0; q < exact_queries; ++q) exact[q] = *store->Query("bench", "c", queries[q], 10, none, true);
  const double exact_qps = exact_queries / Seconds(start);
  for (size_t q = 0; q < exact_queries; ++q) {
    for (const Hit& a : approx[q]) {
      for (const Hit& e : exact[q]) found += a.id == e.id;
    }
  }
  if (stats->indexed) {
    std::printf("recall@10: %.3f over %zu queries (M %u, ef_construction %u, ef_search %u)\n",
                static_cast<double>(found) / (10.0 * exact_queries), exact_queries, args.m, args.ef_construction,
                args.ef_search);
    std::printf("queries/s: hnsw %.0f, exact %.1f (one thread)\n", hnsw_qps, exact_qps);
  } else {
    std::printf("no graph (exact_threshold %u): queries/s exact %.1f (one thread)\n", args.exact_threshold,
                exact_qps);
  }
  // 3. Snapshot time, for the record.
  start = Clock::now();
  if (auto s = store->Snapshot("bench", "c"); !s.ok()) return 1;
  std::printf("snapshot: %.1f s\n", Seconds(start));
  store.reset();
  std::filesystem::remove_all(args.dir);
  return 0;
}
