// SPDX-License-Identifier: Apache-2.0
// The lexer of the chat-template subset (generation/jinja_parser.h): template
// text into data and tag tokens, applying Jinja's whitespace rules as
// transformers configures them: trim_blocks (the newline after a block or
// comment tag goes), lstrip_blocks (spaces and tabs before one, from the
// line's start, go), `-` markers (all whitespace on that side goes), `+`
// (no lstrip), newlines normalized and the template's last newline dropped.
// Pure function: safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ortserve::generation::jinja {

struct Token {
  enum class Kind {
    kData,        // text outside tags (value: the text)
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,        // identifier or keyword
    kInt,         // digits (underscores removed)
    kString,      // a string literal, escapes applied
    kOp,          // an operator or punctuation
    kEof,
  };
  Kind kind = Kind::kEof;
  std::string value;
  int line = 1;
};

// InvalidArgument "line N: ..." for text that is not UTF-8, over
// `max_source_bytes`, an unclosed tag or string, or a float literal.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, size_t max_source_bytes);

}  // namespace ortserve::generation::jinja
