// SPDX-License-Identifier: Apache-2.0
// WordPieceTokenizer: BERT's tokenizer (basic tokenizer + WordPiece), with ids
// identical to Hugging Face's BertTokenizerFast / the Rust `tokenizers` crate.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pipeline/tokenizer.h"

namespace ortserve::pipeline {

// BERT WordPiece tokenizer. The pipeline per text (or per text of a pair):
//   1. Added tokens ([CLS], [SEP], [PAD], [UNK], [MASK] for BERT) are split
//      out of the raw text first, leftmost-longest, and map to their ids.
//   2. BertNormalizer on the rest: drop NUL, U+FFFD and control characters
//      (Cc, Cf, Co except \t \n \r), turn whitespace into ' ', isolate CJK
//      ideographs, strip accents (NFD, drop Mn), lowercase (per character).
//   3. BertPreTokenizer: split on whitespace, isolate punctuation (ASCII
//      33-47, 58-64, 91-96, 123-126 and Unicode P*).
//   4. WordPiece: greedy longest-match-first with the continuing-subword
//      prefix ("##"); a word longer than max_input_chars_per_word, or one with
//      a piece not in the vocabulary, becomes the unknown token.
//   5. Post-processing template ([CLS] A [SEP] / [CLS] A [SEP] B [SEP]),
//      longest-first truncation (the rule is in docs/tokenizer.md), padding.
// Steps 2-4 run fused in one pass over the text; ASCII bytes take a table
// path that never calls into utf8proc. Known deviations from the Rust crate
// are listed in docs/tokenizer.md (Unicode table versions; canonical
// reordering of spacing combining marks).
//
// Thread-safety: thread-safe; immutable after Create. Per-call scratch
// buffers are thread-local, so concurrent Encode calls share nothing mutable.
//
// Errors: see Tokenizer. Create returns InvalidArgument for an unusable
// configuration (unknown token not in the vocabulary, duplicate ids, ...).
class WordPieceTokenizer final : public Tokenizer {
 public:
  // A token matched in the text before normalization (normalized = false) or
  // in the normalized text (normalized = true), like Hugging Face's
  // AddedToken. lstrip / rstrip / single_word are not supported.
  struct AddedToken {
    std::string content;
    int64_t id = 0;
    bool normalized = false;
  };

  // One item of a post-processing template.
  struct TemplatePiece {
    enum class Kind {
      kSequenceA,  // the first text's tokens
      kSequenceB,  // the pair text's tokens
      kSpecial,    // fixed ids (e.g. [CLS])
    };
    Kind kind = Kind::kSpecial;
    std::vector<int64_t> ids;  // kSpecial only
    int64_t type_id = 0;
  };

  struct Options {
    // token -> id. Ids need not be contiguous but must be unique and >= 0.
    std::vector<std::pair<std::string, int64_t>> vocab;
    std::string unk_token = "[UNK]";
    std::string continuing_subword_prefix = "##";
    int max_input_chars_per_word = 100;

    // BertNormalizer. All false = no normalizer.
    bool clean_text = true;
    bool handle_chinese_chars = true;
    bool strip_accents = true;
    bool lowercase = true;

    std::vector<AddedToken> added_tokens;
    // Templates; empty = no special tokens around the sequences (and for
    // `pair`, A followed by B with type id 1).
    std::vector<TemplatePiece> single;
    std::vector<TemplatePiece> pair;
    int64_t pad_id = 0;
  };

  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> Create(Options options);

  // Reads a vocab.txt (one token per line, id = line number). [UNK], [CLS]
  // and [SEP] (as named in `options`) must be present; [PAD] and [MASK] are
  // used when present.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromVocabTxt(
      const std::string& path, const VocabTxtOptions& options = {});
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromVocabTxtContents(
      std::string_view contents, const VocabTxtOptions& options = {});

  // Reads a Hugging Face tokenizer.json with a WordPiece model.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromTokenizerJson(
      const std::string& path);
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromTokenizerJsonContents(
      std::string_view json);

  absl::Status Encode(std::string_view text, const TokenizerOptions& options,
                      Encoding* out) const override;
  absl::Status EncodePair(std::string_view a, std::string_view b, const TokenizerOptions& options,
                          Encoding* out) const override;
  int64_t pad_id() const override { return pad_id_; }
  size_t vocab_size() const override { return vocab_size_; }
  std::optional<int64_t> TokenToId(std::string_view token) const override;
  bool IsContinuation(int64_t id) const override { return continuation_ids_.contains(id); }

  // Tokens of `text` without special tokens, truncation or padding (appended
  // to `ids`). Exposed for tests and the benchmark.
  absl::Status Tokenize(std::string_view text, std::vector<int64_t>* ids) const;

 private:
  // How one character is treated by the fused normalize + pre-tokenize pass.
  enum class CharClass : uint8_t {
    kWord,   // part of a word
    kSpace,  // word boundary, dropped
    kPunct,  // word boundary, and a one-character word of its own
    kDrop,   // removed (control characters when cleaning)
  };
  // One normalization configuration (the real one, or identity for text that
  // is already normalized). `ascii_*` are the ASCII fast-path tables.
  struct Pass {
    bool clean_text = false;
    bool handle_chinese_chars = false;
    bool strip_accents = false;
    bool lowercase = false;
    std::array<CharClass, 128> ascii_class{};
    std::array<char, 128> ascii_map{};
  };
  struct Matcher {
    std::array<bool, 256> first_byte{};
    std::vector<std::pair<std::string, int64_t>> tokens;  // longest first
    bool empty() const { return tokens.empty(); }
    // Leftmost-longest match in `text` at or after `from`: (start, length, id).
    bool Find(std::string_view text, size_t from, size_t* start, size_t* length, int64_t* id) const;
  };
  // Per-thread buffers reused across calls, so steady-state encoding does not
  // allocate.
  struct Scratch {
    std::string word;
    std::string normalized;
    std::vector<int64_t> a;
    std::vector<int64_t> b;
  };
  static Scratch& ThreadScratch();
  static constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();
  // InvalidArgument naming `what` and the offset of the first invalid byte.
  static absl::Status ValidateText(std::string_view text, std::string_view what);

  // Runs one pass over `segment`, feeding `sink` word characters, boundaries
  // and punctuation (see the sinks in the .cc).
  template <typename Sink>
  static void RunPass(std::string_view segment, const Pass& pass, Sink& sink);

  explicit WordPieceTokenizer(Options options) : options_(std::move(options)) {}
  absl::Status Init();
  static Pass MakePass(bool clean_text, bool handle_chinese_chars, bool strip_accents,
                       bool lowercase);
  size_t CountSpecials(const std::vector<TemplatePiece>& tmpl) const;

  // Appends the ids of one text (no specials). Stops at the first word
  // boundary (a pre-token or added token ends) where `ids` holds at least
  // `limit` ids: the ids are then exactly those of the shortest prefix of
  // whole words that reaches `limit`, or of the whole text if it is shorter.
  void TokenizeText(std::string_view text, Scratch& scratch, std::vector<int64_t>* ids,
                    size_t limit) const;
  void TokenizeSegment(std::string_view segment, const Pass& pass, Scratch& scratch,
                       std::vector<int64_t>* ids, size_t limit) const;
  void NormalizeToString(std::string_view segment, std::string* out) const;
  // WordPiece over one pre-token (normalized UTF-8, `chars` code points).
  void WordPiece(std::string_view word, size_t chars, std::vector<int64_t>* ids) const;
  void Assemble(const std::vector<TemplatePiece>& tmpl, const std::vector<int64_t>& a,
                const std::vector<int64_t>* b, const TokenizerOptions& options,
                Encoding* out) const;

  Options options_;
  absl::flat_hash_map<std::string, int64_t> vocab_;         // every token
  absl::flat_hash_map<std::string, int64_t> continuation_;  // prefixed tokens, prefix removed
  absl::flat_hash_set<int64_t> continuation_ids_;            // their ids
  size_t max_token_bytes_ = 0;
  size_t max_continuation_bytes_ = 0;
  int64_t unk_id_ = 0;
  int64_t pad_id_ = 0;
  size_t vocab_size_ = 0;
  std::array<int64_t, 128> ascii_punct_id_{};  // id of each one-byte punctuation word
  Pass normalize_pass_;
  Pass identity_pass_;
  Matcher raw_added_;         // matched before normalization
  Matcher normalized_added_;  // matched after normalization
  size_t single_specials_ = 0;
  size_t pair_specials_ = 0;
};

}  // namespace ortserve::pipeline
