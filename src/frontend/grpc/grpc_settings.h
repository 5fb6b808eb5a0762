// SPDX-License-Identifier: Apache-2.0
// The gRPC side of Triton's settings extensions (logging, and the answer for
// methods ortserve does not serve): pure translations between the protocol's
// messages and ortserve's settings objects, so grpc_server.cc's handlers stay
// one call each.
//
// Thread-safety: every function is thread-safe (the settings objects are).
#pragma once

#include <memory>
#include <string_view>

#include <grpcpp/generic/async_generic_service.h>

#include "absl/status/status.h"
#include "frontend/inference_service.h"
#include "observability/logging.h"
#include "proto/grpc_service.pb.h"

namespace ortserve::frontend {

// LogSettings: applies `request`'s settings (Triton's names: log_info,
// log_warning, log_error as bool, log_verbose_level as uint32, log_format
// and log_file as string; ortserve's access_log as bool) through
// Logging::UpdateSettings, then fills `response` with every current setting.
// An empty request only reads them. Errors: InvalidArgument naming the
// setting whose type or value is wrong (nothing is changed then);
// Unavailable when `logging` is null.
absl::Status HandleLogSettings(observability::Logging* logging, const inference::LogSettingsRequest& request,
                               inference::LogSettingsResponse* response);

// TraceSetting: applies `request`'s settings to its model's (model_name
// empty: the global) trace settings, a setting with no value clearing it
// (InferenceService::TraceSetting), and answers every setting in effect.
// Errors: as InferenceService::TraceSetting.
absl::Status HandleTraceSetting(const InferenceService& service, const inference::TraceSettingRequest& request,
                                inference::TraceSettingResponse* response);

// System shared memory (SharedMemoryManager): register, status (name empty:
// every region), unregister (name empty: every region). Errors: the
// manager's.
// `loopback_client`: the call came over a loopback connection (IsLoopbackGrpcPeer).
absl::Status HandleShmRegister(SharedMemoryManager& manager, const inference::SystemSharedMemoryRegisterRequest& request,
                               bool loopback_client);
absl::Status HandleShmStatus(const SharedMemoryManager& manager, const inference::SystemSharedMemoryStatusRequest& request,
                             inference::SystemSharedMemoryStatusResponse* response);

// The status of a method this server does not implement: UNIMPLEMENTED with
// a message naming it. Triton's C++ client (and so perf_analyzer) takes an
// error with an empty message for success, so no such answer is ever bare.
absl::Status NotServed(std::string_view method, std::string_view why = {});

// Answers every method no registered service has (a newer protocol's RPCs,
// a typo in a method name) with NotServed's message instead of gRPC's bare
// UNIMPLEMENTED. Thread-safe; registered once per server.
class UnknownMethodService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;
};

}  // namespace ortserve::frontend
