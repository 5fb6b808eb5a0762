// SPDX-License-Identifier: Apache-2.0
#include "admission/jwt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "admission/crypto.h"
#include "fakes/fake_clock.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::HmacJwk;
using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::ortserve::admission::testing::SignHs256;
using ::ortserve::admission::testing::TestRsaKey;
using ::testing::HasSubstr;

constexpr char kIssuer[] = "https://idp.example";
constexpr char kAudience[] = "ortserve";
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256-secret";

// RSA key generation is slow; every test shares two keys.
const TestRsaKey& RsaKey1() {
  static const TestRsaKey* key = new TestRsaKey();
  return *key;
}
const TestRsaKey& RsaKey2() {
  static const TestRsaKey* key = new TestRsaKey();
  return *key;
}

std::string Jwks(const std::vector<std::string>& keys) {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys.size(); ++i) out += (i ? "," : "") + keys[i];
  return out + "]}";
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_path_ = dir_.File("jwks.json");
    ReplaceFile(keys_path_, Jwks({HmacJwk("h1", kSecret), RsaKey1().PublicJwk("r1")}));
  }

  std::unique_ptr<JwtVerifier> MakeVerifier(JwtVerifier::Options options = {}) {
    options.keys_path = keys_path_;
    if (options.issuers.empty()) options.issuers = {kIssuer};
    if (options.audiences.empty()) options.audiences = {kAudience};
    options.clock = &clock_;
    options.on_reload = [this](const absl::Status& s) { reloads_.push_back(s); };
    auto verifier = JwtVerifier::Create(std::move(options));
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  int64_t Now() const { return absl::ToUnixSeconds(clock_.Now()); }

  // Claims valid now, with `extra` members appended.
  std::string Claims(std::string_view extra = "") const {
    std::string claims = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"alice\",\"aud\":\"" +
                         std::string(kAudience) + "\",\"iat\":" + std::to_string(Now() - 10) +
                         ",\"exp\":" + std::to_string(Now() + 3600);
    if (!extra.empty()) claims += "," + std::string(extra);
    return claims + "}";
  }
  // Claims with explicit times (no iat).
  std::string ClaimsAt(int64_t exp, std::optional<int64_t> nbf = std::nullopt) const {
    std::string claims = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"alice\",\"aud\":\"" +
                         std::string(kAudience) + "\",\"exp\":" + std::to_string(exp);
    if (nbf) claims += ",\"nbf\":" + std::to_string(*nbf);
    return claims + "}";
  }

  static std::string Hs(std::string_view claims, std::string_view header = R"({"alg":"HS256","kid":"h1"})") {
    return SignHs256(header, claims, kSecret);
  }
  static std::string Rs(std::string_view claims, std::string_view header = R"({"alg":"RS256","kid":"r1","typ":"JWT"})") {
    return RsaKey1().Sign(header, claims);
  }

  ScopedTempDir dir_;
  std::string keys_path_;
  ortserve::testing::FakeClock clock_{absl::FromUnixSeconds(1750000000)};
  std::vector<absl::Status> reloads_;
};

TEST_F(JwtVerifierTest, AcceptsAnHs256TokenAndReadsItsClaims) {
  auto verifier = MakeVerifier();
  auto identity = verifier->Verify(
      Hs(Claims(R"("scope":"openid infer admin","ortserve_models":["iris","sae_*"],"tenant":"acme")")));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->kind, Identity::Kind::kJwt);
  EXPECT_EQ((*identity)->id, "alice");
  EXPECT_EQ((*identity)->issuer, kIssuer);
  EXPECT_EQ((*identity)->tenant, "acme");
  EXPECT_EQ((*identity)->scopes, (ScopeSet{Scope::kInfer, Scope::kAdmin}));
  EXPECT_TRUE((*identity)->models.Allows("iris"));
  EXPECT_TRUE((*identity)->models.Allows("sae_v2"));
  EXPECT_FALSE((*identity)->models.Allows("iris_classifier"));
  EXPECT_EQ((*identity)->expires, absl::FromUnixSeconds(Now() + 3600));
}

TEST_F(JwtVerifierTest, AcceptsAnRs256TokenWithAnAudienceArray) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"" + std::string(kIssuer) +
                             "\",\"sub\":\"svc\",\"aud\":[\"other\",\"ortserve\"],\"exp\":" + std::to_string(Now() + 60) +
                             ",\"scp\":[\"infer\",\"metrics\"]}";
  auto identity = verifier->Verify(Rs(claims));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->id, "svc");
  EXPECT_EQ((*identity)->scopes, (ScopeSet{Scope::kInfer, Scope::kMetrics}));
  EXPECT_TRUE((*identity)->models.AllowsAll());
}

TEST_F(JwtVerifierTest, RefusesAnExpiredTokenOnceTheSkewHasPassed) {
  auto verifier = MakeVerifier({.clock_skew = absl::Seconds(60)});
  // Expired 59 s ago: within the skew.
  EXPECT_TRUE(verifier->Verify(Hs(ClaimsAt(Now() - 59))).ok());
  // now == exp + skew: expired.
  auto at_boundary = verifier->Verify(Hs(ClaimsAt(Now() - 60)));
  EXPECT_EQ(at_boundary.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(at_boundary.status().message(), HasSubstr("expired at"));
  EXPECT_FALSE(verifier->Verify(Hs(ClaimsAt(Now() - 3600))).ok());
}

TEST_F(JwtVerifierTest, AcceptsNotBeforeAtTheSkewBoundaryAndRefusesItBeyond) {
  auto verifier = MakeVerifier({.clock_skew = absl::Seconds(30)});
  EXPECT_TRUE(verifier->Verify(Hs(ClaimsAt(Now() + 3600, Now() + 30))).ok());
  auto early = verifier->Verify(Hs(ClaimsAt(Now() + 3600, Now() + 31)));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(early.status().message(), HasSubstr("not valid before"));
  // Once the clock reaches it, the same token is good.
  const std::string token = Hs(ClaimsAt(Now() + 3600, Now() + 100));
  EXPECT_FALSE(verifier->Verify(token).ok());
  clock_.Advance(absl::Seconds(70));
  EXPECT_TRUE(verifier->Verify(token).ok());
}

TEST_F(JwtVerifierTest, RefusesATokenIssuedInTheFuture) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"a\",\"aud\":\"ortserve\",\"iat\":" +
                             std::to_string(Now() + 120) + ",\"exp\":" + std::to_string(Now() + 3600) + "}";
  EXPECT_THAT(verifier->Verify(Hs(claims)).status().message(), HasSubstr("issued in the future"));
}

TEST_F(JwtVerifierTest, RefusesATokenWithoutExp) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"a\",\"aud\":\"ortserve\"}";
  EXPECT_THAT(verifier->Verify(Hs(claims)).status().message(), HasSubstr("no exp"));
}

TEST_F(JwtVerifierTest, RefusesALifetimeLongerThanTheMaximum) {
  // Claims() runs from iat = now - 10 s to exp = now + 1 h.
  auto roomy = MakeVerifier({.max_lifetime = absl::Hours(2)});
  EXPECT_TRUE(roomy->Verify(Hs(Claims())).ok());
  auto tight = MakeVerifier({.max_lifetime = absl::Hours(1)});
  EXPECT_THAT(tight->Verify(Hs(Claims())).status().message(), HasSubstr("lifetime exceeds"));
}

TEST_F(JwtVerifierTest, RefusesAWrongOrMissingAudience) {
  auto verifier = MakeVerifier();
  const std::string base = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"a\",\"exp\":" + std::to_string(Now() + 60);
  EXPECT_THAT(verifier->Verify(Hs(base + ",\"aud\":\"someone-else\"}")).status().message(), HasSubstr("aud"));
  EXPECT_THAT(verifier->Verify(Hs(base + ",\"aud\":[\"x\",\"y\"]}")).status().message(), HasSubstr("aud"));
  EXPECT_THAT(verifier->Verify(Hs(base + "}")).status().message(), HasSubstr("no aud"));
  EXPECT_FALSE(verifier->Verify(Hs(base + ",\"aud\":7}")).ok());
}

TEST_F(JwtVerifierTest, RefusesAWrongIssuer) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"https://evil.example\",\"sub\":\"a\",\"aud\":\"ortserve\",\"exp\":" +
                             std::to_string(Now() + 60) + "}";
  auto result = verifier->Verify(Hs(claims));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(result.status().message(), HasSubstr("issuer"));
}

TEST_F(JwtVerifierTest, NeverAcceptsAlgNone) {
  auto verifier = MakeVerifier();
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string header = std::string(R"({"alg":")") + alg + R"("})";
    const std::string token = Base64UrlEncode(header) + "." + Base64UrlEncode(Claims()) + ".";
    auto result = verifier->Verify(token);
    EXPECT_THAT(result.status().message(), HasSubstr("'none' is never accepted")) << alg;
  }
}

TEST_F(JwtVerifierTest, RefusesAnRs256TokenWhosePayloadWasChanged) {
  auto verifier = MakeVerifier();
  const std::string good = Rs(Claims(R"("scope":"infer")"));
  ASSERT_TRUE(verifier->Verify(good).ok());
  // Swap in a payload granting admin, keep header and signature.
  const size_t dot1 = good.find('.');
  const size_t dot2 = good.find('.', dot1 + 1);
  const std::string forged =
      good.substr(0, dot1 + 1) + Base64UrlEncode(Claims(R"("scope":"infer admin")")) + good.substr(dot2);
  EXPECT_THAT(verifier->Verify(forged).status().message(), HasSubstr("signature does not verify"));
  // A flipped signature bit is refused as well.
  std::string flipped = good;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifier->Verify(flipped).ok());
}

TEST_F(JwtVerifierTest, RefusesAnHs256TokenSignedWithTheRsaPublicKey) {
  auto verifier = MakeVerifier();
  // The classic confusion: HMAC keyed with the public key a server publishes.
  const std::string pem = RsaKey1().PublicPem();
  const std::string with_kid = SignHs256(R"({"alg":"HS256","kid":"r1"})", Claims(), pem);
  EXPECT_THAT(verifier->Verify(with_kid).status().message(), HasSubstr("is for RS256, the token says HS256"));
  // Without kid the only HS256 key is the real secret, which does not match.
  const std::string without_kid = SignHs256(R"({"alg":"HS256"})", Claims(), pem);
  EXPECT_THAT(verifier->Verify(without_kid).status().message(), HasSubstr("signature does not verify"));
  // And an RS256 header naming the HMAC key is refused before any crypto.
  EXPECT_THAT(verifier->Verify(RsaKey1().Sign(R"({"alg":"RS256","kid":"h1"})", Claims())).status().message(),
              HasSubstr("is for HS256"));
}

TEST_F(JwtVerifierTest, RefusesAnAlgorithmThisServerDoesNotAllow) {
  auto verifier = MakeVerifier({.algorithms = {JwtAlgorithm::kRS256}});
  EXPECT_THAT(verifier->Verify(Hs(Claims())).status().message(), HasSubstr("not accepted by this server"));
  EXPECT_TRUE(verifier->Verify(Rs(Claims())).ok());
  EXPECT_THAT(verifier->Verify(SignHs256(R"({"alg":"HS512"})", Claims(), kSecret)).status().message(),
              HasSubstr("not supported"));
}

TEST_F(JwtVerifierTest, RefusesAnOversizedTokenBeforeAnyCrypto) {
  auto verifier = MakeVerifier({.max_token_bytes = 1024});
  // A correctly signed token, made too long by a claim.
  const std::string token = Hs(Claims("\"pad\":\"" + std::string(1200, 'x') + "\""));
  auto result = verifier->Verify(token);
  EXPECT_THAT(result.status().message(), HasSubstr("longer than 1024 bytes"));
  auto verifier_large = MakeVerifier({.max_token_bytes = 4096});
  EXPECT_TRUE(verifier_large->Verify(token).ok());
}

TEST_F(JwtVerifierTest, RefusesMalformedTokens) {
  auto verifier = MakeVerifier();
  const std::string good = Hs(Claims());
  EXPECT_THAT(verifier->Verify("abc.def").status().message(), HasSubstr("not a JWS compact token"));
  EXPECT_THAT(verifier->Verify(good + ".x").status().message(), HasSubstr("not a JWS compact token"));
  EXPECT_THAT(verifier->Verify(good + "=").status().message(), HasSubstr("base64url"));
  EXPECT_THAT(verifier->Verify("e30.e30.e30").status().message(), HasSubstr("no alg"));  // {}.{}.{}
  EXPECT_THAT(verifier->Verify(Base64UrlEncode("[1]") + ".e30.AA").status().message(), HasSubstr("header"));
  EXPECT_THAT(verifier->Verify(Base64UrlEncode("{\"alg\":\"HS256\"") + ".e30.AA").status().message(),
              HasSubstr("header"));
  EXPECT_FALSE(verifier->Verify("").ok());
}

TEST_F(JwtVerifierTest, RefusesRepeatedClaimsAndHeaderMembers) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"" + std::string(kIssuer) +
                             "\",\"sub\":\"alice\",\"sub\":\"admin\",\"aud\":\"ortserve\",\"exp\":" +
                             std::to_string(Now() + 60) + "}";
  EXPECT_THAT(verifier->Verify(Hs(claims)).status().message(), HasSubstr("repeats a member"));
  EXPECT_THAT(verifier->Verify(Hs(Claims(), R"({"alg":"HS256","alg":"none","kid":"h1"})")).status().message(),
              HasSubstr("repeats a member"));
}

TEST_F(JwtVerifierTest, RefusesCriticalHeaderExtensionsAndForeignTypes) {
  auto verifier = MakeVerifier();
  EXPECT_THAT(verifier->Verify(Hs(Claims(), R"({"alg":"HS256","kid":"h1","crit":["b64"],"b64":false})"))
                  .status()
                  .message(),
              HasSubstr("crit"));
  EXPECT_THAT(verifier->Verify(Hs(Claims(), R"({"alg":"HS256","kid":"h1","typ":"dpop+jwt"})")).status().message(),
              HasSubstr("typ"));
  EXPECT_TRUE(verifier->Verify(Hs(Claims(), R"({"alg":"HS256","kid":"h1","typ":"at+jwt"})")).ok());
}

TEST_F(JwtVerifierTest, RefusesAnUnknownKidAndAmbiguousKeylessTokens) {
  ReplaceFile(keys_path_, Jwks({HmacJwk("h1", kSecret), RsaKey1().PublicJwk("r1"), RsaKey2().PublicJwk("r2")}));
  auto verifier = MakeVerifier();
  EXPECT_THAT(verifier->Verify(Hs(Claims(), R"({"alg":"HS256","kid":"h9"})")).status().message(),
              HasSubstr("kid is not in the key set"));
  // Two RS256 keys and no kid: which one is meant is not guessed.
  EXPECT_THAT(verifier->Verify(RsaKey1().Sign(R"({"alg":"RS256"})", Claims())).status().message(),
              HasSubstr("no kid and the key set has 2 RS256 keys"));
  // One HS256 key: a token without kid uses it.
  EXPECT_TRUE(verifier->Verify(Hs(Claims(), R"({"alg":"HS256"})")).ok());
  EXPECT_TRUE(verifier->Verify(RsaKey2().Sign(R"({"alg":"RS256","kid":"r2"})", Claims())).ok());
  // r2's signature under r1's kid does not verify.
  EXPECT_FALSE(verifier->Verify(RsaKey2().Sign(R"({"alg":"RS256","kid":"r1"})", Claims())).ok());
}

TEST_F(JwtVerifierTest, ReadsScopesFromScpAndHonoursTheScopePrefix) {
  auto verifier = MakeVerifier({.scope_prefix = "ortserve:"});
  auto identity = verifier->Verify(
      Hs(Claims(R"("scope":"infer ortserve:metrics","scp":["ortserve:model_control","admin"])")));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->scopes, (ScopeSet{Scope::kMetrics, Scope::kModelControl}));
  EXPECT_FALSE(verifier->Verify(Hs(Claims(R"("scp":[1])"))).ok());
  EXPECT_FALSE(verifier->Verify(Hs(Claims(R"("scope":["infer"])"))).ok());
}

TEST_F(JwtVerifierTest, RefusesABadModelsClaimOrTenant) {
  auto verifier = MakeVerifier();
  EXPECT_THAT(verifier->Verify(Hs(Claims(R"("ortserve_models":"iris")"))).status().message(), HasSubstr("array"));
  EXPECT_THAT(verifier->Verify(Hs(Claims(R"("ortserve_models":["ir*is"])"))).status().message(),
              HasSubstr("before its end"));
  EXPECT_FALSE(verifier->Verify(Hs(Claims(R"("tenant":7)"))).ok());
  EXPECT_FALSE(verifier->Verify(Hs(Claims(R"("tenant":"a\nb")"))).ok());
  // An empty list allows no model.
  auto none = verifier->Verify(Hs(Claims(R"("ortserve_models":[])")));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE((*none)->models.Allows("iris"));
}

TEST_F(JwtVerifierTest, RefusesASubjectWithControlCharacters) {
  auto verifier = MakeVerifier();
  const std::string claims = "{\"iss\":\"" + std::string(kIssuer) + "\",\"sub\":\"a\\u0000b\",\"aud\":\"ortserve\",\"exp\":" +
                             std::to_string(Now() + 60) + "}";
  EXPECT_THAT(verifier->Verify(Hs(claims)).status().message(), HasSubstr("sub"));
}

TEST_F(JwtVerifierTest, KeyRotationPicksUpANewKeyAndDropsTheRemovedOne) {
  auto verifier = MakeVerifier({.check_interval = absl::Seconds(5)});
  const std::string old_token = Rs(Claims());
  const std::string new_token = RsaKey2().Sign(R"({"alg":"RS256","kid":"r2"})", Claims());
  ASSERT_TRUE(verifier->Verify(old_token).ok());
  ASSERT_FALSE(verifier->Verify(new_token).ok());

  ReplaceFile(keys_path_, Jwks({RsaKey2().PublicJwk("r2")}));
  // Not yet checked: the old set is still in service.
  EXPECT_TRUE(verifier->Verify(old_token).ok());
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(verifier->Verify(new_token).ok());
  EXPECT_THAT(verifier->Verify(old_token).status().message(), HasSubstr("kid is not in the key set"));
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_TRUE(reloads_[0].ok());
}

TEST_F(JwtVerifierTest, AMalformedKeySetKeepsTheLastGoodOneAndIsReported) {
  auto verifier = MakeVerifier({.check_interval = absl::Seconds(1)});
  const std::string token = Rs(Claims());
  ReplaceFile(keys_path_, "{\"keys\": [ {\"kty\": \"RSA\", ");  // Cut short.
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(verifier->Verify(token).ok());
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_THAT(reloads_[0].message(), HasSubstr("not valid JSON"));
  EXPECT_FALSE(verifier->CheckNow().ok());
  EXPECT_EQ(reloads_.size(), 1u);  // The same error is reported once.
}

TEST(JwtKeySetTest, SkipsKeysOfOtherTypesAndUses) {
  const std::string jwks = Jwks({
      R"({"kty":"EC","kid":"e1","crv":"P-256","x":"AA","y":"AA"})",
      RsaKey1().PublicJwk("enc1", "RSA-OAEP"),
      RsaKey1().PublicJwk("ps", "PS256"),
      HmacJwk("h512", kSecret, "HS512"),
      RsaKey1().PublicJwk("r1", ""),
  });
  auto set = JwtKeySet::Parse(jwks);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 1u);
  EXPECT_EQ((*set)->skipped(), 4u);
  ASSERT_NE((*set)->Find("r1"), nullptr);
  EXPECT_EQ((*set)->Find("r1")->alg, JwtAlgorithm::kRS256);
}

TEST(JwtKeySetTest, RefusesWeakOrMalformedKeys) {
  EXPECT_THAT(JwtKeySet::Parse(Jwks({HmacJwk("h", "short")})).status().message(), HasSubstr("32 to 1024 bytes"));
  const TestRsaKey small(1024);
  EXPECT_THAT(JwtKeySet::Parse(Jwks({small.PublicJwk("r")})).status().message(), HasSubstr("1024 bits"));
  EXPECT_THAT(JwtKeySet::Parse(Jwks({HmacJwk("h", kSecret), HmacJwk("h", kSecret)})).status().message(),
              HasSubstr("appears twice"));
  EXPECT_THAT(JwtKeySet::Parse(Jwks({R"({"kty":"oct","k":"AAAA"})"})).status().message(), HasSubstr("kid"));
  EXPECT_THAT(JwtKeySet::Parse(Jwks({R"({"kty":"oct","kid":"h","k":"not base64!"})"})).status().message(),
              HasSubstr("base64url"));
  EXPECT_THAT(JwtKeySet::Parse(Jwks({})).status().message(), HasSubstr("no HS256 or RS256"));
  EXPECT_THAT(JwtKeySet::Parse("[]").status().message(), HasSubstr("no \"keys\" array"));
}

TEST(JwtVerifierOptionsTest, RefusesOptionsOutOfRange) {
  ScopedTempDir dir;
  ReplaceFile(dir.File("k.json"), Jwks({HmacJwk("h1", kSecret)}));
  const auto create = [&](auto mutate) {
    JwtVerifier::Options options{.keys_path = dir.File("k.json"), .issuers = {kIssuer}, .audiences = {kAudience}};
    mutate(options);
    return JwtVerifier::Create(std::move(options)).status();
  };
  EXPECT_TRUE(create([](auto&) {}).ok());
  EXPECT_FALSE(create([](auto& o) { o.issuers.clear(); }).ok());
  EXPECT_FALSE(create([](auto& o) { o.audiences.clear(); }).ok());
  EXPECT_FALSE(create([](auto& o) { o.clock_skew = absl::Minutes(6); }).ok());
  EXPECT_FALSE(create([](auto& o) { o.max_token_bytes = 100; }).ok());
  EXPECT_EQ(create([](auto& o) { o.keys_path += ".missing"; }).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ortserve::admission
