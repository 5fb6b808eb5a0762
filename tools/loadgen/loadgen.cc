// SPDX-License-Identifier: Apache-2.0
// ortserve-loadgen: a load generator for KServe v2 servers (ortserve, Triton,
// the bench/ Node peer).
//
//  - closed loop (--mode closed): --concurrency requests outstanding at all
//    times; each connection (HTTP) or slot (gRPC) sends its next request when
//    the previous answer arrives. Latency: send to answer.
//  - open loop (--mode open): requests are due at --rate per second (Poisson or
//    constant arrivals) whatever the server does; a due request waits for a
//    free connection/slot (at most --max-outstanding in flight) and its latency
//    is measured from the time it was due, not the time it could be sent, so a
//    slow server cannot hide its queueing (no coordinated omission).
//
// Each of --threads I/O threads owns an event loop (an Asio io_context for HTTP,
// a gRPC CompletionQueue for gRPC), its share of the connections, of the rate
// and its own histogram; they share nothing until the results are merged.
// Requests due in the first --warmup seconds are sent but not counted; the run
// stops by itself after warm-up + --duration, waits up to --drain seconds for
// the answers still in flight, and reports throughput, latency percentiles and
// errors by kind (text on stdout, JSON with --json-out).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "core/status.h"
#include "core/strings.h"
#include "proto/grpc_service.grpc.pb.h"
#include "histogram.h"
#include "payload.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace ortserve::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
Clock::time_point FromNs(int64_t ns) { return Clock::time_point(std::chrono::nanoseconds(ns)); }
// gRPC deadlines and alarms take system-clock times.
std::chrono::system_clock::time_point SystemFromNs(int64_t ns) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns - NowNs()));
}

struct Options {
  std::string protocol = "http-binary";
  std::string host = "127.0.0.1";
  int port = 8000;
  int metadata_port = 0;
  std::string model;
  std::string version;
  std::string mode = "closed";
  int concurrency = 16;
  double rate = 0;
  std::string arrivals = "poisson";
  int max_outstanding = 64;
  double duration_s = 10;
  double warmup_s = 2;
  double drain_s = 5;
  int threads = 1;
  int grpc_channels = 0;
  std::string input_file;
  std::string http_post;  // Another JSON API instead of KServe infer, e.g. /api/v1/sae/analyze.
  std::string body_file;  // The body sent to http_post.
  int64_t batch = 1;
  std::vector<std::string> shapes;
  int64_t int_min = 0;
  int64_t int_max = 100;
  uint64_t seed = 1;
  std::string json_out;
  std::string label;
  bool quiet = false;
};

// Run-wide clock marks, in steady-clock nanoseconds.
struct Marks {
  int64_t start = 0;
  int64_t measure_begin = 0;  // End of warm-up.
  int64_t measure_end = 0;    // No request due at or after this is sent.
  int64_t drain_end = 0;      // Answers still missing now count as errors.
};

struct WorkerResult {
  LatencyHistogram latency;
  // Refusals (HTTP 429/503, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE), from send
  // to answer: how fast an overloaded server says no.
  LatencyHistogram refused_latency;
  int64_t ok_in_window = 0;    // Answered OK inside [measure_begin, measure_end] (throughput).
  int64_t ok_total = 0;        // Answered OK and due in the window (latency recorded).
  int64_t warmup_requests = 0;
  std::map<std::string, int64_t> errors;
};

// The arrival/slot bookkeeping shared by the HTTP and gRPC workers. A slot is
// one request that may be in flight (an HTTP connection, a gRPC call object).
class Driver {
 public:
  Driver(const Options& options, const Marks& marks, int slots, double rate, uint64_t seed)
      : options_(options),
        marks_(marks),
        open_loop_(options.mode == "open"),
        schedule_(options.arrivals == "constant" ? ArrivalSchedule::Kind::kConstant
                                                 : ArrivalSchedule::Kind::kPoisson,
                  rate > 0 ? rate : 1.0, seed),
        busy_(slots, false),
        sent_(slots, 0) {}
  virtual ~Driver() = default;

  WorkerResult& result() { return result_; }

 protected:
  virtual void Send(int slot, int64_t due) = 0;
  virtual void ArmArrivalTimer(int64_t at) = 0;

  // Starts the run: closed loop fills every slot, open loop arms the first arrival.
  void Begin() {
    if (open_loop_) {
      next_due_ = marks_.start + schedule_.NextGapNanos();  // The marks are set just before the run.
      ArmArrivalTimer(next_due_);
      return;
    }
    const int64_t now = NowNs();
    for (int s = 0; s < static_cast<int>(busy_.size()); ++s) Dispatch(s, now);
  }

  // Arrival timer fired: every arrival due by now goes to a free slot or waits.
  void OnArrivalTimer() {
    const int64_t now = NowNs();
    while (next_due_ <= now && next_due_ < marks_.measure_end) {
      backlog_.push_back(next_due_);
      next_due_ += schedule_.NextGapNanos();
    }
    for (int s = 0; s < static_cast<int>(busy_.size()) && !backlog_.empty(); ++s) {
      if (!busy_[s]) {
        const int64_t due = backlog_.front();
        backlog_.pop_front();
        Dispatch(s, due);
      }
    }
    if (next_due_ < marks_.measure_end) ArmArrivalTimer(next_due_);
  }

  // A slot's request finished (error_kind empty on success).
  void OnDone(int slot, int64_t due, const std::string& error_kind) {
    const int64_t now = NowNs();
    busy_[slot] = false;
    --in_flight_;
    // Throughput: OK answers received inside the measured window, whenever due.
    if (error_kind.empty() && now >= marks_.measure_begin && now <= marks_.measure_end) ++result_.ok_in_window;
    if (due < marks_.measure_begin) {
      ++result_.warmup_requests;
    } else if (error_kind.empty()) {
      result_.latency.Record(now - due);
      ++result_.ok_total;
    } else {
      ++result_.errors[error_kind];
      if (IsRefusal(error_kind)) result_.refused_latency.Record(now - sent_[slot]);
    }
    if (now >= marks_.drain_end) return;
    if (open_loop_) {
      if (!backlog_.empty()) {
        const int64_t next = backlog_.front();
        backlog_.pop_front();
        Dispatch(slot, next);
      }
    } else if (now < marks_.measure_end) {
      Dispatch(slot, now);
    }
    if (Finished()) OnAllDone();
  }

  bool Finished() const {
    const bool arrivals_done = open_loop_ ? next_due_ >= marks_.measure_end : NowNs() >= marks_.measure_end;
    return arrivals_done && in_flight_ == 0 && backlog_.empty();
  }

  // Counts what is still missing at the drain deadline.
  void CountUnfinished() {
    for (int64_t due : backlog_) {
      if (due >= marks_.measure_begin) ++result_.errors["not_sent_by_drain_deadline"];
    }
    backlog_.clear();
  }

  // A request abandoned at the drain deadline.
  void OnAbandoned(int slot, int64_t due) {
    busy_[slot] = false;
    --in_flight_;
    if (due >= marks_.measure_begin) ++result_.errors["no_answer_by_drain_deadline"];
  }

  // Called when the run has nothing left to do before the drain deadline.
  virtual void OnAllDone() {}

  int in_flight() const { return in_flight_; }
  const Options& options_;
  const Marks& marks_;

 private:
  void Dispatch(int slot, int64_t due) {
    busy_[slot] = true;
    ++in_flight_;
    sent_[slot] = NowNs();
    Send(slot, due);
  }

  static bool IsRefusal(const std::string& kind) {
    return kind == "http_429" || kind == "http_503" || kind == "grpc_RESOURCE_EXHAUSTED" ||
           kind == "grpc_UNAVAILABLE";
  }

  bool open_loop_;
  ArrivalSchedule schedule_;
  std::vector<bool> busy_;
  std::vector<int64_t> sent_;  // When each slot's request was sent.
  std::deque<int64_t> backlog_;
  int64_t next_due_ = 0;
  int in_flight_ = 0;
  WorkerResult result_;
};

// ---------------------------------------------------------------------------
// HTTP/1.1 keep-alive connections over Boost.Beast; the request bytes are
// serialized once and written as they are.

class HttpWorker : public Driver {
 public:
  HttpWorker(const Options& options, const Marks& marks, int slots, double rate, uint64_t seed,
             std::shared_ptr<const std::vector<std::string>> request_bytes, tcp::endpoint endpoint)
      : Driver(options, marks, slots, rate, seed),
        io_(1),
        arrival_timer_(io_),
        stop_timer_(io_),
        request_(std::move(request_bytes)),
        endpoint_(endpoint) {
    for (int i = 0; i < slots; ++i) conns_.push_back(std::make_unique<Conn>(io_));
  }

  // Connects every connection (blocking, before the clock starts).
  absl::Status Connect() {
    for (auto& c : conns_) {
      boost::system::error_code ec;
      c->socket.connect(endpoint_, ec);
      if (ec) return absl::UnavailableError(StrCat("connecting to ", endpoint_.address().to_string(), ":",
                                                   endpoint_.port(), ": ", ec.message()));
      c->socket.set_option(tcp::no_delay(true));
    }
    return absl::OkStatus();
  }

  void Run() {
    asio::post(io_, [this] { Begin(); });
    stop_timer_.expires_at(FromNs(marks_.drain_end));
    stop_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      CountUnfinished();
      for (auto& c : conns_) {
        if (c->busy) ++result().errors["no_answer_by_drain_deadline"];
        boost::system::error_code ignored;
        c->socket.close(ignored);
      }
      arrival_timer_.cancel();
      io_.stop();
    });
    io_.run();
  }

 protected:
  void OnAllDone() override {
    stop_timer_.cancel();
    arrival_timer_.cancel();
    io_.stop();
  }

  void ArmArrivalTimer(int64_t at) override {
    arrival_timer_.expires_at(FromNs(at));
    arrival_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) OnArrivalTimer();
    });
  }

  void Send(int slot, int64_t due) override {
    Conn& c = *conns_[slot];
    c.due = due;
    c.busy = true;
    if (!c.socket.is_open()) {
      c.reused = false;  // A new connection: a failure on it is not a stale reuse.
      c.socket.async_connect(endpoint_, [this, slot](const boost::system::error_code& ec) {
        Conn& c = *conns_[slot];
        if (ec) return Fail(slot, "connect");
        c.socket.set_option(tcp::no_delay(true));
        Write(slot);
      });
      return;
    }
    Write(slot);
  }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    int64_t due = 0;
    bool busy = false;
    bool reused = false;   // An answer came on this socket already.
    bool retried = false;  // The request in flight is a retry.
  };

  void Write(int slot) {
    Conn& c = *conns_[slot];
    // A request mix is sent in turn, each worker starting at its own offset.
    const std::string& bytes = (*request_)[next_request_++ % request_->size()];
    asio::async_write(c.socket, asio::buffer(bytes), [this, slot](const boost::system::error_code& ec, size_t) {
      if (ec) return RetryOrFail(slot, "write");
      Conn& c = *conns_[slot];
      c.response = {};
      http::async_read(c.socket, c.buffer, c.response, [this, slot](const boost::system::error_code& ec, size_t n) {
        if (ec) {
          // Nothing of the answer came: the request may be sent again.
          if (n == 0 && (ec == http::error::end_of_stream || ec == asio::error::connection_reset)) {
            return RetryOrFail(slot, ec == http::error::end_of_stream ? "closed_by_server" : "read");
          }
          return Fail(slot, ec == http::error::end_of_stream ? "closed_by_server" : "read");
        }
        Conn& c = *conns_[slot];
        c.reused = true;
        c.retried = false;
        const unsigned status = c.response.result_int();
        const bool keep = c.response.keep_alive();
        if (!keep) {
          boost::system::error_code ignored;
          c.socket.close(ignored);
          c.buffer.clear();
        }
        Finish(slot, status == 200 ? std::string() : StrCat("http_", status));
      });
    });
  }

  // A kept-alive connection the server closed as it was reused (its idle
  // timeout racing the request) fails before any byte of the answer: the
  // request never ran, so it goes once more on a new connection, as HTTP
  // clients do; only then is it an error.
  void RetryOrFail(int slot, const std::string& kind) {
    Conn& c = *conns_[slot];
    if (!c.reused || c.retried) return Fail(slot, kind);
    c.retried = true;
    c.reused = false;
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.buffer.clear();
    Send(slot, c.due);
  }

  void Fail(int slot, const std::string& kind) {
    Conn& c = *conns_[slot];
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.buffer.clear();
    Finish(slot, kind);
  }

  void Finish(int slot, const std::string& kind) {
    Conn& c = *conns_[slot];
    c.busy = false;
    OnDone(slot, c.due, kind);
  }

  asio::io_context io_;
  asio::steady_timer arrival_timer_;
  asio::steady_timer stop_timer_;
  std::shared_ptr<const std::vector<std::string>> request_;
  size_t next_request_ = 0;
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// ---------------------------------------------------------------------------
// gRPC: asynchronous unary ModelInfer calls on one CompletionQueue per thread.

class GrpcWorker : public Driver {
 public:
  GrpcWorker(const Options& options, const Marks& marks, int slots, double rate, uint64_t seed,
             std::shared_ptr<const std::vector<inference::ModelInferRequest>> request,
             std::vector<std::shared_ptr<inference::GRPCInferenceService::Stub>> stubs)
      : Driver(options, marks, slots, rate, seed), request_(std::move(request)), stubs_(std::move(stubs)) {
    for (int i = 0; i < slots; ++i) calls_.push_back(std::make_unique<Call>());
  }

  void Run() {
    Begin();
    grpc::Alarm stop_alarm;
    stop_alarm.Set(&cq_, SystemFromNs(marks_.drain_end), &stop_tag_);
    void* tag = nullptr;
    bool ok = false;
    bool stopping = false;
    while (cq_.Next(&tag, &ok)) {
      if (tag == &arrival_tag_) {
        if (ok && !stopping) OnArrivalTimer();
      } else if (tag == &stop_tag_) {
        stopping = true;
        CountUnfinished();
        for (auto& c : calls_) {
          if (c->busy) c->context->TryCancel();
        }
        if (in_flight() == 0) break;
      } else {
        Call* call = static_cast<Call*>(tag);
        call->busy = false;
        if (stopping) {
          OnAbandoned(call->index, call->due);
          if (in_flight() == 0) break;
        } else {
          OnDone(call->index, call->due,
                 call->status.ok() ? std::string() : StrCat("grpc_", StatusCodeName(call->status.error_code())));
        }
      }
      if (!stopping && Finished()) break;
    }
    stop_alarm.Cancel();
    arrival_alarm_.Cancel();
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
  }

 protected:
  void ArmArrivalTimer(int64_t at) override { arrival_alarm_.Set(&cq_, SystemFromNs(at), &arrival_tag_); }

  void Send(int slot, int64_t due) override {
    Call& c = *calls_[slot];
    c.index = slot;
    c.due = due;
    c.busy = true;
    c.context = std::make_unique<grpc::ClientContext>();
    c.response.Clear();
    auto& stub = stubs_[static_cast<size_t>(slot) % stubs_.size()];
    const auto& request = (*request_)[next_request_++ % request_->size()];
    c.reader = stub->PrepareAsyncModelInfer(c.context.get(), request, &cq_);
    c.reader->StartCall();
    c.reader->Finish(&c.response, &c.status, &c);
  }

 private:
  struct Call {
    int index = 0;
    int64_t due = 0;
    bool busy = false;
    std::unique_ptr<grpc::ClientContext> context;
    inference::ModelInferResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
  };

  static std::string StatusCodeName(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::CANCELLED: return "CANCELLED";
      case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
      case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
      case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
      case grpc::StatusCode::INTERNAL: return "INTERNAL";
      case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
      default: return StrCat(static_cast<int>(code));
    }
  }

  std::shared_ptr<const std::vector<inference::ModelInferRequest>> request_;
  size_t next_request_ = 0;
  std::vector<std::shared_ptr<inference::GRPCInferenceService::Stub>> stubs_;
  grpc::CompletionQueue cq_;
  grpc::Alarm arrival_alarm_;
  char arrival_tag_ = 0;
  char stop_tag_ = 0;
  std::vector<std::unique_ptr<Call>> calls_;
};


// ---------------------------------------------------------------------------
// Setup: metadata, payloads, endpoints.

absl::StatusOr<std::string> HttpGet(const std::string& host, int port, const std::string& target) {
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.connect(resolver.resolve(host, std::to_string(port)));
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    if (res.result_int() != 200) {
      return absl::UnavailableError(StrCat("GET ", target, " answered HTTP ", res.result_int(), ": ", res.body()));
    }
    return res.body();
  } catch (const std::exception& e) {
    return absl::UnavailableError(StrCat("GET http://", host, ":", port, target, ": ", e.what()));
  }
}

std::string ModelPath(const Options& o) {
  std::string path = StrCat("/v2/models/", o.model);
  if (!o.version.empty()) path += StrCat("/versions/", o.version);
  return path;
}

std::shared_ptr<grpc::Channel> MakeChannel(const Options& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // One TCP connection per channel.
  return grpc::CreateCustomChannel(StrCat(o.host, ":", o.port), grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::vector<TensorMetadata>> FetchMetadata(const Options& o) {
  if (o.protocol == "grpc" && o.metadata_port == 0) {
    auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(o));
    inference::ModelMetadataRequest req;
    req.set_name(o.model);
    req.set_version(o.version);
    inference::ModelMetadataResponse res;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status = stub->ModelMetadata(&ctx, req, &res);
    if (!status.ok()) {
      return absl::UnavailableError(StrCat("gRPC ModelMetadata for model '", o.model, "': ", status.error_message()));
    }
    std::vector<TensorMetadata> out;
    for (const auto& in : res.inputs()) {
      out.push_back(TensorMetadata{in.name(), in.datatype(), {in.shape().begin(), in.shape().end()}});
    }
    return out;
  }
  ASSIGN_OR_RETURN(std::string body, HttpGet(o.host, o.metadata_port ? o.metadata_port : o.port, ModelPath(o)));
  return ParseMetadataJson(body);
}

absl::StatusOr<std::vector<int64_t>> ParseDims(const std::string& text, const std::string& what) {
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      dims.push_back(std::stoll(item, &used));
      if (used != item.size() || dims.back() < 0) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      return absl::InvalidArgumentError(StrCat(what, ": '", item, "' is not a dimension (an integer >= 0)"));
    }
  }
  return dims;
}

// The request mix: one request, or with --shape given more than once for an
// input, one request per shape (inputs with fewer shapes cycle through theirs).
absl::StatusOr<std::vector<std::vector<InputTensor>>> BuildInputs(const Options& o) {
  if (!o.input_file.empty()) {
    std::ifstream in(o.input_file, std::ios::binary);
    if (!in) return absl::NotFoundError(StrCat("--input-file ", o.input_file, ": cannot open"));
    std::stringstream text;
    text << in.rdbuf();
    ASSIGN_OR_RETURN(std::vector<InputTensor> inputs, ParseRequestJson(text.str()));
    return std::vector<std::vector<InputTensor>>{std::move(inputs)};
  }
  ASSIGN_OR_RETURN(std::vector<TensorMetadata> meta, FetchMetadata(o));
  std::map<std::string, std::vector<std::vector<int64_t>>> shapes;
  size_t variants = 1;
  for (const std::string& s : o.shapes) {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(StrCat("--shape '", s, "': expected NAME:d0,d1,..."));
    }
    auto& list = shapes[s.substr(0, colon)];
    ASSIGN_OR_RETURN(list.emplace_back(), ParseDims(s.substr(colon + 1), StrCat("--shape ", s)));
    variants = std::max(variants, list.size());
  }
  std::vector<std::vector<InputTensor>> mix;
  for (size_t v = 0; v < variants; ++v) {
    GenerateOptions g;
    g.batch = o.batch;
    g.int_min = o.int_min;
    g.int_max = o.int_max;
    g.seed = o.seed + v;
    for (const auto& [name, list] : shapes) g.shape_overrides[name] = list[v % list.size()];
    ASSIGN_OR_RETURN(mix.emplace_back(), GenerateInputs(meta, g));
  }
  return mix;
}

std::string HttpRequestBytes(const Options& o, const std::vector<InputTensor>& inputs) {
  std::string body;
  std::string extra;
  std::string content_type = "application/json";
  if (o.protocol == "http-binary") {
    BinaryBody b = EncodeBinaryBody(inputs);
    body = std::move(b.body);
    extra = StrCat("Inference-Header-Content-Length: ", b.header_length, "\r\n");
    content_type = "application/octet-stream";
  } else {
    body = EncodeJsonBody(inputs);
  }
  return StrCat("POST ", ModelPath(o), "/infer HTTP/1.1\r\nHost: ", o.host, ":", o.port,
                "\r\nContent-Type: ", content_type, "\r\nContent-Length: ", body.size(), "\r\n", extra, "\r\n",
                body);
}

std::shared_ptr<const inference::ModelInferRequest> GrpcRequest(const Options& o,
                                                                const std::vector<InputTensor>& inputs) {
  auto req = std::make_shared<inference::ModelInferRequest>();
  req->set_model_name(o.model);
  req->set_model_version(o.version);
  for (const InputTensor& t : inputs) {
    auto* in = req->add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) in->add_shape(d);
    req->add_raw_input_contents(RawContents(t));
  }
  return req;
}

// ---------------------------------------------------------------------------
// Reporting.

struct Summary {
  LatencyHistogram latency;
  LatencyHistogram refused_latency;
  int64_t ok_in_window = 0;
  int64_t ok_total = 0;
  int64_t warmup_requests = 0;
  std::map<std::string, int64_t> errors;
  double measured_s = 0;
};

double Us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string SummaryJson(const Options& o, const Summary& s, int64_t batch) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetMaxDecimalPlaces(3);
  w.StartObject();
  w.Key("label"); w.String(o.label.c_str());
  w.Key("model"); w.String(o.model.c_str());
  w.Key("protocol"); w.String(o.protocol.c_str());
  w.Key("mode"); w.String(o.mode.c_str());
  if (o.mode == "open") {
    w.Key("target_rate_rps"); w.Double(o.rate);
    w.Key("arrivals"); w.String(o.arrivals.c_str());
    w.Key("max_outstanding"); w.Int(o.max_outstanding);
  } else {
    w.Key("concurrency"); w.Int(o.concurrency);
  }
  w.Key("batch"); w.Int64(batch);
  w.Key("threads"); w.Int(o.threads);
  w.Key("duration_s"); w.Double(s.measured_s);
  w.Key("warmup_s"); w.Double(o.warmup_s);
  w.Key("requests_ok"); w.Int64(s.ok_total);
  int64_t errors = 0;
  for (const auto& [k, v] : s.errors) errors += v;
  w.Key("requests_failed"); w.Int64(errors);
  const double rps = s.measured_s > 0 ? static_cast<double>(s.ok_in_window) / s.measured_s : 0;
  w.Key("throughput_rps"); w.Double(rps);
  w.Key("throughput_inferences_per_s"); w.Double(rps * static_cast<double>(batch));
  w.Key("latency_us");
  w.StartObject();
  w.Key("mean"); w.Double(s.latency.mean() / 1000.0);
  w.Key("min"); w.Double(Us(s.latency.min()));
  w.Key("p50"); w.Double(Us(s.latency.ValueAtQuantile(0.50)));
  w.Key("p90"); w.Double(Us(s.latency.ValueAtQuantile(0.90)));
  w.Key("p99"); w.Double(Us(s.latency.ValueAtQuantile(0.99)));
  w.Key("p99_9"); w.Double(Us(s.latency.ValueAtQuantile(0.999)));
  w.Key("max"); w.Double(Us(s.latency.max()));
  w.EndObject();
  // The latency distribution in more detail, [quantile, us] pairs: every
  // percent, then the tail (tools/capacity/mgc_sim.py samples from it).
  w.Key("latency_quantiles_us");
  w.StartArray();
  auto quantile = [&](double q) {
    w.StartArray();
    const std::string key = absl::StrFormat("%.4g", q);  // 0.9995, not the 3 decimals set above.
    w.RawValue(key.data(), key.size(), rapidjson::kNumberType);
    w.Double(Us(s.latency.ValueAtQuantile(q)));
    w.EndArray();
  };
  for (int percent = 1; percent <= 99; ++percent) quantile(percent / 100.0);
  for (double q : {0.995, 0.999, 0.9995, 0.9999}) quantile(q);
  w.EndArray();
  // Refusals, send to answer (absent when there were none).
  if (s.refused_latency.count() > 0) {
    w.Key("refused_latency_us");
    w.StartObject();
    w.Key("count"); w.Int64(s.refused_latency.count());
    w.Key("p50"); w.Double(Us(s.refused_latency.ValueAtQuantile(0.50)));
    w.Key("p99"); w.Double(Us(s.refused_latency.ValueAtQuantile(0.99)));
    w.Key("max"); w.Double(Us(s.refused_latency.max()));
    w.EndObject();
  }
  w.Key("errors");
  w.StartObject();
  for (const auto& [k, v] : s.errors) {
    w.Key(k.c_str());
    w.Int64(v);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void PrintText(const Options& o, const Summary& s, int64_t batch) {
  int64_t errors = 0;
  for (const auto& [k, v] : s.errors) errors += v;
  const double rps = s.measured_s > 0 ? static_cast<double>(s.ok_in_window) / s.measured_s : 0;
  std::printf("ortserve-loadgen: %s loop, %s, model %s, batch %lld, ", o.mode.c_str(), o.protocol.c_str(),
              o.model.c_str(), static_cast<long long>(batch));
  if (o.mode == "open") {
    std::printf("rate %.1f/s (%s arrivals, <= %d outstanding)\n", o.rate, o.arrivals.c_str(), o.max_outstanding);
  } else {
    std::printf("concurrency %d\n", o.concurrency);
  }
  std::printf("  measured %.2f s after %.2f s warm-up: %lld ok, %lld failed\n", s.measured_s, o.warmup_s,
              static_cast<long long>(s.ok_total), static_cast<long long>(errors));
  std::printf("  throughput %.1f req/s (%.1f inferences/s)\n", rps, rps * static_cast<double>(batch));
  std::printf("  latency us: mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              s.latency.mean() / 1000.0, Us(s.latency.ValueAtQuantile(0.5)), Us(s.latency.ValueAtQuantile(0.9)),
              Us(s.latency.ValueAtQuantile(0.99)), Us(s.latency.ValueAtQuantile(0.999)), Us(s.latency.max()));
  for (const auto& [k, v] : s.errors) std::printf("  errors %s: %lld\n", k.c_str(), static_cast<long long>(v));
}

absl::Status Main(Options o) {
  if (o.model.empty() && o.http_post.empty()) {
    return absl::InvalidArgumentError("--model is required (or --http-post with --body-file)");
  }
  if (!o.http_post.empty() && (o.protocol == "grpc" || o.body_file.empty())) {
    return absl::InvalidArgumentError("--http-post needs an HTTP --protocol and a --body-file");
  }
  if (o.mode == "open" && o.rate <= 0) return absl::InvalidArgumentError("--mode open needs --rate > 0");
  if (o.mode == "closed" && o.concurrency < o.threads) o.threads = o.concurrency;
  const int slots_total = o.mode == "open" ? o.max_outstanding : o.concurrency;
  if (slots_total < o.threads) o.threads = slots_total;

  std::vector<std::vector<InputTensor>> mix;
  if (o.http_post.empty()) {
    ASSIGN_OR_RETURN(mix, BuildInputs(o));
  }
  const int64_t batch = mix.empty() || mix[0].empty() || mix[0][0].shape.empty() ? 1 : mix[0][0].shape[0];

  std::vector<std::unique_ptr<Driver>> workers;
  std::vector<std::function<void()>> runs;
  Marks marks;
  auto slots_of = [&](int t) { return slots_total / o.threads + (t < slots_total % o.threads ? 1 : 0); };
  const double rate_each = o.rate / o.threads;
  if (o.protocol == "grpc") {
    auto request = std::make_shared<std::vector<inference::ModelInferRequest>>();
    for (const auto& inputs : mix) request->push_back(*GrpcRequest(o, inputs));
    const int channels = o.grpc_channels > 0 ? o.grpc_channels : o.threads;
    std::vector<std::shared_ptr<inference::GRPCInferenceService::Stub>> stubs;
    for (int i = 0; i < channels; ++i) {
      auto channel = MakeChannel(o);
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
        return absl::UnavailableError(StrCat("gRPC: cannot connect to ", o.host, ":", o.port));
      }
      stubs.push_back(inference::GRPCInferenceService::NewStub(channel));
    }
    for (int t = 0; t < o.threads; ++t) {
      std::vector<std::shared_ptr<inference::GRPCInferenceService::Stub>> mine;
      for (int i = t; i < channels; i += o.threads) mine.push_back(stubs[i]);
      if (mine.empty()) mine.push_back(stubs[t % channels]);
      auto w = std::make_unique<GrpcWorker>(o, marks, slots_of(t), rate_each, o.seed + 7919 * (t + 1), request,
                                            std::move(mine));
      GrpcWorker* raw = w.get();
      runs.push_back([raw] { raw->Run(); });
      workers.push_back(std::move(w));
    }
  } else if (o.protocol == "http-json" || o.protocol == "http-binary") {
    auto request = std::make_shared<std::vector<std::string>>();
    if (o.http_post.empty()) {
      for (const auto& inputs : mix) request->push_back(HttpRequestBytes(o, inputs));
    } else {
      std::ifstream in(o.body_file, std::ios::binary);
      if (!in) return absl::NotFoundError(StrCat("--body-file ", o.body_file, ": cannot open"));
      std::stringstream body;
      body << in.rdbuf();
      request->push_back(StrCat("POST ", o.http_post, " HTTP/1.1\r\nHost: ", o.host, ":", o.port,
                                "\r\nContent-Type: application/json\r\nContent-Length: ", body.str().size(),
                                "\r\n\r\n", body.str()));
    }
    asio::io_context resolve_io;
    tcp::resolver resolver(resolve_io);
    boost::system::error_code ec;
    auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (ec || results.empty()) return absl::UnavailableError(StrCat("resolving ", o.host, ": ", ec.message()));
    const tcp::endpoint endpoint = *results.begin();
    for (int t = 0; t < o.threads; ++t) {
      auto w = std::make_unique<HttpWorker>(o, marks, slots_of(t), rate_each, o.seed + 7919 * (t + 1), request,
                                            endpoint);
      RETURN_IF_ERROR(w->Connect());
      HttpWorker* raw = w.get();
      runs.push_back([raw] { raw->Run(); });
      workers.push_back(std::move(w));
    }
  } else {
    return absl::InvalidArgumentError(
        StrCat("--protocol '", o.protocol, "': expected http-json, http-binary or grpc"));
  }

  // The clock starts once everything is connected.
  marks.start = NowNs() + 1'000'000;
  marks.measure_begin = marks.start + static_cast<int64_t>(o.warmup_s * 1e9);
  marks.measure_end = marks.measure_begin + static_cast<int64_t>(o.duration_s * 1e9);
  marks.drain_end = marks.measure_end + static_cast<int64_t>(o.drain_s * 1e9);
  std::vector<std::thread> threads;
  for (auto& run : runs) threads.emplace_back(run);
  for (auto& t : threads) t.join();

  Summary s;
  s.measured_s = o.duration_s;
  for (auto& w : workers) {
    WorkerResult& r = w->result();
    s.latency.Merge(r.latency);
    s.refused_latency.Merge(r.refused_latency);
    s.ok_in_window += r.ok_in_window;
    s.ok_total += r.ok_total;
    s.warmup_requests += r.warmup_requests;
    for (const auto& [k, v] : r.errors) s.errors[k] += v;
  }
  if (!o.quiet) PrintText(o, s, batch);
  if (!o.json_out.empty()) {
    const std::string json = SummaryJson(o, s, batch);
    if (o.json_out == "-") {
      std::fwrite(json.data(), 1, json.size(), stdout);
    } else {
      std::ofstream out(o.json_out, std::ios::binary);
      out << json;
      if (!out) return absl::UnavailableError(StrCat("--json-out ", o.json_out, ": cannot write"));
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace ortserve::loadgen

int main(int argc, char** argv) {
  ortserve::loadgen::Options o;
  CLI::App app{"ortserve-loadgen: open- and closed-loop load for KServe v2 inference servers"};
  app.add_option("--protocol", o.protocol, "http-json, http-binary (Triton binary tensor extension) or grpc")
      ->capture_default_str()
      ->check(CLI::IsMember({"http-json", "http-binary", "grpc"}));
  app.add_option("--host", o.host, "Server address")->capture_default_str();
  app.add_option("--port", o.port, "Server port (HTTP or gRPC, per --protocol)")->capture_default_str();
  app.add_option("--metadata-port", o.metadata_port,
                 "HTTP port to read model metadata from (default: --port; for gRPC, the gRPC metadata call)");
  app.add_option("-m,--model", o.model, "Model name (KServe infer; not needed with --http-post)");
  app.add_option("--http-post", o.http_post,
                 "POST --body-file to this path instead of a KServe infer request (any JSON API, "
                 "e.g. /api/v1/sae/analyze or /embed); answers other than HTTP 200 count as errors");
  app.add_option("--body-file", o.body_file, "The JSON body for --http-post");
  app.add_option("--model-version", o.version, "Model version (default: the server's choice)");
  app.add_option("--mode", o.mode, "closed (fixed concurrency) or open (fixed arrival rate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"closed", "open"}));
  app.add_option("-c,--concurrency", o.concurrency, "Closed loop: requests kept in flight (HTTP: connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("-r,--rate", o.rate, "Open loop: requests per second")->check(CLI::PositiveNumber);
  app.add_option("--arrivals", o.arrivals, "Open loop: poisson or constant inter-arrival times")
      ->capture_default_str()
      ->check(CLI::IsMember({"poisson", "constant"}));
  app.add_option("--max-outstanding", o.max_outstanding,
                 "Open loop: most requests in flight (HTTP: connections); later arrivals wait, and their wait "
                 "counts in their latency")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("-d,--duration", o.duration_s, "Measured seconds")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup_s, "Seconds of load before measuring (not counted)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drain", o.drain_s, "Seconds to wait for answers in flight at the end; later ones are errors")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", o.threads, "I/O threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--grpc-channels", o.grpc_channels, "gRPC connections (default: one per thread)");
  app.add_option("-i,--input-file", o.input_file, "KServe v2 JSON request body to send (default: random inputs)");
  app.add_option("-b,--batch", o.batch, "Random inputs: size of the leading -1 (batch) dimension")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--shape", o.shapes,
                 "Random inputs: NAME:d0,d1,... overrides an input's shape; repeat a NAME for a request mix "
                 "(one request per shape, sent in turn)");
  app.add_option("--int-min", o.int_min, "Random integer inputs: smallest value")->capture_default_str();
  app.add_option("--int-max", o.int_max, "Random integer inputs: largest value")->capture_default_str();
  app.add_option("--seed", o.seed, "Random seed (inputs and Poisson arrivals)")->capture_default_str();
  app.add_option("--json-out", o.json_out, "Write the results as JSON to this file ('-': stdout)");
  app.add_option("--label", o.label, "Free text copied into the JSON results");
  app.add_flag("-q,--quiet", o.quiet, "No text report");
  CLI11_PARSE(app, argc, argv);
  absl::Status status = ortserve::loadgen::Main(o);
  if (!status.ok()) {
    std::fprintf(stderr, "ortserve-loadgen: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
