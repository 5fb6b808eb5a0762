// SPDX-License-Identifier: Apache-2.0
#include "generation/jinja_eval.h"

#include <algorithm>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation::jinja {

absl::Status Budget::Bytes(size_t bytes) {
  if (bytes > limits_.max_output_bytes) {
    return absl::InvalidArgumentError(
        StrCat("a string of ", bytes, " bytes, more than the limit of ", limits_.max_output_bytes));
  }
  work_ += bytes;
  if (work_ > limits_.max_work_bytes) {
    return absl::InvalidArgumentError(StrCat("rendering read or built more than ", limits_.max_work_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Budget::Work(size_t bytes) {
  work_ += bytes;
  if (work_ > limits_.max_work_bytes) {
    return absl::InvalidArgumentError(StrCat("rendering read or built more than ", limits_.max_work_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Budget::Step(int64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) {
    return absl::InvalidArgumentError(StrCat("rendering took more than ", limits_.max_steps, " steps"));
  }
  return absl::OkStatus();
}

absl::Status Budget::Charge(const Value& v) {
  if (v.is_string()) return Work(v.str->s.size());
  if (v.type == Value::Type::kList) return Step(static_cast<int64_t>(v.list->size()));
  if (v.type == Value::Type::kDict) return Step(static_cast<int64_t>(v.dict->size()));
  return absl::OkStatus();
}

absl::Status Budget::Items(size_t items) const {
  if (items > limits_.max_items) {
    return absl::InvalidArgumentError(StrCat("a list of ", items, " items, more than the limit of ", limits_.max_items));
  }
  return absl::OkStatus();
}

absl::Status Budget::Depth(int depth) const {
  if (depth > limits_.max_value_depth) {
    return absl::InvalidArgumentError(StrCat("values nest more than ", limits_.max_value_depth, " deep"));
  }
  return absl::OkStatus();
}

namespace {


absl::Status Error(std::string_view message) { return absl::InvalidArgumentError(std::string(message)); }

bool IsNumber(const Value& v) { return v.type == Value::Type::kInt || v.type == Value::Type::kBool; }
int64_t Number(const Value& v) { return v.type == Value::Type::kInt ? v.i : v.b; }

absl::Status Undefined(const Value& v) {
  return Error(v.undefined_name.empty() ? std::string("an undefined value was used")
                                        : StrCat("'", v.undefined_name, "' is undefined"));
}

// Python's slice.indices: the (start, stop, step) a slice of `n` items walks.
absl::Status SliceIndices(const Value* start, const Value* stop, const Value* step, int64_t n, int64_t* b,
                          int64_t* e, int64_t* s) {
  auto get = [](const Value* v, int64_t* out) -> absl::Status {
    if (v == nullptr || v->type == Value::Type::kNone || v->is_undefined()) return absl::OkStatus();
    if (!IsNumber(*v)) return Error(StrCat("slice indices must be integers, got '", v->TypeName(), "'"));
    *out = Number(*v);
    return absl::OkStatus();
  };
  *s = 1;
  RETURN_IF_ERROR(get(step, s));
  if (*s == 0) return Error("slice step cannot be zero");
  if (*s == INT64_MIN) *s = -INT64_MAX;
  const int64_t low = *s > 0 ? 0 : -1, high = *s > 0 ? n : n - 1;
  *b = *s > 0 ? low : high;
  *e = *s > 0 ? high : low;
  auto clamp = [&](int64_t* v, bool given) {
    if (!given) return;
    if (*v < 0) *v = *v < -n ? low : *v + n;
    *v = std::clamp(*v, low, high);
  };
  const bool has_b = start != nullptr && IsNumber(*start), has_e = stop != nullptr && IsNumber(*stop);
  RETURN_IF_ERROR(get(start, b));
  RETURN_IF_ERROR(get(stop, e));
  clamp(b, has_b);
  clamp(e, has_e);
  return absl::OkStatus();
}

enum class Flow { kNormal, kBreak, kContinue };

class Evaluator {
 public:
  Evaluator(std::vector<std::pair<std::string, Value>> globals, const RenderLimits& limits, RenderResult* out)
      : budget_(limits), limits_(limits), result_(out), out_(&out->text) {
    frames_.push_back(std::move(globals));
  }

  absl::Status Run(const Body& body) {
    Flow flow = Flow::kNormal;
    absl::Status s = Exec(body, &flow);
    if (!s.ok() && !result_->raised) {
      return absl::InvalidArgumentError(StrCat("line ", error_line_, ": ", ToStd(s.message())));
    }
    return s;
  }

 private:
  Value Lookup(std::string_view name) const {
    for (auto frame = frames_.rbegin(); frame != frames_.rend(); ++frame) {
      for (const auto& [key, value] : *frame) {
        if (key == name) return value;
      }
    }
    return Value::Undefined(std::string(name));
  }
  void Assign(const std::string& name, Value value) {
    for (auto& [key, v] : frames_.back()) {
      if (key == name) {
        v = std::move(value);
        return;
      }
    }
    frames_.back().emplace_back(name, std::move(value));
  }
  absl::Status AssignTargets(const std::vector<std::string>& targets, Value value) {
    if (targets.size() == 1) {
      Assign(targets[0], std::move(value));
      return absl::OkStatus();
    }
    if (value.type != Value::Type::kList || value.list->size() != targets.size()) {
      return Error(StrCat("cannot unpack a ", value.TypeName(), " into ", targets.size(), " names"));
    }
    for (size_t k = 0; k < targets.size(); ++k) Assign(targets[k], (*value.list)[k]);
    return absl::OkStatus();
  }

  absl::Status Emit(const Text& text) {
    RETURN_IF_ERROR(budget_.Bytes(text.s.size()));
    if (out_->s.size() + text.s.size() > limits_.max_output_bytes) {
      return Error(StrCat("the rendered text is over the limit of ", limits_.max_output_bytes, " bytes"));
    }
    out_->Append(text);
    return absl::OkStatus();
  }

  absl::Status Exec(const Body& body, Flow* flow) {
    for (const NodePtr& node : body) {
      absl::Status s = ExecNode(*node, flow);
      if (!s.ok()) {
        if (error_line_ == 0) error_line_ = node->line;
        return s;
      }
      if (*flow != Flow::kNormal) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status ExecNode(const Node& node, Flow* flow) {
    RETURN_IF_ERROR(budget_.Step());
    switch (node.kind) {
      case Node::Kind::kText:
        return Emit(Text{node.text, {}});
      case Node::Kind::kOutput: {
        Value v;
        ASSIGN_OR_RETURN(v, Eval(*node.expr));
        return Emit(ToText(v));
      }
      case Node::Kind::kIf:
        for (const auto& [cond, branch] : node.branches) {
          bool take = cond == nullptr;
          if (!take) {
            Value v;
            ASSIGN_OR_RETURN(v, Eval(*cond));
            take = v.Truthy();
          }
          if (take) return Exec(branch, flow);
        }
        return absl::OkStatus();
      case Node::Kind::kFor:
        return ExecFor(node);
      case Node::Kind::kSet: {
        Value v;
        ASSIGN_OR_RETURN(v, Eval(*node.expr));
        if (node.attr.empty()) return AssignTargets(node.targets, std::move(v));
        Value target = Lookup(node.targets[0]);
        if (target.type != Value::Type::kNamespace) {
          return Error(StrCat("cannot set an attribute of '", node.targets[0], "', a ", target.TypeName(),
                              " (only of a namespace)"));
        }
        RETURN_IF_ERROR(budget_.Depth(v.depth + 1));
        for (auto& [key, value] : *target.ns) {
          if (key == node.attr) {
            value = std::move(v);
            return absl::OkStatus();
          }
        }
        RETURN_IF_ERROR(budget_.Items(target.ns->size() + 1));
        target.ns->emplace_back(node.attr, std::move(v));
        return absl::OkStatus();
      }
      case Node::Kind::kSetBlock: {
        RenderResult inner;
        Text* saved = out_;
        out_ = &inner.text;
        Flow inner_flow = Flow::kNormal;
        absl::Status s = Exec(node.body, &inner_flow);
        out_ = saved;
        RETURN_IF_ERROR(s);
        Assign(node.targets[0], Value::String(std::move(inner.text)));
        return absl::OkStatus();
      }
      case Node::Kind::kBreak:
        *flow = Flow::kBreak;
        return absl::OkStatus();
      case Node::Kind::kContinue:
        *flow = Flow::kContinue;
        return absl::OkStatus();
      case Node::Kind::kBlock:
        return Exec(node.body, flow);
    }
    return absl::OkStatus();
  }

  absl::Status ExecFor(const Node& node) {
    Value iterable;
    ASSIGN_OR_RETURN(iterable, Eval(*node.expr));
    List items;
    ASSIGN_OR_RETURN(items, Iterate(iterable, "for", &budget_));
    RETURN_IF_ERROR(budget_.Step(static_cast<int64_t>(items.size())));
    if (node.filter != nullptr) {
      List kept;
      for (Value& item : items) {
        frames_.emplace_back();
        absl::Status s = AssignTargets(node.targets, item);
        absl::StatusOr<Value> keep = s.ok() ? Eval(*node.filter) : absl::StatusOr<Value>(s);
        frames_.pop_back();
        if (!keep.ok()) return keep.status();
        if (keep->Truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      Dict loop = {{"index", Value::Int(k + 1)},       {"index0", Value::Int(k)},
                   {"revindex", Value::Int(n - k)},    {"revindex0", Value::Int(n - k - 1)},
                   {"first", Value::Bool(k == 0)},     {"last", Value::Bool(k == n - 1)},
                   {"length", Value::Int(n)}};
      if (k > 0) loop.emplace_back("previtem", items[static_cast<size_t>(k - 1)]);
      if (k + 1 < n) loop.emplace_back("nextitem", items[static_cast<size_t>(k + 1)]);
      frames_.emplace_back();
      frames_.back().emplace_back("loop", Value::MakeDict(std::move(loop)));
      absl::Status s = AssignTargets(node.targets, items[static_cast<size_t>(k)]);
      Flow flow = Flow::kNormal;
      if (s.ok()) s = Exec(node.body, &flow);
      frames_.pop_back();
      RETURN_IF_ERROR(s);
      if (flow == Flow::kBreak) break;
    }
    if (n == 0) {
      Flow flow = Flow::kNormal;
      return Exec(node.else_body, &flow);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Value> Eval(const Expr& e) {
    absl::StatusOr<Value> v = EvalInner(e);
    if (!v.ok() && error_line_ == 0 && !result_->raised) error_line_ = e.line;
    return v;
  }

  absl::StatusOr<Value> EvalInner(const Expr& e) {
    RETURN_IF_ERROR(budget_.Step());
    using K = Expr::Kind;
    switch (e.kind) {
      case K::kLiteral:
        return e.literal;
      case K::kName:
        return Lookup(e.name);
      case K::kAttr: {
        Value base;
        ASSIGN_OR_RETURN(base, Eval(*e.operands[0]));
        if (base.is_undefined()) return Undefined(base);
        const Value* found = base.Find(e.name);
        return found != nullptr ? *found : Value::Undefined(e.name);
      }
      case K::kIndex: {
        Value base, key;
        ASSIGN_OR_RETURN(base, Eval(*e.operands[0]));
        ASSIGN_OR_RETURN(key, Eval(*e.operands[1]));
        return Index(base, key);
      }
      case K::kSlice:
        return EvalSlice(e);
      case K::kList: {
        List items;
        for (const ExprPtr& op : e.operands) {
          Value v;
          ASSIGN_OR_RETURN(v, Eval(*op));
          items.push_back(std::move(v));
        }
        Value list = Value::MakeList(std::move(items));
        RETURN_IF_ERROR(budget_.Depth(list.depth));
        return list;
      }
      case K::kDict: {
        Dict items;
        for (size_t k = 0; k < e.keys.size(); ++k) {
          Value v;
          ASSIGN_OR_RETURN(v, Eval(*e.operands[k]));
          auto it = std::find_if(items.begin(), items.end(), [&](const auto& kv) { return kv.first == e.keys[k]; });
          if (it != items.end()) {
            it->second = std::move(v);
          } else {
            items.emplace_back(e.keys[k], std::move(v));
          }
        }
        Value dict = Value::MakeDict(std::move(items));
        RETURN_IF_ERROR(budget_.Depth(dict.depth));
        return dict;
      }
      case K::kNot: {
        Value v;
        ASSIGN_OR_RETURN(v, Eval(*e.operands[0]));
        return Value::Bool(!v.Truthy());
      }
      case K::kNeg: {
        Value v;
        ASSIGN_OR_RETURN(v, Eval(*e.operands[0]));
        if (!IsNumber(v)) return Error(StrCat("bad operand type for unary -: '", v.TypeName(), "'"));
        if (Number(v) == INT64_MIN) return Error("integer overflow");
        return Value::Int(-Number(v));
      }
      case K::kBinary: {
        Value a, b;
        ASSIGN_OR_RETURN(a, Eval(*e.operands[0]));
        ASSIGN_OR_RETURN(b, Eval(*e.operands[1]));
        return BinaryOp(e.ops[0], a, b, &budget_);
      }
      case K::kCompare: {
        Value left;
        ASSIGN_OR_RETURN(left, Eval(*e.operands[0]));
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value right;
          ASSIGN_OR_RETURN(right, Eval(*e.operands[k + 1]));
          bool holds = false;
          ASSIGN_OR_RETURN(holds, CompareOp(e.ops[k], left, right, &budget_));
          if (!holds) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case K::kAnd:
      case K::kOr: {
        Value left;
        ASSIGN_OR_RETURN(left, Eval(*e.operands[0]));
        if (left.Truthy() == (e.kind == K::kOr)) return left;
        return Eval(*e.operands[1]);
      }
      case K::kTernary: {
        Value cond;
        ASSIGN_OR_RETURN(cond, Eval(*e.operands[0]));
        if (cond.Truthy()) return Eval(*e.operands[1]);
        if (e.operands[2] == nullptr) return Value::Undefined();
        return Eval(*e.operands[2]);
      }
      case K::kFilter:
      case K::kMethod:
      case K::kCall:
      case K::kTest:
        return EvalCall(e);
    }
    return Value::Undefined();
  }

  absl::StatusOr<Value> EvalCall(const Expr& e) {
    using K = Expr::Kind;
    const size_t first_arg = e.kind == K::kCall ? 0 : 1;
    Value self;
    if (first_arg == 1) {
      ASSIGN_OR_RETURN(self, Eval(*e.operands[0]));
    }
    List args;
    std::vector<std::pair<std::string, Value>> kwargs;
    for (size_t k = first_arg; k < e.operands.size(); ++k) {
      Value v;
      ASSIGN_OR_RETURN(v, Eval(*e.operands[k]));
      if (k - first_arg < e.positional) {
        args.push_back(std::move(v));
      } else {
        kwargs.emplace_back(e.keys[k - first_arg - e.positional], std::move(v));
      }
    }
    RETURN_IF_ERROR(Charge(self));
    switch (e.kind) {
      case K::kFilter:
        return ApplyFilter(e.filter, self, args, kwargs, &budget_);
      case K::kTest: {
        bool holds = false;
        ASSIGN_OR_RETURN(holds, ApplyTest(e.test, self));
        return Value::Bool(holds != e.negated);
      }
      case K::kMethod:
        if (self.is_undefined()) return Undefined(self);
        return CallMethod(e.method, self, args, &budget_);
      default:
        break;
    }
    switch (e.function) {
      case Function::kRaiseException:
        result_->raised = true;
        return Error(ToText(args[0]).s);
      case Function::kNamespace: {
        for (const auto& [key, value] : kwargs) RETURN_IF_ERROR(budget_.Depth(value.depth + 1));
        return Value::MakeNamespace(Dict(kwargs.begin(), kwargs.end()));
      }
      case Function::kRange: {
        for (const Value& a : args) {
          if (!IsNumber(a)) return Error(StrCat("range() takes integers, got '", a.TypeName(), "'"));
        }
        int64_t start = 0, stop = Number(args[0]), step = 1;
        if (args.size() >= 2) {
          start = Number(args[0]);
          stop = Number(args[1]);
        }
        if (args.size() == 3) step = Number(args[2]);
        if (step == 0) return Error("range() step must not be zero");
        List items;
        for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
          RETURN_IF_ERROR(budget_.Items(items.size() + 1));
          RETURN_IF_ERROR(budget_.Step());
          items.push_back(Value::Int(i));
          if (__builtin_add_overflow(i, step, &i)) break;
        }
        return Value::MakeList(std::move(items));
      }
    }
    return Value::Undefined();
  }

  absl::Status Charge(const Value& v) { return budget_.Charge(v); }

  absl::StatusOr<Value> Index(const Value& base, const Value& key) {
    if (base.is_undefined()) return Undefined(base);
    if (base.is_string()) RETURN_IF_ERROR(Charge(base));
    if (key.type == Value::Type::kString) {
      const Value* found = base.Find(key.str->s);
      return found != nullptr ? *found : Value::Undefined(key.str->s);
    }
    if (!IsNumber(key)) return Value::Undefined();
    int64_t i = Number(key);
    if (base.type == Value::Type::kList) {
      const int64_t n = static_cast<int64_t>(base.list->size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined();
      return (*base.list)[static_cast<size_t>(i)];
    }
    if (base.type == Value::Type::kString) {
      const std::vector<size_t> cps = CodePointOffsets(base.str->s);
      const int64_t n = static_cast<int64_t>(cps.size()) - 1;
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined();
      return Value::String(base.str->Sub(cps[static_cast<size_t>(i)], cps[static_cast<size_t>(i) + 1]));
    }
    return Value::Undefined();
  }

  absl::StatusOr<Value> EvalSlice(const Expr& e) {
    Value base, bounds[3];
    ASSIGN_OR_RETURN(base, Eval(*e.operands[0]));
    for (int k = 0; k < 3; ++k) {
      if (e.operands[static_cast<size_t>(k) + 1] != nullptr) {
        ASSIGN_OR_RETURN(bounds[k], Eval(*e.operands[static_cast<size_t>(k) + 1]));
      }
    }
    if (base.is_undefined()) return Undefined(base);
    RETURN_IF_ERROR(Charge(base));
    const bool is_list = base.type == Value::Type::kList;
    if (!is_list && !base.is_string()) return Error(StrCat("a ", base.TypeName(), " cannot be sliced"));
    std::vector<size_t> cps;
    if (!is_list) cps = CodePointOffsets(base.str->s);
    const int64_t n = is_list ? static_cast<int64_t>(base.list->size()) : static_cast<int64_t>(cps.size()) - 1;
    int64_t b = 0, end = 0, step = 1;
    auto arg = [&](int k) { return e.operands[static_cast<size_t>(k) + 1] != nullptr ? &bounds[k] : nullptr; };
    RETURN_IF_ERROR(SliceIndices(arg(0), arg(1), arg(2), n, &b, &end, &step));
    if (!is_list && step == 1) {
      if (end <= b) return Value::String(std::string());
      return Value::String(base.str->Sub(cps[static_cast<size_t>(b)], cps[static_cast<size_t>(end)]));
    }
    List items;
    Text text;
    for (int64_t i = b; step > 0 ? i < end : i > end; i += step) {
      if (is_list) {
        items.push_back((*base.list)[static_cast<size_t>(i)]);
      } else {
        text.s.append(base.str->s, cps[static_cast<size_t>(i)], cps[static_cast<size_t>(i) + 1] - cps[static_cast<size_t>(i)]);
      }
    }
    if (is_list) return Value::MakeList(std::move(items));
    text.TaintAllIf(base.tainted());
    return Value::String(std::move(text));
  }

  Budget budget_;
  const RenderLimits& limits_;
  RenderResult* result_;
  Text* out_;
  std::vector<std::vector<std::pair<std::string, Value>>> frames_;
  int error_line_ = 0;
};

}  // namespace

absl::Status Render(const Body& body, std::vector<std::pair<std::string, Value>> globals, const RenderLimits& limits,
                    RenderResult* out) {
  *out = RenderResult();
  return Evaluator(std::move(globals), limits, out).Run(body);
}

}  // namespace ortserve::generation::jinja
