// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the whole HTTP front end: the input is the bytes
// a client sends on one connection (any number of requests, well-formed or
// not). They go, over loopback, to a real in-process server on the bundled
// demo models (models/: REST, binary tensors, the SAE/TEI/OpenAI text
// routes, model control in explicit mode), with ONNX Runtime running the
// models. After each input the server must still answer a liveness probe on
// a fresh connection within 10 s: whatever a client sends costs it nothing
// else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "server/server.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

// Started once and never stopped: inputs run back to back on it, as a
// server's clients do. Held here so that it stays reachable (not a leak).
ortserve::server::Server* g_server = nullptr;

uint16_t Port() {
  static const uint16_t port = [] {
    ortserve::server::ServerOptions options;
    const char* source = std::getenv("ORTSERVE_SOURCE_DIR");
    options.model_repository = std::string(source != nullptr ? source : ORTSERVE_SOURCE_DIR_DEFAULT) + "/models";
    options.http_address = "127.0.0.1";
    options.http_port = 0;
    options.grpc_port = -1;
    options.metrics_port = -1;
    options.http_threads = 1;
    options.http_idle_timeout_seconds = 1;
    options.model_control_mode = "explicit";
    options.load_models = {"*"};
    options.log_level = "off";
    options.tokenizer_threads = 1;
    options.ort_intra_op_threads = 1;
    options.ort_allow_spinning = false;
    options.shutdown_grace_seconds = 0;
    auto server = ortserve::server::Server::Start(options);
    Check(server.ok());
    g_server = server.value().release();
    return g_server->http_port();
  }();
  return port;
}

int Connect(uint16_t port, int timeout_seconds) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  Check(fd >= 0);
  timeval timeout{timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Check(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  return fd;
}

// Reads until the server closes or goes quiet for the timeout; with
// FUZZ_SHOW_ANSWERS set, copies what it reads to stderr (for corpus authors).
void Drain(int fd) {
  static const bool show = std::getenv("FUZZ_SHOW_ANSWERS") != nullptr;
  char buffer[16384];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    if (show) (void)!::write(2, buffer, static_cast<size_t>(n));
  }
  if (show) (void)!::write(2, "\n----\n", 6);
}

void CheckAlive(uint16_t port) {
  const int fd = Connect(port, 10);
  static constexpr std::string_view kProbe = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  Check(::send(fd, kProbe.data(), kProbe.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(kProbe.size()));
  char buffer[64] = {};
  const ssize_t n = ::recv(fd, buffer, sizeof(buffer) - 1, 0);
  Check(n >= 12 && std::string_view(buffer, 12) == "HTTP/1.1 200");
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint16_t port = Port();
  const int fd = Connect(port, 3);
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // The server closed (a malformed request) or is slow to read.
    sent += static_cast<size_t>(n);
  }
  // Then one more request that asks the server to close: answers come in
  // order, so once the connection closes every request of the input was
  // answered (a half-close instead would count as a hang-up and drop queued
  // requests before they run). When the input leaves a request unfinished,
  // this is read as its continuation, and the idle timeout (1 s here) ends it.
  static constexpr std::string_view kLast = "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)::send(fd, kLast.data(), kLast.size(), MSG_NOSIGNAL);
  Drain(fd);
  ::close(fd);
  CheckAlive(port);
  return 0;
}
