// SPDX-License-Identifier: Apache-2.0
// The lexer of the chat-template subset: template text into data and tag
// tokens, with Jinja's whitespace rules as transformers sets them
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False).
#include "generation/jinja_lexer.h"

#include "core/strings.h"
#include "core/utf8.h"
#include "generation/jinja_value.h"

namespace ortserve::generation::jinja {

namespace {

#define RETURN_IF_ERROR_LOCAL(expr)        \
  do {                                     \
    if (absl::Status s = (expr); !s.ok()) return s; \
  } while (0)

char32_t CodePointAt(std::string_view s, size_t i, int* len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  return DecodeUtf8(reinterpret_cast<const unsigned char*>(s.data() + i), len);
}

// Python's str.rstrip() / the regex \s* at the start: Unicode whitespace.
size_t RstripEnd(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    int len = 1;
    if (!IsPythonSpace(CodePointAt(s, start, &len))) break;
    end = start;
  }
  return end;
}

size_t LstripEnd(std::string_view s, size_t i) {
  while (i < s.size()) {
    int len = 1;
    if (!IsPythonSpace(CodePointAt(s, i, &len))) break;
    i += static_cast<size_t>(len);
  }
  return i;
}

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A string literal's body with Python's escapes (the ones chat templates
// write); an escape Python keeps as written (e.g. "\d") is kept.
absl::StatusOr<std::string> Unescape(std::string_view body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out.push_back(body[i]);
      continue;
    }
    const char e = body[++i];
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case '\n': break;  // a line continuation
      case 'x':
      case 'u':
      case 'U': {
        const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 1; k <= digits; ++k) {
          const int h = i + k < body.size() ? HexValue(body[i + k]) : -1;
          if (h < 0) return absl::InvalidArgumentError(StrCat("line ", line, ": truncated \\", e, " escape"));
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          return absl::InvalidArgumentError(StrCat("line ", line, ": escape \\", e, " is not a Unicode scalar"));
        }
        char buf[4];
        out.append(buf, static_cast<size_t>(EncodeUtf8(cp, buf)));
        i += digits;
        break;
      }
      case 'a': case 'b': case 'f': case 'v': case 'N':
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        return absl::InvalidArgumentError(
            StrCat("line ", line, ": the string escape \\", e, " is not supported in chat templates"));
      default:
        out.push_back('\\');
        out.push_back(e);
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  absl::StatusOr<std::vector<Token>> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = src_.find('{', pos_);
      while (tag != std::string_view::npos && tag + 1 < src_.size() && src_[tag + 1] != '{' &&
             src_[tag + 1] != '%' && src_[tag + 1] != '#') {
        tag = src_.find('{', tag + 1);
      }
      if (tag == std::string_view::npos || tag + 1 >= src_.size()) {
        EmitData(src_.substr(pos_));
        break;
      }
      std::string_view data = src_.substr(pos_, tag - pos_);
      const char kind = src_[tag + 1];
      const char marker = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (marker == '-') {
        data = data.substr(0, RstripEnd(data));
      } else if (marker != '+' && kind != '{') {
        // lstrip_blocks: spaces and tabs between the line's start and a
        // block or comment tag go.
        const size_t nl = data.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          if (data.find_first_not_of(" \t", l_pos) == std::string_view::npos) data = data.substr(0, l_pos);
        }
      }
      EmitData(data);
      pos_ = tag + 2 + (marker == '-' || marker == '+' ? 1 : 0);
      if (kind == '#') {
        RETURN_IF_ERROR_LOCAL(Comment(&line_starting));
      } else {
        RETURN_IF_ERROR_LOCAL(Tag(kind == '{', &line_starting));
      }
    }
    tokens_.push_back({Token::Kind::kEof, {}, Line(src_.size())});
    return std::move(tokens_);
  }

 private:

  int Line(size_t at) {
    for (; line_pos_ < at && line_pos_ < src_.size(); ++line_pos_) {
      if (src_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  void EmitData(std::string_view data) {
    if (!data.empty()) tokens_.push_back({Token::Kind::kData, std::string(data), Line(pos_)});
  }

  // After a tag's end: `-` takes all the whitespace that follows, a block or
  // comment end (trim_blocks) one newline.
  void AfterEnd(bool strip, bool trim_newline, bool* line_starting) {
    const size_t start = pos_;
    if (strip) {
      pos_ = LstripEnd(src_, pos_);
    } else if (trim_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    *line_starting = pos_ > start ? src_[pos_ - 1] == '\n' : false;
  }

  absl::Status Comment(bool* line_starting) {
    const int line = Line(pos_);
    const size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) return absl::InvalidArgumentError(StrCat("line ", line, ": unclosed comment"));
    const bool strip = end > pos_ && src_[end - 1] == '-';
    pos_ = end + 2;
    AfterEnd(strip, true, line_starting);
    return absl::OkStatus();
  }

  absl::Status Tag(bool variable, bool* line_starting) {
    const int start_line = Line(pos_);
    tokens_.push_back({variable ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, {}, start_line});
    std::vector<char> brackets;
    while (true) {
      while (pos_ < src_.size() && (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' ||
                                    src_[pos_] == '\r' || src_[pos_] == '\f' || src_[pos_] == '\v')) {
        ++pos_;
      }
      const int line = Line(pos_);
      if (pos_ >= src_.size()) {
        return absl::InvalidArgumentError(
            StrCat("line ", start_line, ": unclosed ", variable ? "'{{'" : "'{%'"));
      }
      const std::string_view rest = src_.substr(pos_);
      const std::string_view end = variable ? "}}" : "%}";
      if (brackets.empty()) {
        const bool strip = rest.size() > 2 && rest[0] == '-' && rest.substr(1, 2) == end;
        if (strip || rest.starts_with(end)) {
          tokens_.push_back({variable ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, {}, line});
          pos_ += strip ? 3 : 2;
          AfterEnd(strip, !variable, line_starting);
          return absl::OkStatus();
        }
      }
      const char c = rest[0];
      if (IsNameStart(c)) {
        size_t n = 1;
        while (n < rest.size() && (IsNameStart(rest[n]) || IsDigit(rest[n]))) ++n;
        tokens_.push_back({Token::Kind::kName, std::string(rest.substr(0, n)), line});
        pos_ += n;
      } else if (IsDigit(c)) {
        size_t n = 1;
        while (n < rest.size() && (IsDigit(rest[n]) || (rest[n] == '_' && n + 1 < rest.size() && IsDigit(rest[n + 1])))) ++n;
        if (n < rest.size() && (rest[n] == '.' && n + 1 < rest.size() && IsDigit(rest[n + 1]))) {
          return absl::InvalidArgumentError(StrCat("line ", line, ": float numbers are not supported in chat templates"));
        }
        if (n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
          return absl::InvalidArgumentError(StrCat("line ", line, ": float numbers are not supported in chat templates"));
        }
        std::string digits;
        for (char d : rest.substr(0, n)) {
          if (d != '_') digits.push_back(d);
        }
        tokens_.push_back({Token::Kind::kInt, std::move(digits), line});
        pos_ += n;
      } else if (c == '\'' || c == '"') {
        size_t n = 1;
        while (n < rest.size() && rest[n] != c) n += rest[n] == '\\' ? 2 : 1;
        if (n >= rest.size()) return absl::InvalidArgumentError(StrCat("line ", line, ": unterminated string"));
        auto value = Unescape(rest.substr(1, n - 1), line);
        if (!value.ok()) return value.status();
        tokens_.push_back({Token::Kind::kString, *std::move(value), line});
        pos_ += n + 1;
      } else {
        static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string_view op;
        for (std::string_view two : kTwo) {
          if (rest.starts_with(two)) op = two;
        }
        if (op.empty() && std::string_view("+-/*%~[](){},.:|=<>").find(c) != std::string_view::npos) {
          op = rest.substr(0, 1);
        }
        if (op.empty()) {
          return absl::InvalidArgumentError(StrCat("line ", line, ": unexpected character '", rest.substr(0, 1), "'"));
        }
        if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
        if (c == ')' || c == ']' || c == '}') {
          const char open = c == ')' ? '(' : c == ']' ? '[' : '{';
          if (brackets.empty() || brackets.back() != open) {
            return absl::InvalidArgumentError(StrCat("line ", line, ": unbalanced '", op, "'"));
          }
          brackets.pop_back();
        }
        tokens_.push_back({Token::Kind::kOp, std::string(op), line});
        pos_ += op.size();
      }
    }
  }
#undef RETURN_IF_ERROR_LOCAL

  std::string_view src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, size_t max_source_bytes) {
  if (source.size() > max_source_bytes) {
    return absl::InvalidArgumentError(
        StrCat("the template is ", source.size(), " bytes, more than the limit of ", max_source_bytes));
  }
  if (size_t bad = FindInvalidUtf8(source); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("the template is not valid UTF-8 at byte ", bad));
  }
  // Newlines normalized to "\n", and the last one dropped, as Jinja does.
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      normalized.push_back(source[i]);
    }
  }
  if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
  return Lexer(normalized).Run();
}

}  // namespace ortserve::generation::jinja
