// SPDX-License-Identifier: Apache-2.0
// RedisProcess: a real Debian `redis-server` started by a test on a free
// loopback port, with no persistence; Stop and Start again keep the port, so
// a test can take Redis away in the middle of a run and bring it back.
// Header-only (plain sockets, no hiredis), for unit and integration tests.
// Not thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace ortserve::testing {

class RedisProcess {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";

  RedisProcess() : port_(FreePort()) {}
  ~RedisProcess() { Stop(); }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  static bool Available() { return access(kBinary, X_OK) == 0; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool running() const { return pid_ > 0; }

  // Starts it and waits (up to 10 s) until it answers PING.
  bool Start() {
    if (pid_ > 0) return true;
    const std::string port = std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      execl(kBinary, kBinary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--logfile", "/dev/null", "--daemonize", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ < 0) return false;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (Ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // SIGKILL (an outage as abrupt as they come) and wait.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Whether it answers PING with +PONG.
  bool Ping() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
      timeval timeout{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      static constexpr char kPing[] = "PING\r\n";
      char reply[16] = {};
      ok = write(fd, kPing, sizeof(kPing) - 1) == sizeof(kPing) - 1 && read(fd, reply, sizeof(reply) - 1) >= 5 &&
           std::string(reply, 5) == "+PONG";
    }
    close(fd);
    return ok;
  }

 private:
  static uint16_t FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
    close(fd);
    return port;
  }

  uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace ortserve::testing
