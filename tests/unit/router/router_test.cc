// SPDX-License-Identifier: Apache-2.0
// The router on fakes of its neighbours (fake_model_provider.h): versions made
// from config text, an executor that echoes or fails as told. No repository,
// no sessions, no threads but the test's own.
#include "router/router.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fakes/fake_clock.h"
#include "fakes/fake_model_provider.h"
#include "gtest/gtest.h"
#include "router/response_cache.h"

namespace ortserve::router {
namespace {

using testing::FakeExecutor;
using testing::FakeModelProvider;

class MapHeaders final : public RequestHeaders {
 public:
  std::optional<std::string_view> Get(std::string_view name) const override {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> values;
};

std::unique_ptr<InferRequest> Request(const std::string& model, const std::string& version = "",
                                      const std::string& id = "r") {
  auto request = std::make_unique<InferRequest>();
  request->model_name = model;
  request->model_version = version;
  request->id = id;
  request->arrival = absl::Now();
  request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, Shape{1, 2}, std::vector<float>{1, 2}));
  return request;
}

// Routes and returns the answer (the fakes answer inline unless held).
struct Answer {
  std::optional<absl::StatusOr<InferResponse>> result;
  AnswerSlot slot;
};

class RouterTest : public ::testing::Test {
 protected:
  void Make(ResponseCache* cache = nullptr, Clock* clock = nullptr) {
    Router::Options options;
    if (clock != nullptr) options.clock = clock;
    options.models = &models_;
    options.executor = &executor_;
    options.response_cache = cache;
    // Comparisons run at once, on the answering thread (no worker).
    options.run_comparison = [](absl::AnyInvocable<void() &&> task) { std::move(task)(); };
    options.count_shadow = [this](int delta) { shadows_in_flight_ += delta; };
    router_ = std::make_unique<Router>(std::move(options));
  }
  void Route(std::unique_ptr<InferRequest> request, Answer& answer, bool with_slot = true) {
    router_->Route(std::move(request),
                   [&answer](absl::StatusOr<InferResponse> result) { answer.result = std::move(result); }, nullptr,
                   with_slot ? &answer.slot : nullptr);
  }

  FakeModelProvider models_;
  FakeExecutor executor_;
  std::unique_ptr<Router> router_;
  int shadows_in_flight_ = 0;
};

TEST_F(RouterTest, TheDefaultVersionAnswersAndTheSlotHoldsIt) {
  models_.Add("m", 1);
  models_.Add("m", 2);
  Make();
  Answer answer;
  Route(Request("m"), answer);
  ASSERT_TRUE(answer.result.has_value());
  ASSERT_TRUE(answer.result->ok()) << answer.result->status();
  EXPECT_EQ((*answer.result)->model_version, "2");
  // No wrapper saw the answer: the caller's slot holds the version instead.
  ASSERT_NE(answer.slot.model, nullptr);
  EXPECT_EQ(answer.slot.model->version, 2);
  ASSERT_EQ(executor_.runs().size(), 1u);
  EXPECT_TRUE(executor_.runs()[0].version_held);
}

TEST_F(RouterTest, AnExplicitVersionWinsOverTheOverrideHeader) {
  models_.Add("m", 1);
  models_.Add("m", 2);
  models_.Add("m", 3);
  Make();
  MapHeaders headers;
  headers.values["x-model-version"] = "1";
  Answer by_header, explicit_version;
  auto request = Request("m");
  request->headers = &headers;
  Route(std::move(request), by_header);
  request = Request("m", "2");
  request->headers = &headers;
  Route(std::move(request), explicit_version);
  EXPECT_EQ((*by_header.result)->model_version, "1");
  EXPECT_EQ((*explicit_version.result)->model_version, "2");
}

TEST_F(RouterTest, AStickyKeyAlwaysLandsOnTheSameVersionOfASplit) {
  models_.Add("m", 1);
  models_.Add("m", 2,
              "routing { split { version: 1 weight: 1 } split { version: 2 weight: 1 } "
              "sticky_parameter: \"patient\" }");
  Make();
  std::map<std::string, std::set<std::string>> versions_by_key;
  for (int round = 0; round < 5; ++round) {
    for (int key = 0; key < 40; ++key) {
      auto request = Request("m");
      request->parameters.Set("patient", "p" + std::to_string(key));
      Answer answer;
      Route(std::move(request), answer);
      versions_by_key["p" + std::to_string(key)].insert((*answer.result)->model_version);
    }
  }
  std::set<std::string> seen;
  for (const auto& [key, versions] : versions_by_key) {
    EXPECT_EQ(versions.size(), 1u) << key;
    seen.insert(*versions.begin());
  }
  EXPECT_EQ(seen.size(), 2u) << "40 keys over a 50/50 split all landed on one version";
}

TEST_F(RouterTest, ARequestThatFailsValidationNeverRunsAndCountsAFailure) {
  auto model = models_.Add("m", 1);
  Make();
  executor_.RejectAtValidation("m", absl::InvalidArgumentError("input 'x' has shape [3]"));
  Answer answer;
  Route(Request("m"), answer);
  EXPECT_EQ(answer.result->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(executor_.runs().empty());
  EXPECT_EQ(model->stats->fail.count(), 1u);
}

TEST_F(RouterTest, AnUnknownModelIsNotFoundAndNothingRuns) {
  Make();
  Answer answer;
  Route(Request("nope"), answer);
  EXPECT_EQ(answer.result->status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(executor_.runs().empty());
}

TEST_F(RouterTest, TheFallbackAnswersWhenThePrimaryFailsAndSaysSo) {
  models_.Add("primary", 1, "routing { fallback_model: \"backup\" }");
  models_.Add("backup", 4);
  Make();
  executor_.Fail("primary", absl::UnavailableError("runner crashed"));
  Answer answer;
  Route(Request("primary", "", "req-7"), answer);
  ASSERT_TRUE(answer.result->ok()) << answer.result->status();
  EXPECT_EQ((*answer.result)->model_name, "backup");
  EXPECT_EQ((*answer.result)->id, "req-7");  // The copy kept every field.
  EXPECT_EQ((*answer.result)->parameters.FindString("fallback_from").value_or(""), "primary:1");
  EXPECT_EQ((*answer.result)->parameters.FindString("fallback_reason").value_or(""), "runner crashed");
  // A wrapper saw the answer: the slot was not used.
  EXPECT_EQ(answer.slot.model, nullptr);
}

TEST_F(RouterTest, ABadRequestIsNotRescuedByTheFallback) {
  models_.Add("primary", 1, "routing { fallback_model: \"backup\" }");
  models_.Add("backup", 1);
  Make();
  executor_.Fail("primary", absl::InvalidArgumentError("bad input"));
  Answer answer;
  Route(Request("primary"), answer);
  EXPECT_EQ(answer.result->status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(executor_.runs().size(), 1u);
}

TEST_F(RouterTest, WhenTheFallbackFailsTooTheClientHearsThePrimarysError) {
  models_.Add("primary", 1, "routing { fallback_model: \"backup\" }");
  models_.Add("backup", 1);
  Make();
  executor_.Fail("primary", absl::DeadlineExceededError("primary too slow"));
  executor_.Fail("backup", absl::InternalError("backup broken"));
  Answer answer;
  Route(Request("primary"), answer);
  EXPECT_EQ(answer.result->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(answer.result->status().message(), "primary too slow");
}

TEST_F(RouterTest, AShadowCopyRunsOnTheCandidateAfterThePrimary) {
  models_.Add("primary", 1, "routing { shadow { model: \"candidate\" fraction: 1.0 } }");
  models_.Add("candidate", 2);
  Make();
  Answer answer;
  Route(Request("primary", "", "client-id"), answer);
  ASSERT_TRUE(answer.result->ok());
  EXPECT_EQ((*answer.result)->model_name, "primary");
  const auto runs = executor_.runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].model, "primary");
  EXPECT_EQ(runs[1].model, "candidate");
  EXPECT_EQ(runs[1].id, "");  // The client's id stays with the client's request.
  EXPECT_EQ(shadows_in_flight_, 0);
}

TEST_F(RouterTest, ShadowCopiesPastTheLimitAreDropped) {
  models_.Add("primary", 1, "routing { shadow { model: \"candidate\" fraction: 1.0 max_in_flight: 2 } }");
  models_.Add("candidate", 1);
  Make();
  executor_.Hold();
  std::vector<Answer> answers(5);
  for (auto& answer : answers) Route(Request("primary"), answer);
  int candidate_runs = 0;
  for (const auto& run : executor_.runs()) candidate_runs += run.model == "candidate";
  EXPECT_EQ(candidate_runs, 2);
  EXPECT_EQ(shadows_in_flight_, 2);
  executor_.ReleaseAll();
  for (const auto& answer : answers) EXPECT_TRUE(answer.result.has_value() && answer.result->ok());
  EXPECT_EQ(shadows_in_flight_, 0);
}

TEST_F(RouterTest, ALazyModelIsWaitedForThenRouted) {
  models_.Add("lazy", 1);
  models_.MakeLazy("lazy");
  Make();
  Answer answer;
  Route(Request("lazy"), answer);
  EXPECT_FALSE(answer.result.has_value());  // Waiting on the load.
  EXPECT_EQ(models_.acquires(), 1);
  models_.FinishLazyLoad("lazy");
  ASSERT_TRUE(answer.result.has_value());
  ASSERT_TRUE(answer.result->ok()) << answer.result->status();
  EXPECT_EQ((*answer.result)->model_name, "lazy");
}

TEST_F(RouterTest, ACacheHitAnswersWithoutRunningTheModel) {
  auto cache = *ResponseCache::Create({});
  models_.Add("cached", 1, "response_cache { enable: true }");
  Make(cache.get());
  Answer first, second;
  Route(Request("cached", "", "a"), first);
  Route(Request("cached", "", "b"), second);
  ASSERT_TRUE(second.result->ok());
  EXPECT_EQ((*second.result)->id, "b");  // The hit carries the asking request's id.
  EXPECT_EQ(executor_.runs().size(), 1u);
}

TEST_F(RouterTest, AnOpenCircuitBreakerSendsTrafficToTheFallbackUntilAProbeSucceeds) {
  const std::string breaker = "circuit_breaker { enable: true min_requests: 2 open_ms: 1000 half_open_requests: 1 }";
  models_.Add("primary", 1, "routing { fallback_model: \"backup\" " + breaker + " }");
  models_.Add("backup", 1);
  models_.Add("alone", 1, "routing { " + breaker + " }");
  testing::FakeClock clock;
  Make(nullptr, &clock);
  executor_.Fail("primary", absl::InternalError("run failed"));
  for (int i = 0; i < 2; ++i) {
    Answer answer;
    Route(Request("primary"), answer);
    ASSERT_TRUE(answer.result->ok()) << answer.result->status();
    EXPECT_EQ((*answer.result)->model_name, "backup");
  }
  ASSERT_EQ(executor_.runs().size(), 4u);  // primary, backup, primary, backup.
  // Open: the primary is not tried at all.
  executor_.Heal("primary");
  Answer skipped;
  Route(Request("primary"), skipped);
  ASSERT_TRUE(skipped.result->ok());
  EXPECT_EQ((*skipped.result)->model_name, "backup");
  EXPECT_NE((*skipped.result)->parameters.FindString("fallback_reason").value_or("").find("circuit breaker is open"),
            std::string::npos);
  ASSERT_EQ(executor_.runs().size(), 5u);
  EXPECT_EQ(executor_.runs().back().model, "backup");
  // After open_ms one probe goes through; it succeeds and closes the breaker.
  clock.Advance(absl::Seconds(1));
  for (int i = 0; i < 2; ++i) {
    Answer answer;
    Route(Request("primary"), answer);
    ASSERT_TRUE(answer.result->ok());
    EXPECT_EQ((*answer.result)->model_name, "primary");
  }
  // Without a fallback, an open breaker is a 503 with a retry hint.
  executor_.Fail("alone", absl::UnavailableError("runner crashed"));
  for (int i = 0; i < 2; ++i) {
    Answer answer;
    Route(Request("alone"), answer);
    EXPECT_EQ(answer.result->status().message(), "runner crashed");
  }
  Answer refused;
  Route(Request("alone"), refused);
  EXPECT_EQ(refused.result->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(refused.result->status().message()).find("circuit breaker is open"), std::string::npos);
  EXPECT_EQ(std::string(*refused.result->status().GetPayload("ortserve/retry-after")), "1");
  // Bad requests say nothing about the version.
  executor_.Heal("alone");
  clock.Advance(absl::Seconds(1));
  executor_.RejectAtValidation("alone", absl::InvalidArgumentError("bad"));
  Answer bad;
  Route(Request("alone"), bad);
  EXPECT_EQ(bad.result->status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ortserve::router
