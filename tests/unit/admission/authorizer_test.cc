// SPDX-License-Identifier: Apache-2.0
#include "admission/authorizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "admission/identity.h"

namespace ortserve::admission {
namespace {

using ::testing::HasSubstr;

Identity Make(ScopeSet scopes, std::vector<std::string> models = {}, bool restrict_models = false) {
  Identity identity;
  identity.kind = Identity::Kind::kApiKey;
  identity.id = "caller";
  identity.scopes = scopes;
  if (restrict_models) identity.models = *ModelAllowList::Only(std::move(models));
  return identity;
}

TEST(AuthorizerTest, NamesTheMissingScope) {
  const Authorizer authorizer({});
  const absl::Status status = authorizer.Authorize(Make({Scope::kInfer}), RouteClass::kAdmin);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("credential 'caller' lacks the scope for admin routes (needs admin; has infer)"));
}

TEST(AuthorizerTest, MetadataNeedsInferOrModelControl) {
  const Authorizer authorizer({});
  EXPECT_TRUE(authorizer.Authorize(Make({Scope::kInfer}), RouteClass::kMetadata, "iris").ok());
  EXPECT_TRUE(authorizer.Authorize(Make({Scope::kModelControl}), RouteClass::kMetadata, "iris").ok());
  EXPECT_FALSE(authorizer.Authorize(Make({Scope::kAdmin, Scope::kMetrics}), RouteClass::kMetadata, "iris").ok());
}

TEST(AuthorizerTest, TheModelAllowListLimitsInferenceMetadataAndModelControl) {
  const Authorizer authorizer({});
  const Identity identity = Make({Scope::kInfer, Scope::kModelControl}, {"iris", "sae_*"}, true);
  EXPECT_TRUE(authorizer.Authorize(identity, RouteClass::kInfer, "iris").ok());
  EXPECT_TRUE(authorizer.Authorize(identity, RouteClass::kInfer, "sae_notes").ok());
  const absl::Status refused = authorizer.Authorize(identity, RouteClass::kInfer, "densenet");
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("may not use model 'densenet'"));
  EXPECT_FALSE(authorizer.Authorize(identity, RouteClass::kModelControl, "densenet").ok());
  EXPECT_FALSE(authorizer.Authorize(identity, RouteClass::kMetadata, "densenet").ok());
  // Routes that name no model (server metadata, repository index) pass; the
  // caller filters the models they list.
  EXPECT_TRUE(authorizer.Authorize(identity, RouteClass::kModelControl).ok());
  // A hostile model name is cut in the message.
  EXPECT_LT(authorizer.Authorize(identity, RouteClass::kInfer, std::string(10000, 'x')).message().size(), 300u);
}

TEST(AuthorizerTest, HealthIsOpenByDefaultAndCanRequireACredential) {
  const Authorizer open({});
  const Authorizer closed({.open_health = false});
  EXPECT_TRUE(open.IsOpen(RouteClass::kHealth));
  EXPECT_FALSE(closed.IsOpen(RouteClass::kHealth));
  // Closed, any authenticated identity may probe.
  EXPECT_TRUE(closed.Authorize(Make({}), RouteClass::kHealth).ok());
}

TEST(AuthorizerTest, MetricsNeedTheMetricsScopeUnlessOpened) {
  EXPECT_FALSE(Authorizer({}).IsOpen(RouteClass::kMetrics));
  EXPECT_FALSE(Authorizer({}).Authorize(Make({Scope::kAdmin}), RouteClass::kMetrics).ok());
  EXPECT_TRUE(Authorizer({}).Authorize(Make({Scope::kMetrics}), RouteClass::kMetrics).ok());
  EXPECT_TRUE(Authorizer({.open_metrics = true}).IsOpen(RouteClass::kMetrics));
}

TEST(AuthorizerTest, TheAnonymousIdentityOfAnOpenServerPassesEverything) {
  const Authorizer authorizer({.open_health = false});
  for (RouteClass route : {RouteClass::kHealth, RouteClass::kMetadata, RouteClass::kInfer, RouteClass::kModelControl,
                           RouteClass::kAdmin, RouteClass::kMetrics}) {
    EXPECT_TRUE(authorizer.Authorize(*AnonymousIdentity(), route, "any").ok()) << RouteClassName(route);
  }
}

TEST(ScopeTest, ParsesAndPrintsScopeLists) {
  auto set = ParseScopeList("admin,infer");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->ToString(), "infer,admin");
  EXPECT_TRUE(ParseScopeList("")->empty());
  EXPECT_THAT(ParseScopeList("infer,").status().message(), HasSubstr("empty scope"));
  EXPECT_THAT(ParseScopeList("Infer").status().message(), HasSubstr("unknown scope 'Infer'"));
  EXPECT_EQ(ScopeSet::All().ToString(), "infer,model_control,admin,metrics");
}

TEST(ModelAllowListTest, MatchesNamesAndPrefixes) {
  const ModelAllowList all;
  EXPECT_TRUE(all.Allows("anything"));
  EXPECT_EQ(all.ToString(), "*");
  auto star = ModelAllowList::Only({"*"});
  ASSERT_TRUE(star.ok());
  EXPECT_TRUE(star->Allows("x"));
  auto some = ModelAllowList::Only({"iris", "bert_*"});
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->Allows("iris"));
  EXPECT_FALSE(some->Allows("iris2"));
  EXPECT_FALSE(some->Allows("iri"));
  EXPECT_TRUE(some->Allows("bert_"));
  EXPECT_TRUE(some->Allows("bert_base"));
  EXPECT_FALSE(some->Allows("bert"));
  EXPECT_EQ(some->ToString(), "iris,bert_*");
  EXPECT_FALSE(ModelAllowList::Only({})->Allows("iris"));
  EXPECT_FALSE(ModelAllowList::Only({"a b"}).ok());
  EXPECT_FALSE(ModelAllowList::Only({"a,b"}).ok());
  EXPECT_FALSE(ModelAllowList::Only({"*a"}).ok());
  EXPECT_FALSE(ModelAllowList::Only({std::string(300, 'a')}).ok());
}

}  // namespace
}  // namespace ortserve::admission
