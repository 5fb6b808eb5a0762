// SPDX-License-Identifier: Apache-2.0
// TF Serving's REST API: POST /v1/models/M[/versions/V]:predict with the
// columnar ("inputs") request format, GET /v1/models/M[/versions/V] for the
// version status. Tensors travel as nested JSON arrays. Connections are kept
// alive in a pool; each call runs on the calling thread with a deadline on
// every socket operation (a slow remote is cut, never waited on forever).
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/asio/ssl/host_name_verification.hpp"
#include "boost/beast/ssl.hpp"
#include "backend/remote/transport.h"
#include "client/client.h"
#include "client/tls_context.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "observability/tracing.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace ortserve::backend::remote {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// The largest response body accepted from the remote.
constexpr uint64_t kMaxResponseBytes = uint64_t{256} << 20;
// Nesting deeper than this is not a tensor a model takes.
constexpr int kMaxRank = 16;

struct Reply {
  unsigned status = 0;
  std::string body;
};

// A blocking HTTP/1.1 client with a pool of keep-alive connections, each
// with its own io_context (a call drives only its own socket).
// The W3C traceparent for a call in `trace`; empty when it is in none.
std::string Traceparent(const RequestTrace& trace) {
  if (!trace.sampled()) return {};
  observability::TraceContext context;
  context.trace_id = trace.trace_id;
  context.span_id = trace.span_id;
  context.sampled = true;
  return observability::FormatTraceparent(context);
}

class HttpPool {
 public:
  // `tls` null: plain HTTP. `server_name`: the name the certificate must
  // carry (and SNI); empty: `host`.
  HttpPool(std::string host, uint16_t port, std::unique_ptr<asio::ssl::context> tls, std::string server_name)
      : host_(std::move(host)),
        port_(port),
        tls_(std::move(tls)),
        server_name_(server_name.empty() ? host_ : std::move(server_name)) {}

  // A non-empty `traceparent` goes out as the W3C header.
  absl::StatusOr<Reply> Request(http::verb verb, const std::string& target, std::string body, absl::Time deadline,
                                const std::string& traceparent = {}) {
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, StrCat(host_, ":", port_));
    request.set(http::field::user_agent, "ortserve-remote");
    if (!traceparent.empty()) request.set("traceparent", traceparent);
    request.keep_alive(true);
    if (verb == http::verb::post) {
      request.set(http::field::content_type, "application/json");
      request.body() = std::move(body);
    }
    request.prepare_payload();
    std::unique_ptr<Conn> conn = TakeIdle();
    const bool reused = conn != nullptr;
    if (!reused) conn = std::make_unique<Conn>(tls_.get());
    bool got_bytes = false;
    absl::StatusOr<Reply> reply = Exchange(*conn, request, deadline, !reused, &got_bytes);
    // A pooled connection the remote closed while idle fails before any
    // answer: the request never reached it, so one fresh connection may retry.
    if (!reply.ok() && reused && !got_bytes && absl::IsUnavailable(reply.status())) {
      conn = std::make_unique<Conn>(tls_.get());
      reply = Exchange(*conn, request, deadline, true, &got_bytes);
    }
    if (reply.ok() && conn->keep_alive) {
      absl::MutexLock lock(&mu_);
      idle_.push_back(std::move(conn));
    }
    return reply;
  }

 private:
  // One connection, plain or TLS.
  struct Conn {
    explicit Conn(asio::ssl::context* tls) {
      if (tls != nullptr) {
        secure.emplace(ioc, *tls);
      } else {
        plain.emplace(ioc);
      }
    }
    beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
    // Starts `op(stream, handler)` on whichever stream this is.
    template <typename Op, typename Handler>
    void On(Op op, Handler handler) {
      if (secure) {
        op(*secure, std::move(handler));
      } else {
        op(*plain, std::move(handler));
      }
    }
    asio::io_context ioc;
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    bool keep_alive = false;
  };

  std::unique_ptr<Conn> TakeIdle() {
    absl::MutexLock lock(&mu_);
    if (idle_.empty()) return nullptr;
    std::unique_ptr<Conn> conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  // Runs one asynchronous operation on `conn`'s io_context to its end (the
  // stream's expiry bounds it).
  template <typename Start>
  static beast::error_code Run(Conn& conn, Start start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    conn.ioc.restart();
    conn.ioc.run();
    return result;
  }

  absl::StatusOr<Reply> Exchange(Conn& conn, http::request<http::string_body>& request, absl::Time deadline,
                                 bool connect, bool* got_bytes) {
    auto fail = [&](beast::error_code ec, std::string_view during) -> absl::Status {
      conn.keep_alive = false;
      const std::string where = StrCat(during, " ", host_, ":", port_);
      if (ec == beast::error::timeout) return absl::DeadlineExceededError(StrCat("timed out ", where));
      return absl::UnavailableError(StrCat("HTTP error ", where, ": ", ec.message()));
    };
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError(StrCat("timed out before calling ", host_, ":", port_));
    conn.tcp().expires_after(absl::ToChronoNanoseconds(left));
    if (connect) {
      tcp::resolver resolver(conn.ioc);
      beast::error_code ec;
      auto results = resolver.resolve(host_, std::to_string(port_), ec);
      if (ec) return fail(ec, "resolving");
      ec = Run(conn, [&](auto handler) { conn.tcp().async_connect(results, [handler](beast::error_code e, const tcp::endpoint&) mutable { handler(e); }); });
      if (ec) return fail(ec, "connecting to");
      if (conn.secure) {
        // SNI for a name (not an address), and the certificate checked against it.
        beast::error_code not_literal;
        asio::ip::make_address(server_name_, not_literal);
        if (not_literal) SSL_set_tlsext_host_name(conn.secure->native_handle(), server_name_.c_str());
        conn.secure->set_verify_callback(asio::ssl::host_name_verification(server_name_));
        ec = Run(conn, [&](auto handler) { conn.secure->async_handshake(asio::ssl::stream_base::client, handler); });
        if (ec) return fail(ec, "TLS handshake with");
      }
    }
    beast::error_code ec = Run(conn, [&](auto handler) {
      conn.On([&](auto& stream, auto h) { http::async_write(stream, request, std::move(h)); }, handler);
    });
    if (ec) return fail(ec, "sending to");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    ec = Run(conn, [&](auto handler) {
      conn.On([&](auto& stream, auto h) { http::async_read(stream, buffer, parser, std::move(h)); }, handler);
    });
    *got_bytes = parser.got_some();
    if (ec) return fail(ec, "reading from");
    conn.keep_alive = parser.get().keep_alive();
    conn.tcp().expires_never();
    Reply reply;
    reply.status = parser.get().result_int();
    reply.body = std::move(parser.get().body());
    return reply;
  }

  const std::string host_;
  const uint16_t port_;
  const std::unique_ptr<asio::ssl::context> tls_;  // Outlives the connections (declared before idle_).
  const std::string server_name_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_ ABSL_GUARDED_BY(mu_);
};

// Writes `count` elements of `tensor` starting at `*index` as the nested
// arrays its shape describes.
void WriteNested(rapidjson::Writer<rapidjson::StringBuffer>& w, const Tensor& t, size_t dim, size_t* index) {
  if (dim == t.shape.size()) {
    const size_t i = (*index)++;
    const std::byte* p = t.data.data() + i * DataTypeSize(t.type);
    auto load = [p]<typename T>(T) {
      T v;
      std::memcpy(&v, p, sizeof v);
      return v;
    };
    switch (t.type) {
      case DataType::kBool: w.Bool(load(uint8_t{}) != 0); break;
      case DataType::kUint8: w.Uint(load(uint8_t{})); break;
      case DataType::kUint16: w.Uint(load(uint16_t{})); break;
      case DataType::kUint32: w.Uint(load(uint32_t{})); break;
      case DataType::kUint64: w.Uint64(load(uint64_t{})); break;
      case DataType::kInt8: w.Int(load(int8_t{})); break;
      case DataType::kInt16: w.Int(load(int16_t{})); break;
      case DataType::kInt32: w.Int(load(int32_t{})); break;
      case DataType::kInt64: w.Int64(load(int64_t{})); break;
      case DataType::kFp32: {
        const float v = load(float{});
        if (std::isfinite(v)) w.Double(v); else w.Null();
        break;
      }
      case DataType::kFp64: {
        const double v = load(double{});
        if (std::isfinite(v)) w.Double(v); else w.Null();
        break;
      }
      default: w.Null(); break;
    }
    return;
  }
  w.StartArray();
  for (int64_t k = 0; k < t.shape[dim]; ++k) WriteNested(w, t, dim + 1, index);
  w.EndArray();
}

bool Supported(DataType type) {
  switch (type) {
    case DataType::kBool: case DataType::kUint8: case DataType::kUint16: case DataType::kUint32:
    case DataType::kUint64: case DataType::kInt8: case DataType::kInt16: case DataType::kInt32:
    case DataType::kInt64: case DataType::kFp32: case DataType::kFp64:
      return true;
    default:
      return false;
  }
}

// Appends one JSON scalar as `type` to `out`; false when it is not one.
bool AppendScalar(const rapidjson::Value& v, DataType type, std::vector<std::byte>* out) {
  auto put = [out]<typename T>(T x) {
    const size_t at = out->size();
    out->resize(at + sizeof x);
    std::memcpy(out->data() + at, &x, sizeof x);
    return true;
  };
  switch (type) {
    case DataType::kBool:
      if (v.IsBool()) return put(uint8_t{v.GetBool()});
      if (v.IsInt()) return put(uint8_t{v.GetInt() != 0});
      return false;
    case DataType::kFp32:
      if (v.IsNumber()) return put(static_cast<float>(v.GetDouble()));
      if (v.IsNull()) return put(std::numeric_limits<float>::quiet_NaN());
      return false;
    case DataType::kFp64:
      if (v.IsNumber()) return put(v.GetDouble());
      if (v.IsNull()) return put(std::numeric_limits<double>::quiet_NaN());
      return false;
    case DataType::kInt64:
      return v.IsInt64() && put(v.GetInt64());
    case DataType::kUint64:
      return v.IsUint64() && put(v.GetUint64());
    default: {
      if (!v.IsInt64()) return false;
      const int64_t x = v.GetInt64();
      auto fits = [x]<typename T>(T) { return x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max(); };
      switch (type) {
        case DataType::kUint8: return fits(uint8_t{}) && put(static_cast<uint8_t>(x));
        case DataType::kUint16: return fits(uint16_t{}) && put(static_cast<uint16_t>(x));
        case DataType::kUint32: return fits(uint32_t{}) && put(static_cast<uint32_t>(x));
        case DataType::kInt8: return fits(int8_t{}) && put(static_cast<int8_t>(x));
        case DataType::kInt16: return fits(int16_t{}) && put(static_cast<int16_t>(x));
        case DataType::kInt32: return fits(int32_t{}) && put(static_cast<int32_t>(x));
        default: return false;
      }
    }
  }
}

// A JSON value (nested arrays of scalars) as a tensor of `spec`'s type: its
// shape from the nesting (every array at one depth the same length).
absl::StatusOr<Tensor> ParseTensor(const rapidjson::Value& value, const TensorSpec& spec) {
  Shape shape;
  const rapidjson::Value* v = &value;
  while (v->IsArray()) {
    if (shape.size() >= kMaxRank) return absl::InternalError(StrCat("output '", spec.name, "' nests too deep"));
    shape.push_back(v->Size());
    if (v->Empty()) break;
    v = &(*v)[0];
  }
  ASSIGN_OR_RETURN(int64_t count, ElementCount(shape));
  std::vector<std::byte> bytes;
  bytes.reserve(static_cast<size_t>(count) * DataTypeSize(spec.type));
  // Walks the nesting depth-first, checking every array against `shape`.
  auto walk = [&](auto& self, const rapidjson::Value& node, size_t dim) -> bool {
    if (dim == shape.size()) return AppendScalar(node, spec.type, &bytes);
    if (!node.IsArray() || static_cast<int64_t>(node.Size()) != shape[dim]) return false;
    for (const auto& child : node.GetArray()) {
      if (!self(self, child, dim + 1)) return false;
    }
    return true;
  };
  if (!walk(walk, value, 0)) {
    return absl::InternalError(StrCat("the remote's output '", spec.name, "' is not a rectangular array of ",
                                      DataTypeName(spec.type), " values"));
  }
  Tensor tensor = MakeOwnedTensor(spec.name, spec.type, std::move(shape), std::move(bytes));
  return tensor;
}

class TfServingTransport final : public Transport {
 public:
  TfServingTransport(TransportOptions options, std::unique_ptr<asio::ssl::context> tls)
      : options_(std::move(options)),
        pool_(options_.host, options_.port, std::move(tls), options_.tls_server_name),
        model_path_(StrCat("/v1/models/", options_.model_name,
                           options_.model_version.empty() ? "" : StrCat("/versions/", options_.model_version))) {}

  absl::StatusOr<InferResponse> Infer(const InferRequest& request) override {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("inputs");
    w.StartObject();
    for (const Tensor& input : request.inputs) {
      if (!Supported(input.type)) {
        return absl::InvalidArgumentError(StrCat("input '", input.name, "': ", DataTypeName(input.type),
                                                 " tensors cannot be sent to TF Serving's REST API"));
      }
      w.Key(input.name.data(), static_cast<rapidjson::SizeType>(input.name.size()));
      size_t index = 0;
      WriteNested(w, input, 0, &index);
    }
    w.EndObject();
    w.EndObject();
    ASSIGN_OR_RETURN(Reply reply, pool_.Request(http::verb::post, StrCat(model_path_, ":predict"),
                                                std::string(buffer.GetString(), buffer.GetSize()), request.deadline,
                                                Traceparent(request.trace)));
    rapidjson::Document doc;
    doc.Parse(reply.body.data(), reply.body.size());
    if (reply.status != 200) {
      std::string message = StrCat("HTTP ", reply.status);
      if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) {
        message = doc["error"].GetString();
      }
      return absl::Status(client::StatusCodeForHttpStatus(reply.status), message);
    }
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("outputs")) {
      return absl::InternalError("the remote's predict response has no \"outputs\"");
    }
    const rapidjson::Value& outputs = doc["outputs"];
    InferResponse response;
    for (const RequestedOutput& wanted : request.outputs) {
      const TensorSpec* spec = options_.signature.FindOutput(wanted.name);
      if (spec == nullptr) return absl::InternalError(StrCat("output '", wanted.name, "' is not in the config"));
      const rapidjson::Value* value = nullptr;
      if (outputs.IsObject()) {
        auto it = outputs.FindMember(wanted.name.c_str());
        if (it != outputs.MemberEnd()) value = &it->value;
      } else if (options_.signature.outputs.size() == 1) {
        value = &outputs;  // A single-output signature answers the bare tensor.
      }
      if (value == nullptr) return absl::InternalError(StrCat("the remote's response lacks output '", wanted.name, "'"));
      ASSIGN_OR_RETURN(Tensor tensor, ParseTensor(*value, *spec));
      response.outputs.push_back(std::move(tensor));
    }
    return response;
  }

  absl::StatusOr<bool> Ready() override {
    ASSIGN_OR_RETURN(Reply reply, pool_.Request(http::verb::get, model_path_, {}, absl::Now() + options_.timeout));
    if (reply.status != 200) return false;
    rapidjson::Document doc;
    doc.Parse(reply.body.data(), reply.body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("model_version_status") ||
        !doc["model_version_status"].IsArray()) {
      return absl::InternalError("the remote's model status has no model_version_status list");
    }
    for (const auto& status : doc["model_version_status"].GetArray()) {
      if (status.IsObject() && status.HasMember("state") && status["state"].IsString() &&
          std::string_view(status["state"].GetString()) == "AVAILABLE") {
        return true;
      }
    }
    return false;
  }

  absl::StatusOr<ModelSignature> Metadata() override {
    return absl::UnimplementedError("TF Serving models take their inputs and outputs from the config");
  }

 private:
  const TransportOptions options_;
  HttpPool pool_;
  const std::string model_path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeTfServingTransport(TransportOptions options) {
  std::unique_ptr<asio::ssl::context> tls;
  if (options.tls) {
    ASSIGN_OR_RETURN(tls, client::MakeTlsClientContext(options.tls_ca_file, options.tls_cert_file,
                                                        options.tls_key_file));
  }
  for (const auto* list : {&options.signature.inputs, &options.signature.outputs}) {
    for (const TensorSpec& spec : *list) {
      if (!Supported(spec.type)) {
        return absl::InvalidArgumentError(StrCat("tensor '", spec.name, "': ", DataTypeName(spec.type),
                                                 " is not supported over TF Serving's REST API"));
      }
    }
  }
  return std::unique_ptr<Transport>(new TfServingTransport(std::move(options), std::move(tls)));
}

}  // namespace ortserve::backend::remote
