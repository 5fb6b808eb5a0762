// SPDX-License-Identifier: Apache-2.0
// kill -9 between verdict and delivery: a process (alerts_outbox_helper, the
// alert service over the server's flags) enqueues alerts while its webhook
// receiver holds deliveries unanswered; it is SIGKILLed, restarted on the
// same outbox, and must deliver every alert it acknowledged: 0 lost, and no
// key applied twice at a receiver that honours Idempotency-Key (the wire may
// carry a repeat only of the alerts in flight at the kill).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "alerts/outbox.h"
#include "integration/alerts_test_receiver.h"

extern char** environ;

namespace ortserve::alerts {
namespace {

using ::ortserve::alerts::testing::TestReceiver;

constexpr char kSecret[] = "kill-test-webhook-secret-0123";

// A child process with its stdout read line by line.
class Helper {
 public:
  explicit Helper(const std::vector<std::string>& args) {
    int out[2];
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    fd_ = out[0];
  }
  ~Helper() {
    if (pid_ > 0) Kill();
    close(fd_);
  }
  // The next line, or "" at end of file or after `timeout`.
  std::string ReadLine(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const int64_t left_ms = absl::ToInt64Milliseconds(end - absl::Now());
      if (left_ms <= 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000))) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void Kill() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    pid_ = -1;
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

TEST(AlertsKillTest, KillDashNineBetweenEnqueueAndDeliveryLosesAndDuplicatesNothing) {
  const auto dir = std::filesystem::temp_directory_path() / ("alerts_kill_test_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "secret") << kSecret << "\n";
  std::ofstream(dir / "patient_key") << "kill-test-patient-key-0123456789\n";
  const std::string outbox = (dir / "outbox.db").string();

  TestReceiver receiver(kSecret);
  receiver.HangAfter(5);  // 5 delivered, then every request is applied and never answered.
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {ALERTS_OUTBOX_HELPER,
                                  "--alert-webhook",
                                  "pi=" + receiver.url(),
                                  "--alert-webhook-secret-file",
                                  "pi=" + (dir / "secret").string(),
                                  "--alert-outbox",
                                  outbox,
                                  "--alert-patient-hash-key-file",
                                  (dir / "patient_key").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };

  constexpr int kAlerts = 300;
  std::set<std::string> acked;
  {
    Helper first(args({"--enqueue", std::to_string(kAlerts), "--patients", "8", "--prefix", "k"}));
    ASSERT_EQ(first.ReadLine(absl::Seconds(30)), "READY");
    // Kill once half the alerts are acknowledged (durable) and deliveries
    // are hanging at the receiver: some delivered, some in flight (applied
    // there, no answer yet), the rest pending or not yet enqueued.
    const absl::Time end = absl::Now() + absl::Seconds(60);
    while (absl::Now() < end && (acked.size() < kAlerts / 2 || receiver.requests() < 7)) {
      const std::string line = first.ReadLine(absl::Seconds(1));
      if (line.rfind("ACK ", 0) == 0) acked.insert(line.substr(4));
    }
    ASSERT_GE(acked.size(), kAlerts / 2u);
    ASSERT_GE(receiver.requests(), 7u);
    first.Kill();
    // Lines already written before the kill are acknowledged too.
    for (std::string line; !(line = first.ReadLine(absl::Milliseconds(200))).empty();) {
      if (line.rfind("ACK ", 0) == 0) acked.insert(line.substr(4));
    }
  }
  const size_t applied_before = receiver.applied_count();
  std::cout << acked.size() << " alerts acknowledged, " << applied_before << " applied at the receiver, "
            << receiver.requests() << " requests, before kill -9\n";
  EXPECT_LT(applied_before, acked.size());  // The kill came before delivery of most.

  receiver.SetMode(TestReceiver::Mode::kOk);
  Helper second(args({"--drain"}));
  ASSERT_EQ(second.ReadLine(absl::Seconds(30)), "READY");
  std::string line;
  do {
    line = second.ReadLine(absl::Seconds(60));
  } while (!line.empty() && line != "DRAINED");
  ASSERT_EQ(line, "DRAINED");
  EXPECT_EQ(second.Wait(), 0);

  const auto applied = receiver.applied();
  std::set<std::string> applied_keys;
  for (const auto& d : applied) applied_keys.insert(d.key);
  // 0 lost: every acknowledged alert reached the receiver.
  for (const std::string& id : acked) EXPECT_EQ(applied_keys.count(id), 1u) << "lost " << id;
  // Nothing invented: only ids the first process enqueued (one unacknowledged
  // enqueue may have committed just before the kill).
  EXPECT_LE(applied_keys.size(), acked.size() + 1);
  for (const std::string& key : applied_keys) EXPECT_EQ(key.rfind("req-k-p", 0), 0u) << key;
  // 0 duplicated: each key applied once; the wire repeated at most the
  // alerts in flight at the kill (one per dispatcher worker).
  EXPECT_EQ(applied.size(), applied_keys.size());
  EXPECT_LE(receiver.repeats(), 4u);
  EXPECT_EQ(receiver.bad_signatures(), 0u);
  // Each patient's alerts in order, across the crash.
  std::map<std::string, std::string> last;
  for (const auto& d : applied) {
    auto [it, inserted] = last.emplace(d.patient_key, d.key);
    if (!inserted) {
      EXPECT_LT(it->second, d.key);
      it->second = d.key;
    }
  }
  std::cout << applied.size() << " alerts applied, " << receiver.repeats() << " repeated on the wire (same key)\n";

  // The outbox on disk agrees: nothing pending or failed.
  OutboxOptions reopen;
  reopen.path = outbox;
  auto box = Outbox::Open(reopen);
  ASSERT_TRUE(box.ok()) << box.status();
  auto counts = (*box)->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[AlertState::kPending], 0);
  EXPECT_EQ((*counts)[AlertState::kFailed], 0);
  EXPECT_EQ((*counts)[AlertState::kDelivered], static_cast<int64_t>(applied_keys.size()));
  box->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ortserve::alerts
