// SPDX-License-Identifier: Apache-2.0
// Set ALLOC_TRACE=1 to print a backtrace for each counted allocation.
// Extends the hot-path rule above the scheduler: after warm-up,
// InferenceService::Infer (routing, response cache, pending-gauge and
// in-flight wrappers) and everything below it allocate nothing on the heap
// per request, except the response a cache hit builds (pinned, with its
// reason, in its test).
// The model runs on FakeSessions whose own work is not counted (as in
// tests/unit/scheduler/allocation_test.cc); the ModelManager, schedulers,
// metrics and response cache are the real ones.
// The requests, their callbacks and their observability records are built
// before counting: they are the front end's. HttpAllocationTest then counts
// the HTTP front end too, over loopback. Links tests/common/counting_new.cc,
// which replaces the global operator new, so it is its own test executable.
#include <algorithm>
#include <chrono>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "backend/session.h"
#include "common/counting_new.h"
#include "fakes/fake_session.h"
#include "core/strings.h"
#include "frontend/http/http_server.h"
#include "frontend/inference_service.h"
#include "gtest/gtest.h"
#include "observability/metrics.h"
#include "observability/request_record.h"
#include "repository/model_manager.h"
#include "router/response_cache.h"

namespace ortserve::frontend {
namespace {

namespace fs = std::filesystem;
using ::ortserve::testing::FakeSession;
using ::ortserve::testing::MakeSignature;

constexpr int kRequests = 1000;
// The split model's sticky keys: few enough that every key is met in warm-up.
constexpr int kStickyKeys = 16;
// Short request ids (UUID-length ones are checked too, below).
constexpr char kShortIdPrefix[] = "request-";

// FakeSessions whose own work (the model run) is not counted, as ORT's would
// not be, and that record nothing per run. Each output copies input j mod
// #inputs. Hold/Release park every session's runs (the sessions live as long
// as the manager that loaded them).
class UncountedSessionFactory final : public backend::SessionFactory {
 public:
  void HoldAll() {
    absl::MutexLock lock(&mu_);
    for (FakeSession* session : sessions_) session->Hold();
  }
  void ReleaseAll() {
    absl::MutexLock lock(&mu_);
    for (FakeSession* session : sessions_) session->Release();
  }

  absl::StatusOr<std::unique_ptr<backend::Session>> Create(const backend::SessionOptions&) override {
    auto session = std::make_unique<FakeSession>(
        MakeSignature({{"INPUT0", DataType::kFp32, {-1, 4}}}, {{"OUTPUT0", DataType::kFp32, {-1, 4}}}),
        [](std::span<const Tensor> inputs, std::span<const std::string> names, FakeSession::Outputs& outputs) {
          t_in_session = true;
          absl::Status status = FakeSession::CopyInputs(inputs, names, outputs);
          t_in_session = false;
          return status;
        });
    session->set_record_shapes(false);
    absl::MutexLock lock(&mu_);
    sessions_.push_back(session.get());
    return std::unique_ptr<backend::Session>(std::move(session));
  }

 private:
  absl::Mutex mu_;
  std::vector<FakeSession*> sessions_ ABSL_GUARDED_BY(mu_);
};

// The answers of one round, by request index. The callback captures a
// pointer and an index, so it fits AnyInvocable's inline storage.
struct Answers {
  absl::Mutex mu;
  int ok ABSL_GUARDED_BY(mu) = 0;
  int failed ABSL_GUARDED_BY(mu) = 0;
  // The version that answered request i, as a number (no string copies).
  std::vector<int> versions ABSL_GUARDED_BY(mu) = std::vector<int>(kRequests, 0);

  bool WaitFor(int n) {
    absl::MutexLock lock(&mu);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ok + failed >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(60));
  }
};

// What the front end owns per request, built before counting.
struct Prepared {
  std::vector<std::unique_ptr<InferRequest>> requests;
  std::vector<InferCallback> callbacks;
  std::vector<std::unique_ptr<observability::RequestRecord>> records;
};

class ServiceAllocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ortserve-alloc-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    const std::string io =
        "max_batch_size: 8\n"
        "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
        "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
        "dynamic_batching { max_queue_delay_microseconds: 100 }\n";
    AddModel("plain", {1}, io);
    AddModel("split", {1, 2},
             io + "version_policy { all {} }\n"
                  "routing { split [ { version: 1 weight: 1 }, { version: 2 weight: 1 } ]"
                  " sticky_parameter: \"user\" }\n");
    AddModel("cached", {1}, io + "response_cache { enable: true }\n");

    auto metrics = observability::Metrics::Create({});
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
    telemetry_.metrics = metrics_.get();
    repository::ModelManager::Options manager_options;
    manager_options.repository_path = root_.string();
    manager_options.session_factory = &factory_;
    manager_options.metrics = metrics_.get();
    auto manager = repository::ModelManager::Create(std::move(manager_options));
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    ASSERT_TRUE(manager_->LoadAll().ok());
    for (const auto& entry : manager_->Index()) {
      ASSERT_EQ(entry.state, repository::ModelState::kReady) << entry.name << " " << entry.version << ": "
                                                              << entry.reason;
    }
    auto cache = router::ResponseCache::Create({});
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);

    InferenceService::Options options;
    options.models = manager_.get();
    options.telemetry = telemetry_;
    options.response_cache = cache_.get();
    service_ = std::make_unique<InferenceService>(std::move(options));
    service_->SetReady(true);
  }

  void TearDown() override {
    service_.reset();
    manager_.reset();
    fs::remove_all(root_);
  }

  void AddModel(const std::string& name, const std::vector<int>& versions, const std::string& config) {
    for (int v : versions) {
      fs::create_directories(root_ / name / std::to_string(v));
      std::ofstream(root_ / name / std::to_string(v) / "model.onnx") << "fake";
    }
    std::ofstream(root_ / name / "config.pbtxt") << "name: \"" << name << "\"\n" << config;
  }

  // Requests for `model`: rows 1 or 2 of four values; `value(i)` fills
  // request i; `sticky` adds the split model's "user" key. Ids are
  // `id_prefix` and the index.
  Prepared Prepare(Answers* answers, const std::string& model, float (*value)(int), bool sticky,
                   const std::string& id_prefix) {
    Prepared prepared;
    for (int i = 0; i < kRequests; ++i) {
      auto request = std::make_unique<InferRequest>();
      request->model_name = model;
      request->id = id_prefix + std::to_string(i);
      const int rows = 1 + i % 2;
      std::vector<float> values(static_cast<size_t>(rows) * 4, value(i));
      request->inputs.push_back(MakeTensor<float>("INPUT0", DataType::kFp32, {rows, 4}, std::span<const float>(values)));
      if (sticky) request->parameters.Set("user", "user-" + std::to_string(i % kStickyKeys));
      prepared.requests.push_back(std::move(request));
      prepared.callbacks.push_back([answers, i](absl::StatusOr<InferResponse> result) {
        const bool good = result.ok() && result->outputs.size() == 1 && result->outputs[0].name == "OUTPUT0" &&
                          result->outputs[0].values<float>().size() == static_cast<size_t>(1 + i % 2) * 4;
        // "1" or "2": read without building a string.
        const int version = good && result->model_version.size() == 1 ? result->model_version[0] - '0' : -1;
        absl::MutexLock lock(&answers->mu);
        ++(good ? answers->ok : answers->failed);
        answers->versions[i] = version;
      });
      prepared.records.push_back(
          std::make_unique<observability::RequestRecord>(&telemetry_, observability::Protocol::kHttp, ""));
    }
    return prepared;
  }

  // Serves `prepared` through Infer; returns false if not every answer came
  // (and its in-flight count ended, just after its callback returned).
  // `hold`: the models run nothing until every request is in, so that all
  // of them are in flight at once.
  bool Serve(Prepared& prepared, Answers& answers, bool hold = false) {
    if (hold) factory_.HoldAll();
    for (int i = 0; i < kRequests; ++i) {
      service_->Infer(std::move(prepared.requests[i]), std::move(prepared.callbacks[i]), prepared.records[i].get());
    }
    if (hold) factory_.ReleaseAll();
    if (!answers.WaitFor(kRequests)) return false;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (service_->InflightCount() != 0) {
      if (absl::Now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // Warm-up, then one counted round; returns the allocations it made. The
  // first warm-up round has every request in flight at once (the most the
  // counted round can have, so that the service's per-request state and the
  // scheduler's queue have grown as far as they will); two more at the
  // pace the server sets (so that every runner met the batch sizes timing
  // can produce). `warm` and `counted` receive the answers of the last
  // warm-up round and of the counted one.
  // `id_prefix`: see Prepare.
  uint64_t CountAllocations(const std::string& model, float (*value)(int), bool sticky, Answers& warm,
                            Answers& counted, const std::string& id_prefix = kShortIdPrefix) {
    for (int round = 0; round < 2; ++round) {
      Answers answers;
      Prepared requests = Prepare(&answers, model, value, sticky, id_prefix);
      EXPECT_TRUE(Serve(requests, answers, /*hold=*/round == 0));
    }
    Prepared round = Prepare(&warm, model, value, sticky, id_prefix);
    EXPECT_TRUE(Serve(round, warm));

    Prepared measured = Prepare(&counted, model, value, sticky, id_prefix);
    cache_hits_before_count_ = cache_->GetStats().hits;
    g_allocations = 0;
    g_counting = true;
    const bool finished = Serve(measured, counted);
    g_counting = false;
    EXPECT_TRUE(finished);
    return g_allocations.load();
  }

  fs::path root_;
  UncountedSessionFactory factory_;
  std::unique_ptr<observability::Metrics> metrics_;
  observability::Telemetry telemetry_;
  std::unique_ptr<repository::ModelManager> manager_;
  std::unique_ptr<router::ResponseCache> cache_;
  std::unique_ptr<InferenceService> service_;
  uint64_t cache_hits_before_count_ = 0;
};

float ByIndex(int i) { return static_cast<float>(i); }
float Constant(int) { return 7.0f; }

TEST_F(ServiceAllocationTest, PlainModelAllocatesNothingPerWarmRequest) {
  Answers warm, counted;
  const uint64_t allocations = CountAllocations("plain", &ByIndex, /*sticky=*/false, warm, counted);
  absl::MutexLock lock(&counted.mu);
  EXPECT_EQ(counted.ok, kRequests);
  EXPECT_EQ(allocations, 0u) << "heap allocations while serving " << kRequests << " warm requests";
}

TEST_F(ServiceAllocationTest, UuidLengthRequestIdsAllocateNothing) {
  Answers warm, counted;
  // UUID-length ids, as clients send them.
  const uint64_t allocations = CountAllocations("plain", &ByIndex, /*sticky=*/false, warm, counted,
                                                "0c6f2d4e-9a51-4b7e-8f3a-2d1e6b9c7a50-");
  absl::MutexLock lock(&counted.mu);
  EXPECT_EQ(counted.ok, kRequests);
  // The RequestRecord keeps ids up to 64 bytes inline; the request's own id
  // string was allocated by the front end before counting (and moves).
  EXPECT_EQ(allocations, 0u)
      << "heap allocations while serving " << kRequests << " warm requests";
}

TEST_F(ServiceAllocationTest, StickySplitAllocatesNothingPerWarmRequest) {
  Answers warm, counted;
  const uint64_t allocations = CountAllocations("split", &ByIndex, /*sticky=*/true, warm, counted);
  absl::MutexLock warm_lock(&warm.mu);
  absl::MutexLock lock(&counted.mu);
  ASSERT_EQ(counted.ok, kRequests);
  // The split really routed: both versions served, and each key stayed on
  // the version it had in warm-up.
  std::map<int, int> per_version;
  for (int i = 0; i < kRequests; ++i) {
    ++per_version[counted.versions[i]];
    EXPECT_EQ(counted.versions[i], warm.versions[i]) << "request " << i;
  }
  EXPECT_GT(per_version[1], 0);
  EXPECT_GT(per_version[2], 0);
  EXPECT_EQ(allocations, 0u) << "heap allocations while serving " << kRequests << " warm requests";
}

TEST_F(ServiceAllocationTest, CacheHitAllocatesOnlyTheResponseItBuilds) {
  Answers warm, counted;
  // Two distinct requests (one row, two rows of 7s), cached in warm-up.
  const uint64_t allocations = CountAllocations("cached", &Constant, /*sticky=*/false, warm, counted);
  const router::ResponseCache::Stats stats = cache_->GetStats();
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_EQ(stats.hits - cache_hits_before_count_, static_cast<uint64_t>(kRequests));  // Every one a hit.
  absl::MutexLock lock(&counted.mu);
  EXPECT_EQ(counted.ok, kRequests);
  // One per hit, and it remains by design of the cache's interface:
  // ResponseCache::Lookup (router/response_cache.cc) returns a fresh
  // InferResponse whose `outputs` vector it reserves. Everything else on the
  // path (key, lookup, statistics, the answer's hand-over) allocates nothing:
  // names of up to 15 characters fit std::string's inline buffer ("cached",
  // "1", "OUTPUT0"), and the response has no parameters.
  EXPECT_EQ(allocations, static_cast<uint64_t>(kRequests))
      << "heap allocations while answering " << kRequests << " warm requests from the cache";
}

// The same service behind the real HTTP front end, on loopback: a client on
// a kept-alive connection, written with plain socket calls into fixed
// buffers so that it allocates nothing itself, sends warm requests and
// counts what the server allocates for them.
class HttpAllocationTest : public ServiceAllocationTest {
 protected:
  void SetUp() override {
    ServiceAllocationTest::SetUp();
    HttpServer::Options options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    options.service = service_.get();
    auto server = HttpServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server_->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    // As the server's drain does: the HTTP front end goes only once no
    // answer (whose callback holds a connection) is still on its way.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (service_->InflightCount() != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    server_.reset();
    ServiceAllocationTest::TearDown();
  }

  // Sends `request` and reads one response into buffer_; returns its status
  // (0 on a broken connection) and sets body_ to its body.
  int RoundTrip(std::string_view request) {
    for (size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return 0;
      sent += static_cast<size_t>(n);
    }
    size_t have = 0;
    size_t head_end = std::string_view::npos;
    size_t total = 0;
    while (head_end == std::string_view::npos || have < total) {
      if (have == sizeof(buffer_)) return 0;
      const ssize_t n = ::recv(fd_, buffer_ + have, sizeof(buffer_) - have, 0);
      if (n <= 0) return 0;
      have += static_cast<size_t>(n);
      const std::string_view text(buffer_, have);
      if (head_end == std::string_view::npos && (head_end = text.find("\r\n\r\n")) != std::string_view::npos) {
        const size_t at = text.find("Content-Length: ");
        if (at == std::string_view::npos || at > head_end) return 0;
        size_t length = 0;
        std::from_chars(buffer_ + at + 16, buffer_ + head_end, length);
        total = head_end + 4 + length;
      }
    }
    body_ = std::string_view(buffer_ + head_end + 4, total - head_end - 4);
    int status = 0;
    std::from_chars(buffer_ + 9, buffer_ + 12, status);  // "HTTP/1.1 200"
    return status;
  }

  // Sends `request` `count` times; the number of 200 answers.
  int Send(std::string_view request, int count) {
    int ok = 0;
    for (int i = 0; i < count; ++i) ok += RoundTrip(request) == 200;
    return ok;
  }

  // Warm-up, then three rounds of `kRequests` counted requests, each a
  // moment after the last answer; the fewest allocations per request of a
  // round. (On a loaded machine a request sent at once now and then finds a
  // runner still holding the previous body, which costs a fresh buffer:
  // timing, not a per-request allocation.)
  double AllocationsPerRequest(std::string_view request) {
    EXPECT_EQ(Send(request, 200), 200) << body_;
    double fewest = 1e9;
    for (int round = 0; round < 3; ++round) {
      g_allocations = 0;
      g_counting = true;
      int ok = 0;
      for (int i = 0; i < kRequests; ++i) {
        ok += RoundTrip(request) == 200;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      g_counting = false;
      EXPECT_EQ(ok, kRequests) << body_;
      fewest = std::min(fewest, static_cast<double>(g_allocations.load()) / kRequests);
    }
    return fewest;
  }

  std::unique_ptr<HttpServer> server_;
  int fd_ = -1;
  char buffer_[1 << 16];
  std::string_view body_;
};

// A request of the binary tensor extension: a JSON header and 16 raw bytes.
std::string BinaryRequest(const float (&values)[4] = {1, 2, 3, 4}) {
  const std::string header =
      R"({"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}],)"
      R"("outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]})";
  std::string body = header;
  body.append(reinterpret_cast<const char*>(values), sizeof(values));
  return StrCat("POST /v2/models/plain/infer HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/octet-stream\r\nInference-Header-Content-Length: ", header.size(),
                "\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

// `padding` spaces after the JSON make the body as large as a test needs.
std::string JsonRequest(std::string_view data = "1,2,3,4", size_t padding = 0) {
  const std::string body =
      StrCat(R"({"id":"0c6f2d4e-9a51","inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[)", data,
             "]}]}", std::string(padding, ' '));
  return StrCat("POST /v2/models/plain/infer HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

// The buffers a connection reuses never mix one request with the next: every
// answer is its own, whatever the size and kind of the request before it,
// including after a body too large to keep (over 64 KiB).
TEST_F(HttpAllocationTest, ReusedBuffersKeepRequestsApart) {
  auto binary_answer = [this] {
    float out[4] = {};
    if (body_.size() >= sizeof(out)) std::memcpy(out, body_.data() + body_.size() - sizeof(out), sizeof(out));
    return std::vector<float>(out, out + 4);
  };
  ASSERT_EQ(RoundTrip(BinaryRequest({1, 2, 3, 4})), 200) << body_;
  EXPECT_EQ(binary_answer(), (std::vector<float>{1, 2, 3, 4}));
  ASSERT_EQ(RoundTrip(JsonRequest("5,6,7,8", /*padding=*/200 << 10)), 200) << body_;  // Too large to keep.
  EXPECT_NE(body_.find("\"data\":[5.0,6.0,7.0,8.0]"), std::string_view::npos) << body_;
  ASSERT_EQ(RoundTrip(BinaryRequest({9, 10, 11, 12})), 200) << body_;
  EXPECT_EQ(binary_answer(), (std::vector<float>{9, 10, 11, 12}));
  ASSERT_EQ(RoundTrip(JsonRequest("13,14,15,16")), 200) << body_;
  EXPECT_NE(body_.find("\"data\":[13.0,14.0,15.0,16.0]"), std::string_view::npos) << body_;
  ASSERT_EQ(RoundTrip(BinaryRequest({17, 18, 19, 20})), 200) << body_;
  EXPECT_EQ(binary_answer(), (std::vector<float>{17, 18, 19, 20}));
  // A malformed one in between is answered 400 and leaves nothing behind.
  ASSERT_EQ(RoundTrip(JsonRequest("1,2")), 400) << body_;
  ASSERT_EQ(RoundTrip(JsonRequest("21,22,23,24")), 200) << body_;
  EXPECT_NE(body_.find("\"data\":[21.0,22.0,23.0,24.0]"), std::string_view::npos) << body_;
}

// What the HTTP front end still allocates per warm request, all of it the
// InferRequest it decodes (allocated fresh per request, then handed to the
// scheduler): the request object, its inputs, input_parameters and outputs
// vectors, the input's shape, the parameter lists and the keys and names
// longer than std::string's inline 15 characters ("binary_data_size",
// "output 'OUTPUT0'"), and the answer's hand-over from the runner thread to
// the connection's (Asio recycles a handler's memory on the thread that frees
// it, which is the connection's). Pooling InferRequests per connection would
// remove them. Everything else is reused: header fields (per-connection
// arena), the body buffer, the cancellation flag, the encoded JSON, the
// reply's head and buffers, the JSON writer's stack. The bound has a little
// room: now and then a runner still holds the last request's body when the
// next request arrives, and the connection takes a fresh buffer (correct,
// just not free).
TEST_F(HttpAllocationTest, BinaryTensorRequestAllocatesOnlyItsDecodedRequest) {
  const double per_request = AllocationsPerRequest(BinaryRequest());
  EXPECT_NE(body_.find("\"OUTPUT0\""), std::string_view::npos) << body_;
  RecordProperty("allocations_per_request", std::to_string(per_request));
  EXPECT_LE(per_request, 9.5) << "heap allocations per warm binary-tensor request (was 32 before reuse)";
}

TEST_F(HttpAllocationTest, JsonRequestAllocatesOnlyItsDecodedRequest) {
  const double per_request = AllocationsPerRequest(JsonRequest());
  EXPECT_NE(body_.find("\"data\":[1.0,2.0,3.0,4.0]"), std::string_view::npos) << body_;
  RecordProperty("allocations_per_request", std::to_string(per_request));
  EXPECT_LE(per_request, 5.5) << "heap allocations per warm JSON request (was 22 before reuse)";
}

}  // namespace
}  // namespace ortserve::frontend
