// SPDX-License-Identifier: Apache-2.0
// The HNSW graph kept beside a collection's snapshot: recovery loads it
// instead of rebuilding it, answers exactly as before the restart, and falls
// back to a rebuild (never a crash) when the file is damaged, missing,
// hostile or another collection's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "retrieval/collection_store.h"
#include "retrieval/graph_file.h"
#include "retrieval/wal.h"

namespace ortserve::retrieval {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kDim = 16;

std::vector<float> RandomVector(std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

Change Upsert(std::string id, std::vector<float> v) {
  return Change{Change::Kind::kUpsert, Document{std::move(id), std::move(v), "{}"}};
}
Change Delete(std::string id) { return Change{Change::Kind::kDelete, Document{std::move(id), {}, {}}}; }

class GraphPersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/graph_persistence_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CollectionStore> OpenStore() {
    CollectionStore::Options options;
    options.dir = dir_;
    auto store = CollectionStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  static CollectionInfo Info() {
    CollectionInfo info;
    info.params.dimension = kDim;
    info.params.metric = Metric::kCosine;
    info.params.exact_threshold = 100;
    // Far from hnswlib's default of 10, which its loader leaves behind:
    // a breadth lost across the restart changes the answers below.
    info.params.ef_search = 200;
    return info;
  }
  std::string Dir() const { return dir_ + "/t_acme/c_notes"; }
  std::string GraphPath() const {
    for (const auto& file : fs::directory_iterator(Dir())) {
      if (file.path().filename().string().starts_with("graph-")) return file.path().string();
    }
    return "";
  }

  // 1500 documents with deletions and reused slots, a snapshot, then more
  // changes in the log only. Returns the queries' answers.
  std::vector<std::vector<Hit>> Fill(CollectionStore& store) {
    std::mt19937 rng(3);
    EXPECT_TRUE(*store.Create("acme", "notes", Info()));
    std::vector<Change> batch;
    for (int i = 0; i < 1500; ++i) {
      batch.push_back(Upsert("d" + std::to_string(i), RandomVector(rng)));
      if (batch.size() == 250) {
        EXPECT_TRUE(store.Write("acme", "notes", std::move(batch)).ok());
        batch.clear();
      }
    }
    for (int i = 0; i < 1500; i += 7) batch.push_back(Delete("d" + std::to_string(i)));
    for (int i = 0; i < 100; ++i) batch.push_back(Upsert("n" + std::to_string(i), RandomVector(rng)));  // Reused slots.
    EXPECT_TRUE(store.Write("acme", "notes", std::move(batch)).ok());
    EXPECT_TRUE(store.Snapshot("acme", "notes").ok());
    // In the log only: replayed into the loaded graph.
    batch.clear();
    for (int i = 1; i < 300; i += 11) batch.push_back(Delete("d" + std::to_string(i)));
    for (int i = 0; i < 50; ++i) batch.push_back(Upsert("t" + std::to_string(i), RandomVector(rng)));
    for (int i = 2; i < 200; i += 13) batch.push_back(Upsert("d" + std::to_string(i), RandomVector(rng)));
    EXPECT_TRUE(store.Write("acme", "notes", std::move(batch)).ok());
    return Answers(store);
  }
  static std::vector<std::vector<Hit>> Answers(const CollectionStore& store) {
    std::mt19937 rng(77);
    std::vector<std::vector<Hit>> answers;
    for (int q = 0; q < 40; ++q) {
      auto hits = store.Query("acme", "notes", RandomVector(rng), 10, Filter());
      EXPECT_TRUE(hits.ok()) << hits.status();
      answers.push_back(hits.ok() ? *hits : std::vector<Hit>{});
    }
    return answers;
  }
  static void ExpectSame(const std::vector<std::vector<Hit>>& a, const std::vector<std::vector<Hit>>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t q = 0; q < a.size(); ++q) {
      ASSERT_EQ(a[q].size(), b[q].size()) << "query " << q;
      for (size_t i = 0; i < a[q].size(); ++i) {
        EXPECT_EQ(a[q][i].id, b[q][i].id) << "query " << q << " rank " << i;
        EXPECT_EQ(a[q][i].score, b[q][i].score) << "query " << q << " rank " << i;
      }
    }
  }
  // Rewrites `path` through `edit`.
  static void Edit(const std::string& path, const std::function<void(std::string&)>& edit) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    in.close();
    edit(bytes);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::string dir_;
};

TEST_F(GraphPersistenceTest, RecoveryLoadsTheGraphAndAnswersAsBefore) {
  std::vector<std::vector<Hit>> before;
  {
    auto store = OpenStore();
    before = Fill(*store);
    EXPECT_FALSE(GraphPath().empty());
  }
  auto store = OpenStore();
  const CollectionStats stats = *store->Stats("acme", "notes");
  EXPECT_TRUE(stats.index_loaded);
  EXPECT_EQ(stats.index_builds, 0u) << "the graph was rebuilt, not loaded";
  ASSERT_EQ(store->recovery().size(), 1u);
  EXPECT_TRUE(store->recovery()[0].graph_loaded);
  EXPECT_EQ(store->recovery()[0].graph_problem, "");
  EXPECT_EQ(store->recovery()[0].log_batches, 1u);
  ExpectSame(before, Answers(*store));
  // Writes go on into the loaded graph, and the next snapshot replaces it.
  ASSERT_TRUE(store->Write("acme", "notes", {Upsert("late", std::vector<float>(kDim, 1.0f))}).ok());
  auto hits = store->Query("acme", "notes", std::vector<float>(kDim, 1.0f), 1, Filter());
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, "late");
  const std::string old_graph = GraphPath();
  ASSERT_TRUE(store->Snapshot("acme", "notes").ok());
  EXPECT_NE(GraphPath(), old_graph);
  EXPECT_FALSE(fs::exists(old_graph));
}

TEST_F(GraphPersistenceTest, DamagedOrMissingGraphIsRebuiltWithAReason) {
  struct Damage {
    const char* name;
    std::function<void(const std::string& path)> apply;
    const char* reason;  // In RecoveryReport::graph_problem.
  };
  const std::vector<Damage> damages = {
      {"a flipped byte", [](const std::string& p) { Edit(p, [](std::string& b) { b[b.size() / 2] ^= 0x20; }); },
       "CRC"},
      {"cut short", [](const std::string& p) { fs::resize_file(p, fs::file_size(p) - 100); }, "bytes"},
      {"empty", [](const std::string& p) { fs::resize_file(p, 0); }, "bytes"},
      {"removed", [](const std::string& p) { fs::remove(p); }, "cannot open"},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<std::vector<Hit>> before;
    {
      auto store = OpenStore();
      before = Fill(*store);
    }
    damage.apply(GraphPath().empty() ? Dir() + "/graph-missing" : GraphPath());
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    const CollectionStats stats = *store->Stats("acme", "notes");
    EXPECT_FALSE(stats.index_loaded);
    EXPECT_EQ(stats.index_builds, 1u);
    EXPECT_NE(store->recovery()[0].graph_problem.find(damage.reason), std::string::npos)
        << store->recovery()[0].graph_problem;
    // Every document is still found by its own vector.
    auto hits = store->Query("acme", "notes", store->Get("acme", "notes", "t7")->vector, 1, Filter());
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ((*hits)[0].id, "t7");
  }
}

// Header fields that disagree with the collection, each with a CRC that
// matches (a hostile or foreign file, not a torn one): refused before
// hnswlib reads it.
TEST_F(GraphPersistenceTest, GraphFileHeaderIsCheckedBeforeHnswlibReadsIt) {
  {
    auto store = OpenStore();
    Fill(*store);
  }
  const std::string original = GraphPath();
  ASSERT_FALSE(original.empty());
  const GraphShape shape{.dimension = kDim, .m = 16, .ef_construction = 200, .max_nodes = 1600, .capacity = 3200};
  const std::string copy = dir_ + "/hostile.hnsw";
  auto check = [&](const std::function<void(std::string&)>& edit) {
    fs::copy_file(original, copy, fs::copy_options::overwrite_existing);
    Edit(copy, edit);
    auto sealed = SealGraphFile(copy, fs::file_size(copy));  // Its true size and CRC.
    EXPECT_TRUE(sealed.ok());
    return CheckGraphFile(copy, *sealed, shape);
  };
  auto set64 = [](size_t offset, uint64_t value) {
    return [=](std::string& b) { std::memcpy(b.data() + offset, &value, 8); };
  };
  auto set32 = [](size_t offset, uint32_t value) {
    return [=](std::string& b) { std::memcpy(b.data() + offset, &value, 4); };
  };
  EXPECT_TRUE(check([](std::string&) {}).ok()) << "the untouched file";
  // Offsets in hnswlib's header: count 16, size per element 24, label
  // offset 32, data offset 40, top level 48, entry point 52, maxM 56, M 72.
  for (const auto& [name, edit] : std::vector<std::pair<std::string, std::function<void(std::string&)>>>{
           {"node count 2^40", set64(16, uint64_t{1} << 40)},
           {"node count over the slots", set64(16, 1601)},
           {"element size", set64(24, 1 << 30)},
           {"label offset", set64(32, 12)},
           {"another dimension", set64(40, 4 * 64 + 4)},
           {"top level 10^6", set32(48, 1'000'000)},
           {"entry point outside", set32(52, 0xffffff00u)},
           {"maxM", set64(56, 4000)},
           {"M", set64(72, 8)},
           {"a link list of 3 bytes", [](std::string& b) {
              // The first node's list length, right after the level-0 block.
              uint64_t nodes = 0, per_element = 0;
              std::memcpy(&nodes, b.data() + 16, 8);
              std::memcpy(&per_element, b.data() + 24, 8);
              const uint32_t three = 3;
              std::memcpy(b.data() + kGraphHeaderBytes + nodes * per_element, &three, 4);
            }},
       }) {
    SCOPED_TRACE(name);
    auto checked = check(edit);
    EXPECT_EQ(checked.status().code(), absl::StatusCode::kDataLoss) << checked.status();
  }
}

TEST_F(GraphPersistenceTest, VersionOneSnapshotIsReadAndItsGraphRebuilt) {
  // A snapshot as written before graphs were kept: documents without slots.
  std::mt19937 rng(4);
  std::vector<std::vector<float>> vectors;
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
  }
  std::string file("ORTSNAP1", 8);
  const uint64_t sequence = 7;
  const uint32_t dimension = kDim;
  file.append(reinterpret_cast<const char*>(&sequence), 8);
  file.append(reinterpret_cast<const char*>(&dimension), 4);
  for (int i = 0; i < 300; ++i) {
    vectors.push_back(RandomVector(rng));
    AppendFrame(EncodeDocument("d" + std::to_string(i), vectors.back().data(), kDim, "{}"), file);
  }
  std::string end = "ORTSNEND";
  const uint64_t count = 300;
  end.append(reinterpret_cast<const char*>(&count), 8);
  AppendFrame(end, file);
  std::ofstream(Dir() + "/snapshot.bin", std::ios::binary) << file;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->Stats("acme", "notes")->documents, 300u);
    EXPECT_EQ(store->Stats("acme", "notes")->index_builds, 1u);
    EXPECT_EQ(store->recovery()[0].graph_problem, "");
    auto hits = store->Query("acme", "notes", vectors[42], 1, Filter());
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ((*hits)[0].id, "d42");
    // The next snapshot is version 2, with the graph; writes continue after sequence 7.
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("new", RandomVector(rng))}).ok());
    ASSERT_TRUE(store->Snapshot("acme", "notes").ok());
    EXPECT_NE(GraphPath().find("graph-8.hnsw"), std::string::npos) << GraphPath();
  }
  auto store = OpenStore();
  EXPECT_TRUE(store->Stats("acme", "notes")->index_loaded);
  EXPECT_EQ(store->Stats("acme", "notes")->documents, 301u);
}

// A graph whose file checks out but that belongs to other documents (same
// shape, other vectors): refused once loaded, and rebuilt.
TEST_F(GraphPersistenceTest, GraphOfOtherDocumentsIsRebuilt) {
  CollectionParams params = Info().params;
  std::mt19937 rng(9);
  auto make = [&](std::unique_ptr<Collection>& c) {
    c = *Collection::Create(params);
    std::vector<Change> batch;
    for (int i = 0; i < 400; ++i) batch.push_back(Upsert("d" + std::to_string(i), RandomVector(rng)));
    auto metadata = c->Check(batch);
    ASSERT_TRUE(metadata.ok());
    ASSERT_TRUE(c->Apply(batch, *std::move(metadata)).ok());
  };
  std::unique_ptr<Collection> a, b;
  make(a);
  make(b);
  auto b_graph = b->SaveIndex(dir_ + "/b.hnsw");
  ASSERT_TRUE(b_graph.ok()) << b_graph.status();
  // A's documents at A's slots, with B's graph.
  auto restored = *Collection::Create(params);
  std::vector<Change> changes;
  std::vector<uint32_t> slots;
  a->ForEach([&](uint32_t slot, const std::string& id, const float* v, const std::string& metadata) {
    changes.push_back(Change{Change::Kind::kUpsert, Document{id, std::vector<float>(v, v + kDim), metadata}});
    slots.push_back(slot);
  });
  auto metadata = restored->Check(changes);
  ASSERT_TRUE(metadata.ok());
  ASSERT_TRUE(restored->Restore(a->SlotCount(), slots, changes, *std::move(metadata)).ok());
  std::string problem;
  ASSERT_TRUE(restored->FinishRestore(dir_ + "/b.hnsw", *b_graph, &problem).ok());
  EXPECT_NE(problem.find("another vector"), std::string::npos) << problem;
  EXPECT_FALSE(restored->Stats().index_loaded);
  EXPECT_EQ(restored->Stats().index_builds, 1u);
  // A hostile slot count is refused before any allocation.
  auto hostile = *Collection::Create(params);
  EXPECT_EQ(hostile->Restore(0xfffffff0u, {}, {}, {}).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ortserve::retrieval
