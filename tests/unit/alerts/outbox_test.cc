// SPDX-License-Identifier: Apache-2.0
#include "alerts/outbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "fakes/fake_clock.h"

namespace ortserve::alerts {
namespace {

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("alerts_outbox_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  OutboxOptions Options() {
    OutboxOptions o;
    o.path = (dir_ / "outbox.db").string();
    o.clock = &clock_;
    o.random = [] { return 0.0; };  // No jitter: exact schedules.
    return o;
  }
  std::unique_ptr<Outbox> OpenOutbox(OutboxOptions o) {
    auto outbox = Outbox::Open(std::move(o));
    EXPECT_TRUE(outbox.ok()) << outbox.status();
    return outbox.ok() ? *std::move(outbox) : nullptr;
  }
  NewAlert Alert(const std::string& id, const std::string& patient) {
    return NewAlert{id, patient, clock_.Now(), "{\"alertId\":\"" + id + "\"}"};
  }

  std::filesystem::path dir_;
  ::ortserve::testing::FakeClock clock_;
};

TEST_F(OutboxTest, EnqueueIsIdempotentPerReceiverAndAlertId) {
  auto outbox = OpenOutbox(Options());
  auto first = outbox->Enqueue(Alert("req-1", "p1"), {"a", "b"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->inserted, 2);
  auto again = outbox->Enqueue(Alert("req-1", "p1"), {"a", "b"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->inserted, 0);
  EXPECT_EQ(again->duplicates, 2);
  // A new receiver for the same id is a new row; the old ones stay single.
  auto wider = outbox->Enqueue(Alert("req-1", "p1"), {"a", "c"});
  ASSERT_TRUE(wider.ok());
  EXPECT_EQ(wider->inserted, 1);
  EXPECT_EQ(wider->duplicates, 1);
  EXPECT_EQ((*outbox->Counts())[AlertState::kPending], 3);

  // Delivered rows still answer a repeated enqueue: it is not sent twice.
  auto heads = outbox->DueHeads(10);
  ASSERT_TRUE(heads.ok());
  for (const auto& e : *heads) ASSERT_TRUE(outbox->MarkDelivered(e.seq).ok());
  auto after = outbox->Enqueue(Alert("req-1", "p1"), {"a", "b", "c"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->inserted, 0);
  EXPECT_EQ((*outbox->Counts())[AlertState::kPending], 0);
  EXPECT_EQ((*outbox->Counts())[AlertState::kDelivered], 3);
}

TEST_F(OutboxTest, OffersOnlyEachPatientsOldestPendingAlert) {
  auto outbox = OpenOutbox(Options());
  for (const char* id : {"p1-1", "p1-2", "p1-3"}) ASSERT_TRUE(outbox->Enqueue(Alert(id, "p1"), {"a"}).ok());
  for (const char* id : {"p2-1", "p2-2"}) ASSERT_TRUE(outbox->Enqueue(Alert(id, "p2"), {"a"}).ok());
  std::vector<std::string> order;
  for (int round = 0; round < 10; ++round) {
    auto heads = outbox->DueHeads(100);
    ASSERT_TRUE(heads.ok());
    if (heads->empty()) break;
    // One head per patient, never two of the same patient.
    std::set<std::string> patients;
    for (const auto& e : *heads) EXPECT_TRUE(patients.insert(e.patient_key).second) << e.alert_id;
    // Fail p1's head once: p1's later alerts must wait for it, p2 goes on.
    for (const auto& e : *heads) {
      if (e.alert_id == "p1-1" && e.attempts == 0) {
        ASSERT_TRUE(outbox->MarkAttemptFailed(e.seq, "HTTP 503").ok());
        continue;
      }
      order.push_back(e.alert_id);
      ASSERT_TRUE(outbox->MarkDelivered(e.seq).ok());
    }
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"p2-1", "p2-2", "p1-1", "p1-2", "p1-3"}));
}

TEST_F(OutboxTest, ReopeningTheDatabaseKeepsEveryPendingAlertAndItsSchedule) {
  {
    auto outbox = OpenOutbox(Options());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(outbox->Enqueue(Alert("req-" + std::to_string(i), "p" + std::to_string(i % 5)), {"a"}).ok());
    }
    auto heads = outbox->DueHeads(1);
    ASSERT_TRUE(heads.ok());
    ASSERT_EQ(heads->size(), 1u);
    ASSERT_TRUE(outbox->MarkAttemptFailed((*heads)[0].seq, "connect: Connection refused").ok());
  }
  auto outbox = OpenOutbox(Options());
  auto counts = outbox->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[AlertState::kPending], 50);
  auto failed_once = outbox->Snapshot(SnapshotQuery::Of(AlertState::kPending, 100));
  ASSERT_TRUE(failed_once.ok());
  int with_error = 0;
  for (const auto& e : *failed_once) {
    if (!e.last_error.empty()) {
      ++with_error;
      EXPECT_EQ(e.last_error, "connect: Connection refused");
      EXPECT_EQ(e.attempts, 1);
      EXPECT_GT(e.next_attempt, clock_.Now());
    }
  }
  EXPECT_EQ(with_error, 1);
  // The idempotency keys survive too.
  auto again = outbox->Enqueue(Alert("req-7", "p2"), {"a"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1);
}

TEST_F(OutboxTest, SecondOpenOfTheSameOutboxIsRefused) {
  auto outbox = OpenOutbox(Options());
  auto second = Outbox::Open(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST_F(OutboxTest, BackoffScheduleFollowsTheClock) {
  OutboxOptions o = Options();
  o.backoff = {.initial = absl::Seconds(1), .multiplier = 2, .max = absl::Seconds(8), .jitter = 0.5};
  auto outbox = OpenOutbox(o);
  ASSERT_TRUE(outbox->Enqueue(Alert("req-1", "p1"), {"a"}).ok());
  // Jitter 0 (random() == 0): 1, 2, 4, 8, 8 s.
  for (int64_t expected_s : {1, 2, 4, 8, 8}) {
    auto heads = outbox->DueHeads(10);
    ASSERT_TRUE(heads.ok());
    ASSERT_EQ(heads->size(), 1u) << "retry after " << expected_s;
    auto state = outbox->MarkAttemptFailed((*heads)[0].seq, "HTTP 500");
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(*state, AlertState::kPending);
    auto next = outbox->NextAttemptTime();
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ(**next - clock_.Now(), absl::Seconds(expected_s));
    clock_.Advance(absl::Seconds(expected_s) - absl::Milliseconds(1));
    EXPECT_TRUE(outbox->DueHeads(10)->empty()) << "due too early, step " << expected_s;
    clock_.Advance(absl::Milliseconds(1));
  }
  auto heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 1u);
  EXPECT_EQ((*heads)[0].attempts, 5);
}

TEST(BackoffPolicyTest, JitterTakesAtMostItsShareOffTheCappedDelay) {
  BackoffPolicy p{.initial = absl::Milliseconds(500), .multiplier = 2, .max = absl::Seconds(30), .jitter = 0.5};
  EXPECT_EQ(p.Delay(1, 0.0), absl::Milliseconds(500));
  EXPECT_EQ(p.Delay(2, 0.0), absl::Seconds(1));
  EXPECT_EQ(p.Delay(1000000, 0.0), absl::Seconds(30));  // Capped, no overflow.
  for (double u : {0.0, 0.25, 0.5, 0.999}) {
    const absl::Duration d = p.Delay(4, u);
    EXPECT_GE(d, absl::Seconds(2));
    EXPECT_LE(d, absl::Seconds(4));
  }
  EXPECT_LT(p.Delay(4, 0.9), p.Delay(4, 0.1));
}

TEST_F(OutboxTest, RefusesBeyondMaxUndeliveredWithoutPartialRows) {
  OutboxOptions o = Options();
  o.max_undelivered = 5;
  auto outbox = OpenOutbox(o);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(outbox->Enqueue(Alert("req-" + std::to_string(i), "p"), {"a", "b"}).ok());
  // 4 rows; an alert for two receivers would make 6.
  auto full = outbox->Enqueue(Alert("req-9", "p"), {"a", "b"});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();
  EXPECT_EQ((*outbox->Counts())[AlertState::kPending], 4);  // Nothing of req-9.
  // Duplicates cost nothing, even when full.
  EXPECT_TRUE(outbox->Enqueue(Alert("req-0", "p"), {"a", "b"}).ok());
  // Delivery makes room; failed rows keep theirs.
  auto heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 2u);
  ASSERT_TRUE(outbox->MarkDelivered((*heads)[0].seq).ok());
  EXPECT_TRUE(outbox->Enqueue(Alert("req-9", "p"), {"a"}).ok());
  EXPECT_TRUE(outbox->Enqueue(Alert("req-10", "p"), {"a"}).ok());  // 5 of 5.
  EXPECT_FALSE(outbox->Enqueue(Alert("req-11", "p"), {"a"}).ok());
  // The count is rebuilt from the file at open.
  outbox.reset();
  outbox = OpenOutbox(o);
  EXPECT_FALSE(outbox->Enqueue(Alert("req-11", "p"), {"a"}).ok());
  EXPECT_EQ((*outbox->Counts())[AlertState::kPending], 5);
}

TEST_F(OutboxTest, GivesUpAfterMaxAttemptsAndReplayMakesItPendingAgain) {
  OutboxOptions o = Options();
  o.max_attempts = 3;
  auto outbox = OpenOutbox(o);
  ASSERT_TRUE(outbox->Enqueue(Alert("req-1", "p1"), {"a"}).ok());
  ASSERT_TRUE(outbox->Enqueue(Alert("req-2", "p1"), {"a"}).ok());
  AlertState state = AlertState::kPending;
  for (int i = 0; i < 3; ++i) {
    auto heads = outbox->DueHeads(10);
    ASSERT_EQ(heads->size(), 1u);
    ASSERT_EQ((*heads)[0].alert_id, "req-1");
    state = *outbox->MarkAttemptFailed((*heads)[0].seq, "HTTP 401: bad signature");
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(state, AlertState::kFailed);
  auto failed = outbox->Snapshot(SnapshotQuery::Of(AlertState::kFailed));
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].alert_id, "req-1");
  EXPECT_EQ((*failed)[0].last_error, "HTTP 401: bad signature");
  EXPECT_EQ((*failed)[0].attempts, 3);
  // A failed alert no longer holds back its patient's later ones.
  auto heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 1u);
  EXPECT_EQ((*heads)[0].alert_id, "req-2");

  EXPECT_EQ(*outbox->ReplayFailed("other"), 0);
  EXPECT_EQ(*outbox->ReplayFailed("a"), 1);
  EXPECT_TRUE(outbox->Snapshot(SnapshotQuery::Of(AlertState::kFailed))->empty());
  heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 1u);
  EXPECT_EQ((*heads)[0].alert_id, "req-1");  // Oldest first again.
}

TEST_F(OutboxTest, GivesUpAfterItsAgeWithTheFakeClock) {
  OutboxOptions o = Options();
  o.give_up_after = absl::Hours(1);
  auto outbox = OpenOutbox(o);
  ASSERT_TRUE(outbox->Enqueue(Alert("req-1", "p1"), {"a"}).ok());
  auto heads = outbox->DueHeads(10);
  EXPECT_EQ(*outbox->MarkAttemptFailed((*heads)[0].seq, "timed out"), AlertState::kPending);
  clock_.Advance(absl::Hours(1));
  heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 1u);
  EXPECT_EQ(*outbox->MarkAttemptFailed((*heads)[0].seq, "timed out"), AlertState::kFailed);
  // Replay restarts the age.
  EXPECT_EQ(*outbox->ReplayFailed({}, "req-1"), 1);
  heads = outbox->DueHeads(10);
  EXPECT_EQ(*outbox->MarkAttemptFailed((*heads)[0].seq, "timed out"), AlertState::kPending);
}

TEST_F(OutboxTest, PurgeDropsOldAndSurplusDeliveredRowsOnly) {
  OutboxOptions o = Options();
  o.retention = absl::Hours(24);
  o.max_delivered_rows = 3;
  auto outbox = OpenOutbox(o);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(outbox->Enqueue(Alert("req-" + std::to_string(i), "p" + std::to_string(i)), {"a"}).ok());
  auto heads = outbox->DueHeads(10);
  ASSERT_EQ(heads->size(), 6u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(outbox->MarkDelivered((*heads)[i].seq).ok());
  EXPECT_EQ(*outbox->Purge(), 2);  // 5 delivered, 3 kept (the newest).
  auto counts = *outbox->Counts();
  EXPECT_EQ(counts[AlertState::kDelivered], 3);
  EXPECT_EQ(counts[AlertState::kPending], 1);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(*outbox->Purge(), 3);
  counts = *outbox->Counts();
  EXPECT_EQ(counts[AlertState::kDelivered], 0);
  EXPECT_EQ(counts[AlertState::kPending], 1);  // Pending alerts are never purged.
}

}  // namespace
}  // namespace ortserve::alerts
