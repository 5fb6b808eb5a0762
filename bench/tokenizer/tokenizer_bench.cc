// SPDX-License-Identifier: Apache-2.0
// tokenizer_bench VOCAB CORPUS [SECONDS]
//
// Single-threaded throughput of the WordPiece tokenizer: encodes every text of
// CORPUS ([CLS]/[SEP], truncation at 512, no padding) in a loop for about
// SECONDS (default 2) and prints sentences/s, tokens/s and MB/s.
// VOCAB is a vocab.txt or tokenizer.json. CORPUS is either a .jsonl file of
// {"a": text, "b": pair text (optional)} objects (tests/data/tokenizer/
// corpus.jsonl; both texts are counted as sentences, encoded separately) or
// a plain text file with one sentence per line.
// It also prints a checksum of the ids of one pass (FNV-1a, 32 bits, over
// every id and 0xFFFFFFFF after each text); bench/tokenizer/
// rust_binding_bench.mjs prints the same for the Rust library, so equal
// checksums mean identical ids.
#include <chrono>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/strings.h"
#include "pipeline/tokenizer.h"
#include "simdjson.h"

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool ReadCorpus(const std::string& path, std::vector<std::string>* texts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const bool jsonl = EndsWith(path, ".jsonl");
  simdjson::dom::parser parser;
  for (std::string line; std::getline(in, line);) {
    if (!jsonl) {
      texts->push_back(line);
      continue;
    }
    simdjson::dom::element e;
    if (parser.parse(line).get(e)) {
      std::fprintf(stderr, "bad JSON line in %s\n", path.c_str());
      return false;
    }
    std::string_view s;
    if (!e["a"].get_string().get(s)) texts->emplace_back(s);
    if (!e["b"].get_string().get(s)) texts->emplace_back(s);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VOCAB CORPUS [SECONDS]\n", argv[0]);
    return 2;
  }
  const double seconds = argc > 3 ? std::stod(argv[3]) : 2.0;
  auto tokenizer = ortserve::pipeline::LoadTokenizer(argv[1]);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> texts;
  if (!ReadCorpus(argv[2], &texts) || texts.empty()) {
    std::fprintf(stderr, "cannot read a corpus from %s\n", argv[2]);
    return 1;
  }
  size_t bytes_per_pass = 0;
  for (const std::string& t : texts) bytes_per_pass += t.size();

  const ortserve::pipeline::TokenizerOptions options;  // max_length 512, truncation, no padding
  ortserve::pipeline::Encoding encoding;
  auto pass = [&](size_t* tokens) {
    for (const std::string& t : texts) {
      if (!(*tokenizer)->Encode(t, options, &encoding).ok()) {
        std::fprintf(stderr, "encode failed\n");
        std::exit(1);
      }
      *tokens += encoding.size();
    }
  };
  // Warm-up (buffers grow to their steady-state size) and checksum, untimed.
  size_t warm_tokens = 0;
  uint32_t checksum = 0x811C9DC5u;
  auto mix = [&checksum](uint32_t v) { checksum = (checksum ^ v) * 0x01000193u; };
  for (const std::string& t : texts) {
    if (!(*tokenizer)->Encode(t, options, &encoding).ok()) {
      std::fprintf(stderr, "encode failed\n");
      return 1;
    }
    warm_tokens += encoding.size();
    for (int64_t id : encoding.ids) mix(static_cast<uint32_t>(id));
    mix(0xFFFFFFFFu);
  }

  using Clock = std::chrono::steady_clock;
  size_t passes = 0, tokens = 0;
  const std::clock_t cpu_start = std::clock();  // process CPU time
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    pass(&tokens);
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;

  const double sentences = static_cast<double>(passes * texts.size());
  std::printf("corpus: %zu sentences, %.2f MB, %zu tokens per pass (incl. [CLS]/[SEP])\n",
              texts.size(), bytes_per_pass / 1e6, warm_tokens);
  std::printf("passes: %zu in %.3f s (1 thread), process CPU %.0f%% of one core\n", passes, elapsed,
              100 * cpu_seconds / elapsed);
  std::printf("sentences/s: %.0f\n", sentences / elapsed);
  std::printf("tokens/s: %.0f\n", tokens / elapsed);
  std::printf("MB/s: %.1f\n", passes * bytes_per_pass / 1e6 / elapsed);
  std::printf("ns/sentence: %.0f\n", elapsed * 1e9 / sentences);
  std::printf("ids checksum: %08x\n", checksum);
  return 0;
}
