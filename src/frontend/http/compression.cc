// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/compression.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>

#include "core/strings.h"

namespace ortserve::frontend {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// zlib's windowBits: gzip wrapper, zlib wrapper, or a raw stream.
constexpr int kGzipWindow = 15 + 16;
constexpr int kZlibWindow = 15;
constexpr int kRawWindow = -15;

// One inflate pass with `window_bits`. kDataError: not this format.
enum class Inflated { kOk, kDataError, kTooLarge, kTruncated, kTrailing, kNoMemory };
Inflated InflateWith(int window_bits, std::string_view in, size_t limit, size_t padding, std::string* out) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) return Inflated::kNoMemory;
  // A first guess at the size (bounded by the limit), grown as needed.
  std::string first;
  first.reserve(std::min(limit, std::max<size_t>(in.size() * 4, 4096)));
  first.resize(std::min(first.capacity(), limit));
  out->swap(first);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  size_t in_left = in.size();
  size_t produced = 0;
  Inflated result = Inflated::kOk;
  int rc = Z_OK;
  while (true) {
    if (stream.avail_in == 0 && in_left > 0) {
      const size_t chunk = std::min<size_t>(in_left, UINT_MAX);
      stream.avail_in = static_cast<uInt>(chunk);
      in_left -= chunk;
    }
    if (produced == out->size()) {
      if (produced >= limit) {
        // Full at the limit: one more byte would be too many. Ask for it.
        char probe;
        stream.next_out = reinterpret_cast<Bytef*>(&probe);
        stream.avail_out = 1;
        rc = inflate(&stream, Z_NO_FLUSH);
        if (stream.avail_out == 0) result = Inflated::kTooLarge;
        break;
      }
      // A new buffer of exactly the next size (a string's own growth could
      // overshoot the limit by up to twice).
      std::string bigger;
      bigger.reserve(std::min(limit, std::max(produced * 2, produced + 4096)));
      bigger.assign(*out);
      bigger.resize(bigger.capacity() < limit ? bigger.capacity() : limit);
      out->swap(bigger);
    }
    const size_t room = std::min<size_t>(out->size() - produced, UINT_MAX);
    stream.next_out = reinterpret_cast<Bytef*>(out->data() + produced);
    stream.avail_out = static_cast<uInt>(room);
    rc = inflate(&stream, Z_NO_FLUSH);
    produced += room - stream.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && stream.avail_in == 0 && in_left == 0) {
      result = Inflated::kTruncated;
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      result = rc == Z_MEM_ERROR ? Inflated::kNoMemory : Inflated::kDataError;
      break;
    }
  }
  if (result == Inflated::kOk && rc != Z_STREAM_END) result = Inflated::kTruncated;
  if (result == Inflated::kOk && (stream.avail_in > 0 || in_left > 0)) result = Inflated::kTrailing;
  inflateEnd(&stream);
  if (result != Inflated::kOk) return result;
  out->resize(produced);
  out->reserve(produced + padding);
  return Inflated::kOk;
}

}  // namespace

std::string_view ContentCodingName(ContentCoding coding) {
  switch (coding) {
    case ContentCoding::kGzip: return "gzip";
    case ContentCoding::kDeflate: return "deflate";
    case ContentCoding::kIdentity: break;
  }
  return "identity";
}

absl::StatusOr<ContentCoding> ParseContentEncoding(std::string_view value) {
  const std::string_view coding = Trim(value);
  if (coding.empty() || EqualsIgnoreCase(coding, "identity")) return ContentCoding::kIdentity;
  if (EqualsIgnoreCase(coding, "gzip") || EqualsIgnoreCase(coding, "x-gzip")) return ContentCoding::kGzip;
  if (EqualsIgnoreCase(coding, "deflate")) return ContentCoding::kDeflate;
  return absl::UnimplementedError(
      StrCat("Content-Encoding '", value.substr(0, 64), "' is not supported: use gzip or deflate"));
}

absl::Status Decompress(ContentCoding coding, std::string_view compressed, size_t limit, size_t padding,
                        std::string* out) {
  if (coding == ContentCoding::kIdentity) {
    if (compressed.size() > limit) return absl::OutOfRangeError("body exceeds the limit");
    out->assign(compressed);
    out->reserve(compressed.size() + padding);
    return absl::OkStatus();
  }
  Inflated result = InflateWith(coding == ContentCoding::kGzip ? kGzipWindow : kZlibWindow, compressed, limit,
                                padding, out);
  // "deflate" as some clients send it: a raw stream without the zlib header.
  if (result == Inflated::kDataError && coding == ContentCoding::kDeflate) {
    result = InflateWith(kRawWindow, compressed, limit, padding, out);
  }
  const std::string_view name = ContentCodingName(coding);
  switch (result) {
    case Inflated::kOk: return absl::OkStatus();
    case Inflated::kTooLarge:
      out->clear();
      return absl::OutOfRangeError(
          StrCat("the ", name, "-decoded request body exceeds the limit of ", limit, " bytes (--http-max-input-size)"));
    case Inflated::kTruncated:
      out->clear();
      return absl::InvalidArgumentError(StrCat("the request body is cut short: its ", name, " data does not end"));
    case Inflated::kTrailing:
      out->clear();
      return absl::InvalidArgumentError(StrCat("the request body has bytes after the end of its ", name, " data"));
    case Inflated::kNoMemory: out->clear(); return absl::InternalError("out of memory decoding the request body");
    case Inflated::kDataError: break;
  }
  out->clear();
  return absl::InvalidArgumentError(StrCat("the request body is not valid ", name, " data (Content-Encoding: ", name,
                                           ")"));
}

ContentCoding NegotiateContentCoding(std::string_view accept_encoding) {
  double gzip = 0, deflate = 0, any = -1;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    double q = 1;
    const size_t semicolon = item.find(';');
    if (semicolon != std::string_view::npos) {
      std::string_view param = Trim(item.substr(semicolon + 1));
      item = item.substr(0, semicolon);
      if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
      const std::string text(param.substr(2, 8));
      char* end = nullptr;
      q = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || q < 0 || q > 1) continue;
    }
    item = Trim(item);
    if (EqualsIgnoreCase(item, "gzip") || EqualsIgnoreCase(item, "x-gzip")) {
      gzip = q;
    } else if (EqualsIgnoreCase(item, "deflate")) {
      deflate = q;
    } else if (item == "*") {
      any = q;
    }
  }
  if (any > 0 && gzip == 0) gzip = any;
  if (gzip > 0 && gzip >= deflate) return ContentCoding::kGzip;
  if (deflate > 0) return ContentCoding::kDeflate;
  return ContentCoding::kIdentity;
}

absl::Status Compress(ContentCoding coding, std::span<const std::string_view> parts, std::string* out) {
  out->clear();
  if (coding == ContentCoding::kIdentity) {
    for (std::string_view part : parts) out->append(part);
    return absl::OkStatus();
  }
  z_stream stream{};
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, coding == ContentCoding::kGzip ? kGzipWindow : kZlibWindow,
                   8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("cannot start compressing the response");
  }
  size_t total = 0;
  for (std::string_view part : parts) total += part.size();
  out->resize(deflateBound(&stream, static_cast<uLong>(std::min<size_t>(total, ULONG_MAX))) + 64);
  size_t produced = 0;
  // Runs deflate with `flush` until the input is consumed (and, finishing,
  // until the stream ends), growing `out` whenever it is full.
  auto run = [&](int flush) {
    while (true) {
      if (produced == out->size()) out->resize(out->size() * 2 + 4096);
      const size_t room = std::min<size_t>(out->size() - produced, UINT_MAX);
      stream.next_out = reinterpret_cast<Bytef*>(out->data() + produced);
      stream.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&stream, flush);
      produced += room - stream.avail_out;
      if (rc == Z_STREAM_ERROR) return false;
      if (flush == Z_FINISH ? rc == Z_STREAM_END : stream.avail_in == 0 && stream.avail_out != 0) return true;
    }
  };
  bool ok = true;
  for (std::string_view part : parts) {
    while (ok && !part.empty()) {
      const size_t chunk = std::min<size_t>(part.size(), UINT_MAX);
      stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
      stream.avail_in = static_cast<uInt>(chunk);
      ok = run(Z_NO_FLUSH);
      part.remove_prefix(chunk);
    }
  }
  stream.avail_in = 0;
  if (ok) ok = run(Z_FINISH);
  if (!ok) {
    deflateEnd(&stream);
    return absl::InternalError("compressing the response failed");
  }
  deflateEnd(&stream);
  out->resize(produced);
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
