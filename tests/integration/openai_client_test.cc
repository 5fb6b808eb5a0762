// SPDX-License-Identifier: Apache-2.0
// The official `openai` npm client against the real ortserve binary
// (issue 22): tests/integration/openai_client.mjs runs its checks (chat
// whole and streamed, a completion, a session, errors) and must exit 0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

TEST(OpenAiClientTest, TheOfficialNpmClientWorksAgainstTheServer) {
  if (access("/usr/bin/node", X_OK) != 0) GTEST_SKIP() << "node is not installed (scripts/setup.sh)";
  TempDir dir;
  ASSERT_TRUE(RunPython("import shutil; shutil.copytree('" + SourceDir() + "/models/tiny_decoder', '" + dir.path() +
                        "/tiny_decoder')")
                  .ok());
  auto server = ServerProcess::Start({"--model-repository", dir.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string command = "/usr/bin/node " + SourceDir() + "/tests/integration/openai_client.mjs --port " +
                              std::to_string((*server)->http_port()) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("all openai client checks passed"), std::string::npos) << output;
}

}  // namespace
}  // namespace ortserve::testing
