// SPDX-License-Identifier: Apache-2.0
#include "integration/server_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string_view>
#include <thread>

#include "core/strings.h"

namespace ortserve::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string SourceDir() {
  const char* dir = std::getenv("ORTSERVE_SOURCE_DIR");
  return dir ? dir : ORTSERVE_SOURCE_DIR_DEFAULT;
}
std::string BinaryDir() {
  const char* dir = std::getenv("ORTSERVE_BINARY_DIR");
  return dir ? dir : ORTSERVE_BINARY_DIR_DEFAULT;
}
std::string ServerBinary() { return BinaryDir() + "/src/server/ortserve"; }

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(std::vector<std::string> args,
                                                                    int timeout_seconds) {
  std::vector<std::string> argv = {ServerBinary()};
  auto has = [&](std::string_view flag) {
    for (const auto& a : args) {
      if (a == flag) return true;
    }
    return false;
  };
  // Loopback only, unless a test binds elsewhere on purpose.
  if (!has("--http-address")) argv.insert(argv.end(), {"--http-address", "127.0.0.1"});
  if (!has("--grpc-address")) argv.insert(argv.end(), {"--grpc-address", "127.0.0.1"});
  if (!has("--http-port")) argv.insert(argv.end(), {"--http-port", "0"});
  // gRPC only when a test asks for it (--grpc-port 0).
  if (!has("--grpc-port")) argv.insert(argv.end(), {"--grpc-port", "-1"});
  if (!has("--metrics-port")) argv.insert(argv.end(), {"--metrics-port", "-1"});
  argv.insert(argv.end(), args.begin(), args.end());

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::unique_ptr<ServerProcess> process(new ServerProcess());
  process->pid_ = fork();
  if (process->pid_ == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  process->out_fd_ = pipe_fds[0];
  fcntl(process->out_fd_, F_SETFL, O_NONBLOCK);

  const std::regex http_re("HTTP listening on [^ :\"]*:([0-9]+)[^0-9]");
  const std::regex grpc_re("gRPC listening on [^ :\"]*:([0-9]+)[^0-9]");
  const bool grpc_off = [&] {
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--grpc-port" && argv[i + 1] == "-1") return true;
    }
    return false;
  }();
  const bool http_off = [&] {
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--http-port" && argv[i + 1] == "-1") return true;
    }
    return false;
  }();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    process->Drain(100);
    std::smatch m;
    if (!http_off && process->http_port_ == 0 && std::regex_search(process->output_, m, http_re)) {
      process->http_port_ = static_cast<uint16_t>(std::stoi(m[1]));
    }
    if (!grpc_off && process->grpc_port_ == 0 && std::regex_search(process->output_, m, grpc_re)) {
      process->grpc_port_ = static_cast<uint16_t>(std::stoi(m[1]));
    }
    if ((http_off || process->http_port_ != 0) && (grpc_off || process->grpc_port_ != 0)) {
      // The metrics server starts before the models load, so its line is out.
      const std::regex metrics_re(R"(metrics listening on [^ "\n]*:([0-9]+))");
      if (std::regex_search(process->output_, m, metrics_re)) {
        process->metrics_port_ = static_cast<uint16_t>(std::stoi(m[1]));
      }
      // The listening lines come just before readiness is switched on; give
      // the server a moment so tests do not see a start-up 503. A server that
      // stays unready (a test of readiness itself) is returned all the same.
      if (!http_off) {
        HttpClient client(process->http_port_);
        const auto ready_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (client.Get("/v2/health/ready").status != 200 && std::chrono::steady_clock::now() < ready_by) {
          process->Drain(20);
        }
      }
      return process;
    }
    int status = 0;
    if (waitpid(process->pid_, &status, WNOHANG) == process->pid_) {
      process->pid_ = -1;
      process->Drain(0);
      return absl::InternalError(StrCat("ortserve exited during start-up:\n", process->output_));
    }
  }
  return absl::InternalError(StrCat("ortserve did not report its ports in time:\n", process->output_));
}

void ServerProcess::Drain(int timeout_ms) {
  if (out_fd_ < 0) return;
  pollfd fd{out_fd_, POLLIN, 0};
  if (poll(&fd, 1, timeout_ms) <= 0) return;
  char buf[4096];
  for (;;) {
    ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    output_.append(buf, static_cast<size_t>(n));
  }
}

std::string ServerProcess::Output() {
  Drain(0);
  return output_;
}

int ServerProcess::Stop(int signal, int timeout_seconds) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    Drain(20);
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
  }
  Drain(0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

ServerProcess::~ServerProcess() {
  Stop();
  if (out_fd_ >= 0) close(out_fd_);
}

struct HttpClient::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  uint16_t port;
  bool connected = false;

  void Connect() {
    if (connected) return;
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    connected = true;
  }
};

HttpClient::HttpClient(uint16_t port) : impl_(std::make_unique<Impl>()) { impl_->port = port; }
HttpClient::~HttpClient() = default;

HttpResponse HttpClient::Get(const std::string& target) { return Request("GET", target, "", {}); }
HttpResponse HttpClient::Post(const std::string& target, const std::string& body,
                              const std::map<std::string, std::string>& headers) {
  return Request("POST", target, body, headers);
}

HttpResponse HttpClient::Request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      impl_->Connect();
      http::request<http::string_body> req(http::string_to_verb(method), target, 11);
      req.set(http::field::host, "127.0.0.1");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      impl_->stream.expires_after(std::chrono::seconds(60));
      http::write(impl_->stream, req);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1ull << 32);
      http::read(impl_->stream, impl_->buffer, parser);
      auto res = parser.release();
      HttpResponse out;
      out.status = res.result_int();
      for (const auto& field : res) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        out.headers[name] = std::string(field.value());
      }
      out.body = std::move(res.body());
      if (!res.keep_alive()) {
        beast::error_code ignored;
        impl_->stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
        impl_->stream.close();
        impl_->connected = false;
      }
      return out;
    } catch (const std::exception& e) {
      // A server-closed keep-alive connection: reconnect once.
      impl_->stream.close();
      impl_->connected = false;
      impl_->buffer.clear();
      if (attempt == 1) return HttpResponse{0, {}, e.what()};
    }
  }
  return {};
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ortserve-test-XXXXXX").string();
  path_ = mkdtemp(pattern.data());
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::Status RunPython(const std::string& script) {
  std::string file = (std::filesystem::temp_directory_path() / ("ortserve-py-" + std::to_string(getpid()) + ".py")).string();
  {
    FILE* f = fopen(file.c_str(), "w");
    fwrite(script.data(), 1, script.size(), f);
    fclose(f);
  }
  int rc = std::system(("/usr/bin/python3 " + file).c_str());
  std::filesystem::remove(file);
  if (rc != 0) return absl::InternalError(StrCat("python script failed with status ", rc));
  return absl::OkStatus();
}

absl::Status WriteAddModels(const std::vector<std::pair<std::string, float>>& path_and_addend) {
  std::string script = R"(
import os
import onnx
from onnx import helper, TensorProto
def make(path, addend):
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 2])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])
    c = helper.make_tensor('c', TensorProto.FLOAT, [1], [addend])
    graph = helper.make_graph([helper.make_node('Add', ['x', 'c'], ['y'])], 'add', [x], [y], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
)";
  for (const auto& [path, addend] : path_and_addend) {
    script += StrCat("make('", path, "', ", addend, ")\n");
  }
  return RunPython(script);
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) ADD_FAILURE() << "not JSON: " << text.substr(0, 500);
  return doc;
}

double GenerationStat(uint16_t http_port, const std::string& model, const std::string& path) {
  HttpClient client(http_port);
  auto res = client.Get("/v2/models/" + model + "/generation_stats");
  EXPECT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  const size_t dot = path.find('.');
  const rapidjson::Value* value = &doc;
  for (const std::string& key : {path.substr(0, dot), dot == std::string::npos ? "" : path.substr(dot + 1)}) {
    if (key.empty()) break;
    if (!value->IsObject() || !value->HasMember(key.c_str())) {
      ADD_FAILURE() << "no '" << path << "' in " << res.body;
      return -1;
    }
    value = &(*value)[key.c_str()];
  }
  return value->IsNumber() ? value->GetDouble() : -1;
}

double MetricValue(const std::string& exposition, const std::string& name, const std::vector<std::string>& labels) {
  size_t at = 0;
  while (at < exposition.size()) {
    size_t end = exposition.find('\n', at);
    if (end == std::string::npos) end = exposition.size();
    const std::string_view line(exposition.data() + at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#' || line.substr(0, name.size()) != name) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) continue;
    bool all = true;
    for (const auto& label : labels) all &= line.find(label) != std::string_view::npos;
    if (!all) continue;
    return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return -1;
}

bool WaitUntil(const std::function<bool()>& check, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return check();
}

}  // namespace ortserve::testing
