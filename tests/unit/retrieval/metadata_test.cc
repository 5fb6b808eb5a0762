// SPDX-License-Identifier: Apache-2.0
#include "retrieval/metadata.h"

#include <gtest/gtest.h>

#include <string>

namespace ortserve::retrieval {
namespace {

Metadata Parsed(std::string_view json) {
  auto m = ParseMetadata(json);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : Metadata{};
}

bool Match(std::string_view filter, std::string_view metadata) {
  auto f = Filter::Parse(filter);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() && f->Matches(Parsed(metadata));
}

TEST(MetadataTest, KeepsCompactJsonAndIndexesScalars) {
  Metadata m = Parsed(R"( {"kind": "serious", "year": 2021, "ok": true, "tags": ["a", "b"], "n": null} )");
  EXPECT_EQ(m.json, R"({"kind":"serious","year":2021,"ok":true,"tags":["a","b"],"n":null})");
  ASSERT_NE(m.Find("year"), nullptr);
  EXPECT_EQ(std::get<double>(*m.Find("year")), 2021);
  EXPECT_EQ(m.Find("tags"), nullptr);  // Arrays are kept, not indexed.
  EXPECT_NE(m.Find("n"), nullptr);
}

TEST(MetadataTest, RefusesWhatIsNotOneBoundedObject) {
  EXPECT_FALSE(ParseMetadata("[1]").ok());
  EXPECT_FALSE(ParseMetadata("{\"a\":1").ok());
  EXPECT_FALSE(ParseMetadata(R"({"a":1,"a":2})").ok());
  EXPECT_FALSE(ParseMetadata(std::string(kMaxMetadataBytes + 1, ' ')).ok());
  std::string deep = "{\"a\":" + std::string(20, '[') + std::string(20, ']') + "}";
  EXPECT_FALSE(ParseMetadata(deep).ok());
  std::string many = "{";
  for (size_t i = 0; i <= kMaxMetadataFields; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\":1";
  EXPECT_FALSE(ParseMetadata(many + "}").ok());
}

TEST(FilterTest, EqualityAndRanges) {
  EXPECT_TRUE(Match(R"({"kind":"serious"})", R"({"kind":"serious","year":2020})"));
  EXPECT_FALSE(Match(R"({"kind":"serious"})", R"({"kind":"mild"})"));
  EXPECT_FALSE(Match(R"({"kind":"serious"})", R"({"year":2020})"));  // Absent field never matches.
  EXPECT_TRUE(Match(R"({"year":{"$gte":2020,"$lt":2022}})", R"({"year":2020})"));
  EXPECT_TRUE(Match(R"({"year":{"$gte":2020,"$lt":2022}})", R"({"year":2021.5})"));
  EXPECT_FALSE(Match(R"({"year":{"$gte":2020,"$lt":2022}})", R"({"year":2022})"));
  EXPECT_FALSE(Match(R"({"year":{"$gt":2020}})", R"({"year":2020})"));
  EXPECT_TRUE(Match(R"({"year":{"$lte":2020}})", R"({"year":2020})"));
  EXPECT_FALSE(Match(R"({"year":{"$lte":2020}})", R"({"year":"2020"})"));  // A string is not a number.
  EXPECT_TRUE(Match(R"({"kind":{"$in":["a","b"]},"ok":true})", R"({"kind":"b","ok":true})"));
  EXPECT_FALSE(Match(R"({"kind":{"$in":["a","b"]},"ok":true})", R"({"kind":"b","ok":false})"));
  EXPECT_TRUE(Match(R"({"n":null})", R"({"n":null})"));
  EXPECT_TRUE(Match(R"({"x":1})", R"({"x":1.0})"));
}

TEST(FilterTest, RefusesUnknownOperatorsAndBadBounds) {
  EXPECT_FALSE(Filter::Parse(R"({"a":{"$regex":"x"}})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":{"$gt":"x"}})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":{}})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":{"$in":[]}})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":{"$in":[[1]]}})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":[1]})").ok());
  EXPECT_FALSE(Filter::Parse(R"({"a":1,"a":2})").ok());
  EXPECT_FALSE(Filter::Parse("[]").ok());
  EXPECT_TRUE(Filter::Parse("{}")->empty());
}

}  // namespace
}  // namespace ortserve::retrieval
