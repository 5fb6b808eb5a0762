// SPDX-License-Identifier: Apache-2.0
// HTTP connection handling on the real ortserve binary, over raw sockets: the
// idle timeout (silent clients, half-sent requests, kept-alive connections),
// answers that outlast it, and clients that hang up while their request waits
// in a model's queue (the request is dropped before it runs).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <rapidjson/document.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

// A blocking loopback TCP connection with a receive timeout, so that a
// server that never answers fails the test instead of hanging it.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    timeval timeout{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~RawConnection() { Close(); }

  bool connected() const { return connected_; }

  bool Send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // Reads until one full response has arrived (returns it; closed = false)
  // or the server closes (returns what came; closed = true). Bytes past the
  // response stay for the next call. Fails on the receive timeout.
  struct Read {
    std::string data;
    bool closed = false;
    bool timed_out = false;
  };
  Read ReadResponseOrClose() {
    Read read;
    char buffer[4096];
    while (true) {
      const size_t head_end = pending_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const size_t length_at = pending_.find("Content-Length: ");
        if (length_at != std::string::npos && length_at < head_end) {
          const size_t end = head_end + 4 + std::stoul(pending_.substr(length_at + 16));
          if (pending_.size() >= end) {
            read.data = pending_.substr(0, end);
            pending_.erase(0, end);
            return read;
          }
        }
      }
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        read.data = std::move(pending_);
        read.closed = true;
        return read;
      }
      if (n < 0) {
        read.data = std::move(pending_);
        read.timed_out = true;
        return read;
      }
      pending_.append(buffer, static_cast<size_t>(n));
    }
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string InferRequest(const std::string& model, float a, float b) {
  const std::string body = R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[)" +
                           std::to_string(a) + "," + std::to_string(b) + "]}]}";
  return "POST /v2/models/" + model + "/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Whether `read` is one complete 200 answer holding `y` (its output data).
::testing::AssertionResult AnsweredWith(const RawConnection::Read& read, const std::string& y) {
  if (read.timed_out) return ::testing::AssertionFailure() << "no answer in time; got: " << read.data;
  if (read.closed) return ::testing::AssertionFailure() << "closed instead of answering; got: " << read.data;
  if (read.data.rfind("HTTP/1.1 200", 0) != 0 || read.data.find(y) == std::string::npos) {
    return ::testing::AssertionFailure() << "expected a 200 answer with " << y << ", got: " << read.data;
  }
  return ::testing::AssertionSuccess();
}

// y = x + 1 models; `held` keeps a lone request queued for `hold_us` waiting
// for a batch of 8 to form.
void WriteHeldModel(const std::string& repo, const std::string& name, int hold_us) {
  ASSERT_TRUE(WriteAddModels({{repo + "/" + name + "/1/model.onnx", 1.0f}}).ok());
  std::ofstream(fs::path(repo) / name / "config.pbtxt")
      << "max_batch_size: 8\n"
         "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
         "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n"
         "dynamic_batching { max_queue_delay_microseconds: "
      << hold_us << " preferred_batch_size: [8] wait_when_idle: true }\n";
}

class HttpConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TempDir();
    WriteHeldModel(repo_->path(), "held", 1500000);
    WriteHeldModel(repo_->path(), "quick", 0);
  }
  static void TearDownTestSuite() {
    delete repo_;
    repo_ = nullptr;
  }

  void SetUp() override {
    std::vector<std::string> args = {"--model-repository", repo_->path(), "--http-idle-timeout-seconds", "0.4",
                                     "--http-thread-count", "2"};
    // The metrics server costs about a second per start and stop: only where read.
    if (with_metrics_) args.insert(args.end(), {"--metrics-port", "0"});
    auto server = ServerProcess::Start(args);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  uint64_t InferenceCount(const std::string& model) {
    HttpClient client(server_->http_port());
    auto stats = Json(client.Get("/v2/models/" + model + "/stats").body);
    return stats["model_stats"][0]["inference_count"].GetUint64();
  }

  static TempDir* repo_;
  bool with_metrics_ = false;
  std::unique_ptr<ServerProcess> server_;
};
TempDir* HttpConnectionTest::repo_ = nullptr;

// Reads the pending-requests gauge to know when requests are queued.
class HttpHangUpTest : public HttpConnectionTest {
 protected:
  void SetUp() override {
    with_metrics_ = true;
    HttpConnectionTest::SetUp();
  }

  // `stays` and `leaves` each send a request to `held`; once both wait in
  // its queue (1.5 s, for a batch of 8), `leaves` hangs up: only the
  // request of the client that stayed runs.
  void ExpectOnlyTheClientThatStaysRuns(RawConnection& stays, RawConnection& leaves) {
    ASSERT_TRUE(stays.Send(InferRequest("held", 1, 1)));
    ASSERT_TRUE(leaves.Send(InferRequest("held", 2, 2)));
    HttpClient metrics(server_->metrics_port());
    ASSERT_TRUE(WaitUntil([&] {
      return MetricValue(metrics.Get("/metrics").body, "ortserve_pending_requests", {R"(model="held")"}) == 2;
    }, 10));
    leaves.Close();
    EXPECT_TRUE(AnsweredWith(stays.ReadResponseOrClose(), "[2.0,2.0]"));
    EXPECT_EQ(InferenceCount("held"), 1u) << "the request whose client left must not run";
  }
};

TEST_F(HttpConnectionTest, SilentClientIsDisconnectedAfterTheIdleTimeout) {
  RawConnection silent(server_->http_port());
  ASSERT_TRUE(silent.connected());
  const auto start = std::chrono::steady_clock::now();
  auto read = silent.ReadResponseOrClose();
  EXPECT_TRUE(read.closed) << (read.timed_out ? "the server never closed the idle connection" : read.data);
  // 0.4 s plus at most one 0.1 s sweep; generous for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(HttpConnectionTest, HalfSentRequestIsDisconnectedAfterTheIdleTimeout) {
  RawConnection slow(server_->http_port());
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.Send("POST /v2/models/quick/infer HTTP/1.1\r\nHost: localhost\r\nContent-Len"));
  auto read = slow.ReadResponseOrClose();
  EXPECT_TRUE(read.closed) << (read.timed_out ? "the server waited forever for the rest" : read.data);
  // The server is unaffected.
  HttpClient client(server_->http_port());
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
}

TEST_F(HttpConnectionTest, KeptAliveConnectionServesRequestsThenClosesWhenIdle) {
  RawConnection connection(server_->http_port());
  ASSERT_TRUE(connection.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection.Send(InferRequest("quick", 1, 2)));
    ASSERT_TRUE(AnsweredWith(connection.ReadResponseOrClose(), "[2.0,3.0]"));
  }
  auto read = connection.ReadResponseOrClose();
  EXPECT_TRUE(read.closed) << read.data;
}

TEST_F(HttpConnectionTest, AnswerThatTakesLongerThanTheIdleTimeoutStillArrives) {
  // `held` answers a lone request after 1.5 s, past the 0.4 s idle timeout:
  // nothing is read or written while the model has it, so it is not idle.
  RawConnection connection(server_->http_port());
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.Send(InferRequest("held", 5, 6)));
  EXPECT_TRUE(AnsweredWith(connection.ReadResponseOrClose(), "[6.0,7.0]"));
}

TEST_F(HttpHangUpTest, ClientThatHangsUpWhileQueuedIsDroppedBeforeItRuns) {
  RawConnection stays(server_->http_port());
  RawConnection leaves(server_->http_port());
  ASSERT_TRUE(stays.connected());
  ASSERT_TRUE(leaves.connected());
  ExpectOnlyTheClientThatStaysRuns(stays, leaves);
  HttpClient client(server_->http_port());
  auto stats = Json(client.Get("/v2/models/held/stats").body);
  const auto& s = stats["model_stats"][0];
  EXPECT_EQ(s["execution_count"].GetUint64(), 1u);
  EXPECT_EQ(s["inference_stats"]["fail"]["count"].GetUint64(), 1u) << "the abandoned request is counted as failed";
}

// A kept-alive connection's later request is watched for a hang-up as its
// first is: a client that leaves while it is queued is seen.
TEST_F(HttpHangUpTest, ClientThatHangsUpOnAKeptAliveConnectionIsDroppedBeforeItRuns) {
  RawConnection stays(server_->http_port());
  RawConnection leaves(server_->http_port());
  ASSERT_TRUE(stays.connected());
  ASSERT_TRUE(leaves.connected());
  ASSERT_TRUE(leaves.Send(InferRequest("quick", 1, 2)));
  ASSERT_TRUE(AnsweredWith(leaves.ReadResponseOrClose(), "[2.0,3.0]"));
  ExpectOnlyTheClientThatStaysRuns(stays, leaves);
}

TEST_F(HttpConnectionTest, PipelinedRequestIsNotMistakenForAHangUp) {
  // The second request arrives while the first waits in the queue: the
  // socket is readable, but the client is still there. Both are answered.
  RawConnection connection(server_->http_port());
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.Send(InferRequest("held", 1, 2) + InferRequest("quick", 3, 4)));
  EXPECT_TRUE(AnsweredWith(connection.ReadResponseOrClose(), "[2.0,3.0]"));
  EXPECT_TRUE(AnsweredWith(connection.ReadResponseOrClose(), "[4.0,5.0]"));
  EXPECT_EQ(InferenceCount("held"), 1u);
}

// CPU time the process `pid` has used, in clock ticks (user + system).
long CpuTicks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (in parentheses, which may hold spaces).
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// Out of file descriptors, a server cannot accept: the connection stays in
// the listen backlog, and accepting again at once fails again at once. The
// server must wait for a descriptor to free up instead of spinning, keep
// serving the connections it has, and accept again once it can.
TEST(HttpDescriptorLimitTest, OutOfDescriptorsTheServerWaitsThenAcceptsAgain) {
  TempDir repo;
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--http-threads", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  RawConnection first(port);  // Accepted before the descriptors run out.
  ASSERT_TRUE(first.connected());
  ASSERT_TRUE(first.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(first.ReadResponseOrClose().data.find("200 OK"), std::string::npos);
  // The server raised its own limit at start; lower it under it now, as an
  // exhausted machine would (descriptors it holds stay open).
  rlimit low{};
  ASSERT_EQ(::prlimit((*server)->pid(), RLIMIT_NOFILE, nullptr, &low), 0);
  const auto open_now = std::distance(
      std::filesystem::directory_iterator("/proc/" + std::to_string((*server)->pid()) + "/fd"), {});
  low.rlim_cur = static_cast<rlim_t>(open_now) + 20;  // Room for 20 more, then out.
  ASSERT_EQ(::prlimit((*server)->pid(), RLIMIT_NOFILE, &low, nullptr), 0);

  std::vector<std::unique_ptr<RawConnection>> flood;
  for (int i = 0; i < 100; ++i) flood.push_back(std::make_unique<RawConnection>(port));
  // It did run out (else this test proves nothing).
  ASSERT_TRUE(WaitUntil([&] { return (*server)->Output().find("cannot accept connections") != std::string::npos; },
                        10))
      << "the server never ran out of descriptors: " << (*server)->Output().substr(0, 2000);

  const long before = CpuTicks((*server)->pid());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long used = CpuTicks((*server)->pid()) - before;
  EXPECT_LT(used, sysconf(_SC_CLK_TCK) / 4) << "CPU ticks in 1 s while out of descriptors: a busy accept loop";

  // The connection it has is still served.
  ASSERT_TRUE(first.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(first.ReadResponseOrClose().data.find("200 OK"), std::string::npos);

  // Descriptors come back as the flood goes away: new clients are served.
  flood.clear();
  bool served = WaitUntil([&] {
    RawConnection late(port);
    if (!late.connected() || !late.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
      return false;
    }
    return late.ReadResponseOrClose().data.find("200 OK") != std::string::npos;
  }, 20);
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace ortserve::testing

namespace ortserve::testing {
namespace {

// Issue #14.7: a server that closes an idle kept-alive connection just as the
// client reuses it fails that request; the header tells clients to retire it
// first.
TEST(HttpKeepAliveTest, AnswersAdvertiseATimeoutUnderTheIdleTimeout) {
  TempDir repo;
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--http-idle-timeout-seconds", "3"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  auto response = client.Get("/v2/health/live");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.Header("keep-alive"), "timeout=2");
  EXPECT_EQ(response.Header("connection"), "keep-alive");
}

// A request refused before its body is read (here: over the memory budget)
// still lets a small body be read, so the client reads its 503 instead of a
// reset, and the connection goes on serving.
TEST(HttpRefusalTest, ARefusedSmallBodyIsReadAndTheConnectionKept) {
  TempDir repo;
  WriteHeldModel(repo.path(), "quick", 0);
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--max-inflight-bytes", "64"});
  ASSERT_TRUE(server.ok()) << server.status();
  RawConnection connection((*server)->http_port());
  ASSERT_TRUE(connection.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection.Send(InferRequest("quick", 1, 2)));
    auto read = connection.ReadResponseOrClose();
    ASSERT_FALSE(read.closed) << read.data;
    EXPECT_EQ(read.data.rfind("HTTP/1.1 503", 0), 0u) << read.data;
    EXPECT_NE(read.data.find("--max-inflight-bytes"), std::string::npos) << read.data;
  }
  ASSERT_TRUE(connection.Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(connection.ReadResponseOrClose().data.rfind("HTTP/1.1 200", 0), 0u);
}

// Issue #14.6: idle connections up to the cap cannot take health checks
// down: past it a connection serves probes only, past the reserve it is
// answered 503 at once; when the flood goes, service resumes.
TEST(HttpConnectionCapTest, PastTheCapProbesAreStillServedAndTheRestRefused) {
  TempDir repo;
  WriteHeldModel(repo.path(), "quick", 0);
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--http-max-connections", "16"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 16; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port));
    // Served, so certainly accepted and counted before the next one.
    ASSERT_TRUE(idle.back()->Send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(idle.back()->ReadResponseOrClose().data.rfind("HTTP/1.1 200", 0), 0u) << i;
  }
  // At the cap: a probe is served, an inference is not.
  RawConnection probe(port);
  ASSERT_TRUE(probe.Send("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(probe.ReadResponseOrClose().data.rfind("HTTP/1.1 200", 0), 0u);
  RawConnection ordinary(port);
  ASSERT_TRUE(ordinary.Send(InferRequest("quick", 1, 2)));
  auto refused = ordinary.ReadResponseOrClose();
  EXPECT_EQ(refused.data.rfind("HTTP/1.1 503", 0), 0u) << refused.data;
  EXPECT_NE(refused.data.find("health probes only"), std::string::npos) << refused.data;
  // Past the probe reserve too (16 + 32 open): answered at once, without a
  // request. The last of 40 more connections is past it whenever the
  // refused one above stops counting. (Its close can still be under way
  // while these arrive; a connection opened after them then found the slot
  // it freed, a probe-only one, and waited for a request: the occasional
  // 20 s timeout this test had.)
  for (int i = 0; i < 40; ++i) idle.push_back(std::make_unique<RawConnection>(port));
  RawConnection& over = *idle.back();
  auto at_once = over.ReadResponseOrClose();
  EXPECT_EQ(at_once.data.rfind("HTTP/1.1 503", 0), 0u)
      << (at_once.timed_out ? "no answer (timed out): " : at_once.closed ? "closed: " : "") << at_once.data
      << "\nconnected: " << over.connected() << "; the server's log:\n" << (*server)->Output();
  EXPECT_NE(at_once.data.find("too many connections"), std::string::npos) << at_once.data;
  EXPECT_NE((*server)->Output().find("--http-max-connections"), std::string::npos);

  idle.clear();
  EXPECT_TRUE(WaitUntil([&] {
    RawConnection late(port);
    if (!late.Send(InferRequest("quick", 1, 2))) return false;
    return static_cast<bool>(AnsweredWith(late.ReadResponseOrClose(), "[2.0,3.0]"));
  }, 20)) << "service did not resume once the connections closed";
}

}  // namespace
}  // namespace ortserve::testing

namespace ortserve::testing {
namespace {

long ResidentKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Issue #14.4: large JSON bodies take memory to decode; once answered, the
// process gives it back instead of staying at its peak.
TEST(HttpMemoryTest, MemoryOfLargeBodiesGoesBackOnceTheyAreAnswered) {
  TempDir repo;
  ASSERT_TRUE(RunPython("import onnx, os\n"
                        "from onnx import helper, TensorProto\n"
                        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, None])\n"
                        "y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, None])\n"
                        "m = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g',"
                        " [x], [y]), opset_imports=[helper.make_opsetid('', 13)])\n"
                        "m.ir_version = 8\n"
                        "os.makedirs('" + repo.path() + "/ident/1')\n"
                        "onnx.save(m, '" + repo.path() + "/ident/1/model.onnx')\n"
                        "open('" + repo.path() + "/ident/config.pbtxt', 'w').write('max_batch_size: 0\\n')\n")
                  .ok());
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  const long before = ResidentKib((*server)->pid());
  constexpr int kValues = 2'000'000;  // About 20 MB of JSON.
  std::string body = R"({"inputs":[{"name":"x","shape":[1,)" + std::to_string(kValues) +
                     R"(],"datatype":"FP32","data":[)";
  for (int i = 0; i < kValues; ++i) body += i ? ",1.2345678" : "1.2345678";
  body += R"(]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  std::vector<std::thread> senders;
  for (int i = 0; i < 4; ++i) {
    senders.emplace_back([&] {
      HttpClient client((*server)->http_port());
      EXPECT_EQ(client.Post("/v2/models/ident/infer", body).status, 200u);
    });
  }
  for (auto& t : senders) t.join();
  // Four bodies of 20 MB decoded at once took far more; afterwards the
  // process is back within a little of where it started.
  EXPECT_TRUE(WaitUntil([&] { return ResidentKib((*server)->pid()) - before < 48 * 1024; }, 10))
      << "resident " << ResidentKib((*server)->pid()) << " KiB, " << before << " KiB before";
}

// A server confined to one CPU (taskset, a container's CPU quota) runs one
// HTTP event loop by default: more only add wake-ups and switches on that
// core. --http-thread-count still sets the number.
TEST(HttpThreadsTest, ByDefaultOneEventLoopPerCpuTheServerMayUse) {
  cpu_set_t before;
  CPU_ZERO(&before);
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &before)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  TempDir repo;
  // The server inherits this thread's affinity.
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  auto confined = ServerProcess::Start({"--model-repository", repo.path()});
  auto asked = ServerProcess::Start({"--model-repository", repo.path(), "--http-thread-count", "3"});
  ASSERT_EQ(sched_setaffinity(0, sizeof(before), &before), 0);
  ASSERT_TRUE(confined.ok()) << confined.status();
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_NE((*confined)->Output().find(", 1 I/O thread"), std::string::npos) << (*confined)->Output();
  EXPECT_NE((*asked)->Output().find(", 3 I/O threads"), std::string::npos) << (*asked)->Output();
  HttpClient client((*confined)->http_port());
  EXPECT_EQ(client.Get("/v2/health/live").status, 200u);
}

}  // namespace
}  // namespace ortserve::testing
