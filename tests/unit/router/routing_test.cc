// SPDX-License-Identifier: Apache-2.0
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "router/shadow.h"
#include "router/version_router.h"

namespace ortserve::router {
namespace {

class MapHeaders final : public RequestHeaders {
 public:
  std::optional<std::string_view> Get(std::string_view name) const override {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> values;
};

config::ModelRouting Split(std::vector<std::pair<int64_t, double>> splits) {
  config::ModelRouting routing;
  for (auto [version, weight] : splits) {
    auto* s = routing.add_split();
    s->set_version(version);
    s->set_weight(weight);
  }
  return routing;
}

TEST(StickyPointTest, IsStableAndInUnitInterval) {
  EXPECT_EQ(StickyPoint("patient-17"), StickyPoint("patient-17"));
  EXPECT_NE(StickyPoint("patient-17"), StickyPoint("patient-18"));
  for (int i = 0; i < 1000; ++i) {
    const double p = StickyPoint(std::to_string(i));
    EXPECT_GE(p, 0.0);
    EXPECT_LT(p, 1.0);
  }
}

TEST(StickyPointTest, SpreadsSequentialKeysEvenly) {
  int low = 0;
  for (int i = 0; i < 10000; ++i) low += StickyPoint("user-" + std::to_string(i)) < 0.5 ? 1 : 0;
  EXPECT_NEAR(low, 5000, 300);  // ~6 standard deviations.
}

TEST(PickWeightedTest, LaysSplitsOutInConfigOrder) {
  const auto routing = Split({{1, 90}, {2, 10}});
  auto all = [](int64_t) { return true; };
  EXPECT_EQ(PickWeighted(routing, 0.0, all), 1);
  EXPECT_EQ(PickWeighted(routing, 0.899, all), 1);
  EXPECT_EQ(PickWeighted(routing, 0.9, all), 2);
  EXPECT_EQ(PickWeighted(routing, 0.999999, all), 2);
}

TEST(PickWeightedTest, GivesAnUnreadyVersionsWeightToTheOthers) {
  const auto routing = Split({{1, 50}, {2, 25}, {3, 25}});
  auto not_two = [](int64_t v) { return v != 2; };
  EXPECT_EQ(PickWeighted(routing, 0.6, not_two), 1);   // 0.6 * 75 = 45 < 50.
  EXPECT_EQ(PickWeighted(routing, 0.7, not_two), 3);   // 52.5 >= 50.
  EXPECT_EQ(PickWeighted(routing, 0.5, [](int64_t) { return false; }), 0);
}

TEST(ResolveVersionTest, ExplicitVersionWinsOverHeaderAndSplit) {
  const auto routing = Split({{1, 1}, {2, 1}});
  MapHeaders headers;
  headers.values["x-model-version"] = "2";
  InferRequest request;
  request.model_version = "1";
  request.headers = &headers;
  const Resolution r = ResolveVersion(routing, request, 0.99, [](int64_t) { return true; });
  EXPECT_EQ(r.choice.reason, RouteReason::kExplicit);
  EXPECT_EQ(r.version_text, "1");
}

TEST(ResolveVersionTest, OverrideHeaderWinsOverSplit) {
  const auto routing = Split({{1, 1}, {2, 1}});
  MapHeaders headers;
  headers.values["x-model-version"] = "7";
  InferRequest request;
  request.headers = &headers;
  const Resolution r = ResolveVersion(routing, request, 0.0, [](int64_t) { return true; });
  EXPECT_EQ(r.choice.reason, RouteReason::kOverride);
  EXPECT_EQ(r.version_text, "7");
}

TEST(ResolveVersionTest, StickyHeaderAlwaysPicksTheSameVersion) {
  auto routing = Split({{1, 50}, {2, 50}});
  routing.set_sticky_header("X-Patient-Id");
  std::map<int64_t, int> seen;
  for (int user = 0; user < 200; ++user) {
    MapHeaders headers;
    headers.values["x-patient-id"] = "patient-" + std::to_string(user);
    InferRequest request;
    request.headers = &headers;
    int64_t first = 0;
    for (double draw : {0.01, 0.5, 0.99}) {  // The random draw must not matter.
      const Resolution r = ResolveVersion(routing, request, draw, [](int64_t) { return true; });
      EXPECT_EQ(r.choice.reason, RouteReason::kSticky);
      if (first == 0) first = r.choice.version;
      EXPECT_EQ(r.choice.version, first) << "user " << user;
    }
    ++seen[first];
  }
  EXPECT_GT(seen[1], 60);  // Both versions get users.
  EXPECT_GT(seen[2], 60);
}

TEST(ResolveVersionTest, StickyParameterOfAnyTypeKeysTheSplit) {
  auto routing = Split({{1, 50}, {2, 50}});
  routing.set_sticky_parameter("patient_id");
  InferRequest by_int;
  by_int.parameters.Set("patient_id", int64_t{12345});
  InferRequest by_text;
  by_text.parameters.Set("patient_id", std::string("12345"));
  auto all = [](int64_t) { return true; };
  const auto a = ResolveVersion(routing, by_int, 0.0, all);
  const auto b = ResolveVersion(routing, by_text, 0.99, all);
  EXPECT_EQ(a.choice.reason, RouteReason::kSticky);
  EXPECT_EQ(a.choice.version, b.choice.version);  // Keyed by the decimal text.
}

TEST(ResolveVersionTest, RequestWithoutStickyKeyIsSplitAtRandom) {
  auto routing = Split({{1, 50}, {2, 50}});
  routing.set_sticky_header("x-patient-id");
  InferRequest request;
  auto all = [](int64_t) { return true; };
  EXPECT_EQ(ResolveVersion(routing, request, 0.1, all).choice.version, 1);
  EXPECT_EQ(ResolveVersion(routing, request, 0.9, all).choice.version, 2);
  EXPECT_EQ(ResolveVersion(routing, request, 0.9, all).choice.reason, RouteReason::kSplit);
}

TEST(ResolveVersionTest, AFrontEndsStickyKeyKeysTheSplitWhenTheConfigNamesNoneOrItIsAbsent) {
  auto all = [](int64_t) { return true; };
  for (bool configured : {false, true}) {
    auto routing = Split({{1, 50}, {2, 50}});
    if (configured) routing.set_sticky_header("x-patient-id");  // Absent from these requests.
    std::map<int64_t, int> seen;
    for (int user = 0; user < 100; ++user) {
      InferRequest request;
      request.parameters.Set(std::string(kStickyKeyParameter), "patient-" + std::to_string(user));
      const auto a = ResolveVersion(routing, request, 0.01, all);
      const auto b = ResolveVersion(routing, request, 0.99, all);
      EXPECT_EQ(a.choice.reason, RouteReason::kSticky);
      EXPECT_EQ(a.choice.version, b.choice.version) << "user " << user;
      ++seen[a.choice.version];
    }
    EXPECT_GT(seen[1], 25);
    EXPECT_GT(seen[2], 25);
  }
  // The configured key, when present, wins over the front end's.
  auto routing = Split({{1, 50}, {2, 50}});
  routing.set_sticky_header("x-patient-id");
  MapHeaders headers;
  headers.values["x-patient-id"] = "patient-3";
  InferRequest with_header;
  with_header.headers = &headers;
  with_header.parameters.Set(std::string(kStickyKeyParameter), std::string("other"));
  InferRequest header_only;
  header_only.headers = &headers;
  EXPECT_EQ(ResolveVersion(routing, with_header, 0.5, all).choice.version,
            ResolveVersion(routing, header_only, 0.5, all).choice.version);
  EXPECT_EQ(StickyPointOf(routing, with_header), StickyPoint("patient-3"));
}

TEST(ResolveVersionTest, NoSplitMeansTheDefaultVersion) {
  InferRequest request;
  const auto r = ResolveVersion(config::ModelRouting(), request, 0.5, [](int64_t) { return true; });
  EXPECT_EQ(r.choice.reason, RouteReason::kDefault);
  EXPECT_EQ(r.choice.version, 0);
}

Tensor Floats(std::string name, Shape shape, std::vector<float> values) {
  return MakeTensor<float>(std::move(name), DataType::kFp32, std::move(shape), values);
}

TEST(CompareOutputsTest, CountsArgmaxAgreementPerRowAndMaxDifference) {
  std::vector<Tensor> primary = {Floats("probs", {3, 2}, {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f})};
  std::vector<Tensor> shadow = {Floats("probs", {3, 2}, {0.8f, 0.2f, 0.3f, 0.7f, 0.4f, 0.6f})};
  const OutputComparison c = CompareOutputs(primary, shadow);
  EXPECT_EQ(c.compared_outputs, 1);
  EXPECT_EQ(c.label_rows, 3);
  EXPECT_EQ(c.label_agreements, 2);  // The third row flips.
  EXPECT_NEAR(c.max_abs_difference, 0.2, 1e-6);
}

TEST(CompareOutputsTest, ComparesBytesLabelsElementwise) {
  const std::vector<std::string> a = {"serious", "not_serious"};
  const std::vector<std::string> b = {"serious", "serious"};
  std::vector<Tensor> primary = {MakeBytesTensor("label", {2}, a)};
  std::vector<Tensor> shadow = {MakeBytesTensor("label", {2}, b)};
  const OutputComparison c = CompareOutputs(primary, shadow);
  EXPECT_EQ(c.label_rows, 2);
  EXPECT_EQ(c.label_agreements, 1);
}

TEST(CompareOutputsTest, ShapeMismatchIsInfiniteDifference) {
  std::vector<Tensor> primary = {Floats("y", {2}, {1, 2})};
  std::vector<Tensor> shadow = {Floats("y", {1, 2}, {1, 2})};
  EXPECT_TRUE(std::isinf(CompareOutputs(primary, shadow).max_abs_difference));
}

TEST(CompareOutputsTest, IdenticalOutputsAgreeFully) {
  std::vector<Tensor> primary = {Floats("y", {2, 3}, {1, 5, 2, 7, 0, 1})};
  const OutputComparison c = CompareOutputs(primary, primary);
  EXPECT_EQ(c.label_rows, 2);
  EXPECT_EQ(c.label_agreements, 2);
  EXPECT_EQ(c.max_abs_difference, 0);
}

TEST(CopyForShadowTest, OwnsItsBytesAndDropsClientState) {
  auto body = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  InferRequest request;
  request.model_name = "m";
  request.id = "client-id";
  request.deadline = absl::Now();
  request.cancellation = std::make_shared<CancellationFlag>();
  MapHeaders headers;
  request.headers = &headers;
  Tensor input;
  input.name = "x";
  input.type = DataType::kFp32;
  input.shape = {1, 4};
  input.data = std::as_bytes(std::span<const float>(*body));
  request.inputs.push_back(input);
  request.parameters.Set("patient_id", std::string("p1"));
  auto copy = CopyForShadow(request);
  (*body)[0] = 99;  // The client's buffer changes (or goes away) afterwards.
  ASSERT_EQ(copy->inputs.size(), 1u);
  EXPECT_EQ(copy->inputs[0].values<float>()[0], 1.0f);
  EXPECT_EQ(copy->inputs[0].shape, (Shape{1, 4}));
  EXPECT_TRUE(copy->id.empty());
  EXPECT_EQ(copy->headers, nullptr);
  EXPECT_EQ(copy->cancellation, nullptr);
  EXPECT_EQ(copy->deadline, absl::InfiniteFuture());
  EXPECT_NE(copy->parameters.Find("patient_id"), nullptr);
}

TEST(ShadowLimiterTest, BoundsInFlight) {
  ShadowLimiter limiter;
  EXPECT_TRUE(limiter.TryAcquire(2));
  EXPECT_TRUE(limiter.TryAcquire(2));
  EXPECT_FALSE(limiter.TryAcquire(2));
  limiter.Release();
  EXPECT_TRUE(limiter.TryAcquire(2));
  EXPECT_EQ(limiter.in_flight(), 2u);
}

}  // namespace
}  // namespace ortserve::router
