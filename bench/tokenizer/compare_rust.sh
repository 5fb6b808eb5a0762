#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tokenizer comparison with the Rust library, both on one thread, on the same
# corpus and vocab: tokenizer_bench (C++, Encode per text) against
# rust_binding_bench.mjs (tokenizers@0.23.2 through its napi binding,
# encodeBatch over the whole corpus). Runs each RUNS times, alternating, and
# prints every run plus the best (highest tokens/s) of each; on a machine
# shared with other work the best run is the least disturbed one.
#
# Usage: bench/tokenizer/compare_rust.sh BUILD_DIR CORPUS [RUNS] [SECONDS]
#   VOCAB (env) vocab.txt, default .deps/vocab/bert-base-uncased-vocab.txt
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:?usage: compare_rust.sh BUILD_DIR CORPUS [RUNS] [SECONDS]}"
corpus="${2:?usage: compare_rust.sh BUILD_DIR CORPUS [RUNS] [SECONDS]}"
runs="${3:-5}"
seconds="${4:-3}"
vocab="${VOCAB:-$root/.deps/vocab/bert-base-uncased-vocab.txt}"
bench="$build/bench/tokenizer/tokenizer_bench"
[[ -x "$bench" ]] || { echo "build the tokenizer_bench target in $build first" >&2; exit 1; }

best_cpp=0 best_rust=0 sum_cpp="" sum_rust="" out_cpp="" out_rust=""
tokens_per_s() { sed -n 's/^tokens\/s: //p' <<<"$1"; }
for ((i = 1; i <= runs; ++i)); do
  out="$("$bench" "$vocab" "$corpus" "$seconds")"
  t="$(tokens_per_s "$out")"
  echo "run $i C++:  $t tokens/s ($(grep -o 'process CPU [0-9]*%' <<<"$out"))"
  if ((t > best_cpp)); then best_cpp=$t out_cpp="$out"; fi
  sum_cpp="$(sed -n 's/^ids checksum: //p' <<<"$out")"
  out="$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
         node "$root/bench/tokenizer/rust_binding_bench.mjs" "$vocab" "$corpus" "$seconds")"
  t="$(tokens_per_s "$out")"
  echo "run $i Rust: $t tokens/s ($(grep -o 'process CPU [0-9]*%' <<<"$out"))"
  if ((t > best_rust)); then best_rust=$t out_rust="$out"; fi
  sum_rust="$(sed -n 's/^ids checksum: //p' <<<"$out")"
done
echo "== best C++ run"; echo "$out_cpp"
echo "== best Rust run"; echo "$out_rust"
if [[ "$sum_cpp" == "$sum_rust" ]]; then
  echo "ids: identical (checksum $sum_cpp)"
else
  echo "ids: DIFFER (C++ $sum_cpp, Rust $sum_rust)"
  exit 1
fi
awk -v c="$best_cpp" -v r="$best_rust" 'BEGIN { printf "C++ / Rust (best runs): %.1fx\n", c / r }'
