// SPDX-License-Identifier: Apache-2.0
// The statements of the chat-template subset (a recursive-descent parser;
// expressions are in jinja_expression.cc).
#include "generation/jinja_parser.h"

#include <set>

#include "core/status.h"
#include "core/strings.h"
#include "generation/jinja_lexer.h"
#include "generation/jinja_parser_base.h"

namespace ortserve::generation::jinja {

namespace {

class Parser : public ParserBase {
 public:
  using ParserBase::ParserBase;

  absl::StatusOr<Body> Run() {
    Body body;
    std::string end;
    RETURN_IF_ERROR(ParseBody({}, &body, &end));
    return body;
  }

 private:
  // Statements up to a block tag named in `ends` (its name in *end, the tag
  // consumed up to its name) or the end of the template (ends empty).
  absl::Status ParseBody(const std::set<std::string_view>& ends, Body* body, std::string* end) {
    if (++depth_ > limits_.max_depth) return Error(StrCat("blocks nest more than ", limits_.max_depth, " deep"));
    while (true) {
      const Token& t = Cur();
      RETURN_IF_ERROR(Count());
      if (t.kind == Token::Kind::kEof) {
        if (!ends.empty()) {
          std::string names;
          for (std::string_view e : ends) names += StrCat(names.empty() ? "" : " or ", "'", e, "'");
          return Error(StrCat("the template ends before ", names));
        }
        break;
      }
      if (t.kind == Token::Kind::kData) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->line = t.line;
        node->text = t.value;
        body->push_back(std::move(node));
        Next();
      } else if (t.kind == Token::Kind::kVarBegin) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = t.line;
        Next();
        ASSIGN_OR_RETURN(node->expr, ParseTuple(true));
        RETURN_IF_ERROR(ExpectKind(Token::Kind::kVarEnd, "'}}'"));
        body->push_back(std::move(node));
      } else if (t.kind == Token::Kind::kBlockBegin) {
        Next();
        if (Cur().kind == Token::Kind::kName && ends.contains(Cur().value)) {
          *end = Cur().value;
          Next();
          break;
        }
        RETURN_IF_ERROR(ParseStatement(body));
      } else {
        return Error(StrCat("unexpected ", Describe(t)));
      }
    }
    --depth_;
    return absl::OkStatus();
  }

  absl::Status ParseStatement(Body* body) {
    const int line = Cur().line;
    if (Cur().kind != Token::Kind::kName) return Error(StrCat("expected a tag name, found ", Describe(Cur())));
    const std::string tag = Cur().value;
    Next();
    auto node = std::make_unique<Node>();
    node->line = line;
    std::string end;
    if (tag == "if") {
      node->kind = Node::Kind::kIf;
      ExprPtr cond;
      ASSIGN_OR_RETURN(cond, ParseTuple(true));
      while (true) {
        RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
        Body branch;
        RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &branch, &end));
        node->branches.emplace_back(std::move(cond), std::move(branch));
        if (end == "endif") break;
        if (end == "else") {
          RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
          Body else_branch;
          RETURN_IF_ERROR(ParseBody({"endif"}, &else_branch, &end));
          node->branches.emplace_back(nullptr, std::move(else_branch));
          break;
        }
        ASSIGN_OR_RETURN(cond, ParseTuple(true));
      }
    } else if (tag == "for") {
      node->kind = Node::Kind::kFor;
      do {
        std::string name;
        ASSIGN_OR_RETURN(name, ExpectName());
        node->targets.push_back(std::move(name));
      } while (IsOp(",") && (Next(), true));
      if (!IsName("in")) return Error(StrCat("expected 'in', found ", Describe(Cur())));
      Next();
      ASSIGN_OR_RETURN(node->expr, ParseTuple(false));
      if (IsName("if")) {
        Next();
        ASSIGN_OR_RETURN(node->filter, ParseTuple(true));
      }
      if (IsName("recursive")) return Error("'for ... recursive' is not supported in chat templates");
      RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
      ++loops_;
      RETURN_IF_ERROR(ParseBody({"else", "endfor"}, &node->body, &end));
      --loops_;
      if (end == "else") {
        RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
        RETURN_IF_ERROR(ParseBody({"endfor"}, &node->else_body, &end));
      }
    } else if (tag == "set") {
      std::string name;
      ASSIGN_OR_RETURN(name, ExpectName());
      node->targets.push_back(std::move(name));
      if (IsOp(".")) {
        Next();
        ASSIGN_OR_RETURN(node->attr, ExpectName());
      } else {
        while (IsOp(",")) {
          Next();
          ASSIGN_OR_RETURN(name, ExpectName());
          node->targets.push_back(std::move(name));
        }
      }
      if (IsOp("=")) {
        Next();
        node->kind = Node::Kind::kSet;
        ASSIGN_OR_RETURN(node->expr, ParseTuple(true));
      } else if (node->targets.size() == 1 && node->attr.empty() && Cur().kind == Token::Kind::kBlockEnd) {
        node->kind = Node::Kind::kSetBlock;
        Next();
        RETURN_IF_ERROR(ParseBody({"endset"}, &node->body, &end));
      } else {
        return Error(StrCat("expected '=' in 'set', found ", Describe(Cur())));
      }
    } else if (tag == "break" || tag == "continue") {
      if (loops_ == 0) return Error(line, StrCat("'", tag, "' outside a for loop"));
      node->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else if (tag == "generation") {
      node->kind = Node::Kind::kBlock;
      RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
      RETURN_IF_ERROR(ParseBody({"endgeneration"}, &node->body, &end));
    } else if (tag == "elif" || tag == "else" || tag.starts_with("end")) {
      return Error(line, StrCat("'", tag, "' without its opening tag"));
    } else {
      return Error(line, StrCat("the tag '", tag, "' is not supported in chat templates"));
    }
    RETURN_IF_ERROR(ExpectKind(Token::Kind::kBlockEnd, "'%}'"));
    body->push_back(std::move(node));
    return absl::OkStatus();
  }

};

#undef RETURN_IF_ERROR_P
#undef ASSIGN_OR_RETURN_P

}  // namespace

absl::StatusOr<Body> ParseTemplate(std::string_view source, const ParseLimits& limits) {
  auto tokens = Tokenize(source, limits.max_source_bytes);
  if (!tokens.ok()) return tokens.status();
  return Parser(*std::move(tokens), limits).Run();
}

}  // namespace ortserve::generation::jinja
