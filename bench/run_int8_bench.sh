#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo SAE model in FP32, INT8 and FP16 (and whether BF16 loads), in one
# run (issue 24, docs/int8.md); FP32 and INT8 each with and without the
# SkipLayerNormalization fusion (scripts/quantize_int8.py --skip-layernorm),
# so that the gain of each step shows:
#   - raw ONNX Runtime (bench/raw_ort): throughput over batch sizes (wall and
#     per CPU-second), batch-1 latency; ROUNDS rounds, the variants alternating,
#     so that each round gives its own ratios;
#   - POST /api/v1/sae/analyze (the short 19-word report): closed-loop
#     saturation at CONCURRENCY, then p50/p99 in an open loop at 50% of the FP32
#     saturation rate, the server on core 0 and the load generator on core 1,
#     the variants alternating per round; one fresh server per row;
#   - model size, and accuracy / recall / precision on the probe set
#     (data/sae/probes.jsonl) with agreement against FP32.
# The variants come from bench/make_precision_variants.py (INT8 from the
# committed quantizer, so the run follows the current FP32 model). Markdown on
# stdout; raw JSON in bench/results/int8-<UTC time>/.
#   BUILD=build ROUNDS=2 DURATION=6 bench/run_int8_bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
SECONDS_PER_BATCH="${SECONDS_PER_BATCH:-2}"
SEQ="${SEQ:-24}"
BATCHES="${BATCHES:-1,4,8,16,32,64}"
for bin in src/server/ortserve tools/loadgen/ortserve-loadgen bench/raw_ort/raw_ort_bench; do
  [[ -x "$BUILD/$bin" ]] || { echo "$BUILD/$bin not built (cmake --build $BUILD --target ortserve ortserve-loadgen raw_ort_bench)" >&2; exit 1; }
done
out="$root/bench/results/int8-$(date -u +%Y%m%dT%H%M%SZ)"
repo="$out/repository"
mkdir -p "$out"
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c 0"; load_cpu="taskset -c 1"; fi
uptime > "$out/load-start.txt"

/usr/bin/python3 "$root/bench/make_precision_variants.py" "$repo" --check "$BUILD/src/server/ortserve" > "$out/accuracy.log"
variants=(sae_classifier sae_classifier_fp32sln sae_classifier_int8only sae_classifier_int8 sae_classifier_fp16)

# BF16: does ONNX Runtime's CPU provider load a model whose MatMuls are BF16?
if $server_cpu "$BUILD/bench/raw_ort/raw_ort_bench" --model "$repo/bf16/model.onnx" --dim "$SEQ" --int-max 1 \
     --batches 1 --seconds 0.2 --latency-runs 5 > "$out/bf16.txt" 2>&1; then echo loaded >> "$out/bf16.txt"; fi

for round in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do
    $server_cpu "$BUILD/bench/raw_ort/raw_ort_bench" --model "$repo/$v/1/model.onnx" --dim "$SEQ" --int-max 1 \
      --batches "$BATCHES" --seconds "$SECONDS_PER_BATCH" --json-out "$out/raw-$v-$round.json" > "$out/raw-$v-$round.txt"
  done
done

/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
body = {"patientId": "p-1042", "reportText": "I felt dizzy after the second dose and then fainted in the kitchen, "
        "my husband called an ambulance"}
json.dump(body, open(os.path.join(out, "body-short.json"), "w"))
PY

endpoint() {  # endpoint VARIANT ROUND [RATE]
  local v="$1" round="$2" rate="${3:-}" dir="$out/sae-$1-$2"
  mkdir -p "$dir"
  $server_cpu "$BUILD/src/server/ortserve" --model-repository "$repo" --sae-model "$v" --http-address 127.0.0.1 \
    --http-port 0 --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 \
    > "$dir/server.log" 2>&1 &
  local server=$! port=""
  for _ in $(seq 1 300); do
    port="$(grep -o 'HTTP listening on [^ ":]*:[0-9]*' "$dir/server.log" | head -1 | sed 's/.*://')" || true
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$dir/server.log"; kill "$server"; exit 1; }
  for _ in $(seq 1 300); do curl -sf "127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
  curl -s -X POST "127.0.0.1:$port/api/v1/sae/analyze" --data-binary "@$out/body-short.json" > "$dir/answer.json"
  local lg=($load_cpu "$BUILD/tools/loadgen/ortserve-loadgen" --protocol http-json --port "$port"
            --http-post /api/v1/sae/analyze --body-file "$out/body-short.json" -d "$DURATION" --warmup "$WARMUP" -q)
  "${lg[@]}" --mode closed -c "$CONCURRENCY" --json-out "$dir/closed.json"
  if [[ -n "$rate" ]]; then "${lg[@]}" --mode open -r "$rate" --max-outstanding 256 --json-out "$dir/open.json"; fi
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
}
for round in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do endpoint "$v" "$round"; done
done
# p99 at the same offered load for every variant: half of FP32's saturation in round 1.
rate="$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_rps"] / 2))' \
  "$out/sae-sae_classifier-1/closed.json")"
for v in "${variants[@]}"; do endpoint "$v" open "$rate"; done
uptime > "$out/load-end.txt"

/usr/bin/python3 - "$out" "$ROUNDS" "$rate" <<'PY'
import json, os, sys
out, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
variants = [("FP32", "sae_classifier"), ("FP32 + SkipLayerNorm", "sae_classifier_fp32sln"),
            ("INT8 only", "sae_classifier_int8only"), ("INT8 + SkipLayerNorm (bundled)", "sae_classifier_int8"),
            ("FP16", "sae_classifier_fp16")]
load = lambda *p: json.load(open(os.path.join(out, *p)))
acc = load("repository", "accuracy.json")
print(f"Run {os.path.basename(out)}; load at start: {open(os.path.join(out, 'load-start.txt')).read().strip()}")
print(f"load at end: {open(os.path.join(out, 'load-end.txt')).read().strip()}\n")
print("Raw ONNX Runtime, one intra-op thread on core 0 (best batch: highest inferences/s of the sweep):\n")
print("| round | model | best batch | inf/s | inf per CPU-s | x FP32 | x FP32 per CPU-s | batch-1 p50 us | batch-1 CPU p50 us |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for r in range(1, rounds + 1):
    base = None
    for label, v in variants:
        d = load(f"raw-{v}-{r}.json")
        best = max(d["throughput"], key=lambda t: t["inferences_per_s"])
        best_cpu = max(t["inferences_per_cpu_s"] for t in d["throughput"])
        if base is None:
            base = (best["inferences_per_s"], best_cpu)
        print(f"| {r} | {label} | {best['batch']} | {best['inferences_per_s']:.0f} | {best_cpu:.0f} | "
              f"{best['inferences_per_s'] / base[0]:.2f} | {best_cpu / base[1]:.2f} | "
              f"{d['single_run_us']['p50']:.0f} | {d['single_run_cpu_us']['p50']:.0f} |")
print("\nPOST /api/v1/sae/analyze, short report, closed loop c=" + os.environ.get("CONCURRENCY", "32") +
      f"; open loop at {rate} req/s (half of FP32's round-1 saturation):\n")
print("| round | model | req/s | x FP32 | p50 ms | p99 ms | errors | isSAE |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for r in [str(i) for i in range(1, rounds + 1)] + ["open"]:
    base = None
    for label, v in variants:
        d = load(f"sae-{v}-{r}", "open.json" if r == "open" else "closed.json")
        a = load(f"sae-{v}-{r}", "answer.json")
        base = base or d["throughput_rps"]
        lat = d["latency_us"]
        print(f"| {r} | {label} | {d['throughput_rps']:.0f} | {d['throughput_rps'] / base:.2f} | {lat['p50'] / 1000:.2f} | "
              f"{lat['p99'] / 1000:.2f} | {d['requests_failed']} | {a.get('isSAE', '-')} |")
print("\nSize and quality on the probe set (313 probes, 158 serious; verdict = isSAE at the config's threshold):\n")
print("| model | bytes | x FP32 | accuracy | recall | precision | verdict agreement | label agreement | max abs delta p(serious) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
f = acc["int8"]["fp32"]
print(f"| FP32 | {acc['fp32_bytes']:,} | 1.00 | {f['accuracy']} | {f['recall']} | {f['precision']} | - | - | - |")
for label, key in [(l, v.replace("sae_classifier_", "")) for l, v in variants[1:]]:
    a = acc[key]
    q = a[key]
    print(f"| {label} | {a['bytes']:,} | {a['bytes'] / acc['fp32_bytes']:.2f} | {q['accuracy']} | {q['recall']} | "
          f"{q['precision']} | {a['verdict_agreement']} | {a['label_agreement']} | {a['positive_probability_max_abs_delta']} |")
bf16 = open(os.path.join(out, "bf16.txt")).read().strip().splitlines()
print(f"\nBF16 (MatMuls in BF16): {bf16[-1] if bf16 else '-'}")
PY
