// SPDX-License-Identifier: Apache-2.0
// What a deployment relies on from the ortserve process (issue #19): the
// version and git commit it reports (--version, ortserve_build_info), its
// shutdown sequence behind a load balancer (--shutdown-delay-seconds), and
// its flags taken from ORTSERVE_* environment variables (a ConfigMap).
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

// Runs `command` through the shell; its stdout, and its exit status in `status`.
std::string Capture(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// The commit of the source tree, or "" when it is not a git checkout.
std::string SourceCommit() {
  int status = 0;
  std::string out = Capture("git -C '" + SourceDir() + "' rev-parse HEAD 2>/dev/null", &status);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return status == 0 ? out : "";
}

const std::string kIrisBody =
    R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]})";

// A server of the demo iris_classifier alone, plus `extra` flags.
absl::StatusOr<std::unique_ptr<ServerProcess>> StartIris(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--model-repository", SourceDir() + "/models", "--model-control-mode",
                                   "explicit", "--load-model", "iris_classifier"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ServerProcess::Start(std::move(args));
}

TEST(DeployProcessTest, VersionFlagPrintsVersionAndTheCommitItWasBuiltFrom) {
  int status = -1;
  const std::string out = Capture("'" + ServerBinary() + "' --version", &status);
  EXPECT_EQ(status, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(^ortserve (\S+) \(commit (\S+), ONNX Runtime (\S+)\)\n$)")))
      << out;
  EXPECT_EQ(m[1].str(), "0.1.0");
  const std::string commit = SourceCommit();
  // A tree without .git (a tarball) reports "unknown" unless the build set
  // ORTSERVE_GIT_COMMIT; a checkout reports its HEAD.
  EXPECT_EQ(m[2].str(), commit.empty() ? "unknown" : commit) << out << "(built before the last commit? rebuild)";
  // --version needs no other flag (--model-repository is otherwise required).
}

TEST(DeployProcessTest, BuildInfoMetricCarriesVersionAndCommit) {
  auto server = StartIris({"--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient metrics((*server)->metrics_port());
  const std::string text = metrics.Get("/metrics").body;
  const std::string commit = SourceCommit().empty() ? "unknown" : SourceCommit();
  EXPECT_EQ(MetricValue(text, "ortserve_build_info",
                        {R"(version="0.1.0")", "commit=\"" + commit + "\"", R"(onnxruntime="1.29.0")"}),
            1)
      << text.substr(0, 2000);
}

TEST(DeployProcessTest, ShutdownDelayServesNewRequestsWhileReadinessIsOffThenDrains) {
  auto server = StartIris({"--shutdown-delay-seconds", "3"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  HttpClient kept(port);  // A load balancer's kept-alive connection.
  ASSERT_EQ(kept.Get("/v2/health/ready").status, 200u);

  const auto signalled = std::chrono::steady_clock::now();
  kill((*server)->pid(), SIGTERM);
  // Readiness goes false at once, so that health checks take the replica out...
  EXPECT_TRUE(WaitUntil([&] { return kept.Get("/v2/health/ready").status == 503; }, 2));
  // ...while requests that still arrive, on kept-alive and on new connections,
  // are served, not refused.
  auto answered = kept.Post("/v2/models/iris_classifier/infer", kIrisBody);
  EXPECT_EQ(answered.status, 200u) << answered.body;
  HttpClient fresh(port);
  answered = fresh.Post("/v2/models/iris_classifier/infer", kIrisBody);
  EXPECT_EQ(answered.status, 200u) << answered.body;
  EXPECT_EQ(fresh.Get("/v2/health/ready").status, 503u);
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(3)) << "the checks outlasted the delay";

  EXPECT_EQ((*server)->Stop(SIGTERM, 30), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(3));
  EXPECT_NE((*server)->Output().find("still serving for 3s"), std::string::npos) << (*server)->Output();
}

TEST(DeployProcessTest, FlagsComeFromOrtserveEnvironmentVariablesAndTheCommandLineWins) {
  // As a ConfigMap would set them.
  ASSERT_EQ(setenv("ORTSERVE_LOG_FORMAT", "text", 1), 0);
  ASSERT_EQ(setenv("ORTSERVE_MODEL_CONTROL_MODE", "explicit", 1), 0);
  ASSERT_EQ(setenv("ORTSERVE_LOAD_MODEL", "string_length", 1), 0);
  ASSERT_EQ(setenv("ORTSERVE_MODEL_REPOSITORY", "/nonexistent", 1), 0);
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models"});
  unsetenv("ORTSERVE_LOG_FORMAT");
  unsetenv("ORTSERVE_MODEL_CONTROL_MODE");
  unsetenv("ORTSERVE_LOAD_MODEL");
  unsetenv("ORTSERVE_MODEL_REPOSITORY");
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Get("/v2/models/string_length/ready").status, 200u);
  EXPECT_NE(client.Get("/v2/models/iris_classifier/ready").status, 200u);  // Explicit mode: not loaded.
  // Text logs, not the default JSON.
  EXPECT_EQ((*server)->Output().find("{\"timestamp\""), std::string::npos) << (*server)->Output().substr(0, 500);
}

// KServe's storage initializer, given a storageUri that names one file,
// leaves /mnt/models/model.onnx with no Triton layout around it; KServe's
// runtime passes the InferenceService name as --model-name.
TEST(DeployProcessTest, SingleModelOnnxAtTheRepositoryRootIsServedUnderModelName) {
  TempDir repo;
  std::filesystem::copy_file(SourceDir() + "/models/iris_classifier/1/model.onnx", repo.path() + "/model.onnx");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-name", "iris"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Get("/v2/models/iris/ready").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/iris/versions/1/ready").status, 200u);
  auto response = client.Post("/v2/models/iris/infer", kIrisBody);
  EXPECT_EQ(response.status, 200u) << response.body;
  // The source folder (read-only under KServe) is not written to.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(repo.path()), {}), 1);
}

TEST(DeployProcessTest, SingleModelLayoutTakesItsConfigAndLeavesNoStagingBehind) {
  TempDir repo;
  TempDir staging;
  std::filesystem::copy_file(SourceDir() + "/models/iris_classifier/1/model.onnx", repo.path() + "/model.onnx");
  {
    std::ofstream config(repo.path() + "/config.pbtxt");
    config << "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 100 }\n";
  }
  auto server = ServerProcess::Start(
      {"--model-repository", repo.path(), "--model-name", "iris", "--model-staging-dir", staging.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  auto config = client.Get("/v2/models/iris/config");
  ASSERT_EQ(config.status, 200u) << config.body;
  EXPECT_NE(config.body.find("\"max_batch_size\":8"), std::string::npos) << config.body;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(staging.path()), {}), 1);
  EXPECT_EQ((*server)->Stop(SIGTERM, 30), 0);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(staging.path()), {}), 0) << "staging left behind";
}

TEST(DeployProcessTest, ABadModelNameForTheSingleFileLayoutStopsStartUp) {
  TempDir repo;
  std::filesystem::copy_file(SourceDir() + "/models/iris_classifier/1/model.onnx", repo.path() + "/model.onnx");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-name", "../etc"});
  EXPECT_FALSE(server.ok());
}

}  // namespace
}  // namespace ortserve::testing
