// SPDX-License-Identifier: Apache-2.0
// Internal to json_tensor_data.cc, json_tensor_runs.cc and
// json_request_parser.cc (one decoder split in three): what they share.
// Include json_tensor_data.h (or kserve_json_codec.h) instead.
//
//   json_tensor_data.cc    the on-demand walk of a "data" value into tensor
//                          bytes (FillFromValue) and the JSON helpers.
//   json_tensor_runs.cc    large bodies: numeric "data" arrays parsed straight
//                          from the body (FindLargeBodyRuns, FillFromJson).
//   json_request_parser.cc the request's fields (ParseJsonRequest).
//
// Each number's hot loop (the visitors, ScanRun) lives in one translation unit
// with its caller; nothing here is called per number.
//
// Thread-safety: every function is thread-safe (no shared state). A Context
// and its runs belong to one request on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data_type.h"
#include "core/strings.h"
#include "core/tensor.h"
#include "frontend/http/json_tensor_data.h"
#include "simdjson.h"

namespace ortserve::frontend::rest_internal {

namespace ondemand = simdjson::ondemand;

// InvalidArgument with the arguments concatenated.
template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}

// Nesting depths of the values the decoder reads (the body's object is 1).
inline constexpr int kFieldDepth = 2;   // A field of the body: "inputs", "outputs", ...
inline constexpr int kInputDepth = 3;   // An element of "inputs" or "outputs".
inline constexpr int kTensorDepth = 4;  // A field of one: "shape", "data", "parameters", ...

// ---------------------------------------------------------------------------
// json_tensor_data.cc

// The kind of `value` for messages: "an array", "a string", "an integer", ...
// Errors: the body is not valid JSON there.
absl::StatusOr<std::string_view> JsonKindName(ondemand::value& value);
absl::StatusOr<std::string_view> JsonKindName(ondemand::document& document);

// Reads past `value` (at nesting `depth`), checking that it is well-formed.
absl::Status SkipValue(ondemand::value value, int depth);

// The `data` value a visitor walks: a value inside the document, or the root
// array of a document of its own (a large body's run, json_tensor_runs.cc),
// which on-demand reads through the array only (its scalar getters are for
// values inside a document).
struct Data {
  ondemand::value value;
  ondemand::array root_array;
  bool is_root_array = false;
};

// Converts `data` into `count` elements of `type` (the input `name` of
// `shape`, for messages). `json_size`: the whole JSON part of the body, which
// bounds the count before anything is allocated.
absl::StatusOr<OwnedBytes> FillFromValue(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                         Data& data, size_t json_size, int depth);

// ---------------------------------------------------------------------------
// json_tensor_runs.cc

// A large body's numeric "data" array, parsed from the body rather than by
// simdjson, which sees "[]" in its place (in the envelope).
struct Run {
  size_t envelope_offset = 0;  // Where its "[]" starts in the envelope.
  const char* begin = nullptr;  // Its '[' in the body.
  const char* end = nullptr;    // Just past its ']'.
  bool read = false;
};

// One request's parse, as each input's data conversion needs it.
struct Context {
  size_t json_size = 0;                 // The whole JSON part of the body.
  const char* envelope = nullptr;       // The text simdjson parses.
  const char* buffer_end = nullptr;     // End of the readable body (for a run's own parse).
  std::vector<Run>* runs = nullptr;     // Sorted by envelope_offset; null: none.
};

// The runs of a body of json_tensor_runs.cc's threshold size or more (8 MiB;
// less in the fuzz build), ordered as in the body; none for a smaller body or
// one whose brackets do not match (simdjson then reads it all and reports).
std::vector<Run> FindLargeBodyRuns(const char* json, size_t size);

// Converts the input's `data` (the run it stands for, if it is one's
// placeholder, which is then marked read) as FillFromValue does.
absl::StatusOr<OwnedBytes> FillFromJson(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                        ondemand::value data, const Context& context, int depth);

// A run no input read (under an ignored key) is still checked to be JSON.
absl::Status CheckUnreadRuns(const Context& context);

}  // namespace ortserve::frontend::rest_internal
