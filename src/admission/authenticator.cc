// SPDX-License-Identifier: Apache-2.0
#include "admission/authenticator.h"

#include <algorithm>

#include "core/strings.h"

namespace ortserve::admission {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(Options options) {
  if (options.enabled && !options.api_keys && !options.jwt && options.mtls_grants.empty()) {
    return absl::InvalidArgumentError(
        "authentication is on but no API key file, JWT key set or mTLS grant is configured: no client could connect");
  }
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options)));
  std::vector<std::pair<std::string, IdentityPtr>> wildcard;
  for (const MtlsGrant& grant : auth->options_.mtls_grants) {
    if (grant.subject.empty()) return absl::InvalidArgumentError("an mTLS grant has an empty subject");
    if (grant.scopes.empty()) {
      return absl::InvalidArgumentError(StrCat("the mTLS grant for '", grant.subject, "' has no scope"));
    }
    const auto same = [&](const auto& entry) { return entry.first == grant.subject; };
    if (std::any_of(auth->mtls_identities_.begin(), auth->mtls_identities_.end(), same) ||
        std::any_of(wildcard.begin(), wildcard.end(), same)) {
      return absl::InvalidArgumentError(StrCat("two mTLS grants for '", grant.subject, "'"));
    }
    auto identity = std::make_shared<Identity>();
    identity->kind = Identity::Kind::kMtls;
    identity->scopes = grant.scopes;
    identity->models = grant.models;
    identity->tenant = grant.tenant;
    // For "*", the id is filled per request with the certificate's subject.
    identity->id = grant.subject;
    (grant.subject == "*" ? wildcard : auth->mtls_identities_).emplace_back(grant.subject, std::move(identity));
  }
  for (auto& entry : wildcard) auth->mtls_identities_.push_back(std::move(entry));
  return auth;
}

absl::StatusOr<IdentityPtr> Authenticator::Authenticate(const AuthRequest& request) const {
  if (!options_.enabled) return AnonymousIdentity();
  if (request.authorization.size() > options_.max_credential_bytes ||
      request.api_key.size() > options_.max_credential_bytes) {
    return absl::UnauthenticatedError(StrCat("credential longer than ", options_.max_credential_bytes, " bytes"));
  }
  const std::string_view authorization = Trim(request.authorization);
  const std::string_view api_key = Trim(request.api_key);
  if (!authorization.empty() && !api_key.empty()) {
    return absl::UnauthenticatedError("send one credential: both Authorization and X-API-Key are set");
  }
  if (!api_key.empty()) {
    if (!options_.api_keys) return absl::UnauthenticatedError("API keys are not accepted by this server");
    return options_.api_keys->Verify(api_key);
  }
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "bearer";
    if (!StartsWithIgnoreCase(authorization, kBearer) || authorization.size() == kBearer.size() ||
        !IsSpace(authorization[kBearer.size()])) {
      return absl::UnauthenticatedError("the Authorization scheme is not Bearer");
    }
    const std::string_view token = Trim(authorization.substr(kBearer.size()));
    if (token.empty()) return absl::UnauthenticatedError("the bearer token is empty");
    if (std::any_of(token.begin(), token.end(), IsSpace)) {
      return absl::UnauthenticatedError("the bearer token holds a space");
    }
    return FromBearer(token);
  }
  if (!request.client_cert_subject.empty()) {
    for (const auto& [subject, identity] : mtls_identities_) {
      if (subject == request.client_cert_subject) return identity;
      if (subject == "*") {
        auto named = std::make_shared<Identity>(*identity);
        named->id = std::string(request.client_cert_subject);
        return IdentityPtr(std::move(named));
      }
    }
    return absl::UnauthenticatedError(
        "no credential: the client certificate has no grant here; send Authorization: Bearer <token> or X-API-Key");
  }
  return absl::UnauthenticatedError("no credential: send Authorization: Bearer <token> or X-API-Key: <key>");
}

absl::StatusOr<IdentityPtr> Authenticator::FromBearer(std::string_view token) const {
  if (LooksLikeApiKey(token)) {
    if (!options_.api_keys) return absl::UnauthenticatedError("API keys are not accepted by this server");
    return options_.api_keys->Verify(token);
  }
  if (!options_.jwt) return absl::UnauthenticatedError("JWT bearer tokens are not accepted by this server");
  return options_.jwt->Verify(token);
}

absl::Status Authenticator::CheckNow() const {
  absl::Status first;
  if (options_.api_keys) first.Update(options_.api_keys->CheckNow());
  if (options_.jwt) first.Update(options_.jwt->CheckNow());
  return first;
}

}  // namespace ortserve::admission
