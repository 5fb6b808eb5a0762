// SPDX-License-Identifier: Apache-2.0
// Tokenizer: text in, model input ids out (the pipeline's seam between raw
// text requests and tensors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ortserve::pipeline {

// One encoded text or text pair. All three vectors have the same length (the
// padded length when padding was requested). Callers keep an Encoding and pass
// it to Encode again: its vectors are cleared and refilled, so repeated calls
// reuse their capacity and do not allocate after warm-up.
struct Encoding {
  std::vector<int64_t> ids;             // token ids, [CLS] ... [SEP] ... [PAD]...
  std::vector<int64_t> type_ids;        // 0 for the first text and its specials, 1 for the pair
  std::vector<int64_t> attention_mask;  // 1 for real tokens, 0 for padding
  size_t size() const { return ids.size(); }
};

// A batch as the row-major [batch, seq_len] tensors a BERT model takes.
struct BatchEncoding {
  int64_t batch_size = 0;
  int64_t sequence_length = 0;
  std::vector<int64_t> ids;             // batch_size * sequence_length
  std::vector<int64_t> type_ids;        // batch_size * sequence_length
  std::vector<int64_t> attention_mask;  // batch_size * sequence_length
};

struct TokenizerOptions {
  // Upper bound on the encoded length, special tokens included. Used for
  // truncation and for Padding::kMaxLength.
  int max_length = 512;
  // Cut the encoding to max_length (longest-first between the two texts of a
  // pair, the rule Hugging Face tokenizers apply). When false, an encoding
  // longer than max_length is returned whole.
  bool truncate = true;
  enum class Padding {
    kNone,       // no padding: each encoding has its own length
    kMaxLength,  // pad every encoding to max_length
    kLongest,    // batches: pad to the longest encoding in the batch (single calls: none)
  };
  Padding padding = Padding::kNone;
};

// Turns text into token ids for one model vocabulary.
//
// Thread-safety: thread-safe. A loaded Tokenizer is immutable; any number of
// threads may call the const methods at once, each with its own Encoding.
//
// Errors: Encode/EncodePair return InvalidArgument when the text is not valid
// UTF-8 (the message names the byte offset) or when max_length cannot hold
// the special tokens while truncating. `out` is unspecified after an error.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes one text: [CLS] text [SEP] for BERT.
  virtual absl::Status Encode(std::string_view text, const TokenizerOptions& options,
                              Encoding* out) const = 0;

  // Encodes a text pair: [CLS] a [SEP] b [SEP], type ids 0 for the first part
  // and 1 for the second.
  virtual absl::Status EncodePair(std::string_view a, std::string_view b,
                                  const TokenizerOptions& options, Encoding* out) const = 0;

  // Encodes `texts` (and, when `pairs` is not empty, texts[i] with pairs[i])
  // into one row-major batch padded with pad_id(). Padding::kNone is treated as
  // kLongest, since a batch tensor needs one sequence length. `out` is reused.
  absl::Status EncodeBatch(std::span<const std::string_view> texts,
                           std::span<const std::string_view> pairs, const TokenizerOptions& options,
                           BatchEncoding* out) const;

  virtual int64_t pad_id() const = 0;
  virtual size_t vocab_size() const = 0;
  // The id of `token` in the vocabulary (added tokens included), if present.
  virtual std::optional<int64_t> TokenToId(std::string_view token) const = 0;
  // Whether `id` continues the word of the token before it (WordPiece's
  // "##" pieces). Tokenizers without sub-word pieces answer false. Used to
  // count whole known words (a text pipeline's review signal).
  virtual bool IsContinuation(int64_t id) const {
    (void)id;
    return false;
  }
};

// How to read a plain vocab.txt, which carries no configuration of its own.
// The defaults are those of BertTokenizerFast for an uncased model.
struct VocabTxtOptions {
  bool lowercase = true;
  // Strip accents (NFD, drop nonspacing marks). Unset: same as `lowercase`.
  std::optional<bool> strip_accents;
  bool handle_chinese_chars = true;
  bool clean_text = true;
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string mask_token = "[MASK]";
  std::string continuing_subword_prefix = "##";
  int max_input_chars_per_word = 100;
};

// Loads a tokenizer from `path`:
//   *.json     a Hugging Face tokenizer.json (WordPiece model only)
//   directory  its tokenizer.json if present, else its vocab.txt
//   otherwise  a vocab.txt (one token per line, id = line number), read with
//              `vocab_options`
// Errors: NotFound when the file is missing; InvalidArgument when it is
// malformed or describes a model, normalizer, pre-tokenizer or post-processor
// that is not supported (the message names it).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         const VocabTxtOptions& vocab_options = {});

}  // namespace ortserve::pipeline
