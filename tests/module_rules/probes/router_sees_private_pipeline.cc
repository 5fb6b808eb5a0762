// SPDX-License-Identifier: Apache-2.0
// Module-rule probe (tests/module_rules/CMakeLists.txt).
#include "pipeline/text_pipeline.h"
