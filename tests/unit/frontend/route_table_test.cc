// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/route_table.h"

#include "gtest/gtest.h"

namespace ortserve::frontend {
namespace {

absl::StatusOr<RouteMatch> Get(std::string_view target) { return MatchRoute(Method::kGet, "GET", target); }
absl::StatusOr<RouteMatch> Post(std::string_view target) { return MatchRoute(Method::kPost, "POST", target); }

TEST(RouteTableTest, MatchesEveryKServeEndpointWithItsCaptures) {
  EXPECT_EQ(Get("/v2")->id, RouteId::kServerMetadata);
  EXPECT_EQ(Get("/v2/health/live")->id, RouteId::kHealthLive);
  EXPECT_EQ(Get("/v2/health/ready")->id, RouteId::kHealthReady);
  EXPECT_EQ(Get("/v2/models/stats")->id, RouteId::kAllStats);
  auto infer = Post("/v2/models/iris/versions/3/infer");
  ASSERT_TRUE(infer.ok()) << infer.status();
  EXPECT_EQ(infer->id, RouteId::kModelInfer);
  EXPECT_EQ(infer->model, "iris");
  EXPECT_EQ(infer->version, "3");
  auto metadata = Get("/v2/models/iris");
  EXPECT_EQ(metadata->id, RouteId::kModelMetadata);
  EXPECT_EQ(metadata->version, "");
  EXPECT_EQ(Get("/v2/models/iris/versions/2")->id, RouteId::kModelMetadata);
  EXPECT_EQ(Get("/v2/models/iris/versions/2")->version, "2");
  EXPECT_EQ(Get("/v2/models/iris/ready")->id, RouteId::kModelReady);
  EXPECT_EQ(Get("/v2/models/iris/config")->id, RouteId::kModelConfig);
  EXPECT_EQ(Get("/v2/models/iris/versions/1/stats")->id, RouteId::kModelStats);
  EXPECT_EQ(Post("/v2/repository/index")->id, RouteId::kRepositoryIndex);
  auto load = Post("/v2/repository/models/iris/load");
  EXPECT_EQ(load->id, RouteId::kRepositoryLoad);
  EXPECT_EQ(load->model, "iris");
  EXPECT_EQ(Post("/v2/repository/models/iris/unload")->id, RouteId::kRepositoryUnload);
  EXPECT_EQ(Post("/api/v1/sae/analyze")->id, RouteId::kSaeAnalyze);
  EXPECT_EQ(Post("/embed")->id, RouteId::kTeiEmbed);
  EXPECT_EQ(Post("/predict")->id, RouteId::kTeiPredict);
  EXPECT_EQ(Post("/v1/embeddings")->id, RouteId::kOpenAiEmbeddings);
}

TEST(RouteTableTest, DecodesPercentEscapesInNamesAndKeepsTheQuery) {
  auto route = Post("/v2/models/my%20model/infer?x=1");
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->model, "my model");
  EXPECT_EQ(route->query, "x=1");
  // Empty segments and a trailing slash are ignored.
  EXPECT_EQ(Get("/v2//models/iris/")->model, "iris");
  EXPECT_EQ(Post("/embed/")->id, RouteId::kTeiEmbed);
  EXPECT_EQ(Get("/v2/admin/profile/cpu?seconds=2&hz=100")->query, "seconds=2&hz=100");
}

TEST(RouteTableTest, RefusesMalformedTargetsAndNames) {
  EXPECT_EQ(Get("/v2/models/bad%zzname").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("/v2/models/%00evil").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("not-a-path").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RouteTableTest, UnknownPathsAreNotFoundAndWrongMethodsAreNotAllowed) {
  for (std::string_view target : {"/", "/v3", "/v2/health/dead", "/v2/models", "/v2/models/m/versions/1/x",
                                  "/v2/models/m/infer/more", "/api/v1/sae"}) {
    auto route = Post(target);
    EXPECT_EQ(route.status().code(), absl::StatusCode::kNotFound) << target;
    EXPECT_NE(std::string(route.status().message()).find(target), std::string::npos);
  }
  auto wrong = Get("/v2/models/iris/infer");
  EXPECT_TRUE(IsMethodNotAllowed(wrong.status()));
  EXPECT_EQ(wrong.status().message(), "method GET is not allowed on /v2/models/iris/infer");
  EXPECT_TRUE(IsMethodNotAllowed(MatchRoute(Method::kOther, "PUT", "/v2/logging").status()));
  EXPECT_FALSE(IsMethodNotAllowed(Get("/nope").status()));
}

TEST(RouteTableTest, CollectionRoutesCaptureNameAndDocumentIdAndTakePutAndDelete) {
  auto put = MatchRoute(Method::kPut, "PUT", "/v1/collections/reports");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->id, RouteId::kCollection);
  EXPECT_EQ(put->model, "reports");
  EXPECT_EQ(MatchRoute(Method::kDelete, "DELETE", "/v1/collections/reports")->id, RouteId::kCollection);
  EXPECT_EQ(Get("/v1/collections")->id, RouteId::kCollections);
  EXPECT_EQ(Post("/v1/collections/reports/documents")->id, RouteId::kCollectionDocuments);
  EXPECT_EQ(Post("/v1/collections/reports/query")->id, RouteId::kCollectionQuery);
  auto doc = MatchRoute(Method::kDelete, "DELETE", "/v1/collections/reports/documents/a%2Fb%20c");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->id, RouteId::kCollectionDocument);
  EXPECT_EQ(doc->model, "reports");
  EXPECT_EQ(doc->version, "a/b c");
  EXPECT_EQ(Get("/v1/collections/reports/documents/x")->version, "x");
  EXPECT_TRUE(IsMethodNotAllowed(MatchRoute(Method::kOther, "PATCH", "/v1/collections/reports").status()));
  EXPECT_TRUE(IsMethodNotAllowed(Post("/v1/collections/reports").status()));
  EXPECT_TRUE(IsMethodNotAllowed(MatchRoute(Method::kPut, "PUT", "/v2/logging").status()));
  EXPECT_TRUE(IsMethodNotAllowed(MatchRoute(Method::kDelete, "DELETE", "/v1/collections/reports/query").status()));
  EXPECT_EQ(Get("/v1/collections/reports/documents/%00").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ortserve::frontend
