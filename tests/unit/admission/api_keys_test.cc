// SPDX-License-Identifier: Apache-2.0
#include "admission/api_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "admission/crypto.h"
#include "fakes/fake_clock.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

GeneratedApiKey Generate(std::string id, ScopeSet scopes = {Scope::kInfer}) {
  auto key = GenerateApiKey({.id = std::move(id), .scopes = scopes});
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<ApiKeyStore> MakeStore(absl::Duration interval = absl::Seconds(2)) {
    auto store = ApiKeyStore::Create({.path = path_,
                                      .check_interval = interval,
                                      .clock = &clock_,
                                      .on_reload = [this](const absl::Status& s) { reloads_.push_back(s); }});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  ScopedTempDir dir_;
  std::string path_ = dir_.File("keys");
  ortserve::testing::FakeClock clock_{absl::FromUnixSeconds(1750000000)};
  std::vector<absl::Status> reloads_;
};

TEST_F(ApiKeyStoreTest, AGeneratedKeyVerifiesAndCarriesItsGrants) {
  auto models = ModelAllowList::Only({"iris", "sae_*"});
  ASSERT_TRUE(models.ok());
  auto key = GenerateApiKey({.id = "ci.runner-1",
                             .scopes = {Scope::kInfer, Scope::kModelControl},
                             .models = *models,
                             .tenant = "acme",
                             .expires = absl::FromUnixSeconds(1760000000)});
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_THAT(key->key, StartsWith("ortsk_ci.runner-1_"));
  EXPECT_EQ(key->key.size(), std::string("ortsk_ci.runner-1_").size() + 43);
  // The line holds the hash, never the key or its secret part.
  EXPECT_THAT(key->line, Not(HasSubstr(key->key.substr(key->key.size() - 43))));
  EXPECT_THAT(key->line, HasSubstr("scopes=infer,model_control models=iris,sae_* tenant=acme "
                                   "expires=2025-10-09T08:53:20Z"));
  ReplaceFile(path_, "# keys\n" + key->line + "\n");
  auto store = MakeStore();
  auto identity = store->Verify(key->key);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->kind, Identity::Kind::kApiKey);
  EXPECT_EQ((*identity)->id, "ci.runner-1");
  EXPECT_EQ((*identity)->tenant, "acme");
  EXPECT_EQ((*identity)->scopes, (ScopeSet{Scope::kInfer, Scope::kModelControl}));
  EXPECT_TRUE((*identity)->models.Allows("sae_v3"));
  EXPECT_FALSE((*identity)->models.Allows("other"));
}

TEST_F(ApiKeyStoreTest, RefusesAWrongSecretAnUnknownIdAndMalformedKeysWithoutEchoingThem) {
  const GeneratedApiKey key = Generate("svc");
  ReplaceFile(path_, key.line + "\n");
  auto store = MakeStore();
  std::string wrong = key.key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  auto result = store->Verify(wrong);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(result.status().message(), HasSubstr("not recognised"));
  EXPECT_THAT(result.status().message(), Not(HasSubstr(wrong.substr(10))));
  // The same secret under another id (the hash binds the whole key).
  std::string other_id = key.key;
  other_id.replace(0, std::string("ortsk_svc").size(), "ortsk_svd");
  EXPECT_THAT(store->Verify(other_id).status().message(), HasSubstr("not recognised"));
  for (const std::string& bad : {std::string("ortsk_svc_short"), std::string("svc_") + std::string(43, 'A'),
                                key.key + "A", std::string("ortsk__") + std::string(43, 'A'),
                                key.key.substr(0, key.key.size() - 1) + "!"}) {
    EXPECT_EQ(store->Verify(bad).status().code(), absl::StatusCode::kUnauthenticated) << bad;
  }
  EXPECT_TRUE(store->Verify(key.key).ok());
}

TEST_F(ApiKeyStoreTest, RefusesAKeyFromItsExpiryOn) {
  auto key = GenerateApiKey({.id = "temp", .scopes = {Scope::kInfer}, .expires = clock_.Now() + absl::Hours(1)});
  ASSERT_TRUE(key.ok());
  ReplaceFile(path_, key->line + "\n");
  auto store = MakeStore();
  EXPECT_TRUE(store->Verify(key->key).ok());
  clock_.Advance(absl::Hours(1));
  auto result = store->Verify(key->key);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(result.status().message(), HasSubstr("API key 'temp' expired at"));
}

TEST_F(ApiKeyStoreTest, AReloadPicksUpANewKeyAndDropsARemovedOne) {
  const GeneratedApiKey a = Generate("a");
  const GeneratedApiKey b = Generate("b");
  ReplaceFile(path_, a.line + "\n");
  auto store = MakeStore(absl::Seconds(2));
  ASSERT_TRUE(store->Verify(a.key).ok());

  ReplaceFile(path_, b.line + "\n");
  clock_.Advance(absl::Seconds(1));  // Before the next check.
  EXPECT_TRUE(store->Verify(a.key).ok());
  EXPECT_FALSE(store->Verify(b.key).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(store->Verify(b.key).ok());
  EXPECT_FALSE(store->Verify(a.key).ok());
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_TRUE(reloads_[0].ok());
  EXPECT_EQ(store->size(), 1u);
}

TEST_F(ApiKeyStoreTest, AMalformedKeyFileKeepsTheOldKeysUntilItIsFixed) {
  const GeneratedApiKey a = Generate("a");
  const GeneratedApiKey b = Generate("b");
  ReplaceFile(path_, a.line + "\n");
  auto store = MakeStore(absl::Seconds(1));

  ReplaceFile(path_, b.line + "\nid=c hash=hmac-sha256:00:00 scopes=infer\n");
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(store->Verify(a.key).ok());
  EXPECT_FALSE(store->Verify(b.key).ok());
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_THAT(reloads_[0].message(), HasSubstr("line 2"));
  EXPECT_THAT(reloads_[0].message(), HasSubstr("hash is not"));

  ReplaceFile(path_, b.line + "\n");
  EXPECT_TRUE(store->CheckNow().ok());
  EXPECT_TRUE(store->Verify(b.key).ok());
  EXPECT_FALSE(store->Verify(a.key).ok());
  ASSERT_EQ(reloads_.size(), 2u);
  EXPECT_TRUE(reloads_[1].ok());
}

TEST_F(ApiKeyStoreTest, AMissingFileAtStartIsAnError) {
  EXPECT_EQ(ApiKeyStore::Create({.path = path_, .clock = &clock_}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ApiKeySetTest, ParsesCommentsBlankLinesAndOptionalFields) {
  const std::string hash = ApiKeyHashField("ortsk_a_" + std::string(43, 'A'), std::string(16, 's'));
  auto set = ApiKeySet::Parse("# comment\n\n  id=a hash=" + hash +
                              " scopes=admin   # trailing comment\r\n\tid=b hash=" + hash + " scopes=metrics\n");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 2u);
  ASSERT_NE((*set)->Find("a"), nullptr);
  EXPECT_EQ((*set)->Find("a")->identity->scopes, ScopeSet{Scope::kAdmin});
  EXPECT_TRUE((*set)->Find("a")->identity->models.AllowsAll());
  EXPECT_EQ((*set)->Find("a")->identity->expires, absl::InfiniteFuture());
}

TEST(ApiKeySetTest, NamesTheLineAndFieldOfEachMistake) {
  const std::string hash = ApiKeyHashField("k", std::string(16, 's'));
  const auto error = [&](const std::string& text) { return std::string(ApiKeySet::Parse(text).status().message()); };
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer color=red"), HasSubstr("line 1: unknown field 'color'"));
  EXPECT_THAT(error("\nid=a hash=" + hash), HasSubstr("line 2: id, hash and scopes are required"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer\nid=a hash=" + hash + " scopes=infer"),
              HasSubstr("line 2: key id 'a' appears twice"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer,root"), HasSubstr("unknown scope 'root'"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes="), HasSubstr("scopes is empty"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer id=b"), HasSubstr("field 'id' is repeated"));
  EXPECT_THAT(error("id=a hash=sha1:abc scopes=infer"), HasSubstr("hash is not"));
  EXPECT_THAT(error("id=a/b hash=" + hash + " scopes=infer"), HasSubstr("outside [A-Za-z0-9._-]"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer expires=tomorrow"), HasSubstr("RFC 3339"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer models=a*b"), HasSubstr("before its end"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer models=a,,b"), HasSubstr("empty model pattern"));
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=infer tenant=a/b"), HasSubstr("tenant"));
  EXPECT_THAT(error(std::string(5000, '#')), HasSubstr("longer than 4096"));
  EXPECT_THAT(error("justaword"), HasSubstr("not name=value"));
  // No message repeats the hash.
  EXPECT_THAT(error("id=a hash=" + hash + " scopes=nope"), Not(HasSubstr(hash.substr(12))));
}

TEST(ApiKeyHashTest, TheDocumentedOpensslRecipeReproducesTheHash) {
  const std::string key = "ortsk_ci_" + std::string(43, 'Q');
  const std::string salt = "0123456789abcdef";
  const std::string field = ApiKeyHashField(key, salt);
  const std::string command = "printf %s '" + key + "' | openssl dgst -sha256 -mac HMAC -macopt hexkey:" +
                              HexEncode(salt) + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[256] = {};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, pipe);
  ::pclose(pipe);
  std::string out(buf, n);
  ASSERT_NE(out.find("= "), std::string::npos) << out;
  std::string digest = out.substr(out.find("= ") + 2);
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
  EXPECT_EQ(field, "hmac-sha256:" + HexEncode(salt) + ":" + digest);
}

TEST(ApiKeyGenerateTest, RefusesABadSpec) {
  EXPECT_FALSE(GenerateApiKey({.id = "", .scopes = {Scope::kInfer}}).ok());
  EXPECT_FALSE(GenerateApiKey({.id = std::string(65, 'a'), .scopes = {Scope::kInfer}}).ok());
  EXPECT_FALSE(GenerateApiKey({.id = "a", .scopes = {}}).ok());
  EXPECT_FALSE(GenerateApiKey({.id = "a", .scopes = {Scope::kInfer}, .tenant = "a b"}).ok());
  // Two keys never share a secret.
  EXPECT_NE(Generate("a").key, Generate("a").key);
}

}  // namespace
}  // namespace ortserve::admission
