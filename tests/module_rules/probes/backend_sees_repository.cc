// SPDX-License-Identifier: Apache-2.0
// Module-rule probe (tests/module_rules/CMakeLists.txt).
#include "repository/model_manager.h"
