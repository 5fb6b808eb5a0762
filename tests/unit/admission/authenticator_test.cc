// SPDX-License-Identifier: Apache-2.0
#include "admission/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "admission/authorizer.h"
#include "fakes/fake_clock.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::HmacJwk;
using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::ortserve::admission::testing::SignHs256;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSecret(40, 'k');

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto infer_key = GenerateApiKey({.id = "inferrer", .scopes = {Scope::kInfer}});
    auto ops_key = GenerateApiKey({.id = "ops", .scopes = {Scope::kModelControl, Scope::kAdmin, Scope::kMetrics}});
    ASSERT_TRUE(infer_key.ok() && ops_key.ok());
    infer_key_ = infer_key->key;
    ops_key_ = ops_key->key;
    ReplaceFile(dir_.File("keys"), infer_key->line + "\n" + ops_key->line + "\n");
    ReplaceFile(dir_.File("jwks"), "{\"keys\":[" + HmacJwk("h1", kSecret) + "]}");
  }

  std::unique_ptr<Authenticator> Make(bool enabled, std::vector<Authenticator::MtlsGrant> grants = {}) {
    auto keys = ApiKeyStore::Create({.path = dir_.File("keys"), .clock = &clock_});
    auto jwt = JwtVerifier::Create(
        {.keys_path = dir_.File("jwks"), .issuers = {"idp"}, .audiences = {"ortserve"}, .clock = &clock_});
    EXPECT_TRUE(keys.ok() && jwt.ok());
    auto auth = Authenticator::Create({.enabled = enabled,
                                       .api_keys = *std::move(keys),
                                       .jwt = *std::move(jwt),
                                       .mtls_grants = std::move(grants)});
    EXPECT_TRUE(auth.ok()) << auth.status();
    return *std::move(auth);
  }

  std::string Jwt(std::string_view scope, int64_t exp_offset = 3600) const {
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    return SignHs256(R"({"alg":"HS256","kid":"h1"})",
                     "{\"iss\":\"idp\",\"sub\":\"bob\",\"aud\":\"ortserve\",\"exp\":" + std::to_string(now + exp_offset) +
                         ",\"scope\":\"" + std::string(scope) + "\"}",
                     kSecret);
  }

  ScopedTempDir dir_;
  ortserve::testing::FakeClock clock_{absl::FromUnixSeconds(1750000000)};
  std::string infer_key_, ops_key_;
};

TEST_F(AuthenticatorTest, WhenOffEveryRequestIsAnonymousWithEveryScope) {
  auto auth = Make(false);
  for (const AuthRequest& request : {AuthRequest{}, AuthRequest{.authorization = "Bearer garbage"},
                                     AuthRequest{.api_key = "nope"}}) {
    auto identity = auth->Authenticate(request);
    ASSERT_TRUE(identity.ok());
    EXPECT_EQ((*identity)->kind, Identity::Kind::kAnonymous);
    EXPECT_EQ((*identity)->id, "anonymous");
    EXPECT_EQ((*identity)->scopes, ScopeSet::All());
    EXPECT_TRUE((*identity)->models.AllowsAll());
  }
}

TEST_F(AuthenticatorTest, RefusesARequestWithoutCredential) {
  auto auth = Make(true);
  auto result = auth->Authenticate({});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(result.status().message(), HasSubstr("no credential"));
}

TEST_F(AuthenticatorTest, AcceptsAnApiKeyInEitherHeader) {
  auto auth = Make(true);
  auto by_header = auth->Authenticate({.api_key = infer_key_});
  auto by_bearer = auth->Authenticate({.authorization = "Bearer " + infer_key_});
  auto lower_case = auth->Authenticate({.authorization = "bearer   " + infer_key_ + " "});
  ASSERT_TRUE(by_header.ok() && by_bearer.ok() && lower_case.ok());
  EXPECT_EQ((*by_header)->id, "inferrer");
  EXPECT_EQ(by_header->get(), by_bearer->get());  // One shared identity per key.
}

TEST_F(AuthenticatorTest, AcceptsAJwtBearerToken) {
  auto auth = Make(true);
  auto identity = auth->Authenticate({.authorization = "Bearer " + Jwt("infer")});
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->kind, Identity::Kind::kJwt);
  EXPECT_EQ((*identity)->id, "bob");
}

TEST_F(AuthenticatorTest, RefusesAmbiguousOrMalformedCredentialsWithoutEchoingThem) {
  auto auth = Make(true);
  const auto message = [&](const AuthRequest& r) { return std::string(auth->Authenticate(r).status().message()); };
  EXPECT_THAT(message({.authorization = "Bearer " + Jwt("infer"), .api_key = infer_key_}), HasSubstr("send one"));
  EXPECT_THAT(message({.authorization = "Basic dXNlcjpwYXNz"}), HasSubstr("not Bearer"));
  EXPECT_THAT(message({.authorization = "Bearer"}), HasSubstr("not Bearer"));
  EXPECT_THAT(message({.authorization = "Bearer "}), HasSubstr("not Bearer"));
  EXPECT_THAT(message({.authorization = "Bearertoken"}), HasSubstr("not Bearer"));
  EXPECT_THAT(message({.authorization = "Bearer a b"}), HasSubstr("space"));
  EXPECT_THAT(message({.authorization = std::string(20000, 'B')}), HasSubstr("longer than"));
  const std::string wrong = infer_key_.substr(0, infer_key_.size() - 1) + (infer_key_.back() == 'x' ? "y" : "x");
  EXPECT_THAT(message({.api_key = wrong}), Not(HasSubstr(wrong.substr(15))));
  EXPECT_THAT(message({.authorization = "Bearer " + Jwt("infer", -3600)}), HasSubstr("expired"));
}

TEST_F(AuthenticatorTest, AVerifiedClientCertificateWithAGrantAuthenticates) {
  auto auth = Make(true, {{.subject = "CN=ingest,O=Clinic", .scopes = {Scope::kInfer}},
                          {.subject = "*", .scopes = {Scope::kMetrics}}});
  auto named = auth->Authenticate({.client_cert_subject = "CN=ingest,O=Clinic"});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*named)->kind, Identity::Kind::kMtls);
  EXPECT_EQ((*named)->scopes, ScopeSet{Scope::kInfer});
  auto other = auth->Authenticate({.client_cert_subject = "CN=scraper,O=Clinic"});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->id, "CN=scraper,O=Clinic");
  EXPECT_EQ((*other)->scopes, ScopeSet{Scope::kMetrics});
  // A credential, when present, wins over the certificate.
  auto with_key = auth->Authenticate({.api_key = ops_key_, .client_cert_subject = "CN=ingest,O=Clinic"});
  ASSERT_TRUE(with_key.ok());
  EXPECT_EQ((*with_key)->id, "ops");
}

TEST_F(AuthenticatorTest, ACertificateWithoutAGrantIsNotACredential) {
  auto auth = Make(true, {{.subject = "CN=ingest,O=Clinic", .scopes = {Scope::kInfer}}});
  EXPECT_EQ(auth->Authenticate({.client_cert_subject = "CN=other"}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorCreateTest, RefusesAuthenticationWithNoWayIn) {
  EXPECT_FALSE(Authenticator::Create({.enabled = true}).ok());
  EXPECT_TRUE(Authenticator::Create({.enabled = false}).ok());
  EXPECT_FALSE(Authenticator::Create({.enabled = true, .mtls_grants = {{.subject = "CN=a"}}}).ok());  // No scope.
  EXPECT_FALSE(Authenticator::Create({.enabled = true,
                                      .mtls_grants = {{.subject = "CN=a", .scopes = {Scope::kInfer}},
                                                      {.subject = "CN=a", .scopes = {Scope::kAdmin}}}})
                   .ok());
}

// Every route class × no credential, a wrong one, an expired JWT and each
// scope: the status a client gets (401, 403 or OK).
TEST_F(AuthenticatorTest, AuthorizationMatrixGivesTheExpectedStatusForEveryRouteClass) {
  auto auth = Make(true);
  const Authorizer authorizer({.open_health = true, .open_metrics = false});
  using Code = absl::StatusCode;
  struct Credential {
    std::string name;
    std::string authorization;
    std::string api_key;
  };
  const auto bearer = [&](std::string_view scope, int64_t exp_offset = 3600) {
    return "Bearer " + Jwt(scope, exp_offset);
  };
  const std::vector<Credential> credentials = {
      {"none", "", ""},
      {"wrong", "", "ortsk_inferrer_" + std::string(43, 'A')},
      {"expired", bearer("infer admin model_control metrics", -120), ""},
      {"no_scope", bearer("openid"), ""},
      {"infer", bearer("infer"), ""},
      {"model_control", bearer("model_control"), ""},
      {"admin", bearer("admin"), ""},
      {"metrics", bearer("metrics"), ""},
  };
  const Code k401 = Code::kUnauthenticated, k403 = Code::kPermissionDenied, kOk = Code::kOk;
  // Rows: route classes; columns: credentials in the order above.
  const std::vector<std::pair<RouteClass, std::vector<Code>>> expected = {
      {RouteClass::kHealth, {kOk, kOk, kOk, kOk, kOk, kOk, kOk, kOk}},
      {RouteClass::kMetadata, {k401, k401, k401, k403, kOk, kOk, k403, k403}},
      {RouteClass::kInfer, {k401, k401, k401, k403, kOk, k403, k403, k403}},
      {RouteClass::kModelControl, {k401, k401, k401, k403, k403, kOk, k403, k403}},
      {RouteClass::kAdmin, {k401, k401, k401, k403, k403, k403, kOk, k403}},
      {RouteClass::kMetrics, {k401, k401, k401, k403, k403, k403, k403, kOk}},
  };
  for (const auto& [route, codes] : expected) {
    for (size_t i = 0; i < credentials.size(); ++i) {
      const absl::Status status = Admit(*auth, authorizer,
                                        {.authorization = credentials[i].authorization, .api_key = credentials[i].api_key},
                                        route, "iris").status();
      EXPECT_EQ(status.code(), codes[i]) << RouteClassName(route) << " with " << credentials[i].name << ": " << status;
    }
  }
}

}  // namespace
}  // namespace ortserve::admission
