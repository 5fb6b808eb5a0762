// SPDX-License-Identifier: Apache-2.0
#include "core/utf8.h"

namespace ortserve {

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(p + i, n - i);
    if (length == 0) return i;
    i += length;
  }
  return std::string_view::npos;
}

}  // namespace ortserve
