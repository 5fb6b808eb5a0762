// SPDX-License-Identifier: Apache-2.0
#include "generation/generation_config.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

namespace {

namespace fs = std::filesystem;

// A file named by the config: relative, inside the model folder.
absl::StatusOr<std::string> ModelFile(const std::string& model_dir, const std::string& name,
                                      std::string_view field) {
  if (name.empty()) return absl::InvalidArgumentError(StrCat("generation.", field, " is required"));
  const fs::path p(name);
  if (p.is_absolute()) return absl::InvalidArgumentError(StrCat("generation.", field, " must be relative"));
  for (const auto& part : p) {
    if (part == "..") return absl::InvalidArgumentError(StrCat("generation.", field, " must not contain '..'"));
  }
  return (fs::path(model_dir) / p).string();
}

absl::StatusOr<std::string> ReadTemplateFile(const std::string& path, std::string_view field) {
  constexpr uintmax_t kMaxBytes = uintmax_t{4} << 20;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("generation.", field, ": cannot read \"", path, "\": ", ec.message()));
  if (size > kMaxBytes) {
    return absl::InvalidArgumentError(
        StrCat("generation.", field, ": \"", path, "\" is ", size, " bytes, more than the limit of ", kMaxBytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::string out(static_cast<size_t>(size), '\0');
  in.read(out.data(), static_cast<std::streamsize>(size));
  if (!in || static_cast<uintmax_t>(in.gcount()) != size) {
    return absl::InvalidArgumentError(StrCat("generation.", field, ": error reading \"", path, "\""));
  }
  return out;
}

absl::StatusOr<TokenizerConfigChat> ReadTokenizerConfig(const std::string& path, std::string_view field) {
  ASSIGN_OR_RETURN(std::string json, ReadTemplateFile(path, field));
  auto config = ParseTokenizerConfig(json);
  if (!config.ok()) {
    return absl::InvalidArgumentError(StrCat("generation.", field, ": \"", path, "\": ", ToStd(config.status().message())));
  }
  return config;
}

// The Hugging Face chat template: named by the block, or found beside the
// tokenizer (chat_template.jinja, then tokenizer_config.json's), as
// transformers finds it. Its bos_token and eos_token come from the
// tokenizer_config.json when there is one.
absl::Status LoadChatTemplate(const config::ModelGeneration& block, const std::string& model_dir,
                              const std::string& tokenizer_path, GenerationSetup* setup) {
  const fs::path beside = fs::path(tokenizer_path).parent_path();
  TokenizerConfigChat config;
  const std::string config_path = (beside / "tokenizer_config.json").string();
  if (fs::exists(config_path)) {
    ASSIGN_OR_RETURN(config, ReadTokenizerConfig(config_path, "chat_template"));
  }
  std::string source, origin;
  if (!block.chat_template().empty()) {
    ASSIGN_OR_RETURN(origin, ModelFile(model_dir, block.chat_template(), "chat_template"));
    if (origin.ends_with(".json")) {
      ASSIGN_OR_RETURN(config, ReadTokenizerConfig(origin, "chat_template"));
      if (config.chat_template.empty()) {
        return absl::InvalidArgumentError(StrCat("generation.chat_template: \"", origin, "\" has no chat_template"));
      }
      source = config.chat_template;
    } else {
      ASSIGN_OR_RETURN(source, ReadTemplateFile(origin, "chat_template"));
    }
  } else if (const std::string jinja = (beside / "chat_template.jinja").string(); fs::exists(jinja)) {
    origin = jinja;
    ASSIGN_OR_RETURN(source, ReadTemplateFile(jinja, "chat_template"));
  } else if (!config.chat_template.empty()) {
    origin = config_path;
    source = config.chat_template;
  } else {
    return absl::OkStatus();  // no template: the simple one
  }
  ChatTemplate::Options options;
  options.source = std::move(source);
  options.bos_token = config.bos_token;
  options.eos_token = config.eos_token;
  if (options.eos_token.empty()) {
    if (block.eos_token_size() > 0) {
      options.eos_token = block.eos_token(0);
    } else if (setup->tokenizer->TokenId("<|endoftext|>")) {
      options.eos_token = "<|endoftext|>";
    }
  }
  options.render.max_output_bytes = setup->max_prompt_bytes;
  options.render.max_work_bytes = std::max<size_t>(setup->max_prompt_bytes, size_t{1} << 20) * 32;
  auto loaded = ChatTemplate::Create(std::move(options));
  if (!loaded.ok()) {
    return absl::InvalidArgumentError(
        StrCat("generation.chat_template \"", origin, "\": ", ToStd(loaded.status().message())));
  }
  setup->chat_template = *std::move(loaded);
  return absl::OkStatus();
}

template <typename T>
absl::Status InRange(std::string_view field, T value, T low, T high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(
        StrCat("generation.", field, " must be in [", low, ", ", high, "], got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerationSetup> LoadGenerationConfig(const config::ModelGeneration& block,
                                                     const std::string& model_dir) {
  GenerationSetup setup;
  ASSIGN_OR_RETURN(std::string tokenizer_path, ModelFile(model_dir, block.tokenizer(), "tokenizer"));
  if (!block.merges().empty()) {
    ASSIGN_OR_RETURN(std::string merges_path, ModelFile(model_dir, block.merges(), "merges"));
    ASSIGN_OR_RETURN(setup.tokenizer, pipeline::BpeTokenizer::FromVocabAndMerges(tokenizer_path, merges_path));
  } else {
    ASSIGN_OR_RETURN(setup.tokenizer, pipeline::BpeTokenizer::FromTokenizerJson(tokenizer_path));
  }

  GenerationLimits& limits = setup.limits;
  if (block.max_context_tokens() != 0) limits.max_context_tokens = block.max_context_tokens();
  RETURN_IF_ERROR(InRange<int64_t>("max_context_tokens", limits.max_context_tokens, 2, int64_t{1} << 20));
  if (block.max_tokens_limit() != 0) limits.max_tokens_limit = block.max_tokens_limit();
  limits.max_tokens_limit = static_cast<int32_t>(std::min<int64_t>(limits.max_tokens_limit,
                                                                   limits.max_context_tokens - 1));
  RETURN_IF_ERROR(InRange<int32_t>("max_tokens_limit", limits.max_tokens_limit, 1, 1 << 20));
  if (block.default_max_tokens() != 0) limits.default_max_tokens = block.default_max_tokens();
  limits.default_max_tokens = std::min(limits.default_max_tokens, limits.max_tokens_limit);
  RETURN_IF_ERROR(InRange<int32_t>("default_max_tokens", limits.default_max_tokens, 1, limits.max_tokens_limit));
  if (block.max_stop_sequences() != 0) limits.max_stop_sequences = static_cast<size_t>(block.max_stop_sequences());
  RETURN_IF_ERROR(InRange<int64_t>("max_stop_sequences", static_cast<int64_t>(limits.max_stop_sequences), 0, 64));
  if (block.max_stop_bytes() != 0) limits.max_stop_bytes = static_cast<size_t>(block.max_stop_bytes());
  RETURN_IF_ERROR(InRange<int64_t>("max_stop_bytes", static_cast<int64_t>(limits.max_stop_bytes), 1, 4096));
  if (block.has_stream_interval_tokens()) limits.stream_interval_tokens = block.stream_interval_tokens();
  RETURN_IF_ERROR(InRange<int32_t>("stream_interval_tokens", limits.stream_interval_tokens, 1, 256));
  if (block.max_prompt_bytes() != 0) setup.max_prompt_bytes = static_cast<size_t>(block.max_prompt_bytes());
  RETURN_IF_ERROR(InRange<int64_t>("max_prompt_bytes", static_cast<int64_t>(setup.max_prompt_bytes), 1,
                                   int64_t{64} << 20));

  if (block.eos_token_size() == 0) {
    if (auto id = setup.tokenizer->TokenId("<|endoftext|>")) limits.eos_token_ids.push_back(*id);
  }
  for (const std::string& token : block.eos_token()) {
    auto id = setup.tokenizer->TokenId(token);
    if (!id) return absl::InvalidArgumentError(StrCat("generation.eos_token \"", token, "\" is not in the vocabulary"));
    limits.eos_token_ids.push_back(*id);
  }

  RETURN_IF_ERROR(LoadChatTemplate(block, model_dir, tokenizer_path, &setup));

  SamplingParams& d = setup.defaults;
  if (block.has_temperature()) d.temperature = block.temperature();
  if (block.has_top_k()) d.top_k = block.top_k();
  if (block.has_top_p()) d.top_p = block.top_p();
  if (block.has_repetition_penalty()) d.repetition_penalty = block.repetition_penalty();
  if (absl::Status s = d.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(StrCat("generation: ", std::string_view(s.message().data(), s.message().size())));
  }
  return setup;
}

absl::Status ReadGenerationParameters(const config::ModelConfig& config, GenerationSetup* setup) {
  const auto& params = config.parameters();
  const config::ModelGeneration& block = config.generation();
  // One batching setting: the block's field, or the deprecated parameter
  // "generation.<key>" (a string, as Triton's backends take theirs), never both.
  auto integer = [&](std::string_view key, bool has_field, int64_t field, int64_t low, int64_t high,
                     auto* out) -> absl::Status {
    auto it = params.find(StrCat("generation.", key));
    int64_t value = 0;
    if (has_field) {
      if (it != params.end()) {
        return absl::InvalidArgumentError(StrCat("generation.", key, " is set both in the generation block and as the "
                                                 "deprecated parameter 'generation.", key, "'; keep the field"));
      }
      value = field;
      if (value < low || value > high) {
        return absl::InvalidArgumentError(
            StrCat("generation.", key, " must be in [", low, ", ", high, "], got ", value));
      }
    } else {
      if (it == params.end()) return absl::OkStatus();
      const std::string& text = it->second.string_value();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size() || value < low || value > high) {
        return absl::InvalidArgumentError(StrCat("parameter 'generation.", key, "' must be an integer in [", low,
                                                 ", ", high, "], got '", text, "'"));
      }
      setup->warnings.push_back(StrCat("parameter 'generation.", key, "' is deprecated: write `", key, ": ", text,
                                       "` in the generation block (docs/model_config.md)"));
    }
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(value);
    return absl::OkStatus();
  };
  ContinuousBatcher::Options& b = setup->batching;
  RETURN_IF_ERROR(integer("kv_cache_bytes", block.has_kv_cache_bytes(), block.kv_cache_bytes(), 1, int64_t{1} << 40,
                          &b.kv_cache_bytes));
  RETURN_IF_ERROR(integer("kv_block_tokens", block.has_kv_block_tokens(), block.kv_block_tokens(), 1, 4096,
                          &b.kv_block_tokens));
  RETURN_IF_ERROR(integer("max_batch_sequences", block.has_max_batch_sequences(), block.max_batch_sequences(), 1,
                          4096, &b.max_batch_sequences));
  RETURN_IF_ERROR(integer("max_waiting_requests", block.has_max_waiting_requests(), block.max_waiting_requests(), 1,
                          1 << 20, &b.max_waiting));
  RETURN_IF_ERROR(integer("max_decode_runs", block.has_max_decode_runs(), block.max_decode_runs(), 1, 16,
                          &b.decode_plan.max_runs));
  RETURN_IF_ERROR(integer("decode_run_cost_tokens", block.has_decode_run_cost_tokens(),
                          block.decode_run_cost_tokens(), 0, int64_t{1} << 30, &b.decode_plan.run_cost_tokens));
  // Benchmarks only (bench/run_generation_bench.sh): a parameter, not a field.
  if (auto it = params.find("generation.static_batching"); it != params.end()) {
    const std::string& text = it->second.string_value();
    if (text != "0" && text != "1") {
      return absl::InvalidArgumentError(
          StrCat("parameter 'generation.static_batching' must be 0 or 1, got '", text, "'"));
    }
    b.static_batching = text == "1";
  }
  int64_t wait_ms = absl::ToInt64Milliseconds(b.max_wait);
  RETURN_IF_ERROR(integer("max_queue_wait_ms", block.has_max_queue_wait_ms(), block.max_queue_wait_ms(), 0,
                          3600 * 1000, &wait_ms));
  b.max_wait = absl::Milliseconds(wait_ms);
  for (auto [key, out] : {std::pair{"chat_message_template", &setup->chat_message_template},
                          std::pair{"chat_generation_prompt", &setup->chat_generation_prompt}}) {
    auto it = params.find(StrCat("generation.", key));
    if (it == params.end()) continue;
    if (it->second.string_value().size() > 4096) {
      return absl::InvalidArgumentError(StrCat("parameter 'generation.", key, "' is over 4096 bytes"));
    }
    *out = it->second.string_value();
  }
  return absl::OkStatus();
}

}  // namespace ortserve::generation

namespace ortserve::generation {

absl::StatusOr<std::shared_ptr<const GenerationModel>> GenerationModel::Load(
    const config::ModelConfig& config, const std::string& model_dir, std::shared_ptr<backend::Session> session,
    observability::GenerationMetrics* metrics) {
  std::shared_ptr<GenerationModel> m(new GenerationModel());
  ASSIGN_OR_RETURN(m->setup_, LoadGenerationConfig(config.generation(), model_dir));
  RETURN_IF_ERROR(ReadGenerationParameters(config, &m->setup_));
  ASSIGN_OR_RETURN(m->decoder_, DecoderModel::Create(std::move(session)));
  m->tokenizer_ = std::move(m->setup_.tokenizer);
  if (m->decoder_->vocab_size() > 0 && m->decoder_->vocab_size() < m->tokenizer_->vocab_size()) {
    return absl::InvalidArgumentError(StrCat("generation: the tokenizer has ", m->tokenizer_->vocab_size(),
                                             " tokens but the model's logits only ", m->decoder_->vocab_size()));
  }
  m->generator_ = std::make_unique<Generator>(*m->decoder_, *m->tokenizer_, m->setup_.limits);
  ContinuousBatcher::Options batching = m->setup_.batching;
  batching.model = m->decoder_;
  batching.tokenizer = m->tokenizer_;
  batching.limits = m->setup_.limits;
  batching.metrics = metrics;
  ASSIGN_OR_RETURN(m->batcher_, ContinuousBatcher::Create(std::move(batching)));
  return std::shared_ptr<const GenerationModel>(std::move(m));
}

}  // namespace ortserve::generation

namespace ortserve::generation {

absl::StatusOr<RenderedChat> GenerationModel::RenderChat(std::span<const ChatMessage> messages) const {
  if (setup_.chat_template != nullptr) return setup_.chat_template->Render(messages, /*add_generation_prompt=*/true);
  RenderedChat out;
  const std::string_view t = setup_.chat_message_template;
  auto client = [&out](std::string_view text) {
    if (text.empty()) return;
    out.client_ranges.emplace_back(out.text.size(), out.text.size() + text.size());
    out.text.append(text);
  };
  for (const ChatMessage& m : messages) {
    // {role} and {content} replaced; any other text, braces included, kept.
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, 6, "{role}") == 0) {
        client(m.role);
        i += 6;
      } else if (t.compare(i, 9, "{content}") == 0) {
        client(m.content);
        i += 9;
      } else {
        out.text.push_back(t[i++]);
      }
    }
  }
  out.text.append(setup_.chat_generation_prompt);
  return out;
}

}  // namespace ortserve::generation
