// SPDX-License-Identifier: Apache-2.0
// Alert delivery end to end inside one process: AlertService -> SQLite outbox
// -> dispatcher -> a real HTTP receiver on a port of its own (TestReceiver).
// The receiver outage is 7 s here (the issue's "a minute" with the backoff
// capped at 1 s instead of 30 s; docs/alerts.md: the longest wait after a
// receiver is back is the backoff cap).
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/synchronization/notification.h"
#include "alerts/alert_service.h"
#include "integration/alerts_test_receiver.h"

namespace ortserve::alerts {
namespace {

using ::ortserve::alerts::testing::TestReceiver;

constexpr char kSecret[] = "webhook-secret-0123456789";
constexpr char kPatientKey[] = "patient-hash-key-0123456789";

class AlertDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("alerts_delivery_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  AlertServiceOptions Options() {
    AlertServiceOptions o;
    o.outbox.path = (dir_ / "outbox.db").string();
    o.outbox.backoff = {.initial = absl::Milliseconds(100), .multiplier = 2, .max = absl::Seconds(1), .jitter = 0.5};
    o.dispatcher.receivers = {{"pi", receiver_.url(), kSecret}};
    o.dispatcher.workers = 4;
    o.dispatcher.request_timeout = absl::Seconds(2);
    o.patient_hash_key = kPatientKey;
    o.registry = registry_;
    return o;
  }
  std::unique_ptr<AlertService> Start(AlertServiceOptions o) {
    auto service = AlertService::Create(std::move(o));
    EXPECT_TRUE(service.ok()) << service.status();
    return service.ok() ? *std::move(service) : nullptr;
  }
  static SeriousVerdict Verdict(int patient, int n) {
    return SeriousVerdict{.request_id = "req-p" + std::to_string(patient) + "-" + std::to_string(1000 + n),
                          .patient_id = "MRN-" + std::to_string(patient),
                          .model = "sae",
                          .version = "1",
                          .probability = 0.9,
                          .threshold = 0.5,
                          .time = absl::Now()};
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_->Collect()); }
  bool WaitForMetric(const std::string& line, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      if (Metrics().find(line) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  // Each patient's applied alerts are in request order ("req-p<P>-<N>").
  static void ExpectOrderPerPatient(const std::vector<TestReceiver::Delivery>& applied) {
    std::map<std::string, std::string> last;
    for (const auto& d : applied) {
      auto [it, inserted] = last.emplace(d.patient_key, d.request_id);
      if (!inserted) {
        EXPECT_LT(it->second, d.request_id) << "patient " << d.patient_key << " got " << d.request_id << " after "
                                            << it->second;
        it->second = d.request_id;
      }
    }
  }

  std::filesystem::path dir_;
  TestReceiver receiver_{kSecret};
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
};

TEST_F(AlertDeliveryTest, DeliversASignedAlertWithTheRequestIdAsIdempotencyKey) {
  auto service = Start(Options());
  absl::Notification durable;
  absl::Status durable_status;
  SeriousVerdict v = Verdict(7, 1);
  ASSERT_TRUE(service
                  ->OnSeriousVerdict(v,
                                     [&](absl::Status s) {
                                       durable_status = s;
                                       durable.Notify();
                                     })
                  .ok());
  ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(durable_status.ok()) << durable_status;
  ASSERT_TRUE(receiver_.WaitForApplied(1, absl::Seconds(10)));
  const TestReceiver::Delivery d = receiver_.applied()[0];
  EXPECT_TRUE(d.signature_ok);
  EXPECT_EQ(d.key, v.request_id);
  EXPECT_EQ(d.request_id, v.request_id);
  EXPECT_EQ(d.attempt, 1);
  EXPECT_EQ(d.patient_key, TestReceiver::Hmac(kPatientKey, "MRN-7"));
  EXPECT_EQ(d.body.find("MRN-7"), std::string::npos);
  EXPECT_NE(d.body.find(R"("type":"serious_adverse_event")"), std::string::npos);

  EXPECT_TRUE(WaitForMetric("ortserve_alerts_delivered_total{receiver=\"pi\"} 1", absl::Seconds(5))) << Metrics();
  EXPECT_TRUE(WaitForMetric("ortserve_alerts_pending{receiver=\"pi\"} 0", absl::Seconds(5))) << Metrics();
  EXPECT_NE(Metrics().find("ortserve_alerts_delivery_delay_seconds_count{receiver=\"pi\"} 1"), std::string::npos);
  auto delivered = service->outbox().Snapshot(SnapshotQuery::Of(AlertState::kDelivered));
  ASSERT_TRUE(delivered.ok());
  ASSERT_EQ(delivered->size(), 1u);
  EXPECT_EQ((*delivered)[0].alert_id, v.request_id);

  // The same verdict again (a caller retrying): not sent twice.
  ASSERT_TRUE(service->EnqueueNow(v).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver_.requests(), 1u);
}

TEST_F(AlertDeliveryTest, KeepsEachPatientsOrderAndP99UnderTwoSecondsWithAHealthyReceiver) {
  receiver_.SetDelay(absl::Milliseconds(30));  // Random 0..30 ms answers: reordering would show.
  auto service = Start(Options());
  constexpr int kPatients = 20;
  constexpr int kPerPatient = 10;
  std::map<std::string, absl::Time> verdict_time;
  for (int n = 0; n < kPerPatient; ++n) {
    for (int p = 0; p < kPatients; ++p) {
      SeriousVerdict v = Verdict(p, n);
      verdict_time[v.request_id] = v.time;
      ASSERT_TRUE(service->OnSeriousVerdict(std::move(v)).ok());
      absl::SleepFor(absl::Milliseconds(5));  // ~200 verdicts/s offered.
    }
  }
  ASSERT_TRUE(receiver_.WaitForApplied(kPatients * kPerPatient, absl::Seconds(60)))
      << receiver_.applied_count() << " of " << kPatients * kPerPatient;
  const auto applied = receiver_.applied();
  ExpectOrderPerPatient(applied);
  EXPECT_EQ(receiver_.repeats(), 0u);
  EXPECT_EQ(receiver_.bad_signatures(), 0u);
  std::vector<double> delays;
  for (const auto& d : applied) delays.push_back(absl::ToDoubleSeconds(d.received - verdict_time.at(d.key)));
  std::sort(delays.begin(), delays.end());
  const double p99 = delays[delays.size() * 99 / 100];
  std::cout << "verdict-to-webhook over " << delays.size() << " alerts: p50 " << delays[delays.size() / 2]
            << " s, p99 " << p99 << " s, max " << delays.back() << " s\n";
  EXPECT_LT(p99, 2.0);
}

TEST_F(AlertDeliveryTest, AReceiverDownForSecondsGetsEveryAlertInOrderOnceBack) {
  auto service = Start(Options());
  // Outage: 2 s of 503s, then 5 s refusing connections.
  receiver_.SetMode(TestReceiver::Mode::kFail503);
  constexpr int kPatients = 6;
  constexpr int kPerPatient = 10;
  int sent = 0;
  for (int n = 0; n < kPerPatient; ++n) {
    for (int p = 0; p < kPatients; ++p) {
      ASSERT_TRUE(service->EnqueueNow(Verdict(p, n)).ok());
      ++sent;
    }
    if (n == 3) {
      absl::SleepFor(absl::Seconds(2));
      auto failing = service->outbox().Snapshot(SnapshotQuery::Of(AlertState::kPending, 1000));
      ASSERT_TRUE(failing.ok());
      int with_503 = 0;
      for (const auto& e : *failing) with_503 += e.last_error.rfind("HTTP 503: receiver overloaded", 0) == 0;
      EXPECT_GT(with_503, 0);
      receiver_.Down();
    }
  }
  absl::SleepFor(absl::Seconds(5));
  EXPECT_EQ(receiver_.applied_count(), 0u);
  auto pending = service->outbox().Snapshot(SnapshotQuery::Of(AlertState::kPending, 1000));
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), static_cast<size_t>(sent));
  bool saw_refused = false;
  for (const auto& e : *pending) saw_refused |= e.last_error.rfind("connect: Connection refused", 0) == 0;
  EXPECT_TRUE(saw_refused);
  EXPECT_NE(Metrics().find("ortserve_alerts_pending{receiver=\"pi\"} 60"), std::string::npos) << Metrics();
  EXPECT_EQ(Metrics().find("ortserve_alerts_retries_total{receiver=\"pi\"} 0"), std::string::npos);

  receiver_.SetMode(TestReceiver::Mode::kOk);
  receiver_.Up();
  const absl::Time back = absl::Now();
  ASSERT_TRUE(receiver_.WaitForApplied(sent, absl::Seconds(20))) << receiver_.applied_count() << " of " << sent;
  std::cout << "all " << sent << " alerts delivered " << absl::ToDoubleSeconds(absl::Now() - back)
            << " s after the receiver came back\n";
  ExpectOrderPerPatient(receiver_.applied());
  EXPECT_EQ(receiver_.repeats(), 0u);
  EXPECT_TRUE(WaitForMetric("ortserve_alerts_pending{receiver=\"pi\"} 0", absl::Seconds(5)));
  EXPECT_TRUE(WaitForMetric("ortserve_alerts_delivered_total{receiver=\"pi\"} 60", absl::Seconds(5)));
}

TEST_F(AlertDeliveryTest, StopLeavesUnansweredAlertsPendingAndTheNextStartResendsThemWithTheSameKey) {
  receiver_.HangAfter(0);  // Applies, never answers.
  AlertServiceOptions o = Options();
  o.dispatcher.request_timeout = absl::Seconds(1);
  auto service = Start(o);
  for (int n = 0; n < 3; ++n) ASSERT_TRUE(service->EnqueueNow(Verdict(1, n)).ok());
  ASSERT_TRUE(receiver_.WaitForRequests(1, absl::Seconds(10)));
  const absl::Time stop_start = absl::Now();
  service->Stop();
  EXPECT_LT(absl::Now() - stop_start, absl::Seconds(3));  // Bounded by the request timeout.
  service.reset();
  // Only the patient's first alert was tried: its later ones waited for it.
  for (const auto& d : receiver_.deliveries()) EXPECT_EQ(d.key, "req-p1-1000");

  receiver_.SetMode(TestReceiver::Mode::kOk);
  service = Start(Options());
  ASSERT_TRUE(receiver_.WaitForApplied(3, absl::Seconds(20)));
  ExpectOrderPerPatient(receiver_.applied());
  EXPECT_GE(receiver_.repeats(), 1u);  // req-p1-1000 came again, same key, applied once.
  for (const auto& d : receiver_.deliveries()) {
    if (d.key == "req-p1-1000" && d.attempt > 1) SUCCEED();
  }
  auto counts = service->outbox().Counts();
  ASSERT_TRUE(counts.ok());
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while ((*service->outbox().Counts())[AlertState::kDelivered] < 3 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ((*service->outbox().Counts())[AlertState::kDelivered], 3);
}

TEST_F(AlertDeliveryTest, OnSeriousVerdictRefusesWhenItsIntakeOrTheOutboxIsFullInsteadOfBlocking) {
  receiver_.HangAfter(0);  // Nothing is ever delivered: the outbox fills.
  AlertServiceOptions o = Options();
  o.intake_capacity = 1;
  o.outbox.max_undelivered = 2;
  auto service = Start(o);
  // The outbox bound, one verdict at a time: 2 durable, then refused through `done`.
  std::vector<absl::StatusCode> durable;
  for (int n = 0; n < 4; ++n) {
    absl::Notification done;
    absl::StatusCode code = absl::StatusCode::kUnknown;
    ASSERT_TRUE(service
                    ->OnSeriousVerdict(Verdict(n, 0),
                                       [&](absl::Status s) {
                                         code = s.code();
                                         done.Notify();
                                       })
                    .ok());
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    durable.push_back(code);
  }
  EXPECT_EQ(durable, (std::vector<absl::StatusCode>{absl::StatusCode::kOk, absl::StatusCode::kOk,
                                                    absl::StatusCode::kResourceExhausted,
                                                    absl::StatusCode::kResourceExhausted}));
  // The intake bound: a burst is refused at once, never blocking the caller.
  int refused = 0;
  const absl::Time start = absl::Now();
  for (int n = 0; n < 50; ++n) {
    absl::Status s = service->OnSeriousVerdict(Verdict(100 + n, 0));
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      ++refused;
    }
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_GT(refused, 0);
  EXPECT_NE(Metrics().find("ortserve_alerts_enqueue_refused_total"), std::string::npos);
  service->Stop();
  EXPECT_EQ(service->OnSeriousVerdict(Verdict(99, 0)).code(), absl::StatusCode::kFailedPrecondition);
  receiver_.SetMode(TestReceiver::Mode::kOk);
}

// HTTPS: a receiver with a certificate made by the test (openssl CLI). The
// dispatcher verifies the chain against --alert-webhook-ca-file and the host
// name; without the CA, or for a name the certificate does not carry, the
// attempt fails and says why, and nothing is sent in the clear.
class AlertHttpsTest : public AlertDeliveryTest {
 protected:
  std::optional<TestReceiver::Tls> MakeCertificate(const std::string& san) {
    const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=receiver"
        " -addext subjectAltName=" + san + " -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) return std::nullopt;
    return TestReceiver::Tls{cert, key};
  }
};

TEST_F(AlertHttpsTest, DeliversOverVerifiedTlsAndRefusesAnUnverifiedPeer) {
  auto tls = MakeCertificate("IP:127.0.0.1,DNS:localhost");
  ASSERT_TRUE(tls.has_value()) << "openssl req failed";
  TestReceiver https(kSecret, tls);
  AlertServiceOptions o = Options();
  o.dispatcher.receivers = {{"trusted", https.url(), kSecret}, {"untrusted", https.url("/x", "localhost"), kSecret}};
  o.dispatcher.ca_file = tls->cert_file;
  auto service = Start(o);
  ASSERT_TRUE(service->EnqueueNow(Verdict(1, 0)).ok());
  // One alert, two receivers (by IP and by name) that happen to be one server.
  ASSERT_TRUE(https.WaitForRequests(2, absl::Seconds(10))) << https.requests();
  for (const auto& d : https.deliveries()) EXPECT_TRUE(d.signature_ok);
  EXPECT_EQ(https.applied_count(), 1u);
  service->Stop();
  service.reset();
  std::filesystem::remove(dir_ / "outbox.db");
  std::filesystem::remove(dir_ / "outbox.db-wal");
  std::filesystem::remove(dir_ / "outbox.db-shm");

  // The system CAs only: the self-signed receiver is refused.
  o = Options();
  o.dispatcher.receivers = {{"pi", https.url(), kSecret}};
  service = Start(o);
  ASSERT_TRUE(service->EnqueueNow(Verdict(2, 0)).ok());
  const absl::Time end = absl::Now() + absl::Seconds(10);
  std::string error;
  while (error.empty() && absl::Now() < end) {
    auto rows = service->outbox().Snapshot(SnapshotQuery::Of(AlertState::kPending));
    if (rows.ok() && !rows->empty()) error = (*rows)[0].last_error;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(error.rfind("TLS handshake:", 0), 0u) << error;
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
  EXPECT_EQ(https.requests(), 2u);  // Nothing more reached it.
  EXPECT_GE(https.tls_failures(), 1u);
}

TEST_F(AlertHttpsTest, RefusesACertificateForAnotherName) {
  auto tls = MakeCertificate("DNS:other.example");
  ASSERT_TRUE(tls.has_value()) << "openssl req failed";
  TestReceiver https(kSecret, tls);
  AlertServiceOptions o = Options();
  o.dispatcher.receivers = {{"pi", https.url(), kSecret}};
  o.dispatcher.ca_file = tls->cert_file;  // Trusted, but not for 127.0.0.1.
  auto service = Start(o);
  ASSERT_TRUE(service->EnqueueNow(Verdict(3, 0)).ok());
  const absl::Time end = absl::Now() + absl::Seconds(10);
  std::string error;
  while (error.empty() && absl::Now() < end) {
    auto rows = service->outbox().Snapshot(SnapshotQuery::Of(AlertState::kPending));
    if (rows.ok() && !rows->empty()) error = (*rows)[0].last_error;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(error.rfind("TLS handshake:", 0), 0u) << error;
  EXPECT_EQ(https.applied_count(), 0u);
}

}  // namespace
}  // namespace ortserve::alerts
