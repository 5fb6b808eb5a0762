// SPDX-License-Identifier: Apache-2.0
#include "backend/remote/remote_config.h"

#include <charconv>
#include <optional>
#include <utility>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::backend::remote {

absl::StatusOr<EndpointAddress> ParseEndpoint(std::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(StrCat("remote endpoint '", text, "' is not host:port, http://host:port or ",
                                             "https://host:port"));
  };
  EndpointAddress address;
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    address.scheme = EndpointAddress::Scheme::kHttps;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    address.scheme = EndpointAddress::Scheme::kHttp;
    rest.remove_prefix(7);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // "https://host:port/" as URLs are written.
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = rest.substr(0, colon);
  const std::string_view port_text = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid();  // An IPv6 address needs its brackets.
  }
  // A host name or address: no path, user info, spaces or control bytes.
  for (const char c : host) {
    if (c == '/' || c == '@' || c == '?' || c == '#' || c == '[' || c == ']' || static_cast<unsigned char>(c) <= ' ') {
      return invalid();
    }
  }
  unsigned port = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535 || host.empty()) {
    return invalid();
  }
  address.host = std::string(host);
  address.port = static_cast<uint16_t>(port);
  return address;
}

absl::StatusOr<bool> UsesTls(const EndpointAddress& address, std::string_view text, const config::ModelRemote& remote) {
  if (address.scheme == EndpointAddress::Scheme::kHttp && remote.has_tls()) {
    return absl::InvalidArgumentError(StrCat("remote endpoint '", text,
                                             "' says http:// but the remote block has a tls block (TLS for every "
                                             "endpoint); write https:// or host:port"));
  }
  return address.scheme == EndpointAddress::Scheme::kHttps || remote.has_tls();
}

absl::StatusOr<ModelSignature> SignatureFromConfig(const config::ModelConfig& config) {
  ModelSignature signature;
  auto add = [&](const std::string& name, config::DataType type, const auto& dims,
                 std::vector<TensorSpec>* to) -> absl::Status {
    std::optional<DataType> core = DataTypeFromConfigName(config::DataType_Name(type));
    if (!core || *core == DataType::kInvalid) {
      return absl::InvalidArgumentError(StrCat("tensor '", name, "' needs a data_type"));
    }
    TensorSpec spec{name, *core, {}};
    if (config.max_batch_size() > 0) spec.dims.push_back(-1);
    spec.dims.insert(spec.dims.end(), dims.begin(), dims.end());
    to->push_back(std::move(spec));
    return absl::OkStatus();
  };
  for (const auto& input : config.input()) RETURN_IF_ERROR(add(input.name(), input.data_type(), input.dims(), &signature.inputs));
  for (const auto& output : config.output()) {
    RETURN_IF_ERROR(add(output.name(), output.data_type(), output.dims(), &signature.outputs));
  }
  if (signature.inputs.empty() || signature.outputs.empty()) {
    return absl::InvalidArgumentError("a TF Serving remote model needs its inputs and outputs in the config");
  }
  return signature;
}

}  // namespace ortserve::backend::remote
