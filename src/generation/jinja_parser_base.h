// SPDX-License-Identifier: Apache-2.0
// Internal to the chat-template parser (jinja_parser.cc, jinja_expression.cc):
// the token cursor and the expression grammar the statement parser builds
// on. Not thread-safe: one parse runs on one thread.
#pragma once

#include <algorithm>
#include <set>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/strings.h"
#include "generation/jinja_lexer.h"
#include "generation/jinja_parser.h"

namespace ortserve::generation::jinja {

class ParserBase {
 public:
  ParserBase(std::vector<Token> tokens, const ParseLimits& limits) : tokens_(std::move(tokens)), limits_(limits) {}

  // What a filter, method or function accepts (jinja_expression.cc).
  struct Signature;

 protected:
  const Token& Cur() const { return tokens_[pos_]; }
  const Token& Peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  void Next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool IsOp(std::string_view op) const { return Cur().kind == Token::Kind::kOp && Cur().value == op; }
  bool IsName(std::string_view name) const { return Cur().kind == Token::Kind::kName && Cur().value == name; }
  absl::Status Error(std::string_view what) const { return Error(Cur().line, what); }
  static absl::Status Error(int line, std::string_view what) {
    return absl::InvalidArgumentError(StrCat("line ", line, ": ", what));
  }
  std::string Describe(const Token& t) const {
    switch (t.kind) {
      case Token::Kind::kEof: return "the end of the template";
      case Token::Kind::kVarEnd: return "'}}'";
      case Token::Kind::kBlockEnd: return "'%}'";
      case Token::Kind::kData: return "text";
      case Token::Kind::kString: return "a string";
      case Token::Kind::kInt: return "a number";
      default: return StrCat("'", t.value, "'");
    }
  }
  absl::Status Expect(std::string_view op) {
    if (!IsOp(op)) return Error(StrCat("expected '", op, "', found ", Describe(Cur())));
    Next();
    return absl::OkStatus();
  }
  absl::Status ExpectKind(Token::Kind kind, std::string_view what) {
    if (Cur().kind != kind) return Error(StrCat("expected ", what, ", found ", Describe(Cur())));
    Next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().kind != Token::Kind::kName) return Error(StrCat("expected a name, found ", Describe(Cur())));
    std::string name = Cur().value;
    Next();
    return name;
  }
  absl::Status Count() {
    if (++nodes_ > limits_.max_nodes) return Error(StrCat("the template has more than ", limits_.max_nodes, " parts"));
    return absl::OkStatus();
  }


  // Expressions (jinja_expression.cc), with Jinja's precedence, lowest first.
  ExprPtr Make(Expr::Kind kind, int line);
  absl::Status Enter();
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr);
  absl::StatusOr<ExprPtr> ParseExpression();
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseLogic(std::string_view word, Expr::Kind kind,
                                     absl::StatusOr<ExprPtr> (ParserBase::*next)());
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseBinary(std::initializer_list<std::pair<std::string_view, Op>> ops,
                                      absl::StatusOr<ExprPtr> (ParserBase::*next)());
  absl::StatusOr<ExprPtr> ParseMath1();
  absl::StatusOr<ExprPtr> ParseConcat();
  absl::StatusOr<ExprPtr> ParseMath2();
  absl::StatusOr<ExprPtr> ParsePow();
  absl::StatusOr<ExprPtr> ParseUnaryFiltered();
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);
  absl::StatusOr<ExprPtr> ParsePrimary();
  absl::Status ParseArgs(Expr* e, const Signature& sig, std::string_view what);
  absl::Status CheckArity(const Expr& e, const Signature& sig, std::string_view what);
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);
  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr node);

  std::vector<Token> tokens_;
  const ParseLimits limits_;
  size_t pos_ = 0;
  int depth_ = 0;
  int expr_depth_ = 0;
  int loops_ = 0;
  size_t nodes_ = 0;
};

}  // namespace ortserve::generation::jinja
