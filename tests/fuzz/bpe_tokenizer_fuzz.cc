// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the byte-level BPE tokenizer. The first byte picks
// the mode:
//   bit 0 set: the rest is a tokenizer.json; loading it must succeed or fail
//              cleanly, and a loaded one must encode and decode a fixed text
//              losslessly;
//   otherwise: the rest is text for a small built-in byte-level vocabulary
//              (bit 1: match added tokens; the second byte bounds the token
//              count). Invalid UTF-8 or too many tokens must be clean errors;
//              otherwise every id is in the vocabulary, decoding gives the text
//              back, and streaming decoding agrees with whole decoding with
//              each piece valid UTF-8. The text's bytes read as ids (pairs of
//              bytes) must also decode, lossily, to valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "pipeline/bpe_tokenizer.h"

namespace {

using ortserve::pipeline::BpeTokenizer;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

std::string Symbol(unsigned char b) {
  char buf[4];
  return std::string(buf, ortserve::EncodeUtf8(ortserve::pipeline::ByteLevelCodePoint(b), buf));
}

const BpeTokenizer& BuiltIn() {
  static const auto tokenizer = [] {
    BpeTokenizer::Options options;
    for (int b = 0; b < 256; ++b) options.vocab.emplace_back(Symbol(static_cast<unsigned char>(b)), b);
    const std::string space = Symbol(' ');
    const std::pair<std::string, std::string> merges[] = {
        {"h", "e"}, {space, "t"}, {"he", "ad"}, {"a", "d"}, {space + "t", "he"}, {"\xC3", "\xA9"},
        {"r", "e"}, {"'", "s"}, {space, space}, {"1", "2"}};
    for (const auto& [a, b] : merges) {
      const std::string left = a.size() == 1 && static_cast<unsigned char>(a[0]) >= 0x80
                                   ? Symbol(static_cast<unsigned char>(a[0])) : a;
      const std::string right = b.size() == 1 && static_cast<unsigned char>(b[0]) >= 0x80
                                    ? Symbol(static_cast<unsigned char>(b[0])) : b;
      bool known = false;
      for (const auto& [text, id] : options.vocab) known |= text == left + right;
      if (!known) options.vocab.emplace_back(left + right, static_cast<int32_t>(options.vocab.size()));
      options.merges.emplace_back(left, right);
    }
    options.added_tokens.push_back({"<|endoftext|>", static_cast<int32_t>(options.vocab.size()), true});
    auto t = BpeTokenizer::Create(std::move(options));
    Check(t.ok());
    return std::move(t).value();
  }();
  return *tokenizer;
}

void CheckRoundTrip(const BpeTokenizer& tokenizer, std::string_view text, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) Check(id >= 0 && id < tokenizer.vocab_size());
  auto back = tokenizer.Decode(ids, /*skip_special=*/false);
  Check(back.ok() && *back == text);
  ortserve::pipeline::IncrementalDecoder stream(tokenizer, /*skip_special=*/false);
  std::string all;
  for (int32_t id : ids) {
    std::string piece;
    Check(stream.Add(id, &piece).ok());
    Check(ortserve::FindInvalidUtf8(piece) == std::string_view::npos);
    all += piece;
  }
  stream.Finish(&all);
  Check(all == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  std::vector<int32_t> ids;
  if (flags & 1) {
    ortserve::pipeline::BpeLoadLimits limits;
    limits.max_vocab_size = 4096;
    limits.max_merges = 4096;
    auto t = BpeTokenizer::FromTokenizerJsonContents(rest, limits);
    if (!t.ok()) return 0;
    const std::string_view text = " The head's caf\xC3\xA9 12 <|endoftext|>  \xF0\x9F\x98\x80!";
    ortserve::pipeline::BpeEncodeOptions options;
    options.match_added_tokens = false;
    Check((*t)->Encode(text, options, &ids).ok());
    CheckRoundTrip(**t, text, ids);
    return 0;
  }
  const BpeTokenizer& tokenizer = BuiltIn();
  ortserve::pipeline::BpeEncodeOptions options;
  options.match_added_tokens = flags & 2;
  options.max_tokens = data[1] == 0 ? size_t{1} << 20 : data[1];
  const absl::Status status = tokenizer.Encode(rest, options, &ids);
  if (status.ok()) {
    Check(ids.size() <= options.max_tokens);
    if (options.match_added_tokens) {
      for (int32_t id : ids) Check(id >= 0 && id < tokenizer.vocab_size());
      auto back = tokenizer.Decode(ids, /*skip_special=*/false);
      Check(back.ok() && *back == rest);
    } else {
      CheckRoundTrip(tokenizer, rest, ids);
    }
  } else {
    Check(status.code() == absl::StatusCode::kInvalidArgument);
  }
  std::vector<int32_t> as_ids;
  for (size_t i = 0; i + 1 < rest.size(); i += 2) {
    as_ids.push_back((static_cast<uint8_t>(rest[i]) << 8 | static_cast<uint8_t>(rest[i + 1])) %
                     static_cast<uint32_t>(tokenizer.vocab_size()));
  }
  auto lossy = tokenizer.Decode(as_ids, flags & 4);
  Check(lossy.ok() && ortserve::FindInvalidUtf8(*lossy) == std::string_view::npos);
  return 0;
}
