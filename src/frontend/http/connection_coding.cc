// SPDX-License-Identifier: Apache-2.0
// Connection: Content-Encoding of request bodies and Accept-Encoding of
// responses (gzip, deflate; compression.h).
#include "absl/container/inlined_vector.h"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace http = boost::beast::http;

bool Connection::DecodeContentEncoding() {
  Request& request = parser_->get();
  const auto header = request[http::field::content_encoding];
  if (header.empty()) return true;
  auto coding = ParseContentEncoding(std::string_view(header.data(), header.size()));
  if (!coding.ok()) {
    Send(Error(415, std::string(ToStd(coding.status().message()))));
    return false;
  }
  if (*coding == ContentCoding::kIdentity || request.body().empty()) return true;
  // The decoded body is bounded as a plain one is (--http-max-input-size),
  // with the padding the JSON decoder reads past the end.
  std::string decoded;
  if (absl::Status status = Decompress(*coding, request.body(), options_.max_body_bytes,
                                       simdjson::SIMDJSON_PADDING, &decoded);
      !status.ok()) {
    if (status.code() == absl::StatusCode::kOutOfRange) keep_alive_ = false;
    Send(Error(status.code() == absl::StatusCode::kOutOfRange ? 413 : HttpStatusFor(status.code()),
               std::string(ToStd(status.message()))));
    return false;
  }
  request_bytes_ = decoded.size();
  request.body().swap(decoded);
  return true;
}

ContentCoding Connection::ResponseCoding() const {
  if (!parser_) return ContentCoding::kIdentity;
  const auto accept = parser_->get()[http::field::accept_encoding];
  if (accept.empty()) return ContentCoding::kIdentity;
  return NegotiateContentCoding(std::string_view(accept.data(), accept.size()));
}

bool Connection::CompressReply(ContentCoding coding, std::span<const std::span<const std::byte>> extra) {
  absl::InlinedVector<std::string_view, 8> parts;
  parts.emplace_back(reply_.body);
  for (const auto& section : extra) {
    parts.emplace_back(reinterpret_cast<const char*>(section.data()), section.size());
  }
  return Compress(coding, parts, &compressed_).ok();
}

}  // namespace ortserve::frontend
