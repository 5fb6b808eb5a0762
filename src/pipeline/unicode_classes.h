// SPDX-License-Identifier: Apache-2.0
// Character classes the tokenizers' pre-tokenization needs (BERT's basic
// tokenizer as Hugging Face's tokenizers crate defines it). Pure functions:
// safe from any thread.
#pragma once

#include <utf8proc.h>

namespace ortserve::pipeline {

// Unicode White_Space (what Rust's char::is_whitespace tests), non-ASCII part.
inline bool IsNonAsciiWhitespace(char32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

inline bool IsAsciiPunct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

inline bool IsUnicodePunct(utf8proc_category_t cat) {
  return cat == UTF8PROC_CATEGORY_PC || cat == UTF8PROC_CATEGORY_PD ||
         cat == UTF8PROC_CATEGORY_PS || cat == UTF8PROC_CATEGORY_PE ||
         cat == UTF8PROC_CATEGORY_PI || cat == UTF8PROC_CATEGORY_PF || cat == UTF8PROC_CATEGORY_PO;
}

// The ranges of the Rust crate's is_chinese_char (normalizers/bert.rs).
inline bool IsChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace ortserve::pipeline
