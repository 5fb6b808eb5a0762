// SPDX-License-Identifier: Apache-2.0
// API keys: the key format, the key file (hashed keys with their scopes),
// generation of new keys, and a store that verifies presented keys against
// the file and follows its changes without a restart.
//
// A key as a client sends it:
//
//   ortsk_<id>_<secret>
//
// where <id> is 1 to 64 bytes of [A-Za-z0-9._-] (the name the logs, the
// audit log and rate limits use) and <secret> is 43 base64url characters
// (32 bytes from the CSPRNG).
//
// The key file holds one key a line; `#` starts a comment; fields are
// name=value separated by spaces:
//
//   id=ci-runner hash=hmac-sha256:<salt: 32 hex>:<digest: 64 hex> scopes=infer,model_control
//       models=iris_classifier,sae_* tenant=acme expires=2026-06-30T00:00:00Z
//
// (one line). id, hash and scopes are required; models (default: every
// model), tenant and expires (RFC 3339) are optional. The digest is
// HMAC-SHA256 keyed with the salt over the whole key text, reproducible with
//   printf %s "$KEY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$SALT
// docs/security.md explains why a fast salted hash suits these keys.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admission/crypto.h"
#include "admission/file_reloader.h"
#include "admission/identity.h"
#include "core/clock.h"

namespace ortserve::admission {

inline constexpr std::string_view kApiKeyPrefix = "ortsk_";
inline constexpr size_t kApiKeySecretChars = 43;
inline constexpr size_t kMaxApiKeyIdBytes = 64;
// The longest well-formed key: prefix, id, '_', secret.
inline constexpr size_t kMaxApiKeyBytes = kApiKeyPrefix.size() + kMaxApiKeyIdBytes + 1 + kApiKeySecretChars;

// True when `text` starts with the API key prefix (so a bearer token is
// taken as an API key, not a JWT).
inline bool LooksLikeApiKey(std::string_view text) { return text.substr(0, kApiKeyPrefix.size()) == kApiKeyPrefix; }

// InvalidArgument unless `id` is 1 to 64 bytes of [A-Za-z0-9._-].
absl::Status ValidateApiKeyId(std::string_view id);

// What a new key grants.
struct ApiKeySpec {
  std::string id{};
  ScopeSet scopes{};
  ModelAllowList models{};  // Default: every model.
  std::string tenant{};     // Empty: none.
  std::optional<absl::Time> expires{};
};

// A new key: the text to give the client (shown once, never stored) and the
// line for the key file (holds only the salted hash).
struct GeneratedApiKey {
  std::string key{};
  std::string line{};
};

// Draws a secret and salt from the CSPRNG. InvalidArgument for a bad id or
// tenant, or an empty scope set.
absl::StatusOr<GeneratedApiKey> GenerateApiKey(const ApiKeySpec& spec);

// The key file line for `spec` with `hash_field` ("hmac-sha256:salt:digest").
std::string FormatApiKeyLine(const ApiKeySpec& spec, std::string_view hash_field);

// The hash field for `key` under `salt` (raw bytes).
std::string ApiKeyHashField(std::string_view key, std::string_view salt);

// A parsed key file. Immutable.
//
// Thread-safe.
class ApiKeySet {
 public:
  struct Entry {
    std::string salt{};    // Raw bytes.
    Digest256 digest{};  // HMAC-SHA256(salt, key).
    IdentityPtr identity{};
  };
  // Limits on a key file (hostile or mistaken input).
  static constexpr size_t kMaxKeys = 10000;
  static constexpr size_t kMaxLineBytes = 4096;

  // InvalidArgument naming the line (1-based) and field that is wrong:
  // unknown or repeated field, missing id/hash/scopes, malformed hash, bad
  // scope, model pattern or time, duplicate id, too many keys or too long a
  // line. Never echoes a hash.
  static absl::StatusOr<std::shared_ptr<const ApiKeySet>> Parse(std::string_view text);

  const Entry* Find(std::string_view id) const;
  size_t size() const { return entries_.size(); }

 private:
  absl::flat_hash_map<std::string, Entry> entries_;
};

// Verifies presented keys against a key file that it follows.
//
// Thread-safe. Verify costs one HMAC-SHA256 and, once per check_interval for
// one caller, a stat of the file (a read and parse when it changed).
class ApiKeyStore {
 public:
  struct Options {
    std::string path{};
    absl::Duration check_interval = absl::Seconds(2);
    // Key expiry and file checks. Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
    // See ReloadingFiles::Options::on_reload.
    std::function<void(const absl::Status&)> on_reload{};
  };

  // Errors: those of reading and parsing the file.
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Create(Options options);

  // The identity of `key`. Unauthenticated (the message never holds the
  // secret) when it is malformed, unknown, wrong or expired.
  absl::StatusOr<IdentityPtr> Verify(std::string_view key);

  // Re-reads the file now (SIGHUP); see ReloadingFiles::CheckNow.
  absl::Status CheckNow() { return files_->CheckNow(); }
  // How many keys are in service.
  size_t size() { return files_->Current()->size(); }

 private:
  explicit ApiKeyStore(const Clock* clock) : clock_(clock) {}
  const Clock* clock_;
  std::unique_ptr<ReloadingFiles<ApiKeySet>> files_;
};

}  // namespace ortserve::admission
