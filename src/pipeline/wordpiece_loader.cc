// SPDX-License-Identifier: Apache-2.0
// WordPieceTokenizer's loaders: a BERT vocab.txt, or a Hugging Face
// tokenizer.json (normalizer, pre-tokenizer, post-processor, added tokens).
#include <fstream>
#include <sstream>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "pipeline/wordpiece_tokenizer.h"
#include "simdjson.h"

namespace ortserve::pipeline {

// ---------------------------------------------------------------------------
// Loading vocab.txt.

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open tokenizer file \"", path, "\""));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(StrCat("error reading \"", path, "\""));
  return buffer.str();
}

std::vector<WordPieceTokenizer::TemplatePiece> BertTemplate(int64_t cls, int64_t sep, bool pair) {
  using Piece = WordPieceTokenizer::TemplatePiece;
  std::vector<Piece> t;
  t.push_back({Piece::Kind::kSpecial, {cls}, 0});
  t.push_back({Piece::Kind::kSequenceA, {}, 0});
  t.push_back({Piece::Kind::kSpecial, {sep}, 0});
  if (pair) {
    t.push_back({Piece::Kind::kSequenceB, {}, 1});
    t.push_back({Piece::Kind::kSpecial, {sep}, 1});
  }
  return t;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromVocabTxt(
    const std::string& path, const VocabTxtOptions& options) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  auto tokenizer = FromVocabTxtContents(contents, options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        StrCat(path, ": ", ToStd(tokenizer.status().message())));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromVocabTxtContents(
    std::string_view contents, const VocabTxtOptions& vocab_options) {
  Options options;
  size_t pos = 0;
  int64_t id = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (FindInvalidUtf8(line) != std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat("vocab line ", id + 1, " is not valid UTF-8"));
    }
    options.vocab.emplace_back(std::string(line), id++);
    pos = end + 1;
  }
  options.unk_token = vocab_options.unk_token;
  options.continuing_subword_prefix = vocab_options.continuing_subword_prefix;
  options.max_input_chars_per_word = vocab_options.max_input_chars_per_word;
  options.clean_text = vocab_options.clean_text;
  options.handle_chinese_chars = vocab_options.handle_chinese_chars;
  options.lowercase = vocab_options.lowercase;
  options.strip_accents = vocab_options.strip_accents.value_or(vocab_options.lowercase);

  // Later duplicates win, as in Hugging Face's load_vocab.
  absl::flat_hash_map<std::string, int64_t> index;
  for (const auto& [token, token_id] : options.vocab) index.insert_or_assign(token, token_id);
  auto lookup = [&](const std::string& token,
                    bool required) -> absl::StatusOr<std::optional<int64_t>> {
    auto it = index.find(token);
    if (it != index.end()) return std::optional<int64_t>(it->second);
    if (required) {
      return absl::InvalidArgumentError(
          StrCat("special token \"", token, "\" is not in the vocabulary"));
    }
    return std::optional<int64_t>();
  };
  ASSIGN_OR_RETURN(std::optional<int64_t> unk, lookup(vocab_options.unk_token, true));
  ASSIGN_OR_RETURN(std::optional<int64_t> cls, lookup(vocab_options.cls_token, true));
  ASSIGN_OR_RETURN(std::optional<int64_t> sep, lookup(vocab_options.sep_token, true));
  ASSIGN_OR_RETURN(std::optional<int64_t> pad, lookup(vocab_options.pad_token, false));
  ASSIGN_OR_RETURN(std::optional<int64_t> mask, lookup(vocab_options.mask_token, false));
  const std::pair<const std::string*, std::optional<int64_t>> specials[] = {
      {&vocab_options.pad_token, pad},
      {&vocab_options.unk_token, unk},
      {&vocab_options.cls_token, cls},
      {&vocab_options.sep_token, sep},
      {&vocab_options.mask_token, mask}};
  for (const auto& [content, special_id] : specials) {
    if (special_id.has_value()) options.added_tokens.push_back({*content, *special_id, false});
  }
  options.single = BertTemplate(*cls, *sep, /*pair=*/false);
  options.pair = BertTemplate(*cls, *sep, /*pair=*/true);
  options.pad_id = pad.value_or(0);
  return Create(std::move(options));
}

// ---------------------------------------------------------------------------
// Loading tokenizer.json.

namespace {

using simdjson::dom::element;

std::string_view TypeName(const element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    case simdjson::dom::element_type::STRING:
      return "a string";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "a number";
    case simdjson::dom::element_type::BOOL:
      return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

absl::Status WrongType(std::string_view field, const element& e, std::string_view want) {
  return absl::InvalidArgumentError(
      StrCat("tokenizer.json: ", field, " must be ", want, ", got ", TypeName(e)));
}

// Optional field access: returns false (and leaves *out) when absent.
bool Field(const element& object, std::string_view key, element* out) {
  return !object.at_key(key).get(*out);
}

absl::Status GetString(const element& object, std::string_view key, std::string_view path,
                       std::string* out, bool required) {
  element e;
  if (!Field(object, key, &e) || e.is_null()) {
    if (required)
      return absl::InvalidArgumentError(StrCat("tokenizer.json: ", path, " is missing"));
    return absl::OkStatus();
  }
  std::string_view s;
  if (e.get_string().get(s)) return WrongType(path, e, "a string");
  *out = std::string(s);
  return absl::OkStatus();
}

absl::Status GetBool(const element& object, std::string_view key, std::string_view path,
                     bool* out) {
  element e;
  if (!Field(object, key, &e) || e.is_null()) return absl::OkStatus();
  bool b;
  if (e.get_bool().get(b)) return WrongType(path, e, "a boolean");
  *out = b;
  return absl::OkStatus();
}

absl::Status GetInt(const element& object, std::string_view key, std::string_view path,
                    int64_t* out) {
  element e;
  if (!Field(object, key, &e) || e.is_null()) return absl::OkStatus();
  int64_t v;
  if (e.get_int64().get(v)) return WrongType(path, e, "an integer");
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<std::string> TypeOf(const element& object, std::string_view path) {
  std::string type;
  RETURN_IF_ERROR(GetString(object, "type", StrCat(path, ".type"), &type, true));
  return type;
}

absl::Status ParseNormalizer(const element& root, WordPieceTokenizer::Options* options) {
  element n;
  if (!Field(root, "normalizer", &n) || n.is_null()) {
    options->clean_text = options->handle_chinese_chars = false;
    options->strip_accents = options->lowercase = false;
    return absl::OkStatus();
  }
  if (!n.is_object()) return WrongType("normalizer", n, "an object or null");
  ASSIGN_OR_RETURN(std::string type, TypeOf(n, "normalizer"));
  if (type != "BertNormalizer") {
    return absl::InvalidArgumentError(StrCat("tokenizer.json: normalizer type \"", type,
                                             "\" is not supported (only BertNormalizer)"));
  }
  options->clean_text = true;
  options->handle_chinese_chars = true;
  options->lowercase = true;
  RETURN_IF_ERROR(GetBool(n, "clean_text", "normalizer.clean_text", &options->clean_text));
  RETURN_IF_ERROR(GetBool(n, "handle_chinese_chars", "normalizer.handle_chinese_chars",
                          &options->handle_chinese_chars));
  RETURN_IF_ERROR(GetBool(n, "lowercase", "normalizer.lowercase", &options->lowercase));
  // strip_accents: null (or absent) follows lowercase.
  options->strip_accents = options->lowercase;
  RETURN_IF_ERROR(GetBool(n, "strip_accents", "normalizer.strip_accents", &options->strip_accents));
  return absl::OkStatus();
}

absl::Status ParsePreTokenizer(const element& root) {
  element p;
  if (!Field(root, "pre_tokenizer", &p) || p.is_null()) {
    return absl::InvalidArgumentError(
        "tokenizer.json: pre_tokenizer is null; only BertPreTokenizer is supported");
  }
  if (!p.is_object()) return WrongType("pre_tokenizer", p, "an object");
  ASSIGN_OR_RETURN(std::string type, TypeOf(p, "pre_tokenizer"));
  if (type != "BertPreTokenizer") {
    return absl::InvalidArgumentError(StrCat("tokenizer.json: pre_tokenizer type \"", type,
                                             "\" is not supported (only BertPreTokenizer)"));
  }
  return absl::OkStatus();
}

// ["[CLS]", 101] as used by BertProcessing.
absl::StatusOr<int64_t> TokenIdPair(const element& p, std::string_view key) {
  element e;
  simdjson::dom::array arr;
  if (!Field(p, key, &e) || e.get_array().get(arr) || arr.size() != 2) {
    return absl::InvalidArgumentError(
        StrCat("tokenizer.json: post_processor.", key, " must be [token, id]"));
  }
  int64_t id;
  if (arr.at(1).get_int64().get(id)) {
    return absl::InvalidArgumentError(
        StrCat("tokenizer.json: post_processor.", key, "[1] must be an integer id"));
  }
  return id;
}

absl::StatusOr<std::vector<WordPieceTokenizer::TemplatePiece>> ParseTemplate(
    const element& processor, std::string_view key) {
  using Piece = WordPieceTokenizer::TemplatePiece;
  const std::string path = StrCat("post_processor.", key);
  element e;
  simdjson::dom::array items;
  if (!Field(processor, key, &e))
    return absl::InvalidArgumentError(StrCat("tokenizer.json: ", path, " is missing"));
  if (e.get_array().get(items)) return WrongType(path, e, "an array");
  element specials;
  const bool has_specials = Field(processor, "special_tokens", &specials) && specials.is_object();
  std::vector<Piece> out;
  size_t index = 0;
  for (element item : items) {
    const std::string item_path = StrCat(path, "[", index++, "]");
    element body;
    Piece piece;
    if (Field(item, "SpecialToken", &body)) {
      std::string name;
      RETURN_IF_ERROR(GetString(body, "id", StrCat(item_path, ".SpecialToken.id"), &name, true));
      RETURN_IF_ERROR(
          GetInt(body, "type_id", StrCat(item_path, ".SpecialToken.type_id"), &piece.type_id));
      element special, ids_element;
      simdjson::dom::array ids;
      if (!has_specials || !Field(specials, name, &special) ||
          !Field(special, "ids", &ids_element) || ids_element.get_array().get(ids)) {
        return absl::InvalidArgumentError(
            StrCat("tokenizer.json: ", item_path, " names special token \"", name,
                   "\", which post_processor.special_tokens does not define"));
      }
      for (element id_element : ids) {
        int64_t id;
        if (id_element.get_int64().get(id)) {
          return WrongType(StrCat("post_processor.special_tokens.", name, ".ids"), id_element,
                           "integers");
        }
        piece.ids.push_back(id);
      }
      piece.kind = Piece::Kind::kSpecial;
    } else if (Field(item, "Sequence", &body)) {
      std::string which;
      RETURN_IF_ERROR(GetString(body, "id", StrCat(item_path, ".Sequence.id"), &which, true));
      RETURN_IF_ERROR(
          GetInt(body, "type_id", StrCat(item_path, ".Sequence.type_id"), &piece.type_id));
      if (which == "A") {
        piece.kind = Piece::Kind::kSequenceA;
      } else if (which == "B") {
        piece.kind = Piece::Kind::kSequenceB;
      } else {
        return absl::InvalidArgumentError(StrCat("tokenizer.json: ", item_path,
                                                 ".Sequence.id must be \"A\" or \"B\", got \"",
                                                 which, "\""));
      }
    } else {
      return absl::InvalidArgumentError(
          StrCat("tokenizer.json: ", item_path, " must be a SpecialToken or a Sequence"));
    }
    out.push_back(std::move(piece));
  }
  return out;
}

absl::Status ParsePostProcessor(const element& root, WordPieceTokenizer::Options* options) {
  element p;
  if (!Field(root, "post_processor", &p) || p.is_null()) return absl::OkStatus();  // no specials
  if (!p.is_object()) return WrongType("post_processor", p, "an object or null");
  ASSIGN_OR_RETURN(std::string type, TypeOf(p, "post_processor"));
  if (type == "TemplateProcessing") {
    ASSIGN_OR_RETURN(options->single, ParseTemplate(p, "single"));
    ASSIGN_OR_RETURN(options->pair, ParseTemplate(p, "pair"));
    return absl::OkStatus();
  }
  if (type == "BertProcessing") {
    ASSIGN_OR_RETURN(int64_t cls, TokenIdPair(p, "cls"));
    ASSIGN_OR_RETURN(int64_t sep, TokenIdPair(p, "sep"));
    options->single = BertTemplate(cls, sep, false);
    options->pair = BertTemplate(cls, sep, true);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(StrCat("tokenizer.json: post_processor type \"", type,
                                           "\" is not supported (only TemplateProcessing, "
                                           "BertProcessing or null)"));
}

absl::Status ParseAddedTokens(const element& root, WordPieceTokenizer::Options* options) {
  element e;
  if (!Field(root, "added_tokens", &e) || e.is_null()) return absl::OkStatus();
  simdjson::dom::array tokens;
  if (e.get_array().get(tokens)) return WrongType("added_tokens", e, "an array");
  size_t index = 0;
  for (element token : tokens) {
    const std::string path = StrCat("added_tokens[", index++, "]");
    WordPieceTokenizer::AddedToken added;
    bool special = false, lstrip = false, rstrip = false, single_word = false;
    RETURN_IF_ERROR(GetString(token, "content", StrCat(path, ".content"), &added.content, true));
    int64_t id = -1;
    RETURN_IF_ERROR(GetInt(token, "id", StrCat(path, ".id"), &id));
    if (id < 0)
      return absl::InvalidArgumentError(
          StrCat("tokenizer.json: ", path, ".id is missing or negative"));
    added.id = id;
    RETURN_IF_ERROR(GetBool(token, "special", StrCat(path, ".special"), &special));
    added.normalized = !special;  // Hugging Face's default
    RETURN_IF_ERROR(GetBool(token, "normalized", StrCat(path, ".normalized"), &added.normalized));
    RETURN_IF_ERROR(GetBool(token, "lstrip", StrCat(path, ".lstrip"), &lstrip));
    RETURN_IF_ERROR(GetBool(token, "rstrip", StrCat(path, ".rstrip"), &rstrip));
    RETURN_IF_ERROR(GetBool(token, "single_word", StrCat(path, ".single_word"), &single_word));
    if (lstrip || rstrip || single_word) {
      return absl::InvalidArgumentError(StrCat("tokenizer.json: added token \"", added.content,
                                               "\" sets ",
                                               lstrip   ? "lstrip"
                                               : rstrip ? "rstrip"
                                                        : "single_word",
                                               ", which is not supported"));
    }
    options->added_tokens.push_back(std::move(added));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromTokenizerJson(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  auto tokenizer = FromTokenizerJsonContents(contents);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        StrCat(path, ": ", ToStd(tokenizer.status().message())));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromTokenizerJsonContents(
    std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json.data(), json.size());
  element root;
  if (auto error = parser.parse(padded).get(root); error) {
    return absl::InvalidArgumentError(
        StrCat("tokenizer.json is not valid JSON: ", simdjson::error_message(error)));
  }
  if (!root.is_object()) return WrongType("the top level", root, "an object");

  element model;
  if (!Field(root, "model", &model) || !model.is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: model is missing or not an object");
  }
  std::string model_type;
  RETURN_IF_ERROR(GetString(model, "type", "model.type", &model_type, false));
  if (model_type != "WordPiece") {
    return absl::InvalidArgumentError(StrCat("tokenizer.json: model.type \"",
                                             model_type.empty() ? "(missing)" : model_type,
                                             "\" is not supported (only WordPiece)"));
  }

  Options options;
  RETURN_IF_ERROR(GetString(model, "unk_token", "model.unk_token", &options.unk_token, false));
  RETURN_IF_ERROR(GetString(model, "continuing_subword_prefix", "model.continuing_subword_prefix",
                            &options.continuing_subword_prefix, false));
  int64_t max_chars = options.max_input_chars_per_word;
  RETURN_IF_ERROR(
      GetInt(model, "max_input_chars_per_word", "model.max_input_chars_per_word", &max_chars));
  if (max_chars < 0 || max_chars > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        StrCat("tokenizer.json: model.max_input_chars_per_word out of range: ", max_chars));
  }
  options.max_input_chars_per_word = static_cast<int>(max_chars);

  element vocab_element;
  simdjson::dom::object vocab;
  if (!Field(model, "vocab", &vocab_element)) {
    return absl::InvalidArgumentError("tokenizer.json: model.vocab is missing");
  }
  if (vocab_element.get_object().get(vocab))
    return WrongType("model.vocab", vocab_element, "an object");
  options.vocab.reserve(vocab.size());
  for (simdjson::dom::key_value_pair kv : vocab) {
    int64_t id;
    if (kv.value.get_int64().get(id)) {
      return WrongType(StrCat("model.vocab[\"", kv.key, "\"]"), kv.value, "an integer");
    }
    options.vocab.emplace_back(std::string(kv.key), id);
  }

  RETURN_IF_ERROR(ParseNormalizer(root, &options));
  RETURN_IF_ERROR(ParsePreTokenizer(root));
  RETURN_IF_ERROR(ParsePostProcessor(root, &options));
  RETURN_IF_ERROR(ParseAddedTokens(root, &options));

  // Padding id: the file's padding section, else [PAD], else 0.
  element padding;
  int64_t pad_id = -1;
  if (Field(root, "padding", &padding) && padding.is_object()) {
    RETURN_IF_ERROR(GetInt(padding, "pad_id", "padding.pad_id", &pad_id));
  }
  if (pad_id < 0) {
    for (const auto& [token, id] : options.vocab) {
      if (token == "[PAD]") pad_id = id;
    }
  }
  options.pad_id = pad_id < 0 ? 0 : pad_id;
  return Create(std::move(options));
}

}  // namespace ortserve::pipeline
