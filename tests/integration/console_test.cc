// SPDX-License-Identifier: Apache-2.0
// The live console (docs/console.md) on the real `ortserve` binary: its page
// and snapshot over HTTP, the flag that turns it off, who may read it once
// authentication is on, and the page itself in Debian's chromium (headless,
// driven through the DevTools protocol by console_browser.mjs): it loads
// without console errors, shows the demo models, plots traffic sent to
// them, and unloads a model through its button.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "admission/api_keys.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

std::vector<std::string> DemoServerArgs() {
  return {"--model-repository", SourceDir() + "/models", "--model-control-mode", "explicit", "--load-model", "*"};
}

const rapidjson::Value* FindModel(const rapidjson::Value& snapshot, const std::string& name) {
  for (const auto& model : snapshot["models"].GetArray()) {
    if (name == model["name"].GetString()) return &model;
  }
  return nullptr;
}

TEST(ConsoleHttpTest, ServesThePageAndTheSnapshot) {
  auto server = ServerProcess::Start(DemoServerArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());

  HttpResponse page = client.Get("/console");
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.Header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page.Header("x-frame-options"), "DENY");
  EXPECT_NE(page.body.find("<script src=\"/console/console.js\""), std::string::npos);
  const std::string etag = page.Header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(client.Request("GET", "/console", "", {{"If-None-Match", etag}}).status, 304u);
  HttpResponse script = client.Get("/console/console.js");
  EXPECT_EQ(script.status, 200u);
  EXPECT_EQ(script.Header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(client.Get("/console/console.css").status, 200u);
  EXPECT_EQ(client.Post("/console", "").status, 405u);

  // Traffic, then the snapshot shows it once the sampler has run twice.
  const std::string infer =
      R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]})";
  for (int i = 0; i < 20; ++i) ASSERT_EQ(client.Post("/v2/models/iris_classifier/infer", infer).status, 200u);
  rapidjson::Document doc;
  ASSERT_TRUE(WaitUntil([&] {
    HttpResponse r = client.Get("/console/api/snapshot");
    if (r.status != 200) return false;
    doc = Json(r.body);
    const rapidjson::Value* iris = FindModel(doc["snapshot"], "iris_classifier");
    return iris != nullptr && (*iris)["requests"].GetDouble() >= 20;
  }, 30));
  EXPECT_EQ(doc["caller"]["id"].GetString(), std::string("anonymous"));
  ASSERT_EQ(doc["caller"]["controlModels"].Size(), 1u);  // Authentication off: every action.
  EXPECT_STREQ(doc["caller"]["controlModels"][0].GetString(), "*");
  const auto& snapshot = doc["snapshot"];
  EXPECT_STREQ(snapshot["server"]["controlMode"].GetString(), "explicit");
  EXPECT_TRUE(snapshot["server"]["ready"].GetBool());
  EXPECT_GT(snapshot["server"]["residentBytes"].GetDouble(), 0);
  EXPECT_GE(snapshot["server"]["openConnections"].GetInt64(), 1);
  const rapidjson::Value* iris = FindModel(snapshot, "iris_classifier");
  ASSERT_NE(iris, nullptr);
  EXPECT_STREQ((*iris)["versions"][0]["state"].GetString(), "READY");
  EXPECT_EQ((*iris)["versions"][0]["instances"].GetInt(), 1);
  EXPECT_STREQ((*iris)["versions"][0]["devices"].GetString(), "cpu");
  EXPECT_GT((*iris)["versions"][0]["memoryBytes"].GetUint64(), 0u);
  EXPECT_EQ((*iris)["batchSizes"]["counts"].Size(), (*iris)["batchSizes"]["le"].Size());
  EXPECT_TRUE(snapshot["series"]["full"].GetBool());
  EXPECT_TRUE(snapshot["series"]["models"].HasMember("iris_classifier"));
  EXPECT_STREQ(snapshot["sae"]["model"].GetString(), "sae_classifier");

  // The page's next poll gets only what is new.
  const int64_t seq = snapshot["seq"].GetInt64();
  ASSERT_TRUE(WaitUntil([&] {
    doc = Json(client.Get("/console/api/snapshot?since=" + std::to_string(seq)).body);
    return !doc["snapshot"].HasMember("unchanged");
  }, 10));
  EXPECT_FALSE(doc["snapshot"]["series"]["full"].GetBool());
  EXPECT_EQ(client.Get("/console/api/snapshot?since=x1").status, 400u);
  EXPECT_EQ(client.Get("/console/api/snapshot?since=-7").status, 400u);
}

TEST(ConsoleHttpTest, TheFlagTurnsItOff) {
  std::vector<std::string> args = DemoServerArgs();
  args.push_back("--console=false");
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Get("/console").status, 404u);
  EXPECT_EQ(client.Get("/console/api/snapshot").status, 404u);
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
}

// An API key file for the tests with authentication on.
class KeyFile {
 public:
  // Adds a key and returns its secret.
  std::string Add(const std::string& id, std::vector<admission::Scope> scopes, std::vector<std::string> models = {}) {
    admission::ApiKeySpec spec;
    spec.id = id;
    for (auto s : scopes) spec.scopes.Add(s);
    if (!models.empty()) spec.models = *admission::ModelAllowList::Only(models);
    auto generated = admission::GenerateApiKey(spec);
    EXPECT_TRUE(generated.ok()) << generated.status();
    lines_ += generated->line + "\n";
    return generated->key;
  }
  // The server's arguments, with the file written.
  std::vector<std::string> ServerArgs() {
    std::ofstream(dir_.path() + "/keys") << lines_;
    std::vector<std::string> args = DemoServerArgs();
    args.insert(args.end(), {"--api-keys-file", dir_.path() + "/keys"});
    return args;
  }

 private:
  TempDir dir_;
  std::string lines_;
};

TEST(ConsoleHttpTest, TheSnapshotNeedsTheAdminScope) {
  KeyFile keys;
  const std::string infer = keys.Add("inf", {admission::Scope::kInfer});
  const std::string admin = keys.Add("adm", {admission::Scope::kAdmin});
  const std::string operator_key = keys.Add("op", {admission::Scope::kAdmin, admission::Scope::kModelControl}, {"iris*"});
  auto server = ServerProcess::Start(keys.ServerArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());

  // The page's files hold no data: a browser loads them before it can send
  // a credential.
  EXPECT_EQ(client.Get("/console").status, 200u);
  EXPECT_EQ(client.Get("/console/console.js").status, 200u);
  HttpClient anonymous((*server)->http_port());
  EXPECT_EQ(anonymous.Get("/console/api/snapshot").status, 401u);
  HttpClient wrong_scope((*server)->http_port());
  EXPECT_EQ(wrong_scope.Request("GET", "/console/api/snapshot", "", {{"Authorization", "Bearer " + infer}}).status,
            403u);

  HttpResponse r = client.Request("GET", "/console/api/snapshot", "", {{"Authorization", "Bearer " + admin}});
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = Json(r.body);
  EXPECT_STREQ(doc["caller"]["id"].GetString(), "adm");
  EXPECT_TRUE(doc["caller"]["canSetLogLevel"].GetBool());
  EXPECT_EQ(doc["caller"]["controlModels"].Size(), 0u);  // No model_control: no load or unload buttons.

  r = client.Request("GET", "/console/api/snapshot", "", {{"X-API-Key", operator_key}});
  ASSERT_EQ(r.status, 200u) << r.body;
  doc = Json(r.body);
  ASSERT_EQ(doc["caller"]["controlModels"].Size(), 1u);
  EXPECT_STREQ(doc["caller"]["controlModels"][0].GetString(), "iris*");
}

// Debian's chromium and Node (the DevTools client) are both needed;
// scripts/setup.sh installs them.
std::string Chromium() {
  if (const char* path = std::getenv("ORTSERVE_CHROMIUM"); path != nullptr && *path != '\0') return path;
  return "/usr/bin/chromium";
}

// Runs console_browser.mjs against the server at `port` with `extra`
// arguments; what it saw, or a failed test.
absl::StatusOr<rapidjson::Document> DriveBrowser(ServerProcess& server, const std::string& extra) {
  std::string command = "/usr/bin/node --experimental-websocket --no-warnings " + SourceDir() +
                        "/tests/integration/console_browser.mjs --chromium " + Chromium() +
                        " --base http://127.0.0.1:" + std::to_string(server.http_port()) +
                        " --traffic-model iris_classifier --unload-model string_length " + extra;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("cannot run node");
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  rapidjson::Document doc;
  doc.Parse(out.data(), out.size());
  if (doc.HasParseError() || !doc.IsObject()) return absl::InternalError("the driver printed no JSON: " + out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(std::string(doc.HasMember("failure") ? doc["failure"].GetString() : out) +
                               "\nserver:\n" + server.Output());
  }
  return doc;
}

#define SKIP_WITHOUT_BROWSER()                                                                              \
  if (access(Chromium().c_str(), X_OK) != 0) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh)"; \
  if (access("/usr/bin/node", X_OK) != 0) GTEST_SKIP() << "node is not installed (scripts/setup.sh)"

TEST(ConsoleBrowserTest, LoadsWithoutErrorsPlotsTrafficAndUnloads) {
  SKIP_WITHOUT_BROWSER();
  auto server = ServerProcess::Start(DemoServerArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  // Pictures for docs/console.md: ORTSERVE_CONSOLE_SCREENSHOTS=docs/images
  // (scripts/console_screenshots.sh takes them under a richer load).
  std::string extra;
  if (const char* dir = std::getenv("ORTSERVE_CONSOLE_SCREENSHOTS"); dir != nullptr && *dir != '\0') {
    extra = std::string("--screenshots ") + dir;
  }
  auto driven = DriveBrowser(**server, extra);
  ASSERT_TRUE(driven.ok()) << driven.status();
  const rapidjson::Document& doc = *driven;

  // No console error, exception or failed load in the whole session.
  for (const auto& error : doc["errors"].GetArray()) ADD_FAILURE() << "browser: " << error.GetString();
  // Every demo model is on the page.
  std::vector<std::string> shown;
  for (const auto& m : doc["models"].GetArray()) shown.emplace_back(m.GetString());
  for (const char* model : {"iris_classifier", "multi_io", "sae_classifier", "string_length", "text_embedding"}) {
    EXPECT_NE(std::find(shown.begin(), shown.end(), model), shown.end()) << model;
  }
  // The requests/s plot of the model that got traffic went from flat to up.
  EXPECT_EQ(doc["rpsMaxBefore"].GetDouble(), 0);
  EXPECT_GT(doc["trafficOk"].GetInt(), 0);
  EXPECT_GT(doc["rpsMaxAfter"].GetDouble(), 0);
  EXPECT_GT(doc["pointsAfter"].GetInt(), doc["pointsBefore"].GetInt());
  EXPECT_GT(doc["latencyPoints"].GetInt(), 0);
  // Refreshes move nothing (a little slack for font metrics).
  EXPECT_LT(doc["clsAfterTraffic"].GetDouble() - doc["clsAfterFirstRender"].GetDouble(), 0.02);
  // The log-level control, confirmed, set the server's log level.
  EXPECT_EQ(doc["logSettings"]["log_verbose_level"].GetInt(), 1);
  // The unload button, confirmed, unloaded the model; the page says so and
  // now offers to load it.
  EXPECT_STREQ(doc["stateBefore"].GetString(), "READY");
  EXPECT_TRUE(doc["unloadButtonShown"].GetBool());
  EXPECT_NE(std::string(doc["confirmText"].GetString()).find("string_length"), std::string::npos);
  EXPECT_STREQ(doc["stateAfter"].GetString(), "UNAVAILABLE");
  EXPECT_TRUE(doc["loadButtonShown"].GetBool());
  // The load button, confirmed, brought it back.
  EXPECT_STREQ(doc["stateReloaded"].GetString(), "READY");
  HttpClient client(port);
  EXPECT_EQ(client.Get("/v2/models/string_length/ready").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/iris_classifier/ready").status, 200u);
}

TEST(ConsoleBrowserTest, AsksForACredentialWhenAuthenticationIsOn) {
  SKIP_WITHOUT_BROWSER();
  KeyFile keys;
  const std::string admin = keys.Add("adm", {admission::Scope::kAdmin});
  auto server = ServerProcess::Start(keys.ServerArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  auto driven = DriveBrowser(**server, "--credential " + admin);
  ASSERT_TRUE(driven.ok()) << driven.status();
  const rapidjson::Document& doc = *driven;
  for (const auto& error : doc["errors"].GetArray()) ADD_FAILURE() << "browser: " << error.GetString();
  // Nothing is shown before the credential; the banner says what is needed.
  EXPECT_EQ(doc["modelsBeforeSignIn"].GetInt(), 0);
  EXPECT_NE(std::string(doc["bannerBeforeSignIn"].GetString()).find("credential"), std::string::npos);
  // With an admin key: the models and the log-level control, but no load or
  // unload button (the key lacks model_control).
  EXPECT_GE(doc["models"].Size(), 5u);
  EXPECT_TRUE(doc["logControlShown"].GetBool());
  EXPECT_EQ(doc["unloadButtons"].GetInt(), 0);
}

}  // namespace
}  // namespace ortserve::testing
