// SPDX-License-Identifier: Apache-2.0
// Text generation over gRPC ModelStreamInfer (issue 22), as Triton serves its
// decoupled LLM backends, on the real ortserve binary with a real gRPC
// client: tokens come one response at a time before a final response marked
// `triton_final_response`, their text is what /generate answers (greedy),
// a bad request gets an error on the stream and the stream goes on, and a
// client that cancels its stream frees the sequence's key/value blocks at
// once. Also the generation batcher's Prometheus series after these runs.
//
// Models: the demo decoder (models/tiny_decoder), and an untrained decoder
// with a 2048-token context (scripts/generation/export_untrained_decoder.py)
// so that a generation is still running when the test cancels it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::testing {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

constexpr int64_t kSlowBlockBytes = 2 * 4 * 4 * 16 * 64 * 4;  // 2 x layers x heads x 16 tokens x head_dim x FP32
constexpr int64_t kSlowPoolBlocks = 250;                       // two requests of 1,900 tokens (119 blocks each)

class GenerationGrpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(RunPython("import shutil, subprocess\n"
                          "shutil.copytree('" + SourceDir() + "/models/tiny_decoder', '" + dir_->path() +
                          "/tiny_decoder')\n"
                          "subprocess.check_call(['/usr/bin/python3', '" + SourceDir() +
                          "/scripts/generation/export_untrained_decoder.py', '" + dir_->path() +
                          "', '--generation', 'kv_cache_bytes=" + std::to_string(kSlowBlockBytes * kSlowPoolBlocks) +
                          "', '--generation', 'kv_block_tokens=16'])\n")
                    .ok());
    auto server = ServerProcess::Start(
        {"--model-repository", dir_->path(), "--grpc-port", "0", "--metrics-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
    stub_ = GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port())).release();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete server_;
    delete dir_;
  }
  // A number of a model's batcher counters (GET .../generation_stats), `path`
  // as "steps" or "finished.cancelled".
  static double Stat(const std::string& model, const std::string& path) {
    return GenerationStat(server_->http_port(), model, path);
  }
  static TempDir* dir_;
  static ServerProcess* server_;
  static GRPCInferenceService::Stub* stub_;
};
TempDir* GenerationGrpcTest::dir_ = nullptr;
ServerProcess* GenerationGrpcTest::server_ = nullptr;
GRPCInferenceService::Stub* GenerationGrpcTest::stub_ = nullptr;

const std::string kPrompt = "I have been feeling";

// A generate request as Triton's clients send one to a vLLM model: every
// input raw, `text_input` BYTES, the sampling choices as one-element inputs.
ModelInferRequest GenerateRequest(const std::string& model, const std::string& id, const std::string& prompt,
                                  int32_t max_tokens, bool stream) {
  ModelInferRequest request;
  request.set_model_name(model);
  request.set_id(id);
  auto* text = request.add_inputs();
  text->set_name("text_input");
  text->set_datatype("BYTES");
  text->add_shape(1);
  request.add_raw_input_contents(RawBytes({prompt}));
  AddRawInput<int32_t>(&request, "max_tokens", "INT32", {1}, {max_tokens});
  AddRawInput<float>(&request, "temperature", "FP32", {1}, {0.0f});
  AddRawInput<uint8_t>(&request, "stream", "BOOL", {1}, {static_cast<uint8_t>(stream ? 1 : 0)});
  return request;
}

bool IsFinal(const ModelInferResponse& r) {
  auto it = r.parameters().find("triton_final_response");
  EXPECT_TRUE(it != r.parameters().end()) << r.ShortDebugString();
  return it != r.parameters().end() && it->second.bool_param();
}

std::string TextOf(const ModelInferResponse& r) {
  bool found = false;
  const std::vector<std::string> elements = SplitRawBytes(RawOutput(r, "text_output", &found));
  EXPECT_TRUE(found) << r.ShortDebugString();
  EXPECT_EQ(elements.size(), 1u);
  return elements.empty() ? "" : elements[0];
}

// Reads one request's responses up to its final one.
std::vector<ModelStreamInferResponse> ReadUntilFinal(
    grpc::ClientReaderWriter<ModelInferRequest, ModelStreamInferResponse>* stream) {
  std::vector<ModelStreamInferResponse> out;
  ModelStreamInferResponse response;
  while (stream->Read(&response)) {
    out.push_back(response);
    if (IsFinal(response.infer_response())) break;
  }
  return out;
}

// The exposition's value of `series` (`name{labels}`), or -1.
double Series(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string Scrape(uint16_t port) {
  HttpClient client(port);
  auto res = client.Get("/metrics");
  EXPECT_EQ(res.status, 200u) << res.body;
  return res.body;
}

TEST_F(GenerationGrpcTest, TokensStreamOneByOneThenAFinalResponseWithTheGenerateText) {
  // /generate's greedy answer, whole.
  HttpClient client(server_->http_port());
  auto res = client.Post("/v2/models/tiny_decoder/generate",
                         R"({"text_input":")" + kPrompt + R"(","parameters":{"max_tokens":40,"temperature":0}})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto whole = Json(res.body);
  const std::string want = whole["text_output"].GetString();
  ASSERT_FALSE(want.empty());

  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  ASSERT_TRUE(stream->Write(GenerateRequest("tiny_decoder", "gen-1", kPrompt, 40, true)));
  const auto responses = ReadUntilFinal(stream.get());
  ASSERT_GE(responses.size(), 3u);  // pieces of text, then the final response
  std::string text;
  for (size_t i = 0; i < responses.size(); ++i) {
    const ModelInferResponse& r = responses[i].infer_response();
    EXPECT_TRUE(responses[i].error_message().empty()) << responses[i].error_message();
    EXPECT_EQ(r.id(), "gen-1");
    EXPECT_EQ(r.model_name(), "tiny_decoder");
    EXPECT_EQ(r.model_version(), "1");
    ASSERT_EQ(r.outputs_size(), 1);
    EXPECT_EQ(r.outputs(0).datatype(), "BYTES");
    EXPECT_EQ(IsFinal(r), i + 1 == responses.size()) << i;
    const std::string piece = TextOf(r);
    if (i + 1 < responses.size()) {
      EXPECT_FALSE(piece.empty()) << i;  // one piece of text each
    }
    text += piece;
  }
  EXPECT_EQ(text, want);
  const auto& last = responses.back().infer_response().parameters();
  EXPECT_EQ(last.at("finish_reason").string_param(), std::string(whole["finish_reason"].GetString()));
  EXPECT_EQ(last.at("completion_tokens").int64_param(), whole["completion_tokens"].GetInt64());
  EXPECT_EQ(last.at("prompt_tokens").int64_param(), whole["prompt_tokens"].GetInt64());

  // Without `stream` (the default), one final response with the whole text;
  // the choices as request parameters this time.
  ModelInferRequest request;
  request.set_model_name("tiny_decoder");
  request.set_id("gen-2");
  auto* input = request.add_inputs();
  input->set_name("text_input");
  input->set_datatype("BYTES");
  input->add_shape(1);
  input->mutable_contents()->add_bytes_contents(kPrompt);
  (*request.mutable_parameters())["max_tokens"].set_int64_param(40);
  (*request.mutable_parameters())["temperature"].set_double_param(0);
  ASSERT_TRUE(stream->Write(request));
  const auto one = ReadUntilFinal(stream.get());
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].infer_response().id(), "gen-2");
  EXPECT_EQ(TextOf(one[0].infer_response()), want);
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GenerationGrpcTest, ABadRequestGetsAnErrorOnTheStreamWhichGoesOn) {
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  auto expect_error = [&](ModelInferRequest request, const std::string& id, const std::string& part) {
    request.set_id(id);
    ASSERT_TRUE(stream->Write(request));
    ModelStreamInferResponse response;
    ASSERT_TRUE(stream->Read(&response)) << id;
    EXPECT_NE(response.error_message().find(part), std::string::npos) << id << ": " << response.error_message();
    EXPECT_EQ(response.infer_response().id(), id);
    EXPECT_TRUE(IsFinal(response.infer_response())) << id;
  };
  ModelInferRequest bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  bad.set_raw_input_contents(2, std::string("\0\0\x80\xbf", 4));  // temperature -1
  expect_error(bad, "bad-temperature", "temperature");
  expect_error(GenerateRequest("tiny_decoder", "", kPrompt, 250, true), "bad-max-tokens", "max_tokens");
  expect_error(GenerateRequest("tiny_decoder", "", kPrompt, 0, true), "zero-max-tokens", "max_tokens");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  AddRawInput<int32_t>(&bad, "input_ids", "INT64", {1}, {1, 2});  // not an input of a generative model
  expect_error(bad, "unknown-input", "input_ids");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  bad.mutable_inputs(0)->set_name("prompt");
  expect_error(bad, "no-text", "prompt");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  bad.set_raw_input_contents(0, std::string("\xff\xff\xff\x7f", 4) + "x");  // a length past the end
  expect_error(bad, "bad-bytes", "text_input");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  std::vector<std::string> stops(65, "x");
  auto* stop = bad.add_inputs();
  stop->set_name("stop");
  stop->set_datatype("BYTES");
  stop->add_shape(65);
  bad.add_raw_input_contents(RawBytes(stops));
  expect_error(bad, "too-many-stops", "stop");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  (*bad.mutable_parameters())["temperature"].set_string_param("hot");
  expect_error(bad, "string-temperature", "temperature");
  bad = GenerateRequest("tiny_decoder", "", kPrompt, 8, true);
  (*bad.mutable_parameters())["beam_width"].set_int64_param(4);
  expect_error(bad, "unknown-parameter", "beam_width");
  // The stream is still good.
  ASSERT_TRUE(stream->Write(GenerateRequest("tiny_decoder", "good", kPrompt, 8, false)));
  const auto good = ReadUntilFinal(stream.get());
  ASSERT_EQ(good.size(), 1u);
  EXPECT_TRUE(good[0].error_message().empty()) << good[0].error_message();
  EXPECT_EQ(good[0].infer_response().id(), "good");
  EXPECT_FALSE(TextOf(good[0].infer_response()).empty());
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GenerationGrpcTest, CancellingTheStreamFreesTheSequencesBlocksAtOnce) {
  const double cancelled_before = Stat("slow_decoder", "finished.cancelled");
  const double tokens_before = Stat("slow_decoder", "tokens");
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  ModelInferRequest request = GenerateRequest("slow_decoder", "long", "my mom", 1900, true);
  AddRawInput<uint8_t>(&request, "ignore_eos", "BOOL", {1}, {1});
  ASSERT_TRUE(stream->Write(request));
  ModelStreamInferResponse first;
  ASSERT_TRUE(stream->Read(&first));
  EXPECT_TRUE(first.error_message().empty()) << first.error_message();
  EXPECT_FALSE(IsFinal(first.infer_response()));
  // The first token arrived while the sequence runs: "my mom" + 1,900 tokens
  // hold 119 blocks of 16 (the stats' `running` is updated after each step,
  // so it may lag the first token by one).
  EXPECT_EQ(Stat("slow_decoder", "kv_blocks_used"), 119);
  EXPECT_TRUE(WaitUntil([] { return Stat("slow_decoder", "running") == 1; }));
  const auto cancel_at = std::chrono::steady_clock::now();
  context->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitUntil([] { return Stat("slow_decoder", "kv_blocks_used") == 0; }));
  const double freed_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - cancel_at).count();
  EXPECT_LT(freed_after, 2.0);  // before the next step, not at the end of 1,900 tokens
  EXPECT_EQ(Stat("slow_decoder", "finished.cancelled"), cancelled_before + 1);
  EXPECT_EQ(Stat("slow_decoder", "running"), 0);
  EXPECT_LT(Stat("slow_decoder", "tokens") - tokens_before, 1900);
  // The server still answers on a new stream.
  auto context2 = Context();
  auto stream2 = stub_->ModelStreamInfer(context2.get());
  ASSERT_TRUE(stream2->Write(GenerateRequest("tiny_decoder", "after", kPrompt, 4, false)));
  const auto after = ReadUntilFinal(stream2.get());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(after[0].error_message().empty()) << after[0].error_message();
  stream2->WritesDone();
  EXPECT_TRUE(stream2->Finish().ok());
}

// Two generations on one stream run together; each response names its
// request, and each request ends with its own final response.
TEST_F(GenerationGrpcTest, GenerationsOnOneStreamInterleaveByTheirIds) {
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  ASSERT_TRUE(stream->Write(GenerateRequest("tiny_decoder", "a", kPrompt, 30, true)));
  ASSERT_TRUE(stream->Write(GenerateRequest("tiny_decoder", "b", "my mom", 30, true)));
  ASSERT_TRUE(stream->WritesDone());
  std::map<std::string, std::string> text;
  std::map<std::string, int> finals;
  ModelStreamInferResponse response;
  while (stream->Read(&response)) {
    ASSERT_TRUE(response.error_message().empty()) << response.error_message();
    const std::string& id = response.infer_response().id();
    EXPECT_EQ(finals[id], 0) << "a response after the final one of " << id;
    text[id] += TextOf(response.infer_response());
    if (IsFinal(response.infer_response())) ++finals[id];
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(finals["a"], 1);
  EXPECT_EQ(finals["b"], 1);
  HttpClient client(server_->http_port());
  for (const auto& [id, prompt] : {std::pair<std::string, std::string>{"a", kPrompt}, {"b", "my mom"}}) {
    auto res = client.Post("/v2/models/tiny_decoder/generate",
                           R"({"text_input":")" + prompt + R"(","max_tokens":30,"temperature":0})");
    ASSERT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(text[id], std::string(Json(res.body)["text_output"].GetString())) << id;
  }
}

// The batcher's Prometheus series count what a user sees in the answers.
TEST_F(GenerationGrpcTest, PrometheusSeriesCountTheTokensAndGaugesReturnToZero) {
  const std::string labels = R"({model="tiny_decoder",version="1"})";
  const std::string before = Scrape(server_->metrics_port());
  HttpClient client(server_->http_port());
  int64_t completion = 0, prompt = 0;
  for (int max_tokens : {5, 12, 30}) {
    auto res = client.Post("/v2/models/tiny_decoder/generate", R"({"text_input":")" + kPrompt +
                                                                    R"(","max_tokens":)" +
                                                                    std::to_string(max_tokens) + "}");
    ASSERT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    completion += doc["completion_tokens"].GetInt64();
    prompt += doc["prompt_tokens"].GetInt64();
  }
  // And a streamed one over gRPC.
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  ASSERT_TRUE(stream->Write(GenerateRequest("tiny_decoder", "m", kPrompt, 20, true)));
  const auto responses = ReadUntilFinal(stream.get());
  ASSERT_FALSE(responses.empty());
  const auto& last = responses.back().infer_response().parameters();
  completion += last.at("completion_tokens").int64_param();
  prompt += last.at("prompt_tokens").int64_param();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  const std::string after = Scrape(server_->metrics_port());
  auto delta = [&](const std::string& name) { return Series(after, name + labels) - Series(before, name + labels); };
  EXPECT_EQ(delta("ortserve_generation_tokens_generated_total"), completion);
  EXPECT_EQ(delta("ortserve_generation_prompt_tokens_total"), prompt);
  EXPECT_EQ(delta("ortserve_generation_time_to_first_token_seconds_count"), 4);
  EXPECT_EQ(delta("ortserve_generation_inter_token_latency_seconds_count"), completion - 4);
  EXPECT_EQ(Series(after, "ortserve_generation_running_sequences" + labels), 0);
  EXPECT_EQ(Series(after, "ortserve_generation_waiting_requests" + labels), 0);
  EXPECT_EQ(Series(after, "ortserve_generation_kv_blocks_used" + labels), 0);
  EXPECT_EQ(Series(after, "ortserve_generation_kv_blocks_total" + labels), Stat("tiny_decoder", "kv_blocks_total"));
  EXPECT_EQ(Series(after, "ortserve_generation_steps_total" + labels), Stat("tiny_decoder", "steps"));
  // The cancelled stream of the slow model, by reason.
  EXPECT_GE(Series(after, R"(ortserve_generation_sequences_finished_total{model="slow_decoder",reason="cancelled",version="1"})"),
            Stat("slow_decoder", "finished.cancelled"));
}

}  // namespace
}  // namespace ortserve::testing
