// SPDX-License-Identifier: Apache-2.0
// HTTP content codings (RFC 9110 section 8.4) for request and response
// bodies: gzip and deflate through zlib. Pure functions: no sockets, so they
// are unit-testable and fuzzable.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ortserve::frontend {

enum class ContentCoding {
  kIdentity,  // No coding.
  kGzip,      // RFC 1952 (also "x-gzip").
  kDeflate,   // The zlib format (RFC 1950); a raw RFC 1951 stream is read too, as browsers send.
};

std::string_view ContentCodingName(ContentCoding coding);  // "identity", "gzip", "deflate".

// A request's Content-Encoding value ("gzip", "x-gzip", "deflate",
// "identity", any case, surrounding spaces ignored). Errors: Unimplemented
// for any other coding or a list of several ("Content-Encoding 'br' is not
// supported: use gzip or deflate"), which front ends answer with 415.
absl::StatusOr<ContentCoding> ParseContentEncoding(std::string_view value);

// Inflates `compressed` (coded with `coding`) into `out` (replacing its
// contents), keeping `padding` bytes of room past the end (simdjson reads a
// little past a body). Never holds more than `limit` decoded bytes: a small
// body that would expand past it is refused as soon as it does (a
// decompression bomb costs at most `limit`). Errors: OutOfRange when the
// decoded body exceeds `limit` (front ends answer 413); InvalidArgument for
// a body that is not valid `coding` data, is cut short, or has bytes after
// its end.
absl::Status Decompress(ContentCoding coding, std::string_view compressed, size_t limit, size_t padding,
                        std::string* out);

// The coding to answer with for an Accept-Encoding value: gzip or deflate
// when listed with a non-zero q-value (gzip preferred on a tie, "*" meaning
// gzip), else identity. Malformed entries are skipped.
ContentCoding NegotiateContentCoding(std::string_view accept_encoding);

// Compresses the concatenation of `parts` with `coding` (gzip or deflate;
// identity copies) into `out` (replacing its contents), at zlib's fastest
// level: responses are compressed on an I/O thread. Errors: Internal when
// zlib fails (out of memory).
absl::Status Compress(ContentCoding coding, std::span<const std::string_view> parts, std::string* out);

}  // namespace ortserve::frontend
