// SPDX-License-Identifier: Apache-2.0
// raw_ort_decoder_bench: the limit for ortserve's generation benchmarks. A
// greedy decode loop over a decoder-only model exported with its key/value
// cache (input_ids, attention_mask, position_ids, past_key_values.{i}.key /
// .value -> logits, present.{i}.key / .value), ONNX Runtime called directly:
// per round, one prefill of `batch` copies of the prompt, then
// `new_tokens - 1` decode steps, each feeding the previous step's present
// tensors back as the past (no copy beyond ORT's own) and the argmax of each
// row as the next input. Tokens per second = batch * new_tokens per round
// over the wall time of --seconds of rounds per batch size, and per
// CPU-second of the process (on a shared machine the wall figure depends on
// the share of a core the scheduler gives).
// The session settings are ortserve's (shared Env pool of --threads intra-op
// threads, graph optimization all, sequential execution, spinning as given).
//
// Output: a line per batch size on stdout, JSON with --json-out.
// Thread-safety: single-threaded program (ORT's pool aside).
// Errors: a message on stderr, exit status 1.
#include <onnxruntime_cxx_api.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace {

using Clock = std::chrono::steady_clock;

double CpuSeconds() {  // this process, every thread
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Options {
  std::string model;
  std::vector<int64_t> batches{1, 8, 32};
  std::vector<int64_t> prompt{40, 318, 423, 587, 4203};  // token ids; any ids below the vocabulary
  int64_t new_tokens = 64;
  double seconds = 5;
  int threads = 1;
  bool allow_spinning = true;
  std::string json_out;
};

struct Result {
  int64_t batch = 0;
  int64_t rounds = 0;
  double tokens_per_s = 0;       // over all rounds
  double tokens_per_cpu_s = 0;   // per CPU-second of the process (a busy machine shares cores)
  double step_ms_decode = 0;     // mean decode step
  double step_ms_prefill = 0;    // mean prefill step
  std::vector<int64_t> first_row;  // row 0's generated ids of the last round
};

class Decoder {
 public:
  Decoder(Ort::Env& env, const Options& o) : session_(nullptr) {
    Ort::SessionOptions so;
    so.DisablePerSessionThreads();
    so.SetExecutionMode(ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(ORT_ENABLE_ALL);
    so.AddConfigEntry("session.intra_op.allow_spinning", o.allow_spinning ? "1" : "0");
    session_ = Ort::Session(env, o.model.c_str(), so);
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < session_.GetInputCount(); ++i) {
      std::string name = session_.GetInputNameAllocated(i, alloc).get();
      if (name == "position_ids") has_positions_ = true;
      if (name.rfind("past_key_values.", 0) == 0) {
        auto shape = session_.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape();
        heads_ = shape[1];
        head_dim_ = shape[3];
        past_names_.push_back(name);
      }
    }
    out_names_.push_back("logits");
    for (const std::string& p : past_names_) {
      out_names_.push_back("present" + p.substr(std::string("past_key_values").size()));
    }
  }

  // One round: prefill then decode; returns row 0's tokens.
  std::vector<int64_t> Round(int64_t batch, const std::vector<int64_t>& prompt, int64_t new_tokens,
                             double* prefill_s, double* decode_s) {
    const int64_t p = static_cast<int64_t>(prompt.size());
    std::vector<int64_t> ids, positions, mask;
    for (int64_t b = 0; b < batch; ++b) {
      ids.insert(ids.end(), prompt.begin(), prompt.end());
      for (int64_t i = 0; i < p; ++i) positions.push_back(i);
    }
    mask.assign(static_cast<size_t>(batch * p), 1);
    std::vector<Ort::Value> past;
    std::vector<float> empty;
    const std::vector<int64_t> past_shape{batch, heads_, 0, head_dim_};
    for (size_t t = 0; t < past_names_.size(); ++t) {
      past.push_back(Ort::Value::CreateTensor<float>(memory_, empty.data(), 0, past_shape.data(), 4));
    }
    std::vector<int64_t> row0;
    int64_t seq = p, total = p;
    for (int64_t step = 0; step < new_tokens; ++step) {
      const auto start = Clock::now();
      std::vector<Ort::Value> in;
      std::vector<const char*> in_names{"input_ids", "attention_mask"};
      const std::vector<int64_t> ids_shape{batch, seq}, mask_shape{batch, total};
      in.push_back(Ort::Value::CreateTensor<int64_t>(memory_, ids.data(), ids.size(), ids_shape.data(), 2));
      in.push_back(Ort::Value::CreateTensor<int64_t>(memory_, mask.data(), mask.size(), mask_shape.data(), 2));
      if (has_positions_) {
        in_names.push_back("position_ids");
        in.push_back(Ort::Value::CreateTensor<int64_t>(memory_, positions.data(), positions.size(), ids_shape.data(), 2));
      }
      for (size_t t = 0; t < past_names_.size(); ++t) {
        in_names.push_back(past_names_[t].c_str());
        in.push_back(std::move(past[t]));
      }
      std::vector<const char*> out_names;
      for (const std::string& n : out_names_) out_names.push_back(n.c_str());
      std::vector<Ort::Value> out =
          session_.Run(run_options_, in_names.data(), in.data(), in.size(), out_names.data(), out_names.size());
      // Greedy: the argmax of each row's last position.
      const auto shape = out[0].GetTensorTypeAndShapeInfo().GetShape();
      const int64_t vocab = shape[2];
      const float* logits = out[0].GetTensorData<float>();
      ids.assign(static_cast<size_t>(batch), 0);
      for (int64_t b = 0; b < batch; ++b) {
        const float* row = logits + (b * seq + seq - 1) * vocab;
        ids[b] = std::max_element(row, row + vocab) - row;
      }
      row0.push_back(ids[0]);
      positions.assign(static_cast<size_t>(batch), total);
      for (size_t t = 0; t < past_names_.size(); ++t) past[t] = std::move(out[1 + t]);
      seq = 1;
      total += 1;
      mask.assign(static_cast<size_t>(batch * total), 1);
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      (step == 0 ? *prefill_s : *decode_s) += s;
    }
    return row0;
  }

 private:
  Ort::Session session_;
  Ort::RunOptions run_options_;
  Ort::MemoryInfo memory_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  bool has_positions_ = false;
  int64_t heads_ = 0, head_dim_ = 0;
  std::vector<std::string> past_names_, out_names_;
};

int Run(const Options& o) {
  Ort::ThreadingOptions threading;
  threading.SetGlobalIntraOpNumThreads(o.threads);
  threading.SetGlobalInterOpNumThreads(1);
  threading.SetGlobalSpinControl(o.allow_spinning ? 1 : 0);
  Ort::Env env(threading, ORT_LOGGING_LEVEL_WARNING, "raw_ort_decoder_bench");
  Decoder decoder(env, o);
  std::vector<Result> results;
  for (int64_t batch : o.batches) {
    Result r;
    r.batch = batch;
    double prefill = 0, decode = 0;
    decoder.Round(batch, o.prompt, std::min<int64_t>(o.new_tokens, 4), &prefill, &decode);  // warm-up
    prefill = decode = 0;
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds();
    do {
      r.first_row = decoder.Round(batch, o.prompt, o.new_tokens, &prefill, &decode);
      ++r.rounds;
    } while (std::chrono::duration<double>(Clock::now() - start).count() < o.seconds);
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    r.tokens_per_s = static_cast<double>(r.rounds * batch * o.new_tokens) / wall;
    r.tokens_per_cpu_s = static_cast<double>(r.rounds * batch * o.new_tokens) / (CpuSeconds() - cpu_start);
    r.step_ms_prefill = 1e3 * prefill / r.rounds;
    r.step_ms_decode = o.new_tokens > 1 ? 1e3 * decode / (r.rounds * (o.new_tokens - 1)) : 0;
    std::printf("batch %3lld: %9.1f tokens/s  %9.1f tokens/CPU-s  prefill %.3f ms  decode step %.3f ms  (%lld rounds)\n",
                static_cast<long long>(batch), r.tokens_per_s, r.tokens_per_cpu_s, r.step_ms_prefill, r.step_ms_decode,
                static_cast<long long>(r.rounds));
    results.push_back(std::move(r));
  }
  if (!o.json_out.empty()) {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("model"); w.String(o.model.c_str());
    w.Key("threads"); w.Int(o.threads);
    w.Key("prompt_tokens"); w.Int64(static_cast<int64_t>(o.prompt.size()));
    w.Key("new_tokens"); w.Int64(o.new_tokens);
    w.Key("results");
    w.StartArray();
    for (const Result& r : results) {
      w.StartObject();
      w.Key("batch"); w.Int64(r.batch);
      w.Key("rounds"); w.Int64(r.rounds);
      w.Key("tokens_per_s"); w.Double(r.tokens_per_s);
      w.Key("tokens_per_cpu_s"); w.Double(r.tokens_per_cpu_s);
      w.Key("prefill_ms"); w.Double(r.step_ms_prefill);
      w.Key("decode_step_ms"); w.Double(r.step_ms_decode);
      w.Key("row0_ids");
      w.StartArray();
      for (int64_t id : r.first_row) w.Int64(id);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::ofstream(o.json_out) << sb.GetString() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Greedy decode loop over a decoder with a key/value cache, ONNX Runtime called directly"};
  app.add_option("--model", o.model, "model.onnx")->required();
  app.add_option("--batch", o.batches, "batch sizes")->delimiter(',');
  app.add_option("--prompt-ids", o.prompt, "prompt token ids")->delimiter(',');
  app.add_option("--new-tokens", o.new_tokens, "tokens generated per sequence (the first by the prefill)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--seconds", o.seconds, "measured seconds per batch size");
  app.add_option("--threads", o.threads, "intra-op threads");
  app.add_option("--allow-spinning", o.allow_spinning, "intra-op pool spinning");
  app.add_option("--json-out", o.json_out, "JSON results");
  CLI11_PARSE(app, argc, argv);
  try {
    return Run(o);
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "raw_ort_decoder_bench: %s\n", e.what());
    return 1;
  }
}
