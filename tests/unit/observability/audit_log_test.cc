// SPDX-License-Identifier: Apache-2.0
#include "observability/audit_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "fakes/fake_clock.h"

namespace ortserve::observability {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ortserve-audit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> Lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every line of every file in `dir`.
std::vector<std::string> AllLines(const fs::path& dir) {
  std::vector<std::string> all;
  for (const auto& entry : fs::directory_iterator(dir)) {
    for (auto& line : Lines(entry.path())) all.push_back(std::move(line));
  }
  return all;
}

rapidjson::Document Parse(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
  EXPECT_FALSE(doc.HasParseError()) << rapidjson::GetParseError_En(doc.GetParseError()) << " in: " << line;
  return doc;
}

class AuditLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<AuditLog> Make(AuditLog::Options options = {}) {
    options.path = path_.string();
    if (options.clock == nullptr) options.clock = &clock_;
    auto log = AuditLog::Create(std::move(options));
    EXPECT_TRUE(log.ok()) << log.status();
    return *std::move(log);
  }

  TempDir dir_;
  fs::path path_ = dir_.path() / "audit.log";
  ortserve::testing::FakeClock clock_{absl::FromUnixMicros(1750000000123456)};
};

TEST_F(AuditLogTest, WritesOneJsonLinePerEventWithEveryField) {
  auto log = Make();
  const std::pair<std::string_view, std::string_view> extra[] = {{"config", "{\"max_batch_size\":8}"}};
  ASSERT_TRUE(log->Record({.type = AuditEvent::Type::kModelControl,
                           .client_id = "ci-runner",
                           .client_kind = "api_key",
                           .tenant = "acme",
                           .address = "10.0.0.7:51512",
                           .action = "model.load",
                           .model = "iris",
                           .version = "2",
                           .outcome = AuditEvent::Outcome::kSuccess,
                           .message = "loaded",
                           .extra = extra})
                  .ok());
  ASSERT_TRUE(log->Record({.time = absl::FromUnixSeconds(1700000000),
                           .type = AuditEvent::Type::kCredentialRefused,
                           .address = "10.0.0.9:4000",
                           .action = "http POST /v2/repository/models/iris/load",
                           .outcome = AuditEvent::Outcome::kRefused,
                           .message = "the API key is not recognised"})
                  .ok());
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            R"({"seq":1,"time":"2025-06-15T15:06:40.123456Z","type":"model_control",)"
            R"("client":{"id":"ci-runner","kind":"api_key","tenant":"acme"},"address":"10.0.0.7:51512",)"
            R"("action":"model.load","model":"iris","version":"2","outcome":"success","message":"loaded",)"
            R"("extra":{"config":"{\"max_batch_size\":8}"}})");
  const rapidjson::Document second = Parse(lines[1]);
  EXPECT_EQ(second["seq"].GetInt(), 2);
  EXPECT_STREQ(second["time"].GetString(), "2023-11-14T22:13:20.000000Z");
  EXPECT_STREQ(second["type"].GetString(), "credential_refused");
  EXPECT_STREQ(second["client"]["id"].GetString(), "anonymous");
  EXPECT_STREQ(second["outcome"].GetString(), "refused");
  EXPECT_FALSE(second.HasMember("model"));
  EXPECT_EQ(log->stats().lines, 2u);
}

TEST_F(AuditLogTest, EscapesControlCharactersAndReplacesInvalidUtf8) {
  auto log = Make();
  const std::string hostile = std::string("a\"b\\c\nd\re\tf\x01g\x7fh") + "\xff" + "\xc3(" + "caf\xc3\xa9" +
                              "\xe2\x80\xa8" + "\xed\xa0\x80" + "\xf0\x9f\x98\x80" + std::string(1, '\0') + "z";
  ASSERT_TRUE(log->Record({.action = "logging.update", .model = hostile, .message = hostile}).ok());
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 1u);  // The newline inside did not split the line.
  const rapidjson::Document doc = Parse(lines[0]);
  const std::string expected = std::string("a\"b\\c\nd\re\tf\x01g\x7fh") + "\xef\xbf\xbd" + "\xef\xbf\xbd(" +
                               "caf\xc3\xa9" + "\xe2\x80\xa8" + "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" +
                               "\xf0\x9f\x98\x80" + std::string(1, '\0') + "z";
  EXPECT_EQ(std::string(doc["message"].GetString(), doc["message"].GetStringLength()), expected);
  EXPECT_THAT(lines[0], HasSubstr("\\u2028"));
  EXPECT_THAT(lines[0], HasSubstr("\\u0000"));
}

TEST_F(AuditLogTest, CutsAVeryLongFieldAndMarksTheCut) {
  auto log = Make();
  ASSERT_TRUE(log->Record({.action = "x", .message = std::string(100000, 'm')}).ok());
  const rapidjson::Document doc = Parse(Lines(path_).at(0));
  const std::string message = doc["message"].GetString();
  EXPECT_EQ(message.size(), 8192u + 3);
  EXPECT_EQ(message.substr(8192), "\xe2\x80\xa6");
}

TEST_F(AuditLogTest, AppendsToAnExistingFileAndCreatesItPrivate) {
  { std::ofstream(path_) << "{\"seq\":1}\n"; }
  fs::permissions(path_, fs::perms::owner_read | fs::perms::owner_write);
  auto log = Make();
  ASSERT_TRUE(log->Record({.action = "a"}).ok());
  EXPECT_EQ(Lines(path_).size(), 2u);
  fs::remove(path_);
  ASSERT_TRUE(log->Reopen().ok());
  ASSERT_TRUE(log->Record({.action = "b"}).ok());
  EXPECT_EQ(Lines(path_).size(), 1u);
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(AuditLogTest, CreateRefusesAPathItCannotOpen) {
  EXPECT_FALSE(AuditLog::Create({.path = ""}).ok());
  EXPECT_FALSE(AuditLog::Create({.path = (dir_.path() / "missing" / "audit.log").string()}).ok());
}

// Writers on several threads while another rotates: every line lands in
// exactly one file, whole, and the sequence numbers have no gap.
void ExpectEveryLineOnce(const fs::path& dir, int threads, int per_thread) {
  const std::vector<std::string> lines = AllLines(dir);
  ASSERT_EQ(lines.size(), static_cast<size_t>(threads * per_thread));
  std::set<int64_t> seqs;
  std::set<std::string> events;
  for (const std::string& line : lines) {
    const rapidjson::Document doc = Parse(line);
    ASSERT_TRUE(doc.IsObject());
    seqs.insert(doc["seq"].GetInt64());
    events.insert(std::string(doc["client"]["id"].GetString()) + "/" + doc["message"].GetString());
  }
  EXPECT_EQ(seqs.size(), lines.size());
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), static_cast<int64_t>(lines.size()));
  EXPECT_EQ(events.size(), lines.size());
}

void WriteConcurrently(AuditLog* log, int threads, int per_thread, const std::function<void()>& rotate_once,
                       int rotations) {
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      const std::string id = "writer-" + std::to_string(t);
      for (int i = 0; i < per_thread; ++i) {
        const std::string message = std::to_string(i);
        EXPECT_TRUE(log->Record({.client_id = id, .action = "model.load", .model = "iris", .message = message}).ok());
      }
      done.fetch_add(1);
    });
  }
  // Rotations spread over the writing: the r-th waits until r steps of lines
  // are written (or the writers are done).
  const uint64_t step = static_cast<uint64_t>(threads) * per_thread / (rotations + 1);
  for (int r = 1; r <= rotations; ++r) {
    while (log->stats().lines < r * step && done.load() < threads) std::this_thread::yield();
    rotate_once();
  }
  for (auto& w : writers) w.join();
}

class AuditLogRotationTest : public AuditLogTest, public ::testing::WithParamInterface<int> {};

TEST_P(AuditLogRotationTest, ReopenAfterAnOutsideRenameLosesNoLine) {
  const int threads = GetParam();
  constexpr int kPerThread = 2000;
  auto log = Make({.sync = AuditLog::SyncPolicy::kNone});
  int generation = 0;
  WriteConcurrently(
      log.get(), threads, kPerThread,
      [&] {
        // What logrotate's create mode does: rename, then signal.
        fs::rename(path_, dir_.path() / ("audit.log." + std::to_string(++generation)));
        ASSERT_TRUE(log->Reopen().ok());
      },
      40);
  EXPECT_GE(generation, 40);
  ExpectEveryLineOnce(dir_.path(), threads, kPerThread);
  EXPECT_EQ(log->stats().rotations, static_cast<uint64_t>(generation));
}

TEST_P(AuditLogRotationTest, SizeRotationLosesNoLineAndKeepsFilesUnderTheLimit) {
  const int threads = GetParam();
  constexpr int kPerThread = 1500;
  constexpr uint64_t kMaxBytes = 16384;
  auto log = Make({.sync = AuditLog::SyncPolicy::kNone, .max_bytes = kMaxBytes});
  WriteConcurrently(log.get(), threads, kPerThread, [] {}, 0);
  ExpectEveryLineOnce(dir_.path(), threads, kPerThread);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    ++files;
    EXPECT_LE(fs::file_size(entry.path()), kMaxBytes) << entry.path();
    if (entry.path() != path_) {
      EXPECT_THAT(entry.path().filename().string(), HasSubstr("audit.log.2025"));
    }
  }
  EXPECT_GT(files, 10u);
  EXPECT_EQ(log->stats().rotations + 1, files);
  EXPECT_EQ(log->stats().rotation_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Writers, AuditLogRotationTest, ::testing::Values(1, 4, 8));

TEST_F(AuditLogTest, EveryLinePolicySyncsAndIntervalPolicyWrites) {
  for (auto policy : {AuditLog::SyncPolicy::kEveryLine, AuditLog::SyncPolicy::kInterval}) {
    auto log = Make({.sync = policy, .sync_interval = absl::Seconds(1)});
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(log->Record({.action = "a"}).ok());
      clock_.Advance(absl::Milliseconds(400));
    }
    EXPECT_TRUE(log->Sync().ok());
  }
  EXPECT_EQ(Lines(path_).size(), 10u);
}

TEST_F(AuditLogTest, AFullDiskIsReportedAsResourceExhausted) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto log = AuditLog::Create({.path = "/dev/full", .sync = AuditLog::SyncPolicy::kNone, .clock = &clock_});
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Status status = (*log)->Record({.action = "a"});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*log)->stats().write_errors, 1u);
  EXPECT_EQ((*log)->stats().lines, 0u);
}

// A file size limit (RLIMIT_FSIZE) cuts a line in the middle, as a full disk
// does; once there is room again, the next line starts on a line of its own.
TEST_F(AuditLogTest, ALineCutShortIsEndedSoTheNextOneStaysWhole) {
  auto log = Make({.sync = AuditLog::SyncPolicy::kNone});
  ASSERT_TRUE(log->Record({.action = "first"}).ok());
  const uintmax_t limit = fs::file_size(path_) + 40;  // Room for part of a line.
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*saved_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = limit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status cut = log->Record({.action = "second", .message = std::string(200, 'x')});
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);
  EXPECT_FALSE(cut.ok());
  EXPECT_EQ(fs::file_size(path_), limit);
  ASSERT_TRUE(log->Record({.action = "third"}).ok());
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Parse(lines[0])["seq"].GetInt(), 1);
  rapidjson::Document fragment;
  fragment.Parse(lines[1].c_str());
  EXPECT_TRUE(fragment.HasParseError());  // The cut line, alone on its line.
  const rapidjson::Document third = Parse(lines[2]);
  EXPECT_EQ(third["seq"].GetInt(), 3);  // Seq 2 is the gap that marks the loss.
  EXPECT_STREQ(third["action"].GetString(), "third");
}

}  // namespace
}  // namespace ortserve::observability
