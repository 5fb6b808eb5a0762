// SPDX-License-Identifier: Apache-2.0
// The filters, tests and methods of the chat-template subset, with the
// semantics of Jinja 3.1's filters and Python's str and dict methods (case
// mapping is Unicode's simple one, from utf8proc: "ß".upper() stays "ß"
// where Python gives "SS").
#include <algorithm>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "generation/jinja_eval.h"
#include "utf8proc.h"

namespace ortserve::generation::jinja {

namespace {


absl::Status Error(std::string_view message) { return absl::InvalidArgumentError(std::string(message)); }

char32_t At(std::string_view s, size_t i, int* len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  return DecodeUtf8(reinterpret_cast<const unsigned char*>(s.data() + i), len);
}

void Put(char32_t cp, std::string* out) {
  char buf[4];
  out->append(buf, static_cast<size_t>(EncodeUtf8(cp, buf)));
}

bool IsCased(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}
char32_t Upper(char32_t cp) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))); }
char32_t Lower(char32_t cp) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))); }
char32_t TitleCase(char32_t cp) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))); }

enum class Case { kUpper, kLower, kCapitalize, kTitleMethod, kTitleFilter };

Text MapCase(const Text& in, Case mode) {
  Text out;
  out.s.reserve(in.s.size());
  bool prev_cased = false, word_start = true;
  for (size_t i = 0; i < in.s.size();) {
    int len = 1;
    const char32_t cp = At(in.s, i, &len);
    char32_t mapped = cp;
    switch (mode) {
      case Case::kUpper: mapped = Upper(cp); break;
      case Case::kLower: mapped = Lower(cp); break;
      case Case::kCapitalize: mapped = i == 0 ? TitleCase(cp) : Lower(cp); break;
      case Case::kTitleMethod:
        // str.title(): title case after an uncased character, lower after a cased one.
        mapped = prev_cased ? Lower(cp) : TitleCase(cp);
        prev_cased = IsCased(cp);
        break;
      case Case::kTitleFilter: {
        // Jinja's title filter: words begin after runs of whitespace, '-', '(', '{', '[', '<'.
        const bool sep = IsPythonSpace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        mapped = word_start ? Upper(cp) : Lower(cp);
        word_start = sep;
        if (sep) mapped = cp;
        break;
      }
    }
    Put(mapped, &out.s);
    i += static_cast<size_t>(len);
  }
  out.TaintAllIf(!in.tainted.empty());
  return out;
}

bool InSet(char32_t cp, const std::string* chars) {
  if (chars == nullptr) return IsPythonSpace(cp);
  for (size_t i = 0; i < chars->size();) {
    int len = 1;
    if (At(*chars, i, &len) == cp) return true;
    i += static_cast<size_t>(len);
  }
  return false;
}

absl::StatusOr<std::string> StringArg(std::span<const Value> args, size_t k, std::string_view what) {
  if (k >= args.size()) return std::string();
  if (!args[k].is_string()) return Error(StrCat(what, " needs a string, got '", args[k].TypeName(), "'"));
  return args[k].str->s;
}

// Python's str.replace(old, new, count): count < 0 replaces all.
absl::StatusOr<Value> Replace(const Text& in, const std::string& old, const std::string& repl, int64_t count,
                              Budget* budget) {
  Text out;
  size_t n = 0;
  if (old.empty()) {
    const std::vector<size_t> cps = CodePointOffsets(in.s);
    for (size_t k = 0; k + 1 < cps.size(); ++k) {
      if (count < 0 || static_cast<int64_t>(n) < count) {
        out.s += repl;
        ++n;
      }
      out.s.append(in.s, cps[k], cps[k + 1] - cps[k]);
      if (out.s.size() > budget->limits().max_output_bytes) return budget->Bytes(out.s.size());
    }
    if (count < 0 || static_cast<int64_t>(n) < count) out.s += repl;
  } else {
    size_t pos = 0;
    while (count < 0 || static_cast<int64_t>(n) < count) {
      const size_t hit = in.s.find(old, pos);
      if (hit == std::string::npos) break;
      out.s.append(in.s, pos, hit - pos);
      out.s += repl;
      pos = hit + old.size();
      ++n;
      if (out.s.size() > budget->limits().max_output_bytes) return budget->Bytes(out.s.size());
    }
    out.s.append(in.s, pos);
  }
  RETURN_IF_ERROR(budget->Bytes(out.s.size()));
  out.TaintAllIf(!in.tainted.empty());
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Split(const Text& in, const Value* sep, int64_t maxsplit) {
  List parts;
  const std::string& s = in.s;
  if (sep == nullptr || sep->type == Value::Type::kNone) {
    size_t i = 0;
    while (true) {
      while (i < s.size()) {  // skip whitespace
        int len = 1;
        if (!IsPythonSpace(At(s, i, &len))) break;
        i += static_cast<size_t>(len);
      }
      if (i >= s.size()) break;
      size_t j = i;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
        parts.push_back(Value::String(in.Sub(i, s.size())));  // the rest, as it is
        break;
      }
      while (j < s.size()) {
        int len = 1;
        if (IsPythonSpace(At(s, j, &len))) break;
        j += static_cast<size_t>(len);
      }
      parts.push_back(Value::String(in.Sub(i, j)));
      i = j;
    }
    return Value::MakeList(std::move(parts));
  }
  if (!sep->is_string()) return Error(StrCat("split() needs a string separator, got '", sep->TypeName(), "'"));
  const std::string& d = sep->str->s;
  if (d.empty()) return Error("split(): empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    const size_t hit = s.find(d, pos);
    if (hit == std::string::npos) break;
    parts.push_back(Value::String(in.Sub(pos, hit)));
    pos = hit + d.size();
  }
  parts.push_back(Value::String(in.Sub(pos, s.size())));
  return Value::MakeList(std::move(parts));
}

List Pairs(const Dict& d) {
  List out;
  for (const auto& [key, value] : d) out.push_back(Value::MakeList({Value::String(key), value}));
  return out;
}

int64_t ParseInt(std::string_view s) {
  Text t{std::string(s), {}};
  const std::string trimmed = Strip(t, nullptr, 0).s;
  size_t i = 0;
  bool neg = false;
  if (i < trimmed.size() && (trimmed[i] == '+' || trimmed[i] == '-')) neg = trimmed[i++] == '-';
  if (i == trimmed.size()) return 0;
  int64_t v = 0;
  for (; i < trimmed.size(); ++i) {
    if (trimmed[i] == '_') continue;
    if (trimmed[i] < '0' || trimmed[i] > '9') return 0;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, trimmed[i] - '0', &v)) return 0;
  }
  return neg ? -v : v;
}

}  // namespace

Text Strip(const Text& text, const std::string* chars, int which) {
  const std::string& s = text.s;
  size_t b = 0, e = s.size();
  if (which <= 0) {
    while (b < e) {
      int len = 1;
      if (!InSet(At(s, b, &len), chars)) break;
      b += static_cast<size_t>(len);
    }
  }
  if (which >= 0) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      int len = 1;
      if (!InSet(At(s, start, &len), chars)) break;
      e = start;
    }
  }
  return text.Sub(b, e);
}

absl::StatusOr<List> Iterate(const Value& v, std::string_view what, Budget* budget) {
  switch (v.type) {
    case Value::Type::kUndefined:
      return List{};
    case Value::Type::kList:
      return *v.list;
    case Value::Type::kDict: {
      List keys;
      for (const auto& [key, value] : *v.dict) keys.push_back(Value::String(key));
      return keys;
    }
    case Value::Type::kString: {
      RETURN_IF_ERROR(budget->Charge(v));
      const std::vector<size_t> cps = CodePointOffsets(v.str->s);
      RETURN_IF_ERROR(budget->Items(cps.size() - 1));
      List chars;
      for (size_t k = 0; k + 1 < cps.size(); ++k) chars.push_back(Value::String(v.str->Sub(cps[k], cps[k + 1])));
      return chars;
    }
    default:
      return Error(StrCat(what, ": a ", v.TypeName(), " is not iterable"));
  }
}

absl::StatusOr<Value> ApplyFilter(Filter filter, const Value& v, std::span<const Value> args,
                                  std::span<const std::pair<std::string, Value>> kwargs, Budget* budget) {
  switch (filter) {
    case Filter::kTrim: {
      std::string chars;
      if (!args.empty()) {
        auto c = StringArg(args, 0, "trim");
        if (!c.ok()) return c.status();
        chars = *c;
      }
      return Value::String(Strip(ToText(v), args.empty() ? nullptr : &chars, 0));
    }
    case Filter::kLength:
      switch (v.type) {
        case Value::Type::kUndefined: return Value::Int(0);
        case Value::Type::kString: return Value::Int(static_cast<int64_t>(CodePointOffsets(v.str->s).size()) - 1);
        case Value::Type::kList: return Value::Int(static_cast<int64_t>(v.list->size()));
        case Value::Type::kDict: return Value::Int(static_cast<int64_t>(v.dict->size()));
        default: return Error(StrCat("length: a ", v.TypeName(), " has no length"));
      }
    case Filter::kUpper: return Value::String(MapCase(ToText(v), Case::kUpper));
    case Filter::kLower: return Value::String(MapCase(ToText(v), Case::kLower));
    case Filter::kCapitalize: return Value::String(MapCase(ToText(v), Case::kCapitalize));
    case Filter::kTitle: return Value::String(MapCase(ToText(v), Case::kTitleFilter));
    case Filter::kToJson: {
      int indent = -1;
      bool sort_keys = false;
      for (const auto& [key, value] : kwargs) {
        if (key == "indent" && value.type == Value::Type::kInt) {
          if (value.i < 0 || value.i > 64) return Error("tojson: indent must be in [0, 64]");
          indent = static_cast<int>(value.i);
        } else if (key == "indent" && value.type != Value::Type::kNone) {
          return Error("tojson: indent must be an integer");
        } else if (key == "sort_keys") {
          sort_keys = value.Truthy();
        }
      }
      Text out;
      if (auto s = AppendJson(v, indent, sort_keys, &out.s); !s.ok()) return s;
      RETURN_IF_ERROR(budget->Bytes(out.s.size()));
      out.TaintAllIf(v.tainted());
      return Value::String(std::move(out));
    }
    case Filter::kDefault: {
      const bool boolean = args.size() > 1 && args[1].Truthy();
      if (v.is_undefined() || (boolean && !v.Truthy())) return args.empty() ? Value::String(std::string()) : args[0];
      return v;
    }
    case Filter::kFirst:
    case Filter::kLast: {
      if (v.is_string()) {
        const std::vector<size_t> cps = CodePointOffsets(v.str->s);
        if (cps.size() < 2) return Value::Undefined();
        const size_t k = filter == Filter::kFirst ? 0 : cps.size() - 2;
        return Value::String(v.str->Sub(cps[k], cps[k + 1]));
      }
      auto items = Iterate(v, filter == Filter::kFirst ? "first" : "last", budget);
      if (!items.ok()) return items.status();
      if (items->empty()) return Value::Undefined();
      return filter == Filter::kFirst ? items->front() : items->back();
    }
    case Filter::kJoin: {
      auto items = Iterate(v, "join", budget);
      if (!items.ok()) return items.status();
      const Text sep = args.empty() ? Text{} : ToText(args[0]);
      Text out;
      for (size_t k = 0; k < items->size(); ++k) {
        if (k > 0) out.Append(sep);
        out.Append(ToText((*items)[k]));
        if (out.s.size() > budget->limits().max_output_bytes) return budget->Bytes(out.s.size());
      }
      RETURN_IF_ERROR(budget->Bytes(out.s.size()));
      return Value::String(std::move(out));
    }
    case Filter::kReplace: {
      int64_t count = -1;
      if (args.size() > 2) {
        if (args[2].type != Value::Type::kInt) return Error("replace: count must be an integer");
        count = args[2].i;
      }
      return Replace(ToText(v), ToText(args[0]).s, ToText(args[1]).s, count, budget);
    }
    case Filter::kString:
      return Value::String(ToText(v));
    case Filter::kInt:
      if (v.type == Value::Type::kInt) return v;
      if (v.type == Value::Type::kBool) return Value::Int(v.b);
      if (v.is_string()) return Value::Int(ParseInt(v.str->s));
      return Value::Int(0);
    case Filter::kList: {
      auto items = Iterate(v, "list", budget);
      if (!items.ok()) return items.status();
      return Value::MakeList(*std::move(items));
    }
    case Filter::kReverse: {
      if (v.is_string()) {
        const std::vector<size_t> cps = CodePointOffsets(v.str->s);
        Text out;
        for (size_t k = cps.size() - 1; k > 0; --k) out.s.append(v.str->s, cps[k - 1], cps[k] - cps[k - 1]);
        out.TaintAllIf(v.tainted());
        return Value::String(std::move(out));
      }
      auto items = Iterate(v, "reverse", budget);
      if (!items.ok()) return items.status();
      std::reverse(items->begin(), items->end());
      return Value::MakeList(*std::move(items));
    }
    case Filter::kItems:
      if (v.is_undefined()) return Value::MakeList({});
      if (v.type != Value::Type::kDict) return Error(StrCat("items: a ", v.TypeName(), " is not a mapping"));
      return Value::MakeList(Pairs(*v.dict));
  }
  return Value::Undefined();
}

absl::StatusOr<Value> CallMethod(Method method, const Value& self, std::span<const Value> args, Budget* budget) {
  const bool dict_method = method == Method::kItems || method == Method::kKeys || method == Method::kValues ||
                           method == Method::kGet;
  if (dict_method) {
    if (self.type != Value::Type::kDict && self.type != Value::Type::kNamespace) {
      return Error(StrCat("a ", self.TypeName(), " has no method for dicts"));
    }
    const Dict& d = self.type == Value::Type::kDict ? *self.dict : *self.ns;
    switch (method) {
      case Method::kItems: return Value::MakeList(Pairs(d));
      case Method::kKeys: {
        List keys;
        for (const auto& [key, value] : d) keys.push_back(Value::String(key));
        return Value::MakeList(std::move(keys));
      }
      case Method::kValues: {
        List values;
        for (const auto& [key, value] : d) values.push_back(value);
        return Value::MakeList(std::move(values));
      }
      default: {
        const Value* found = args[0].is_string() ? self.Find(args[0].str->s) : nullptr;
        if (found != nullptr) return *found;
        return args.size() > 1 ? args[1] : Value::None();
      }
    }
  }
  if (!self.is_string()) return Error(StrCat("a ", self.TypeName(), " has no string methods"));
  const Text& t = *self.str;
  switch (method) {
    case Method::kStrip:
    case Method::kLstrip:
    case Method::kRstrip: {
      std::string chars;
      const bool given = !args.empty() && args[0].type != Value::Type::kNone;
      if (given) {
        auto c = StringArg(args, 0, "strip()");
        if (!c.ok()) return c.status();
        chars = *c;
      }
      const int which = method == Method::kStrip ? 0 : method == Method::kLstrip ? -1 : 1;
      return Value::String(Strip(t, given ? &chars : nullptr, which));
    }
    case Method::kSplit: {
      int64_t maxsplit = -1;
      if (args.size() > 1) {
        if (args[1].type != Value::Type::kInt) return Error("split(): maxsplit must be an integer");
        maxsplit = args[1].i;
      }
      auto parts = Split(t, args.empty() ? nullptr : &args[0], maxsplit);
      if (parts.ok()) RETURN_IF_ERROR(budget->Items(parts->list->size()));
      return parts;
    }
    case Method::kStartswith:
    case Method::kEndswith: {
      List options;
      if (args[0].is_string()) {
        options.push_back(args[0]);
      } else if (args[0].type == Value::Type::kList) {
        options = *args[0].list;
      }
      for (const Value& o : options) {
        if (!o.is_string()) return Error("startswith()/endswith() need strings");
        if (method == Method::kStartswith ? t.s.starts_with(o.str->s) : t.s.ends_with(o.str->s)) {
          return Value::Bool(true);
        }
      }
      if (options.empty()) return Error("startswith()/endswith() need a string");
      return Value::Bool(false);
    }
    case Method::kUpper: return Value::String(MapCase(t, Case::kUpper));
    case Method::kLower: return Value::String(MapCase(t, Case::kLower));
    case Method::kTitle: return Value::String(MapCase(t, Case::kTitleMethod));
    case Method::kCapitalize: return Value::String(MapCase(t, Case::kCapitalize));
    case Method::kReplace: {
      if (!args[0].is_string() || !args[1].is_string()) return Error("replace() needs strings");
      int64_t count = -1;
      if (args.size() > 2) {
        if (args[2].type != Value::Type::kInt) return Error("replace(): count must be an integer");
        count = args[2].i;
      }
      return Replace(t, args[0].str->s, args[1].str->s, count, budget);
    }
    default:
      break;
  }
  return Value::Undefined();
}

absl::StatusOr<bool> ApplyTest(Test test, const Value& v) {
  using T = Value::Type;
  switch (test) {
    case Test::kDefined: return !v.is_undefined();
    case Test::kUndefined: return v.is_undefined();
    case Test::kNone: return v.type == T::kNone;
    case Test::kString: return v.is_string();
    case Test::kNumber: return v.type == T::kInt || v.type == T::kBool;
    case Test::kInteger: return v.type == T::kInt;
    case Test::kBoolean: return v.type == T::kBool;
    case Test::kMapping: return v.type == T::kDict;
    case Test::kSequence: return v.is_string() || v.type == T::kList || v.type == T::kDict;
    case Test::kIterable: return v.is_string() || v.type == T::kList || v.type == T::kDict || v.is_undefined();
    case Test::kTrue: return v.type == T::kBool && v.b;
    case Test::kFalse: return v.type == T::kBool && !v.b;
    case Test::kEven:
    case Test::kOdd: {
      if (v.type != T::kInt && v.type != T::kBool) return Error(StrCat("even/odd: a ", v.TypeName(), " is not a number"));
      const int64_t n = v.type == T::kInt ? v.i : v.b;
      return (n % 2 == 0) == (test == Test::kEven);
    }
  }
  return false;
}

}  // namespace ortserve::generation::jinja
