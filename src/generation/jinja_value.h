// SPDX-License-Identifier: Apache-2.0
// The values a chat template computes with (generation/chat_template.h):
// Jinja's undefined, none, booleans, integers, strings, lists, dicts and
// namespaces, with Python's printing (str and repr) and transformers'
// `tojson` (json.dumps with ensure_ascii=False).
//
// Strings remember which of their bytes came from a client (`tainted`
// ranges): the rendered prompt's control tokens are matched only where the
// template wrote them, never in text a client sent.
//
// Values are immutable and share their contents (copies are cheap), except a
// namespace, which templates assign into and which has reference semantics
// as in Jinja. Not thread-safe: a value lives in one render.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ortserve::generation::jinja {

// A byte range [begin, end) of a string.
struct Range {
  size_t begin = 0;
  size_t end = 0;
};

// A string and the ranges of it (sorted, disjoint) that came from a client.
struct Text {
  std::string s;
  std::vector<Range> tainted;

  // Appends `other`, shifting its ranges.
  void Append(const Text& other);
  void Append(std::string_view plain) { s.append(plain); }
  // The bytes [begin, end) with the ranges inside them.
  Text Sub(size_t begin, size_t end) const;
  // Marks all of it tainted when any of it is (for results that mix bytes).
  void TaintAllIf(bool any);
};

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // in insertion order

struct Value {
  enum class Type {
    kUndefined,  // a name or key that is not there (prints as "", is false)
    kNone,
    kBool,
    kInt,
    kString,
    kList,
    kDict,
    kNamespace,  // namespace(...): a dict that `{% set ns.x = ... %}` writes
  };
  Type type = Type::kUndefined;
  bool b = false;
  int64_t i = 0;
  std::shared_ptr<const Text> str;
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Dict> ns;
  // Lists and dicts: how deeply they nest (printing recurses that deep).
  int depth = 0;
  // An undefined value: the name that was looked up (for error messages).
  std::string undefined_name;

  static Value Undefined(std::string name = {}) {
    Value v;
    v.undefined_name = std::move(name);
    return v;
  }
  static Value None() { return Of(Type::kNone); }
  static Value Bool(bool b) {
    Value v = Of(Type::kBool);
    v.b = b;
    return v;
  }
  static Value Int(int64_t i) {
    Value v = Of(Type::kInt);
    v.i = i;
    return v;
  }
  static Value String(Text text);
  static Value String(std::string s) { return String(Text{std::move(s), {}}); }
  static Value MakeList(List items);
  static Value MakeDict(Dict items);
  static Value MakeNamespace(Dict items);

  bool is_undefined() const { return type == Type::kUndefined; }
  bool is_string() const { return type == Type::kString; }
  bool tainted() const;  // any client bytes inside (strings, and lists/dicts of them)
  // Python truthiness.
  bool Truthy() const;
  // A dict's or namespace's entry; null when absent.
  const Value* Find(std::string_view key) const;
  // "string", "list", ...: for error messages.
  std::string_view TypeName() const;

 private:
  static Value Of(Type t) {
    Value v;
    v.type = t;
    return v;
  }
};

// str(value) as Python prints it (Jinja's `{{ }}` and `~`): undefined is "",
// none "None", lists and dicts in repr form. A string keeps its taint; any
// other value containing a tainted string is tainted whole.
Text ToText(const Value& value);
// repr(string) as Python writes it.
void AppendRepr(std::string_view s, std::string* out);
// json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys):
// indent < 0 is None. InvalidArgument for undefined or a namespace.
absl::Status AppendJson(const Value& value, int indent, bool sort_keys, std::string* out);
// Python ==.
bool Equal(const Value& a, const Value& b);

// The UTF-8 byte offset of each code point of `s`, and s.size() last.
std::vector<size_t> CodePointOffsets(std::string_view s);
// Python's str.isspace for one code point.
bool IsPythonSpace(char32_t cp);

}  // namespace ortserve::generation::jinja
