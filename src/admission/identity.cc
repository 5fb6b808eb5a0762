// SPDX-License-Identifier: Apache-2.0
#include "admission/identity.h"

#include <array>
#include <utility>

#include "core/strings.h"

namespace ortserve::admission {
namespace {

constexpr std::array<std::pair<Scope, std::string_view>, 4> kScopeNames = {{
    {Scope::kInfer, "infer"},
    {Scope::kModelControl, "model_control"},
    {Scope::kAdmin, "admin"},
    {Scope::kMetrics, "metrics"},
}};

constexpr size_t kMaxPatternBytes = 256;

}  // namespace

std::string_view ScopeName(Scope scope) {
  for (const auto& [s, name] : kScopeNames) {
    if (s == scope) return name;
  }
  return "unknown";
}

std::optional<Scope> ParseScope(std::string_view name) {
  for (const auto& [s, n] : kScopeNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

std::string ScopeSet::ToString() const {
  std::string out;
  for (const auto& [s, name] : kScopeNames) {
    if (!Has(s)) continue;
    if (!out.empty()) out.push_back(',');
    out.append(name);
  }
  return out;
}

absl::StatusOr<ScopeSet> ParseScopeList(std::string_view list) {
  ScopeSet set;
  if (list.empty()) return set;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string_view item = list.substr(start, comma == std::string_view::npos ? list.npos : comma - start);
    if (item.empty()) return absl::InvalidArgumentError("empty scope in the list (two commas, or one at an end)");
    const std::optional<Scope> scope = ParseScope(item);
    if (!scope) {
      // The item comes from an operator's file, but bound what is echoed.
      return absl::InvalidArgumentError(StrCat("unknown scope '", item.substr(0, 64),
                                               "' (known: infer, model_control, admin, metrics)"));
    }
    set.Add(*scope);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return set;
}

absl::StatusOr<ModelAllowList> ModelAllowList::Only(std::vector<std::string> patterns) {
  for (const std::string& p : patterns) {
    if (p.empty()) return absl::InvalidArgumentError("empty model pattern");
    if (p.size() > kMaxPatternBytes) {
      return absl::InvalidArgumentError(StrCat("model pattern longer than ", kMaxPatternBytes, " bytes"));
    }
    for (size_t i = 0; i < p.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(p[i]);
      if (c <= 0x20 || c >= 0x7f || c == ',') {
        return absl::InvalidArgumentError(
            StrCat("model pattern '", p.substr(0, 64), "' holds a space, a comma or a non-printable byte"));
      }
      if (c == '*' && i + 1 != p.size()) {
        return absl::InvalidArgumentError(StrCat("model pattern '", p, "' has a '*' before its end"));
      }
    }
  }
  ModelAllowList list;
  list.all_ = false;
  list.patterns_ = std::move(patterns);
  return list;
}

bool ModelAllowList::Allows(std::string_view model) const {
  if (all_) return true;
  for (const std::string& p : patterns_) {
    if (p.back() == '*') {
      const std::string_view prefix(p.data(), p.size() - 1);
      if (model.substr(0, prefix.size()) == prefix) return true;
    } else if (model == p) {
      return true;
    }
  }
  return false;
}

std::string ModelAllowList::ToString() const { return all_ ? std::string("*") : StrJoin(patterns_, ","); }

std::string_view KindName(Identity::Kind kind) {
  switch (kind) {
    case Identity::Kind::kAnonymous:
      return "anonymous";
    case Identity::Kind::kApiKey:
      return "api_key";
    case Identity::Kind::kJwt:
      return "jwt";
    case Identity::Kind::kMtls:
      return "mtls";
  }
  return "unknown";
}

IdentityPtr AnonymousIdentity() {
  static const IdentityPtr* const anonymous = [] {
    auto identity = std::make_shared<Identity>();
    identity->kind = Identity::Kind::kAnonymous;
    identity->id = "anonymous";
    identity->scopes = ScopeSet::All();
    return new IdentityPtr(std::move(identity));
  }();
  return *anonymous;
}

}  // namespace ortserve::admission
