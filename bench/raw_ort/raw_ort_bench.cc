// SPDX-License-Identifier: Apache-2.0
// raw_ort_bench: the limit for ortserve's benchmarks. Runs one ONNX model with
// ONNX Runtime called directly (no server, no copies beyond ORT's own), with the
// session settings ortserve uses (graph optimization all, sequential execution,
// the given intra-op thread count, spinning on or off), and measures
//  - throughput: back-to-back Run() calls for each batch size, reporting
//    inferences per second; the best over the batch sizes is "the limit";
//  - single-run latency: batch-1 Run() calls, p50/p99/mean.
// Inputs are random, of each input's datatype; the leading dynamic dimension is
// the batch dimension, other dynamic dimensions take --dim (or --shape).
// With --cuda the session runs on ORT's CUDA execution provider (device
// --device-id, options as ortserve's `cuda.*` parameters via --cuda-option);
// inputs stay in host memory as a server's would, so each Run() includes the
// copies to and from the device.
// Output: text on stdout, JSON with --json-out ("provider": "cuda" or "cpu").
//
// Thread-safety: single-threaded program (ORT's intra-op pool aside).
// Errors: a message on stderr and exit status 1; exit status 2 when --cuda is
// given and the CUDA execution provider cannot be loaded (no provider library,
// no CUDA runtime, no device).
#include <onnxruntime_cxx_api.h>

#include <time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "CLI/CLI.hpp"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace ortserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct InputSpec {
  std::string name;
  ONNXTensorElementDataType type;
  std::vector<int64_t> shape;  // -1 where dynamic.
};

size_t ElementSize(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return 8;
    default: return 0;
  }
}

// Random element bytes: floats uniform in [0, 1), integers in [0, int_max],
// booleans 0/1, FP16 as the halves of [0, 1).
std::vector<uint8_t> RandomBytes(ONNXTensorElementDataType type, size_t count, int64_t int_max, std::mt19937_64& rng) {
  const size_t size = ElementSize(type);
  std::vector<uint8_t> out(count * size);
  std::uniform_int_distribution<int64_t> integer(0, int_max);
  std::uniform_real_distribution<float> real(0.0f, 1.0f);
  for (size_t i = 0; i < count; ++i) {
    uint8_t* p = out.data() + i * size;
    switch (type) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: {
        float f = real(rng);
        std::memcpy(p, &f, 4);
        break;
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: {
        double d = real(rng);
        std::memcpy(p, &d, 8);
        break;
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: {
        // Exponent 14 (0.5..1) with a random mantissa: a valid half in [0.5, 1).
        uint16_t h = static_cast<uint16_t>((14u << 10) | (rng() & 0x3ffu));
        std::memcpy(p, &h, 2);
        break;
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: *p = rng() & 1; break;
      default: {
        int64_t v = integer(rng);
        std::memcpy(p, &v, size);  // Little-endian: the low bytes.
        break;
      }
    }
  }
  return out;
}

// CPU time of the whole process (the caller and ORT's pool threads), in
// microseconds: on a shared machine it separates "ORT needed this much work"
// from "the scheduler gave us the core this late".
double ProcessCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Stats {
  double p50_us = 0, p99_us = 0, mean_us = 0;
};

Stats Summarize(std::vector<double> us) {
  Stats s;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * static_cast<double>(us.size())))]; };
  s.p50_us = at(0.50);
  s.p99_us = at(0.99);
  double sum = 0;
  for (double v : us) sum += v;
  s.mean_us = sum / static_cast<double>(us.size());
  return s;
}

struct Options {
  std::string model;
  int threads = 1;
  bool allow_spinning = true;
  bool per_session_threads = false;
  std::string batches = "1,2,4,8,16,24,32,48,64";
  double seconds = 3.0;
  int latency_runs = 300;
  int64_t dim = 1;
  std::vector<int64_t> dims;  // Per dynamic non-batch dimension, in input order; then `dim`.
  int64_t int_max = 100;
  std::string json_out;
  std::string optimized_model_out;  // the graph after ORT's optimizations (fusions), for inspection
  std::string profile_prefix;       // ORT's per-node profile (JSON trace) of every run, written at exit
  bool cuda = false;
  int device_id = 0;
  std::vector<std::string> cuda_options;  // key=value, as ortserve's `cuda.<key>` parameters.
};

// Exit status when --cuda is given and the provider cannot be loaded.
constexpr int kNoCudaExitCode = 2;

// Appends the CUDA execution provider the way ortserve's session factory does
// (device_id, then the given provider options). Returns 0, or the exit status
// after a message on stderr: 1 for a malformed --cuda-option, kNoCudaExitCode
// when the provider cannot be used here.
int AppendCuda(const Options& o, Ort::SessionOptions& so) {
  std::unordered_map<std::string, std::string> values{{"device_id", std::to_string(o.device_id)}};
  for (const std::string& kv : o.cuda_options) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "raw_ort_bench: --cuda-option \"%s\": expected key=value\n", kv.c_str());
      return 1;
    }
    values[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  try {
    Ort::CUDAProviderOptions cuda;
    cuda.Update(values);
    so.AppendExecutionProvider_CUDA_V2(*cuda);
    return 0;
  } catch (const Ort::Exception& e) {
    std::string reason = e.what();
    while (!reason.empty() && std::isspace(static_cast<unsigned char>(reason.back()))) reason.pop_back();
    std::fprintf(stderr,
                 "raw_ort_bench: --cuda: the CUDA execution provider (device %d) cannot be loaded: %s\n"
                 "  (it needs libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so beside\n"
                 "  libonnxruntime.so.1 -- ORT_WITH_CUDA=1 scripts/setup.sh -- plus CUDA 13, cuDNN 9 and a GPU)\n",
                 o.device_id, reason.c_str());
    return kNoCudaExitCode;
  }
}

int Run(const Options& o) {
  // ortserve runs its sessions on the Env's shared (global) thread pools; do the
  // same unless asked for per-session pools.
  Ort::ThreadingOptions threading;
  threading.SetGlobalIntraOpNumThreads(o.threads);
  threading.SetGlobalInterOpNumThreads(1);
  threading.SetGlobalSpinControl(o.allow_spinning ? 1 : 0);
  Ort::Env env = o.per_session_threads ? Ort::Env(ORT_LOGGING_LEVEL_WARNING, "raw_ort_bench")
                                       : Ort::Env(threading, ORT_LOGGING_LEVEL_WARNING, "raw_ort_bench");
  Ort::SessionOptions so;
  if (o.per_session_threads) {
    so.SetIntraOpNumThreads(o.threads);
    so.SetInterOpNumThreads(1);
  } else {
    so.DisablePerSessionThreads();
  }
  so.SetExecutionMode(ORT_SEQUENTIAL);
  so.SetGraphOptimizationLevel(ORT_ENABLE_ALL);
  if (!o.optimized_model_out.empty()) so.SetOptimizedModelFilePath(o.optimized_model_out.c_str());
  if (!o.profile_prefix.empty()) so.EnableProfiling(o.profile_prefix.c_str());
  so.AddConfigEntry("session.intra_op.allow_spinning", o.allow_spinning ? "1" : "0");
  if (o.cuda) {
    if (const int status = AppendCuda(o, so); status != 0) return status;
  }
  Ort::Session session(env, o.model.c_str(), so);

  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<InputSpec> inputs;
  std::vector<std::string> output_names;
  for (size_t i = 0; i < session.GetInputCount(); ++i) {
    Ort::TypeInfo type_info = session.GetInputTypeInfo(i);  // Must outlive `info`, a view into it.
    auto info = type_info.GetTensorTypeAndShapeInfo();
    inputs.push_back({session.GetInputNameAllocated(i, allocator).get(), info.GetElementType(), info.GetShape()});
  }
  for (size_t i = 0; i < session.GetOutputCount(); ++i) {
    output_names.push_back(session.GetOutputNameAllocated(i, allocator).get());
  }
  std::vector<const char*> in_names, out_names;
  for (auto& in : inputs) in_names.push_back(in.name.c_str());
  for (auto& n : output_names) out_names.push_back(n.c_str());

  std::mt19937_64 rng(1);
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  // Inputs for one batch size; the buffers outlive the tensors that view them.
  struct Batch {
    std::vector<std::vector<uint8_t>> buffers;
    std::vector<Ort::Value> values;
  };
  auto make_batch = [&](int64_t batch) {
    Batch b;
    for (const InputSpec& in : inputs) {
      std::vector<int64_t> shape = in.shape;
      size_t next_dim = 0;
      for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] >= 0) continue;
        if (d == 0) {
          shape[d] = batch;
        } else {
          shape[d] = next_dim < o.dims.size() ? o.dims[next_dim] : o.dim;
          ++next_dim;
        }
      }
      size_t count = 1;
      for (int64_t d : shape) count *= static_cast<size_t>(d);
      b.buffers.push_back(RandomBytes(in.type, count, o.int_max, rng));
      b.values.push_back(Ort::Value::CreateTensor(memory, b.buffers.back().data(), b.buffers.back().size(),
                                                  shape.data(), shape.size(), in.type));
    }
    return b;
  };
  auto run_once = [&](Batch& b) {
    return session.Run(Ort::RunOptions{nullptr}, in_names.data(), b.values.data(), b.values.size(),
                       out_names.data(), out_names.size());
  };

  std::vector<int64_t> batch_sizes;
  {
    std::stringstream ss(o.batches);
    std::string item;
    while (std::getline(ss, item, ',')) batch_sizes.push_back(std::stoll(item));
  }
  const bool batched = !inputs.empty() && !inputs[0].shape.empty() && inputs[0].shape[0] < 0;
  if (!batched) batch_sizes = {inputs.empty() || inputs[0].shape.empty() ? 1 : inputs[0].shape[0]};

  // Single-run latency at batch 1 (or the fixed batch).
  Batch one = make_batch(batch_sizes.front() == 1 || !batched ? batch_sizes.front() : 1);
  for (int i = 0; i < 20; ++i) run_once(one);
  std::vector<double> lat, cpu;
  for (int i = 0; i < o.latency_runs; ++i) {
    const double c0 = ProcessCpuUs();
    auto t0 = Clock::now();
    run_once(one);
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    cpu.push_back(ProcessCpuUs() - c0);
  }
  const Stats single = Summarize(lat);
  const Stats single_cpu = Summarize(cpu);
  std::printf("raw ORT %s, %s, %d intra-op thread(s)\n", o.model.c_str(),
              o.cuda ? ("CUDA device " + std::to_string(o.device_id)).c_str() : "CPU", o.threads);
  std::printf("  single run (batch %lld): p50 %.1f us  p99 %.1f us  mean %.1f us\n",
              static_cast<long long>(one.values[0].GetTensorTypeAndShapeInfo().GetShape()[0]), single.p50_us,
              single.p99_us, single.mean_us);
  std::printf("  single run CPU time: p50 %.1f us  mean %.1f us (wall above CPU: waiting for the core)\n",
              single_cpu.p50_us, single_cpu.mean_us);

  struct Point {
    int64_t batch;
    double inferences_per_s;
    double run_p50_us;
    // Inferences per second of process CPU time: what the core would give
    // without competing processes (equals inferences_per_s on a quiet machine).
    double inferences_per_cpu_s;
  };
  std::vector<Point> points;
  Point best{0, 0, 0, 0};
  for (int64_t bs : batch_sizes) {
    Batch b = make_batch(bs);
    run_once(b);  // Warm-up: first run at a new shape plans memory.
    run_once(b);
    std::vector<double> runs;
    const double cpu_start = ProcessCpuUs();
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(o.seconds);
    int64_t n = 0;
    while (Clock::now() < until || n < 3) {
      auto t0 = Clock::now();
      run_once(b);
      runs.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      ++n;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_s = (ProcessCpuUs() - cpu_start) / 1e6;
    Point p{bs, static_cast<double>(n * bs) / elapsed, Summarize(runs).p50_us,
            static_cast<double>(n * bs) / cpu_s};
    std::printf("  batch %3lld: %9.1f inferences/s, %9.1f per CPU-second  (run p50 %.1f us, %lld runs)\n",
                static_cast<long long>(bs), p.inferences_per_s, p.inferences_per_cpu_s, p.run_p50_us,
                static_cast<long long>(n));
    points.push_back(p);
    if (p.inferences_per_s > best.inferences_per_s) best = p;
  }
  std::printf("  best: %.1f inferences/s at batch %lld\n", best.inferences_per_s, static_cast<long long>(best.batch));

  if (!o.json_out.empty()) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    w.SetMaxDecimalPlaces(3);
    w.StartObject();
    w.Key("model"); w.String(o.model.c_str());
    w.Key("provider"); w.String(o.cuda ? "cuda" : "cpu");
    if (o.cuda) {
      w.Key("device_id"); w.Int(o.device_id);
      w.Key("cuda_options");
      w.StartObject();
      for (const std::string& kv : o.cuda_options) {
        const size_t eq = kv.find('=');
        w.Key(kv.substr(0, eq).c_str());
        w.String(kv.substr(eq + 1).c_str());
      }
      w.EndObject();
    }
    w.Key("intra_op_threads"); w.Int(o.threads);
    w.Key("allow_spinning"); w.Bool(o.allow_spinning);
    w.Key("ort_version"); w.String(Ort::GetVersionString().c_str());
    w.Key("single_run_us");
    w.StartObject();
    w.Key("p50"); w.Double(single.p50_us);
    w.Key("p99"); w.Double(single.p99_us);
    w.Key("mean"); w.Double(single.mean_us);
    w.Key("runs"); w.Int(o.latency_runs);
    w.EndObject();
    w.Key("single_run_cpu_us");
    w.StartObject();
    w.Key("p50"); w.Double(single_cpu.p50_us);
    w.Key("mean"); w.Double(single_cpu.mean_us);
    w.EndObject();
    w.Key("throughput");
    w.StartArray();
    for (const Point& p : points) {
      w.StartObject();
      w.Key("batch"); w.Int64(p.batch);
      w.Key("inferences_per_s"); w.Double(p.inferences_per_s);
      w.Key("run_p50_us"); w.Double(p.run_p50_us);
      w.Key("inferences_per_cpu_s"); w.Double(p.inferences_per_cpu_s);
      w.EndObject();
    }
    w.EndArray();
    w.Key("best_inferences_per_s"); w.Double(best.inferences_per_s);
    w.Key("best_batch"); w.Int64(best.batch);
    w.EndObject();
    std::ofstream out(o.json_out, std::ios::binary);
    out << buffer.GetString() << "\n";
    if (!out) {
      std::fprintf(stderr, "raw_ort_bench: --json-out %s: cannot write\n", o.json_out.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace ortserve::bench

int main(int argc, char** argv) {
  ortserve::bench::Options o;
  CLI::App app{"raw_ort_bench: ONNX Runtime throughput and latency without a server"};
  app.add_option("--model", o.model, "model.onnx")->required()->check(CLI::ExistingFile);
  app.add_option("--threads", o.threads, "Intra-op threads (ortserve --intra-op-thread-count)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--allow-spinning", o.allow_spinning, "Intra-op pool spinning (ortserve --ort-allow-spinning)")
      ->capture_default_str();
  app.add_flag("--per-session-threads", o.per_session_threads,
               "Give the session its own thread pool instead of the Env's shared one (ortserve's way)");
  app.add_option("--batches", o.batches, "Batch sizes for the throughput sweep")->capture_default_str();
  app.add_option("--seconds", o.seconds, "Seconds per batch size")->capture_default_str();
  app.add_option("--latency-runs", o.latency_runs, "Batch-1 runs for the latency figures")->capture_default_str();
  app.add_option("--dim", o.dim, "Value for dynamic non-batch dimensions")->capture_default_str();
  app.add_option("--dims", o.dims,
                 "Values for an input's dynamic non-batch dimensions in order (e.g. 48,192); the rest take --dim")
      ->delimiter(',');
  app.add_option("--int-max", o.int_max, "Random integer inputs lie in [0, int-max]")->capture_default_str();
  app.add_option("--json-out", o.json_out, "Write the results as JSON here");
  app.add_option("--optimized-model-out", o.optimized_model_out,
                 "Write the model as ONNX Runtime optimized it (fused kernels) here");
  app.add_option("--profile", o.profile_prefix,
                 "ONNX Runtime's per-node profile of all runs: <prefix>_<date>.json (slows the runs down)");
  app.add_flag("--cuda", o.cuda, "Run on ORT's CUDA execution provider (exit status 2 if it cannot be loaded)");
  app.add_option("--device-id", o.device_id, "CUDA device for --cuda")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--cuda-option", o.cuda_options,
                 "CUDA provider option key=value for --cuda (repeatable), e.g. cudnn_conv_algo_search=HEURISTIC");
  CLI11_PARSE(app, argc, argv);
  try {
    return ortserve::bench::Run(o);
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "raw_ort_bench: %s\n", e.what());
    return 1;
  }
}
