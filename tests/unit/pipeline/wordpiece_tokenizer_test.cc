// SPDX-License-Identifier: Apache-2.0
#include "pipeline/wordpiece_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "pipeline/tokenizer.h"
#include "simdjson.h"

namespace ortserve::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// A tiny vocabulary: id = line number.

constexpr const char* kTinyVocab[] = {
    "[PAD]",       // 0
    "[UNK]",       // 1
    "[CLS]",       // 2
    "[SEP]",       // 3
    "[MASK]",      // 4
    "the",         // 5
    "quick",       // 6
    "brown",       // 7
    "fox",         // 8
    "un",          // 9
    "##aff",       // 10
    "##able",      // 11
    "run",         // 12
    "##ning",      // 13
    ",",           // 14
    ".",           // 15
    "!",           // 16
    "cafe",        // 17
    "中",          // 18
    "国",          // 19
    "hello",       // 20
    "world",       // 21
    "a",           // 22
    "##a",         // 23
    "naive",       // 24
    "é",           // 25
    "Hello",       // 26
    "¿",           // 27
    "“",           // 28
    "”",           // 29
    "x",           // 30
    "##x",         // 31
    "ab",          // 32
    "##c",         // 33
    "[",           // 34
    "]",           // 35
    "cls",         // 36
    "i",           // 37
    "##\xCC\x87",  // 38 (## + U+0307)
    "σ",           // 39
    "ς",           // 40
    "##σ",         // 41
    "##ο",         // 42
    "ο",           // 43
    "ν",           // 44
    "##ν",         // 45
};

std::string TinyVocabTxt() {
  std::string out;
  for (const char* token : kTinyVocab) out += StrCat(token, "\n");
  return out;
}

std::unique_ptr<WordPieceTokenizer> Tiny(VocabTxtOptions options = {}) {
  auto tokenizer = WordPieceTokenizer::FromVocabTxtContents(TinyVocabTxt(), options);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(tokenizer).value();
}

std::vector<int64_t> Ids(const Tokenizer& tokenizer, std::string_view text,
                         TokenizerOptions options = {}) {
  Encoding encoding;
  absl::Status status = tokenizer.Encode(text, options, &encoding);
  EXPECT_TRUE(status.ok()) << status;
  return encoding.ids;
}

// Tokens only, no [CLS]/[SEP].
std::vector<int64_t> Tokens(const WordPieceTokenizer& tokenizer, std::string_view text) {
  std::vector<int64_t> ids;
  absl::Status status = tokenizer.Tokenize(text, &ids);
  EXPECT_TRUE(status.ok()) << status;
  return ids;
}

TEST(WordPieceTokenizerTest, AddsClsAndSepAroundASingleText) {
  auto t = Tiny();
  EXPECT_THAT(Ids(*t, "the quick brown fox"), ElementsAre(2, 5, 6, 7, 8, 3));
  EXPECT_THAT(Ids(*t, ""), ElementsAre(2, 3));
}

TEST(WordPieceTokenizerTest, SplitsWordsIntoGreedyLongestContinuationPieces) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, "unaffable running"), ElementsAre(9, 10, 11, 12, 13));
  // "ab" + "##c" (greedy takes "ab", not "a" + ...).
  EXPECT_THAT(Tokens(*t, "abc"), ElementsAre(32, 33));
  EXPECT_THAT(Tokens(*t, "aaa"), ElementsAre(22, 23, 23));
}

TEST(WordPieceTokenizerTest, MapsAWholeWordToUnkWhenAnyPieceIsMissing) {
  auto t = Tiny();
  // "fox" matches, "##q" does not: the whole word is [UNK], not "fox [UNK]".
  EXPECT_THAT(Tokens(*t, "foxq the"), ElementsAre(1, 5));
  EXPECT_THAT(Tokens(*t, "zzz"), ElementsAre(1));
}

TEST(WordPieceTokenizerTest, MapsWordsLongerThanMaxInputCharsToUnk) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, std::string(100, 'x')), ElementsAreArray([] {
                std::vector<int64_t> v(100, 31);
                v[0] = 30;
                return v;
              }()));
  EXPECT_THAT(Tokens(*t, std::string(101, 'x')), ElementsAre(1));
  VocabTxtOptions short_words;
  short_words.max_input_chars_per_word = 3;
  auto s = Tiny(short_words);
  EXPECT_THAT(Tokens(*s, "xxx xxxx"), ElementsAre(30, 31, 31, 1));
}

TEST(WordPieceTokenizerTest, CountsTheCharLimitAfterNormalization) {
  auto t = Tiny();
  // 100 "é" become 100 "e"s after accent stripping (one char each, not two).
  std::string word;
  for (int i = 0; i < 100; ++i) word += "x\xCC\x81";  // x + U+0301, stripped
  EXPECT_THAT(Tokens(*t, word).size(), 100u);
  word += "x";
  EXPECT_THAT(Tokens(*t, word), ElementsAre(1));
}

TEST(WordPieceTokenizerTest, LowercasesAndStripsAccentsWhenUncased) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, "The QUICK Café naïve"), ElementsAre(5, 6, 17, 24));
  // Decomposed input (e + U+0301) strips the same way.
  EXPECT_THAT(Tokens(*t, "cafe\xCC\x81"), ElementsAre(17));
}

TEST(WordPieceTokenizerTest, KeepsCaseAndAccentsWhenCased) {
  VocabTxtOptions cased;
  cased.lowercase = false;
  auto t = Tiny(cased);
  EXPECT_THAT(Tokens(*t, "Hello hello"), ElementsAre(26, 20));
  EXPECT_THAT(Tokens(*t, "é"), ElementsAre(25));
  EXPECT_THAT(Tokens(*t, "café"), ElementsAre(1));  // no "caf" piece
}

TEST(WordPieceTokenizerTest, StripAccentsCanBeSetApartFromLowercase) {
  VocabTxtOptions keep_accents;
  keep_accents.strip_accents = false;
  auto t = Tiny(keep_accents);
  EXPECT_THAT(Tokens(*t, "É"), ElementsAre(25));  // lowercased, accent kept
  // İ lowercases to i + U+0307 (Rust's full lowercase mapping), not to "i".
  EXPECT_THAT(Tokens(*t, "İ"), ElementsAre(37, 38));
  // With stripping (the default for uncased), the dot is removed.
  EXPECT_THAT(Tokens(*Tiny(), "İ"), ElementsAre(37));
}

TEST(WordPieceTokenizerTest, LowercasesPerCharacterWithoutFinalSigma) {
  auto t = Tiny();
  // Rust lowercases char by char: a word-final Σ becomes σ, not ς.
  EXPECT_THAT(Tokens(*t, "ΣΟΣ"), ElementsAre(39, 42, 41));
}

TEST(WordPieceTokenizerTest, IsolatesCjkIdeographs) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, "中国"), ElementsAre(18, 19));
  EXPECT_THAT(Tokens(*t, "a中a"), ElementsAre(22, 18, 22));
  // An astral ideograph (Extension B) is isolated too; it is not in the vocab.
  EXPECT_THAT(Tokens(*t,
                     "a\xF0\xA0\x80\x80"
                     "a"),
              ElementsAre(22, 1, 22));
  // Hiragana is not a CJK ideograph: it stays inside the word.
  EXPECT_THAT(Tokens(*t, "aあa"), ElementsAre(1));
}

TEST(WordPieceTokenizerTest, DoesNotIsolateCjkWhenDisabled) {
  VocabTxtOptions no_cjk;
  no_cjk.handle_chinese_chars = false;
  auto t = Tiny(no_cjk);
  EXPECT_THAT(Tokens(*t, "中国"), ElementsAre(1));  // "中" matches, "##国" does not
}

TEST(WordPieceTokenizerTest, SplitsAsciiAndUnicodePunctuation) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, "hello,world!"), ElementsAre(20, 14, 21, 16));
  EXPECT_THAT(Tokens(*t, "¿hello”"), ElementsAre(27, 20, 29));
  // '$' is ASCII punctuation (not in the vocab: [UNK]); '€' (Sc) is not
  // punctuation and stays attached to the word.
  EXPECT_THAT(Tokens(*t, "a$a"), ElementsAre(22, 1, 22));
  EXPECT_THAT(Tokens(*t, "a€a"), ElementsAre(1));
  EXPECT_THAT(Tokens(*t, "..."), ElementsAre(15, 15, 15));
}

TEST(WordPieceTokenizerTest, CleansControlCharactersAndNormalizesWhitespace) {
  auto t = Tiny();
  // NUL, U+FFFD, BEL, zero-width space (Cf), soft hyphen (Cf): removed, so
  // the word is not split.
  EXPECT_THAT(Tokens(*t, std::string("the\0fox", 7)), ElementsAre(1));
  EXPECT_THAT(Tokens(*t, "fo\xEF\xBF\xBDx"), ElementsAre(8));
  EXPECT_THAT(Tokens(*t, "fo\ax"), ElementsAre(8));
  EXPECT_THAT(Tokens(*t, "fo\xE2\x80\x8Bx"), ElementsAre(8));
  EXPECT_THAT(Tokens(*t, "fo\xC2\xADx"), ElementsAre(8));
  // \t \n \r, NBSP, ideographic space, line separator: word boundaries.
  EXPECT_THAT(Tokens(*t,
                     "the\tfox\r\nthe\xC2\xA0"
                     "fox\xE3\x80\x80the\xE2\x80\xA8"
                     "fox"),
              ElementsAre(5, 8, 5, 8, 5, 8));
  EXPECT_THAT(Tokens(*t, " \t\n "), ElementsAre());
}

TEST(WordPieceTokenizerTest, KeepsSpecialTokensInTextAsSingleTokens) {
  auto t = Tiny();
  EXPECT_THAT(Tokens(*t, "the [MASK] fox[SEP]x"), ElementsAre(5, 4, 8, 3, 30));
  EXPECT_THAT(Tokens(*t, "[CLS][PAD][UNK]"), ElementsAre(2, 0, 1));
  // Special tokens match case-sensitively before normalization.
  EXPECT_THAT(Tokens(*t, "[cls]"), ElementsAre(34, 36, 35));
  EXPECT_THAT(Tokens(*t, "[[SEP]]"), ElementsAre(34, 3, 35));
}

TEST(WordPieceTokenizerTest, EncodesPairsWithTypeIds) {
  auto t = Tiny();
  Encoding e;
  ASSERT_TRUE(t->EncodePair("the fox", "hello", {}, &e).ok());
  EXPECT_THAT(e.ids, ElementsAre(2, 5, 8, 3, 20, 3));
  EXPECT_THAT(e.type_ids, ElementsAre(0, 0, 0, 0, 1, 1));
  EXPECT_THAT(e.attention_mask, ElementsAre(1, 1, 1, 1, 1, 1));
  // An empty second text still gets its [SEP].
  ASSERT_TRUE(t->EncodePair("the", "", {}, &e).ok());
  EXPECT_THAT(e.ids, ElementsAre(2, 5, 3, 3));
  EXPECT_THAT(e.type_ids, ElementsAre(0, 0, 0, 1));
}

TEST(WordPieceTokenizerTest, TruncatesSingleTextsIncludingSpecials) {
  auto t = Tiny();
  TokenizerOptions options;
  options.max_length = 4;
  EXPECT_THAT(Ids(*t, "the quick brown fox", options), ElementsAre(2, 5, 6, 3));
  options.max_length = 2;
  EXPECT_THAT(Ids(*t, "the quick brown fox", options), ElementsAre(2, 3));
  options.max_length = 1;
  Encoding e;
  absl::Status status = t->Encode("the", options, &e);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ToStd(status.message()), HasSubstr("max_length 1"));
  options.truncate = false;
  EXPECT_THAT(Ids(*t, "the quick", options), ElementsAre(2, 5, 6, 3));
}

TEST(WordPieceTokenizerTest, TruncatesPairsLongestFirst) {
  auto t = Tiny();
  // max_length 10 leaves 7 tokens besides the specials: (4, 8) -> (3, 4);
  // (8, 4) -> (4, 3); (2, 8) -> (2, 5); (8, 8) -> (3, 4). A text is counted
  // only up to max_length, so (12, 11) is a tie and the odd token goes to the
  // second text, while (10, 9) still gives it to the longer first one. Every
  // case was checked against tokenizers@0.23.2.
  struct Case {
    size_t a, b, want_a, want_b;
  };
  for (const Case& c : {Case{4, 8, 3, 4}, Case{8, 4, 4, 3}, Case{2, 8, 2, 5}, Case{8, 2, 5, 2},
                        Case{8, 8, 3, 4}, Case{2, 4, 2, 4}, Case{0, 8, 0, 7}, Case{12, 11, 3, 4},
                        Case{10, 9, 4, 3}, Case{11, 10, 3, 4}, Case{10, 10, 3, 4}}) {
    std::string a, b;
    for (size_t i = 0; i < c.a; ++i) a += "the ";
    for (size_t i = 0; i < c.b; ++i) b += "fox ";
    TokenizerOptions options;
    options.max_length = 10;
    Encoding e;
    ASSERT_TRUE(t->EncodePair(a, b, options, &e).ok());
    std::vector<int64_t> want = {2};
    want.insert(want.end(), c.want_a, 5);
    want.push_back(3);
    want.insert(want.end(), c.want_b, 8);
    want.push_back(3);
    EXPECT_THAT(e.ids, ElementsAreArray(want)) << c.a << "+" << c.b;
  }
  Encoding e;
  TokenizerOptions options;
  options.max_length = 2;
  EXPECT_EQ(t->EncodePair("a", "b", options, &e).code(), absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerTest, PairTruncationCountsEachTextUpToTheWordHoldingTokenMaxLength) {
  auto t = Tiny();
  // "unaffable" is three tokens (un ##aff ##able); max_length 10 leaves 7.
  // Expected splits were checked against tokenizers@0.23.2 (with its vocab,
  // where the word is three tokens too).
  struct Case {
    std::string a;
    size_t b_foxes, want_a, want_b;
  };
  auto repeat = [](std::string_view word, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      out += word;
      out += ' ';
    }
    return out;
  };
  const Case cases[] = {
      // Token 10 of `a` is "un": counted to the word's end, 12 > 10 foxes.
      {repeat("the", 9) + "unaffable", 13, 4, 3},
      // Token 10 is "##aff": counted as 11 (the last "the" not), still > 10.
      {repeat("the", 8) + "unaffable the", 13, 4, 3},
      // Token 10 ends a word: counted 10, a tie with the foxes, so the odd
      // token goes to the second text although `a` has 13 tokens.
      {repeat("the", 10) + "unaffable", 12, 3, 4},
  };
  for (const Case& c : cases) {
    TokenizerOptions options;
    options.max_length = 10;
    Encoding e;
    ASSERT_TRUE(t->EncodePair(c.a, repeat("fox", static_cast<int>(c.b_foxes)), options, &e).ok());
    ASSERT_EQ(e.ids.size(), 10u) << c.a;
    const auto sep = std::find(e.ids.begin() + 1, e.ids.end(), 3);
    EXPECT_EQ(static_cast<size_t>(sep - e.ids.begin() - 1), c.want_a) << c.a;
    EXPECT_EQ(static_cast<size_t>(e.ids.end() - sep - 2), c.want_b) << c.a;
    EXPECT_THAT(std::vector<int64_t>(sep + 1, e.ids.end() - 1), ::testing::Each(8)) << c.a;
  }
}

TEST(WordPieceTokenizerTest, PadsToMaxLength) {
  auto t = Tiny();
  TokenizerOptions options;
  options.max_length = 6;
  options.padding = TokenizerOptions::Padding::kMaxLength;
  Encoding e;
  ASSERT_TRUE(t->EncodePair("the", "fox", options, &e).ok());
  EXPECT_THAT(e.ids, ElementsAre(2, 5, 3, 8, 3, 0));
  EXPECT_THAT(e.type_ids, ElementsAre(0, 0, 0, 1, 1, 0));
  EXPECT_THAT(e.attention_mask, ElementsAre(1, 1, 1, 1, 1, 0));
}

TEST(WordPieceTokenizerTest, BatchPadsToLongestOrMaxLength) {
  auto t = Tiny();
  const std::vector<std::string_view> texts = {"the", "the quick brown", ""};
  BatchEncoding batch;
  TokenizerOptions options;
  options.padding = TokenizerOptions::Padding::kLongest;
  ASSERT_TRUE(t->EncodeBatch(texts, {}, options, &batch).ok());
  EXPECT_EQ(batch.batch_size, 3);
  EXPECT_EQ(batch.sequence_length, 5);
  EXPECT_THAT(batch.ids, ElementsAre(2, 5, 3, 0, 0, 2, 5, 6, 7, 3, 2, 3, 0, 0, 0));
  EXPECT_THAT(batch.attention_mask, ElementsAre(1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0));
  options.padding = TokenizerOptions::Padding::kMaxLength;
  options.max_length = 7;
  const std::vector<std::string_view> pairs = {"fox", "fox", "fox"};
  ASSERT_TRUE(t->EncodeBatch(texts, pairs, options, &batch).ok());
  EXPECT_EQ(batch.sequence_length, 7);
  EXPECT_THAT(std::vector<int64_t>(batch.type_ids.begin() + 7, batch.type_ids.begin() + 14),
              ElementsAre(0, 0, 0, 0, 0, 1, 1));
  const std::vector<std::string_view> too_few = {"fox"};
  EXPECT_EQ(t->EncodeBatch(texts, too_few, options, &batch).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerTest, RejectsInvalidUtf8NamingTheOffset) {
  auto t = Tiny();
  Encoding e;
  for (const std::string& bad : {std::string("the \xFF"), std::string("the \xC3"),
                                 std::string("the \xED\xA0\x80"),  // surrogate
                                 std::string("the \xC0\xAF")}) {   // overlong
    absl::Status status = t->Encode(bad, {}, &e);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ToStd(status.message()), HasSubstr("byte offset 4"));
  }
  absl::Status status = t->EncodePair("ok", "\x80", {}, &e);
  EXPECT_THAT(ToStd(status.message()), HasSubstr("text_pair is not valid UTF-8"));
}

TEST(WordPieceTokenizerTest, ReusesEncodingBuffersAcrossCalls) {
  auto t = Tiny();
  Encoding e;
  ASSERT_TRUE(t->Encode("the quick brown fox", {}, &e).ok());
  const int64_t* data = e.ids.data();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(t->Encode("the fox", {}, &e).ok());
    EXPECT_EQ(e.ids.data(), data);
  }
}

TEST(WordPieceTokenizerTest, LoadsVocabTxtFromDiskAndRejectsAVocabWithoutUnk) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "wordpiece_test_vocab";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "vocab.txt") << TinyVocabTxt(); }
  auto loaded = LoadTokenizer(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(Ids(**loaded, "the fox"), ElementsAre(2, 5, 8, 3));
  EXPECT_EQ((*loaded)->vocab_size(), std::size(kTinyVocab));
  EXPECT_EQ((*loaded)->TokenToId("##able"), 11);
  std::filesystem::remove_all(dir);

  auto missing = WordPieceTokenizer::FromVocabTxtContents("a\nb\n[CLS]\n[SEP]\n");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ToStd(missing.status().message()), HasSubstr("\"[UNK]\""));
  EXPECT_EQ(LoadTokenizer("/nonexistent/vocab.txt").status().code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// tokenizer.json.

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A tokenizer.json like the Hub's bert-base-uncased one, over `vocab`.
std::string BertTokenizerJson(const std::vector<std::string>& vocab, std::string_view normalizer,
                              std::string_view post_processor,
                              std::string_view model_type = "WordPiece",
                              std::string_view pre_tokenizer = R"({"type": "BertPreTokenizer"})") {
  auto id = [&](std::string_view token) {
    for (size_t i = 0; i < vocab.size(); ++i) {
      if (vocab[i] == token) return static_cast<int64_t>(i);
    }
    return int64_t{-1};
  };
  std::string added;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    if (!added.empty()) added += ",";
    added += StrCat(R"({"id": )", id(special), R"(, "content": ")", special,
                    R"(", "single_word": false, "lstrip": false, "rstrip": false, )"
                    R"("normalized": false, "special": true})");
  }
  std::string vocab_json;
  for (size_t i = 0; i < vocab.size(); ++i) {
    if (i > 0) vocab_json += ",";
    vocab_json += StrCat("\"", JsonEscape(vocab[i]), "\": ", i);
  }
  std::string post(post_processor);
  for (const char* special : {"[CLS]", "[SEP]"}) {
    const std::string key = StrCat("@", std::string_view(special).substr(1, 3));
    for (size_t at; (at = post.find(key)) != std::string::npos;)
      post.replace(at, 4, StrCat(id(special)));
  }
  return StrCat(R"({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [)",
                added, R"(], "normalizer": )", normalizer, R"(, "pre_tokenizer": )", pre_tokenizer,
                R"(, "post_processor": )", post,
                R"(, "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},)"
                R"( "model": {"type": ")",
                model_type,
                R"(", "unk_token": "[UNK]", "continuing_subword_prefix": "##", )"
                R"("max_input_chars_per_word": 100, "vocab": {)",
                vocab_json, "}}}");
}

constexpr std::string_view kUncasedNormalizer =
    R"({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true})";
constexpr std::string_view kTemplate = R"({"type": "TemplateProcessing",
  "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
  "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
           {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
  "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [@CLS], "tokens": ["[CLS]"]},
                     "[SEP]": {"id": "[SEP]", "ids": [@SEP], "tokens": ["[SEP]"]}}})";
constexpr std::string_view kBertProcessing =
    R"({"type": "BertProcessing", "sep": ["[SEP]", @SEP], "cls": ["[CLS]", @CLS]})";

std::vector<std::string> TinyVocabList() { return {std::begin(kTinyVocab), std::end(kTinyVocab)}; }

TEST(WordPieceTokenizerJsonTest, LoadsABertTokenizerJson) {
  for (std::string_view post : {kTemplate, kBertProcessing}) {
    auto t = WordPieceTokenizer::FromTokenizerJsonContents(
        BertTokenizerJson(TinyVocabList(), kUncasedNormalizer, post));
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_THAT(Ids(**t, "The Café [MASK] 中国!"), ElementsAre(2, 5, 17, 4, 18, 19, 16, 3));
    Encoding e;
    ASSERT_TRUE((*t)->EncodePair("the", "fox", {}, &e).ok());
    EXPECT_THAT(e.type_ids, ElementsAre(0, 0, 0, 1, 1));
    EXPECT_EQ((*t)->pad_id(), 0);
  }
}

TEST(WordPieceTokenizerJsonTest, HonoursNormalizerFlags) {
  auto cased = WordPieceTokenizer::FromTokenizerJsonContents(BertTokenizerJson(
      TinyVocabList(),
      R"({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": false, "strip_accents": null, "lowercase": false})",
      kTemplate));
  ASSERT_TRUE(cased.ok()) << cased.status();
  EXPECT_THAT(Ids(**cased, "Hello é 中国"), ElementsAre(2, 26, 25, 1, 3));
  auto no_normalizer = WordPieceTokenizer::FromTokenizerJsonContents(
      BertTokenizerJson(TinyVocabList(), "null", "null"));
  ASSERT_TRUE(no_normalizer.ok()) << no_normalizer.status();
  EXPECT_THAT(Ids(**no_normalizer, "Hello the"), ElementsAre(26, 5));  // no post-processor
}

TEST(WordPieceTokenizerJsonTest, RefusesANonWordPieceModel) {
  auto t = WordPieceTokenizer::FromTokenizerJsonContents(
      BertTokenizerJson(TinyVocabList(), kUncasedNormalizer, kTemplate, "BPE"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToStd(t.status().message()),
            "tokenizer.json: model.type \"BPE\" is not supported (only WordPiece)");
}

TEST(WordPieceTokenizerJsonTest, RefusesUnsupportedComponentsByName) {
  auto normalizer = WordPieceTokenizer::FromTokenizerJsonContents(
      BertTokenizerJson(TinyVocabList(), R"({"type": "Sequence", "normalizers": []})", kTemplate));
  EXPECT_EQ(normalizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ToStd(normalizer.status().message()), HasSubstr("normalizer type \"Sequence\""));

  auto pre = WordPieceTokenizer::FromTokenizerJsonContents(BertTokenizerJson(
      TinyVocabList(), kUncasedNormalizer, kTemplate, "WordPiece", R"({"type": "Whitespace"})"));
  EXPECT_THAT(ToStd(pre.status().message()), HasSubstr("pre_tokenizer type \"Whitespace\""));

  auto post = WordPieceTokenizer::FromTokenizerJsonContents(
      BertTokenizerJson(TinyVocabList(), kUncasedNormalizer, R"({"type": "RobertaProcessing"})"));
  EXPECT_THAT(ToStd(post.status().message()),
              HasSubstr("post_processor type \"RobertaProcessing\""));

  auto bad = WordPieceTokenizer::FromTokenizerJsonContents("{\"model\": ");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ToStd(bad.status().message()), HasSubstr("not valid JSON"));
}

TEST(WordPieceTokenizerJsonTest, MatchesNormalizedAddedTokensAfterNormalization) {
  std::string json = BertTokenizerJson(TinyVocabList(), kUncasedNormalizer, kTemplate);
  // Add a normalized (non-special) token "Fox!" with a new id: it is matched
  // in the normalized text, so "FOX!" and "fox!" both hit it.
  const std::string marker = R"("added_tokens": [)";
  json.replace(
      json.find(marker), marker.size(),
      StrCat(marker, R"({"id": 99, "content": "Fox!", "special": false, "normalized": true},)"));
  auto t = WordPieceTokenizer::FromTokenizerJsonContents(json);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Ids(**t, "the FOX! fox!x fox"), ElementsAre(2, 5, 99, 99, 30, 8, 3));
  EXPECT_EQ((*t)->vocab_size(), 100u);
}

// ---------------------------------------------------------------------------
// Golden data: ids produced by Hugging Face tokenizers (see
// scripts/make_tokenizer_goldens.mjs) over a 10k-entry corpus, with the real
// bert-base-uncased vocabulary.

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
#ifdef ORTSERVE_TEST_SOURCE_DIR
  return ORTSERVE_TEST_SOURCE_DIR;
#else
  return ".";
#endif
}

std::string VocabPath() {
  if (const char* vocab = std::getenv("ORTSERVE_VOCAB")) return vocab;
  return SourceDir() + "/.deps/vocab/bert-base-uncased-vocab.txt";
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<int64_t> ParseIds(std::string_view s) {
  std::vector<int64_t> ids;
  std::istringstream in{std::string(s)};
  for (int64_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::vector<std::string_view> SplitTabs(std::string_view s) {
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    const size_t tab = s.find('\t', pos);
    parts.push_back(s.substr(pos, tab == std::string_view::npos ? tab : tab - pos));
    if (tab == std::string_view::npos) return parts;
    pos = tab + 1;
  }
}

std::vector<int64_t> TypeIds(std::string_view zeros_and_ones) {
  std::vector<int64_t> out;
  for (char c : zeros_and_ones) out.push_back(c - '0');
  return out;
}

struct CorpusEntry {
  std::string a;
  std::optional<std::string> b;
};

class GoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_path_ = VocabPath();
    ASSERT_TRUE(std::filesystem::exists(vocab_path_))
        << "bert-base-uncased vocabulary not found at " << vocab_path_
        << ": run scripts/fetch_vocab.sh (or set ORTSERVE_VOCAB to a bert-base-uncased vocab.txt)";
    const std::string data = SourceDir() + "/tests/data/tokenizer/";
    simdjson::dom::parser parser;
    for (const std::string& line : ReadLines(data + "corpus.jsonl")) {
      simdjson::dom::element e;
      ASSERT_FALSE(parser.parse(line).get(e)) << line;
      CorpusEntry entry;
      std::string_view s;
      ASSERT_FALSE(e["a"].get_string().get(s));
      entry.a = std::string(s);
      if (!e["b"].get_string().get(s)) entry.b = std::string(s);
      corpus_.push_back(std::move(entry));
    }
    goldens_ = ReadLines(data + "goldens.txt");
    truncated_ = ReadLines(data + "goldens_truncated.txt");
    ASSERT_GE(corpus_.size(), 10000u);
    ASSERT_EQ(goldens_.size(), corpus_.size());
    ASSERT_GT(truncated_.size(), 1000u);
  }

  // Compares every corpus entry; reports each mismatch with its text.
  void ExpectGoldens(const Tokenizer& t) {
    int mismatches = 0;
    Encoding e;
    for (size_t i = 0; i < corpus_.size(); ++i) {
      const CorpusEntry& entry = corpus_[i];
      TokenizerOptions options;
      options.truncate = false;
      absl::Status status =
          entry.b ? t.EncodePair(entry.a, *entry.b, options, &e) : t.Encode(entry.a, options, &e);
      ASSERT_TRUE(status.ok()) << status;
      const std::vector<std::string_view> want = SplitTabs(goldens_[i]);
      const bool ok = e.ids == ParseIds(want[0]) && (!entry.b || e.type_ids == TypeIds(want.at(1)));
      if (!ok && ++mismatches <= 20) {
        ADD_FAILURE() << "corpus entry " << i << " a=\"" << entry.a << "\""
                      << (entry.b ? StrCat(" b=\"", *entry.b, "\"") : "") << "\n  want " << want[0]
                      << "\n  got  " << StrJoin(e.ids, " ");
      }
    }
    EXPECT_EQ(mismatches, 0) << "of " << corpus_.size() << " entries";
  }

  void ExpectTruncatedGoldens(const Tokenizer& t) {
    int mismatches = 0;
    Encoding e;
    for (const std::string& line : truncated_) {
      const std::vector<std::string_view> f = SplitTabs(line);
      const size_t index = std::stoul(std::string(f.at(0)));
      TokenizerOptions options;
      options.max_length = std::stoi(std::string(f.at(1)));
      const CorpusEntry& entry = corpus_.at(index);
      absl::Status status =
          entry.b ? t.EncodePair(entry.a, *entry.b, options, &e) : t.Encode(entry.a, options, &e);
      ASSERT_TRUE(status.ok()) << status;
      const bool ok = e.ids == ParseIds(f.at(2)) && (!entry.b || e.type_ids == TypeIds(f.at(3)));
      if (!ok && ++mismatches <= 20) {
        ADD_FAILURE() << "corpus entry " << index << " max_length " << options.max_length << " a=\""
                      << entry.a << "\"" << (entry.b ? StrCat(" b=\"", *entry.b, "\"") : "")
                      << "\n  want " << f.at(2) << "\n  got  " << StrJoin(e.ids, " ");
      }
    }
    EXPECT_EQ(mismatches, 0) << "of " << truncated_.size() << " truncated entries";
  }

  std::string vocab_path_;
  std::vector<CorpusEntry> corpus_;
  std::vector<std::string> goldens_;
  std::vector<std::string> truncated_;
};

TEST_F(GoldenTest, VocabTxtMatchesHuggingFaceOnTheWholeCorpus) {
  auto t = LoadTokenizer(vocab_path_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 30522u);
  ExpectGoldens(**t);
}

TEST_F(GoldenTest, VocabTxtMatchesHuggingFaceWithLongestFirstTruncation) {
  auto t = LoadTokenizer(vocab_path_);
  ASSERT_TRUE(t.ok()) << t.status();
  ExpectTruncatedGoldens(**t);
}

TEST_F(GoldenTest, TokenizerJsonMatchesHuggingFaceOnTheWholeCorpus) {
  auto t = WordPieceTokenizer::FromTokenizerJsonContents(
      BertTokenizerJson(ReadLines(vocab_path_), kUncasedNormalizer, kTemplate));
  ASSERT_TRUE(t.ok()) << t.status();
  ExpectGoldens(**t);
  ExpectTruncatedGoldens(**t);
}

TEST_F(GoldenTest, ConcurrentEncodesGiveTheSameIds) {
  auto loaded = LoadTokenizer(vocab_path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& t = **loaded;
  for (int threads : {2, 4, 8}) {
    std::vector<int> mismatches(threads, 0);
    std::vector<std::thread> pool;
    for (int w = 0; w < threads; ++w) {
      pool.emplace_back([&, w] {
        Encoding e;
        TokenizerOptions options;
        options.truncate = false;
        for (size_t i = w; i < corpus_.size(); i += threads) {
          const CorpusEntry& entry = corpus_[i];
          absl::Status status = entry.b ? t.EncodePair(entry.a, *entry.b, options, &e)
                                        : t.Encode(entry.a, options, &e);
          if (!status.ok() || e.ids != ParseIds(SplitTabs(goldens_[i])[0])) ++mismatches[w];
        }
      });
    }
    for (std::thread& th : pool) th.join();
    for (int w = 0; w < threads; ++w)
      EXPECT_EQ(mismatches[w], 0) << threads << " threads, worker " << w;
  }
}

}  // namespace
}  // namespace ortserve::pipeline
