// SPDX-License-Identifier: Apache-2.0
// Triton's trace settings mapped onto sampling: levels, rates, counts, model
// overrides and their clearing, refused values.
#include "observability/trace_settings.h"

#include <gtest/gtest.h>

namespace ortserve::observability {
namespace {

double Low() { return 0.0; }     // A draw every ratio > 0 samples.
double High() { return 0.999; }  // A draw only ratio 1 samples.

TEST(TraceSettingsTest, StartsFromTheSamplingRatio) {
  TraceSettings off(0.0);
  EXPECT_FALSE(off.SampleRoot({}, &Low));
  EXPECT_EQ(off.Get({})["trace_level"], TraceSettings::Values{"OFF"});
  TraceSettings quarter(0.25);
  EXPECT_EQ(quarter.Get({})["trace_level"], TraceSettings::Values{"TIMESTAMPS"});
  EXPECT_EQ(quarter.Get({})["trace_rate"], TraceSettings::Values{"4"});
  EXPECT_TRUE(quarter.SampleRoot({}, &Low));
  EXPECT_FALSE(quarter.SampleRoot({}, &High));
}

TEST(TraceSettingsTest, RateCountAndLevelDecide) {
  TraceSettings settings(0.0);
  ASSERT_TRUE(settings.Update({}, {{"trace_level", TraceSettings::Values{"TIMESTAMPS"}},
                                   {"trace_rate", TraceSettings::Values{"1"}},
                                   {"trace_count", TraceSettings::Values{"2"}}})
                  .ok());
  EXPECT_TRUE(settings.SampleRoot({}, &High));
  EXPECT_TRUE(settings.SampleRoot({}, &High));
  EXPECT_FALSE(settings.SampleRoot({}, &High));  // Count spent.
  EXPECT_EQ(settings.Get({})["trace_count"], TraceSettings::Values{"2"});
  ASSERT_TRUE(settings.Update({}, {{"trace_count", TraceSettings::Values{"-1"}}}).ok());
  EXPECT_TRUE(settings.SampleRoot({}, &High));
  ASSERT_TRUE(settings.Update({}, {{"trace_rate", TraceSettings::Values{"2"}}}).ok());
  EXPECT_FALSE(settings.SampleRoot({}, &High));
  EXPECT_TRUE(settings.SampleRoot({}, &Low));
  // Clearing restores the start-up value (off).
  ASSERT_TRUE(settings.Update({}, {{"trace_level", std::nullopt}}).ok());
  EXPECT_FALSE(settings.SampleRoot({}, &Low));
}

TEST(TraceSettingsTest, ModelSettingsOverrideAndClear) {
  TraceSettings settings(0.0);
  EXPECT_FALSE(settings.HasModelSettings());
  auto model = settings.Update("m", {{"trace_level", TraceSettings::Values{"TIMESTAMPS"}},
                                     {"trace_rate", TraceSettings::Values{"1"}}});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(settings.HasModelSettings());
  EXPECT_TRUE(settings.SampleRoot("m", &High));
  EXPECT_FALSE(settings.SampleRoot("other", &Low));
  EXPECT_FALSE(settings.SampleRoot({}, &Low));
  EXPECT_EQ(settings.Get("m")["trace_level"], TraceSettings::Values{"TIMESTAMPS"});
  EXPECT_EQ(settings.Get("other")["trace_level"], TraceSettings::Values{"OFF"});
  ASSERT_TRUE(settings.Update("m", {{"trace_level", std::nullopt}, {"trace_rate", std::nullopt}}).ok());
  EXPECT_FALSE(settings.HasModelSettings());
  EXPECT_FALSE(settings.SampleRoot("m", &Low));
}

TEST(TraceSettingsTest, RefusedValuesChangeNothing) {
  TraceSettings settings(1.0);
  for (const auto& updates : std::vector<TraceSettings::Updates>{
           {{"trace_rate", TraceSettings::Values{"0"}}},
           {{"trace_rate", TraceSettings::Values{"1x"}}},
           {{"trace_rate", TraceSettings::Values{"1", "2"}}},
           {{"trace_count", TraceSettings::Values{"-2"}}},
           {{"trace_level", TraceSettings::Values{"TENSORS"}}},
           {{"trace_file", TraceSettings::Values{"/tmp/x"}}},
           {{"trace_mode", TraceSettings::Values{"triton"}}},
           {{"trace_level", TraceSettings::Values{"OFF"}}, {"bogus", TraceSettings::Values{"1"}}}}) {
    EXPECT_EQ(settings.Update({}, updates).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(settings.SampleRoot({}, &High));
  EXPECT_EQ(settings.Get({})["trace_rate"], TraceSettings::Values{"1"});
}

}  // namespace
}  // namespace ortserve::observability
