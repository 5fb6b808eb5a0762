// SPDX-License-Identifier: Apache-2.0
// Protocol parameters: the `parameters` maps of requests, tensors and responses.
// A value type, not synchronised: one thread at a time per object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ortserve {

// One value of the KServe v2 InferParameter oneof.
using ParameterValue = std::variant<bool, int64_t, uint64_t, double, std::string>;

// Parameters keep their wire order so that they echo back unchanged. Small;
// lookups are linear.
class Parameters {
 public:
  using Entry = std::pair<std::string, ParameterValue>;

  // Replaces the value under `key` or appends it.
  void Set(std::string key, ParameterValue value) {
    for (auto& [k, v] : entries_) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
    entries_.emplace_back(std::move(key), std::move(value));
  }
  const ParameterValue* Find(std::string_view key) const {
    for (const auto& [k, v] : entries_) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  // The value as an integer when it is one (bool excluded); nullopt otherwise.
  std::optional<int64_t> FindInt(std::string_view key) const {
    const ParameterValue* v = Find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* i = std::get_if<int64_t>(v)) return *i;
    if (const auto* u = std::get_if<uint64_t>(v)) return static_cast<int64_t>(*u);
    return std::nullopt;
  }
  std::optional<bool> FindBool(std::string_view key) const {
    const ParameterValue* v = Find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* b = std::get_if<bool>(v)) return *b;
    return std::nullopt;
  }
  // The value as a string when it is one; nullopt otherwise.
  std::optional<std::string_view> FindString(std::string_view key) const {
    const ParameterValue* v = Find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* s = std::get_if<std::string>(v)) return std::string_view(*s);
    return std::nullopt;
  }
  bool Erase(std::string_view key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.erase(it);
        return true;
      }
    }
    return false;
  }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace ortserve
