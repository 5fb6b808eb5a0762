// SPDX-License-Identifier: Apache-2.0
// Test harness: starts the real `ortserve` binary on free loopback ports and
// talks to it over HTTP like a client would.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rapidjson/document.h"

namespace ortserve::testing {

// The source tree and build tree, from the environment CTest sets.
std::string SourceDir();
std::string BinaryDir();
// The `ortserve` binary in the build tree.
std::string ServerBinary();

// A running ortserve process. Destroying it sends SIGTERM and waits.
// Not thread-safe.
class ServerProcess {
 public:
  // Starts `ortserve --http-port 0 --grpc-port -1 --metrics-port -1` plus
  // `args`, and waits (up to `timeout`) for the "listening" lines, which give
  // the bound ports. Errors: Internal when the process exits or the lines do
  // not appear in time (with the process's output in the message).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(std::vector<std::string> args,
                                                              int timeout_seconds = 60);
  ~ServerProcess();

  uint16_t http_port() const { return http_port_; }
  uint16_t grpc_port() const { return grpc_port_; }
  // The Prometheus port, when started with `--metrics-port 0` (or another
  // port); 0 when metrics are off.
  uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  // Everything the server printed so far.
  std::string Output();
  // Sends `signal` and waits for the exit; returns the exit status (or 128+signal).
  int Stop(int signal = 15, int timeout_seconds = 30);

 private:
  ServerProcess() = default;
  void Drain(int timeout_ms);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  uint16_t http_port_ = 0;
  uint16_t grpc_port_ = 0;
  uint16_t metrics_port_ = 0;
};

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1.
// Not thread-safe; use one per thread.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port);
  ~HttpClient();
  HttpResponse Get(const std::string& target);
  HttpResponse Post(const std::string& target, const std::string& body,
                    const std::map<std::string, std::string>& headers = {});
  HttpResponse Request(const std::string& method, const std::string& target, const std::string& body,
                       const std::map<std::string, std::string>& headers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A temporary directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `/usr/bin/python3 -c script` (ONNX model builders in tests); fails the
// process-level Status if the script fails.
absl::Status RunPython(const std::string& script);

// Writes tiny ONNX models y = x + addend (x, y: FP32 [N, 2]) at the given
// model.onnx paths (folders created), in one Python run.
absl::Status WriteAddModels(const std::vector<std::pair<std::string, float>>& path_and_addend);

// `text` parsed as JSON; a parse error fails the current test (and the
// document is then empty).
rapidjson::Document Json(const std::string& text);

// One of a generative model's batcher counters (GET
// /v2/models/{model}/generation_stats on `http_port`), `path` as "steps" or
// "finished.cancelled"; a failed request fails the current test.
double GenerationStat(uint16_t http_port, const std::string& model, const std::string& path);

// The value of the Prometheus series `name` in `exposition` whose labels
// include every `labels` entry (`key="value"`), or -1 when no line matches.
double MetricValue(const std::string& exposition, const std::string& name,
                   const std::vector<std::string>& labels = {});

// Polls `check` every 20 ms until it holds or `seconds` pass (the server
// acts on its own schedule; no fixed sleeps). Returns the last result.
bool WaitUntil(const std::function<bool()>& check, int seconds = 20);

}  // namespace ortserve::testing
