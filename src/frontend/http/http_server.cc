// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <memory_resource>
#include <optional>
#include <tuple>
#include <thread>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "core/strings.h"
#include "frontend/http/kserve_json_codec.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/http/rest_json.h"
#include "observability/profiler.h"
#include "observability/request_record.h"

namespace ortserve::frontend {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::string_view kJson = "application/json";

// A request's header fields. Beast allocates each field on its own; they come
// from the connection's arena, emptied before each request, so a warm
// connection reads headers without touching the heap.
using FieldAllocator = std::pmr::polymorphic_allocator<char>;
using Request = http::request<http::string_body, http::basic_fields<FieldAllocator>>;
using RequestParser = http::request_parser<http::string_body, FieldAllocator>;

// Decodes %XX escapes in a path segment; nullopt on a malformed escape.
std::optional<std::string> UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

std::vector<std::string_view> SplitQuery(std::string_view query) {
  std::vector<std::string_view> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    params.push_back(query.substr(0, amp));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return params;
}

// Every endpoint has at most 7 segments: a path of up to 8 splits on the stack.
using PathParts = absl::InlinedVector<std::string_view, 8>;

PathParts SplitPath(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  PathParts parts;
  size_t at = 0;
  while (at < target.size()) {
    if (target[at] == '/') {
      ++at;
      continue;
    }
    size_t end = target.find('/', at);
    if (end == std::string_view::npos) end = target.size();
    parts.push_back(target.substr(at, end - at));
    at = end;
  }
  return parts;
}

// One connection. Reads a request, answers it, and reads the next (keep-alive).
// Lives on one event loop (one I/O thread) from accept to close: its handlers
// never run concurrently, and answers from runner threads are posted to it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(tcp::socket socket, const HttpServer::Options& options, std::atomic<int64_t>& active)
      : socket_(std::move(socket)), options_(options), active_(active) {}

  void Start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called by the loop's sweeper (on this connection's thread): closes the
  // connection when a read or write has outlived the idle timeout. No timer
  // per operation: a deadline check every sweep costs no system call.
  void CloseIfExpired(Clock::time_point now) {
    if (now >= deadline_ && socket_.is_open()) Close();
  }

 private:
  struct Reply {
    static constexpr size_t kNoHeaderLength = ~size_t{0};
    Reply() = default;
    Reply(unsigned status, std::string_view content_type, std::string body)
        : status(status), content_type(content_type), body(std::move(body)) {}
    unsigned status = 200;
    std::string_view content_type = kJson;  // Always a literal.
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // Rare ones (Retry-After).
    // Inference-Header-Content-Length, for binary tensor responses.
    size_t inference_header_length = kNoHeaderLength;
  };

  static constexpr size_t kSmallBody = 4096;
  static constexpr size_t kReadChunk = 65536;
  // Beast reads as much as the buffer has room for, at least 512 bytes; with
  // this much room a typical request (headers and a small body) is one read.
  static constexpr size_t kInitialRoom = 16384;
  // Buffers a connection keeps for its next request (body, encoded response)
  // are dropped after use when larger than this: an idle kept-alive
  // connection holds at most a few of these, however large its last request
  // was (thousands of idle connections must not hold gigabytes). Typical
  // text and tabular requests fit; large tensors are allocated per request.
  static constexpr size_t kRetainedBytes = 64 << 10;

  void ArmDeadline() {
    // Saturating: a timeout of years (or infinite) means never.
    const auto now = Clock::now();
    const int64_t timeout = absl::ToInt64Nanoseconds(options_.idle_timeout);
    deadline_ = timeout >= (Clock::time_point::max() - now).count() ? Clock::time_point::max()
                                                                     : now + std::chrono::nanoseconds(timeout);
  }

  void ReadHeader() {
    parser_.reset();
    fields_arena_.release();
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldAllocator(&fields_arena_)));
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    if (buffer_.capacity() < kInitialRoom) buffer_.reserve(kInitialRoom);
    ArmDeadline();
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    auto& request = parser_->get();
    // The JSON decoder reads a little past the end (simdjson's padding);
    // reserving it here lets the body be parsed where it lands, uncopied.
    if (auto length = parser_->content_length()) {
      if (*length > options_.max_body_bytes) return OnReadError(http::error::body_limit);
      // The body lands in the buffer the last request's body used, when no
      // request or response holds that one any more: warm, it allocates nothing.
      if (body_.use_count() == 1 && body_->capacity() <= kRetainedBytes) {
        request.body().swap(*body_);
        request.body().clear();  // The reader appends.
      }
      request.body().reserve(*length + simdjson::SIMDJSON_PADDING);
      // Beast reads as much as the read buffer has room for (at least 512
      // bytes): a body of tensors would come in hundreds of small reads.
      // With room for 64 KiB (Beast's most per read) a 1 MB body takes ~16.
      // The room stays with the connection, for its next request.
      if (*length > kSmallBody) buffer_.reserve(std::min<size_t>(*length, kReadChunk));
    }
    if (beast::iequals(request[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return Send(Error(413, StrCat("request body exceeds the limit of ", options_.max_body_bytes,
                                    " bytes (--http-max-body-bytes)")));
    }
    if (ec == http::error::header_limit || ec.category() == http::make_error_code(http::error::bad_target).category()) {
      if (ec == http::error::end_of_stream || ec == http::error::partial_message) return Close();
      keep_alive_ = false;
      return Send(Error(400, StrCat("malformed HTTP request: ", ec.message())));
    }
    Close();
  }

  void OnBody(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    // Answering may take longer than the idle timeout (a model run, a load).
    deadline_ = Clock::time_point::max();
    keep_alive_ = parser_->get().keep_alive();
    // Counted until its response is written: the shutdown drain waits for it.
    active_.fetch_add(1, std::memory_order_acq_rel);
    const auto traceparent = parser_->get()["traceparent"];
    record_.emplace(&options_.service->telemetry(), observability::Protocol::kHttp,
                    std::string_view(traceparent.data(), traceparent.size()));
    Route();
  }

  static Reply Error(unsigned status, std::string message) {
    return Reply{status, kJson, EncodeError(message)};
  }
  static Reply Error(const absl::Status& status) {
    Reply reply = Error(HttpStatusFor(status.code()), std::string(ToStd(status.message())));
    // A lazy model still loading says when to come back.
    if (auto retry = status.GetPayload(repository::kRetryAfterPayload)) {
      reply.headers.emplace_back("Retry-After", std::string(*retry));
    }
    return reply;
  }
  static Reply Ok(std::string body) { return Reply{200, kJson, std::move(body)}; }
  static Reply Bare(unsigned status) { return Reply{status, "text/plain", ""}; }

  void Route() {
    auto& request = parser_->get();
    const std::string_view target(request.target().data(), request.target().size());
    const auto parts = SplitPath(target);
    const http::verb verb = request.method();
    auto method_not_allowed = [&] {
      Send(Error(405, StrCat("method ", std::string_view(request.method_string().data(),
                                                         request.method_string().size()),
                             " is not allowed on ", target)));
    };
    InferenceService& service = *options_.service;

    if (IsPipelineRoute(target)) {  // Text endpoints: SAE, TEI, OpenAI (pipeline_routes.h).
      if (verb != http::verb::post) return method_not_allowed();
      return PipelineRoute(target);
    }
    if (parts.empty() || parts[0] != "v2") return Send(Error(404, StrCat("no such endpoint: ", target)));
    if (parts.size() == 1) {
      if (verb != http::verb::get) return method_not_allowed();
      return Send(Ok(ServerMetadataJson()));
    }
    if (parts[1] == "health" && parts.size() == 3) {
      if (verb != http::verb::get) return method_not_allowed();
      if (parts[2] == "live") return Send(Bare(service.Live() ? 200 : 503));
      if (parts[2] == "ready") return Send(Bare(service.Ready() ? 200 : 503));
    }
    if (parts[1] == "logging" && parts.size() == 2) {
      observability::Logging* logging = service.telemetry().logging;
      if (logging == nullptr) return Send(Error(501, "log settings are not available"));
      if (verb == http::verb::post) {
        if (auto status = logging->UpdateSettings(request.body()); !status.ok()) return Send(Error(status));
      } else if (verb != http::verb::get) {
        return method_not_allowed();
      }
      return Send(Ok(logging->SettingsJson()));
    }
    if (parts[1] == "admin" && parts.size() == 4 && parts[2] == "profile" && parts[3] == "cpu") {
      if (verb != http::verb::get && verb != http::verb::post) return method_not_allowed();
      return ProfileCpu(target);
    }
    if (parts[1] == "admin" && parts.size() == 4 && parts[2] == "profile" && parts[3] == "heap") {
      if (verb != http::verb::get) return method_not_allowed();
      return ProfileHeap();
    }
    if (parts[1] == "repository" && parts.size() == 3 && parts[2] == "index") {
      if (verb != http::verb::post) return method_not_allowed();
      return RepositoryIndex();
    }
    // Model repository extension: POST /v2/repository/models/{m}/load|unload.
    if (parts[1] == "repository" && parts.size() == 5 && parts[2] == "models" &&
        (parts[4] == "load" || parts[4] == "unload")) {
      if (verb != http::verb::post) return method_not_allowed();
      return RepositoryControl(parts[3], parts[4] == "load");
    }
    if (parts[1] != "models") return Send(Error(404, StrCat("no such endpoint: ", target)));
    if (parts.size() == 3 && parts[2] == "stats") {
      if (verb != http::verb::get) return method_not_allowed();
      return Send(Stats("", ""));
    }
    if (parts.size() < 3) return Send(Error(404, StrCat("no such endpoint: ", target)));

    // /v2/models/{m}[/versions/{v}][/action]
    auto name = UrlDecode(parts[2]);
    if (!name) return Send(Error(400, StrCat("malformed model name in ", target)));
    std::string version;
    size_t next = 3;
    if (parts.size() >= 5 && parts[3] == "versions") {
      auto v = UrlDecode(parts[4]);
      if (!v) return Send(Error(400, StrCat("malformed model version in ", target)));
      version = *v;
      next = 5;
    }
    if (parts.size() > next + 1) return Send(Error(404, StrCat("no such endpoint: ", target)));
    const std::string_view action = parts.size() == next ? std::string_view() : parts[next];

    if (action.empty()) {
      if (verb != http::verb::get) return method_not_allowed();
      auto metadata = service.GetModelMetadata(*name, version);
      if (!metadata.ok()) return Send(Error(metadata.status()));
      return Send(Ok(ModelMetadataJson(*metadata)));
    }
    if (action == "ready") {
      if (verb != http::verb::get) return method_not_allowed();
      return Send(Bare(service.GetModel(*name, version).ok() ? 200 : 400));
    }
    if (action == "config") {
      if (verb != http::verb::get) return method_not_allowed();
      auto model = service.GetModel(*name, version);
      if (!model.ok()) return Send(Error(model.status()));
      return Send(Ok(repository::ModelConfigToJson((*model)->config)));
    }
    if (action == "stats") {
      if (verb != http::verb::get) return method_not_allowed();
      return Send(Stats(*name, version));
    }
    if (action == "infer") {
      if (verb != http::verb::post) return method_not_allowed();
      return Infer(std::move(*name), std::move(version));
    }
    Send(Error(404, StrCat("no such endpoint: ", target)));
  }

  // POST /v2/repository/index, body empty or {"ready": bool} (only READY
  // entries when true).
  void RepositoryIndex() {
    const std::string& body = parser_->get().body();
    bool ready_only = false;
    if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
      simdjson::dom::parser json;
      simdjson::dom::element doc;
      if (json.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        return Send(Error(400, "repository index body is not a JSON object"));
      }
      simdjson::dom::element ready;
      if (doc["ready"].get(ready) == simdjson::SUCCESS && ready.get(ready_only) != simdjson::SUCCESS) {
        return Send(Error(400, "repository index 'ready' must be a boolean"));
      }
    }
    Send(Ok(RepositoryIndexJson(options_.service->Index(), ready_only)));
  }

  // Load or unload a model. Body (optional): {"parameters": {"config": "<JSON
  // model config>"}} for a config override on load; "unload_dependents" is
  // accepted on unload (ortserve has no ensembles). The load runs on the model
  // manager's loader threads; the answer comes back on this connection's thread.
  void RepositoryControl(std::string_view encoded_name, bool load) {
    auto name = UrlDecode(encoded_name);
    if (!name) return Send(Error(400, StrCat("malformed model name '", encoded_name, "'")));
    const std::string& body = parser_->get().body();
    std::string config_json;
    if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
      simdjson::dom::parser json;
      simdjson::dom::element doc;
      if (json.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        return Send(Error(400, "repository load/unload body is not a JSON object"));
      }
      simdjson::dom::element parameters;
      if (doc["parameters"].get(parameters) == simdjson::SUCCESS) {
        simdjson::dom::object params;
        if (parameters.get(params) != simdjson::SUCCESS) {
          return Send(Error(400, "repository load/unload 'parameters' must be a JSON object"));
        }
        for (auto field : params) {
          const std::string_view key(field.key.data(), field.key.size());
          if (key == "config" && load) {
            std::string_view text;
            if (field.value.get(text) == simdjson::SUCCESS) {
              config_json.assign(text.data(), text.size());
            } else if (field.value.is_object()) {
              config_json = simdjson::minify(field.value);
            } else {
              return Send(Error(400, "load parameter 'config' must be a string holding the model config JSON"));
            }
          } else if (key.rfind("file:", 0) == 0) {
            return Send(Error(400, StrCat("load parameter '", key,
                                          "' (model file contents in the request) is not supported")));
          }
        }
      }
    }
    auto done = [self = shared_from_this()](absl::Status status) {
      net::post(self->socket_.get_executor(), [self, status = std::move(status)] {
        if (!status.ok()) return self->Send(Error(status));
        self->Send(Ok(""));
      });
    };
    if (load) {
      options_.service->LoadModel(std::move(*name), std::move(config_json), std::move(done));
    } else {
      options_.service->UnloadModel(std::move(*name), std::move(done));
    }
  }

  // The body is parsed here, on this connection's thread; the answer comes back
  // from the thread that finished the inference and is written from here.
  void PipelineRoute(std::string_view target) {
    cancellation_ = FreshCancellation();
    HandlePipelineRoute(*options_.service, options_.pipeline, target, parser_->get().body(), cancellation_,
                        [self = shared_from_this()](unsigned status, std::string body) mutable {
                          net::post(self->socket_.get_executor(), [self, status, body = std::move(body)]() mutable {
                            self->cancellation_.reset();
                            self->Send(Reply{status, kJson, std::move(body)});
                          });
                        });
    WatchForClose();
  }

  Reply Stats(const std::string& name, const std::string& version) {
    InferenceService& service = *options_.service;
    std::vector<ModelHandle> models;
    if (name.empty()) {
      for (const auto& entry : service.Index()) {
        if (entry.state != repository::ModelState::kReady) continue;
        if (auto model = service.GetModel(entry.name, entry.version); model.ok()) models.push_back(*model);
      }
    } else if (version.empty()) {
      // Every ready version of the model, as Triton does.
      for (const auto& entry : service.Index()) {
        if (entry.name != name || entry.state != repository::ModelState::kReady) continue;
        if (auto model = service.GetModel(entry.name, entry.version); model.ok()) models.push_back(*model);
      }
      if (models.empty()) {
        auto model = service.GetModel(name, version);
        if (!model.ok()) return Error(model.status());
      }
    } else {
      auto model = service.GetModel(name, version);
      if (!model.ok()) return Error(model.status());
      models.push_back(*model);
    }
    return Ok(ModelStatsJson(models));
  }

  // GET /v2/admin/profile/cpu?seconds=N[&hz=F]: a pprof CPU profile of the
  // whole server over the next N seconds (off unless --enable-profiling).
  // The rate is fixed at start-up (CPUPROFILE_FREQUENCY); an `hz` other than
  // it is refused. Recorded on a thread of its own: no I/O thread waits for it.
  void ProfileCpu(std::string_view target) {
    if (!options_.enable_profiling) {
      return Send(Error(403, "profiling is disabled; start ortserve with --enable-profiling"));
    }
    double seconds = 10;
    int hz = 0;  // The profiler's own rate.
    if (auto q = target.find('?'); q != std::string_view::npos) {
      for (auto param : SplitQuery(target.substr(q + 1))) {
        const auto eq = param.find('=');
        const std::string_view key = param.substr(0, eq);
        const std::string value(eq == std::string_view::npos ? "" : param.substr(eq + 1));
        char* end = nullptr;
        if (key == "seconds") {
          seconds = std::strtod(value.c_str(), &end);
        } else if (key == "hz") {
          hz = static_cast<int>(std::strtol(value.c_str(), &end, 10));
        } else {
          continue;
        }
        if (value.empty() || end != value.c_str() + value.size()) {
          return Send(Error(400, StrCat("profile parameter '", key, "' has bad value '", value, "'")));
        }
      }
    }
    std::thread([self = shared_from_this(), seconds, hz] {
      auto profile = observability::CpuProfiler::Capture(absl::Seconds(seconds), hz);
      net::post(self->socket_.get_executor(), [self, profile = std::move(profile)]() mutable {
        if (!profile.ok()) return self->Send(Error(profile.status()));
        self->Send(Reply{200, "application/octet-stream", *std::move(profile)});
      });
    }).detach();
  }

  // GET /v2/admin/profile/heap: tcmalloc's sample of the live heap in pprof's
  // heap format (off unless --enable-profiling; 501 in a build without
  // tcmalloc). Quick (a walk of the sampled allocations), so answered inline.
  void ProfileHeap() {
    if (!options_.enable_profiling) {
      return Send(Error(403, "profiling is disabled; start ortserve with --enable-profiling"));
    }
    if (!observability::HeapProfiler::Available()) {
      return Send(Error(501, "heap profiles need tcmalloc: this ortserve was built with ORTSERVE_TCMALLOC=OFF"));
    }
    auto profile = observability::HeapProfiler::Capture();
    if (!profile.ok()) return Send(Error(profile.status()));
    Send(Reply{200, "text/plain", *std::move(profile)});
  }

  // A request that failed before reaching the service still counts against
  // its model when the model exists (an error path: the lookup's lock is fine).
  void ResolveModelForRecord(const std::string& name, const std::string& version) {
    if (auto model = options_.service->GetModel(name, version); model.ok()) record_->SetModel((*model)->metrics);
  }

  void Infer(std::string name, std::string version) {
    record_->MarkInference();
    auto& request = parser_->get();
    std::optional<size_t> header_length;
    auto header = request[ "Inference-Header-Content-Length"];
    if (!header.empty()) {
      size_t value = 0;
      auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), value);
      if (ec != std::errc() || end != header.data() + header.size()) {
        ResolveModelForRecord(name, version);
        return Send(Error(400, StrCat("Inference-Header-Content-Length '",
                                      std::string_view(header.data(), header.size()),
                                      "' is not a non-negative integer")));
      }
      header_length = value;
    }
    // The body becomes the request's payload: binary tensors are views into
    // it. It stays in body_ for the next request unless someone still holds it.
    if (body_.use_count() != 1) body_ = std::make_shared<std::string>();
    body_->swap(request.body());
    const std::shared_ptr<std::string>& body = body_;
    const absl::Time now = absl::Now();
    absl::StatusOr<InferRequest> decoded;
    if (header_length == 0) {
      auto model = options_.service->GetModel(name, version);
      if (!model.ok()) return Send(Error(model.status()));
      decoded = DecodeRawRequestFor(**model, body);
    } else {
      decoded = DecodeInferRequest(body->data(), body->size(), body->capacity(), header_length, body, now);
    }
    if (!decoded.ok()) {
      ResolveModelForRecord(name, version);
      return Send(Error(decoded.status()));
    }
    auto infer = std::make_unique<InferRequest>(*std::move(decoded));
    infer->model_name = std::move(name);
    infer->model_version = std::move(version);
    infer->arrival = now;
    infer->cancellation = cancellation_ = FreshCancellation();
    // Routing reads X-Model-Version and the sticky key from the headers,
    // which live in the parser until the next request is read.
    headers_.request = &request;
    infer->headers = &headers_;
    // Encoding needs the request's output choices after the scheduler has
    // consumed the request.
    encode_request_.outputs = infer->outputs;
    encode_request_.binary_data_output = infer->binary_data_output;
    options_.service->Infer(std::move(infer), [self = shared_from_this()](
                                                  absl::StatusOr<InferResponse> result) mutable {
      // Back onto this connection's thread to encode and write.
      net::post(self->socket_.get_executor(), [self, result = std::move(result)]() mutable {
        self->OnInferDone(std::move(result));
      });
    }, &*record_);
    WatchForClose();
  }

  absl::StatusOr<InferRequest> DecodeRawRequestFor(const repository::ModelVersion& model,
                                                   const std::shared_ptr<std::string>& body) {
    if (model.config.input_size() != 1) {
      return absl::InvalidArgumentError(StrCat(
          "Inference-Header-Content-Length: 0 sends the body as the only input, but model '", model.name,
          "' has ", model.config.input_size(), " inputs"));
    }
    const auto& input = model.config.input(0);
    const DataType type = *DataTypeFromConfigName(config::DataType_Name(input.data_type()));
    RawInputSpec spec;
    spec.name = input.name();
    spec.type = type;
    const Shape shape = repository::ServedShape(model.config, input.dims());
    spec.shape.assign(shape.begin(), shape.end());
    return DecodeRawInferRequest(body->data(), body->size(), spec, body, absl::Now());
  }

  void OnInferDone(absl::StatusOr<InferResponse> result) {
    cancellation_.reset();
    if (!result.ok()) return Send(Error(result.status()));
    response_ = std::move(result).value();
    // Labels matter only to the classification extension; skip the model
    // lookup (and the manager's lock) on the common path.
    const bool classify = std::any_of(encode_request_.outputs.begin(), encode_request_.outputs.end(),
                                      [](const RequestedOutput& o) { return o.classification > 0; });
    ModelHandle model;
    if (classify) {
      if (auto found = options_.service->GetModel(response_->model_name, response_->model_version); found.ok()) {
        model = *std::move(found);
      }
    }
    EncodeOptions encode_options;
    if (model != nullptr && !model->labels.empty()) {
      encode_options.labels = [labels = &model->labels](std::string_view output) {
        auto it = labels->find(std::string(output));
        return it == labels->end() ? std::span<const std::string>() : std::span<const std::string>(it->second);
      };
    }
    if (auto status = EncodeInferResponse(*response_, encode_request_, encode_options, &encoded_); !status.ok()) {
      return Send(Error(status));
    }
    // The reply takes the encoded JSON by swapping buffers with it, so both
    // keep their capacity for the connection's next response.
    reply_.status = 200;
    reply_.content_type = encoded_.has_binary() ? "application/octet-stream" : kJson;
    reply_.headers.clear();
    reply_.body.swap(encoded_.json);
    reply_.inference_header_length = encoded_.has_binary() ? reply_.body.size() : Reply::kNoHeaderLength;
    SendReply(encoded_.binary, encoded_.binary_size);
  }

  // A cancellation flag for the next request: the last one's when nothing
  // else holds it (and it was never raised), else a new one.
  std::shared_ptr<CancellationFlag> FreshCancellation() {
    if (spare_cancellation_.use_count() != 1 || spare_cancellation_->cancelled()) {
      spare_cancellation_ = std::make_shared<CancellationFlag>();
    }
    return spare_cancellation_;
  }

  void Send(Reply reply) {
    reply_ = std::move(reply);
    SendReply({}, 0);
  }

  // Writes reply_, then `extra` (binary sections, `extra_size` bytes in all).
  void SendReply(std::span<const std::span<const std::byte>> extra, size_t extra_size) {
    head_.clear();
    head_.append("HTTP/1.1 ");
    AppendNumber(reply_.status);
    head_.push_back(' ');
    const auto reason = http::obsolete_reason(static_cast<http::status>(reply_.status));
    head_.append(reason.data(), reason.size());
    head_.append("\r\nServer: ortserve\r\nContent-Type: ");
    head_.append(reply_.content_type);
    head_.append("\r\nContent-Length: ");
    AppendNumber(reply_.body.size() + extra_size);
    if (reply_.inference_header_length != Reply::kNoHeaderLength) {
      head_.append("\r\nInference-Header-Content-Length: ");
      AppendNumber(reply_.inference_header_length);
    }
    for (const auto& [key, value] : reply_.headers) {
      head_.append("\r\n").append(key).append(": ").append(value);
    }
    if (record_ && record_->inference()) {
      // W3C trace context: the caller learns this request's span.
      if (std::string traceparent = record_->ResponseTraceparent(); !traceparent.empty()) {
        head_.append("\r\ntraceparent: ").append(traceparent);
      }
    }
    head_.append(keep_alive_ ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    buffers_.clear();
    buffers_.emplace_back(head_.data(), head_.size());
    if (!reply_.body.empty()) buffers_.emplace_back(reply_.body.data(), reply_.body.size());
    for (const auto& b : extra) buffers_.emplace_back(b.data(), b.size());
    StopWatchingForClose();
    ArmDeadline();
    net::async_write(socket_, buffers_, [self = shared_from_this()](beast::error_code ec, size_t written) {
      self->FinishRecord(written);
      self->response_.reset();
      self->encoded_.binary.clear();  // Views into the response just released.
      self->encoded_.owned.clear();
      self->TrimRetained();
      if (ec || !self->keep_alive_) return self->Close();
      self->ReadHeader();
    });
  }

  void TrimRetained() {
    if (reply_.body.capacity() > kRetainedBytes) std::string().swap(reply_.body);
    if (encoded_.json.capacity() > kRetainedBytes) std::string().swap(encoded_.json);
    if (body_ && body_->capacity() > kRetainedBytes) body_.reset();
  }

  void AppendNumber(size_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
    head_.append(digits, end);
  }

  // The request is answered (or its client is gone): metrics, span, access log.
  void FinishRecord(size_t written) {
    if (!record_) return;
    auto& request = parser_->get();
    const auto method = request.method_string();
    const auto target = request.target();
    const size_t body_bytes = written > head_.size() ? written - head_.size() : 0;
    record_->Finish({std::string_view(method.data(), method.size()), std::string_view(target.data(), target.size()),
                     reply_.status},
                    observability::OutcomeForHttpStatus(reply_.status), body_bytes,
                    reply_.status >= 400 ? std::string_view(reply_.body) : std::string_view());
    record_.reset();
    active_.fetch_sub(1, std::memory_order_acq_rel);
  }

  void Close() {
    if (cancellation_) cancellation_->Cancel();
    deadline_ = Clock::time_point::max();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
  }

  // While a request waits for its answer nothing is read, so a client that
  // hangs up would go unnoticed until the write. Watching the socket instead
  // cancels the request (it is dropped before it runs, see the scheduler).
  // Readable with data means the client pipelined its next request: that
  // stays in the socket for the next read.
  void WatchForClose() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this(), watch = ++watch_](beast::error_code ec) {
                         // Answered first (the wait was cancelled), or a wait of an earlier request.
                         if (ec || watch != self->watch_) return;
                         char byte;
                         const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                         if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                           if (self->cancellation_) self->cancellation_->Cancel();
                           self->keep_alive_ = false;
                         }
                       });
  }

  // Before a write: no read or write is pending then, only a watch (if any).
  void StopWatchingForClose() {
    ++watch_;
    beast::error_code ignored;
    socket_.cancel(ignored);
  }

  tcp::socket socket_;
  Clock::time_point deadline_ = Clock::time_point::max();
  uint32_t watch_ = 0;  // Which WatchForClose is current; bumped to retire it.
  const HttpServer::Options& options_;
  beast::flat_buffer buffer_;
  // Room for typical headers; more (up to the 64 KiB limit) comes from the heap.
  alignas(std::max_align_t) std::byte fields_memory_[4096];
  std::pmr::monotonic_buffer_resource fields_arena_{fields_memory_, sizeof(fields_memory_)};
  std::optional<RequestParser> parser_;  // Declared after its arena: destroyed first.
  // The current request's headers, as routing sees them.
  struct Headers final : RequestHeaders {
    std::optional<std::string_view> Get(std::string_view name) const override {
      if (request == nullptr) return std::nullopt;
      auto it = request->find(beast::string_view(name.data(), name.size()));
      if (it == request->end()) return std::nullopt;
      return std::string_view(it->value().data(), it->value().size());
    }
    const Request* request = nullptr;
  } headers_;
  bool keep_alive_ = true;
  Reply reply_;
  std::string head_;
  std::vector<net::const_buffer> buffers_;
  InferRequest encode_request_;             // The output choices of the request in flight.
  std::optional<InferResponse> response_;  // Alive while its binary outputs are written.
  EncodedResponse encoded_;
  std::shared_ptr<CancellationFlag> cancellation_;  // The request in flight's.
  std::shared_ptr<CancellationFlag> spare_cancellation_;
  std::shared_ptr<std::string> body_;  // The last request's body buffer, reused.
  std::atomic<int64_t>& active_;  // The server's count of requests being answered.
  std::optional<observability::RequestRecord> record_;  // The request being answered.
};

}  // namespace

// One event loop per I/O thread. A connection is bound to one loop when it is
// accepted (round robin), so its handlers never cross threads and the loops
// never wake each other: a shared loop run by several threads hands every
// event to an idle thread, a context switch per step on a busy core.
struct HttpServer::Impl {
  struct Loop {
    net::io_context ioc{1};  // One thread: Asio skips waking other threads.
    net::steady_timer sweep{ioc};  // Always armed: it also keeps the loop running until Stop.
    std::vector<std::weak_ptr<Connection>> connections;  // Only touched on this loop's thread.
    std::thread thread;
  };

  Options options;
  std::vector<std::unique_ptr<Loop>> loops;
  std::unique_ptr<tcp::acceptor> acceptor;  // On loops[0].
  size_t next_loop = 0;                     // Only touched on loops[0]'s thread.
  static constexpr std::chrono::milliseconds kAcceptRetry{50};
  std::optional<net::steady_timer> accept_retry;  // On loops[0].
  bool accept_paused = false;                     // Only touched on loops[0]'s thread.
  std::atomic<bool> stopped{false};
  std::atomic<int64_t> active{0};  // Requests read and not yet answered.

  explicit Impl(Options o) : options(std::move(o)) {
    for (int i = 0; i < options.threads; ++i) loops.push_back(std::make_unique<Loop>());
    acceptor = std::make_unique<tcp::acceptor>(loops[0]->ioc);
    accept_retry.emplace(loops[0]->ioc);
  }

  void Accept() {
    Loop& loop = *loops[next_loop];
    next_loop = (next_loop + 1) % loops.size();
    acceptor->async_accept(loop.ioc, [this, &loop](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        if (OutOfResources(ec)) return PauseAccepting(ec);
      } else {
        accept_paused = false;
        socket.set_option(tcp::no_delay(true), ec);
        auto connection = std::make_shared<Connection>(std::move(socket), options, active);
        net::post(loop.ioc, [&loop, connection] {
          loop.connections.push_back(connection);
          connection->Start();
        });
      }
      Accept();
    });
  }

  // Out of descriptors (or kernel memory), accept fails at once for as long
  // as a connection waits in the backlog: retrying at once is a busy loop on
  // loops[0]. Wait a little instead; connections keep waiting in the backlog
  // (the kernel's, not ours) and are accepted once descriptors free up.
  static bool OutOfResources(const beast::error_code& ec) {
    return ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
           ec == net::error::no_memory || ec.value() == ENFILE;
  }
  void PauseAccepting(const beast::error_code& ec) {
    if (!accept_paused) {
      spdlog::warn("HTTP: cannot accept connections ({}); retrying every {} ms until resources free up",
                   ec.message(), kAcceptRetry.count());
      accept_paused = true;
    }
    accept_retry->expires_after(kAcceptRetry);
    accept_retry->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor->is_open()) Accept();
    });
  }

  // Closes connections whose read or write outlived the idle timeout, and
  // forgets closed ones. Runs every quarter timeout (at most every second).
  void Sweep(Loop& loop) {
    const auto period = std::clamp<std::chrono::nanoseconds>(
        std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options.idle_timeout / 4)), std::chrono::milliseconds(10),
        std::chrono::seconds(1));
    loop.sweep.expires_after(period);
    loop.sweep.async_wait([this, &loop](beast::error_code ec) {
      if (ec) return;
      const auto now = Connection::Clock::now();
      std::erase_if(loop.connections, [now](const std::weak_ptr<Connection>& weak) {
        auto connection = weak.lock();
        if (!connection) return true;
        connection->CloseIfExpired(now);
        return false;
      });
      Sweep(loop);
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options) {
  if (options.service == nullptr) return absl::InvalidArgumentError("HttpServer needs a service");
  if (options.threads < 1) options.threads = 1;
  auto impl = std::make_unique<Impl>(std::move(options));
  beast::error_code ec;
  auto address = net::ip::make_address(impl->options.address, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad HTTP address '", impl->options.address, "': ", ec.message()));
  tcp::endpoint endpoint(address, impl->options.port);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("cannot listen for HTTP on ", impl->options.address, ":",
                                         impl->options.port, ": ", ec.message()));
  }
  impl->Accept();
  for (auto& loop : impl->loops) {
    impl->Sweep(*loop);
    loop->thread = std::thread([ioc = &loop->ioc] { ioc->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  net::post(impl_->loops[0]->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
  });
  for (auto& loop : impl_->loops) loop->ioc.stop();
  for (auto& loop : impl_->loops) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

void HttpServer::StopAccepting() {
  if (!impl_ || impl_->stopped.load()) return;
  std::promise<void> closed;
  net::post(impl_->loops[0]->ioc, [impl = impl_.get(), &closed] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
}

size_t HttpServer::ActiveRequests() const {
  const int64_t n = impl_ ? impl_->active.load(std::memory_order_acquire) : 0;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

uint16_t HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

unsigned HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace ortserve::frontend
