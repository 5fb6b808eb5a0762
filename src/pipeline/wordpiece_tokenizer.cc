// SPDX-License-Identifier: Apache-2.0
#include "pipeline/wordpiece_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/unicode_classes.h"
#include "simdjson.h"

namespace ortserve::pipeline {
namespace {

absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

bool IsUtf8Continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

absl::Status WordPieceTokenizer::ValidateText(std::string_view text, std::string_view what) {
  if (simdjson::validate_utf8(text.data(), text.size())) return absl::OkStatus();
  const size_t at = FindInvalidUtf8(text);
  return absl::InvalidArgumentError(
      StrCat(what, " is not valid UTF-8: invalid byte 0x",
             std::string(1, "0123456789abcdef"[(static_cast<unsigned char>(text[at]) >> 4)]),
             std::string(1, "0123456789abcdef"[static_cast<unsigned char>(text[at]) & 15]),
             " at byte offset ", at));
}

WordPieceTokenizer::Scratch& WordPieceTokenizer::ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// ---------------------------------------------------------------------------
// The fused normalize + pre-tokenize pass.

template <typename Sink>
void WordPieceTokenizer::RunPass(std::string_view segment, const Pass& pass, Sink& sink) {
  const auto* p = reinterpret_cast<const unsigned char*>(segment.data());
  const size_t n = segment.size();
  char enc[4];
  // Emits one normalized code point, classified as the pre-tokenizer would.
  auto emit = [&](char32_t c) {
    if (c < 0x80) {
      enc[0] = static_cast<char>(c);
      switch (IsAsciiPunct(c)                     ? CharClass::kPunct
              : (c == ' ' || (c >= 9 && c <= 13)) ? CharClass::kSpace
                                                  : CharClass::kWord) {
        case CharClass::kPunct:
          sink.Punct(enc, 1);
          return;
        case CharClass::kSpace:
          sink.Space();
          return;
        default:
          sink.Char(enc, 1);
          return;
      }
    }
    const int len = EncodeUtf8(c, enc);
    if (IsNonAsciiWhitespace(c)) {
      sink.Space();
    } else if (IsUnicodePunct(utf8proc_category(static_cast<utf8proc_int32_t>(c)))) {
      sink.Punct(enc, len);
    } else {
      sink.Char(enc, len);
    }
  };

  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      // ASCII fast path: one table lookup, no utf8proc.
      switch (pass.ascii_class[b]) {
        case CharClass::kWord: {
          // Copy the whole run of word bytes at once.
          size_t j = i;
          while (j < n && p[j] < 0x80 && pass.ascii_class[p[j]] == CharClass::kWord) ++j;
          sink.Word(reinterpret_cast<const char*>(p + i), j - i, pass.ascii_map.data());
          i = j;
          continue;
        }
        case CharClass::kSpace:
          sink.Space();
          if (sink.Done()) return;
          break;
        case CharClass::kPunct:
          sink.Punct(segment.data() + i, 1);
          if (sink.Done()) return;
          break;
        case CharClass::kDrop:
          break;
      }
      ++i;
      continue;
    }
    int len;
    const char32_t cp = DecodeUtf8(p + i, &len);
    const auto icp = static_cast<utf8proc_int32_t>(cp);
    i += len;
    if (pass.clean_text) {
      if (cp == 0xFFFD) continue;
      const utf8proc_category_t cat = utf8proc_category(icp);
      if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
          cat == UTF8PROC_CATEGORY_CO) {
        continue;
      }
      if (IsNonAsciiWhitespace(cp)) {
        sink.Space();
        if (sink.Done()) return;
        continue;
      }
    }
    const bool isolate = pass.handle_chinese_chars && IsChineseChar(cp);
    if (isolate) sink.Space();
    if (!pass.strip_accents && !pass.lowercase) {
      if (!isolate && !IsNonAsciiWhitespace(cp) && !IsUnicodePunct(utf8proc_category(icp))) {
        sink.Char(segment.data() + i - len, len);  // common case: copy the bytes as they are
      } else {
        emit(cp);
      }
    } else {
      utf8proc_int32_t decomposed[16];
      utf8proc_ssize_t count = 1;
      decomposed[0] = icp;
      if (pass.strip_accents) {
        int boundclass = 0;
        count = utf8proc_decompose_char(icp, decomposed, 16, UTF8PROC_DECOMPOSE, &boundclass);
        if (count < 1 || count > 16) {
          decomposed[0] = icp;
          count = 1;
        }
      }
      for (utf8proc_ssize_t k = 0; k < count; ++k) {
        utf8proc_int32_t d = decomposed[k];
        if (pass.strip_accents && utf8proc_category(d) == UTF8PROC_CATEGORY_MN) continue;
        if (pass.lowercase) {
          if (d == 0x130) {
            // The one unconditional multi-character lowercase mapping
            // (SpecialCasing.txt): İ -> i + U+0307, as Rust's to_lowercase.
            emit(U'i');
            emit(0x307);
            continue;
          }
          d = utf8proc_tolower(d);
        }
        emit(static_cast<char32_t>(d));
      }
    }
    if (isolate) sink.Space();
    if (sink.Done()) return;
  }
  sink.Finish();
}

namespace {

// Collects words and runs WordPiece on each (the normal path).
class WordPieceSink {
 public:
  using Fn = void (*)(const void*, std::string_view, size_t, std::vector<int64_t>*);
  WordPieceSink(const void* self, Fn wordpiece, const std::array<int64_t, 128>& punct_ids,
                std::string& word, std::vector<int64_t>* ids, size_t limit)
      : self_(self),
        wordpiece_(wordpiece),
        punct_ids_(punct_ids),
        word_(word),
        ids_(ids),
        limit_(limit) {
    word_.clear();
  }
  void Word(const char* p, size_t n, const char* map) {
    const size_t old = word_.size();
    word_.resize(old + n);
    char* dst = word_.data() + old;
    for (size_t k = 0; k < n; ++k) dst[k] = map[static_cast<unsigned char>(p[k])];
    chars_ += n;
  }
  void Char(const char* p, size_t n) {
    word_.append(p, n);
    ++chars_;
  }
  // Once `limit` ids are held, words that follow are dropped, so a limited
  // run ends exactly at the first word boundary at or after `limit` ids.
  void Space() {
    if (word_.empty()) return;
    if (!Done()) wordpiece_(self_, word_, chars_, ids_);
    word_.clear();
    chars_ = 0;
  }
  void Punct(const char* p, size_t n) {
    Space();
    if (Done()) return;
    if (n == 1) {
      ids_->push_back(punct_ids_[static_cast<unsigned char>(p[0])]);
    } else {
      wordpiece_(self_, std::string_view(p, n), 1, ids_);
    }
  }
  void Finish() { Space(); }
  bool Done() const { return ids_->size() >= limit_; }

 private:
  const void* self_;
  Fn wordpiece_;
  const std::array<int64_t, 128>& punct_ids_;
  std::string& word_;
  size_t chars_ = 0;
  std::vector<int64_t>* ids_;
  size_t limit_;
};

// Writes the normalized text (used to match normalized added tokens).
class StringSink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  void Word(const char* p, size_t n, const char* map) {
    for (size_t k = 0; k < n; ++k) out_->push_back(map[static_cast<unsigned char>(p[k])]);
  }
  void Char(const char* p, size_t n) { out_->append(p, n); }
  void Space() { out_->push_back(' '); }
  void Punct(const char* p, size_t n) { out_->append(p, n); }
  void Finish() {}
  bool Done() const { return false; }

 private:
  std::string* out_;
};

}  // namespace

// ---------------------------------------------------------------------------
// WordPiece.

void WordPieceTokenizer::WordPiece(std::string_view word, size_t chars,
                                   std::vector<int64_t>* ids) const {
  if (chars > static_cast<size_t>(options_.max_input_chars_per_word)) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t first = ids->size();
  const size_t n = word.size();
  const char* w = word.data();
  size_t start = 0;
  while (start < n) {
    const auto& map = start == 0 ? vocab_ : continuation_;
    const size_t max_bytes = start == 0 ? max_token_bytes_ : max_continuation_bytes_;
    // No token is longer than max_bytes: start the search there, on a
    // character boundary.
    size_t end = n - start > max_bytes ? start + max_bytes : n;
    while (end > start && end < n && IsUtf8Continuation(static_cast<unsigned char>(w[end]))) {
      --end;
    }
    bool found = false;
    while (end > start) {
      auto it = map.find(absl::string_view(w + start, end - start));
      if (it != map.end()) {
        ids->push_back(it->second);
        found = true;
        break;
      }
      do {
        --end;
      } while (end > start && IsUtf8Continuation(static_cast<unsigned char>(w[end])));
    }
    if (!found) {
      ids->resize(first);
      ids->push_back(unk_id_);
      return;
    }
    start = end;
  }
}

// ---------------------------------------------------------------------------
// Added tokens.

bool WordPieceTokenizer::Matcher::Find(std::string_view text, size_t from, size_t* start,
                                       size_t* length, int64_t* id) const {
  const size_t n = text.size();
  for (size_t i = from; i < n; ++i) {
    if (!first_byte[static_cast<unsigned char>(text[i])]) continue;
    for (const auto& [token, token_id] : tokens) {  // longest first
      if (token.size() <= n - i && std::memcmp(text.data() + i, token.data(), token.size()) == 0) {
        *start = i;
        *length = token.size();
        *id = token_id;
        return true;
      }
    }
  }
  return false;
}

void WordPieceTokenizer::NormalizeToString(std::string_view segment, std::string* out) const {
  out->clear();
  StringSink sink(out);
  RunPass(segment, normalize_pass_, sink);
}

void WordPieceTokenizer::TokenizeSegment(std::string_view segment, const Pass& pass,
                                         Scratch& scratch, std::vector<int64_t>* ids,
                                         size_t limit) const {
  WordPieceSink sink(
      this,
      [](const void* self, std::string_view word, size_t chars, std::vector<int64_t>* out) {
        static_cast<const WordPieceTokenizer*>(self)->WordPiece(word, chars, out);
      },
      ascii_punct_id_, scratch.word, ids, limit);
  RunPass(segment, pass, sink);
}

void WordPieceTokenizer::TokenizeText(std::string_view text, Scratch& scratch,
                                      std::vector<int64_t>* ids, size_t limit) const {
  size_t pos = 0;
  while (pos < text.size() && ids->size() < limit) {
    size_t match = 0, match_len = 0;
    int64_t match_id = 0;
    const bool found =
        !raw_added_.empty() && raw_added_.Find(text, pos, &match, &match_len, &match_id);
    const size_t segment_end = found ? match : text.size();
    if (segment_end > pos) {
      const std::string_view segment = text.substr(pos, segment_end - pos);
      if (normalized_added_.empty()) {
        TokenizeSegment(segment, normalize_pass_, scratch, ids, limit);
      } else {
        // Normalize first, then split on the normalized added tokens, then
        // pre-tokenize the (already normalized) pieces.
        NormalizeToString(segment, &scratch.normalized);
        const std::string_view norm = scratch.normalized;
        size_t npos = 0;
        while (npos < norm.size() && ids->size() < limit) {
          size_t m = 0, m_len = 0;
          int64_t m_id = 0;
          const bool m_found = normalized_added_.Find(norm, npos, &m, &m_len, &m_id);
          const size_t piece_end = m_found ? m : norm.size();
          if (piece_end > npos) {
            TokenizeSegment(norm.substr(npos, piece_end - npos), identity_pass_, scratch, ids,
                            limit);
          }
          if (!m_found || ids->size() >= limit) break;
          ids->push_back(m_id);
          npos = m + m_len;
        }
      }
    }
    if (!found || ids->size() >= limit) break;
    ids->push_back(match_id);
    pos = match + match_len;
  }
}

absl::Status WordPieceTokenizer::Tokenize(std::string_view text, std::vector<int64_t>* ids) const {
  RETURN_IF_ERROR(ValidateText(text, "text"));
  TokenizeText(text, ThreadScratch(), ids, kNoLimit);
  return absl::OkStatus();
}

std::optional<int64_t> WordPieceTokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& added : options_.added_tokens) {
    if (added.content == token) return added.id;
  }
  auto it = vocab_.find(AbslView(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------
// Construction.

WordPieceTokenizer::Pass WordPieceTokenizer::MakePass(bool clean_text, bool handle_chinese_chars,
                                                      bool strip_accents, bool lowercase) {
  Pass pass;
  pass.clean_text = clean_text;
  pass.handle_chinese_chars = handle_chinese_chars;
  pass.strip_accents = strip_accents;
  pass.lowercase = lowercase;
  for (int c = 0; c < 128; ++c) {
    CharClass cls = CharClass::kWord;
    const bool whitespace = c == ' ' || (c >= 9 && c <= 13);
    if (clean_text && (c == 0 || (c < 32 && c != '\t' && c != '\n' && c != '\r') || c == 127)) {
      cls = CharClass::kDrop;  // Cc other than \t \n \r
    } else if (whitespace) {
      cls = CharClass::kSpace;
    } else if (IsAsciiPunct(static_cast<unsigned char>(c))) {
      cls = CharClass::kPunct;
    }
    pass.ascii_class[c] = cls;
    pass.ascii_map[c] = static_cast<char>(lowercase && c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  return pass;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Create(Options options) {
  std::unique_ptr<WordPieceTokenizer> tokenizer(new WordPieceTokenizer(std::move(options)));
  RETURN_IF_ERROR(tokenizer->Init());
  return tokenizer;
}

absl::Status WordPieceTokenizer::Init() {
  if (options_.vocab.empty()) return absl::InvalidArgumentError("vocabulary is empty");
  if (options_.max_input_chars_per_word < 0) {
    return absl::InvalidArgumentError(
        StrCat("max_input_chars_per_word must be >= 0, got ", options_.max_input_chars_per_word));
  }
  vocab_.reserve(options_.vocab.size());
  const std::string& prefix = options_.continuing_subword_prefix;
  int64_t max_id = -1;
  for (const auto& [token, id] : options_.vocab) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          StrCat("vocabulary token \"", token, "\" has negative id ", id));
    }
    max_id = std::max(max_id, id);
    if (token.empty()) continue;
    vocab_.insert_or_assign(token, id);
    max_token_bytes_ = std::max(max_token_bytes_, token.size());
    if (token.size() > prefix.size() && token.compare(0, prefix.size(), prefix) == 0) {
      continuation_.insert_or_assign(token.substr(prefix.size()), id);
      continuation_ids_.insert(id);
      max_continuation_bytes_ = std::max(max_continuation_bytes_, token.size() - prefix.size());
    }
  }
  auto unk = vocab_.find(AbslView(options_.unk_token));
  if (unk == vocab_.end()) {
    return absl::InvalidArgumentError(
        StrCat("unk_token \"", options_.unk_token, "\" is not in the vocabulary"));
  }
  unk_id_ = unk->second;
  pad_id_ = options_.pad_id;

  normalize_pass_ = MakePass(options_.clean_text, options_.handle_chinese_chars,
                             options_.strip_accents, options_.lowercase);
  identity_pass_ = MakePass(false, false, false, false);
  for (int c = 0; c < 128; ++c) {
    auto it = vocab_.find(absl::string_view(std::string(1, static_cast<char>(c))));
    ascii_punct_id_[c] = it == vocab_.end() ? unk_id_ : it->second;
  }

  for (const AddedToken& added : options_.added_tokens) {
    if (added.content.empty()) return absl::InvalidArgumentError("added token with empty content");
    if (added.id < 0) {
      return absl::InvalidArgumentError(
          StrCat("added token \"", added.content, "\" has negative id ", added.id));
    }
    if (FindInvalidUtf8(added.content) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("added token is not valid UTF-8 (id ", added.id, ")"));
    }
    max_id = std::max(max_id, added.id);
    Matcher& matcher = added.normalized ? normalized_added_ : raw_added_;
    std::string content = added.content;
    if (added.normalized) NormalizeToString(added.content, &content);
    if (content.empty()) continue;
    matcher.tokens.emplace_back(std::move(content), added.id);
  }
  for (Matcher* matcher : {&raw_added_, &normalized_added_}) {
    std::stable_sort(matcher->tokens.begin(), matcher->tokens.end(),
                     [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    for (const auto& [token, id] : matcher->tokens) {
      matcher->first_byte[static_cast<unsigned char>(token[0])] = true;
    }
  }
  vocab_size_ = static_cast<size_t>(max_id + 1);

  for (const auto* tmpl : {&options_.single, &options_.pair}) {
    for (const TemplatePiece& piece : *tmpl) {
      if (piece.kind == TemplatePiece::Kind::kSpecial && piece.ids.empty()) {
        return absl::InvalidArgumentError(
            "post-processor template has a special token with no ids");
      }
      if (piece.kind == TemplatePiece::Kind::kSequenceB && tmpl == &options_.single) {
        return absl::InvalidArgumentError("post-processor single template refers to sequence B");
      }
    }
  }
  single_specials_ = CountSpecials(options_.single);
  pair_specials_ = CountSpecials(options_.pair);
  return absl::OkStatus();
}

}  // namespace ortserve::pipeline
