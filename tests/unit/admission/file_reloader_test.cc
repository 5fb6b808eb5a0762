// SPDX-License-Identifier: Apache-2.0
#include "admission/file_reloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "admission/crypto.h"
#include "fakes/fake_clock.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::testing::HasSubstr;

class ReloadingFilesTest : public ::testing::Test {
 protected:
  std::unique_ptr<ReloadingFiles<std::string>> Make(std::vector<std::string> paths) {
    auto files = ReloadingFiles<std::string>::Create({
        .paths = std::move(paths),
        .parse = [this](const std::vector<std::string>& contents)
            -> absl::StatusOr<std::shared_ptr<const std::string>> {
          ++parses_;
          std::string joined;
          for (const auto& c : contents) joined += c + "|";
          if (joined.find("bad") != std::string::npos) return absl::InvalidArgumentError("bad content");
          return std::make_shared<const std::string>(joined);
        },
        .check_interval = absl::Seconds(10),
        .clock = &clock_,
        .on_reload = [this](const absl::Status& s) { reports_.push_back(s); },
    });
    EXPECT_TRUE(files.ok()) << files.status();
    return *std::move(files);
  }

  ScopedTempDir dir_;
  // Well after the files' ctimes, so they are not "racy" (see FileSetReader).
  ortserve::testing::FakeClock clock_{absl::Now() + absl::Hours(1)};
  int parses_ = 0;
  std::vector<absl::Status> reports_;
};

TEST_F(ReloadingFilesTest, ChecksOnlyWhenTheIntervalHasPassed) {
  ReplaceFile(dir_.File("a"), "one");
  auto files = Make({dir_.File("a")});
  EXPECT_EQ(*files->Current(), "one|");
  ReplaceFile(dir_.File("a"), "two");
  clock_.Advance(absl::Seconds(9));
  EXPECT_EQ(*files->Current(), "one|");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(*files->Current(), "two|");
  EXPECT_EQ(parses_, 2);
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_TRUE(reports_[0].ok());
}

TEST_F(ReloadingFilesTest, SameBytesOrAnUntouchedFileAreNotParsedAgain) {
  ReplaceFile(dir_.File("a"), "same");
  auto files = Make({dir_.File("a")});
  clock_.Advance(absl::Seconds(10));
  files->Current();  // Unchanged: stat only.
  ReplaceFile(dir_.File("a"), "same");  // New inode, same bytes.
  clock_.Advance(absl::Seconds(10));
  files->Current();
  EXPECT_EQ(parses_, 1);
  EXPECT_TRUE(reports_.empty());
}

TEST_F(ReloadingFilesTest, ARewriteWithinTheSameTimestampTickIsSeen) {
  // The clock is at the files' own time: every check re-reads, so two
  // writes of the same size within one timestamp tick are told apart.
  clock_.SetTime(absl::Now());
  ReplaceFile(dir_.File("a"), "v1");
  auto files = Make({dir_.File("a")});
  {
    std::FILE* f = std::fopen(dir_.File("a").c_str(), "r+");
    std::fputs("v2", f);
    std::fclose(f);
  }
  EXPECT_TRUE(files->CheckNow().ok());
  EXPECT_EQ(*files->Current(), "v2|");
}

TEST_F(ReloadingFilesTest, AFileThatGoesMissingKeepsTheValueAndIsReportedOnce) {
  ReplaceFile(dir_.File("a"), "one");
  ReplaceFile(dir_.File("b"), "two");
  auto files = Make({dir_.File("a"), dir_.File("b")});
  std::filesystem::remove(dir_.File("b"));
  EXPECT_EQ(files->CheckNow().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(files->CheckNow().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*files->Current(), "one|two|");
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0].message(), HasSubstr("cannot stat"));
  EXPECT_EQ(files->last_status().code(), absl::StatusCode::kNotFound);
  // Back with the same bytes: a recovery, reported, no new parse needed.
  ReplaceFile(dir_.File("b"), "two");
  EXPECT_TRUE(files->CheckNow().ok());
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_TRUE(reports_[1].ok());
  EXPECT_TRUE(files->last_status().ok());
}

TEST_F(ReloadingFilesTest, ABadVersionKeepsTheLastGoodValue) {
  ReplaceFile(dir_.File("a"), "good");
  auto files = Make({dir_.File("a")});
  ReplaceFile(dir_.File("a"), "bad");
  EXPECT_FALSE(files->CheckNow().ok());
  EXPECT_EQ(*files->Current(), "good|");
  EXPECT_FALSE(files->CheckNow().ok());  // Not parsed again: same bytes.
  EXPECT_EQ(parses_, 2);
  ReplaceFile(dir_.File("a"), "better");
  EXPECT_TRUE(files->CheckNow().ok());
  EXPECT_EQ(*files->Current(), "better|");
}

TEST_F(ReloadingFilesTest, RefusesOversizedFilesAndFolders) {
  ReplaceFile(dir_.File("big"), std::string(2 << 20, 'x'));
  EXPECT_THAT(ReloadingFiles<std::string>::Create(
                  {.paths = {dir_.File("big")},
                   .parse = [](const auto&) { return std::make_shared<const std::string>(); },
                   .clock = &clock_})
                  .status()
                  .message(),
              HasSubstr("larger than"));
  EXPECT_THAT(ReloadingFiles<std::string>::Create(
                  {.paths = {dir_.path()},
                   .parse = [](const auto&) { return std::make_shared<const std::string>(); },
                   .clock = &clock_})
                  .status()
                  .message(),
              HasSubstr("not a regular file"));
}

TEST(CryptoTest, Base64UrlDecodingIsStrict) {
  EXPECT_EQ(Base64UrlEncode("\xff\xfe\xfd"), "__79");
  EXPECT_EQ(*Base64UrlDecode("__79"), "\xff\xfe\xfd");
  EXPECT_EQ(*Base64UrlDecode("YQ"), "a");
  EXPECT_FALSE(Base64UrlDecode("YR").has_value());   // Unused bits set.
  EXPECT_FALSE(Base64UrlDecode("YQ==").has_value());  // Padding.
  EXPECT_FALSE(Base64UrlDecode("Y").has_value());     // Impossible length.
  EXPECT_FALSE(Base64UrlDecode("a+b/").has_value());  // Standard alphabet.
  EXPECT_EQ(*HexDecode("00fF"), std::string("\x00\xff", 2));
  EXPECT_FALSE(HexDecode("0g").has_value());
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(AsBytes(HmacSha256("Jefe", "what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace ortserve::admission
