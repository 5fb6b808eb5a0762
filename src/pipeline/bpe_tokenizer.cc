// SPDX-License-Identifier: Apache-2.0
#include "pipeline/bpe_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/unicode_classes.h"
#include "simdjson.h"

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

// The raw bytes of a byte-level token text, or nullopt when a character of it
// is not in the alphabet (an added token, or an entry no input can produce).
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

// ---------------------------------------------------------------------------
// Files.

absl::StatusOr<std::string> ReadBounded(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(StrCat("cannot read tokenizer file \"", path, "\": ", ec.message()));
  if (size > max_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("tokenizer file \"", path, "\" is ", size, " bytes, more than the limit of ", max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open tokenizer file \"", path, "\""));
  std::string out(static_cast<size_t>(size), '\0');
  in.read(out.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) {
    return absl::DataLossError(StrCat("error reading \"", path, "\""));
  }
  return out;
}

absl::Status WithPath(const absl::Status& s, std::string_view path) {
  if (s.ok()) return s;
  return absl::Status(s.code(), StrCat(path, ": ", std::string_view(s.message().data(), s.message().size())));
}

using simdjson::dom::element;

bool Field(const element& object, std::string_view key, element* out) {
  return !object.at_key(key).get(*out);
}

absl::Status ParseVocabObject(const element& e, std::string_view what, const BpeLoadLimits& limits,
                              BpeTokenizer::Options* options) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return absl::InvalidArgumentError(StrCat(what, " must be a JSON object"));
  if (obj.size() > limits.max_vocab_size) {
    return absl::ResourceExhaustedError(
        StrCat(what, " has ", obj.size(), " entries, more than the limit of ", limits.max_vocab_size));
  }
  for (auto [key, value] : obj) {
    int64_t id;
    if (value.get_int64().get(id) || id < 0 || static_cast<uint64_t>(id) >= limits.max_vocab_size) {
      return absl::InvalidArgumentError(StrCat(what, ": the id of \"", std::string_view(key),
                                               "\" must be an integer in [0, ", limits.max_vocab_size, ")"));
    }
    options->vocab.emplace_back(std::string(key), static_cast<int32_t>(id));
  }
  return absl::OkStatus();
}

absl::Status AddMerge(std::string_view line, size_t index, const BpeLoadLimits& limits,
                      BpeTokenizer::Options* options) {
  if (options->merges.size() >= limits.max_merges) {
    return absl::ResourceExhaustedError(StrCat("more than ", limits.max_merges, " merges"));
  }
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("merge ", index + 1, " is not two tokens separated by one space"));
  }
  options->merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  return absl::OkStatus();
}

std::string_view Str(const element& e) {
  std::string_view s;
  if (e.get_string().get(s)) return {};
  return s;
}

// The "type" of a component object, or "" for null / absent.
absl::StatusOr<std::string> ComponentType(const element& root, std::string_view key) {
  element e;
  if (!Field(root, key, &e) || e.is_null()) return std::string();
  element t;
  if (!e.is_object() || !Field(e, "type", &t) || !t.is_string()) {
    return absl::InvalidArgumentError(StrCat("tokenizer.json: ", key, " must be an object with a \"type\""));
  }
  return std::string(Str(t));
}

absl::Status GetBool(const element& object, std::string_view key, std::string_view path, bool* out) {
  element e;
  if (!Field(object, key, &e) || e.is_null()) return absl::OkStatus();
  bool b;
  if (e.get_bool().get(b)) return absl::InvalidArgumentError(StrCat("tokenizer.json: ", path, " must be a boolean"));
  *out = b;
  return absl::OkStatus();
}

absl::Status Unsupported(std::string_view what) {
  return absl::UnimplementedError(StrCat("tokenizer.json: ", what, " is not supported by the byte-level BPE tokenizer"));
}

}  // namespace

char32_t ByteLevelCodePoint(unsigned char b) { return Tables().code_point[b]; }

// ---------------------------------------------------------------------------
// Construction.

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(Options options) {
  const BpeLoadLimits& limits = options.limits;
  if (options.vocab.size() > limits.max_vocab_size || options.merges.size() > limits.max_merges ||
      options.added_tokens.size() > limits.max_vocab_size) {
    return absl::ResourceExhaustedError("tokenizer: vocabulary or merges over the load limits");
  }
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->add_prefix_space_ = options.add_prefix_space;
  t->use_regex_ = options.use_regex;
  t->ignore_merges_ = options.ignore_merges;

  int64_t max_id = -1;
  for (const auto& [text, id] : options.vocab) max_id = std::max<int64_t>(max_id, id);
  for (const auto& added : options.added_tokens) max_id = std::max<int64_t>(max_id, added.id);
  for (const auto& [text, id] : options.vocab) {
    if (id < 0) return absl::InvalidArgumentError(StrCat("tokenizer: negative id for \"", text, "\""));
  }
  if (max_id < 0) return absl::InvalidArgumentError("tokenizer: the vocabulary is empty");
  if (static_cast<uint64_t>(max_id) >= limits.max_vocab_size) {
    return absl::ResourceExhaustedError(StrCat("tokenizer: id ", max_id, " is over the limit of ",
                                               limits.max_vocab_size));
  }
  const size_t size = static_cast<size_t>(max_id) + 1;
  std::vector<std::optional<std::string>> bytes_of(size);
  t->special_.assign(size, false);
  for (auto& [text, id] : options.vocab) {
    if (text.empty() || text.size() > limits.max_token_bytes) {
      return absl::InvalidArgumentError(StrCat("tokenizer: vocabulary entry ", id, " is empty or longer than ",
                                               limits.max_token_bytes, " bytes"));
    }
    if (FindInvalidUtf8(text) != std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat("tokenizer: vocabulary entry ", id, " is not valid UTF-8"));
    }
    if (bytes_of[id].has_value()) {
      return absl::InvalidArgumentError(StrCat("tokenizer: id ", id, " is given to two vocabulary entries"));
    }
    std::optional<std::string> raw = ByteLevelToBytes(text);
    bytes_of[id] = raw.has_value() ? *raw : text;
    if (raw.has_value() && options.ignore_merges) t->word_ids_.emplace(*raw, id);
    if (!t->vocab_.emplace(text, id).second) {
      return absl::InvalidArgumentError(StrCat("tokenizer: vocabulary entry \"", text, "\" appears twice"));
    }
  }
  for (auto& added : options.added_tokens) {
    if (added.content.empty() || added.content.size() > limits.max_token_bytes ||
        FindInvalidUtf8(added.content) != std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat("tokenizer: added token ", added.id,
                                               " is empty, too long or not valid UTF-8"));
    }
    auto it = t->vocab_.find(added.content);
    if (it != t->vocab_.end() && it->second != added.id) {
      return absl::InvalidArgumentError(StrCat("tokenizer: added token \"", added.content, "\" has id ", added.id,
                                               " but the vocabulary gives it ", it->second));
    }
    if (it == t->vocab_.end() && bytes_of[added.id].has_value()) {
      return absl::InvalidArgumentError(StrCat("tokenizer: added token \"", added.content, "\" reuses id ",
                                               added.id, " of another entry"));
    }
    t->vocab_.emplace(added.content, added.id);
    bytes_of[added.id] = added.content;  // decoded as its text
    t->special_[added.id] = added.special;
    t->added_.push_back(added);
  }
  std::stable_sort(t->added_.begin(), t->added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });

  // Token bytes, one arena; ids without an entry decode to nothing and are
  // rejected by Decode.
  t->token_offsets_.reserve(size + 1);
  std::vector<bool> present(size, false);
  for (size_t id = 0; id < size; ++id) {
    t->token_offsets_.push_back(static_cast<uint32_t>(t->token_bytes_.size()));
    if (bytes_of[id].has_value()) {
      present[id] = true;
      t->token_bytes_ += *bytes_of[id];
      if (t->token_bytes_.size() > (size_t{1} << 31)) {
        return absl::ResourceExhaustedError("tokenizer: vocabulary text over 2 GiB");
      }
    }
  }
  t->token_offsets_.push_back(static_cast<uint32_t>(t->token_bytes_.size()));
  t->present_ = std::move(present);

  for (int b = 0; b < 256; ++b) {
    char buf[4];
    auto it = t->vocab_.find(std::string(buf, EncodeUtf8(Tables().code_point[b], buf)));
    if (it == t->vocab_.end()) {
      return absl::InvalidArgumentError(
          StrCat("tokenizer: not a byte-level vocabulary: no entry for byte ", b));
    }
    t->byte_ids_[b] = it->second;
  }

  int32_t rank = 0;
  for (const auto& [left, right] : options.merges) {
    auto a = t->vocab_.find(left);
    auto b = t->vocab_.find(right);
    auto merged = t->vocab_.find(left + right);
    if (a == t->vocab_.end() || b == t->vocab_.end() || merged == t->vocab_.end()) {
      return absl::InvalidArgumentError(StrCat("tokenizer: merge ", rank + 1, " (\"", left, "\" \"", right,
                                               "\") names a token that is not in the vocabulary"));
    }
    const uint64_t key = (uint64_t(uint32_t(a->second)) << 32) | uint32_t(b->second);
    t->merges_.insert_or_assign(key, MergeResult{rank, merged->second});  // a later duplicate wins
    ++rank;
  }
  return t;
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromVocabAndMergesContents(
    std::string_view vocab_json, std::string_view merges_txt, const BpeLoadLimits& limits) {
  if (vocab_json.size() > limits.max_file_bytes || merges_txt.size() > limits.max_file_bytes) {
    return absl::ResourceExhaustedError("tokenizer files over the size limit");
  }
  Options options;
  options.limits = limits;
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(vocab_json.data(), vocab_json.size()).get(root)) {
    return absl::InvalidArgumentError(StrCat("vocab.json is not valid JSON: ", simdjson::error_message(err)));
  }
  RETURN_IF_ERROR(ParseVocabObject(root, "vocab.json", limits, &options));
  size_t pos = 0, index = 0;
  bool first = true;
  while (pos < merges_txt.size()) {
    size_t end = merges_txt.find('\n', pos);
    if (end == std::string_view::npos) end = merges_txt.size();
    std::string_view line = merges_txt.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first && line.starts_with("#version")) {
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    RETURN_IF_ERROR(WithPath(AddMerge(line, index, limits, &options), "merges.txt"));
    ++index;
  }
  return Create(std::move(options));
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromVocabAndMerges(
    const std::string& vocab_json_path, const std::string& merges_txt_path, const BpeLoadLimits& limits) {
  ASSIGN_OR_RETURN(std::string vocab, ReadBounded(vocab_json_path, limits.max_file_bytes));
  ASSIGN_OR_RETURN(std::string merges, ReadBounded(merges_txt_path, limits.max_file_bytes));
  return FromVocabAndMergesContents(vocab, merges, limits);
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(const std::string& path,
                                                                              const BpeLoadLimits& limits) {
  ASSIGN_OR_RETURN(std::string json, ReadBounded(path, limits.max_file_bytes));
  auto t = FromTokenizerJsonContents(json, limits);
  if (!t.ok()) return WithPath(t.status(), path);
  return t;
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJsonContents(
    std::string_view json, const BpeLoadLimits& limits) {
  if (json.size() > limits.max_file_bytes) return absl::ResourceExhaustedError("tokenizer.json over the size limit");
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return absl::InvalidArgumentError(StrCat("tokenizer.json is not valid JSON: ", simdjson::error_message(err)));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("tokenizer.json must be a JSON object");
  Options options;
  options.limits = limits;

  element model;
  if (!Field(root, "model", &model) || !model.is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: model must be an object");
  }
  element e;
  if (Field(model, "type", &e) && Str(e) != "BPE") {
    return Unsupported(StrCat("model.type \"", Str(e), "\" (only BPE)"));
  }
  if (Field(model, "dropout", &e) && !e.is_null()) {
    double d = 0;
    if (e.get_double().get(d) || d != 0.0) return Unsupported("model.dropout");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (Field(model, key, &e) && !e.is_null() && !Str(e).empty()) return Unsupported(StrCat("model.", key));
  }
  bool flag = false;
  RETURN_IF_ERROR(GetBool(model, "byte_fallback", "model.byte_fallback", &flag));
  if (flag) return Unsupported("model.byte_fallback");
  RETURN_IF_ERROR(GetBool(model, "ignore_merges", "model.ignore_merges", &options.ignore_merges));
  if (!Field(model, "vocab", &e)) return absl::InvalidArgumentError("tokenizer.json: model.vocab is missing");
  RETURN_IF_ERROR(ParseVocabObject(e, "tokenizer.json: model.vocab", limits, &options));
  simdjson::dom::array merges;
  if (!Field(model, "merges", &e) || e.get_array().get(merges)) {
    return absl::InvalidArgumentError("tokenizer.json: model.merges must be an array");
  }
  size_t index = 0;
  for (element m : merges) {
    if (m.is_string()) {
      RETURN_IF_ERROR(WithPath(AddMerge(Str(m), index, limits, &options), "tokenizer.json: model.merges"));
    } else {
      simdjson::dom::array pair;
      if (m.get_array().get(pair) || pair.size() != 2 || !pair.at(0).is_string() || !pair.at(1).is_string()) {
        return absl::InvalidArgumentError(
            StrCat("tokenizer.json: model.merges[", index, "] must be \"a b\" or [\"a\", \"b\"]"));
      }
      if (options.merges.size() >= limits.max_merges) {
        return absl::ResourceExhaustedError(StrCat("more than ", limits.max_merges, " merges"));
      }
      std::string_view a = Str(pair.at(0).value_unsafe()), b = Str(pair.at(1).value_unsafe());
      if (a.empty() || b.empty()) {
        return absl::InvalidArgumentError(StrCat("tokenizer.json: model.merges[", index, "] has an empty token"));
      }
      options.merges.emplace_back(std::string(a), std::string(b));
    }
    ++index;
  }

  ASSIGN_OR_RETURN(std::string normalizer, ComponentType(root, "normalizer"));
  if (!normalizer.empty()) return Unsupported(StrCat("normalizer \"", normalizer, "\""));
  ASSIGN_OR_RETURN(std::string pre, ComponentType(root, "pre_tokenizer"));
  if (pre != "ByteLevel") return Unsupported(StrCat("pre_tokenizer \"", pre, "\" (only ByteLevel)"));
  element pre_obj;
  Field(root, "pre_tokenizer", &pre_obj);
  RETURN_IF_ERROR(GetBool(pre_obj, "add_prefix_space", "pre_tokenizer.add_prefix_space", &options.add_prefix_space));
  RETURN_IF_ERROR(GetBool(pre_obj, "use_regex", "pre_tokenizer.use_regex", &options.use_regex));
  ASSIGN_OR_RETURN(std::string decoder, ComponentType(root, "decoder"));
  if (!decoder.empty() && decoder != "ByteLevel") return Unsupported(StrCat("decoder \"", decoder, "\""));
  ASSIGN_OR_RETURN(std::string post, ComponentType(root, "post_processor"));
  if (!post.empty() && post != "ByteLevel") return Unsupported(StrCat("post_processor \"", post, "\""));

  simdjson::dom::array added;
  if (Field(root, "added_tokens", &e) && !e.is_null()) {
    if (e.get_array().get(added)) return absl::InvalidArgumentError("tokenizer.json: added_tokens must be an array");
    if (added.size() > limits.max_vocab_size) return absl::ResourceExhaustedError("too many added tokens");
    size_t i = 0;
    for (element a : added) {
      AddedToken token;
      int64_t id;
      element c;
      if (!a.is_object() || !Field(a, "id", &c) || c.get_int64().get(id) || id < 0 ||
          static_cast<uint64_t>(id) >= limits.max_vocab_size || !Field(a, "content", &c) || !c.is_string()) {
        return absl::InvalidArgumentError(
            StrCat("tokenizer.json: added_tokens[", i, "] needs an integer id in range and a string content"));
      }
      token.id = static_cast<int32_t>(id);
      token.content = std::string(Str(c));
      RETURN_IF_ERROR(GetBool(a, "special", "added_tokens[].special", &token.special));
      for (const char* key : {"lstrip", "rstrip", "single_word"}) {
        bool v = false;
        RETURN_IF_ERROR(GetBool(a, key, StrCat("added_tokens[].", key), &v));
        if (v) return Unsupported(StrCat("added_tokens[", i, "].", key, " = true"));
      }
      options.added_tokens.push_back(std::move(token));
      ++i;
    }
  }
  return Create(std::move(options));
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
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (const AddedToken& a : added_) {
      if (a.content[0] == text[i] && text.substr(i).starts_with(a.content)) {
        hit = &a;
        break;
      }
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
