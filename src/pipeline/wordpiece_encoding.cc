// SPDX-License-Identifier: Apache-2.0
// WordPieceTokenizer's encoding step: the ids of one text or a pair (from
// TokenizeText in wordpiece_tokenizer.cc) become a model input: truncation
// (longest-first for pairs), the template's special tokens, type ids,
// attention mask and padding.
#include <algorithm>
#include <utility>

#include "core/status.h"
#include "core/strings.h"
#include "pipeline/wordpiece_tokenizer.h"

namespace ortserve::pipeline {

size_t WordPieceTokenizer::CountSpecials(const std::vector<TemplatePiece>& tmpl) const {
  size_t n = 0;
  for (const TemplatePiece& piece : tmpl) {
    if (piece.kind == TemplatePiece::Kind::kSpecial) n += piece.ids.size();
  }
  return n;
}

void WordPieceTokenizer::Assemble(const std::vector<TemplatePiece>& tmpl,
                                  const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                  const TokenizerOptions& options, Encoding* out) const {
  out->ids.clear();
  out->type_ids.clear();
  auto append = [&](const std::vector<int64_t>& ids, int64_t type_id) {
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    out->type_ids.insert(out->type_ids.end(), ids.size(), type_id);
  };
  if (tmpl.empty()) {
    append(a, 0);
    if (b != nullptr) append(*b, 1);
  }
  for (const TemplatePiece& piece : tmpl) {
    switch (piece.kind) {
      case TemplatePiece::Kind::kSpecial:
        append(piece.ids, piece.type_id);
        break;
      case TemplatePiece::Kind::kSequenceA:
        append(a, piece.type_id);
        break;
      case TemplatePiece::Kind::kSequenceB:
        if (b != nullptr) append(*b, piece.type_id);
        break;
    }
  }
  const size_t real = out->ids.size();
  out->attention_mask.assign(real, 1);
  if (options.padding == TokenizerOptions::Padding::kMaxLength &&
      real < static_cast<size_t>(options.max_length)) {
    const size_t pad = static_cast<size_t>(options.max_length) - real;
    out->ids.insert(out->ids.end(), pad, pad_id_);
    out->type_ids.insert(out->type_ids.end(), pad, 0);
    out->attention_mask.insert(out->attention_mask.end(), pad, 0);
  }
}

absl::Status WordPieceTokenizer::Encode(std::string_view text, const TokenizerOptions& options,
                                        Encoding* out) const {
  RETURN_IF_ERROR(ValidateText(text, "text"));
  if (options.max_length < 0) {
    return absl::InvalidArgumentError(StrCat("max_length must be >= 0, got ", options.max_length));
  }
  size_t limit = kNoLimit;
  if (options.truncate) {
    if (static_cast<size_t>(options.max_length) < single_specials_) {
      return absl::InvalidArgumentError(StrCat("max_length ", options.max_length,
                                               " cannot hold the ", single_specials_,
                                               " special tokens of a single text"));
    }
    limit = static_cast<size_t>(options.max_length) - single_specials_;
  }
  Scratch& scratch = ThreadScratch();
  scratch.a.clear();
  TokenizeText(text, scratch, &scratch.a, limit);
  if (scratch.a.size() > limit) scratch.a.resize(limit);
  Assemble(options_.single, scratch.a, nullptr, options, out);
  return absl::OkStatus();
}

absl::Status WordPieceTokenizer::EncodePair(std::string_view a, std::string_view b,
                                            const TokenizerOptions& options, Encoding* out) const {
  RETURN_IF_ERROR(ValidateText(a, "text"));
  RETURN_IF_ERROR(ValidateText(b, "text_pair"));
  if (options.max_length < 0) {
    return absl::InvalidArgumentError(StrCat("max_length must be >= 0, got ", options.max_length));
  }
  if (options.truncate && static_cast<size_t>(options.max_length) < pair_specials_) {
    return absl::InvalidArgumentError(StrCat("max_length ", options.max_length, " cannot hold the ",
                                             pair_specials_, " special tokens of a text pair"));
  }
  Scratch& scratch = ThreadScratch();
  scratch.a.clear();
  scratch.b.clear();
  if (!options.truncate) {
    TokenizeText(a, scratch, &scratch.a, kNoLimit);
    TokenizeText(b, scratch, &scratch.b, kNoLimit);
  } else {
    // Longest-first, with the lengths Hugging Face tokenizers compares: each
    // text is counted only up to the end of the word that holds its
    // max_length-th token (the whole text when shorter). Tokenizing stops
    // there, which is all the ids truncation can keep.
    const size_t max_length = static_cast<size_t>(options.max_length);
    TokenizeText(a, scratch, &scratch.a, max_length);
    TokenizeText(b, scratch, &scratch.b, max_length);
    // With n1 the shorter counted length and `budget` the room left by the
    // special tokens: when n1 is at most half the budget, keep it whole and
    // give the longer text the rest; else keep budget / 2 of the shorter and
    // the rest of the longer (on a tie the second text counts as the longer).
    const size_t budget = max_length - pair_specials_;
    size_t n1 = scratch.a.size();
    size_t n2 = scratch.b.size();
    if (n1 + n2 > budget) {
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      if (swap) std::swap(n1, n2);
      if (scratch.a.size() > n1) scratch.a.resize(n1);
      if (scratch.b.size() > n2) scratch.b.resize(n2);
    }
  }
  Assemble(options_.pair, scratch.a, &scratch.b, options, out);
  return absl::OkStatus();
}

}  // namespace ortserve::pipeline
