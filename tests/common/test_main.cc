// SPDX-License-Identifier: Apache-2.0
// The main of every GoogleTest binary here. GoogleTest runs the tests of a
// suite whose SetUpTestSuite failed as skipped: it prints "[  SKIPPED ]"
// for each and exits 1, and CTest's skip pattern for discovered tests
// matches that line, so a suite that could not set up (a missing tool, a
// server that would not start) counted as skipped, never as failed. Here
// such a test ends the run with exit 1 before it is reported as skipped.
#include <cstdio>
#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

class FailWhenSuiteSetUpFailed : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo& test) override {
    const ::testing::TestSuite* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    if (suite == nullptr || !suite->ad_hoc_test_result().Failed()) return;
    std::printf("[  FAILED  ] %s.%s: its suite's SetUpTestSuite failed (above)\n", test.test_suite_name(),
                test.name());
    std::fflush(stdout);
    std::_Exit(1);
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new FailWhenSuiteSetUpFailed);
  return RUN_ALL_TESTS();
}
