// SPDX-License-Identifier: Apache-2.0
#include "pipeline/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "simdjson.h"

namespace ortserve::pipeline {
namespace {

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
  return ORTSERVE_SOURCE_DIR_DEFAULT;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path, std::ios::binary);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<int32_t> ParseIds(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream s(line);
  for (int32_t id; s >> id;) ids.push_back(id);
  return ids;
}

const std::string kModelDir = "/models/tiny_decoder/";

class BpeTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t = BpeTokenizer::FromTokenizerJson(SourceDir() + kModelDir + "tokenizer.json");
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = std::move(*t).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  static const BpeTokenizer* tokenizer_;
};
const BpeTokenizer* BpeTokenizerTest::tokenizer_ = nullptr;

// Every corpus text encodes to the ids Hugging Face tokenizers gives
// (scripts/generation/make_bpe_goldens.mjs) and decodes back to itself.
TEST_F(BpeTokenizerTest, MatchesGoldensFromHuggingFaceTokenizers) {
  const std::string dir = SourceDir() + "/tests/data/bpe/";
  const auto corpus = Lines(dir + "corpus.jsonl");
  const auto goldens = Lines(dir + "goldens.txt");
  ASSERT_EQ(corpus.size(), goldens.size());
  ASSERT_GE(corpus.size(), 1000u);
  auto from_files = BpeTokenizer::FromVocabAndMerges(SourceDir() + kModelDir + "vocab.json",
                                                     SourceDir() + kModelDir + "merges.txt");
  ASSERT_TRUE(from_files.ok()) << from_files.status();
  simdjson::dom::parser parser;
  std::vector<int32_t> ids, ids2;
  size_t mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    std::string_view text;
    ASSERT_FALSE(parser.parse(corpus[i]).get_string().get(text)) << "line " << i;
    const std::string owned(text);
    ASSERT_TRUE(tokenizer_->Encode(owned, {}, &ids).ok()) << "line " << i;
    const auto want = ParseIds(goldens[i]);
    if (ids != want && ++mismatches <= 5) {
      ADD_FAILURE() << "line " << i << " text " << corpus[i] << "\n got " << ::testing::PrintToString(ids)
                    << "\nwant " << ::testing::PrintToString(want);
    }
    auto back = tokenizer_->Decode(ids, /*skip_special=*/false);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, owned) << "line " << i;
    // vocab.json + merges.txt: no added tokens there, so compare on text
    // without the special token only.
    if (owned.find("<|endoftext|>") == std::string::npos) {
      ASSERT_TRUE((*from_files)->Encode(owned, {}, &ids2).ok());
      EXPECT_EQ(ids2, want) << "line " << i;
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(BpeTokenizerTest, DecodesLikeHuggingFaceTokenizersAndStreamsTheSame) {
  const auto lines = Lines(SourceDir() + "/tests/data/bpe/decode.jsonl");
  ASSERT_GE(lines.size(), 100u);
  simdjson::dom::parser parser;
  for (const auto& line : lines) {
    simdjson::dom::element e;
    ASSERT_FALSE(parser.parse(line).get(e));
    std::vector<int32_t> ids;
    for (auto v : e["ids"].get_array()) ids.push_back(static_cast<int32_t>(int64_t(v)));
    const std::string want{std::string_view(e["text"])};
    auto text = tokenizer_->Decode(ids, /*skip_special=*/true);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, want) << line;
    // Streaming: each piece is valid UTF-8 by itself; together they are the text.
    IncrementalDecoder stream(*tokenizer_);
    std::string all;
    for (int32_t id : ids) {
      std::string piece;
      ASSERT_TRUE(stream.Add(id, &piece).ok());
      EXPECT_EQ(FindInvalidUtf8(piece), std::string_view::npos) << line;
      EXPECT_LE(stream.pending_bytes(), 3u);
      all += piece;
    }
    std::string rest;
    stream.Finish(&rest);
    EXPECT_EQ(FindInvalidUtf8(rest), std::string_view::npos);
    EXPECT_EQ(all + rest, want) << line;
  }
}

TEST_F(BpeTokenizerTest, IncrementalDecoderHoldsASplitCharacterBack) {
  // "😀" is four bytes; with no merge for them in this vocabulary it is four
  // byte tokens, and nothing is emitted until the fourth.
  std::vector<int32_t> ids;
  ASSERT_TRUE(tokenizer_->Encode("a😀", {}, &ids).ok());
  ASSERT_EQ(ids.size(), 5u);
  IncrementalDecoder stream(*tokenizer_);
  std::string out;
  ASSERT_TRUE(stream.Add(ids[0], &out).ok());
  EXPECT_EQ(out, "a");
  for (int k = 1; k < 4; ++k) {
    ASSERT_TRUE(stream.Add(ids[k], &out).ok());
    EXPECT_EQ(out, "a");
    EXPECT_EQ(stream.pending_bytes(), static_cast<size_t>(k));
  }
  ASSERT_TRUE(stream.Add(ids[4], &out).ok());
  EXPECT_EQ(out, "a😀");
  EXPECT_EQ(stream.pending_bytes(), 0u);
  // A character cut short at the end becomes one U+FFFD.
  ASSERT_TRUE(stream.Add(ids[1], &out).ok());
  stream.Finish(&out);
  EXPECT_EQ(out, "a😀\xEF\xBF\xBD");
  EXPECT_FALSE(stream.Add(-1, &out).ok());
  EXPECT_FALSE(stream.Add(tokenizer_->vocab_size(), &out).ok());
}

TEST_F(BpeTokenizerTest, RandomIdStreamsMatchWholeDecoding) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any(0, tokenizer_->vocab_size() - 1), byte(0, 255);
  for (int round = 0; round < 2000; ++round) {
    std::vector<int32_t> ids(1 + rng() % 16);
    for (auto& id : ids) id = rng() % 2 ? byte(rng) : any(rng);
    IncrementalDecoder stream(*tokenizer_, /*skip_special=*/false);
    std::string all;
    for (int32_t id : ids) {
      std::string piece;
      ASSERT_TRUE(stream.Add(id, &piece).ok());
      ASSERT_EQ(FindInvalidUtf8(piece), std::string_view::npos);
      all += piece;
    }
    stream.Finish(&all);
    EXPECT_EQ(all, *tokenizer_->Decode(ids, /*skip_special=*/false));
  }
}

TEST(Utf8LossyTest, ReplacesMaximalIllFormedSubparts) {
  auto lossy = [](std::string_view s) {
    std::string out;
    AppendUtf8Lossy(s, true, &out);
    return out;
  };
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("\xE2\x82" "a"), r + "a");
  EXPECT_EQ(lossy("\xF0\x9F"), r);
  EXPECT_EQ(lossy("\xC0\x80"), r + r);          // overlong: each byte
  EXPECT_EQ(lossy("\xED\xA0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(lossy("\x80x\xFF"), r + "x" + r);
  std::string out;
  EXPECT_EQ(AppendUtf8Lossy("ok\xF0\x9F\x98", false, &out), 3u);
  EXPECT_EQ(out, "ok");
  out.clear();
  EXPECT_EQ(AppendUtf8Lossy("ok\xF0\x9F" "x", false, &out), 0u);
  EXPECT_EQ(out, "ok" + r + "x");
}

TEST_F(BpeTokenizerTest, RejectsHostileInput) {
  std::vector<int32_t> ids;
  auto s = tokenizer_->Encode("ok \xC3(", {}, &ids);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("byte 3"), std::string::npos) << s;
  BpeEncodeOptions small;
  small.max_text_bytes = 10;
  EXPECT_EQ(tokenizer_->Encode(std::string(11, 'a'), small, &ids).code(), absl::StatusCode::kInvalidArgument);
  small.max_text_bytes = 1 << 20;
  small.max_tokens = 5;
  EXPECT_EQ(tokenizer_->Encode("😀😀", small, &ids).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(tokenizer_->Encode("hello", small, &ids).ok());
  EXPECT_FALSE(tokenizer_->Decode(std::vector<int32_t>{1, -5}).ok());
  EXPECT_FALSE(tokenizer_->Decode(std::vector<int32_t>{tokenizer_->vocab_size()}).ok());
}

TEST_F(BpeTokenizerTest, SpecialTokenTextCanBeKeptAsText) {
  const int32_t eot = *tokenizer_->TokenId("<|endoftext|>");
  std::vector<int32_t> ids;
  ASSERT_TRUE(tokenizer_->Encode("a<|endoftext|>b", {}, &ids).ok());
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], eot);
  BpeEncodeOptions literal;
  literal.match_added_tokens = false;
  ASSERT_TRUE(tokenizer_->Encode("a<|endoftext|>b", literal, &ids).ok());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 0);
  EXPECT_EQ(*tokenizer_->Decode(ids), "a<|endoftext|>b");
  EXPECT_TRUE(tokenizer_->IsSpecial(eot));
  EXPECT_EQ(*tokenizer_->Decode(std::vector<int32_t>{eot}, true), "");
  EXPECT_EQ(*tokenizer_->Decode(std::vector<int32_t>{eot}, false), "<|endoftext|>");
}

TEST_F(BpeTokenizerTest, LongWordsEncodeInLogLinearTime) {
  // One 900 KB "word" (a letter run); the heap-based merge loop keeps it fast.
  BpeEncodeOptions big;
  big.max_text_bytes = size_t{4} << 20;
  big.max_tokens = size_t{4} << 20;
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "headaches";
  std::vector<int32_t> ids;
  ASSERT_TRUE(tokenizer_->Encode(text, big, &ids).ok());
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(*tokenizer_->Decode(ids), text);
}

std::string MinimalVocab(std::string extra = "") {
  std::string v = "{";
  for (int b = 0; b < 256; ++b) {
    char buf[4];
    std::string sym(buf, EncodeUtf8(ByteLevelCodePoint(static_cast<unsigned char>(b)), buf));
    if (sym == "\"" || sym == "\\") sym = "\\" + sym;
    v += "\"" + sym + "\":" + std::to_string(b) + ",";
  }
  v += "\"ab\":256,\"abc\":257" + extra + "}";
  return v;
}

TEST(BpeLoaderTest, LoadsVocabAndMergesAndRejectsBadFiles) {
  auto ok = BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(), "#version: 0.2\na b\nab c\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  std::vector<int32_t> ids;
  ASSERT_TRUE((*ok)->Encode("abcab", {}, &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{257, 256}));

  auto missing = BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(), "a x\n");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  auto three = BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(), "a b c\n");
  EXPECT_EQ(three.status().code(), absl::StatusCode::kInvalidArgument);
  auto no_bytes = BpeTokenizer::FromVocabAndMergesContents("{\"a\":0}", "");
  EXPECT_EQ(no_bytes.status().code(), absl::StatusCode::kInvalidArgument);
  auto dup_id = BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(",\"zz\":3"), "");
  EXPECT_EQ(dup_id.status().code(), absl::StatusCode::kInvalidArgument);
  auto big_id = BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(",\"zz\":99999999999"), "");
  EXPECT_EQ(big_id.status().code(), absl::StatusCode::kInvalidArgument);
  auto not_json = BpeTokenizer::FromVocabAndMergesContents("{", "");
  EXPECT_EQ(not_json.status().code(), absl::StatusCode::kInvalidArgument);
  BpeLoadLimits tight;
  tight.max_file_bytes = 100;
  EXPECT_EQ(BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(), "", tight).status().code(),
            absl::StatusCode::kResourceExhausted);
  tight = {};
  tight.max_merges = 1;
  EXPECT_EQ(BpeTokenizer::FromVocabAndMergesContents(MinimalVocab(), "a b\nab c\n", tight).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(BpeTokenizer::FromVocabAndMerges("/nonexistent/vocab.json", "/nonexistent/merges.txt").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BpeLoaderTest, TokenizerJsonFeaturesItLacksAreReportedNotIgnored) {
  auto json = [](std::string model_extra, std::string top_extra) {
    return "{\"model\":{\"type\":\"BPE\",\"vocab\":" + MinimalVocab() + ",\"merges\":[\"a b\",[\"ab\",\"c\"]]" +
           model_extra + "},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true}" + top_extra + "}";
  };
  auto ok = BpeTokenizer::FromTokenizerJsonContents(json("", ""));
  ASSERT_TRUE(ok.ok()) << ok.status();
  std::vector<int32_t> ids;
  ASSERT_TRUE((*ok)->Encode("abc", {}, &ids).ok());  // add_prefix_space: " abc"
  EXPECT_EQ(ids, (std::vector<int32_t>{32, 257}));
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(json(",\"byte_fallback\":true", "")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(json(",\"dropout\":0.1", "")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(json("", ",\"normalizer\":{\"type\":\"NFC\"}")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(
                json("", ",\"post_processor\":{\"type\":\"TemplateProcessing\"}")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(
                json("", ",\"added_tokens\":[{\"id\":258,\"content\":\"<x>\",\"lstrip\":true}]")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents(
                json("", ",\"added_tokens\":[{\"id\":5,\"content\":\"<x>\"}]")).status().code(),
            absl::StatusCode::kInvalidArgument);  // id of another entry
  auto wordpiece = BpeTokenizer::FromTokenizerJsonContents("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}");
  EXPECT_EQ(wordpiece.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BpeTokenizer::FromTokenizerJsonContents("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ortserve::pipeline
