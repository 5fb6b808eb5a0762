// SPDX-License-Identifier: Apache-2.0
// The operators of the chat-template subset: arithmetic on 64-bit integers
// (overflow is an error, division and modulo round as Python's), string and
// list concatenation and repetition, `~`, comparisons and `in`.
#include <algorithm>

#include "core/checked_math.h"
#include "core/strings.h"
#include "generation/jinja_eval.h"

namespace ortserve::generation::jinja {

namespace {

#define RETURN_IF_ERROR_O(expr)                        \
  do {                                                 \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

absl::Status Error(std::string_view message) { return absl::InvalidArgumentError(std::string(message)); }
bool IsNumber(const Value& v) { return v.type == Value::Type::kInt || v.type == Value::Type::kBool; }
int64_t Number(const Value& v) { return v.type == Value::Type::kInt ? v.i : v.b; }

absl::StatusOr<Value> Repeat(const Value& v, int64_t times, Budget* budget) {
  times = std::max<int64_t>(times, 0);
  if (v.is_string()) {
    const auto bytes = CheckedMul<size_t>(v.str->s.size(), static_cast<size_t>(times));
    if (!bytes) return Error("a string too long to build");
    RETURN_IF_ERROR_O(budget->Bytes(*bytes));
    Text t;
    for (int64_t k = 0; k < times; ++k) t.Append(*v.str);
    return Value::String(std::move(t));
  }
  const auto items = CheckedMul<size_t>(v.list->size(), static_cast<size_t>(times));
  if (!items) return Error("a list too long to build");
  RETURN_IF_ERROR_O(budget->Items(*items));
  RETURN_IF_ERROR_O(budget->Step(static_cast<int64_t>(*items)));
  List out;
  for (int64_t k = 0; k < times; ++k) out.insert(out.end(), v.list->begin(), v.list->end());
  return Value::MakeList(std::move(out));
}

}  // namespace

absl::StatusOr<Value> BinaryOp(Op op, const Value& a, const Value& b, Budget* budget) {
  if (op == Op::kConcat) {
    Text t = ToText(a);
    t.Append(ToText(b));
    RETURN_IF_ERROR_O(budget->Bytes(t.s.size()));
    return Value::String(std::move(t));
  }
  if (IsNumber(a) && IsNumber(b)) {
    const int64_t x = Number(a), y = Number(b);
    int64_t r = 0;
    bool overflow = false;
    switch (op) {
      case Op::kAdd: overflow = __builtin_add_overflow(x, y, &r); break;
      case Op::kSub: overflow = __builtin_sub_overflow(x, y, &r); break;
      case Op::kMul: overflow = __builtin_mul_overflow(x, y, &r); break;
      case Op::kFloorDiv:
      case Op::kMod:
        if (y == 0) return Error("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) return Error("integer overflow");
        r = op == Op::kFloorDiv ? x / y : x % y;
        // Python rounds toward negative infinity.
        if ((x % y != 0) && ((x < 0) != (y < 0))) r = op == Op::kFloorDiv ? r - 1 : r + y;
        break;
      case Op::kPow:
        if (y < 0) return Error("negative powers are not supported in chat templates");
        r = 1;
        for (int64_t k = 0; k < y && !overflow; ++k) {
          RETURN_IF_ERROR_O(budget->Step());
          overflow = __builtin_mul_overflow(r, x, &r);
        }
        break;
      default:
        break;
    }
    if (overflow) return Error("integer overflow");
    return Value::Int(r);
  }
  if (op == Op::kAdd && a.is_string() && b.is_string()) {
    Text t = *a.str;
    t.Append(*b.str);
    RETURN_IF_ERROR_O(budget->Bytes(t.s.size()));
    return Value::String(std::move(t));
  }
  if (op == Op::kAdd && a.type == Value::Type::kList && b.type == Value::Type::kList) {
    RETURN_IF_ERROR_O(budget->Items(a.list->size() + b.list->size()));
    RETURN_IF_ERROR_O(budget->Step(static_cast<int64_t>(a.list->size() + b.list->size())));
    List items = *a.list;
    items.insert(items.end(), b.list->begin(), b.list->end());
    return Value::MakeList(std::move(items));
  }
  if (op == Op::kMul && (a.is_string() || a.type == Value::Type::kList) && IsNumber(b)) return Repeat(a, Number(b), budget);
  if (op == Op::kMul && (b.is_string() || b.type == Value::Type::kList) && IsNumber(a)) return Repeat(b, Number(a), budget);
  static constexpr std::string_view kNames[] = {"+", "-", "*", "//", "%", "**"};
  return Error(StrCat("unsupported operand types for ", kNames[static_cast<int>(op)], ": '", a.TypeName(), "' and '",
                      b.TypeName(), "'"));
}

absl::StatusOr<bool> CompareOp(Op op, const Value& a, const Value& b, Budget* budget) {
  if (op == Op::kEq || op == Op::kNe) {
    if (a.type == Value::Type::kList || a.type == Value::Type::kDict) RETURN_IF_ERROR_O(budget->Charge(a));
  }
  switch (op) {
    case Op::kEq: return Equal(a, b);
    case Op::kNe: return !Equal(a, b);
    case Op::kIn:
    case Op::kNotIn: {
      RETURN_IF_ERROR_O(budget->Charge(b));
      bool in = false;
      if (b.is_string()) {
        if (!a.is_string()) return Error(StrCat("'in <string>' needs a string on the left, not '", a.TypeName(), "'"));
        in = b.str->s.find(a.str->s) != std::string::npos;
      } else if (b.type == Value::Type::kList) {
        in = std::any_of(b.list->begin(), b.list->end(), [&](const Value& v) { return Equal(a, v); });
      } else if (b.type == Value::Type::kDict || b.type == Value::Type::kNamespace) {
        in = a.is_string() && b.Find(a.str->s) != nullptr;
      } else if (!b.is_undefined()) {
        return Error(StrCat("a ", b.TypeName(), " cannot be searched with 'in'"));
      }
      return in == (op == Op::kIn);
    }
    default:
      break;
  }
  int cmp = 0;
  if (IsNumber(a) && IsNumber(b)) {
    cmp = Number(a) < Number(b) ? -1 : Number(a) > Number(b) ? 1 : 0;
  } else if (a.is_string() && b.is_string()) {
    cmp = a.str->s.compare(b.str->s);
  } else {
    return Error(StrCat("'", a.TypeName(), "' and '", b.TypeName(), "' cannot be ordered"));
  }
  switch (op) {
    case Op::kLt: return cmp < 0;
    case Op::kLe: return cmp <= 0;
    case Op::kGt: return cmp > 0;
    default: return cmp >= 0;
  }
}

}  // namespace ortserve::generation::jinja
