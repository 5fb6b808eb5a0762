// SPDX-License-Identifier: Apache-2.0
// HTTP content codings: zlib round trips, the decoded-size bound, malformed
// and truncated data, and Accept-Encoding negotiation.
#include "frontend/http/compression.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

namespace ortserve::frontend {
namespace {

// Independent encoders: zlib's own one-shot API, and a raw deflate stream.
std::string ZlibCompress(const std::string& in) {
  uLongf size = compressBound(in.size());
  std::string out(size, '\0');
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(in.data()),
                     in.size()),
            Z_OK);
  out.resize(size);
  return out;
}

std::string StreamCompress(const std::string& in, int window_bits) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&s, in.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = in.size();
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = out.size();
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - s.avail_out);
  deflateEnd(&s);
  return out;
}

std::string Text(size_t n) {
  std::string out;
  for (size_t i = 0; out.size() < n; ++i) out += "{\"inputs\":[" + std::to_string(i) + "]}";
  out.resize(n);
  return out;
}

TEST(ContentEncodingTest, ParsesKnownCodingsAndRefusesOthers) {
  EXPECT_EQ(*ParseContentEncoding(" GZIP "), ContentCoding::kGzip);
  EXPECT_EQ(*ParseContentEncoding("x-gzip"), ContentCoding::kGzip);
  EXPECT_EQ(*ParseContentEncoding("Deflate"), ContentCoding::kDeflate);
  EXPECT_EQ(*ParseContentEncoding("identity"), ContentCoding::kIdentity);
  EXPECT_EQ(ParseContentEncoding("br").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ParseContentEncoding("gzip, gzip").status().code(), absl::StatusCode::kUnimplemented);
}

TEST(DecompressTest, ReadsGzipZlibAndRawDeflate) {
  const std::string body = Text(100000);
  std::string out;
  ASSERT_TRUE(Decompress(ContentCoding::kGzip, StreamCompress(body, 15 + 16), 1 << 20, 64, &out).ok());
  EXPECT_EQ(out, body);
  EXPECT_GE(out.capacity(), body.size() + 64);
  ASSERT_TRUE(Decompress(ContentCoding::kDeflate, ZlibCompress(body), 1 << 20, 0, &out).ok());
  EXPECT_EQ(out, body);
  ASSERT_TRUE(Decompress(ContentCoding::kDeflate, StreamCompress(body, -15), 1 << 20, 0, &out).ok());
  EXPECT_EQ(out, body);
  ASSERT_TRUE(Decompress(ContentCoding::kGzip, StreamCompress("", 15 + 16), 10, 0, &out).ok());
  EXPECT_EQ(out, "");
}

TEST(DecompressTest, TheDecodedSizeIsBounded) {
  // 16 MiB of zeros compress to ~16 KiB: a bomb against a 1 MiB limit.
  const std::string zeros(16 << 20, '\0');
  const std::string bomb = StreamCompress(zeros, 15 + 16);
  ASSERT_LT(bomb.size(), 100000u);
  std::string out;
  absl::Status status = Decompress(ContentCoding::kGzip, bomb, 1 << 20, 0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange) << status;
  EXPECT_LE(out.capacity(), (1u << 20) + 4096);
  // Exactly at the limit is fine; one byte over is not.
  const std::string body = Text(5000);
  EXPECT_TRUE(Decompress(ContentCoding::kDeflate, ZlibCompress(body), 5000, 0, &out).ok());
  EXPECT_EQ(Decompress(ContentCoding::kDeflate, ZlibCompress(body), 4999, 0, &out).code(),
            absl::StatusCode::kOutOfRange);
}

TEST(DecompressTest, RefusesMalformedTruncatedAndTrailingData) {
  const std::string body = Text(20000);
  const std::string gz = StreamCompress(body, 15 + 16);
  std::string out;
  EXPECT_EQ(Decompress(ContentCoding::kGzip, "not gzip at all", 1 << 20, 0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(ContentCoding::kGzip, gz.substr(0, gz.size() / 2), 1 << 20, 0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(ContentCoding::kGzip, gz + "extra", 1 << 20, 0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(ContentCoding::kDeflate, "", 1 << 20, 0, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CompressTest, RoundTripsThroughZlibInflate) {
  const std::string a = Text(70000), b(300000, 'x'), c = "tail";
  const std::vector<std::string_view> parts = {a, b, c};
  for (ContentCoding coding : {ContentCoding::kGzip, ContentCoding::kDeflate}) {
    std::string compressed;
    ASSERT_TRUE(Compress(coding, parts, &compressed).ok());
    EXPECT_LT(compressed.size(), a.size() + b.size());
    std::string back;
    ASSERT_TRUE(Decompress(coding, compressed, 1 << 21, 0, &back).ok());
    EXPECT_EQ(back, a + b + c);
  }
  std::string empty;
  ASSERT_TRUE(Compress(ContentCoding::kGzip, {}, &empty).ok());
  std::string back = "junk";
  ASSERT_TRUE(Decompress(ContentCoding::kGzip, empty, 10, 0, &back).ok());
  EXPECT_EQ(back, "");
}

TEST(NegotiateTest, PicksByQValue) {
  EXPECT_EQ(NegotiateContentCoding(""), ContentCoding::kIdentity);
  EXPECT_EQ(NegotiateContentCoding("gzip"), ContentCoding::kGzip);
  EXPECT_EQ(NegotiateContentCoding("deflate"), ContentCoding::kDeflate);
  EXPECT_EQ(NegotiateContentCoding("gzip, deflate"), ContentCoding::kGzip);
  EXPECT_EQ(NegotiateContentCoding("gzip;q=0.5, deflate"), ContentCoding::kDeflate);
  EXPECT_EQ(NegotiateContentCoding("gzip;q=0, deflate;q=0"), ContentCoding::kIdentity);
  EXPECT_EQ(NegotiateContentCoding("br, *;q=0.1"), ContentCoding::kGzip);
  EXPECT_EQ(NegotiateContentCoding("identity, br"), ContentCoding::kIdentity);
  EXPECT_EQ(NegotiateContentCoding("gzip;q=banana, deflate"), ContentCoding::kDeflate);
}

}  // namespace
}  // namespace ortserve::frontend
