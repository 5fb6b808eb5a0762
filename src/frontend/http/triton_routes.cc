// SPDX-License-Identifier: Apache-2.0
// Connection: Triton's trace-setting and shared-memory extensions.
#include "core/strings.h"
#include "frontend/http/connection.h"

namespace ortserve::frontend {

void Connection::TritonExtension(const RouteMatch& route) {
  switch (route.id) {
    case RouteId::kCudaShm:
      return Send(Error(400,
                        "CUDA shared memory is not supported on this server; send tensors in the request or use "
                        "system shared memory"));
    default:
      return Send(Error(501, "this extension is not available yet"));
  }
}

}  // namespace ortserve::frontend
