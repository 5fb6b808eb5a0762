// SPDX-License-Identifier: Apache-2.0
#include "alerts/signing.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "alerts/alert_service.h"

namespace ortserve::alerts {
namespace {

TEST(SigningTest, HmacMatchesRfc4231) {
  // RFC 4231, test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SigningTest, SignatureHeaderVerifiesAndRejectsTampering) {
  const std::string secret = "0123456789abcdef0123";
  const std::string body = R"({"alertId":"r1"})";
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  const std::string header = SignatureHeader(secret, 1700000000, body);
  EXPECT_EQ(header, "t=1700000000,v1=" + HmacSha256Hex(secret, "1700000000." + body));
  EXPECT_TRUE(VerifySignatureHeader(secret, header, body, now));
  EXPECT_FALSE(VerifySignatureHeader(secret, header, body + " ", now));
  EXPECT_FALSE(VerifySignatureHeader("another secret 1234", header, body, now));
  // Replayed too late, or a timestamp moved to make it fresh.
  EXPECT_FALSE(VerifySignatureHeader(secret, header, body, now + absl::Minutes(6)));
  EXPECT_FALSE(VerifySignatureHeader(secret, "t=1700000300," + header.substr(header.find("v1=")), body,
                                     now + absl::Minutes(5)));
  // Other fields and a second (rotated) signature are allowed.
  EXPECT_TRUE(VerifySignatureHeader(secret, header + ",v1=00,v0=x", body, now));
  for (const char* bad : {"", "t=,v1=", "t=abc,v1=00", "v1=00", "t=99999999999999999999,v1=00"}) {
    EXPECT_FALSE(VerifySignatureHeader(secret, bad, body, now)) << bad;
  }
}

TEST(SigningTest, KeyFilesAreTrimmedAndBounded) {
  const auto dir = std::filesystem::temp_directory_path() / ("alerts_signing_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  };
  auto good = ReadKeyFile("key", write("good", "0123456789abcdef0123\n"));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, "0123456789abcdef0123");
  auto short_key = ReadKeyFile("key", write("short", "tooshort\n"));
  EXPECT_EQ(short_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(short_key.status().message()).find("tooshort"), std::string::npos);  // Never the key.
  EXPECT_EQ(ReadKeyFile("key", write("huge", std::string(100000, 'k'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadKeyFile("key", (dir / "missing").string()).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(AlertPayloadTest, CarriesTheHashedPatientKeyNeverTheId) {
  PatientKeyHasher hasher("patient-hash-key-0123456789");
  SeriousVerdict v{.request_id = "req-42",
                   .patient_id = "MRN-000123",
                   .model = "sae",
                   .version = "3",
                   .probability = 0.97,
                   .threshold = 0.5,
                   .time = absl::FromUnixMicros(1700000000123456)};
  const std::string key = hasher.Hash(v.patient_id);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, hasher.Hash("MRN-000123"));
  EXPECT_NE(key, PatientKeyHasher("another-key-0123456789").Hash("MRN-000123"));
  const std::string body = AlertService::AlertPayload(v, key);
  EXPECT_EQ(body.find("MRN-000123"), std::string::npos);
  EXPECT_EQ(body,
            R"({"type":"serious_adverse_event","alertId":"req-42","requestId":"req-42","patientKey":")" + key +
                R"(","model":"sae","modelVersion":"3","probability":0.97,"threshold":0.5,)"
                R"("verdictTime":"2023-11-14T22:13:20.123456Z"})");
}

TEST(AlertPayloadTest, HostileVerdictFieldsAreRefused) {
  SeriousVerdict v;
  v.request_id = "req-1";
  v.patient_id = "p";
  v.probability = 0.9;
  v.threshold = 0.5;
  EXPECT_TRUE(AlertService::ValidateVerdict(v).ok());
  for (std::string id : {std::string(), std::string("a\r\nX-Evil: 1"), std::string("a b"), std::string("a,b"),
                         std::string(129, 'x'), std::string("caf\xc3\xa9")}) {
    v.request_id = id;
    EXPECT_EQ(AlertService::ValidateVerdict(v).code(), absl::StatusCode::kInvalidArgument) << id;
  }
  v.request_id = "req-1";
  v.patient_id = "";
  EXPECT_FALSE(AlertService::ValidateVerdict(v).ok());
  v.patient_id = "p";
  v.probability = std::nan("");
  EXPECT_FALSE(AlertService::ValidateVerdict(v).ok());
}

}  // namespace
}  // namespace ortserve::alerts
