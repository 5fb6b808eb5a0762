// SPDX-License-Identifier: Apache-2.0
#include "backend/session.h"

namespace ortserve::backend {

const TensorSpec* ModelSignature::FindInput(std::string_view name) const {
  for (const auto& spec : inputs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const TensorSpec* ModelSignature::FindOutput(std::string_view name) const {
  for (const auto& spec : outputs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace ortserve::backend
