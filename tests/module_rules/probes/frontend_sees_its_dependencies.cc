// SPDX-License-Identifier: Apache-2.0
// Module-rule probe (tests/module_rules/CMakeLists.txt).
#include "admission/admission.h"
#include "frontend/inference_service.h"
#include "frontend/kserve/classification.h"
#include "router/router.h"
