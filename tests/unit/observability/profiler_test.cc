// SPDX-License-Identifier: Apache-2.0
#include "observability/profiler.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace ortserve::observability {
namespace {

// Whether gperftools' tcmalloc is the allocator this process really runs
// with: its library is mapped, and malloc resolves into it (not only
// whether the build asked for it, which is what Available() reads).
bool TcmallocIsTheAllocator() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool mapped = false;
  while (std::getline(maps, line)) mapped = mapped || line.find("libtcmalloc") != std::string::npos;
  if (!mapped) return false;
  Dl_info info{};
  void* malloc_address = dlsym(RTLD_DEFAULT, "malloc");
  return malloc_address != nullptr && dladdr(malloc_address, &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "libtcmalloc") != nullptr;
}

TEST(HeapProfilerTest, IsAvailableExactlyWhenTcmallocIsTheAllocator) {
  EXPECT_EQ(HeapProfiler::Available(), TcmallocIsTheAllocator());
}

#if ORTSERVE_TEST_TCMALLOC

// The sample's header: "heap profile: <objects>: <bytes> [<objects>: <bytes>] @ heap_v2/<period>".
struct Header {
  long long objects = -1, bytes = -1, period = -1;
};
Header ParseHeader(const std::string& profile) {
  Header header;
  std::smatch m;
  const std::string line = profile.substr(0, profile.find('\n'));
  if (std::regex_search(line, m, std::regex(R"(^heap profile:\s*(\d+):\s*(\d+)\s*\[.*\]\s*@ heap_v2/(\d+))"))) {
    header.objects = std::stoll(m[1]);
    header.bytes = std::stoll(m[2]);
    header.period = std::stoll(m[3]);
  }
  return header;
}

TEST(HeapProfilerTest, SamplingIsOffUntilEnabledAndTheSampleSeesLiveAllocations) {
  if (std::getenv("TCMALLOC_SAMPLE_PARAMETER") == nullptr) {
    EXPECT_EQ(HeapProfiler::SamplePeriod(), 0);
    HeapProfiler::EnableDefaultSampling();
    EXPECT_EQ(HeapProfiler::SamplePeriod(), HeapProfiler::kDefaultSamplePeriodBytes);
  }
  ASSERT_TRUE(HeapProfiler::SetSamplePeriod(64 * 1024).ok());
  // 64 MiB live in 1 MiB blocks: with a 64 KiB period nearly every block is sampled.
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.emplace_back(new char[1 << 20]);
    std::memset(blocks.back().get(), i, 1 << 20);
  }
  auto profile = HeapProfiler::Capture();
  ASSERT_TRUE(profile.ok()) << profile.status();
  ASSERT_EQ(profile->rfind("heap profile:", 0), 0u) << profile->substr(0, 200);
  const Header header = ParseHeader(*profile);
  EXPECT_EQ(header.period, 64 * 1024) << profile->substr(0, 200);
  // The header counts the sampled objects' own sizes (pprof scales them up);
  // a block 16 times the period is sampled with near certainty.
  EXPECT_GE(header.objects, 32) << profile->substr(0, 200);
  EXPECT_GE(header.bytes, 32LL << 20) << profile->substr(0, 200);
  EXPECT_NE(profile->find("MAPPED_LIBRARIES:"), std::string::npos);
  blocks.clear();
  ASSERT_TRUE(HeapProfiler::SetSamplePeriod(HeapProfiler::kDefaultSamplePeriodBytes).ok());
}

TEST(HeapProfilerTest, CaptureRefusesWhileSamplingIsOff) {
  const int64_t before = HeapProfiler::SamplePeriod();
  ASSERT_TRUE(HeapProfiler::SetSamplePeriod(0).ok());
  auto profile = HeapProfiler::Capture();
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(profile.status().message()).find("TCMALLOC_SAMPLE_PARAMETER"), std::string::npos);
  ASSERT_TRUE(HeapProfiler::SetSamplePeriod(before).ok());
  EXPECT_FALSE(HeapProfiler::SetSamplePeriod(-1).ok());
}

#else

TEST(HeapProfilerTest, CaptureIsUnimplementedWithoutTcmalloc) {
  auto profile = HeapProfiler::Capture();
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(HeapProfiler::SamplePeriod(), 0);
  EXPECT_EQ(HeapProfiler::SetSamplePeriod(1 << 19).code(), absl::StatusCode::kFailedPrecondition);
}

#endif

}  // namespace
}  // namespace ortserve::observability
