// SPDX-License-Identifier: Apache-2.0
// SAE verdicts end to end on the real binary (issue #18): each verdict an
// audit line (the patient as a keyed hash, never the text), each serious one
// an alert delivered to a webhook receiver in this test, signed, keyed by the
// request id; the outbox visible to operators; and a `kill -9` of the server
// after the verdict and before delivery loses and duplicates nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/alerts_test_receiver.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

using alerts::testing::TestReceiver;

constexpr char kSecret[] = "sae-alerts-test-webhook-secret";
constexpr char kPatientKey[] = "sae-alerts-test-patient-key-0123456789";
constexpr char kSerious[] = "I cant breathe and my throat is swelling and my lips turned blue";

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class SaeAlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/secret") << kSecret << "\n";
    std::ofstream(dir_.path() + "/patient_key") << kPatientKey << "\n";
  }
  std::vector<std::string> Args(const TestReceiver& receiver) const {
    return {"--model-repository", SourceDir() + "/models", "--model-control-mode", "explicit", "--load-model",
            "sae_classifier", "--alert-webhook", "physician=" + receiver.url(), "--alert-webhook-secret-file",
            "physician=" + dir_.path() + "/secret", "--alert-outbox", dir_.path() + "/outbox.db",
            "--alert-patient-hash-key-file", dir_.path() + "/patient_key", "--audit-log", audit()};
  }
  std::string audit() const { return dir_.path() + "/audit.jsonl"; }
  static HttpResponse Analyze(HttpClient& client, const std::string& request_id, const std::string& patient,
                              const std::string& text) {
    return client.Post("/api/v1/sae/analyze", R"({"patientId":")" + patient + R"(","reportText":")" + text + R"("})",
                       {{"X-Request-Id", request_id}});
  }

  TempDir dir_;
};

TEST_F(SaeAlertsTest, ASeriousVerdictIsAuditedAndReachesThePhysiciansWebhookSigned) {
  TestReceiver receiver(kSecret);
  auto server = ServerProcess::Start(Args(receiver));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());

  auto serious = Analyze(client, "req-serious-1", "patient-42", kSerious);
  ASSERT_EQ(serious.status, 200u) << serious.body;
  auto doc = Json(serious.body);
  ASSERT_TRUE(doc["isSAE"].GetBool()) << serious.body;
  EXPECT_TRUE(doc["alertQueued"].GetBool()) << serious.body;
  EXPECT_STREQ(doc["alertId"].GetString(), "req-serious-1");

  ASSERT_TRUE(receiver.WaitForApplied(1, absl::Seconds(10)));
  auto delivered = receiver.applied();
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_TRUE(delivered[0].signature_ok);
  EXPECT_EQ(delivered[0].key, "req-serious-1");
  EXPECT_EQ(delivered[0].request_id, "req-serious-1");
  EXPECT_EQ(delivered[0].patient_key, TestReceiver::Hmac(kPatientKey, "patient-42"));
  EXPECT_EQ(delivered[0].body.find("patient-42"), std::string::npos) << "the raw patient id left the server";
  EXPECT_EQ(delivered[0].body.find("throat"), std::string::npos) << "the report text left the server";

  // A second report, whatever the demo model makes of it: one audit line each.
  auto other = Analyze(client, "req-2", "patient-43", "I went for a walk in the park today");
  ASSERT_EQ(other.status, 200u) << other.body;
  const bool other_serious = Json(other.body)["isSAE"].GetBool();

  auto lines = Lines(audit());
  std::vector<std::string> verdicts;
  for (const auto& line : lines) {
    if (line.find("\"sae_verdict\"") != std::string::npos) verdicts.push_back(line);
  }
  ASSERT_EQ(verdicts.size(), 2u) << "every answered verdict is on disk before the answer";
  for (const auto& line : verdicts) {
    auto entry = Json(line);
    EXPECT_TRUE(entry.IsObject()) << line;
    EXPECT_EQ(line.find("patient-4"), std::string::npos) << "raw patient id in the audit log: " << line;
    EXPECT_EQ(line.find("throat"), std::string::npos) << "report text in the audit log: " << line;
    EXPECT_NE(line.find("\"patientKey\""), std::string::npos) << line;
  }
  EXPECT_NE(verdicts[0].find("\"requestId\":\"req-serious-1\""), std::string::npos) << verdicts[0];
  EXPECT_NE(verdicts[0].find("\"verdict\":\"serious\""), std::string::npos) << verdicts[0];
  EXPECT_NE(verdicts[0].find("\"alert\":\"queued\""), std::string::npos) << verdicts[0];
  EXPECT_NE(verdicts[0].find("\"model\":\"sae_classifier\""), std::string::npos) << verdicts[0];
  EXPECT_NE(verdicts[0].find("\"modelDigest\":\""), std::string::npos) << verdicts[0];
  EXPECT_NE(verdicts[0].find("\"client\":{\"id\":\"anonymous\""), std::string::npos) << verdicts[0];

  // Operators see the outbox.
  const int64_t serious_count = other_serious ? 2 : 1;
  HttpResponse state;
  // The outbox marks an alert delivered once the receiver's 200 is read.
  EXPECT_TRUE(WaitUntil([&] {
    state = client.Get("/v2/admin/alerts?state=delivered");
    return state.status == 200u && Json(state.body)["counts"]["delivered"].GetInt64() == serious_count;
  }, 10)) << state.body;
  auto outbox = Json(state.body);
  EXPECT_EQ(outbox["counts"]["delivered"].GetInt64(), serious_count) << state.body;
  EXPECT_EQ(outbox["counts"]["pending"].GetInt64(), 0) << state.body;
  ASSERT_EQ(outbox["alerts"].Size(), static_cast<size_t>(serious_count));
  // Newest first.
  EXPECT_STREQ(outbox["alerts"][serious_count - 1]["alertId"].GetString(), "req-serious-1");
  EXPECT_STREQ(outbox["alerts"][serious_count - 1]["state"].GetString(), "delivered");
  EXPECT_EQ(client.Get("/v2/admin/alerts?state=bogus").status, 400u);
  auto replay = client.Post("/v2/admin/alerts/replay", "");
  EXPECT_EQ(replay.status, 200u) << replay.body;
  EXPECT_EQ(replay.body, R"({"replayed":0})");
}

TEST_F(SaeAlertsTest, KillDashNineAfterTheVerdictLosesNoAlertAndSendsNoneTwice) {
  TestReceiver receiver(kSecret);
  receiver.Down();  // The physician's endpoint is unreachable when the verdicts come.
  std::vector<std::string> answered;
  {
    auto server = ServerProcess::Start(Args(receiver));
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient client((*server)->http_port());
    for (int i = 0; i < 3; ++i) {
      const std::string id = "req-kill-" + std::to_string(i);
      auto response = Analyze(client, id, "patient-7", kSerious);
      ASSERT_EQ(response.status, 200u) << response.body;
      auto doc = Json(response.body);
      ASSERT_TRUE(doc["isSAE"].GetBool());
      ASSERT_TRUE(doc["alertQueued"].GetBool()) << response.body;
      answered.push_back(id);
    }
    EXPECT_EQ((*server)->Stop(SIGKILL, 10), 128 + SIGKILL);
  }
  EXPECT_EQ(receiver.requests(), 0u);
  receiver.Up();
  auto restarted = ServerProcess::Start(Args(receiver));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(receiver.WaitForApplied(3, absl::Seconds(20))) << "alerts lost across kill -9";
  // Let any duplicate arrive before judging.
  absl::SleepFor(absl::Seconds(1));
  auto applied = receiver.applied();
  ASSERT_EQ(applied.size(), 3u);
  for (size_t i = 0; i < applied.size(); ++i) EXPECT_EQ(applied[i].key, answered[i]) << "out of order for the patient";
  EXPECT_EQ(receiver.repeats(), 0u);
}

}  // namespace
}  // namespace ortserve::testing
