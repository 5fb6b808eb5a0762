// SPDX-License-Identifier: Apache-2.0
// The KServe v2 gRPC codec: inference::ModelInferRequest to InferRequest and
// InferResponse to inference::ModelInferResponse, plus the messages of the
// other RPCs (metadata, statistics, repository index). Pure functions: no
// server state, no sockets, so they are unit-testable and fuzzable.
//
// Thread-safety: every function is thread-safe.
//
// Wire rules (what Triton's gRPC front end does, so its clients work):
//  - An input's data is either its `contents` (typed repeated fields) or its
//    entry in `raw_input_contents`; when raw_input_contents is used it has one
//    entry per input, in input order, and no input may also set contents.
//  - Raw inputs become views into the request message (no copy); the tensors'
//    holder and InferRequest::payload share ownership of the message.
//    Contents are converted into an owned buffer in the byte layout of
//    core/tensor.h (BYTES: 4-byte little-endian length + bytes per element).
//  - Narrow types travel in the 32-bit content fields (BOOL: bool_contents;
//    INT8/INT16/INT32: int_contents; UINT8/UINT16/UINT32: uint_contents) and
//    must fit the type. FP16 and BF16 have no contents field: raw only.
//  - Responses always carry output data in raw_output_contents, one entry
//    per output in output order (as Triton does; tritonclient reads these).
//  - Reserved request parameters: "priority" (0..2^32-1), "timeout"
//    (microseconds; 0 = none) and "binary_data_output" (accepted; gRPC always
//    answers raw). Requested-output parameter "classification" (top-k).
//  - Parameter maps have no order on the wire; they are decoded sorted by key.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/infer_request.h"
#include "frontend/inference_service.h"
#include "frontend/kserve/response_outputs.h"
#include "proto/grpc_service.pb.h"

namespace ortserve::frontend {

// Decodes a ModelInferRequest. `message` must not change afterwards: raw
// inputs view its bytes, and the request (payload and tensor holders) keeps it
// alive. Fills model_name, model_version, id, parameters, inputs,
// input_parameters (one per input), outputs, priority, arrival (= now),
// deadline (from "timeout"; the caller tightens it with the RPC deadline) and
// payload.
//
// Errors (all InvalidArgument, naming the tensor or field and the value): an
// unset parameter value; a reserved parameter of the wrong kind or range; an
// input without a name, with an unknown datatype or a negative dimension;
// raw_input_contents whose count differs from the inputs'; an input with both
// or neither of contents and raw data; contents in a field that does not fit
// the datatype, a count that differs from the shape, a value out of range;
// FP16/BF16 sent as contents; a requested output named twice. Byte sizes of
// raw inputs are checked by the router's executor (frontend/model_executor.h), shared with
// the REST front end.
absl::StatusOr<InferRequest> DecodeModelInferRequest(std::shared_ptr<const inference::ModelInferRequest> message,
                                                     absl::Time now);

// Encodes an infer response into `out` (cleared first). `request` gives the
// output selection (frontend/kserve/response_outputs.h): empty request.outputs
// writes every response output in response order; otherwise exactly the
// requested outputs in request order. Classification outputs
// (classification = k > 0) become the BYTES tensor of
// frontend/kserve/classification.h, the same ranking the REST front end
// writes; `options` gives the labels. Errors: Internal when a requested output
// is missing or an output tensor is malformed; InvalidArgument for
// classification of BYTES.
absl::Status EncodeModelInferResponse(const InferResponse& response, const InferRequest& request,
                                      const EncodeOptions& options, inference::ModelInferResponse* out);

// Parameters to and from the wire map (keys sorted on decode). Decode errors:
// InvalidArgument naming `where` and the key when a value is unset.
absl::Status DecodeParameters(const google::protobuf::Map<std::string, inference::InferParameter>& wire,
                              std::string_view where, Parameters* out);
void EncodeParameters(const Parameters& parameters,
                      google::protobuf::Map<std::string, inference::InferParameter>* out);

// The other RPCs' messages.
void EncodeServerMetadata(const std::vector<std::string>& extensions, inference::ServerMetadataResponse* out);
void EncodeModelMetadata(const ModelMetadata& metadata, inference::ModelMetadataResponse* out);
void EncodeModelStatistics(const std::vector<ModelHandle>& models, inference::ModelStatisticsResponse* out);
// `ready_only`: only READY entries (RepositoryIndexRequest.ready).
void EncodeRepositoryIndex(const std::vector<repository::ModelIndexEntry>& index, bool ready_only,
                           inference::RepositoryIndexResponse* out);

}  // namespace ortserve::frontend
