// SPDX-License-Identifier: Apache-2.0
#include "pipeline/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "core/status.h"
#include "core/strings.h"
#include "pipeline/wordpiece_tokenizer.h"

namespace ortserve::pipeline {

absl::Status Tokenizer::EncodeBatch(std::span<const std::string_view> texts,
                                    std::span<const std::string_view> pairs,
                                    const TokenizerOptions& options, BatchEncoding* out) const {
  if (!pairs.empty() && pairs.size() != texts.size()) {
    return absl::InvalidArgumentError(
        StrCat("text_pair count ", pairs.size(), " does not match text count ", texts.size()));
  }
  // Rows are encoded unpadded into per-thread buffers, then laid out once the
  // batch's sequence length is known.
  thread_local std::vector<Encoding> rows;
  if (rows.size() < texts.size()) rows.resize(texts.size());
  TokenizerOptions row_options = options;
  row_options.padding = TokenizerOptions::Padding::kNone;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    absl::Status status = pairs.empty() ? Encode(texts[i], row_options, &rows[i])
                                        : EncodePair(texts[i], pairs[i], row_options, &rows[i]);
    if (!status.ok()) {
      return absl::Status(status.code(), StrCat("batch item ", i, ": ", ToStd(status.message())));
    }
    longest = std::max(longest, rows[i].size());
  }
  size_t length = longest;
  if (options.padding == TokenizerOptions::Padding::kMaxLength) {
    length = std::max(longest, static_cast<size_t>(std::max(options.max_length, 0)));
  }
  out->batch_size = static_cast<int64_t>(texts.size());
  out->sequence_length = static_cast<int64_t>(length);
  const size_t total = texts.size() * length;
  out->ids.assign(total, pad_id());
  out->type_ids.assign(total, 0);
  out->attention_mask.assign(total, 0);
  for (size_t i = 0; i < texts.size(); ++i) {
    const Encoding& row = rows[i];
    std::copy(row.ids.begin(), row.ids.end(), out->ids.begin() + i * length);
    std::copy(row.type_ids.begin(), row.type_ids.end(), out->type_ids.begin() + i * length);
    std::copy(row.attention_mask.begin(), row.attention_mask.end(),
              out->attention_mask.begin() + i * length);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         const VocabTxtOptions& vocab_options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    const fs::path json = fs::path(path) / "tokenizer.json";
    const fs::path vocab = fs::path(path) / "vocab.txt";
    if (fs::exists(json, ec)) {
      file = json.string();
    } else if (fs::exists(vocab, ec)) {
      file = vocab.string();
    } else {
      return absl::NotFoundError(
          StrCat("tokenizer directory \"", path, "\" has neither tokenizer.json nor vocab.txt"));
    }
  }
  const bool is_json = file.size() >= 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  if (is_json) {
    ASSIGN_OR_RETURN(std::unique_ptr<WordPieceTokenizer> tokenizer,
                     WordPieceTokenizer::FromTokenizerJson(file));
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<WordPieceTokenizer> tokenizer,
                   WordPieceTokenizer::FromVocabTxt(file, vocab_options));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace ortserve::pipeline
