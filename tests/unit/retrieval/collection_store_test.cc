// SPDX-License-Identifier: Apache-2.0
#include "retrieval/collection_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <map>
#include <string>

#include "absl/synchronization/notification.h"

namespace ortserve::retrieval {
namespace {

namespace fs = std::filesystem;

Change Upsert(std::string id, std::vector<float> v, std::string metadata = "") {
  return Change{Change::Kind::kUpsert, Document{std::move(id), std::move(v), std::move(metadata)}};
}
Change Delete(std::string id) { return Change{Change::Kind::kDelete, Document{std::move(id), {}, {}}}; }

class CollectionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/collection_store_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CollectionStore> OpenStore(uint64_t snapshot_bytes = 64 << 20) {
    CollectionStore::Options options;
    options.dir = dir_;
    options.snapshot_log_bytes = snapshot_bytes;
    options.max_collections_per_tenant = 3;
    auto store = CollectionStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  static CollectionInfo Info(uint32_t dim = 3, Metric metric = Metric::kL2) {
    CollectionInfo info;
    info.model = "text_embedding";
    info.params.dimension = dim;
    info.params.metric = metric;
    info.params.exact_threshold = 100;
    return info;
  }
  std::string Dir() const { return dir_ + "/t_acme/c_notes"; }
  std::string Wal() const { return Dir() + "/wal.log"; }

  std::string dir_;
};

TEST_F(CollectionStoreTest, ReopenRecoversEveryWriteWithItsVectorAndMetadata) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    EXPECT_FALSE(*store->Create("acme", "notes", Info()));  // Same info: idempotent.
    EXPECT_EQ(store->Create("acme", "notes", Info(4)).status().code(), absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("a", {1, 2, 3}, R"({"y":1})"), Upsert("b", {4, 5, 6})}).ok());
    ASSERT_TRUE(store->Write("acme", "notes", {Delete("b"), Upsert("c", {7, 8, 9})}).ok());
  }
  auto store = OpenStore();
  auto a = store->Get("acme", "notes", "a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->vector, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(a->metadata, R"({"y":1})");
  EXPECT_FALSE(store->Get("acme", "notes", "b").ok());
  EXPECT_TRUE(store->Get("acme", "notes", "c").ok());
  EXPECT_EQ(store->Info("acme", "notes")->model, "text_embedding");
  ASSERT_EQ(store->recovery().size(), 1u);
  EXPECT_EQ(store->recovery()[0].log_batches, 2u);
  EXPECT_EQ(store->recovery()[0].dropped_bytes, 0u);
}

TEST_F(CollectionStoreTest, SnapshotsEmptyTheLogAndRecoverWithIt) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::map<std::string, std::vector<float>> written;
  {
    // A tiny snapshot threshold: many snapshots while writing.
    auto store = OpenStore(/*snapshot_bytes=*/2000);
    ASSERT_TRUE(*store->Create("acme", "notes", Info(8, Metric::kCosine)));
    for (int i = 0; i < 300; ++i) {
      std::vector<float> v(8);
      for (float& x : v) x = normal(rng);
      const std::string id = "d" + std::to_string(i % 250);
      ASSERT_TRUE(store->Write("acme", "notes", {Upsert(id, v)}).ok());
      written[id] = v;
    }
    EXPECT_LT(fs::file_size(Wal()), 2000u + 200);
    EXPECT_TRUE(fs::exists(Dir() + "/snapshot.bin"));
  }
  auto store = OpenStore();
  EXPECT_EQ(store->Stats("acme", "notes")->documents, 250u);
  EXPECT_TRUE(store->Stats("acme", "notes")->indexed);
  for (const auto& [id, v] : written) {
    auto doc = store->Get("acme", "notes", id);
    ASSERT_TRUE(doc.ok()) << id;
    // Stored normalized (cosine): same direction.
    double dot = 0, norm = 0;
    for (size_t i = 0; i < v.size(); ++i) dot += v[i] * doc->vector[i], norm += v[i] * v[i];
    EXPECT_NEAR(dot / std::sqrt(norm), 1.0, 1e-4);
  }
  EXPECT_GT(store->recovery()[0].snapshot_documents, 0u);
}

TEST_F(CollectionStoreTest, LogBatchesAtOrBelowTheSnapshotAreNotReplayed) {
  // A crash between the snapshot's rename and the log's truncation leaves
  // the old log beside the new snapshot.
  std::string old_log;
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("x", {1, 1, 1})}).ok());
    ASSERT_TRUE(store->Write("acme", "notes", {Delete("x")}).ok());
    std::ifstream in(Wal(), std::ios::binary);
    old_log.assign(std::istreambuf_iterator<char>(in), {});
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("x", {2, 2, 2})}).ok());
    ASSERT_TRUE(store->Snapshot("acme", "notes").ok());
    EXPECT_EQ(fs::file_size(Wal()), 0u);
  }
  std::ofstream(Wal(), std::ios::binary) << old_log;
  auto store = OpenStore();
  auto x = store->Get("acme", "notes", "x");
  ASSERT_TRUE(x.ok()) << "the old log's delete was replayed over the snapshot";
  EXPECT_EQ(x->vector, (std::vector<float>{2, 2, 2}));
  // New writes continue after the snapshot's sequence.
  ASSERT_TRUE(store->Write("acme", "notes", {Upsert("y", {3, 3, 3})}).ok());
  store.reset();
  store = OpenStore();
  EXPECT_TRUE(store->Get("acme", "notes", "y").ok());
  EXPECT_TRUE(store->Get("acme", "notes", "x").ok());
}

TEST_F(CollectionStoreTest, TornTailIsCutAndLaterWritesSurvive) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("a", {1, 2, 3})}).ok());
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("b", {1, 2, 3})}).ok());
  }
  const auto whole = fs::file_size(Wal());
  fs::resize_file(Wal(), whole - 5);  // The second write torn.
  {
    auto store = OpenStore();
    EXPECT_TRUE(store->Get("acme", "notes", "a").ok());
    EXPECT_FALSE(store->Get("acme", "notes", "b").ok());
    EXPECT_GT(store->recovery()[0].dropped_bytes, 0u);
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("c", {1, 2, 3})}).ok());
  }
  auto store = OpenStore();
  EXPECT_TRUE(store->Get("acme", "notes", "a").ok());
  EXPECT_TRUE(store->Get("acme", "notes", "c").ok());
  EXPECT_EQ(store->recovery()[0].dropped_bytes, 0u);
}

TEST_F(CollectionStoreTest, CorruptRecordAndEverythingAfterIsDropped) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(store->Write("acme", "notes", {Upsert(id, {1, 2, 3})}).ok());
  }
  const auto frame = fs::file_size(Wal()) / 3;
  {
    std::fstream f(Wal(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(frame + frame / 2));
    f.put('\x7f');
  }
  auto store = OpenStore();
  EXPECT_TRUE(store->Get("acme", "notes", "a").ok());
  EXPECT_FALSE(store->Get("acme", "notes", "b").ok());
  EXPECT_FALSE(store->Get("acme", "notes", "c").ok());
  EXPECT_EQ(store->recovery()[0].dropped_bytes, 2 * frame);
  EXPECT_NE(store->recovery()[0].dropped_reason.find("CRC"), std::string::npos);
}

TEST_F(CollectionStoreTest, DamagedSnapshotStopsOpenWithDataLoss) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("a", {1, 2, 3})}).ok());
    ASSERT_TRUE(store->Snapshot("acme", "notes").ok());
  }
  fs::resize_file(Dir() + "/snapshot.bin", fs::file_size(Dir() + "/snapshot.bin") - 1);
  CollectionStore::Options options;
  options.dir = dir_;
  auto store = CollectionStore::Open(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(store.status().message()).find("snapshot.bin"), std::string::npos);
}

TEST_F(CollectionStoreTest, SetEfSearchLastsAcrossReopen) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    EXPECT_EQ(store->SetEfSearch("acme", "notes", 3).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->SetEfSearch("acme", "other", 100).code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(store->SetEfSearch("acme", "notes", 300).ok());
    EXPECT_EQ(store->Info("acme", "notes")->params.ef_search, 300u);
  }
  auto store = OpenStore();
  EXPECT_EQ(store->Info("acme", "notes")->params.ef_search, 300u);
}

TEST_F(CollectionStoreTest, TenantsAreSeparateAndDropsAreDurable) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(*store->Create("acme", "notes", Info()));
    ASSERT_TRUE(*store->Create("other", "notes", Info()));
    ASSERT_TRUE(store->Write("acme", "notes", {Upsert("secret", {1, 2, 3})}).ok());
    EXPECT_FALSE(store->Get("other", "notes", "secret").ok());
    EXPECT_EQ(store->Query("nobody", "notes", {1, 2, 3}, 1, Filter()).status().code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(store->Drop("other", "notes").ok());
    EXPECT_EQ(store->Drop("other", "notes").code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(store->Write("other", "notes", {Upsert("x", {1, 2, 3})}).code(), absl::StatusCode::kNotFound);
    // The per-tenant limit (3 here).
    ASSERT_TRUE(*store->Create("acme", "n2", Info()));
    ASSERT_TRUE(*store->Create("acme", "n3", Info()));
    EXPECT_EQ(store->Create("acme", "n4", Info()).status().code(), absl::StatusCode::kResourceExhausted);
  }
  auto store = OpenStore();
  EXPECT_EQ(store->List("acme"), (std::vector<std::string>{"n2", "n3", "notes"}));
  EXPECT_TRUE(store->List("other").empty());
  EXPECT_TRUE(store->Get("acme", "notes", "secret").ok());
}

TEST_F(CollectionStoreTest, RefusesNamesThatCouldLeaveTheDirectory) {
  auto store = OpenStore();
  for (const char* name : {"", "..", ".hidden", "a/b", "a\\b", "x y"}) {
    EXPECT_EQ(store->Create("acme", name, Info()).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(store->Create("../etc", "notes", Info()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store->Create("acme", std::string(65, 'a'), Info()).status().code(), absl::StatusCode::kInvalidArgument);
  CollectionInfo huge = Info();
  huge.params.max_bytes = uint64_t{1} << 40;
  EXPECT_EQ(store->Create("acme", "big", huge).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CollectionStoreTest, SubmitRunsWorkOnTheWorkers) {
  auto store = OpenStore();
  absl::Notification done;
  ASSERT_TRUE(store->Submit([&] { done.Notify(); }).ok());
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

}  // namespace
}  // namespace ortserve::retrieval
