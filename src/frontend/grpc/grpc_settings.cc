// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/grpc_settings.h"

#include <string>

#include "core/json_writer.h"
#include "core/strings.h"
#include "frontend/grpc/grpc_server.h"
#include "rapidjson/document.h"

namespace ortserve::frontend {

absl::Status HandleLogSettings(observability::Logging* logging, const inference::LogSettingsRequest& request,
                               inference::LogSettingsResponse* response) {
  if (logging == nullptr) return absl::UnavailableError("log settings are not available on this server");
  if (!request.settings().empty()) {
    // The same checks and effects as POST /v2/logging: the settings become
    // the JSON object that endpoint takes (keys escaped; values typed).
    std::string json = "{";
    for (const auto& [key, value] : request.settings()) {
      if (json.size() > 1) json.push_back(',');
      AppendJsonString(key, &json);
      json.push_back(':');
      switch (value.parameter_choice_case()) {
        case inference::LogSettingsRequest::SettingValue::kBoolParam:
          json.append(value.bool_param() ? "true" : "false");
          break;
        case inference::LogSettingsRequest::SettingValue::kUint32Param:
          json.append(std::to_string(value.uint32_param()));
          break;
        case inference::LogSettingsRequest::SettingValue::kStringParam:
          AppendJsonString(value.string_param(), &json);
          break;
        default:
          return absl::InvalidArgumentError(StrCat("log setting '", key, "' has no value"));
      }
    }
    json.push_back('}');
    if (absl::Status status = logging->UpdateSettings(json); !status.ok()) return status;
  }
  rapidjson::Document current;
  const std::string settings = logging->SettingsJson();
  current.Parse(settings.data(), settings.size());
  if (current.HasParseError() || !current.IsObject()) return absl::InternalError("log settings are unreadable");
  auto& out = *response->mutable_settings();
  for (const auto& member : current.GetObject()) {
    const std::string key(member.name.GetString(), member.name.GetStringLength());
    auto& value = out[key];
    if (member.value.IsBool()) {
      value.set_bool_param(member.value.GetBool());
    } else if (member.value.IsUint()) {
      value.set_uint32_param(member.value.GetUint());
    } else if (member.value.IsString()) {
      value.set_string_param(std::string(member.value.GetString(), member.value.GetStringLength()));
    }
  }
  return absl::OkStatus();
}

absl::Status HandleTraceSetting(const InferenceService& service, const inference::TraceSettingRequest& request,
                                inference::TraceSettingResponse* response) {
  observability::TraceSettings::Updates updates;
  for (const auto& [key, value] : request.settings()) {
    auto& values = updates[key];
    if (value.value().empty()) continue;  // Clear.
    values.emplace(value.value().begin(), value.value().end());
  }
  auto settings = service.TraceSetting(request.model_name(), updates);
  if (!settings.ok()) return settings.status();
  for (const auto& [key, values] : *settings) {
    auto& out = (*response->mutable_settings())[key];
    for (const auto& v : values) out.add_value(v);
  }
  return absl::OkStatus();
}

absl::Status HandleShmRegister(SharedMemoryManager& manager, const inference::SystemSharedMemoryRegisterRequest& request,
                               bool loopback_client) {
  return manager.Register(request.name(), request.key(), request.offset(), request.byte_size(), loopback_client);
}

absl::Status HandleShmStatus(const SharedMemoryManager& manager, const inference::SystemSharedMemoryStatusRequest& request,
                             inference::SystemSharedMemoryStatusResponse* response) {
  auto regions = manager.Status(request.name());
  if (!regions.ok()) return regions.status();
  for (const auto& region : *regions) {
    auto& status = (*response->mutable_regions())[region->name()];
    status.set_name(region->name());
    status.set_key(region->key());
    status.set_offset(region->offset());
    status.set_byte_size(region->byte_size());
  }
  return absl::OkStatus();
}

absl::Status NotServed(std::string_view method, std::string_view why) {
  if (why.empty()) why = "this server does not implement it";
  return absl::UnimplementedError(StrCat("method '", method, "' is not supported: ", why));
}

grpc::ServerGenericBidiReactor* UnknownMethodService::CreateReactor(grpc::GenericCallbackServerContext* context) {
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(const std::string& method) {
      Finish(ToGrpcStatus(NotServed(method.empty() ? "(unnamed)" : method,
                                    "no such method on this server (ortserve speaks inference.GRPCInferenceService "
                                    "and grpc.health.v1.Health)")));
    }
    void OnDone() override { delete this; }
  };
  return new Reactor(context->method());
}

}  // namespace ortserve::frontend
