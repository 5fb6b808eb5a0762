// SPDX-License-Identifier: Apache-2.0
// The expression grammar of the chat-template subset, with Jinja's precedence
// (jinja2/parser.py, read for the grammar): condexpr < or < and < not <
// compare < + - < ~ < * // % < ** < unary - < postfix (. [] ()) and
// filters/tests. Filters, tests, methods and functions are resolved here, so
// an unknown one fails the load.
#include <algorithm>
#include <charconv>
#include <optional>

#include "core/status.h"
#include "generation/jinja_parser_base.h"

namespace ortserve::generation::jinja {

// Positional arguments (how many) and keyword names ("*": any).
struct ParserBase::Signature {
  std::string_view name;
  int id;
  size_t min_args, max_args;
  std::vector<std::string_view> keywords;
};

namespace {

using Signature = ParserBase::Signature;

const std::vector<Signature>& Filters() {
  static const auto* const kFilters = new std::vector<Signature>{
      {"trim", int(Filter::kTrim), 0, 1, {}},
      {"length", int(Filter::kLength), 0, 0, {}},
      {"count", int(Filter::kLength), 0, 0, {}},
      {"upper", int(Filter::kUpper), 0, 0, {}},
      {"lower", int(Filter::kLower), 0, 0, {}},
      {"capitalize", int(Filter::kCapitalize), 0, 0, {}},
      {"title", int(Filter::kTitle), 0, 0, {}},
      {"tojson", int(Filter::kToJson), 0, 0, {"indent", "sort_keys"}},
      {"default", int(Filter::kDefault), 0, 2, {}},
      {"d", int(Filter::kDefault), 0, 2, {}},
      {"first", int(Filter::kFirst), 0, 0, {}},
      {"last", int(Filter::kLast), 0, 0, {}},
      {"join", int(Filter::kJoin), 0, 1, {}},
      {"replace", int(Filter::kReplace), 2, 3, {}},
      {"string", int(Filter::kString), 0, 0, {}},
      {"int", int(Filter::kInt), 0, 0, {}},
      {"list", int(Filter::kList), 0, 0, {}},
      {"reverse", int(Filter::kReverse), 0, 0, {}},
      {"items", int(Filter::kItems), 0, 0, {}},
      {"safe", -1, 0, 0, {}},  // marks nothing here (no autoescape): the identity
  };
  return *kFilters;
}

const std::vector<Signature>& Methods() {
  static const auto* const kMethods = new std::vector<Signature>{
      {"strip", int(Method::kStrip), 0, 1, {}},
      {"lstrip", int(Method::kLstrip), 0, 1, {}},
      {"rstrip", int(Method::kRstrip), 0, 1, {}},
      {"split", int(Method::kSplit), 0, 2, {}},
      {"startswith", int(Method::kStartswith), 1, 1, {}},
      {"endswith", int(Method::kEndswith), 1, 1, {}},
      {"upper", int(Method::kUpper), 0, 0, {}},
      {"lower", int(Method::kLower), 0, 0, {}},
      {"title", int(Method::kTitle), 0, 0, {}},
      {"capitalize", int(Method::kCapitalize), 0, 0, {}},
      {"replace", int(Method::kReplace), 2, 3, {}},
      {"items", int(Method::kItems), 0, 0, {}},
      {"keys", int(Method::kKeys), 0, 0, {}},
      {"values", int(Method::kValues), 0, 0, {}},
      {"get", int(Method::kGet), 1, 2, {}},
  };
  return *kMethods;
}

const std::vector<Signature>& Functions() {
  static const auto* const kFunctions = new std::vector<Signature>{
      {"raise_exception", int(Function::kRaiseException), 1, 1, {}},
      {"namespace", int(Function::kNamespace), 0, 0, {"*"}},
      {"range", int(Function::kRange), 1, 3, {}},
  };
  return *kFunctions;
}

const std::vector<std::pair<std::string_view, Test>>& Tests() {
  static const auto* const kTests = new std::vector<std::pair<std::string_view, Test>>{
      {"defined", Test::kDefined}, {"undefined", Test::kUndefined}, {"none", Test::kNone},
      {"string", Test::kString},   {"number", Test::kNumber},       {"integer", Test::kInteger},
      {"boolean", Test::kBoolean}, {"mapping", Test::kMapping},     {"sequence", Test::kSequence},
      {"iterable", Test::kIterable}, {"true", Test::kTrue},         {"false", Test::kFalse},
      {"even", Test::kEven},       {"odd", Test::kOdd},
  };
  return *kTests;
}

const Signature* FindSignature(const std::vector<Signature>& table, std::string_view name) {
  for (const Signature& s : table) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

ExprPtr ParserBase::Make(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

absl::Status ParserBase::Enter() {
  if (++expr_depth_ > limits_.max_depth) {
    return Error(StrCat("an expression nests more than ", limits_.max_depth, " deep"));
  }
  return Count();
}

// An expression, or several separated by commas (a tuple, as a list).
absl::StatusOr<ExprPtr> ParserBase::ParseTuple(bool with_condexpr) {
  const int line = Cur().line;
  ExprPtr first;
  ASSIGN_OR_RETURN(first, with_condexpr ? ParseExpression() : ParseOr());
  if (!IsOp(",")) return first;
  auto list = Make(Expr::Kind::kList, line);
  list->operands.push_back(std::move(first));
  while (IsOp(",")) {
    Next();
    if (Cur().kind == Token::Kind::kBlockEnd || Cur().kind == Token::Kind::kVarEnd) break;
    ExprPtr item;
    ASSIGN_OR_RETURN(item, with_condexpr ? ParseExpression() : ParseOr());
    list->operands.push_back(std::move(item));
  }
  return list;
}

absl::StatusOr<ExprPtr> ParserBase::ParseExpression() {
  RETURN_IF_ERROR(Enter());
  const int line = Cur().line;
  ExprPtr expr;
  ASSIGN_OR_RETURN(expr, ParseOr());
  while (IsName("if")) {
    Next();
    auto t = Make(Expr::Kind::kTernary, line);
    ExprPtr cond, other;
    ASSIGN_OR_RETURN(cond, ParseOr());
    if (IsName("else")) {
      Next();
      ASSIGN_OR_RETURN(other, ParseExpression());
    }
    t->operands.push_back(std::move(cond));
    t->operands.push_back(std::move(expr));
    t->operands.push_back(std::move(other));
    expr = std::move(t);
  }
  --expr_depth_;
  return expr;
}

absl::StatusOr<ExprPtr> ParserBase::ParseOr() { return ParseLogic("or", Expr::Kind::kOr, &ParserBase::ParseAnd); }
absl::StatusOr<ExprPtr> ParserBase::ParseAnd() { return ParseLogic("and", Expr::Kind::kAnd, &ParserBase::ParseNot); }
absl::StatusOr<ExprPtr> ParserBase::ParseLogic(std::string_view word, Expr::Kind kind, absl::StatusOr<ExprPtr> (ParserBase::*next)()) {
  ExprPtr left;
  ASSIGN_OR_RETURN(left, (this->*next)());
  while (IsName(word)) {
    auto e = Make(kind, Cur().line);
    Next();
    ExprPtr right;
    ASSIGN_OR_RETURN(right, (this->*next)());
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    left = std::move(e);
  }
  return left;
}

absl::StatusOr<ExprPtr> ParserBase::ParseNot() {
  if (IsName("not")) {
    RETURN_IF_ERROR(Enter());
    auto e = Make(Expr::Kind::kNot, Cur().line);
    Next();
    ExprPtr operand;
    ASSIGN_OR_RETURN(operand, ParseNot());
    e->operands.push_back(std::move(operand));
    --expr_depth_;
    return e;
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> ParserBase::ParseCompare() {
  const int line = Cur().line;
  ExprPtr left;
  ASSIGN_OR_RETURN(left, ParseMath1());
  ExprPtr cmp;
  while (true) {
    std::optional<Op> op;
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {"==", Op::kEq}, {"!=", Op::kNe}, {"<", Op::kLt}, {"<=", Op::kLe}, {">", Op::kGt}, {">=", Op::kGe}};
    for (auto [text, o] : kOps) {
      if (IsOp(text)) op = o;
    }
    if (op) {
      Next();
    } else if (IsName("in")) {
      op = Op::kIn;
      Next();
    } else if (IsName("not") && Peek().kind == Token::Kind::kName && Peek().value == "in") {
      op = Op::kNotIn;
      Next();
      Next();
    } else {
      break;
    }
    if (cmp == nullptr) {
      cmp = Make(Expr::Kind::kCompare, line);
      cmp->operands.push_back(std::move(left));
    }
    ExprPtr right;
    ASSIGN_OR_RETURN(right, ParseMath1());
    cmp->ops.push_back(*op);
    cmp->operands.push_back(std::move(right));
  }
  return cmp != nullptr ? std::move(cmp) : std::move(left);
}

absl::StatusOr<ExprPtr> ParserBase::ParseBinary(std::initializer_list<std::pair<std::string_view, Op>> ops,
                                    absl::StatusOr<ExprPtr> (ParserBase::*next)()) {
  ExprPtr left;
  ASSIGN_OR_RETURN(left, (this->*next)());
  while (true) {
    std::optional<Op> op;
    for (auto [text, o] : ops) {
      if (IsOp(text)) op = o;
    }
    if (!op) {
      if (IsOp("/")) return Error("true division '/' is not supported in chat templates (use '//')");
      return left;
    }
    auto e = Make(Expr::Kind::kBinary, Cur().line);
    Next();
    ExprPtr right;
    ASSIGN_OR_RETURN(right, (this->*next)());
    e->ops.push_back(*op);
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    left = std::move(e);
  }
}
absl::StatusOr<ExprPtr> ParserBase::ParseMath1() {
  return ParseBinary({{"+", Op::kAdd}, {"-", Op::kSub}}, &ParserBase::ParseConcat);
}
absl::StatusOr<ExprPtr> ParserBase::ParseConcat() { return ParseBinary({{"~", Op::kConcat}}, &ParserBase::ParseMath2); }
absl::StatusOr<ExprPtr> ParserBase::ParseMath2() {
  return ParseBinary({{"*", Op::kMul}, {"//", Op::kFloorDiv}, {"%", Op::kMod}}, &ParserBase::ParsePow);
}
absl::StatusOr<ExprPtr> ParserBase::ParsePow() { return ParseBinary({{"**", Op::kPow}}, &ParserBase::ParseUnaryFiltered); }
absl::StatusOr<ExprPtr> ParserBase::ParseUnaryFiltered() { return ParseUnary(true); }

absl::StatusOr<ExprPtr> ParserBase::ParseUnary(bool with_filter) {
  RETURN_IF_ERROR(Enter());
  ExprPtr node;
  if (IsOp("-") || IsOp("+")) {
    const bool neg = IsOp("-");
    auto e = Make(Expr::Kind::kNeg, Cur().line);
    Next();
    ExprPtr operand;
    ASSIGN_OR_RETURN(operand, ParseUnary(false));
    if (neg) {
      e->operands.push_back(std::move(operand));
      node = std::move(e);
    } else {
      node = std::move(operand);
    }
  } else {
    ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    ASSIGN_OR_RETURN(node, ParseFilters(std::move(node)));
  }
  --expr_depth_;
  return node;
}

absl::StatusOr<ExprPtr> ParserBase::ParsePrimary() {
  const Token& t = Cur();
  const int line = t.line;
  if (t.kind == Token::Kind::kName) {
    auto e = Make(Expr::Kind::kLiteral, line);
    if (t.value == "true" || t.value == "True") {
      e->literal = Value::Bool(true);
    } else if (t.value == "false" || t.value == "False") {
      e->literal = Value::Bool(false);
    } else if (t.value == "none" || t.value == "None") {
      e->literal = Value::None();
    } else {
      e->kind = Expr::Kind::kName;
      e->name = t.value;
    }
    Next();
    return e;
  }
  if (t.kind == Token::Kind::kString) {
    std::string s;
    while (Cur().kind == Token::Kind::kString) {  // adjacent literals join
      s += Cur().value;
      Next();
    }
    auto e = Make(Expr::Kind::kLiteral, line);
    e->literal = Value::String(std::move(s));
    return e;
  }
  if (t.kind == Token::Kind::kInt) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(t.value.data(), t.value.data() + t.value.size(), value);
    if (ec != std::errc() || end != t.value.data() + t.value.size()) {
      return Error(StrCat("the number ", t.value, " does not fit in 64 bits"));
    }
    auto e = Make(Expr::Kind::kLiteral, line);
    e->literal = Value::Int(value);
    Next();
    return e;
  }
  if (IsOp("(")) {
    Next();
    if (IsOp(")")) {
      Next();
      auto e = Make(Expr::Kind::kList, line);
      return e;
    }
    ExprPtr inner;
    ASSIGN_OR_RETURN(inner, ParseExpression());
    if (IsOp(",")) {
      auto list = Make(Expr::Kind::kList, line);
      list->operands.push_back(std::move(inner));
      while (IsOp(",")) {
        Next();
        if (IsOp(")")) break;
        ExprPtr item;
        ASSIGN_OR_RETURN(item, ParseExpression());
        list->operands.push_back(std::move(item));
      }
      inner = std::move(list);
    }
    RETURN_IF_ERROR(Expect(")"));
    return inner;
  }
  if (IsOp("[")) {
    Next();
    auto e = Make(Expr::Kind::kList, line);
    while (!IsOp("]")) {
      ExprPtr item;
      ASSIGN_OR_RETURN(item, ParseExpression());
      e->operands.push_back(std::move(item));
      if (!IsOp(",")) break;
      Next();
    }
    RETURN_IF_ERROR(Expect("]"));
    return e;
  }
  if (IsOp("{")) {
    Next();
    auto e = Make(Expr::Kind::kDict, line);
    while (!IsOp("}")) {
      if (Cur().kind != Token::Kind::kString) return Error("dict keys must be string literals in chat templates");
      e->keys.push_back(Cur().value);
      Next();
      RETURN_IF_ERROR(Expect(":"));
      ExprPtr item;
      ASSIGN_OR_RETURN(item, ParseExpression());
      e->operands.push_back(std::move(item));
      if (!IsOp(",")) break;
      Next();
    }
    RETURN_IF_ERROR(Expect("}"));
    return e;
  }
  return Error(StrCat("expected an expression, found ", Describe(t)));
}

// (args..., name=value...) into e->operands / e->keys, checked against `sig`.
absl::Status ParserBase::ParseArgs(Expr* e, const Signature& sig, std::string_view what) {
  RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    if (Cur().kind == Token::Kind::kName && Peek().kind == Token::Kind::kOp && Peek().value == "=") {
      std::string key = Cur().value;
      const bool any = !sig.keywords.empty() && sig.keywords[0] == "*";
      if (!any && std::find(sig.keywords.begin(), sig.keywords.end(), key) == sig.keywords.end()) {
        return Error(StrCat(what, " '", sig.name, "' has no argument '", key, "' in chat templates"));
      }
      Next();
      Next();
      e->keys.push_back(std::move(key));
    } else if (!e->keys.empty()) {
      return Error(StrCat("a positional argument after keyword arguments in ", what, " '", sig.name, "'"));
    } else {
      ++e->positional;
    }
    ExprPtr arg;
    ASSIGN_OR_RETURN(arg, ParseExpression());
    e->operands.push_back(std::move(arg));
    if (!IsOp(",")) break;
    Next();
  }
  RETURN_IF_ERROR(Expect(")"));
  return CheckArity(*e, sig, what);
}
absl::Status ParserBase::CheckArity(const Expr& e, const Signature& sig, std::string_view what) {
  if (e.positional < sig.min_args || e.positional > sig.max_args) {
    return Error(e.line, StrCat(what, " '", sig.name, "' takes ", sig.min_args,
                                sig.max_args != sig.min_args ? StrCat(" to ", sig.max_args) : "",
                                " positional arguments, got ", e.positional));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExprPtr> ParserBase::ParsePostfix(ExprPtr node) {
  while (true) {
    const int line = Cur().line;
    if (IsOp(".")) {
      Next();
      if (Cur().kind == Token::Kind::kInt) {  // a.0 is a[0]
        auto idx = Make(Expr::Kind::kIndex, line);
        auto lit = Make(Expr::Kind::kLiteral, line);
        ASSIGN_OR_RETURN(lit, ParsePrimary());
        idx->operands.push_back(std::move(node));
        idx->operands.push_back(std::move(lit));
        node = std::move(idx);
        continue;
      }
      std::string name;
      ASSIGN_OR_RETURN(name, ExpectName());
      if (IsOp("(")) {
        const Signature* sig = FindSignature(Methods(), name);
        if (sig == nullptr) return Error(StrCat("the method '", name, "()' is not supported in chat templates"));
        auto call = Make(Expr::Kind::kMethod, line);
        call->method = static_cast<Method>(sig->id);
        call->name = name;
        call->operands.push_back(std::move(node));
        RETURN_IF_ERROR(ParseArgs(call.get(), *sig, "the method"));
        node = std::move(call);
      } else {
        auto attr = Make(Expr::Kind::kAttr, line);
        attr->name = std::move(name);
        attr->operands.push_back(std::move(node));
        node = std::move(attr);
      }
    } else if (IsOp("[")) {
      Next();
      ExprPtr start, stop, step;
      if (!IsOp(":")) {
        ASSIGN_OR_RETURN(start, ParseExpression());
      }
      if (IsOp(":")) {
        Next();
        if (!IsOp("]") && !IsOp(":")) {
          ASSIGN_OR_RETURN(stop, ParseExpression());
        }
        if (IsOp(":")) {
          Next();
          if (!IsOp("]")) {
            ASSIGN_OR_RETURN(step, ParseExpression());
          }
        }
        auto slice = Make(Expr::Kind::kSlice, line);
        slice->operands.push_back(std::move(node));
        slice->operands.push_back(std::move(start));
        slice->operands.push_back(std::move(stop));
        slice->operands.push_back(std::move(step));
        node = std::move(slice);
      } else {
        auto idx = Make(Expr::Kind::kIndex, line);
        idx->operands.push_back(std::move(node));
        idx->operands.push_back(std::move(start));
        node = std::move(idx);
      }
      RETURN_IF_ERROR(Expect("]"));
    } else if (IsOp("(")) {
      if (node->kind != Expr::Kind::kName) return Error("only named functions can be called in chat templates");
      const Signature* sig = FindSignature(Functions(), node->name);
      if (sig == nullptr) {
        return Error(StrCat("the function '", node->name, "()' is not supported in chat templates"));
      }
      auto call = Make(Expr::Kind::kCall, line);
      call->function = static_cast<Function>(sig->id);
      call->name = node->name;
      RETURN_IF_ERROR(ParseArgs(call.get(), *sig, "the function"));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> ParserBase::ParseFilters(ExprPtr node) {
  while (true) {
    const int line = Cur().line;
    if (IsOp("|")) {
      Next();
      std::string name;
      ASSIGN_OR_RETURN(name, ExpectName());
      const Signature* sig = FindSignature(Filters(), name);
      if (sig == nullptr) return Error(line, StrCat("the filter '", name, "' is not supported in chat templates"));
      if (sig->id < 0) {  // safe
        if (IsOp("(")) RETURN_IF_ERROR(ParseArgs(Make(Expr::Kind::kFilter, line).get(), *sig, "the filter"));
        continue;
      }
      auto f = Make(Expr::Kind::kFilter, line);
      f->filter = static_cast<Filter>(sig->id);
      f->name = name;
      f->operands.push_back(std::move(node));
      if (IsOp("(")) {
        RETURN_IF_ERROR(ParseArgs(f.get(), *sig, "the filter"));
      } else {
        RETURN_IF_ERROR(CheckArity(*f, *sig, "the filter"));
      }
      node = std::move(f);
    } else if (IsName("is")) {
      Next();
      auto t = Make(Expr::Kind::kTest, line);
      if (IsName("not")) {
        t->negated = true;
        Next();
      }
      std::string name;
      ASSIGN_OR_RETURN(name, ExpectName());
      bool found = false;
      for (auto [text, test] : Tests()) {
        if (text == name) {
          t->test = test;
          found = true;
        }
      }
      if (!found) return Error(line, StrCat("the test '", name, "' is not supported in chat templates"));
      const Token& c = Cur();
      if (IsOp("(") || c.kind == Token::Kind::kString || c.kind == Token::Kind::kInt || IsOp("[") || IsOp("{") ||
          (c.kind == Token::Kind::kName && c.value != "else" && c.value != "or" && c.value != "and" &&
           c.value != "if" && c.value != "is" && c.value != "in" && c.value != "not")) {
        return Error(StrCat("the test '", name, "' takes no argument"));
      }
      t->name = std::move(name);
      t->operands.push_back(std::move(node));
      node = std::move(t);
    } else {
      return node;
    }
  }
}

}  // namespace ortserve::generation::jinja
