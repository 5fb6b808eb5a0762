// SPDX-License-Identifier: Apache-2.0
#include "pipeline/bpe_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <queue>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/unicode_classes.h"

namespace ortserve::pipeline {

// ---------------------------------------------------------------------------
// The byte-level alphabet.

namespace {

struct ByteLevelTables {
  std::array<char32_t, 256> code_point{};
  std::array<int16_t, 0x144> byte_of{};  // code point -> byte, -1 when none
  ByteLevelTables() {
    byte_of.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      code_point[b] = printable ? static_cast<char32_t>(b) : next++;
      byte_of[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables;
  return tables;
}


// ---------------------------------------------------------------------------
// The GPT-2 pre-tokenizer split.

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || IsNonAsciiWhitespace(c);
}

CharClass Classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    return IsWhiteSpace(c) ? CharClass::kSpace : CharClass::kOther;
  }
  if (IsWhiteSpace(c)) return CharClass::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

// A cursor over valid UTF-8.
struct Utf8Cursor {
  const unsigned char* p;
  size_t n;
  // The code point at byte offset i and its length.
  char32_t At(size_t i, int* len) const {
    if (p[i] < 0x80) {
      *len = 1;
      return p[i];
    }
    return DecodeUtf8(p + i, len);
  }
};

// Calls emit(piece) for each piece of `text` (valid UTF-8) in order.
template <typename Emit>
void SplitGpt2(std::string_view text, Emit&& emit) {
  const Utf8Cursor cur{reinterpret_cast<const unsigned char*>(text.data()), text.size()};
  const size_t n = text.size();
  size_t i = 0;
  int len = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '\'' && i + 1 < n) {
      const char c1 = text[i + 1];
      const char c2 = i + 2 < n ? text[i + 2] : '\0';
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        emit(text.substr(i, 3));
        i += 3;
        continue;
      }
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(text.substr(i, 2));
        i += 2;
        continue;
      }
    }
    // " ?X+" for X in letters, numbers, others: an optional space, then a run.
    size_t j = i;
    if (c == ' ' && i + 1 < n) {
      if (Classify(cur.At(i + 1, &len)) != CharClass::kSpace) j = i + 1;
    }
    const CharClass cls = Classify(cur.At(j, &len));
    if (cls != CharClass::kSpace) {
      size_t k = j + static_cast<size_t>(len);
      while (k < n && Classify(cur.At(k, &len)) == cls) k += static_cast<size_t>(len);
      emit(text.substr(i, k - i));
      i = k;
      continue;
    }
    // Whitespace: \s+(?!\S) takes the run but its last character when a
    // non-space follows; a single whitespace character before a non-space is
    // taken by \s+.
    size_t k = i, last = i;
    while (k < n && Classify(cur.At(k, &len)) == CharClass::kSpace) {
      last = k;
      k += static_cast<size_t>(len);
    }
    if (k < n && last > i) k = last;
    emit(text.substr(i, k - i));
    i = k;
  }
}

}  // namespace

char32_t ByteLevelCodePoint(unsigned char b) { return Tables().code_point[b]; }

std::optional<std::string> ByteLevelToBytes(std::string_view text) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp = p[i];
    int len = 1;
    if (cp >= 0x80) {
      if (Utf8SequenceLength(p + i, text.size() - i) == 0) return std::nullopt;
      cp = DecodeUtf8(p + i, &len);
    }
    if (cp >= Tables().byte_of.size() || Tables().byte_of[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(Tables().byte_of[cp]));
    i += static_cast<size_t>(len);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Encoding.

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  const auto* p = reinterpret_cast<const unsigned char*>(word.data());
  if (word.size() == 1) {
    ids->push_back(byte_ids_[p[0]]);
    return;
  }
  if (ignore_merges_) {
    thread_local std::string key;
    key.assign(word);
    auto it = word_ids_.find(key);
    if (it != word_ids_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  // A doubly linked list of symbols and a min-heap of candidate merges keyed
  // by (rank, position): the lowest rank first, the leftmost among equals.
  // Entries go stale when a neighbour merges; they are checked when popped.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;  // -1 at the ends
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  const int32_t n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) symbols.push_back({byte_ids_[p[i]], i - 1, i + 1 < n ? i + 1 : -1, true});
  auto lookup = [&](int32_t a, int32_t b) -> const MergeResult* {
    auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const MergeResult* m = lookup(symbols[pos].id, symbols[next].id)) {
      heap.push_back({m->rank, pos});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const MergeResult* m = lookup(left.id, right.id);
    if (m == nullptr || m->rank != c.rank) continue;  // stale
    left.id = m->merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

absl::Status BpeTokenizer::EncodeOrdinary(std::string_view text, const BpeEncodeOptions& options,
                                          std::vector<int32_t>* ids) const {
  if (text.empty()) return absl::OkStatus();
  thread_local std::string prefixed;
  if (add_prefix_space_ && text.front() != ' ') {
    prefixed.assign(" ");
    prefixed.append(text);
    text = prefixed;
  }
  auto word = [&](std::string_view piece) { EncodeWord(piece, ids); };
  if (use_regex_) {
    SplitGpt2(text, word);
  } else {
    word(text);
  }
  if (ids->size() > options.max_tokens) {
    return absl::InvalidArgumentError(
        StrCat("text is ", ids->size(), " tokens, more than the limit of ", options.max_tokens));
  }
  return absl::OkStatus();
}

absl::Status BpeTokenizer::Encode(std::string_view text, const BpeEncodeOptions& options,
                                  std::vector<int32_t>* ids) const {
  ids->clear();
  if (text.size() > options.max_text_bytes) {
    return absl::InvalidArgumentError(
        StrCat("text is ", text.size(), " bytes, more than the limit of ", options.max_text_bytes));
  }
  if (size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("text is not valid UTF-8 at byte ", bad));
  }
  if (!options.match_added_tokens || added_.empty()) return EncodeOrdinary(text, options, ids);
  // Added tokens are cut out first (the leftmost match, the longest there);
  // the text between them is encoded as ordinary text.
  size_t start = 0, i = 0;
  const auto& literal = options.literal_ranges;
  size_t next_literal = 0;  // the first literal range that ends after i
  while (i < text.size()) {
    while (next_literal < literal.size() && literal[next_literal].second <= i) ++next_literal;
    if (next_literal < literal.size() && literal[next_literal].first <= i) {
      i = literal[next_literal].second;  // no match starts inside client text
      continue;
    }
    const AddedToken* hit = nullptr;
    for (const AddedToken& a : added_) {
      if (a.content[0] == text[i] && text.substr(i).starts_with(a.content)) {
        hit = &a;
        break;
      }
    }
    if (hit != nullptr && next_literal < literal.size() && literal[next_literal].first < i + hit->content.size()) {
      hit = nullptr;  // it would run into client text
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    RETURN_IF_ERROR(EncodeOrdinary(text.substr(start, i - start), options, ids));
    ids->push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  RETURN_IF_ERROR(EncodeOrdinary(text.substr(start), options, ids));
  if (ids->size() > options.max_tokens) {
    return absl::InvalidArgumentError(
        StrCat("text is ", ids->size(), " tokens, more than the limit of ", options.max_tokens));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Decoding.

std::string_view BpeTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return std::string_view(token_bytes_).substr(token_offsets_[id], token_offsets_[id + 1] - token_offsets_[id]);
}

bool BpeTokenizer::IsSpecial(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

std::optional<int32_t> BpeTokenizer::TokenId(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> BpeTokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || !present_[id]) {
      return absl::InvalidArgumentError(StrCat("token id ", id, " is not in the vocabulary"));
    }
    if (skip_special && special_[id]) continue;
    bytes.append(TokenBytes(id));
  }
  std::string out;
  out.reserve(bytes.size());
  AppendUtf8Lossy(bytes, /*final=*/true, &out);
  return out;
}

size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string* out) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      size_t j = i + 1;
      while (j < n && p[j] < 0x80) ++j;
      out->append(bytes.data() + i, j - i);
      i = j;
      continue;
    }
    if (size_t len = Utf8SequenceLength(p + i, n - i); len != 0) {
      out->append(bytes.data() + i, len);
      i += len;
      continue;
    }
    // Ill-formed or cut short: the maximal subpart that could still start a
    // well-formed sequence.
    const unsigned char lead = p[i];
    size_t need = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      need = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      need = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      need = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    size_t k = 1;
    if (need != 0) {
      while (k < need && i + k < n) {
        const unsigned char c = p[i + k];
        const bool fits = k == 1 ? (c >= low && c <= high) : (c >= 0x80 && c <= 0xBF);
        if (!fits) break;
        ++k;
      }
      if (i + k == n && k < need && !final) return n - i;  // wait for the rest
    }
    out->append(kReplacement, 3);
    i += k;
  }
  return 0;
}

absl::Status IncrementalDecoder::Add(int32_t id, std::string* out) {
  if (id < 0 || id >= tokenizer_.vocab_size() || tokenizer_.TokenBytes(id).empty()) {
    return absl::InvalidArgumentError(StrCat("token id ", id, " is not in the vocabulary"));
  }
  if (skip_special_ && tokenizer_.IsSpecial(id)) return absl::OkStatus();
  std::string_view bytes = tokenizer_.TokenBytes(id);
  if (pending_.empty()) {
    const size_t keep = AppendUtf8Lossy(bytes, /*final=*/false, out);
    pending_.assign(bytes.substr(bytes.size() - keep));
    return absl::OkStatus();
  }
  pending_.append(bytes);
  const size_t keep = AppendUtf8Lossy(pending_, /*final=*/false, out);
  pending_.erase(0, pending_.size() - keep);
  return absl::OkStatus();
}

void IncrementalDecoder::Finish(std::string* out) {
  AppendUtf8Lossy(pending_, /*final=*/true, out);
  pending_.clear();
}

}  // namespace ortserve::pipeline
