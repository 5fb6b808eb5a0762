// SPDX-License-Identifier: Apache-2.0
// Identity: who sent a request, as established by the Authenticator; the value
// that rate limits, logs, the audit log and authorization key on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ortserve::admission {

// What a credential lets its holder do. A credential carries any subset.
enum class Scope : uint8_t {
  // Inference and the metadata of the models it may use (KServe infer,
  // pipelines: SAE, embeddings, OpenAI).
  kInfer = 1 << 0,
  // Loading and unloading models and reading the repository index.
  kModelControl = 1 << 1,
  // Log settings, profiles, trace settings, the console.
  kAdmin = 1 << 2,
  // The Prometheus metrics endpoint.
  kMetrics = 1 << 3,
};

// A set of scopes (a bit set; cheap to copy).
class ScopeSet {
 public:
  constexpr ScopeSet() = default;
  constexpr ScopeSet(std::initializer_list<Scope> scopes) {
    for (Scope s : scopes) bits_ |= static_cast<uint8_t>(s);
  }
  static constexpr ScopeSet All() {
    return {Scope::kInfer, Scope::kModelControl, Scope::kAdmin, Scope::kMetrics};
  }
  constexpr bool Has(Scope s) const { return (bits_ & static_cast<uint8_t>(s)) != 0; }
  constexpr bool HasAny(ScopeSet other) const { return (bits_ & other.bits_) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr void Add(Scope s) { bits_ |= static_cast<uint8_t>(s); }
  constexpr bool operator==(const ScopeSet&) const = default;
  // "infer,model_control" in the order of the enum; "" when empty.
  std::string ToString() const;

 private:
  uint8_t bits_ = 0;
};

// The scope's name in key files, JWT claims and messages ("infer",
// "model_control", "admin", "metrics").
std::string_view ScopeName(Scope scope);
// The scope named `name`, or nullopt when no scope has that name.
std::optional<Scope> ParseScope(std::string_view name);
// Parses "infer,admin" (commas, no spaces). InvalidArgument names an unknown
// scope or an empty item; an empty string is an empty set.
absl::StatusOr<ScopeSet> ParseScopeList(std::string_view list);

// Which models an identity may use: every model, or those matching one of a
// list of patterns. A pattern is a model name, or a prefix followed by `*`
// ("sae_*"); `*` alone matches every model.
//
// Not thread-safe to mutate; const methods may be called from any thread.
class ModelAllowList {
 public:
  // Every model.
  ModelAllowList() = default;
  // Only the models matching `patterns` (an empty list allows none).
  // InvalidArgument for a pattern that is empty, longer than 256 bytes,
  // holds a `*` anywhere but at the end, or holds a byte outside printable
  // ASCII (model names are folder names; see repository/).
  static absl::StatusOr<ModelAllowList> Only(std::vector<std::string> patterns);

  bool AllowsAll() const { return all_; }
  bool Allows(std::string_view model) const;
  const std::vector<std::string>& patterns() const { return patterns_; }
  // "*" or the patterns joined by ",".
  std::string ToString() const;

 private:
  bool all_ = true;
  std::vector<std::string> patterns_;
};

// Who a request comes from. Produced by the Authenticator, shared (API key
// identities are built once per key file load), never mutated afterwards.
//
// Thread-safe (immutable once built).
struct Identity {
  // How the identity was established.
  enum class Kind {
    // Authentication is off, or the route is open: no credential was checked.
    kAnonymous,
    // An API key from the key file.
    kApiKey,
    // A JWT bearer token whose signature and claims verified.
    kJwt,
    // A TLS client certificate verified against the client CA.
    kMtls,
  };

  Kind kind = Kind::kAnonymous;
  // A stable name, safe to log and to key rate limits on: the API key's id,
  // the JWT's `sub`, the certificate's subject, or "anonymous". Never a secret.
  std::string id{};
  // The JWT issuer (`iss`) for kJwt; empty otherwise.
  std::string issuer{};
  // The tenant the credential belongs to; empty when none.
  std::string tenant{};
  ScopeSet scopes{};
  ModelAllowList models{};
  // When the credential stops being valid; InfiniteFuture when it does not.
  absl::Time expires = absl::InfiniteFuture();
};

using IdentityPtr = std::shared_ptr<const Identity>;

// "anonymous", "api_key", "jwt", "mtls".
std::string_view KindName(Identity::Kind kind);

// The identity of every request while authentication is off: anonymous, every
// scope, every model. One shared instance.
IdentityPtr AnonymousIdentity();

}  // namespace ortserve::admission
