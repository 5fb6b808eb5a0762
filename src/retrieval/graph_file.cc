// SPDX-License-Identifier: Apache-2.0
#include "retrieval/graph_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/strings.h"

namespace ortserve::retrieval {
namespace {

// The header hnswlib 0.6's saveIndex writes, field by field, in order.
struct Header {
  uint64_t offset_level0, max_elements, count, size_data_per_element, label_offset, offset_data;
  int32_t max_level;
  uint32_t enter_point;
  uint64_t max_m, max_m0, m;
  double mult;
  uint64_t ef_construction;
};
static_assert(sizeof(size_t) == 8 && sizeof(unsigned int) == 4, "hnswlib's file layout as read here");
// No real graph comes near this many levels (a node's level is
// -ln(U)/ln(M)); it bounds what a hostile header may claim.
constexpr int32_t kMaxLevel = 64;

Header ParseHeader(const char* p) {
  Header h;
  auto get = [&p](auto& field) {
    std::memcpy(&field, p, sizeof(field));
    p += sizeof(field);
  };
  get(h.offset_level0), get(h.max_elements), get(h.count), get(h.size_data_per_element), get(h.label_offset);
  get(h.offset_data), get(h.max_level), get(h.enter_point), get(h.max_m), get(h.max_m0), get(h.m), get(h.mult);
  get(h.ef_construction);
  return h;
}

absl::Status CheckHeader(const Header& h, const GraphShape& shape) {
  const uint64_t links0 = 2 * uint64_t{shape.m} * 4 + 4;
  auto bad = [](std::string_view what) { return absl::DataLossError(StrCat("its header's ", what, " is wrong")); };
  if (h.offset_level0 != 0) return bad("level-0 offset");
  if (h.count == 0 || h.count > shape.max_nodes || h.count > h.max_elements) return bad("node count");
  if (h.m != shape.m || h.max_m != shape.m || h.max_m0 != 2 * uint64_t{shape.m}) return bad("M");
  if (h.offset_data != links0 || h.label_offset != links0 + uint64_t{shape.dimension} * 4 ||
      h.size_data_per_element != h.label_offset + 8) {
    return bad("element layout (another dimension or M?)");
  }
  if (h.max_level < 0 || h.max_level > kMaxLevel) return bad("top level");
  if (h.enter_point >= h.count) return bad("entry point");
  if (!std::isfinite(h.mult) || std::fabs(h.mult - 1 / std::log(static_cast<double>(shape.m))) > 1e-9) return bad("level factor");
  if (h.ef_construction != std::max(shape.ef_construction, shape.m)) return bad("ef_construction");
  return absl::OkStatus();
}

// Reads the whole file once: its CRC-32, and every node's link-list length
// (after the level-0 block), each a whole number of upper-level lists, at
// most the top level's, summing to the file's size.
absl::Status CheckBody(int fd, const Header& h, const GraphFile& expected) {
  const uint64_t per_level = h.max_m * 4 + 4;
  uint64_t field_at = kGraphHeaderBytes + h.count * h.size_data_per_element;  // Bounded by CheckHeader: no overflow.
  if (field_at > expected.bytes) return absl::DataLossError("it is shorter than its nodes");
  uint64_t nodes = 0, offset = 0;
  uint32_t field = 0;
  int field_bytes = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> chunk(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::DataLossError(StrCat("reading it failed: ", std::strerror(errno)));
    if (n == 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(n));
    const uint64_t end = offset + static_cast<uint64_t>(n);
    while (nodes < h.count && field_at + static_cast<uint64_t>(field_bytes) < end) {
      while (field_bytes < 4 && field_at + static_cast<uint64_t>(field_bytes) < end) {
        reinterpret_cast<char*>(&field)[field_bytes] = chunk[field_at + static_cast<uint64_t>(field_bytes) - offset];
        ++field_bytes;
      }
      if (field_bytes < 4) break;
      if (field % per_level != 0 || field / per_level > static_cast<uint64_t>(h.max_level)) {
        return absl::DataLossError(StrCat("node ", nodes, " has a link list of ", field, " bytes"));
      }
      field_at += 4 + uint64_t{field};
      field = 0;
      field_bytes = 0;
      ++nodes;
    }
    offset = end;
  }
  if (offset != expected.bytes) return absl::DataLossError("its size changed while it was read");
  if (static_cast<uint32_t>(crc) != expected.crc) return absl::DataLossError("its CRC does not match the snapshot's");
  if (nodes != h.count || field_at != expected.bytes) return absl::DataLossError("its link lists do not fill it");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GraphFile> SealGraphFile(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t read_bytes = 0;
  std::vector<char> chunk(1 << 20);
  bool ok = true;
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(n));
    read_bytes += static_cast<uint64_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || read_bytes != bytes) {
    return absl::InternalError(StrCat("writing the graph to ", path, " failed (", read_bytes, " of ", bytes,
                                      " bytes written; disk full?)"));
  }
  return GraphFile{.bytes = bytes, .crc = static_cast<uint32_t>(crc)};
}

absl::StatusOr<uint64_t> CheckGraphFile(const std::string& path, const GraphFile& expected, const GraphShape& shape) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::DataLossError(StrCat("cannot open it: ", std::strerror(errno)));
  struct stat st {};
  char raw[kGraphHeaderBytes];
  absl::Status status = absl::OkStatus();
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != expected.bytes) {
    status = absl::DataLossError(StrCat("it is ", st.st_size, " bytes, not the snapshot's ", expected.bytes));
  } else if (::pread(fd, raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    status = absl::DataLossError("its header is short");
  }
  const Header header = ParseHeader(raw);
  if (status.ok()) status = CheckHeader(header, shape);
  if (status.ok()) status = CheckBody(fd, header, expected);
  ::close(fd);
  if (!status.ok()) return status;
  return header.count;
}

}  // namespace ortserve::retrieval
