// SPDX-License-Identifier: Apache-2.0
#include "repository/model_version.h"

#include "core/strings.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::repository {

ModelVersion::~ModelVersion() {
  if (scheduler) scheduler->Stop();
}

std::string_view ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

std::string_view LazyEventName(LazyEvent event) {
  switch (event) {
    case LazyEvent::kLoadStarted: return "load_started";
    case LazyEvent::kLoaded: return "loaded";
    case LazyEvent::kLoadTimedOut: return "load_timed_out";
    case LazyEvent::kIdleUnloaded: return "idle_unloaded";
    case LazyEvent::kEvicted: return "evicted";
  }
  return "unknown";
}

std::string_view ModelControlModeName(ModelControlMode mode) {
  switch (mode) {
    case ModelControlMode::kNone: return "none";
    case ModelControlMode::kPoll: return "poll";
    case ModelControlMode::kExplicit: return "explicit";
  }
  return "unknown";
}

absl::StatusOr<ModelControlMode> ParseModelControlMode(std::string_view text) {
  if (text == "none") return ModelControlMode::kNone;
  if (text == "poll") return ModelControlMode::kPoll;
  if (text == "explicit") return ModelControlMode::kExplicit;
  return absl::InvalidArgumentError(
      StrCat("model control mode '", text, "' is not one of none, poll, explicit"));
}

}  // namespace ortserve::repository
