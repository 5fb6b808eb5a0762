#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Generation settings A/B in one server (issue #22): one copy of
# models/tiny_decoder per variant, each with its own lines added to the
# generation block, then ROUNDS rounds of one closed-loop pass per variant
# (interleaved, so that a machine whose speed drifts between passes drifts
# for every variant alike). Prints each pass's tokens per CPU-second of the
# server (tokens from generation_stats over /proc/<pid>/stat), decode runs
# per step, rows per run and the padding share, then each variant's median
# and its per-round ratio to the first variant.
#
#   bench/run_generation_ab.sh "one=max_decode_runs: 1" "split=max_decode_runs: 4"
#   MIX=16,64,128 ROUNDS=5 bench/run_generation_ab.sh "one=max_decode_runs: 1" "split="
#   STREAM=true bench/run_generation_ab.sh "n1=stream_interval_tokens: 1" "n8=stream_interval_tokens: 8"
#
# A variant is NAME=LINES (LINES: generation-block fields, ';' between
# them; empty: the shipped settings). Server on SERVER_CPUS, load generator
# on LOADGEN_CPUS; run folder bench/results/generation-ab-<UTC>/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
CONCURRENCY="${CONCURRENCY:-32}"
MIX="${MIX:-64}"
STREAM="${STREAM:-false}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-2}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
BASE_PORT="${BASE_PORT:-18960}"
(( $# >= 2 )) || { echo "usage: $0 NAME=LINES NAME=LINES [...]" >&2; exit 2; }
out="$root/bench/results/generation-ab-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/repo"
names=()
for v in "$@"; do
  name="${v%%=*}"; lines="${v#*=}"
  [[ "$name" =~ ^[a-z0-9_]+$ ]] || { echo "variant name '$name': lower case, digits, _" >&2; exit 2; }
  names+=("$name")
  cp -r "$root/models/tiny_decoder" "$out/repo/$name"
  sed -i "s/^name: \"tiny_decoder\"/name: \"$name\"/" "$out/repo/$name/config.pbtxt"
  # The lines go at the top of the generation block.
  /usr/bin/python3 - "$out/repo/$name/config.pbtxt" "$lines" <<'PY'
import sys
path, lines = sys.argv[1], [l.strip() for l in sys.argv[2].split(";") if l.strip()]
text = open(path).read()
assert "generation {\n" in text
open(path, "w").write(text.replace("generation {\n", "generation {\n" + "".join(f"  {l}\n" for l in lines), 1))
PY
done
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c $SERVER_CPUS"; load_cpu="taskset -c $LOADGEN_CPUS"; fi
{
  echo "date: $(date -u +%FT%TZ)"; echo "uptime at start: $(uptime)"
  echo "git: $(git -C "$root" rev-parse HEAD) $(git -C "$root" status --porcelain | wc -l) files changed"
  echo "settings: CONCURRENCY=$CONCURRENCY MIX=$MIX STREAM=$STREAM ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP"
  for v in "$@"; do echo "variant: $v"; done
} > "$out/machine.txt"
$server_cpu "$BUILD/src/server/ortserve" --model-repository "$out/repo" --http-address 127.0.0.1 \
  --http-port "$BASE_PORT" --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 \
  > "$out/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "127.0.0.1:$BASE_PORT/v2/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "127.0.0.1:$BASE_PORT/v2/health/ready" >/dev/null || { echo "server did not start:"; cat "$out/server.log"; exit 1; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  for name in "${names[@]}"; do
    curl -s "127.0.0.1:$BASE_PORT/v2/models/$name/generation_stats" > "$out/stats_${name}_r${round}_before.json"
    cpu_s > "$out/cpu_${name}_r${round}_before.txt"
    $load_cpu node "$root/bench/generation/sse_loadgen.mjs" --port "$BASE_PORT" --model "$name" \
      --prompt "I have been feeling" --concurrency "$CONCURRENCY" --max-tokens "$MIX" --duration "$DURATION" \
      --warmup "$WARMUP" --stream "$STREAM" --json-out "$out/load_${name}_r${round}.json" > /dev/null
    cpu_s > "$out/cpu_${name}_r${round}_after.txt"
    curl -s "127.0.0.1:$BASE_PORT/v2/models/$name/generation_stats" > "$out/stats_${name}_r${round}_after.json"
  done
done
echo "uptime at end: $(uptime)" >> "$out/machine.txt"
/usr/bin/python3 - "$out" "$ROUNDS" "${names[@]}" <<'PY' | tee "$out/results.md"
import json, os, statistics, sys
out, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
p = lambda f: os.path.join(out, f)
def figures(name, r):
    a = json.load(open(p(f"stats_{name}_r{r}_after.json"))); b = json.load(open(p(f"stats_{name}_r{r}_before.json")))
    d = {k: a[k] - b[k] for k in a if isinstance(a[k], (int, float)) and not isinstance(a[k], bool)}
    cpu = float(open(p(f"cpu_{name}_r{r}_after.txt")).read()) - float(open(p(f"cpu_{name}_r{r}_before.txt")).read())
    runs = d["decode_steps"]
    return {"per_cpu": d["tokens"] / cpu if cpu > 0 else float("nan"),
            "runs_per_step": runs / d["decode_rounds"] if d.get("decode_rounds") else float("nan"),
            "rows": d["decode_sequences"] / runs if runs else float("nan"),
            "padding": 1 - d["decode_past_tokens"] / d["decode_padded_tokens"] if d.get("decode_padded_tokens") else float("nan")}
f = {(n, r): figures(n, r) for n in names for r in range(1, rounds + 1)}
print(f"Run folder: `{os.path.basename(out)}`\n\n```\n{open(p('machine.txt')).read().strip()}\n```\n")
print("| variant | round | tokens/CPU-s | decode runs per step | rows per run | padding |")
print("|---|---:|---:|---:|---:|---:|")
for r in range(1, rounds + 1):
    for n in names:
        x = f[(n, r)]
        print(f"| {n} | {r} | {x['per_cpu']:,.0f} | {x['runs_per_step']:.2f} | {x['rows']:.1f} | {100 * x['padding']:.0f}% |")
print(f"\n| variant | median tokens/CPU-s | / {names[0]} per round | median ratio |")
print("|---|---:|---|---:|")
for n in names:
    ratios = [f[(n, r)]["per_cpu"] / f[(names[0], r)]["per_cpu"] for r in range(1, rounds + 1)]
    med = statistics.median(f[(n, r)]["per_cpu"] for r in range(1, rounds + 1))
    print(f"| {n} | {med:,.0f} | {' / '.join(f'{x:.2f}' for x in ratios)} | {statistics.median(ratios):.2f} |")
PY
echo "results: $out"
