// SPDX-License-Identifier: Apache-2.0
#include "admission/admission.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ortserve::admission {
namespace {

std::unique_ptr<Admission> Make(uint64_t requests, uint64_t bytes, uint64_t per_model) {
  Admission::Options options;
  options.max_inflight_requests = requests;
  options.max_inflight_bytes = bytes;
  options.max_model_inflight = per_model;
  return *Admission::Create(options);
}

TEST(AdmissionTest, RefusesPastTheServerRequestLimitUntilAPermitIsReleased) {
  auto admission = Make(2, 0, 0);
  auto a = admission->TryAdmit({.model = "m"});
  auto b = admission->TryAdmit({.model = "m"});
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = admission->TryAdmit({.model = "m"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(c.status().message()).find("--max-inflight-requests"), std::string::npos);
  EXPECT_TRUE(c.status().GetPayload("ortserve/retry-after").has_value());
  a->Release();
  EXPECT_TRUE(admission->TryAdmit({.model = "m"}).ok());
  EXPECT_EQ(admission->inflight_requests(), 1u);  // b; the last permit went out of scope.
}

TEST(AdmissionTest, CountsMemoryAndRefusesWhatWouldExceedIt) {
  auto admission = Make(0, 1000, 0);
  auto big = admission->TryAdmit({.bytes = 800});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(admission->inflight_bytes(), 800u);
  auto more = admission->TryAdmit({.bytes = 300});
  EXPECT_EQ(more.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(admission->inflight_bytes(), 800u);  // The refusal gave its share back.
  EXPECT_TRUE(admission->TryAdmit({.bytes = 200}).ok());
  big->Release();
  EXPECT_EQ(admission->inflight_bytes(), 0u);
  // Larger than the whole budget: never admitted.
  EXPECT_FALSE(admission->TryAdmit({.bytes = 1001}).ok());
}

TEST(AdmissionTest, ThePerModelLimitIsATooManyRequestsForThatModelOnly) {
  auto admission = Make(0, 0, 1);
  auto a = admission->TryAdmit({.model = "a"});
  ASSERT_TRUE(a.ok());
  auto again = admission->TryAdmit({.model = "a"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(again.status().message()).find("'a'"), std::string::npos);
  EXPECT_TRUE(admission->TryAdmit({.model = "b"}).ok());
}

TEST(AdmissionTest, PermitsMoveAndReleaseOnce) {
  auto admission = Make(1, 0, 0);
  Permit held;
  {
    auto permit = admission->TryAdmit({});
    ASSERT_TRUE(permit.ok());
    held = *std::move(permit);
  }
  EXPECT_TRUE(held.held());
  EXPECT_EQ(admission->inflight_requests(), 1u);
  Permit moved = std::move(held);
  EXPECT_FALSE(held.held());
  moved.Release();
  moved.Release();
  EXPECT_EQ(admission->inflight_requests(), 0u);
}

TEST(AdmissionTest, DrainingRefusesEverything) {
  auto admission = Make(0, 0, 0);
  admission->BeginDrain();
  EXPECT_EQ(admission->TryAdmit({}).status().code(), absl::StatusCode::kUnavailable);
}

TEST(AdmissionTest, ConcurrentAdmissionsNeverExceedTheLimit) {
  for (int threads : {2, 8}) {
    auto admission = Make(5, 0, 0);
    std::atomic<int> held{0}, most{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          auto permit = admission->TryAdmit({.model = "m"});
          if (!permit.ok()) continue;
          const int now = ++held;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          --held;
        }
      });
    }
    for (auto& w : workers) w.join();
    EXPECT_LE(most.load(), 5) << threads << " threads";
    EXPECT_EQ(admission->inflight_requests(), 0u);
  }
}

TEST(AdmissionTest, InventedModelNamesCannotGrowItsTable) {
  auto admission = Make(0, 0, 1000000);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(admission->TryAdmit({.model = "m" + std::to_string(i)}).ok());
  // Beyond 4096 names they share one slot; everything was released.
  EXPECT_LE(admission->model_slot_count(), 4097u);
  EXPECT_EQ(admission->inflight_requests(), 0u);
}

TEST(AdmissionTest, BodyCostCountsJsonDecodingAndSaturates) {
  EXPECT_EQ(Admission::BodyCost(100, false), 100u);
  EXPECT_EQ(Admission::BodyCost(100, true), 400u);
  EXPECT_EQ(Admission::BodyCost(UINT64_MAX / 2, true), UINT64_MAX);
}

}  // namespace
}  // namespace ortserve::admission
