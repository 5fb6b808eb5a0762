// SPDX-License-Identifier: Apache-2.0
// POST /v1/completions and /v1/chat/completions (OpenAI, issue 22): text
// generation on a model with a `generation` block, answered whole or
// streamed as Server-Sent Events over a chunked response.
//
// Generation runs on a small pool of worker threads (never on the I/O
// thread); each piece of text is posted back to the connection's thread,
// which writes it. One sequence per request for now: continuous batching
// (sequences joining a running batch per step, DecoderModel::Step) replaces
// the pool in a later step.
#include <charconv>
#include <chrono>
#include <deque>
#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "frontend/http/http_server.h"
#include "frontend/http/openai_generation.h"
#include "frontend/http/pipeline_routes.h"
#include "generation/generation_config.h"
#include "repository/model_version.h"

namespace ortserve::frontend {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

// A fixed pool with a bounded queue: a full queue refuses (429) at once.
//
// Thread-safe. Lives for the process (its threads end at exit).
class GenerationWorkers {
 public:
  static GenerationWorkers& Get() {
    static GenerationWorkers* workers = new GenerationWorkers(2, 64);  // never destroyed: no join at exit
    return *workers;
  }
  bool TrySubmit(std::function<void()> job) {
    absl::MutexLock lock(&mu_);
    if (jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(job));
    return true;
  }

 private:
  GenerationWorkers(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) std::thread([this] { Run(); }).detach();
  }
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(+[](std::deque<std::function<void()>>* q) { return !q->empty(); }, &jobs_));
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
};

std::string SseEvent(std::string_view data) { return StrCat("data: ", data, "\n\n"); }

}  // namespace

void Connection::Completions(RouteId id) {
  const bool chat = id == RouteId::kOpenAiChatCompletions;
  auto fail = [&](unsigned status, std::string_view message) {
    Send(Reply{status, kJson, OpenAiError(message, status)});
  };
  auto parsed = ParseCompletionRequest(parser_->get().body(), chat);
  if (!parsed.ok()) return fail(400, ToStd(parsed.status().message()));
  auto model = options_.service->GetModel(parsed->model, "");
  if (!model.ok()) return fail(HttpStatusFor(model.status().code()), ToStd(model.status().message()));
  if ((*model)->generation == nullptr) {
    return fail(400, StrCat("model '", parsed->model, "' does not generate text (no generation block)"));
  }
  const generation::GenerationModel& gen = *(*model)->generation;
  generation::GenerationRequest request;
  pipeline::BpeEncodeOptions encode;
  encode.max_text_bytes = gen.max_prompt_bytes();
  encode.match_added_tokens = false;  // a client cannot write control tokens
  if (auto s = gen.tokenizer().Encode(parsed->prompt, encode, &request.prompt_ids); !s.ok()) {
    return fail(400, StrCat("prompt: ", ToStd(s.message())));
  }
  request.sampling = gen.default_sampling();
  if (parsed->temperature) request.sampling.temperature = *parsed->temperature;
  if (parsed->top_p) request.sampling.top_p = *parsed->top_p;
  if (parsed->top_k) request.sampling.top_k = *parsed->top_k;
  if (parsed->repetition_penalty) request.sampling.repetition_penalty = *parsed->repetition_penalty;
  if (parsed->seed) {
    request.sampling.has_seed = true;
    request.sampling.seed = *parsed->seed;
  }
  request.max_tokens = parsed->max_tokens.value_or(0);
  request.stop = parsed->stop;
  if (auto s = generation::ValidateRequest(request, gen.generator().limits(), gen.tokenizer().vocab_size());
      !s.ok()) {
    return fail(400, ToStd(s.message()));
  }
  CompletionIds ids{StrCat(chat ? "chatcmpl-" : "cmpl-", RequestIdFrom(std::nullopt)), (*model)->name,
                    std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count()};
  cancellation_ = FreshCancellation();
  auto cancelled = cancellation_;
  const bool stream = parsed->stream;
  const bool usage = parsed->include_usage;
  if (stream) StartStream();
  auto job = [self = shared_from_this(), handle = *model, request = std::move(request), ids, chat, stream, usage,
              cancelled]() mutable {
    bool first = true;
    auto on_text = [&](std::string_view delta) {
      if (cancelled->cancelled()) return false;
      if (stream) {
        std::string event = SseEvent(CompletionChunkJson(chat, ids, delta, first, nullptr));
        first = false;
        self->Post([self, event = std::move(event)]() mutable { self->StreamWrite(std::move(event), false); });
      }
      return true;
    };
    auto result = handle->generation->generator().Generate(request, on_text);
    if (!stream) {
      self->Post([self, result = std::move(result), ids, chat]() mutable {
        self->cancellation_.reset();
        if (!result.ok()) {
          const unsigned status = HttpStatusFor(result.status().code());
          return self->Send(Reply{status, kJson, OpenAiError(ToStd(result.status().message()), status)});
        }
        self->Send(Ok(CompletionJson(chat, ids, *result)));
      });
      return;
    }
    std::string tail;
    if (!result.ok()) {
      tail = SseEvent(OpenAiError(ToStd(result.status().message()), HttpStatusFor(result.status().code())));
    } else {
      tail = SseEvent(CompletionChunkJson(chat, ids, "", first, &*result));
      if (usage) tail += SseEvent(UsageChunkJson(chat, ids, *result));
    }
    tail += "data: [DONE]\n\n";
    self->Post([self, tail = std::move(tail)]() mutable { self->StreamWrite(std::move(tail), true); });
  };
  if (!GenerationWorkers::Get().TrySubmit(std::move(job))) {
    if (stream) {
      // The head is out: the refusal goes as an event.
      return StreamWrite(SseEvent(OpenAiError("too many generations in progress; retry later", 429)) +
                             "data: [DONE]\n\n", true);
    }
    return fail(429, "too many generations in progress; retry later");
  }
  if (!stream) WatchForClose();
}

void Connection::StartStream() {
  if (!audit_action_.empty()) AuditAction(200);
  reply_ = Reply{200, "text/event-stream", ""};
  sse_.pending.clear();
  sse_.pending.append("HTTP/1.1 200 OK\r\nServer: ortserve\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n");
  sse_.pending.append(keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  sse_.active = true;
  sse_.done = false;
  sse_.written = 0;
  FlushStream();
}

void Connection::StreamWrite(std::string event, bool last) {
  if (!sse_.active) return;
  if (!event.empty()) {
    char size[20];
    const auto end = std::to_chars(size, size + sizeof(size), event.size(), 16).ptr;
    sse_.pending.append(size, end).append("\r\n").append(event).append("\r\n");
  }
  if (last) {
    sse_.pending.append("0\r\n\r\n");
    sse_.done = true;
  }
  FlushStream();
}

void Connection::FlushStream() {
  if (sse_.writing || sse_.pending.empty()) return;
  sse_.writing = true;
  sse_.in_flight.swap(sse_.pending);
  sse_.pending.clear();
  const bool finishing = sse_.done;
  StopWatchingForClose();
  ArmDeadline();
  net::async_write(stream_, net::buffer(sse_.in_flight),
                   [self = shared_from_this(), finishing](beast::error_code ec, size_t written) {
                     self->sse_.writing = false;
                     self->sse_.written += written;
                     if (ec) {
                       // The client is gone: generation stops at its next token.
                       if (self->cancellation_) self->cancellation_->Cancel();
                       self->sse_.active = false;
                       self->permit_.Release();
                       self->FinishRecord(self->sse_.written);
                       return self->Close();
                     }
                     if (!finishing || !self->sse_.pending.empty()) {
                       if (!self->sse_.pending.empty()) return self->FlushStream();
                       self->WatchForClose();
                       return;
                     }
                     self->sse_.active = false;
                     self->cancellation_.reset();
                     self->permit_.Release();
                     self->FinishRecord(self->sse_.written);
                     if (self->sse_.in_flight.capacity() > kRetainedBytes) std::string().swap(self->sse_.in_flight);
                     if (!self->keep_alive_) return self->Close();
                     self->ReadHeader();
                   });
}

}  // namespace ortserve::frontend
