#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Generation benchmarks (issue 22) on the demo decoder models/tiny_decoder,
# every figure of one comparison taken in this one run:
#  1. decode throughput at 1, 8 and 32 concurrent streams: ortserve (streamed
#     /v1/completions, ignore_eos, MAX_TOKENS tokens each, closed loop) against
#     raw_ort_decoder_bench (a greedy ONNX Runtime step loop, same prompt, same
#     batch), raw ORT measured before and after the ortserve runs;
#     with BASELINE=<build dir> the same ortserve runs against that build too;
#     each stream count also unstreamed ("stream": false, same prompt, tokens
#     and concurrency: the engine without per-token SSE delivery, which raw
#     ORT does not do either), after the streamed run;
#  2. continuous against static batching (generation.static_batching): the
#     capacity of each (closed loop, 32 streams, mixed output lengths MIX),
#     then Poisson arrivals of the MIX at LOAD x the continuous capacity into
#     each: throughput and time to first token p99;
#  3. time to first token and inter-token latency p50/p99 at 50% and 90% of
#     the continuous capacity (closed loop at 32 streams with the MIX);
#  4. memory: KV bytes per token from the model's shapes, and the server's
#     resident size idle and at its peak under 32 streams.
# Server (and raw ORT) on SERVER_CPUS, load generator (bench/generation/
# sse_loadgen.mjs, Node) on LOADGEN_CPUS. Writes bench/results/generation-<UTC>/
# (JSON per run, logs, machine.txt) and prints the tables (summarize_generation.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
BASELINE="${BASELINE:-}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
MAX_TOKENS="${MAX_TOKENS:-64}"
STREAMS="${STREAMS:-1 8 32}"
MIX="${MIX:-16,64,128}"
LOAD="${LOAD:-0.8}"
BASE_PORT="${BASE_PORT:-18700}"
RAW_SECONDS="${RAW_SECONDS:-4}"
out="$root/bench/results/generation-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/repo"
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c $SERVER_CPUS"; load_cpu="taskset -c $LOADGEN_CPUS"; fi
model="$root/models/tiny_decoder"
prompt="I have been feeling"
prompt_ids="$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(map(str, next(c["prompt_ids"] for c in d["cases"] if c["prompt"]==sys.argv[2]))))' \
  "$root/tests/data/generation/greedy_goldens.json" "$prompt")"

# Two copies of the model (the server refuses links out of its repository):
# continuous batching (as shipped) and static batching.
cp -r "$model" "$out/repo/tiny_decoder"
cp -r "$model" "$out/repo/tiny_decoder_static"
sed -i 's/^name: "tiny_decoder"/name: "tiny_decoder_static"/' "$out/repo/tiny_decoder_static/config.pbtxt"
echo 'parameters { key: "generation.static_batching" value { string_value: "1" } }' >> "$out/repo/tiny_decoder_static/config.pbtxt"

{
  echo "date: $(date -u +%FT%TZ)"; echo "uptime at start: $(uptime)"; echo "nproc: $(nproc)"
  grep -m1 "model name" /proc/cpuinfo || true
  echo "git: $(git -C "$root" rev-parse HEAD) $(git -C "$root" status --porcelain | wc -l) files changed"
  echo "build: $BUILD baseline: ${BASELINE:-none}"
  echo "settings: DURATION=$DURATION WARMUP=$WARMUP MAX_TOKENS=$MAX_TOKENS STREAMS='$STREAMS' MIX=$MIX LOAD=$LOAD SERVER_CPUS=$SERVER_CPUS LOADGEN_CPUS=$LOADGEN_CPUS"
  echo "prompt: '$prompt' ids $prompt_ids"
} > "$out/machine.txt"

server_pid=""; port=""
start_server() {  # start_server BUILD_DIR LABEL
  local log="$out/server-$2.log"
  $server_cpu "$1/src/server/ortserve" --model-repository "$out/repo" --http-address 127.0.0.1 \
    --http-port "$BASE_PORT" --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 \
    --http-threads "${HTTP_THREADS:-0}" > "$log" 2>&1 &
  server_pid=$!
  port="$BASE_PORT"
  for _ in $(seq 1 300); do
    curl -sf "127.0.0.1:$port/v2/models/tiny_decoder_static/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:"; cat "$log"; kill "$server_pid"; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
trap '[[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true' EXIT
loadgen() {  # loadgen OUT.json ARGS...
  local json="$1"; shift
  $load_cpu node "$root/bench/generation/sse_loadgen.mjs" --port "$port" --prompt "$prompt" \
    --duration "$DURATION" --warmup "$WARMUP" --json-out "$json" "$@" | tee -a "$out/loadgen.txt"
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$server_pid/stat"; }  # every thread
raw() {  # raw LABEL
  $server_cpu "$BUILD/bench/raw_ort_decoder/raw_ort_decoder_bench" --model "$model/1/model.onnx" \
    --batch "$(echo $STREAMS | tr ' ' ,)" --prompt-ids "$prompt_ids" --new-tokens "$MAX_TOKENS" \
    --seconds "$RAW_SECONDS" --threads 1 --json-out "$out/raw_$1.json" | tee -a "$out/raw.txt"
}
stats() { curl -s "127.0.0.1:$port/v2/models/$1/generation_stats" > "$2"; }

echo "== 1. decode throughput: raw ORT, ortserve${BASELINE:+, baseline}, raw ORT"
raw before
run_streams() {  # run_streams BUILD LABEL
  start_server "$1" "$2"
  loadgen "$out/warm-$2.json" --model tiny_decoder --concurrency 8 --max-tokens "$MAX_TOKENS" --duration 2 --warmup 0 > /dev/null
  echo "$(rss_kib)" > "$out/rss_idle_$2.txt"
  for c in $STREAMS; do
    stats tiny_decoder "$out/stats_$2_c${c}_before.json"
    cpu_s > "$out/cpu_$2_c${c}_before.txt"
    ( peak=0; while kill -0 "$server_pid" 2>/dev/null && [[ ! -f "$out/.stop" ]]; do
        r="$(rss_kib)"; (( r > peak )) && peak=$r; echo "$peak" > "$out/rss_peak_$2_c$c.txt"; sleep 0.5; done ) &
    local sampler=$!
    loadgen "$out/closed_$2_c$c.json" --model tiny_decoder --concurrency "$c" --max-tokens "$MAX_TOKENS"
    touch "$out/.stop"; wait "$sampler" || true; rm -f "$out/.stop"
    cpu_s > "$out/cpu_$2_c${c}_after.txt"
    stats tiny_decoder "$out/stats_$2_c${c}_after.json"
    # The same load unstreamed (suffix _nostream on every file).
    stats tiny_decoder "$out/stats_$2_c${c}_nostream_before.json"
    cpu_s > "$out/cpu_$2_c${c}_nostream_before.txt"
    loadgen "$out/closed_$2_c${c}_nostream.json" --model tiny_decoder --concurrency "$c" --max-tokens "$MAX_TOKENS" \
      --stream false
    cpu_s > "$out/cpu_$2_c${c}_nostream_after.txt"
    stats tiny_decoder "$out/stats_$2_c${c}_nostream_after.json"
  done
}
run_streams "$BUILD" ortserve
if [[ -n "$BASELINE" ]]; then stop_server; run_streams "$BASELINE" baseline; stop_server; start_server "$BUILD" ortserve2; fi
raw after

echo "== 2./3. mixed lengths ($MIX): capacity, continuous vs static, latency at 50% / 90%"
stats tiny_decoder "$out/stats_capacity_before.json"
loadgen "$out/capacity.json" --model tiny_decoder --concurrency 32 --max-tokens "$MIX"
stats tiny_decoder "$out/stats_capacity_after.json"
stats tiny_decoder_static "$out/stats_capacity_static_before.json"
loadgen "$out/capacity_static.json" --model tiny_decoder_static --concurrency 32 --max-tokens "$MIX"
stats tiny_decoder_static "$out/stats_capacity_static_after.json"
cap="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_s"])' "$out/capacity.json")"
rate() { /usr/bin/python3 -c "print(round($cap * $1, 3))"; }
for label in tiny_decoder tiny_decoder_static; do
  stats "$label" "$out/stats_open_${label}_before.json"
  loadgen "$out/open_${label}.json" --model "$label" --rate "$(rate "$LOAD")" --max-tokens "$MIX" --drain 60
  stats "$label" "$out/stats_open_${label}_after.json"
done
for pct in 50 90; do
  loadgen "$out/latency_${pct}.json" --model tiny_decoder --rate "$(rate "0.$pct")" --max-tokens "$MIX" --drain 60
done
stop_server
echo "uptime at end: $(uptime)" >> "$out/machine.txt"
/usr/bin/python3 "$root/bench/summarize_generation.py" "$out" | tee "$out/results.md"
echo "results: $out"
