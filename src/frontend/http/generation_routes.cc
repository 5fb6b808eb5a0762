// SPDX-License-Identifier: Apache-2.0
// POST /v1/completions and /v1/chat/completions (OpenAI, issue 22): text
// generation on a model with a `generation` block, answered whole or
// streamed as Server-Sent Events over a chunked response.
//
// Each request goes to its model's continuous batcher (one decode loop per
// model, generation/continuous_batcher.h), never to an I/O thread: the
// loop calls back with the start, each piece of text and the end. A whole
// answer is posted back to the connection's thread. A stream's events are
// formatted on the decode loop into the request's feed, in its event loop's
// GenerationOutbox, which the decode loop flushes once per step: one
// wake-up per event loop and step hands every stream of that loop its
// text, however many streams it has, and a stream whose last write is
// still in flight gets the new events in its next write. A stream's head
// goes out when the sequence joins the batch, so a request refused while
// waiting for room in the key/value cache gets a plain 429.
#include <charconv>
#include <chrono>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/execution_context.hpp"

#include "core/json_writer.h"
#include "core/strings.h"
#include "frontend/generate_request.h"
#include "frontend/http/connection.h"
#include "frontend/http/http_server.h"
#include "frontend/http/openai_generation.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/http/triton_generation.h"
#include "generation/generation_config.h"
#include "generation/session_store.h"
#include "repository/model_version.h"

namespace ortserve::frontend {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

std::string SseEvent(std::string_view data) { return StrCat("data: ", data, "\n\n"); }

// `data` as one chunk of a chunked body.
void AppendHttpChunk(std::string_view data, std::string* out) {
  char size[20];
  const auto end = std::to_chars(size, size + sizeof(size), data.size(), 16).ptr;
  out->append(size, end).append("\r\n").append(data).append("\r\n");
}

}  // namespace

// The streamed generations of one event loop on their way from the decode
// loops (any number of models) to the loop's connections. A decode loop
// queues each stream's events (whole HTTP chunks) in the stream's feed and
// lists the stream as ready; its Flush at the end of a step posts one drain
// to the event loop, unless one is already posted and not yet run. The drain
// hands each ready stream's feed to its connection, which writes it (or
// appends it to the write after the one in flight). The buffers swap
// between the feed and the connection instead of being copied, so a warm
// stream allocates nothing per token.
//
// Thread-safe: Queue and Flush on decode loops, Drain on the event loop,
// Close on the thread that shuts the event loop down.
class GenerationOutbox final : public generation::StepOutput,
                               public std::enable_shared_from_this<GenerationOutbox> {
 public:
  explicit GenerationOutbox(net::any_io_executor loop) : loop_(std::move(loop)) {}

  // Appends `event` (if not empty) to `job`'s feed as one chunk; `start`:
  // the stream's head goes first; `last`: the stream ends after it.
  void Queue(const std::shared_ptr<GenerationJob>& job, std::string_view event, bool start, bool last);
  void Flush() override;
  // The event loop is going away: what is queued is dropped, nothing more
  // is posted.
  void Close();

 private:
  void Drain();

  const net::any_io_executor loop_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<GenerationJob>> ready_ ABSL_GUARDED_BY(mu_);  // with a feed to hand over
  bool posted_ ABSL_GUARDED_BY(mu_) = false;  // a Drain is posted and has not taken ready_ yet
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<GenerationJob>> draining_;  // Drain's own (the event loop's thread)
};

namespace {

// One GenerationOutbox per event loop, kept as an Asio service of the
// loop's io_context: created by the loop's first stream, closed when the
// io_context shuts down (before its handlers are destroyed).
class GenerationOutboxes final : public net::execution_context::service {
 public:
  inline static net::execution_context::id id;
  explicit GenerationOutboxes(net::execution_context& context) : net::execution_context::service(context) {}
  // Runs only on the event loop's thread (one thread per io_context).
  const std::shared_ptr<GenerationOutbox>& For(const net::any_io_executor& loop) {
    if (outbox_ == nullptr) outbox_ = std::make_shared<GenerationOutbox>(loop);
    return outbox_;
  }

 private:
  void shutdown() override {
    if (outbox_ != nullptr) outbox_->Close();
  }
  std::shared_ptr<GenerationOutbox> outbox_;
};

}  // namespace

// How one API writes a generation's answers.
struct GenerationAnswer {
  enum class Api { kCompletion, kChat, kTriton };
  Api api = Api::kCompletion;
  CompletionIds ids;      // OpenAI
  std::string version;    // Triton: the version that answered
  bool usage = false;     // OpenAI: stream_options.include_usage

  bool chat() const { return api == Api::kChat; }
  bool triton() const { return api == Api::kTriton; }
  // The data of one streamed piece of text, appended to `out`.
  void AppendChunk(std::string_view delta, bool first, std::string* out) const {
    if (triton()) return AppendTritonGenerateJson(ids.model, version, delta, nullptr, out);
    AppendCompletionChunkJson(chat(), ids, delta, first, nullptr, out);
  }
  // The last events of a stream.
  std::string Tail(const generation::GenerationResult& r, bool first) const {
    if (triton()) return SseEvent(TritonGenerateJson(ids.model, version, "", &r));
    std::string out = SseEvent(CompletionChunkJson(chat(), ids, "", first, &r));
    if (usage) out += SseEvent(UsageChunkJson(chat(), ids, r));
    return out + "data: [DONE]\n\n";
  }
  std::string Whole(const generation::GenerationResult& r) const {
    if (triton()) return TritonGenerateJson(ids.model, version, r.text, &r);
    return CompletionJson(chat(), ids, r);
  }
  std::string ErrorBody(std::string_view message, unsigned status) const {
    return triton() ? TritonError(message) : OpenAiError(message, status);
  }
  // An error after the stream's head: an event (then OpenAI's end marker).
  std::string StreamError(std::string_view message, unsigned status) const {
    if (triton()) return SseEvent(TritonError(message));
    return SseEvent(OpenAiError(message, status)) + "data: [DONE]\n\n";
  }
};

// One request on its way through the batcher. Its callbacks run on the
// model's decode loop; `started` and `first` are touched only there.
struct GenerationJob {
  repository::ModelHandle model;  // pins the version while the sequence runs
  generation::GenerationRequest request;
  GenerationAnswer answer;
  bool stream = false;
  bool started = false;
  bool first = true;
  // A chat in a session: where its turns go once answered.
  generation::SessionStore* sessions = nullptr;
  std::string session_key;
  std::vector<generation::ChatMessage> new_messages;

  // A stream's way to its connection (GenerationOutbox).
  std::shared_ptr<GenerationOutbox> outbox;
  std::shared_ptr<Connection> connection;  // until the stream's end is handed over
  // Guarded by outbox->mu_: what the decode loop queued and the connection
  // has not taken yet (whole chunks), and whether it starts or ends the
  // stream; `queued`: in the outbox's ready list.
  std::string feed;
  bool feed_start = false, feed_last = false, queued = false;
  // The event loop's side of the feed (Drain takes it here).
  std::string taken;
  bool take_start = false, take_last = false;
};

void GenerationOutbox::Queue(const std::shared_ptr<GenerationJob>& job, std::string_view event, bool start,
                             bool last) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (!event.empty()) AppendHttpChunk(event, &job->feed);
  job->feed_start |= start;
  job->feed_last |= last;
  if (!job->queued) {
    job->queued = true;
    ready_.push_back(job);
  }
}

void GenerationOutbox::Flush() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || posted_ || ready_.empty()) return;
    posted_ = true;
  }
  net::post(loop_, [self = shared_from_this()] { self->Drain(); });
}

void GenerationOutbox::Close() {
  std::vector<std::shared_ptr<GenerationJob>> dropped;
  absl::MutexLock lock(&mu_);
  closed_ = true;
  dropped.swap(ready_);
}

void GenerationOutbox::Drain() {
  {
    absl::MutexLock lock(&mu_);
    posted_ = false;
    draining_.swap(ready_);
    for (const auto& job : draining_) {
      job->queued = false;
      job->taken.swap(job->feed);  // `taken` was emptied (capacity kept) by the last hand-over
      job->take_start = std::exchange(job->feed_start, false);
      job->take_last = std::exchange(job->feed_last, false);
    }
  }
  for (const auto& job : draining_) {
    job->connection->DeliverStream(*job);
    if (job->take_last) job->connection.reset();
  }
  draining_.clear();
}

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
  auto job = std::make_shared<GenerationJob>();
  if (chat) {
    // The prompt: the session's history (if any) and the new messages, in
    // the model's chat template.
    const auto header = parser_->get()["X-Session-Id"];
    const std::string session_id = !header.empty() ? std::string(header.data(), header.size()) : parsed->session_id;
    std::vector<generation::ChatMessage> messages;
    size_t history = 0;  // messages[0, history) come from the session
    if (!session_id.empty()) {
      if (options_.sessions == nullptr) return fail(400, "conversation sessions are off on this server");
      if (auto s = generation::SessionStore::CheckId(session_id); !s.ok()) return fail(400, ToStd(s.message()));
      job->sessions = options_.sessions;
      job->session_key = StrCat((*model)->name, "/", session_id);
      messages = options_.sessions->History(job->session_key);
      history = messages.size();
    }
    for (auto& [role, content] : parsed->messages) {
      generation::ChatMessage m{std::move(role), std::move(content), 0};
      if (job->sessions != nullptr) {
        std::vector<int32_t> ids;
        pipeline::BpeEncodeOptions encode;
        encode.max_text_bytes = gen.max_prompt_bytes();
        encode.match_added_tokens = false;
        if (gen.tokenizer().Encode(m.content, encode, &ids).ok()) m.tokens = static_cast<int64_t>(ids.size());
        job->new_messages.push_back(m);
      }
      messages.push_back(std::move(m));
    }
    // The oldest turns of a session that leave no room for max_tokens in the
    // model's context are left out of this prompt (and so are turns whose
    // removal the chat template refuses, e.g. a history that would start
    // with the assistant, as long as there is history to drop).
    const generation::GenerationLimits& limits = gen.generator().limits();
    const int64_t room = limits.max_context_tokens - parsed->max_tokens.value_or(limits.default_max_tokens);
    absl::StatusOr<generation::RenderedChat> chat = gen.RenderChat(messages);
    while (history > 0) {
      if (chat.ok()) {
        job->request.prompt_ids.clear();
        parsed->prompt = chat->text;
        if (auto s = BuildGenerationRequest(*parsed, gen, &job->request, &*chat); !s.ok()) {
          return fail(400, ToStd(s.message()));
        }
        if (static_cast<int64_t>(job->request.prompt_ids.size()) <= room) break;
      }
      messages.erase(messages.begin());
      --history;
      chat = gen.RenderChat(messages);
    }
    if (!chat.ok()) return fail(HttpStatusFor(chat.status().code()), ToStd(chat.status().message()));
    job->request.prompt_ids.clear();
    parsed->prompt = std::move(chat->text);
    chat->text.clear();
    if (auto s = BuildGenerationRequest(*parsed, gen, &job->request, &*chat); !s.ok()) {
      return fail(400, ToStd(s.message()));
    }
  } else if (auto s = BuildGenerationRequest(*parsed, gen, &job->request); !s.ok()) {
    return fail(400, ToStd(s.message()));
  }
  job->answer.api = chat ? GenerationAnswer::Api::kChat : GenerationAnswer::Api::kCompletion;
  job->answer.ids = CompletionIds{StrCat(chat ? "chatcmpl-" : "cmpl-", RequestIdFrom(std::nullopt)), (*model)->name,
                                  std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch()).count()};
  job->answer.usage = parsed->include_usage;
  job->stream = parsed->stream;
  job->model = *std::move(model);
  RunGeneration(std::move(job));
}

void Connection::TritonGenerate(const RouteMatch& route) {
  auto fail = [&](unsigned status, std::string_view message) { Send(Reply{status, kJson, TritonError(message)}); };
  auto parsed = ParseTritonGenerateRequest(parser_->get().body());
  if (!parsed.ok()) return fail(400, ToStd(parsed.status().message()));
  auto model = options_.service->GetModel(route.model, route.version);
  if (!model.ok()) return fail(HttpStatusFor(model.status().code()), ToStd(model.status().message()));
  if ((*model)->generation == nullptr) {
    return fail(400, StrCat("model '", route.model, "' does not generate text (no generation block)"));
  }
  auto job = std::make_shared<GenerationJob>();
  if (auto s = BuildGenerationRequest(*parsed, *(*model)->generation, &job->request); !s.ok()) {
    return fail(400, ToStd(s.message()));
  }
  job->answer.api = GenerationAnswer::Api::kTriton;
  job->answer.ids.model = (*model)->name;
  job->answer.version = (*model)->version_string;
  job->stream = route.id == RouteId::kTritonGenerateStream;
  job->model = *std::move(model);
  RunGeneration(std::move(job));
}

void Connection::GenerationStats(const RouteMatch& route) {
  auto model = options_.service->GetModel(route.model, route.version);
  if (!model.ok()) return Send(Error(model.status()));
  if ((*model)->generation == nullptr) {
    return Send(Error(400, StrCat("model '", route.model, "' does not generate text (no generation block)")));
  }
  const generation::BatcherStats s = (*model)->generation->batcher().stats();
  std::string out = "{\"model_name\":";
  AppendJsonString((*model)->name, &out);
  out.append(",\"model_version\":");
  AppendJsonString((*model)->version_string, &out);
  out += StrCat(",\"steps\":", s.steps, ",\"step_sequences\":", s.step_sequences,
                           ",\"max_step_sequences\":", s.max_step_sequences, ",\"prefill_steps\":",
                           s.prefill_steps, ",\"prefill_sequences\":", s.prefill_sequences, ",\"decode_steps\":",
                           s.decode_steps, ",\"decode_sequences\":", s.decode_sequences, ",\"admit_wait_us\":",
                           s.admit_wait_us, ",\"prefill_run_us\":", s.prefill_run_us, ",\"decode_run_us\":",
                           s.decode_run_us, ",\"decode_rounds\":", s.decode_rounds,
                           ",\"decode_past_tokens\":", s.decode_past_tokens, ",\"decode_padded_tokens\":",
                           s.decode_padded_tokens, ",\"tokens\":", s.tokens,
                           ",\"finished\":{\"length\":", s.finished_length, ",\"stop\":", s.finished_stop,
                           ",\"cancelled\":", s.finished_cancelled, ",\"failed\":", s.failed,
                           "},\"refused\":{\"queue_full\":", s.refused_queue_full, ",\"timeout\":", s.refused_timeout,
                           "},\"running\":", s.running, ",\"waiting\":", s.waiting, ",\"kv_blocks_used\":",
                           s.kv_blocks_used, ",\"kv_blocks_total\":", s.kv_blocks_total, ",\"kv_block_bytes\":",
                           s.kv_block_bytes, "}");
  Send(Ok(std::move(out)));
}

void Connection::RunGeneration(std::shared_ptr<GenerationJob> job) {
  cancellation_ = FreshCancellation();
  auto cancelled = cancellation_;
  generation::ContinuousBatcher::Callbacks callbacks;
  auto self = shared_from_this();
  if (job->stream) {
    job->connection = self;
    job->outbox = net::use_service<GenerationOutboxes>(net::query(stream_.get_executor(), net::execution::context))
                      .For(stream_.get_executor());
    callbacks.output = job->outbox;
    callbacks.on_start = [job] {
      job->started = true;
      job->outbox->Queue(job, {}, /*start=*/true, /*last=*/false);
    };
    callbacks.on_text = [job, cancelled](std::string_view delta) {
      if (cancelled->cancelled()) return false;
      // Formatted here, on the decode loop, into the loop's reused buffer.
      thread_local std::string event;
      event.assign("data: ");
      job->answer.AppendChunk(delta, job->first, &event);
      event.append("\n\n");
      job->first = false;
      job->outbox->Queue(job, event, false, false);
      return true;
    };
  } else {
    callbacks.on_text = [cancelled](std::string_view) { return !cancelled->cancelled(); };
  }
  callbacks.on_done = [self, job](absl::StatusOr<generation::GenerationResult> result) {
    if (job->sessions != nullptr && result.ok() && result->finish != generation::FinishReason::kCancelled) {
      // The exchange joins the session's history only once answered.
      job->new_messages.push_back({"assistant", result->text, result->completion_tokens});
      job->sessions->Append(job->session_key, std::move(job->new_messages));
    }
    const unsigned status = result.ok() ? 200 : HttpStatusFor(result.status().code());
    if (job->started) {  // the stream's head is queued
      const std::string tail = result.ok() ? job->answer.Tail(*result, job->first)
                                           : job->answer.StreamError(ToStd(result.status().message()), status);
      job->outbox->Queue(job, tail, false, /*last=*/true);
      return;
    }
    std::string body = result.ok() ? job->answer.Whole(*result)
                                   : job->answer.ErrorBody(ToStd(result.status().message()), status);
    self->Post([self, status, body = std::move(body)]() mutable {
      self->cancellation_.reset();
      Reply reply{status, kJson, std::move(body)};
      if (status == 429) reply.headers.emplace_back("Retry-After", "1");
      self->Send(std::move(reply));
    });
  };
  generation::ContinuousBatcher& batcher = job->model->generation->batcher();
  generation::GenerationRequest request = std::move(job->request);
  if (absl::Status s = batcher.Submit(std::move(request), cancelled, std::move(callbacks)); !s.ok()) {
    cancellation_.reset();
    const unsigned status = HttpStatusFor(s.code());
    Reply reply{status, kJson, job->answer.ErrorBody(ToStd(s.message()), status)};
    if (status == 429) reply.headers.emplace_back("Retry-After", "1");
    return Send(std::move(reply));
  }
  // Until the head or the answer goes out, a client that hangs up cancels.
  WatchForClose();
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
}

void Connection::DeliverStream(GenerationJob& job) {
  if (job.take_start) StartStream();
  if (sse_.active) {
    if (sse_.pending.empty()) {
      sse_.pending.swap(job.taken);  // the buffers trade places: nothing copied, nothing allocated
    } else {
      sse_.pending.append(job.taken);
    }
    if (job.take_last) {
      sse_.pending.append("0\r\n\r\n");
      sse_.done = true;
    }
    FlushStream();
  }
  job.taken.clear();
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
