// SPDX-License-Identifier: Apache-2.0
// The generation series: their families (made with the first generative
// model version) and the decode loop's recording into them.
#include "observability/generation_metrics.h"

#include "observability/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ortserve::observability {

struct Metrics::GenerationFamilies {
  explicit GenerationFamilies(prometheus::Registry& r)
      : waiting(MakeGauge(r, "ortserve_generation_waiting_requests",
                      "Generation requests waiting for room in the key/value cache pool.")),
        running(MakeGauge(r, "ortserve_generation_running_sequences",
                      "Sequences in the continuous batcher's running batch.")),
        kv_blocks_used(MakeGauge(r, "ortserve_generation_kv_blocks_used",
                             "Key/value cache blocks reserved by running sequences.")),
        kv_blocks_total(MakeGauge(r, "ortserve_generation_kv_blocks_total",
                              "Key/value cache blocks in the pool of the loaded version.")),
        prompt_tokens(MakeCounter(r, "ortserve_generation_prompt_tokens_total",
                              "Prompt tokens of the sequences admitted to the running batch.")),
        tokens(MakeCounter(r, "ortserve_generation_tokens_generated_total",
                       "Tokens sampled (end-of-sequence tokens included).")),
        steps(MakeCounter(r, "ortserve_generation_steps_total", "Model runs of the decode loop (prefill and decode).")),
        step_sequences(MakeCounter(r, "ortserve_generation_step_sequences_total",
                               "Sequences summed over the decode loop's model runs (mean batch: / steps).")),
        decode_past_tokens(MakeCounter(r, "ortserve_generation_decode_past_tokens_total",
                                   "Tokens of past the decode runs' rows held.")),
        decode_padded_tokens(MakeCounter(r, "ortserve_generation_decode_padded_tokens_total",
                                     "Row-tokens the decode runs padded their past to (padding share: "
                                     "1 - past / padded).")),
        refused(MakeCounter(r, "ortserve_generation_requests_refused_total",
                        "Generation requests refused for want of room (queue_full, timeout).")),
        ended(MakeCounter(r, "ortserve_generation_sequences_finished_total",
                      "Sequences that ran and ended, by reason (length, stop, cancelled, failed).")),
        time_to_first_token(&prometheus::BuildHistogram()
                                 .Name("ortserve_generation_time_to_first_token_seconds")
                                 .Help("Time from a generation request being queued to its first token, in seconds.")
                                 .Register(r)),
        inter_token(&prometheus::BuildHistogram()
                         .Name("ortserve_generation_inter_token_latency_seconds")
                         .Help("Time between two consecutive tokens of one sequence, in seconds.")
                         .Register(r)) {}

  static prometheus::Family<prometheus::Gauge>* MakeGauge(prometheus::Registry& r, const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r);
  }
  static prometheus::Family<prometheus::Counter>* MakeCounter(prometheus::Registry& r, const char* name,
                                                          const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(r);
  }

  prometheus::Family<prometheus::Gauge>* waiting;
  prometheus::Family<prometheus::Gauge>* running;
  prometheus::Family<prometheus::Gauge>* kv_blocks_used;
  prometheus::Family<prometheus::Gauge>* kv_blocks_total;
  prometheus::Family<prometheus::Counter>* prompt_tokens;
  prometheus::Family<prometheus::Counter>* tokens;
  prometheus::Family<prometheus::Counter>* steps;
  prometheus::Family<prometheus::Counter>* step_sequences;
  prometheus::Family<prometheus::Counter>* decode_past_tokens;
  prometheus::Family<prometheus::Counter>* decode_padded_tokens;
  prometheus::Family<prometheus::Counter>* refused;
  prometheus::Family<prometheus::Counter>* ended;
  prometheus::Family<prometheus::Histogram>* time_to_first_token;
  prometheus::Family<prometheus::Histogram>* inter_token;
};

GenerationMetrics* Metrics::ForGeneration(std::string_view model, std::string_view version) {
  absl::MutexLock lock(&mu_);
  auto& slot = generations_[{std::string(model), std::string(version)}];
  if (slot) return slot.get();
  if (!generation_families_) generation_families_ = std::make_shared<GenerationFamilies>(*registry_);
  GenerationFamilies& f = *generation_families_;
  const prometheus::Labels base = {{"model", std::string(model)}, {"version", std::string(version)}};
  std::unique_ptr<GenerationMetrics> g(new GenerationMetrics());
  g->waiting_ = &f.waiting->Add(base);
  g->running_ = &f.running->Add(base);
  g->kv_blocks_used_ = &f.kv_blocks_used->Add(base);
  g->kv_blocks_total_ = &f.kv_blocks_total->Add(base);
  g->prompt_tokens_ = &f.prompt_tokens->Add(base);
  g->tokens_ = &f.tokens->Add(base);
  g->steps_ = &f.steps->Add(base);
  g->step_sequences_ = &f.step_sequences->Add(base);
  g->decode_past_tokens_ = &f.decode_past_tokens->Add(base);
  g->decode_padded_tokens_ = &f.decode_padded_tokens->Add(base);
  for (size_t i = 0; i < kGenerationRefusals.size(); ++i) {
    prometheus::Labels labels = base;
    labels.emplace("reason", std::string(kGenerationRefusals[i]));
    g->refused_[i] = &f.refused->Add(labels);
  }
  for (size_t i = 0; i < kGenerationEnds.size(); ++i) {
    prometheus::Labels labels = base;
    labels.emplace("reason", std::string(kGenerationEnds[i]));
    g->ended_[i] = &f.ended->Add(labels);
  }
  g->time_to_first_token_ = &f.time_to_first_token->Add(base, options_.latency_buckets);
  g->inter_token_ = &f.inter_token->Add(base, options_.latency_buckets);
  slot = std::move(g);
  return slot.get();
}

void GenerationMetrics::AddWaiting(int64_t delta) { waiting_->Increment(static_cast<double>(delta)); }
void GenerationMetrics::AddRunning(int64_t delta) { running_->Increment(static_cast<double>(delta)); }
void GenerationMetrics::AddKvBlocksUsed(int64_t delta) { kv_blocks_used_->Increment(static_cast<double>(delta)); }
void GenerationMetrics::AddKvBlocksTotal(int64_t delta) { kv_blocks_total_->Increment(static_cast<double>(delta)); }

void GenerationMetrics::RecordAdmitted(int64_t prompt_tokens) {
  prompt_tokens_->Increment(static_cast<double>(prompt_tokens));
}

void GenerationMetrics::RecordToken(bool first, absl::Duration latency) {
  tokens_->Increment();
  (first ? time_to_first_token_ : inter_token_)->Observe(absl::ToDoubleSeconds(latency));
}

void GenerationMetrics::RecordRefusal(GenerationRefusal reason) { refused_[static_cast<size_t>(reason)]->Increment(); }
void GenerationMetrics::RecordEnd(GenerationEnd end) { ended_[static_cast<size_t>(end)]->Increment(); }

void GenerationMetrics::RecordStep(int64_t sequences) {
  steps_->Increment();
  step_sequences_->Increment(static_cast<double>(sequences));
}

void GenerationMetrics::RecordDecodePadding(int64_t past_tokens, int64_t padded_tokens) {
  decode_past_tokens_->Increment(static_cast<double>(past_tokens));
  decode_padded_tokens_->Increment(static_cast<double>(padded_tokens));
}

}  // namespace ortserve::observability
