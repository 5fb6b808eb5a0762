// SPDX-License-Identifier: Apache-2.0
// Module-rule probe (tests/module_rules/CMakeLists.txt): what a module links
// PUBLIC, and what those link PUBLIC, is visible.
#include "core/tensor.h"
#include "repository/model_manager.h"
#include "router/router.h"
#include "scheduler/scheduler.h"
