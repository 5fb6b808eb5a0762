// SPDX-License-Identifier: Apache-2.0
// An OTLP/HTTP collector stand-in for integration tests (a real socket on
// loopback that keeps every POSTed body), and a reader of the OTLP JSON
// spans it received.
#pragma once

#include <rapidjson/document.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ortserve::testing {

// An OTLP/HTTP collector stand-in: accepts POSTs on a loopback port and keeps
// their bodies.
class Collector {
 public:
  Collector() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~Collector() {
    stop_ = true;
    boost::system::error_code ignored;
    boost::asio::ip::tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Waits until `n` payloads arrived; returns them.
  std::vector<std::string> WaitForPayloads(size_t n, std::chrono::seconds limit = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, limit, [&] { return bodies_.size() >= n; });
    return bodies_;
  }
  std::vector<std::string> paths() {
    std::lock_guard lock(mu_);
    return paths_;
  }

 private:
  void Serve() {
    namespace http = boost::beast::http;
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) continue;
      boost::beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, ec);
        if (ec) break;
        {
          std::lock_guard lock(mu_);
          bodies_.push_back(request.body());
          paths_.emplace_back(request.target().data(), request.target().size());
          content_types_.emplace_back(request[http::field::content_type]);
        }
        cv_.notify_all();
        http::response<http::string_body> response{http::status::ok, 11};
        response.set(http::field::content_type, "application/json");
        response.body() = "{}";
        response.prepare_payload();
        http::write(socket, response, ec);
        if (ec) break;
      }
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_, paths_, content_types_;
};

inline const rapidjson::Value* Attribute(const rapidjson::Value& span, const char* key) {
  for (const auto& a : span["attributes"].GetArray()) {
    if (std::string_view(a["key"].GetString()) == key) return &a["value"];
  }
  return nullptr;
}

inline std::string StringAttribute(const rapidjson::Value& span, const char* key) {
  const rapidjson::Value* value = Attribute(span, key);
  return value != nullptr && value->HasMember("stringValue") ? (*value)["stringValue"].GetString() : "<absent>";
}

inline int64_t IntAttribute(const rapidjson::Value& span, const char* key) {
  const rapidjson::Value* value = Attribute(span, key);
  return value != nullptr && value->HasMember("intValue") ? std::stoll((*value)["intValue"].GetString()) : -1;
}

// Every span the collector received so far, across its payloads (the
// exporter batches spans as they come, so one request's spans may arrive in
// several posts).
class SpanSet {
 public:
  void Load(const std::vector<std::string>& payloads) {
    docs_.clear();
    spans_.clear();
    for (const auto& payload : payloads) {
      auto doc = std::make_unique<rapidjson::Document>();
      EXPECT_FALSE(doc->Parse(payload.c_str()).HasParseError()) << payload;
      if (doc->HasParseError()) continue;
      for (const auto& rs : (*doc)["resourceSpans"].GetArray()) {
        for (const auto& ss : rs["scopeSpans"].GetArray()) {
          for (const auto& span : ss["spans"].GetArray()) spans_.push_back(&span);
        }
      }
      docs_.push_back(std::move(doc));
    }
  }
  // The spans whose ai.operation is `operation` (and, when given, in `trace_id`).
  std::vector<const rapidjson::Value*> Operation(const std::string& operation, const std::string& trace_id = "") const {
    std::vector<const rapidjson::Value*> out;
    for (const auto* span : spans_) {
      if (StringAttribute(*span, "ai.operation") != operation) continue;
      if (!trace_id.empty() && (*span)["traceId"].GetString() != trace_id) continue;
      out.push_back(span);
    }
    return out;
  }
  const std::vector<const rapidjson::Value*>& all() const { return spans_; }

 private:
  std::vector<std::unique_ptr<rapidjson::Document>> docs_;
  std::vector<const rapidjson::Value*> spans_;
};

}  // namespace ortserve::testing
