// SPDX-License-Identifier: Apache-2.0
#include "scheduler/scheduler.h"

#include "core/strings.h"
#include "scheduler/dynamic_batcher.h"

namespace ortserve::scheduler {

absl::StatusOr<std::unique_ptr<Scheduler>> CreateScheduler(SchedulerOptions options) {
  const std::string& model = options.model_name;
  if (options.instances.empty()) {
    return absl::InvalidArgumentError(StrCat("model '", model, "' has no instances"));
  }
  for (size_t i = 0; i < options.instances.size(); ++i) {
    if (options.instances[i] == nullptr) {
      return absl::InvalidArgumentError(StrCat("model '", model, "' instance ", i, " has no session"));
    }
  }
  if (options.clock == nullptr) {
    return absl::InvalidArgumentError(StrCat("model '", model, "' scheduler options have no clock"));
  }
  if (options.max_batch_size < 0) {
    return absl::InvalidArgumentError(
        StrCat("model '", model, "' max_batch_size ", options.max_batch_size, " is negative"));
  }
  for (int preferred : options.preferred_batch_sizes) {
    if (preferred < 1 || preferred > options.max_batch_size) {
      return absl::InvalidArgumentError(StrCat("model '", model, "' preferred_batch_size ", preferred,
                                               " is outside 1..max_batch_size (", options.max_batch_size,
                                               ")"));
    }
  }
  if (options.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(StrCat("model '", model, "' max_queue_delay is negative"));
  }
  if (options.max_batch_tokens < 0) {
    return absl::InvalidArgumentError(
        StrCat("model '", model, "' max_batch_tokens ", options.max_batch_tokens, " is negative"));
  }
  if (options.max_batch_tokens > 0 && options.sequence_axis < 1) {
    return absl::InvalidArgumentError(StrCat("model '", model, "' sequence_axis ", options.sequence_axis,
                                             " must be 1 or more (0 is the batch dimension)"));
  }
  const uint32_t levels = options.priority_levels == 0 ? 1 : options.priority_levels;
  if (options.default_priority_level > levels) {
    return absl::InvalidArgumentError(StrCat("model '", model, "' default_priority_level ",
                                             options.default_priority_level, " exceeds priority_levels ",
                                             options.priority_levels));
  }
  return std::unique_ptr<Scheduler>(new DynamicBatcher(std::move(options)));
}

}  // namespace ortserve::scheduler
