// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the WordPiece tokenizer on arbitrary bytes. The
// first byte picks the options (bit 0: truncate, bits 1-2: padding, bit 3:
// cased vocabulary, bit 4: a text pair split at the first 0xFF byte), the
// second the max_length; the rest is the text. Invalid UTF-8 must be a clean
// error; otherwise the three output vectors agree in length, truncation holds
// and every id is in the vocabulary.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "pipeline/wordpiece_tokenizer.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

constexpr std::string_view kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\npatient\nreported\nsevere\nrash\n##es\n##ing\nhead\n##ache\n"
    "fever\n,\n.\n!\n?\n'\n-\na\nb\nc\n##a\n##b\n##c\n\xe4\xb8\xad\n\xe6\x96\x87\n\xc3\xa9\nafter\ndose\n1\n2\n##0\n";

const ortserve::pipeline::Tokenizer& TokenizerFor(bool cased) {
  static const auto uncased = [] {
    auto t = ortserve::pipeline::WordPieceTokenizer::FromVocabTxtContents(kVocab);
    Check(t.ok());
    return std::move(t).value();
  }();
  static const auto with_case = [] {
    ortserve::pipeline::VocabTxtOptions options;
    options.lowercase = false;
    auto t = ortserve::pipeline::WordPieceTokenizer::FromVocabTxtContents(kVocab, options);
    Check(t.ok());
    return std::move(t).value();
  }();
  return cased ? *with_case : *uncased;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  ortserve::pipeline::TokenizerOptions options;
  options.truncate = flags & 1;
  options.padding = static_cast<ortserve::pipeline::TokenizerOptions::Padding>(((flags >> 1) & 3) % 3);
  options.max_length = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto& tokenizer = TokenizerFor(flags & 8);
  ortserve::pipeline::Encoding encoding;
  absl::Status status;
  if (flags & 16) {
    const size_t split = text.find('\xff');
    const std::string_view a = text.substr(0, split);
    const std::string_view b = split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
    status = tokenizer.EncodePair(a, b, options, &encoding);
  } else {
    status = tokenizer.Encode(text, options, &encoding);
  }
  if (!status.ok()) {
    Check(!status.message().empty());
    return 0;
  }
  Check(encoding.type_ids.size() == encoding.ids.size());
  Check(encoding.attention_mask.size() == encoding.ids.size());
  if (options.truncate) Check(encoding.ids.size() <= static_cast<size_t>(options.max_length));
  if (options.padding == ortserve::pipeline::TokenizerOptions::Padding::kMaxLength) {
    Check(encoding.ids.size() >= static_cast<size_t>(options.max_length));
  }
  for (int64_t id : encoding.ids) Check(id >= 0 && static_cast<size_t>(id) < tokenizer.vocab_size());
  return 0;
}
