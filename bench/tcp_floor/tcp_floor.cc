// SPDX-License-Identifier: Apache-2.0
// tcp_floor: the transport floor under ortserve's low-load latency.
//
//   tcp_floor serve --port P --compute-us D --response-bytes N   (pin it like the server)
//   tcp_floor ping --port P --request-bytes N --seconds S        (pin it like the load generator)
//
// The server accepts one connection and, per request, reads the request,
// keeps its core busy for D microseconds (as a model run would: the core does
// not idle), then writes the response. The client sends one request at a time
// and prints the round trip minus D as JSON: what any server would pay for
// loopback TCP, wake-ups and the two processes' scheduling on this machine,
// before doing any work of its own. Raw ORT's single-run latency has none of
// it, so ortserve's own overhead is its latency over the model time minus this.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;

bool ReadExactly(int fd, char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, data, size, 0);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void NoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int Serve(uint16_t port, int64_t compute_us, size_t request_bytes, size_t response_bytes) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(listener, 1) != 0) {
    std::perror("tcp_floor serve: bind/listen");
    return 1;
  }
  const int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) return 1;
  NoDelay(fd);
  std::vector<char> request(request_bytes), response(response_bytes, 'r');
  while (ReadExactly(fd, request.data(), request.size())) {
    const auto until = Clock::now() + std::chrono::microseconds(compute_us);
    while (Clock::now() < until) {
    }
    if (!WriteAll(fd, response.data(), response.size())) break;
  }
  ::close(fd);
  ::close(listener);
  return 0;
}

int Ping(uint16_t port, int64_t compute_us, size_t request_bytes, size_t response_bytes, double seconds,
         double warmup) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = false;
  for (int attempt = 0; attempt < 200 && !connected; ++attempt) {
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (!connected) ::usleep(10000);
  }
  if (!connected) {
    std::perror("tcp_floor ping: connect");
    return 1;
  }
  NoDelay(fd);
  std::vector<char> request(request_bytes, 'q'), response(response_bytes);
  std::vector<double> overhead_us;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration<double>(warmup);
  const auto end = measure_from + std::chrono::duration<double>(seconds);
  while (true) {
    const auto sent = Clock::now();
    if (sent >= end) break;
    if (!WriteAll(fd, request.data(), request.size()) || !ReadExactly(fd, response.data(), response.size())) {
      std::fprintf(stderr, "tcp_floor ping: connection lost\n");
      return 1;
    }
    if (sent >= measure_from) {
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - sent).count();
      overhead_us.push_back(us - static_cast<double>(compute_us));
    }
  }
  ::close(fd);
  if (overhead_us.empty()) return 1;
  std::sort(overhead_us.begin(), overhead_us.end());
  auto at = [&](double q) { return overhead_us[static_cast<size_t>(q * static_cast<double>(overhead_us.size() - 1))]; };
  double sum = 0;
  for (double v : overhead_us) sum += v;
  std::printf(
      "{\"compute_us\": %lld, \"request_bytes\": %zu, \"response_bytes\": %zu, \"round_trips\": %zu, "
      "\"overhead_us\": {\"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f}}\n",
      static_cast<long long>(compute_us), request_bytes, response_bytes, overhead_us.size(),
      sum / static_cast<double>(overhead_us.size()), at(0.5), at(0.9), at(0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tcp_floor: loopback TCP round trip around a busy server, the floor under network latency"};
  app.require_subcommand(1);
  uint16_t port = 18590;
  int64_t compute_us = 0;
  size_t request_bytes = 2048, response_bytes = 300;
  double seconds = 3, warmup = 0.5;
  for (CLI::App* sub : {app.add_subcommand("serve", "answer one connection"),
                        app.add_subcommand("ping", "send one request at a time and report")}) {
    sub->add_option("--port", port)->capture_default_str();
    sub->add_option("--compute-us", compute_us, "microseconds the server keeps its core busy per request")
        ->capture_default_str();
    sub->add_option("--request-bytes", request_bytes)->capture_default_str();
    sub->add_option("--response-bytes", response_bytes)->capture_default_str();
    sub->add_option("--seconds", seconds)->capture_default_str();
    sub->add_option("--warmup", warmup)->capture_default_str();
  }
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("serve")) return Serve(port, compute_us, request_bytes, response_bytes);
  return Ping(port, compute_us, request_bytes, response_bytes, seconds, warmup);
}
