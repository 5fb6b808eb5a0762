// SPDX-License-Identifier: Apache-2.0
// The KServe v2 reserved parameters, read the same way for every protocol
// (the REST and gRPC decoders both call these; neither reads them itself).
//
// Request parameters:
//  - "priority": 0..2^32-1; 0 is the model's default level, 1 the highest.
//  - "timeout": microseconds after the request's arrival, 0..2^63-1; 0 or
//    absent means no deadline.
//  - "binary_data_output": a boolean (binary tensor extension).
// Requested-output parameters:
//  - "binary_data": a boolean (binary tensor extension).
//  - "classification": 0..2^32-1, the k of the classification extension;
//    0 or absent means off.
// Other keys are left alone: they travel on in the parameters maps.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/infer_request.h"
#include "core/parameters.h"

namespace ortserve::frontend {

// Triton's shared-memory extension: an input or requested output whose
// parameters name a region (with its byte size and offset) has its data there
// (frontend/shared_memory.h resolves them).
inline constexpr std::string_view kShmRegion = "shared_memory_region";
inline constexpr std::string_view kShmOffset = "shared_memory_offset";
inline constexpr std::string_view kShmByteSize = "shared_memory_byte_size";
inline bool NamesSharedMemory(const Parameters& parameters) {
  return !parameters.empty() && parameters.Find(kShmRegion) != nullptr;
}

// A non-negative integer no larger than `max` under `key`; nullopt when
// absent. InvalidArgument, naming `where` and `key`, for a value of another
// kind or out of range.
absl::StatusOr<std::optional<uint64_t>> UnsignedParameter(const Parameters& parameters, std::string_view key,
                                                          std::string_view where, uint64_t max);

// A boolean under `key`; false when absent. InvalidArgument, naming `where`
// and `key`, for a value of another kind.
absl::StatusOr<bool> BoolParameter(const Parameters& parameters, std::string_view key, std::string_view where);

// Reads the reserved request parameters from request->parameters into
// request->binary_data_output, priority and deadline (`now` plus "timeout");
// a field whose parameter is absent (or a timeout of 0) keeps its value.
// InvalidArgument naming the parameter when one is of the wrong kind or
// range; `request` may then be partly filled.
absl::Status ReadRequestParameters(absl::Time now, InferRequest* request);

// Reads the reserved parameters of a requested output from
// output->parameters into output->binary_data and classification; a field
// whose parameter is absent keeps its value. InvalidArgument naming the
// output and the parameter, as above.
absl::Status ReadOutputParameters(RequestedOutput* output);

}  // namespace ortserve::frontend
