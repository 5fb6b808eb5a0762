// SPDX-License-Identifier: Apache-2.0
// Authenticator: turns what a transport carries (headers or gRPC metadata,
// the verified TLS client certificate) into an Identity, or refuses it with
// Unauthenticated (HTTP 401, gRPC UNAUTHENTICATED).
//
// Credentials, one per request:
//   Authorization: Bearer <JWT>          a JWT bearer token
//   Authorization: Bearer ortsk_<id>_…   an API key (for clients that only
//                                        send bearer tokens, e.g. OpenAI SDKs)
//   X-API-Key: ortsk_<id>_…              an API key
// gRPC metadata uses the same names in lower case ("authorization",
// "x-api-key"). A verified client certificate whose subject has a grant in
// Options::mtls_grants authenticates a request that carries no credential.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "admission/api_keys.h"
#include "admission/identity.h"
#include "admission/jwt.h"

namespace ortserve::admission {

inline constexpr std::string_view kAuthorizationHeader = "Authorization";
inline constexpr std::string_view kApiKeyHeader = "X-API-Key";
inline constexpr std::string_view kAuthorizationMetadata = "authorization";
inline constexpr std::string_view kApiKeyMetadata = "x-api-key";

// What the transport hands over. Views into the request; valid for the call.
struct AuthRequest {
  // The Authorization header (or metadata) value; empty when absent.
  std::string_view authorization{};
  // The X-API-Key header (or x-api-key metadata) value; empty when absent.
  std::string_view api_key{};
  // The subject (RFC 2253) of the client certificate, only when the TLS
  // layer verified it against the client CA; empty otherwise.
  std::string_view client_cert_subject{};
};

// Thread-safe. Authenticate takes no lock of its own; the key stores it owns
// check their files as ReloadingFiles describes.
class Authenticator {
 public:
  // Scopes and models for clients that present a verified certificate.
  struct MtlsGrant {
    // The certificate subject as RFC 2253 ("CN=ingest,O=Clinic"), or "*" for
    // any certificate the client CA verified.
    std::string subject{};
    ScopeSet scopes{};
    ModelAllowList models{};
    std::string tenant{};
  };

  struct Options {
    // Off: every request is AnonymousIdentity() and credentials are not read
    // (ortserve's behaviour before authentication existed).
    bool enabled = false;
    // Owned. Null: API keys are refused.
    std::unique_ptr<ApiKeyStore> api_keys{};
    // Owned. Null: JWTs are refused.
    std::unique_ptr<JwtVerifier> jwt{};
    std::vector<MtlsGrant> mtls_grants{};
    // Authorization values longer than this are refused unread.
    size_t max_credential_bytes = 16384;
  };

  // InvalidArgument when enabled with no way to authenticate (no key store,
  // no JWT verifier, no mTLS grant), or for a grant with no scope or a
  // repeated subject.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(Options options);

  // The identity behind `request`. Unauthenticated when it carries no
  // credential, two credentials, a malformed Authorization value, or one
  // that does not verify; the message says which, never echoing a secret.
  absl::StatusOr<IdentityPtr> Authenticate(const AuthRequest& request) const;

  bool enabled() const { return options_.enabled; }

  // Re-reads the key files now (SIGHUP). The first error, if any; the other
  // store is re-read regardless.
  absl::Status CheckNow() const;

 private:
  explicit Authenticator(Options options) : options_(std::move(options)) {}
  absl::StatusOr<IdentityPtr> FromBearer(std::string_view token) const;

  Options options_;
  // Built once from options_.mtls_grants; "*" last.
  std::vector<std::pair<std::string, IdentityPtr>> mtls_identities_;
};

}  // namespace ortserve::admission
