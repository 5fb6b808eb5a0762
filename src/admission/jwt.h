// SPDX-License-Identifier: Apache-2.0
// JWT bearer tokens (RFC 7519, JWS compact form, RFC 7515): HS256 and RS256
// over OpenSSL 3, verified against a local key set (a JWKS file, RFC 7517)
// that is re-read when it changes.
//
// Defences, in the order a token meets them: a length bound before any
// decoding; exactly three strict base64url parts; a header of bounded size
// with no duplicate members, no `crit`, and an `alg` from the allow-list
// (`none` is never accepted, whatever the configuration); the key chosen by
// `kid` must be bound to that same algorithm (an RS256 key is never used as an
// HMAC secret, which defeats algorithm confusion); the signature is checked
// before the claims are parsed; then iss, aud, exp, nbf, iat with a bounded
// clock skew.
#pragma once

#include <openssl/evp.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admission/file_reloader.h"
#include "admission/identity.h"
#include "core/clock.h"

namespace ortserve::admission {

enum class JwtAlgorithm {
  // HMAC-SHA256 with a shared secret (a JWK of kty "oct").
  kHS256,
  // RSASSA-PKCS1-v1_5 with SHA-256 (a JWK of kty "RSA").
  kRS256,
};
std::string_view JwtAlgorithmName(JwtAlgorithm alg);

// The base64url modulus and exponent of an RSA public key, as a JWK's "n"
// and "e" members. InvalidArgument when `key` is not an RSA key.
struct RsaJwkMembers {
  std::string n{};
  std::string e{};
};
absl::StatusOr<RsaJwkMembers> RsaJwkMembersOf(const EVP_PKEY* key);

// The verification keys of a JWKS document, each bound to one algorithm.
// Keys of other types (EC, OKP), other algorithms or `use` other than "sig"
// are skipped (an identity provider's JWKS can be used as it is) and counted.
// Immutable.
//
// Thread-safe.
class JwtKeySet {
 public:
  struct Key {
    std::string kid{};
    JwtAlgorithm alg{};
    std::string hmac_secret{};  // kHS256: at least 32 bytes.
    std::shared_ptr<EVP_PKEY> rsa_public{};  // kRS256: 2048 to 8192 bits.
  };
  static constexpr size_t kMaxKeys = 100;

  // InvalidArgument naming the key (by index and kid) that is malformed: not
  // JSON, no `keys` array, a missing or repeated kid, a bad base64url member,
  // an HMAC secret under 32 bytes, an RSA modulus outside 2048..8192 bits, an
  // `alg` that contradicts the key type; also when no usable key remains.
  static absl::StatusOr<std::shared_ptr<const JwtKeySet>> Parse(std::string_view jwks_json);

  // The key with `kid`, or nullptr.
  const Key* Find(std::string_view kid) const;
  // The keys for `alg`.
  std::vector<const Key*> ForAlgorithm(JwtAlgorithm alg) const;
  size_t size() const { return keys_.size(); }
  size_t skipped() const { return skipped_; }

 private:
  std::vector<Key> keys_;
  size_t skipped_ = 0;
};

// Verifies bearer tokens and turns their claims into an Identity.
//
// Claims read: `iss` (must be one of `issuers`), `sub` (required; the
// identity's id), `aud` (a string or an array; one must be in `audiences`),
// `exp` (required), `nbf` and `iat` (optional), scopes from `scope` (a
// space-separated string) and `scp` (an array of strings, or a string), the
// model allow list from `models_claim` (an array of patterns; absent: every
// model) and the tenant from `tenant_claim` (a string). Scopes ortserve does
// not know are ignored (tokens often carry others, such as "openid").
//
// Time: a token is expired once now >= exp + clock_skew, not yet valid while
// now + clock_skew < nbf, and refused when iat > now + clock_skew. With
// max_lifetime set, exp minus iat (or nbf, or now) must not exceed it.
//
// Thread-safe. Cost per token: one HMAC, or one RSA verification, plus two
// small JSON parses; the key file is checked as ReloadingFiles describes.
class JwtVerifier {
 public:
  struct Options {
    // The JWKS file.
    std::string keys_path{};
    // Accepted `iss` values; at least one.
    std::vector<std::string> issuers{};
    // Accepted `aud` values; at least one.
    std::vector<std::string> audiences{};
    // Accepted algorithms; `none` cannot be listed.
    std::vector<JwtAlgorithm> algorithms = {JwtAlgorithm::kHS256, JwtAlgorithm::kRS256};
    // Tolerance for clocks that disagree; at most 5 minutes.
    absl::Duration clock_skew = absl::Seconds(60);
    // The longest accepted lifetime; zero: not checked.
    absl::Duration max_lifetime = absl::ZeroDuration();
    // Tokens longer than this are refused before any decoding (256..65536).
    size_t max_token_bytes = 8192;
    // When set, only scopes that start with it count, without it
    // ("ortserve:infer" grants infer when the prefix is "ortserve:").
    std::string scope_prefix{};
    std::string models_claim = "ortserve_models";
    std::string tenant_claim = "tenant";
    absl::Duration check_interval = absl::Seconds(2);
    // Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
    std::function<void(const absl::Status&)> on_reload{};
  };

  // InvalidArgument for options out of range; the errors of reading and
  // parsing the key file.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(Options options);

  // The identity the token proves. Unauthenticated, with a message naming the
  // check that failed (never the token or the signature), otherwise.
  absl::StatusOr<IdentityPtr> Verify(std::string_view token);

  absl::Status CheckNow() { return keys_->CheckNow(); }
  std::shared_ptr<const JwtKeySet> keys() { return keys_->Current(); }

 private:
  explicit JwtVerifier(Options options) : options_(std::move(options)) {}
  Options options_;
  std::unique_ptr<ReloadingFiles<JwtKeySet>> keys_;
};

}  // namespace ortserve::admission
