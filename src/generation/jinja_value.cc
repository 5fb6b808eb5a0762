// SPDX-License-Identifier: Apache-2.0
#include "generation/jinja_value.h"

#include <algorithm>

#include "core/strings.h"
#include "core/utf8.h"
#include "utf8proc.h"

namespace ortserve::generation::jinja {

void Text::Append(const Text& other) {
  const size_t base = s.size();
  s.append(other.s);
  for (const Range& r : other.tainted) {
    if (!tainted.empty() && tainted.back().end == base + r.begin) {
      tainted.back().end = base + r.end;  // adjacent: one range
    } else {
      tainted.push_back({base + r.begin, base + r.end});
    }
  }
}

Text Text::Sub(size_t begin, size_t end) const {
  Text out{s.substr(begin, end - begin), {}};
  for (const Range& r : tainted) {
    const size_t b = std::max(r.begin, begin), e = std::min(r.end, end);
    if (b < e) out.tainted.push_back({b - begin, e - begin});
  }
  return out;
}

void Text::TaintAllIf(bool any) {
  tainted.clear();
  if (any && !s.empty()) tainted.push_back({0, s.size()});
}

Value Value::String(Text text) {
  Value v = Of(Type::kString);
  v.str = std::make_shared<const Text>(std::move(text));
  return v;
}

Value Value::MakeList(List items) {
  Value v = Of(Type::kList);
  for (const Value& item : items) v.depth = std::max(v.depth, item.depth + 1);
  if (items.empty()) v.depth = 1;
  v.list = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::MakeDict(Dict items) {
  Value v = Of(Type::kDict);
  v.depth = 1;
  for (const auto& [key, item] : items) v.depth = std::max(v.depth, item.depth + 1);
  v.dict = std::make_shared<const Dict>(std::move(items));
  return v;
}

Value Value::MakeNamespace(Dict items) {
  Value v = Of(Type::kNamespace);
  v.ns = std::make_shared<Dict>(std::move(items));
  return v;
}

bool Value::tainted() const {
  switch (type) {
    case Type::kString:
      return !str->tainted.empty();
    case Type::kList:
      return std::any_of(list->begin(), list->end(), [](const Value& v) { return v.tainted(); });
    case Type::kDict:
      return std::any_of(dict->begin(), dict->end(), [](const auto& kv) { return kv.second.tainted(); });
    case Type::kNamespace:
      return std::any_of(ns->begin(), ns->end(), [](const auto& kv) { return kv.second.tainted(); });
    default:
      return false;
  }
}

bool Value::Truthy() const {
  switch (type) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
      return b;
    case Type::kInt:
      return i != 0;
    case Type::kString:
      return !str->s.empty();
    case Type::kList:
      return !list->empty();
    case Type::kDict:
      return !dict->empty();
    case Type::kNamespace:
      return true;
  }
  return false;
}

const Value* Value::Find(std::string_view key) const {
  const Dict* d = type == Type::kDict ? dict.get() : type == Type::kNamespace ? ns.get() : nullptr;
  if (d == nullptr) return nullptr;
  for (const auto& [k, v] : *d) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string_view Value::TypeName() const {
  switch (type) {
    case Type::kUndefined: return "undefined";
    case Type::kNone: return "none";
    case Type::kBool: return "boolean";
    case Type::kInt: return "integer";
    case Type::kString: return "string";
    case Type::kList: return "list";
    case Type::kDict: return "dict";
    case Type::kNamespace: return "namespace";
  }
  return "value";
}

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    out.push_back(i);
    const auto c = static_cast<unsigned char>(s[i]);
    i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  }
  out.push_back(s.size());
  return out;
}

bool IsPythonSpace(char32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

// Python's str.isprintable for one non-ASCII code point.
bool IsPrintable(char32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

void AppendHex(uint32_t value, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int k = digits - 1; k >= 0; --k) out->push_back(kHex[(value >> (4 * k)) & 0xF]);
}

void AppendReprValue(const Value& v, std::string* out);

void AppendReprDict(const Dict& d, std::string* out) {
  out->push_back('{');
  for (size_t k = 0; k < d.size(); ++k) {
    if (k > 0) out->append(", ");
    AppendRepr(d[k].first, out);
    out->append(": ");
    AppendReprValue(d[k].second, out);
  }
  out->push_back('}');
}

void AppendReprValue(const Value& v, std::string* out) {
  switch (v.type) {
    case Value::Type::kString:
      AppendRepr(v.str->s, out);
      return;
    case Value::Type::kUndefined:
      out->append("Undefined");
      return;
    case Value::Type::kList:
      out->push_back('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k > 0) out->append(", ");
        AppendReprValue((*v.list)[k], out);
      }
      out->push_back(']');
      return;
    case Value::Type::kDict:
      AppendReprDict(*v.dict, out);
      return;
    case Value::Type::kNamespace:
      out->append("<Namespace ");
      AppendReprDict(*v.ns, out);
      out->push_back('>');
      return;
    default:
      out->append(ToText(v).s);
  }
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out->append("\\u");
          AppendHex(static_cast<unsigned char>(c), 4, out);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void NewLine(int indent, int level, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
}

absl::Status AppendJsonAt(const Value& v, int indent, bool sort_keys, int level, std::string* out) {
  switch (v.type) {
    case Value::Type::kUndefined:
      return absl::InvalidArgumentError("tojson: an undefined value is not JSON serializable");
    case Value::Type::kNamespace:
      return absl::InvalidArgumentError("tojson: a namespace is not JSON serializable");
    case Value::Type::kNone:
      out->append("null");
      return absl::OkStatus();
    case Value::Type::kBool:
      out->append(v.b ? "true" : "false");
      return absl::OkStatus();
    case Value::Type::kInt:
      out->append(StrCat(v.i));
      return absl::OkStatus();
    case Value::Type::kString:
      AppendJsonString(v.str->s, out);
      return absl::OkStatus();
    case Value::Type::kList: {
      if (v.list->empty()) {
        out->append("[]");
        return absl::OkStatus();
      }
      out->push_back('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k > 0) out->append(indent >= 0 ? "," : ", ");
        if (indent >= 0) NewLine(indent, level + 1, out);
        if (auto s = AppendJsonAt((*v.list)[k], indent, sort_keys, level + 1, out); !s.ok()) return s;
      }
      if (indent >= 0) NewLine(indent, level, out);
      out->push_back(']');
      return absl::OkStatus();
    }
    case Value::Type::kDict: {
      if (v.dict->empty()) {
        out->append("{}");
        return absl::OkStatus();
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out->push_back('{');
      for (size_t k = 0; k < items.size(); ++k) {
        if (k > 0) out->append(indent >= 0 ? "," : ", ");
        if (indent >= 0) NewLine(indent, level + 1, out);
        AppendJsonString(items[k]->first, out);
        out->append(": ");
        if (auto s = AppendJsonAt(items[k]->second, indent, sort_keys, level + 1, out); !s.ok()) return s;
      }
      if (indent >= 0) NewLine(indent, level, out);
      out->push_back('}');
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AppendRepr(std::string_view s, std::string* out) {
  const char quote = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
  out->push_back(quote);
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      if (c == static_cast<unsigned char>(quote) || c == '\\') {
        out->push_back('\\');
        out->push_back(static_cast<char>(c));
      } else if (c == '\t') {
        out->append("\\t");
      } else if (c == '\n') {
        out->append("\\n");
      } else if (c == '\r') {
        out->append("\\r");
      } else if (c < 0x20 || c == 0x7F) {
        out->append("\\x");
        AppendHex(c, 2, out);
      } else {
        out->push_back(static_cast<char>(c));
      }
      continue;
    }
    int len = 1;
    const char32_t cp = DecodeUtf8(reinterpret_cast<const unsigned char*>(s.data() + i), &len);
    if (IsPrintable(cp)) {
      out->append(s.substr(i, static_cast<size_t>(len)));
    } else if (cp <= 0xFF) {
      out->append("\\x");
      AppendHex(cp, 2, out);
    } else if (cp <= 0xFFFF) {
      out->append("\\u");
      AppendHex(cp, 4, out);
    } else {
      out->append("\\U");
      AppendHex(cp, 8, out);
    }
    i += static_cast<size_t>(len);
  }
  out->push_back(quote);
}

Text ToText(const Value& v) {
  switch (v.type) {
    case Value::Type::kUndefined:
      return {};
    case Value::Type::kNone:
      return {"None", {}};
    case Value::Type::kBool:
      return {v.b ? "True" : "False", {}};
    case Value::Type::kInt:
      return {StrCat(v.i), {}};
    case Value::Type::kString:
      return *v.str;
    default: {
      Text out;
      AppendReprValue(v, &out.s);
      out.TaintAllIf(v.tainted());
      return out;
    }
  }
}

absl::Status AppendJson(const Value& value, int indent, bool sort_keys, std::string* out) {
  return AppendJsonAt(value, indent, sort_keys, 0, out);
}

bool Equal(const Value& a, const Value& b) {
  using T = Value::Type;
  const bool a_num = a.type == T::kInt || a.type == T::kBool, b_num = b.type == T::kInt || b.type == T::kBool;
  if (a_num && b_num) return (a.type == T::kInt ? a.i : a.b) == (b.type == T::kInt ? b.i : b.b);
  if (a.type != b.type) return false;
  switch (a.type) {
    case T::kUndefined:
    case T::kNone:
      return true;
    case T::kString:
      return a.str->s == b.str->s;
    case T::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) {
        if (!Equal((*a.list)[k], (*b.list)[k])) return false;
      }
      return true;
    case T::kDict:
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [key, value] : *a.dict) {
        const Value* other = b.Find(key);
        if (other == nullptr || !Equal(value, *other)) return false;
      }
      return true;
    case T::kNamespace:
      return a.ns == b.ns;
    default:
      return false;
  }
}

}  // namespace ortserve::generation::jinja
