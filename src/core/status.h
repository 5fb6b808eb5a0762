// SPDX-License-Identifier: Apache-2.0
// Status helpers shared by every module: early-return macros over absl::Status
// (no state; safe from any thread).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ORTSERVE_CONCAT_INNER_(a, b) a##b
#define ORTSERVE_CONCAT_(a, b) ORTSERVE_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::absl::Status ortserve_status_ = (expr);         \
    if (!ortserve_status_.ok()) return ortserve_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; on error returns
// its status, otherwise moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(ORTSERVE_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
