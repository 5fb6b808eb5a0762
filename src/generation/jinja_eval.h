// SPDX-License-Identifier: Apache-2.0
// Renders a parsed chat template (generation/jinja_parser.h) with Jinja's
// semantics as transformers runs it: scopes (a for loop's body gets a fresh
// scope each iteration, so only a namespace carries values out), the `loop`
// variable, undefined values, Python's str/repr, and the subset's filters,
// tests and methods (jinja_builtins.cc).
//
// Bounded: every render counts its steps, the bytes it builds and its
// output, and stops with an error at the limits; recursion follows the
// parsed tree, whose depth the parser bounds. No exceptions.
//
// Not thread-safe: one render runs on one thread (the tree it reads is
// immutable and may be shared).
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "generation/jinja_parser.h"
#include "generation/jinja_value.h"

namespace ortserve::generation::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{1} << 20;   // the rendered text, and any one string
  int64_t max_steps = 1'000'000;                // expressions and statements evaluated
  size_t max_work_bytes = size_t{64} << 20;     // bytes of all strings built, summed
  size_t max_items = size_t{1} << 16;           // elements of any one list (range(), +)
  int max_value_depth = 32;                     // lists and dicts nested in values
};

// The costs of one render, charged as it goes.
class Budget {
 public:
  explicit Budget(const RenderLimits& limits) : limits_(limits) {}
  // A string of `bytes` was built. InvalidArgument past the limits.
  absl::Status Bytes(size_t bytes);
  // `bytes` of a string were read (walked by code point, searched, copied).
  absl::Status Work(size_t bytes);
  // One evaluation step, or `n` (copying n items counts n).
  absl::Status Step(int64_t n = 1);
  absl::Status Items(size_t items) const;
  absl::Status Depth(int depth) const;
  // The cost of walking a value: a string's bytes (Work), a list's or dict's
  // items (Step).
  absl::Status Charge(const Value& v);
  const RenderLimits& limits() const { return limits_; }

 private:
  const RenderLimits& limits_;
  size_t work_ = 0;
  int64_t steps_ = 0;
};

struct RenderResult {
  Text text;
  // Set when the template called raise_exception; the error is its message.
  bool raised = false;
};

// Renders `body` with `globals` into *out. On error, the status names the
// line ("line N: ...") unless the template raised (out->raised).
absl::Status Render(const Body& body, std::vector<std::pair<std::string, Value>> globals, const RenderLimits& limits,
                    RenderResult* out);

// The subset's builtins (jinja_builtins.cc). Errors name what was wrong,
// without a line (the caller adds it).
absl::StatusOr<Value> ApplyFilter(Filter filter, const Value& value, std::span<const Value> args,
                                  std::span<const std::pair<std::string, Value>> kwargs, Budget* budget);
absl::StatusOr<Value> CallMethod(Method method, const Value& self, std::span<const Value> args, Budget* budget);
absl::StatusOr<bool> ApplyTest(Test test, const Value& value);
// What iterating `v` walks (a for loop, list-taking filters): a list's items,
// a dict's keys, a string's characters (charged to `budget`), nothing for
// undefined. InvalidArgument "<what>: a <type> is not iterable" otherwise.
absl::StatusOr<List> Iterate(const Value& v, std::string_view what, Budget* budget);
// The binary operators and comparisons (jinja_operators.cc).
absl::StatusOr<Value> BinaryOp(Op op, const Value& a, const Value& b, Budget* budget);
absl::StatusOr<bool> CompareOp(Op op, const Value& a, const Value& b, Budget* budget);
// Python's str.strip family: which = -1 lstrip, 0 strip, 1 rstrip; chars
// null: whitespace.
Text Strip(const Text& text, const std::string* chars, int which);

}  // namespace ortserve::generation::jinja
