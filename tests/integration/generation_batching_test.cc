// SPDX-License-Identifier: Apache-2.0
// Continuous batching on the real ortserve binary (issue 22): concurrent
// streams share decode steps (the batcher's counters, GET
// /v2/models/{m}/generation_stats), a full key/value pool answers 429 in OpenAI's
// error shape once a request has waited its bound, and a client that hangs
// up mid-stream frees its blocks at once (the next request is admitted).
//
// The model is an untrained decoder with a 2048-token context exported by
// scripts/generation/export_untrained_decoder.py, so that a long generation
// is still running when the test acts; its pool holds two such sequences.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

constexpr int64_t kBlockBytes = 2 * 4 * 4 * 16 * 64 * 4;  // 2 x layers x heads x 16 tokens x head_dim x FP32
constexpr int64_t kPoolBlocks = 250;                       // two requests of 1,900 tokens (119 blocks each)

class GenerationBatchingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(RunPython("import subprocess\nsubprocess.check_call(['/usr/bin/python3', '" + SourceDir() +
                          "/scripts/generation/export_untrained_decoder.py', '" + dir_->path() +
                          "', '--generation', 'kv_cache_bytes=" + std::to_string(kBlockBytes * kPoolBlocks) +
                          "', '--generation', 'kv_block_tokens=16', '--generation', 'max_queue_wait_ms=500', "
                          "'--generation', 'max_waiting_requests=4'])\n")
                    .ok());
    auto server = ServerProcess::Start({"--model-repository", dir_->path()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  // A number of the model's batcher counters (GET .../generation_stats),
  // `path` as "steps" or "finished.cancelled".
  static double Stat(const std::string& path) { return GenerationStat(server_->http_port(), "slow_decoder", path); }
  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* GenerationBatchingTest::dir_ = nullptr;
ServerProcess* GenerationBatchingTest::server_ = nullptr;

std::string Body(int max_tokens, bool stream) {
  return R"({"model":"slow_decoder","prompt":"my mom","temperature":0,"ignore_eos":true,"max_tokens":)" +
         std::to_string(max_tokens) + (stream ? R"(,"stream":true})" : "}");
}

// A streamed completion on its own socket, read as it comes.
class Stream {
 public:
  explicit Stream(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Stream() { Close(); }
  // Sends the request; true once the 200 head and the first event came.
  bool Start(const std::string& body) {
    if (!connected_) return false;
    const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return false;
    return ReadUntil("data: ") && received_.starts_with("HTTP/1.1 200");
  }
  // Reads to the end of the stream.
  bool Finish() { return ReadUntil("data: [DONE]"); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  const std::string& received() const { return received_; }

 private:
  bool ReadUntil(const std::string& marker) {
    char buf[4096];
    while (received_.find(marker) == std::string::npos) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

TEST_F(GenerationBatchingTest, ConcurrentStreamsShareDecodeSteps) {
  const double steps_before = Stat("steps");
  const double seqs_before = Stat("step_sequences");
  Stream a(server_->http_port()), b(server_->http_port()), c(server_->http_port());
  ASSERT_TRUE(a.Start(Body(300, true))) << a.received();
  ASSERT_TRUE(b.Start(Body(300, true))) << b.received();
  ASSERT_TRUE(c.Start(Body(300, true))) << c.received();
  ASSERT_TRUE(a.Finish() && b.Finish() && c.Finish());
  EXPECT_GE(Stat("max_step_sequences"), 2);
  const double steps = Stat("steps") - steps_before;
  const double seqs = Stat("step_sequences") - seqs_before;
  // Alone, three sequences of 300 tokens take 900 runs; together far fewer.
  EXPECT_GT(seqs / steps, 1.5) << seqs << " sequences over " << steps << " runs";
  EXPECT_LT(steps, 700);
  // The same runs split by kind (nothing runs now: the reads agree).
  EXPECT_EQ(Stat("prefill_steps") + Stat("decode_steps"), Stat("steps"));
  EXPECT_EQ(Stat("prefill_sequences") + Stat("decode_sequences"), Stat("step_sequences"));
  EXPECT_GE(Stat("decode_run_us"), 1);
  EXPECT_TRUE(WaitUntil([] { return Stat("kv_blocks_used") == 0; }));
}

TEST_F(GenerationBatchingTest, AFullPoolAnswers429AndADisconnectFreesItsBlocksAtOnce) {
  EXPECT_EQ(Stat("kv_blocks_total"), kPoolBlocks);
  // Two long streams fill the pool: "my mom" (2 tokens) + 1,900 is 119 blocks of 16, twice of 250.
  Stream a(server_->http_port()), b(server_->http_port());
  ASSERT_TRUE(a.Start(Body(1900, true))) << a.received();
  ASSERT_TRUE(b.Start(Body(1900, true))) << b.received();
  EXPECT_EQ(Stat("kv_blocks_used"), 2 * 119);

  // A third waits its 500 ms for room, then gets 429 in OpenAI's shape.
  HttpClient client(server_->http_port());
  const auto start = std::chrono::steady_clock::now();
  auto refused = client.Post("/v1/completions", Body(1900, false));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(refused.status, 429u) << refused.body;
  EXPECT_GE(waited, 0.45);
  EXPECT_EQ(refused.Header("retry-after"), "1");
  auto error = Json(refused.body);
  ASSERT_TRUE(error.HasMember("error")) << refused.body;
  EXPECT_NE(std::string(error["error"]["message"].GetString()).find("key/value cache is full"), std::string::npos);
  EXPECT_STREQ(error["error"]["type"].GetString(), "rate_limit_error");
  EXPECT_STREQ(error["error"]["code"].GetString(), "rate_limit_exceeded");
  EXPECT_EQ(Stat("refused.timeout"), 1);
  // Both streams were still running when it was refused.
  EXPECT_EQ(Stat("running"), 2);

  // The first client hangs up mid-stream: its blocks go back at once, so a
  // new long request is admitted within its 500 ms wait (the streams left
  // would hold the pool for seconds more).
  const double cancelled_before = Stat("finished.cancelled");
  a.Close();
  Stream d(server_->http_port());
  ASSERT_TRUE(d.Start(Body(1900, true))) << d.received();
  EXPECT_EQ(Stat("finished.cancelled"), cancelled_before + 1);
  EXPECT_EQ(Stat("refused.timeout"), 1);
  b.Close();
  d.Close();
  EXPECT_TRUE(WaitUntil([] { return Stat("kv_blocks_used") == 0; }));
  EXPECT_EQ(Stat("running"), 0);
}

}  // namespace
}  // namespace ortserve::testing
