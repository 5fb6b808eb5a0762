// SPDX-License-Identifier: Apache-2.0
// Loading a byte-level BPE tokenizer: vocab.json + merges.txt, or a
// tokenizer.json (bpe_tokenizer.h), with every size bounded by BpeLoadLimits.
#include <filesystem>
#include <fstream>
#include <algorithm>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/bpe_tokenizer.h"
#include "simdjson.h"

namespace ortserve::pipeline {
namespace {

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
    auto it = t->vocab_.find(std::string(buf, EncodeUtf8(ByteLevelCodePoint(b), buf)));
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

}  // namespace ortserve::pipeline
