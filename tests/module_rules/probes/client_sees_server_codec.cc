// SPDX-License-Identifier: Apache-2.0
// Module-rule probe (tests/module_rules/CMakeLists.txt).
#include "frontend/http/kserve_json_codec.h"
