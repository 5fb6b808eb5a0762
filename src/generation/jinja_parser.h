// SPDX-License-Identifier: Apache-2.0
// The Jinja subset of chat templates (generation/chat_template.h) parsed into
// a tree: the lexer applies Jinja's whitespace rules as transformers
// configures them (trim_blocks, lstrip_blocks, `-` and `+` markers, the
// template's last newline dropped), the parser builds statements and
// expressions. Every name of a filter, test, method or function is resolved
// here, so a template that uses anything outside the subset fails to load,
// with the line and the construct, never at request time.
//
// Pure functions; the tree is immutable once parsed (thread-safe to read).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "generation/jinja_value.h"

namespace ortserve::generation::jinja {

enum class Op {
  // Binary arithmetic and string operators.
  kAdd, kSub, kMul, kFloorDiv, kMod, kPow, kConcat,
  // Comparisons.
  kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn,
};

// The filters, tests, methods and functions of the subset.
enum class Filter {
  kTrim, kLength, kUpper, kLower, kCapitalize, kTitle, kToJson, kDefault, kFirst, kLast, kJoin, kReplace,
  kString, kInt, kList, kReverse, kItems,
};
enum class Test {
  kDefined, kUndefined, kNone, kString, kNumber, kInteger, kBoolean, kMapping, kSequence, kIterable,
  kTrue, kFalse, kEven, kOdd,
};
enum class Method {
  kStrip, kLstrip, kRstrip, kSplit, kStartswith, kEndswith, kUpper, kLower, kTitle, kCapitalize, kReplace,
  kItems, kKeys, kValues, kGet,
};
enum class Function { kRaiseException, kNamespace, kRange };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // literal
    kName,      // name
    kAttr,      // a.name: operands[0]
    kIndex,     // a[b]: operands[0], operands[1]
    kSlice,     // a[b:c:d]: operands[0], then start, stop, step (null when absent)
    kList,      // [operands...]
    kDict,      // {keys[k]: operands[k]}
    kNot,       // not operands[0]
    kNeg,       // -operands[0]
    kBinary,    // operands[0] op operands[1]
    kCompare,   // operands[0] ops[0] operands[1] ops[1] ... (chained, as Python)
    kAnd,       // operands[0] and operands[1]
    kOr,
    kTernary,   // operands[1] if operands[0] else operands[2] (null: undefined)
    kFilter,    // operands[0] | filter(args...)
    kTest,      // operands[0] is [not] test(args...)
    kMethod,    // operands[0].method(args...)
    kCall,      // function(args..., kwargs)
  };
  Kind kind = Kind::kLiteral;
  int line = 1;
  Value literal;
  std::string name;              // kName, kAttr; the filter/test/method name for messages
  std::vector<ExprPtr> operands;
  std::vector<Op> ops;           // kBinary (one), kCompare
  std::vector<std::string> keys; // kDict; kCall and kFilter keyword names (operands after positional)
  size_t positional = 0;         // kFilter, kTest, kMethod, kCall: how many operands are positional args
  bool negated = false;          // kTest: `is not`
  Filter filter{};
  Test test{};
  Method method{};
  Function function{};
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body); the last condition is null for else
    kFor,       // {% for targets in expr [if filter] %} body [else else_body]
    kSet,       // {% set targets = expr %} or {% set target.attr = expr %} (attr non-empty)
    kSetBlock,  // {% set target %}body{% endset %}
    kBreak,
    kContinue,
    kBlock,     // a body rendered in place ({% generation %})
  };
  Kind kind = Kind::kText;
  int line = 1;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

struct ParseLimits {
  size_t max_source_bytes = size_t{1} << 20;
  int max_depth = 64;  // nested blocks, and nested expressions
  size_t max_nodes = size_t{1} << 18;
};

// The template's tree. InvalidArgument "line N: ..." naming the construct for
// anything outside the subset or malformed.
absl::StatusOr<Body> ParseTemplate(std::string_view source, const ParseLimits& limits = {});

}  // namespace ortserve::generation::jinja
