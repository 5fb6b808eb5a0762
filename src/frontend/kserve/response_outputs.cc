// SPDX-License-Identifier: Apache-2.0
#include "frontend/kserve/response_outputs.h"

#include "frontend/kserve/reserved_parameters.h"

#include "core/strings.h"

namespace ortserve::frontend {

absl::Status SelectOutputs(const InferResponse& response, const InferRequest& request, SelectedOutputs* out) {
  out->clear();
  if (request.outputs.empty()) {
    out->reserve(response.outputs.size());
    for (const Tensor& tensor : response.outputs) {
      out->push_back({&tensor, nullptr, request.binary_data_output, 0});
    }
    return absl::OkStatus();
  }
  out->reserve(request.outputs.size());
  for (const RequestedOutput& wanted : request.outputs) {
    const Tensor* found = nullptr;
    for (const Tensor& tensor : response.outputs) {
      if (tensor.name == wanted.name) {
        found = &tensor;
        break;
      }
    }
    if (found == nullptr) {
      return absl::InternalError(
          StrCat("requested output '", wanted.name, "' is missing from the model's response"));
    }
    out->push_back({found, &wanted, wanted.binary_data || request.binary_data_output, wanted.classification,
                    NamesSharedMemory(wanted.parameters)});
  }
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
