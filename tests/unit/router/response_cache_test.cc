// SPDX-License-Identifier: Apache-2.0
#include "router/response_cache.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ortserve::router {
namespace {

std::unique_ptr<ResponseCache> MakeCache(size_t max_bytes = size_t{64} << 20, int num_shards = 16) {
  ResponseCache::Options options;
  options.max_bytes = max_bytes;
  options.num_shards = num_shards;
  auto cache = ResponseCache::Create(options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return *std::move(cache);
}

InferRequest MakeRequest(std::vector<float> a = {1, 2, 3, 4}, std::vector<int64_t> b = {7, 8}) {
  InferRequest request;
  request.model_name = "m";
  request.inputs.push_back(MakeTensor<float>("a", DataType::kFp32, {2, 2}, a));
  request.inputs.push_back(MakeTensor<int64_t>("b", DataType::kInt64, {2}, b));
  return request;
}

InferResponse MakeResponse(std::string model, std::vector<float> values, std::string version = "1") {
  InferResponse response;
  response.model_name = std::move(model);
  response.model_version = std::move(version);
  response.id = "request-1";
  response.parameters.Set("note", std::string("cached"));
  const int64_t n = static_cast<int64_t>(values.size());
  response.outputs.push_back(MakeTensor<float>("y", DataType::kFp32, {1, n}, values));
  std::vector<int32_t> labels = {3, 1, 4};
  response.outputs.push_back(MakeTensor<int32_t>("labels", DataType::kInt32, {3}, labels));
  return response;
}

RequestedOutput Output(std::string name) {
  RequestedOutput output;
  output.name = std::move(name);
  return output;
}

std::vector<std::byte> Bytes(const Tensor& t) { return {t.data.begin(), t.data.end()}; }

void ExpectSameTensors(const InferResponse& expected, const InferResponse& actual) {
  ASSERT_EQ(expected.outputs.size(), actual.outputs.size());
  for (size_t i = 0; i < expected.outputs.size(); ++i) {
    SCOPED_TRACE(expected.outputs[i].name);
    EXPECT_EQ(expected.outputs[i].name, actual.outputs[i].name);
    EXPECT_EQ(expected.outputs[i].type, actual.outputs[i].type);
    EXPECT_EQ(expected.outputs[i].shape, actual.outputs[i].shape);
    EXPECT_EQ(Bytes(expected.outputs[i]), Bytes(actual.outputs[i]));
  }
}

// ---------------------------------------------------------------------------
// SipHasher128

CacheKey KeyFromHex(const std::string& hex) {
  unsigned char bytes[16];
  for (int i = 0; i < 16; ++i) bytes[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  CacheKey key;
  std::memcpy(&key.lo, bytes, 8);
  std::memcpy(&key.hi, bytes + 8, 8);
  return key;
}

std::array<uint8_t, 16> ReferenceKey() {
  std::array<uint8_t, 16> key;
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  return key;
}

TEST(SipHasher128Test, MatchesReferenceVectors) {
  // Key 00..0f, message bytes 00, 01, 02, ...; the outputs of the reference
  // SipHash-2-4-128 (as OpenSSL's SIPHASH MAC with size 16 computes them).
  const std::pair<size_t, std::string> vectors[] = {
      {0, "a3817f04ba25a8e66df67214c7550293"},   {8, "3b62a9ba6258f5610f83e264f31497b4"},
      {15, "5493e99933b0a8117e08ec0f97cfc3d9"},  {63, "5150d1772f50834a503e069a973fbd7c"},
      {64, "1eaf077dc0d4cd3f8cad4d383658a74b"},  {100, "39732dd009be17338297c6358fe5e6d9"},
  };
  for (const auto& [size, hex] : vectors) {
    SCOPED_TRACE(size);
    std::vector<uint8_t> message(size);
    for (size_t i = 0; i < size; ++i) message[i] = static_cast<uint8_t>(i);
    SipHasher128 hasher(ReferenceKey());
    hasher.Update(message.data(), message.size());
    EXPECT_EQ(hasher.Finish(), KeyFromHex(hex));
  }
}

TEST(SipHasher128Test, SplittingTheInputDoesNotChangeTheHash) {
  std::vector<uint8_t> message(100);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i);
  for (size_t chunk : {1, 3, 7, 9, 33}) {
    SCOPED_TRACE(chunk);
    SipHasher128 hasher(ReferenceKey());
    for (size_t offset = 0; offset < message.size(); offset += chunk) {
      hasher.Update(message.data() + offset, std::min(chunk, message.size() - offset));
    }
    EXPECT_EQ(hasher.Finish(), KeyFromHex("39732dd009be17338297c6358fe5e6d9"));
  }
}

// ---------------------------------------------------------------------------
// Keys

TEST(ResponseCacheTest, CreateRejectsZeroBudgetAndBadShardCount) {
  ResponseCache::Options options;
  options.max_bytes = 0;
  EXPECT_EQ(ResponseCache::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.max_bytes = 1024;
  options.num_shards = 0;
  EXPECT_EQ(ResponseCache::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.num_shards = 1025;
  EXPECT_EQ(ResponseCache::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResponseCacheTest, SameRequestGivesSameKey) {
  auto cache = MakeCache();
  EXPECT_EQ(cache->ComputeKey("m", "1", MakeRequest()), cache->ComputeKey("m", "1", MakeRequest()));
}

TEST(ResponseCacheTest, DifferentInputBytesShapeOrTypeGiveDifferentKeys) {
  auto cache = MakeCache();
  const CacheKey base = cache->ComputeKey("m", "1", MakeRequest());
  EXPECT_NE(cache->ComputeKey("m", "1", MakeRequest({1, 2, 3, 5})), base);

  InferRequest reshaped = MakeRequest();
  reshaped.inputs[0].shape = {4, 1};
  EXPECT_NE(cache->ComputeKey("m", "1", reshaped), base);

  // Same bytes, other type.
  InferRequest retyped = MakeRequest();
  retyped.inputs[0].type = DataType::kInt32;
  EXPECT_NE(cache->ComputeKey("m", "1", retyped), base);

  InferRequest renamed = MakeRequest();
  renamed.inputs[0].name = "a2";
  EXPECT_NE(cache->ComputeKey("m", "1", renamed), base);
}

TEST(ResponseCacheTest, DifferentModelOrVersionGiveDifferentKeys) {
  auto cache = MakeCache();
  const CacheKey base = cache->ComputeKey("m", "1", MakeRequest());
  EXPECT_NE(cache->ComputeKey("m", "2", MakeRequest()), base);
  EXPECT_NE(cache->ComputeKey("n", "1", MakeRequest()), base);
  // Length prefixes: moving a character between name and version changes the key.
  EXPECT_NE(cache->ComputeKey("m1", "", MakeRequest()), cache->ComputeKey("m", "1", MakeRequest()));
}

TEST(ResponseCacheTest, RequestedOutputsAndTheirOrderChangeTheKey) {
  auto cache = MakeCache();
  InferRequest all = MakeRequest();
  InferRequest y_only = MakeRequest();
  y_only.outputs.push_back(Output("y"));
  InferRequest y_labels = MakeRequest();
  y_labels.outputs.push_back(Output("y"));
  y_labels.outputs.push_back(Output("labels"));
  InferRequest labels_y = MakeRequest();
  labels_y.outputs.push_back(Output("labels"));
  labels_y.outputs.push_back(Output("y"));

  const CacheKey keys[] = {cache->ComputeKey("m", "1", all), cache->ComputeKey("m", "1", y_only),
                           cache->ComputeKey("m", "1", y_labels), cache->ComputeKey("m", "1", labels_y)};
  for (size_t i = 0; i < 4; ++i) {
    for (size_t j = i + 1; j < 4; ++j) EXPECT_NE(keys[i], keys[j]) << i << " vs " << j;
  }
}

TEST(ResponseCacheTest, NonSchedulingParametersChangeTheKey) {
  auto cache = MakeCache();
  const CacheKey base = cache->ComputeKey("m", "1", MakeRequest());

  InferRequest with_param = MakeRequest();
  with_param.parameters.Set("temperature", 0.5);
  EXPECT_NE(cache->ComputeKey("m", "1", with_param), base);

  InferRequest other_value = MakeRequest();
  other_value.parameters.Set("temperature", 0.7);
  EXPECT_NE(cache->ComputeKey("m", "1", other_value), cache->ComputeKey("m", "1", with_param));

  // Same digits, other type.
  InferRequest as_int = MakeRequest();
  as_int.parameters.Set("top_k", int64_t{5});
  InferRequest as_string = MakeRequest();
  as_string.parameters.Set("top_k", std::string("5"));
  EXPECT_NE(cache->ComputeKey("m", "1", as_int), cache->ComputeKey("m", "1", as_string));

  InferRequest input_param = MakeRequest();
  input_param.input_parameters.resize(1);
  input_param.input_parameters[0].Set("normalize", true);
  EXPECT_NE(cache->ComputeKey("m", "1", input_param), base);

  InferRequest output_param = MakeRequest();
  output_param.outputs.push_back(Output("y"));
  InferRequest output_param2 = output_param;
  output_param2.outputs[0].parameters.Set("threshold", 0.5);
  EXPECT_NE(cache->ComputeKey("m", "1", output_param), cache->ComputeKey("m", "1", output_param2));
}

TEST(ResponseCacheTest, InputOrderDoesNotMatter) {
  auto cache = MakeCache();
  InferRequest forward = MakeRequest();
  forward.input_parameters.resize(2);
  forward.input_parameters[1].Set("scale", 2.0);
  InferRequest backward;
  backward.inputs = {forward.inputs[1], forward.inputs[0]};
  backward.input_parameters.resize(2);
  backward.input_parameters[0].Set("scale", 2.0);  // Follows its input "b".
  EXPECT_EQ(cache->ComputeKey("m", "1", forward), cache->ComputeKey("m", "1", backward));

  // The parameter belongs to "b"; moving it to "a" is another request.
  InferRequest moved = MakeRequest();
  moved.input_parameters.resize(1);
  moved.input_parameters[0].Set("scale", 2.0);
  EXPECT_NE(cache->ComputeKey("m", "1", moved), cache->ComputeKey("m", "1", forward));
}

TEST(ResponseCacheTest, ParameterWireOrderDoesNotMatter) {
  auto cache = MakeCache();
  InferRequest one = MakeRequest();
  one.parameters.Set("x", int64_t{1});
  one.parameters.Set("y", std::string("z"));
  InferRequest two = MakeRequest();
  two.parameters.Set("y", std::string("z"));
  two.parameters.Set("x", int64_t{1});
  EXPECT_EQ(cache->ComputeKey("m", "1", one), cache->ComputeKey("m", "1", two));
}

TEST(ResponseCacheTest, SchedulingAndEncodingParametersDoNotMatter) {
  auto cache = MakeCache();
  const CacheKey base = cache->ComputeKey("m", "1", MakeRequest());

  InferRequest request = MakeRequest();
  request.id = "another-id";
  request.priority = 1;
  request.binary_data_output = true;
  request.parameters.Set("priority", uint64_t{1});
  request.parameters.Set("timeout", int64_t{5000});
  request.parameters.Set("binary_data_output", true);
  request.parameters.Set("sequence_id", int64_t{42});
  request.input_parameters.resize(2);
  request.input_parameters[0].Set("binary_data_size", int64_t{16});
  EXPECT_EQ(cache->ComputeKey("m", "1", request), base);

  InferRequest plain_y = MakeRequest();
  plain_y.outputs.push_back(Output("y"));
  InferRequest encoded_y = plain_y;
  encoded_y.outputs[0].binary_data = true;
  encoded_y.outputs[0].classification = 2;
  encoded_y.outputs[0].parameters.Set("binary_data", true);
  encoded_y.outputs[0].parameters.Set("classification", int64_t{2});
  EXPECT_EQ(cache->ComputeKey("m", "1", encoded_y), cache->ComputeKey("m", "1", plain_y));
}

TEST(ResponseCacheTest, DifferentCachesUseDifferentSecretKeys) {
  auto a = MakeCache();
  auto b = MakeCache();
  EXPECT_NE(a->ComputeKey("m", "1", MakeRequest()), b->ComputeKey("m", "1", MakeRequest()));
}

// ---------------------------------------------------------------------------
// Lookup / Insert

TEST(ResponseCacheTest, MissThenHitReturnsIdenticalTensors) {
  auto cache = MakeCache();
  const CacheKey key = cache->ComputeKey("m", "1", MakeRequest());
  EXPECT_FALSE(cache->Lookup(key).has_value());

  const InferResponse response = MakeResponse("m", {0.25f, 0.5f, 0.75f});
  cache->Insert(key, response);
  std::optional<InferResponse> hit = cache->Lookup(key);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->model_name, "m");
  EXPECT_EQ(hit->model_version, "1");
  EXPECT_EQ(hit->id, "");
  ASSERT_NE(hit->parameters.Find("note"), nullptr);
  EXPECT_EQ(std::get<std::string>(*hit->parameters.Find("note")), "cached");
  ExpectSameTensors(response, *hit);
  EXPECT_EQ(hit->outputs[0].values<float>()[2], 0.75f);

  const ResponseCache::Stats stats = cache->GetStats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.insertions, 1u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, ResponseCache::EntryCharge(response));
}

TEST(ResponseCacheTest, HitsViewTheCachedBytesWithoutCopying) {
  auto cache = MakeCache();
  const CacheKey key = cache->ComputeKey("m", "1", MakeRequest());
  const InferResponse response = MakeResponse("m", {1, 2, 3});
  cache->Insert(key, response);
  std::optional<InferResponse> first = cache->Lookup(key);
  std::optional<InferResponse> second = cache->Lookup(key);
  ASSERT_TRUE(first.has_value() && second.has_value());
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    // The entry holds its own copy, and every hit views that same copy.
    EXPECT_NE(first->outputs[i].data.data(), response.outputs[i].data.data());
    EXPECT_EQ(first->outputs[i].data.data(), second->outputs[i].data.data());
    EXPECT_NE(first->outputs[i].holder, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first->outputs[i].data.data()) % 16, 0u);
  }
}

TEST(ResponseCacheTest, BytesTensorsRoundTrip) {
  auto cache = MakeCache();
  InferRequest request;
  const std::vector<std::string> texts = {"hello", "", "wörld"};
  request.inputs.push_back(MakeBytesTensor("text", {3}, texts));
  const CacheKey key = cache->ComputeKey("m", "1", request);

  InferRequest other;
  const std::vector<std::string> other_texts = {"hello", "w", "örld"};
  other.inputs.push_back(MakeBytesTensor("text", {3}, other_texts));
  EXPECT_NE(cache->ComputeKey("m", "1", other), key);

  InferResponse response;
  response.model_name = "m";
  const std::vector<std::string> labels = {"positive", "negative"};
  response.outputs.push_back(MakeBytesTensor("label", {2}, labels));
  cache->Insert(key, response);

  std::optional<InferResponse> hit = cache->Lookup(key);
  ASSERT_TRUE(hit.has_value());
  ASSERT_EQ(hit->outputs.size(), 1u);
  EXPECT_EQ(hit->outputs[0].type, DataType::kBytes);
  auto elements = SplitBytesElements(hit->outputs[0].data, 2, "label");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_EQ((*elements)[0], "positive");
  EXPECT_EQ((*elements)[1], "negative");
}

TEST(ResponseCacheTest, InsertingAnExistingKeyReplacesItsAnswer) {
  auto cache = MakeCache();
  const CacheKey key = cache->ComputeKey("m", "1", MakeRequest());
  cache->Insert(key, MakeResponse("m", {1}));
  const InferResponse newer = MakeResponse("m", {2, 3});
  cache->Insert(key, newer);
  std::optional<InferResponse> hit = cache->Lookup(key);
  ASSERT_TRUE(hit.has_value());
  ExpectSameTensors(newer, *hit);
  EXPECT_EQ(cache->GetStats().entries, 1u);
  EXPECT_EQ(cache->GetStats().bytes, ResponseCache::EntryCharge(newer));
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsedAndAHitRefreshesAnEntry) {
  // All responses have the same charge; room for exactly three.
  const size_t charge = ResponseCache::EntryCharge(MakeResponse("m", {0}));
  auto cache = MakeCache(3 * charge + charge / 2, /*num_shards=*/1);
  auto key = [&](float v) { return cache->ComputeKey("m", "1", MakeRequest({v, 0, 0, 0})); };

  cache->Insert(key(1), MakeResponse("m", {1}));
  cache->Insert(key(2), MakeResponse("m", {2}));
  cache->Insert(key(3), MakeResponse("m", {3}));
  ASSERT_TRUE(cache->Lookup(key(1)).has_value());  // 1 is now the most recent.
  cache->Insert(key(4), MakeResponse("m", {4}));    // Evicts 2, the least recent.

  EXPECT_FALSE(cache->Lookup(key(2)).has_value());
  for (float v : {1.f, 3.f, 4.f}) {
    std::optional<InferResponse> hit = cache->Lookup(key(v));
    ASSERT_TRUE(hit.has_value()) << v;
    EXPECT_EQ(hit->outputs[0].values<float>()[0], v);
  }
  // Order now (most recent first): 4, 3, 1. Two more inserts evict 1 then 3.
  cache->Insert(key(5), MakeResponse("m", {5}));
  EXPECT_FALSE(cache->Lookup(key(1)).has_value());
  cache->Insert(key(6), MakeResponse("m", {6}));
  EXPECT_FALSE(cache->Lookup(key(3)).has_value());
  EXPECT_TRUE(cache->Lookup(key(4)).has_value());

  const ResponseCache::Stats stats = cache->GetStats();
  EXPECT_EQ(stats.evictions, 3u);
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_EQ(stats.bytes, 3 * charge);
  EXPECT_LE(stats.bytes, cache->max_bytes());
}

TEST(ResponseCacheTest, OversizeEntryIsNotStored) {
  auto cache = MakeCache(4096, /*num_shards=*/1);
  const CacheKey small_key = cache->ComputeKey("m", "1", MakeRequest({1, 0, 0, 0}));
  cache->Insert(small_key, MakeResponse("m", {1}));

  const CacheKey big_key = cache->ComputeKey("m", "1", MakeRequest({2, 0, 0, 0}));
  const InferResponse big = MakeResponse("m", std::vector<float>(2048, 1.f));  // 8 KiB of data.
  ASSERT_GT(ResponseCache::EntryCharge(big), cache->max_entry_bytes());
  cache->Insert(big_key, big);

  EXPECT_FALSE(cache->Lookup(big_key).has_value());
  EXPECT_TRUE(cache->Lookup(small_key).has_value());  // Nothing was evicted for it.
  EXPECT_EQ(cache->GetStats().entries, 1u);
  EXPECT_EQ(cache->GetStats().insertions, 1u);
}

TEST(ResponseCacheTest, EntryLimitIsOneShardsShareOfTheBudget) {
  auto cache = MakeCache(16 * 4096, /*num_shards=*/16);
  EXPECT_EQ(cache->max_entry_bytes(), 4096u);
  const CacheKey key = cache->ComputeKey("m", "1", MakeRequest());
  cache->Insert(key, MakeResponse("m", std::vector<float>(2048, 1.f)));
  EXPECT_FALSE(cache->Lookup(key).has_value());
}

TEST(ResponseCacheTest, ResponseStaysValidAfterItsEntryIsEvicted) {
  const size_t charge = ResponseCache::EntryCharge(MakeResponse("m", {0, 0, 0, 0}));
  auto cache = MakeCache(charge, /*num_shards=*/1);  // Room for one entry.
  const CacheKey first = cache->ComputeKey("m", "1", MakeRequest({1, 0, 0, 0}));
  const InferResponse expected = MakeResponse("m", {9, 8, 7, 6});
  cache->Insert(first, expected);
  std::optional<InferResponse> hit = cache->Lookup(first);
  ASSERT_TRUE(hit.has_value());

  // Replace the entry (evicting it) and write different bytes over fresh
  // allocations of the same size.
  const CacheKey second = cache->ComputeKey("m", "1", MakeRequest({2, 0, 0, 0}));
  cache->Insert(second, MakeResponse("m", {-1, -1, -1, -1}));
  ASSERT_FALSE(cache->Lookup(first).has_value());
  EXPECT_EQ(cache->GetStats().evictions, 1u);
  EXPECT_EQ(cache->EraseModel("m"), 1u);

  ExpectSameTensors(expected, *hit);
  EXPECT_EQ(hit->outputs[0].values<float>()[0], 9.f);
}

TEST(ResponseCacheTest, EraseModelDropsOnlyThatModelsEntries) {
  auto cache = MakeCache();
  const CacheKey m1 = cache->ComputeKey("m", "1", MakeRequest({1, 0, 0, 0}));
  const CacheKey m2 = cache->ComputeKey("m", "2", MakeRequest({1, 0, 0, 0}));
  const CacheKey n1 = cache->ComputeKey("n", "1", MakeRequest({1, 0, 0, 0}));
  cache->Insert(m1, MakeResponse("m", {1}, "1"));
  cache->Insert(m2, MakeResponse("m", {2}, "2"));
  cache->Insert(n1, MakeResponse("n", {3}, "1"));
  const size_t n_charge = ResponseCache::EntryCharge(MakeResponse("n", {3}, "1"));

  EXPECT_EQ(cache->EraseModel("m"), 2u);
  EXPECT_FALSE(cache->Lookup(m1).has_value());
  EXPECT_FALSE(cache->Lookup(m2).has_value());
  EXPECT_TRUE(cache->Lookup(n1).has_value());
  EXPECT_EQ(cache->GetStats().entries, 1u);
  EXPECT_EQ(cache->GetStats().bytes, n_charge);
  EXPECT_EQ(cache->GetStats().evictions, 0u);
  EXPECT_EQ(cache->EraseModel("m"), 0u);

  cache->Clear();
  EXPECT_FALSE(cache->Lookup(n1).has_value());
  EXPECT_EQ(cache->GetStats().entries, 0u);
  EXPECT_EQ(cache->GetStats().bytes, 0u);
}

TEST(ResponseCacheTest, EraseVersionDropsOnlyThatVersionsEntries) {
  auto cache = MakeCache();
  const CacheKey m1 = cache->ComputeKey("m", "1", MakeRequest({1, 0, 0, 0}));
  const CacheKey m1b = cache->ComputeKey("m", "1", MakeRequest({2, 0, 0, 0}));
  const CacheKey m2 = cache->ComputeKey("m", "2", MakeRequest({1, 0, 0, 0}));
  const CacheKey n1 = cache->ComputeKey("n", "1", MakeRequest({1, 0, 0, 0}));
  cache->Insert(m1, MakeResponse("m", {1}, "1"));
  cache->Insert(m1b, MakeResponse("m", {4}, "1"));
  cache->Insert(m2, MakeResponse("m", {2}, "2"));
  cache->Insert(n1, MakeResponse("n", {3}, "1"));

  EXPECT_EQ(cache->EraseVersion("m", "1"), 2u);
  EXPECT_FALSE(cache->Lookup(m1).has_value());
  EXPECT_FALSE(cache->Lookup(m1b).has_value());
  EXPECT_TRUE(cache->Lookup(m2).has_value());
  EXPECT_TRUE(cache->Lookup(n1).has_value());
  EXPECT_EQ(cache->GetStats().entries, 2u);
  EXPECT_EQ(cache->GetStats().bytes, ResponseCache::EntryCharge(MakeResponse("m", {2}, "2")) +
                                         ResponseCache::EntryCharge(MakeResponse("n", {3}, "1")));
  EXPECT_EQ(cache->EraseVersion("m", "1"), 0u);
  EXPECT_EQ(cache->EraseVersion("n", "2"), 0u);
}

// ---------------------------------------------------------------------------
// Concurrency

class ResponseCacheConcurrencyTest : public testing::TestWithParam<int> {};

// The answer for request `i`: its length and its values depend on `i`.
InferResponse AnswerFor(int i) {
  std::vector<float> values(static_cast<size_t>(1 + i % 7) * 64);
  for (size_t j = 0; j < values.size(); ++j) values[j] = static_cast<float>(i * 1000 + static_cast<int>(j));
  return MakeResponse("m", values);
}

TEST_P(ResponseCacheConcurrencyTest, EveryHitReturnsTheBytesInsertedForItsKey) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 48;
  constexpr int kIterations = 4000;
  // Room for about a third of the answers, so evictions happen throughout.
  auto cache = MakeCache(static_cast<size_t>(kKeys) * 1024, GetParam());

  std::vector<CacheKey> keys;
  std::vector<InferResponse> answers;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(cache->ComputeKey("m", "1", MakeRequest({static_cast<float>(i), 0, 0, 0})));
    answers.push_back(AnswerFor(i));
  }

  std::atomic<int> mismatches{0};
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint32_t state = 0x9e3779b9u * static_cast<uint32_t>(t + 1);
      std::vector<std::pair<int, InferResponse>> kept;  // Some hits outlive their entries.
      for (int n = 0; n < kIterations; ++n) {
        state = state * 1664525u + 1013904223u;
        const int i = static_cast<int>((state >> 8) % kKeys);
        if (std::optional<InferResponse> hit = cache->Lookup(keys[i])) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (hit->outputs.size() != 2 || Bytes(hit->outputs[0]) != Bytes(answers[i].outputs[0]) ||
              Bytes(hit->outputs[1]) != Bytes(answers[i].outputs[1])) {
            mismatches.fetch_add(1, std::memory_order_relaxed);
          }
          if (n % 50 == 0) kept.emplace_back(i, *std::move(hit));
        } else {
          cache->Insert(keys[i], answers[i]);
        }
        if (n % 1000 == 999 && t == 0) cache->EraseModel("m");
      }
      for (const auto& [i, response] : kept) {
        if (Bytes(response.outputs[0]) != Bytes(answers[i].outputs[0])) {
          mismatches.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(hits.load(), 0);
  const ResponseCache::Stats stats = cache->GetStats();
  EXPECT_EQ(stats.hits + stats.misses, static_cast<uint64_t>(kThreads * kIterations));
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_LE(stats.bytes, cache->max_bytes());
  // The running totals agree with a recount of what is left.
  size_t recount = 0;
  size_t bytes = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (cache->Lookup(keys[i]).has_value()) {
      ++recount;
      bytes += ResponseCache::EntryCharge(answers[i]);
    }
  }
  EXPECT_EQ(stats.entries, recount);
  EXPECT_EQ(stats.bytes, bytes);
}

INSTANTIATE_TEST_SUITE_P(Shards, ResponseCacheConcurrencyTest, testing::Values(1, 4, 16),
                         [](const testing::TestParamInfo<int>& info) {
                           return "Shards" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace ortserve::router
