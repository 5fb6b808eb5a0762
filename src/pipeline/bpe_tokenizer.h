// SPDX-License-Identifier: Apache-2.0
// Byte-level BPE (the GPT-2 family of tokenizers): text to token ids and back,
// and an incremental decoder for streaming generated tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ortserve::pipeline {

// Bounds on what a loader accepts: a tokenizer file is input too.
struct BpeLoadLimits {
  size_t max_file_bytes = size_t{64} << 20;  // vocab.json, merges.txt, tokenizer.json
  size_t max_vocab_size = size_t{1} << 20;   // ids are int32 and below this
  size_t max_merges = size_t{1} << 20;
  size_t max_token_bytes = 1024;  // one vocabulary entry (and one added token)
};

// Bounds on one Encode call (a prompt from a client).
struct BpeEncodeOptions {
  size_t max_text_bytes = size_t{1} << 20;
  size_t max_tokens = size_t{1} << 18;
  // Text equal to an added token (e.g. "<|endoftext|>") becomes that token's
  // id, as Hugging Face tokenizers do. A server that must not let a client
  // write control tokens sets this to false: the text is then encoded as
  // ordinary bytes.
  bool match_added_tokens = true;
  // With match_added_tokens: byte ranges [first, second) of the text (sorted,
  // disjoint) where no added token is matched, not even one that only
  // overlaps them: the text a client wrote inside a prompt the server built
  // around it (a chat template's output), whose control tokens are matched
  // only where the template wrote them.
  std::span<const std::pair<size_t, size_t>> literal_ranges;
};

// Byte-level BPE tokenizer: the byte-to-unicode alphabet of GPT-2, merges
// applied lowest rank first, and the GPT-2 pre-tokenizer split
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (implemented by hand over Unicode general categories from utf8proc; \s is
// Unicode White_Space, as in the Rust tokenizers crate).
//
// Thread-safety: thread-safe. A loaded tokenizer is immutable.
//
// Errors: loaders return InvalidArgument naming the file and the entry that is
// wrong, Unimplemented for a tokenizer.json feature this class does not have
// (never ignored silently), NotFound / ResourceExhausted for files missing or
// over BpeLoadLimits. Encode returns InvalidArgument for text that is not
// UTF-8 or over the options' bounds.
class BpeTokenizer {
 public:
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = true;  // skipped by Decode(skip_special = true)
  };
  struct Options {
    std::vector<std::pair<std::string, int32_t>> vocab;      // byte-level token text -> id
    std::vector<std::pair<std::string, std::string>> merges;  // in rank order
    std::vector<AddedToken> added_tokens;
    bool add_prefix_space = false;  // ByteLevel pre-tokenizer: prepend ' ' unless text starts with one
    bool use_regex = true;          // false: the whole text is one word
    bool ignore_merges = false;     // a word that is a vocabulary entry is taken whole
    BpeLoadLimits limits;
  };

  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(Options options);
  // vocab.json (an object token -> id) and merges.txt ("a b" per line, an
  // optional "#version" first line).
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromVocabAndMerges(
      const std::string& vocab_json_path, const std::string& merges_txt_path,
      const BpeLoadLimits& limits = {});
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromVocabAndMergesContents(
      std::string_view vocab_json, std::string_view merges_txt, const BpeLoadLimits& limits = {});
  // A Hugging Face tokenizer.json whose model.type is "BPE" with a ByteLevel
  // pre-tokenizer.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(
      const std::string& path, const BpeLoadLimits& limits = {});
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromTokenizerJsonContents(
      std::string_view json, const BpeLoadLimits& limits = {});

  // Encodes `text` into `ids` (cleared first; its capacity is reused).
  absl::Status Encode(std::string_view text, const BpeEncodeOptions& options,
                      std::vector<int32_t>* ids) const;

  // The text of `ids`: the bytes of each token joined, with ill-formed UTF-8
  // replaced by U+FFFD (one per maximal ill-formed subpart, as Rust's
  // from_utf8_lossy and Hugging Face's decoder do). InvalidArgument for an id
  // outside the vocabulary.
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special = true) const;

  // The raw bytes token `id` stands for (an added token: its content); empty
  // for an id outside [0, vocab_size()).
  std::string_view TokenBytes(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  // The id of a vocabulary entry or added token, by its (byte-level) text.
  std::optional<int32_t> TokenId(std::string_view token) const;
  // One more than the largest id.
  int32_t vocab_size() const { return static_cast<int32_t>(token_offsets_.size()) - 1; }

 private:
  struct MergeResult {
    int32_t rank;
    int32_t merged;
  };
  BpeTokenizer() = default;
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;
  absl::Status EncodeOrdinary(std::string_view text, const BpeEncodeOptions& options,
                              std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;  // byte-level text -> id (vocab and added)
  absl::flat_hash_map<std::string, int32_t> word_ids_;  // raw bytes -> id (for ignore_merges)
  absl::flat_hash_map<uint64_t, MergeResult> merges_;  // (left id << 32 | right id)
  int32_t byte_ids_[256] = {};
  std::string token_bytes_;             // raw bytes of every id, concatenated
  std::vector<uint32_t> token_offsets_;  // id -> [offsets[id], offsets[id + 1])
  std::vector<bool> special_;
  std::vector<bool> present_;  // ids that have an entry
  std::vector<AddedToken> added_;  // longest content first, for matching
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  bool ignore_merges_ = false;
};

// Turns a stream of token ids into text as it arrives, never emitting a
// partial UTF-8 character: bytes of a character split across tokens are held
// back until it is complete. Ill-formed bytes become U+FFFD as in Decode, so
// the concatenation of every Add and Finish equals Decode of all the ids.
//
// Thread-safety: not thread-safe; one per stream. The tokenizer must outlive it.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const BpeTokenizer& tokenizer, bool skip_special = true)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}

  // Appends to *out the text that token `id` completes (possibly nothing).
  absl::Status Add(int32_t id, std::string* out);
  // Appends whatever is held back (an unfinished character becomes U+FFFD)
  // and resets the decoder.
  void Finish(std::string* out);
  // Bytes held back, waiting for the rest of a character (at most 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const BpeTokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;
};

// Appends `bytes` to *out as UTF-8, replacing each maximal ill-formed subpart
// with U+FFFD. With `final` false, an incomplete character at the end is not
// written: its length is returned (0 to 3) so the caller can keep it.
size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string* out);

// GPT-2's byte-to-unicode map: the code point that stands for byte `b` in a
// byte-level vocabulary.
char32_t ByteLevelCodePoint(unsigned char b);

// The inverse: the raw bytes a byte-level token text stands for, or nullopt
// when a character of it is not in the alphabet (an added token, or an entry
// no input can produce).
std::optional<std::string> ByteLevelToBytes(std::string_view text);

}  // namespace ortserve::pipeline
