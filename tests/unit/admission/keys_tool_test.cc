// SPDX-License-Identifier: Apache-2.0
// ortserve-keys, run as an operator would: its keys verify against the file
// it writes, and what it refuses leaves the file as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "admission/api_keys.h"
#include "admission/jwt.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::ReadFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ToolRun {
  int exit_code = -1;
  std::string out{};  // stdout and stderr
};

ToolRun Keys(const std::string& args) {
  const std::string command = std::string(ORTSERVE_KEYS_PATH) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ToolRun run;
  if (pipe == nullptr) return run;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) run.out.append(buf, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(KeysToolTest, AGeneratedKeyVerifiesAgainstTheFileItWrote) {
  ScopedTempDir dir;
  const std::string file = dir.File("keys");
  const ToolRun run = Keys("generate --id ci-runner --scopes infer,model_control --models 'iris,sae_*' --key-file " + file);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const std::string key = run.out.substr(0, run.out.find('\n'));
  EXPECT_THAT(key, StartsWith("ortsk_ci-runner_"));
  EXPECT_EQ(ReadFile(file).find(key.substr(16)), std::string::npos);  // Only the hash is stored.
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto store = ApiKeyStore::Create({.path = file});
  ASSERT_TRUE(store.ok()) << store.status();
  auto identity = (*store)->Verify(key);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ((*identity)->scopes, (ScopeSet{Scope::kInfer, Scope::kModelControl}));
  EXPECT_FALSE((*identity)->models.Allows("other"));

  EXPECT_EQ(Keys("check --key-file " + file).out, file + ": 1 keys\n");
  const std::string before = ReadFile(file);
  const ToolRun duplicate = Keys("generate --id ci-runner --scopes infer --key-file " + file);
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_THAT(duplicate.out, HasSubstr("appears twice"));
  EXPECT_EQ(ReadFile(file), before);
  EXPECT_EQ(Keys("generate --id x --scopes root").exit_code, 1);
}

TEST(KeysToolTest, PrintsJwksTheServerAccepts) {
  ScopedTempDir dir;
  const ToolRun hs = Keys("jwk --kid k1 --hs256");
  ASSERT_EQ(hs.exit_code, 0) << hs.out;
  testing::ReplaceFile(dir.File("rsa.pem"), testing::TestRsaKey().PublicPem());
  const ToolRun rs = Keys("jwk --kid r1 --rsa-public-key " + dir.File("rsa.pem"));
  ASSERT_EQ(rs.exit_code, 0) << rs.out;
  testing::ReplaceFile(dir.File("jwks.json"), "{\"keys\":[" + hs.out + "," + rs.out + "]}");
  auto set = JwtKeySet::Parse(ReadFile(dir.File("jwks.json")));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->Find("k1")->alg, JwtAlgorithm::kHS256);
  EXPECT_EQ((*set)->Find("r1")->alg, JwtAlgorithm::kRS256);
  EXPECT_THAT(Keys("check-jwks --file " + dir.File("jwks.json")).out, HasSubstr("2 signing keys (HS256: 1, RS256: 1)"));
  EXPECT_EQ(Keys("jwk --kid x").exit_code, 1);
}

}  // namespace
}  // namespace ortserve::admission
