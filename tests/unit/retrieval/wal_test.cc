// SPDX-License-Identifier: Apache-2.0
#include "retrieval/wal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ortserve::retrieval {
namespace {

Batch Sample(uint64_t sequence) {
  Batch batch;
  batch.sequence = sequence;
  batch.changes.push_back(Change{Change::Kind::kUpsert, Document{"a", {1.5f, -2}, R"({"k":1})"}});
  batch.changes.push_back(Change{Change::Kind::kDelete, Document{"b", {}, {}}});
  return batch;
}

// A file holding `bytes`, open for reading; closed by the caller.
int FileWith(const std::string& bytes) {
  char path[] = "/tmp/wal_test_XXXXXX";
  const int fd = ::mkstemp(path);
  ::unlink(path);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

std::vector<uint64_t> ReadSequences(const std::string& bytes, uint64_t* good, std::string* stopped) {
  std::vector<uint64_t> sequences;
  const int fd = FileWith(bytes);
  auto read = ReadFrames(fd, [&](std::string_view payload) {
    auto batch = DecodeBatch(payload);
    if (!batch.ok()) return batch.status();
    sequences.push_back(batch->sequence);
    return absl::OkStatus();
  }, stopped);
  ::close(fd);
  EXPECT_TRUE(read.ok()) << read.status();
  *good = read.ok() ? *read : 0;
  return sequences;
}

TEST(WalTest, BatchRoundTrips) {
  auto payload = EncodeBatch(Sample(42));
  ASSERT_TRUE(payload.ok());
  auto batch = DecodeBatch(*payload);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->sequence, 42u);
  ASSERT_EQ(batch->changes.size(), 2u);
  EXPECT_EQ(batch->changes[0].document.vector, (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(batch->changes[0].document.metadata, R"({"k":1})");
  EXPECT_EQ(batch->changes[1].kind, Change::Kind::kDelete);
  EXPECT_EQ(batch->changes[1].document.id, "b");
}

TEST(WalTest, EveryTruncatedPayloadIsRefused) {
  auto payload = EncodeBatch(Sample(1));
  ASSERT_TRUE(payload.ok());
  for (size_t n = 0; n < payload->size(); ++n) {
    EXPECT_EQ(DecodeBatch(payload->substr(0, n)).status().code(), absl::StatusCode::kDataLoss) << n;
  }
  EXPECT_FALSE(DecodeBatch(*payload + "x").ok());
  // A dimension past the bound is refused before anything is allocated.
  std::string bad = *payload;
  const size_t dim_at = 1 + 8 + 4 + 1 + 2 + 1;
  const uint32_t huge = 0x7fffffff;
  std::memcpy(bad.data() + dim_at, &huge, 4);
  EXPECT_EQ(DecodeBatch(bad).status().code(), absl::StatusCode::kDataLoss);
}

TEST(WalTest, ReadStopsAtATornTailWhereverItIsCut) {
  std::string log;
  for (uint64_t s = 1; s <= 3; ++s) AppendFrame(*EncodeBatch(Sample(s)), log);
  const size_t frame = log.size() / 3;
  for (size_t cut = 0; cut <= log.size(); ++cut) {
    uint64_t good = 0;
    std::string stopped;
    auto sequences = ReadSequences(log.substr(0, cut), &good, &stopped);
    EXPECT_EQ(sequences.size(), cut / frame) << cut;
    EXPECT_EQ(good, cut / frame * frame);
    EXPECT_EQ(stopped.empty(), cut % frame == 0) << cut;
  }
}

TEST(WalTest, ReadStopsAtACorruptFrame) {
  std::string log;
  for (uint64_t s = 1; s <= 3; ++s) AppendFrame(*EncodeBatch(Sample(s)), log);
  const size_t frame = log.size() / 3;
  for (size_t at : {frame + 3, frame + 9, frame + 20}) {  // Length, CRC, payload of the second frame.
    std::string damaged = log;
    damaged[at] ^= 0x40;
    uint64_t good = 0;
    std::string stopped;
    auto sequences = ReadSequences(damaged, &good, &stopped);
    EXPECT_EQ(sequences, (std::vector<uint64_t>{1})) << at;
    EXPECT_EQ(good, frame);
    EXPECT_FALSE(stopped.empty());
  }
}

TEST(WalTest, WriterCutsATornTailAndAppendsAfterIt) {
  char dir[] = "/tmp/wal_writer_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/wal.log";
  {
    auto wal = WalWriter::Open(path, 0, FsyncPolicy::kAlways);
    ASSERT_TRUE(wal.ok());
    auto end = (*wal)->Append(*EncodeBatch(Sample(1)));
    ASSERT_TRUE(end.ok());
    ASSERT_TRUE((*wal)->Sync(*end).ok());
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_EQ(::write(fd, "\x10\x00\x00", 3), 3);  // The start of a torn frame.
  ::close(fd);
  std::string stopped;
  const int rfd = ::open(path.c_str(), O_RDONLY);
  auto good = ReadFrames(rfd, [](std::string_view) { return absl::OkStatus(); }, &stopped);
  ::close(rfd);
  ASSERT_TRUE(good.ok());
  EXPECT_FALSE(stopped.empty());
  auto wal = WalWriter::Open(path, *good, FsyncPolicy::kNever);
  ASSERT_TRUE(wal.ok());
  ASSERT_TRUE((*wal)->Append(*EncodeBatch(Sample(2))).ok());
  uint64_t total = 0;
  std::string log;
  {
    const int f = ::open(path.c_str(), O_RDONLY);
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(f, buffer, sizeof(buffer))) > 0) log.append(buffer, n);
    ::close(f);
  }
  auto sequences = ReadSequences(log, &total, &stopped);
  EXPECT_EQ(sequences, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(stopped.empty());
  std::system((std::string("rm -rf ") + dir).c_str());
}

}  // namespace
}  // namespace ortserve::retrieval
