// SPDX-License-Identifier: Apache-2.0
// ortserve-cli: a command-line KServe v2 client built on ortserve::client
// (docs/cli.md). Exit codes: 0 success, 1 the server answered with an error
// (or could not be reached), 2 usage error (bad flags, input spec or file).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/http_codec.h"
#include "core/json_writer.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/kserve_json_codec.h"  // --format json writes what the REST API writes.

namespace ortserve::cli {
namespace {

using client::Client;
using client::ClientOptions;

constexpr int kOk = 0;
constexpr int kServerError = 1;
constexpr int kUsageError = 2;

// A failure and the exit code it stands for.
struct Failure {
  int exit_code;
  std::string message;
};

Failure UsageError(std::string message) { return {kUsageError, std::move(message)}; }
Failure ServerError(const absl::Status& status) {
  return {kServerError, StrCat(absl::StatusCodeToString(status.code()), ": ", ToStd(status.message()))};
}

// "host:port", "[v6]:port", "http://host:port" (the scheme is ignored).
absl::Status ParseUrl(std::string url, ClientOptions* options) {
  if (auto scheme = url.find("://"); scheme != std::string::npos) url = url.substr(scheme + 3);
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::string host = url;
  std::string port;
  if (!url.empty() && url.front() == '[') {
    auto close = url.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(StrCat("--url '", url, "': missing ']'"));
    host = url.substr(1, close - 1);
    if (close + 1 < url.size() && url[close + 1] == ':') port = url.substr(close + 2);
  } else if (auto colon = url.rfind(':'); colon != std::string::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError(StrCat("--url '", url, "': no host"));
  options->address = host;
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return absl::InvalidArgumentError(StrCat("--url '", url, "': port '", port, "' is not 1..65535"));
    }
    options->port = static_cast<uint16_t>(value);
  }
  return absl::OkStatus();
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// --input name=shape:datatype:data, data being inline JSON, @file.json or
// @file (raw little-endian bytes; BYTES in the 4-byte-length layout).
absl::StatusOr<Tensor> ParseInput(const std::string& spec) {
  auto bad = [&spec](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("--input '", spec, "': ", why, " (expected name=shape:datatype:data, e.g. x=2,4:FP32:[1,2,3,4,5,6,7,8])"));
  };
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return bad("no name=");
  std::string name = spec.substr(0, eq);
  const auto colon1 = spec.find(':', eq + 1);
  const auto colon2 = colon1 == std::string::npos ? colon1 : spec.find(':', colon1 + 1);
  if (colon2 == std::string::npos) return bad("missing ':'");
  std::string shape_text = spec.substr(eq + 1, colon1 - eq - 1);
  std::string type_text = spec.substr(colon1 + 1, colon2 - colon1 - 1);
  std::string data = spec.substr(colon2 + 1);

  if (!shape_text.empty() && shape_text.front() == '[' && shape_text.back() == ']') {
    shape_text = shape_text.substr(1, shape_text.size() - 2);
  }
  Shape shape;
  for (size_t at = 0; at < shape_text.size();) {
    size_t comma = shape_text.find(',', at);
    if (comma == std::string::npos) comma = shape_text.size();
    std::string_view dim(shape_text.data() + at, comma - at);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(dim.data(), dim.data() + dim.size(), value);
    if (ec != std::errc() || end != dim.data() + dim.size() || value < 0) {
      return bad(StrCat("dimension '", dim, "' is not a non-negative integer"));
    }
    shape.push_back(value);
    at = comma + 1;
  }
  auto type = DataTypeFromName(type_text);
  if (!type || *type == DataType::kInvalid) return bad(StrCat("unknown datatype '", type_text, "'"));

  if (!data.empty() && data.front() == '@') {
    const std::string path = data.substr(1);
    auto contents = ReadFile(path);
    if (!contents) return bad(StrCat("cannot read file '", path, "'"));
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
      auto tensor = client::TensorFromJson(std::move(name), *type, std::move(shape), *contents);
      if (!tensor.ok()) return bad(StrCat("file '", path, "': ", ToStd(tensor.status().message())));
      return tensor;
    }
    const auto* bytes = reinterpret_cast<const std::byte*>(contents->data());
    Tensor tensor = MakeOwnedTensor(std::move(name), *type, std::move(shape),
                                    std::vector<std::byte>(bytes, bytes + contents->size()));
    if (absl::Status valid = ValidateTensorBytes(tensor); !valid.ok()) {
      return bad(StrCat("file '", path, "': ", ToStd(valid.message())));
    }
    return tensor;
  }
  auto tensor = client::TensorFromJson(std::move(name), *type, std::move(shape), data);
  if (!tensor.ok()) return bad(ToStd(tensor.status().message()));
  return tensor;
}

// One element of `tensor` as text (BYTES quoted as JSON strings).
std::string ElementText(const Tensor& t, size_t i, const std::vector<std::string_view>& strings) {
  auto at = [&t](size_t offset, auto tag) {
    decltype(tag) value;
    std::memcpy(&value, t.data.data() + offset, sizeof(value));
    return value;
  };
  switch (t.type) {
    case DataType::kBool: return t.data[i] != std::byte{0} ? "true" : "false";
    case DataType::kUint8: return StrCat(at(i, uint8_t{}) + 0u);
    case DataType::kUint16: return StrCat(at(2 * i, uint16_t{}));
    case DataType::kUint32: return StrCat(at(4 * i, uint32_t{}));
    case DataType::kUint64: return StrCat(at(8 * i, uint64_t{}));
    case DataType::kInt8: return StrCat(at(i, int8_t{}) + 0);
    case DataType::kInt16: return StrCat(at(2 * i, int16_t{}));
    case DataType::kInt32: return StrCat(at(4 * i, int32_t{}));
    case DataType::kInt64: return StrCat(at(8 * i, int64_t{}));
    case DataType::kFp16: return StrCat(HalfToFloat(at(2 * i, uint16_t{})));
    case DataType::kBf16: return StrCat(Bfloat16ToFloat(at(2 * i, uint16_t{})));
    case DataType::kFp32: return StrCat(at(4 * i, float{}));
    case DataType::kFp64: return StrCat(at(8 * i, double{}));
    case DataType::kBytes: {
      std::string out;
      AppendJsonString(strings[i], &out);
      return out;
    }
    default: return "?";
  }
}

// Left-aligned columns, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string ShapeText(const Shape& shape) { return ShapeToString(shape); }

struct Flags {
  std::string url;
  std::string protocol = "http";
  std::string format = "table";
  double timeout_s = 60;
  bool json_tensors = false;
  std::string model;
  std::string version;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  uint32_t classification = 0;
  size_t max_values = 8;
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string api_key;
  std::string bearer_token;
};

std::optional<Failure> Health(Client& client, const Flags& flags) {
  auto live = client.ServerLive();
  if (!live.ok()) return ServerError(live.status());
  auto ready = client.ServerReady();
  if (!ready.ok()) return ServerError(ready.status());
  if (flags.format == "json") {
    std::cout << "{\"live\":" << (*live ? "true" : "false") << ",\"ready\":" << (*ready ? "true" : "false") << "}\n";
  } else {
    PrintTable({{"live", *live ? "true" : "false"}, {"ready", *ready ? "true" : "false"}});
  }
  if (!*live || !*ready) return Failure{kServerError, "the server is not ready"};
  return std::nullopt;
}

std::optional<Failure> Models(Client& client, const Flags& flags) {
  auto index = client.RepositoryIndex();
  if (!index.ok()) return ServerError(index.status());
  if (flags.format == "json") {
    std::string out = "[";
    for (size_t i = 0; i < index->size(); ++i) {
      const auto& e = (*index)[i];
      if (i > 0) out += ",";
      out += "{\"name\":";
      AppendJsonString(e.name, &out);
      out += ",\"version\":";
      AppendJsonString(e.version, &out);
      out += ",\"state\":";
      AppendJsonString(e.state, &out);
      if (!e.reason.empty()) {
        out += ",\"reason\":";
        AppendJsonString(e.reason, &out);
      }
      out += "}";
    }
    std::cout << out << "]\n";
    return std::nullopt;
  }
  std::vector<std::vector<std::string>> rows = {{"MODEL", "VERSION", "STATE", "REASON"}};
  for (const auto& e : *index) rows.push_back({e.name, e.version, e.state, e.reason});
  PrintTable(rows);
  return std::nullopt;
}

std::optional<Failure> Metadata(Client& client, const Flags& flags) {
  auto metadata = client.GetModelMetadata(flags.model, flags.version);
  if (!metadata.ok()) return ServerError(metadata.status());
  if (flags.format == "json") {
    std::string out = "{\"name\":";
    AppendJsonString(metadata->name, &out);
    out += ",\"versions\":[";
    for (size_t i = 0; i < metadata->versions.size(); ++i) {
      if (i > 0) out += ",";
      AppendJsonString(metadata->versions[i], &out);
    }
    out += "],\"platform\":";
    AppendJsonString(metadata->platform, &out);
    for (const char* key : {"inputs", "outputs"}) {
      const auto& tensors = std::string_view(key) == "inputs" ? metadata->inputs : metadata->outputs;
      out += StrCat(",\"", key, "\":[");
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (i > 0) out += ",";
        out += "{\"name\":";
        AppendJsonString(tensors[i].name, &out);
        out += StrCat(",\"datatype\":\"", DataTypeName(tensors[i].type), "\",\"shape\":[",
                      StrJoin(tensors[i].shape, ","), "]}");
      }
      out += "]";
    }
    std::cout << out << "}\n";
    return std::nullopt;
  }
  std::cout << "model: " << metadata->name << "\nversions: " << StrJoin(metadata->versions, ", ")
            << "\nplatform: " << metadata->platform << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"TENSOR", "KIND", "DATATYPE", "SHAPE"}};
  for (const auto& t : metadata->inputs) rows.push_back({t.name, "input", std::string(DataTypeName(t.type)), ShapeText(t.shape)});
  for (const auto& t : metadata->outputs) rows.push_back({t.name, "output", std::string(DataTypeName(t.type)), ShapeText(t.shape)});
  PrintTable(rows);
  return std::nullopt;
}

std::optional<Failure> Infer(Client& client, const Flags& flags) {
  InferRequest request;
  request.model_name = flags.model;
  request.model_version = flags.version;
  for (const std::string& spec : flags.inputs) {
    auto tensor = ParseInput(spec);
    if (!tensor.ok()) return UsageError(std::string(ToStd(tensor.status().message())));
    request.inputs.push_back(std::move(*tensor));
  }
  for (const std::string& name : flags.outputs) {
    RequestedOutput output;
    output.name = name;
    output.classification = flags.classification;
    request.outputs.push_back(std::move(output));
  }
  auto response = client.Infer(request);
  if (!response.ok()) return ServerError(response.status());
  if (flags.format == "json") {
    // The server's own encoder: the same KServe-shaped JSON the REST API writes.
    InferRequest as_json;
    auto encoded = frontend::EncodeInferResponse(*response, as_json);
    if (!encoded.ok()) return ServerError(encoded.status());
    std::cout << encoded->json << "\n";
    return std::nullopt;
  }
  std::cout << "model: " << response->model_name << "  version: " << response->model_version << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"OUTPUT", "DATATYPE", "SHAPE", "VALUES"}};
  for (const Tensor& t : response->outputs) {
    std::vector<std::string_view> strings;
    size_t count = 0;
    if (t.type == DataType::kBytes) {
      auto split = SplitBytesElements(t.data, -1, t.name);
      if (!split.ok()) return ServerError(split.status());
      strings = std::move(*split);
      count = strings.size();
    } else if (DataTypeSize(t.type) > 0) {
      count = t.data.size() / DataTypeSize(t.type);
    }
    std::string values = "[";
    for (size_t i = 0; i < count && i < flags.max_values; ++i) {
      if (i > 0) values += ", ";
      values += ElementText(t, i, strings);
    }
    if (count > flags.max_values) values += StrCat(", ... (", count, " values)");
    values += "]";
    rows.push_back({t.name, std::string(DataTypeName(t.type)), ShapeText(t.shape), values});
  }
  PrintTable(rows);
  return std::nullopt;
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"ortserve-cli: a KServe v2 client for ortserve (and any KServe v2 / Triton server)", "ortserve-cli"};
  app.require_subcommand(1);
  app.add_option("--url", flags.url, "server host:port (default 127.0.0.1:8000 for http, 127.0.0.1:8001 for grpc)");
  app.add_option("--protocol", flags.protocol, "http or grpc")->check(CLI::IsMember({"http", "grpc"}))->capture_default_str();
  app.add_option("--format", flags.format, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", flags.timeout_s, "seconds a call may take")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--json-tensors", flags.json_tensors,
               "http: send tensors as JSON data instead of the binary tensor extension");
  // TLS and credentials (docs/security.md). Secrets are better passed in the
  // environment than on a command line others can read in `ps`.
  app.add_flag("--tls", flags.tls, "use TLS (https / gRPC over TLS), verifying the server against the system's CAs");
  app.add_option("--tls-ca-file", flags.tls_ca_file, "CA bundle (PEM) the server's certificate must chain to; implies --tls")
      ->envname("ORTSERVE_TLS_CA_FILE");
  app.add_option("--tls-cert-file", flags.tls_cert_file, "client certificate (PEM) for mutual TLS; implies --tls")
      ->envname("ORTSERVE_TLS_CERT_FILE");
  app.add_option("--tls-key-file", flags.tls_key_file, "the client certificate's private key (PEM)")
      ->envname("ORTSERVE_TLS_KEY_FILE");
  app.add_option("--api-key", flags.api_key, "API key, sent as X-API-Key (env ORTSERVE_API_KEY)")
      ->envname("ORTSERVE_API_KEY");
  app.add_option("--bearer-token", flags.bearer_token,
                 "bearer token (a JWT), sent as Authorization: Bearer (env ORTSERVE_BEARER_TOKEN)")
      ->envname("ORTSERVE_BEARER_TOKEN");

  auto* health = app.add_subcommand("health", "exit 0 when the server is live and ready");
  auto* models = app.add_subcommand("models", "list every model version and its state");
  auto* metadata = app.add_subcommand("metadata", "a model's inputs and outputs");
  metadata->add_option("model", flags.model, "model name")->required();
  metadata->add_option("--model-version", flags.version, "model version (default: the server's choice)");
  auto* infer = app.add_subcommand("infer", "run one inference");
  infer->add_option("model", flags.model, "model name")->required();
  infer->add_option("--model-version", flags.version, "model version (default: the server's choice)");
  infer->add_option("-i,--input", flags.inputs,
                    "name=shape:datatype:data; data is an inline JSON array, @file.json, or @file (raw "
                    "little-endian bytes). Repeat for each input.")
      ->required();
  infer->add_option("-o,--output", flags.outputs, "an output to return (repeatable; default: all)");
  infer->add_option("--classification", flags.classification, "return the top K classes of each requested output");
  infer->add_option("--max-values", flags.max_values, "table format: values shown per output")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsageError;
  }

  ClientOptions options;
  auto protocol = client::ParseProtocol(flags.protocol);
  options.protocol = *protocol;  // Checked by CLI11 above.
  options.port = options.protocol == client::Protocol::kHttp ? 8000 : 8001;
  options.timeout = absl::Seconds(flags.timeout_s);
  options.binary_http = !flags.json_tensors;
  options.tls = flags.tls || flags.url.starts_with("https://");
  options.tls_ca_file = flags.tls_ca_file;
  options.tls_cert_file = flags.tls_cert_file;
  options.tls_key_file = flags.tls_key_file;
  options.api_key = flags.api_key;
  options.bearer_token = flags.bearer_token;
  if (!flags.url.empty()) {
    if (absl::Status parsed = ParseUrl(flags.url, &options); !parsed.ok()) {
      std::cerr << "error: " << ToStd(parsed.message()) << "\n";
      return kUsageError;
    }
  }
  auto created = Client::Create(options);
  if (!created.ok()) {
    std::cerr << "error: " << ToStd(created.status().message()) << "\n";
    return kUsageError;
  }
  Client& client = **created;

  std::optional<Failure> failure;
  if (health->parsed()) failure = Health(client, flags);
  if (models->parsed()) failure = Models(client, flags);
  if (metadata->parsed()) failure = Metadata(client, flags);
  if (infer->parsed()) failure = Infer(client, flags);
  if (!failure) return kOk;
  std::cerr << "error: " << failure->message << "\n";
  return failure->exit_code;
}

}  // namespace
}  // namespace ortserve::cli

int main(int argc, char** argv) { return ortserve::cli::Main(argc, argv); }
