#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ortserve against the Go architecture the first user's team runs today
# (bench/go_peer: net/http + onnxruntime_go, a batching goroutine of 32
# requests or 5 ms, sync.Pool buffers), issue #20.5. One run per model, every
# figure taken in this run, on the same pinned cores:
#
#   bench/run_peer_bench.sh            # MODELS [weight bert_mini]
#
# Per model: raw ORT's best batch (the limit); ortserve with dynamic batching
# over HTTP binary, HTTP JSON and gRPC; the Go peer over HTTP JSON (all it
# speaks); closed loop at CONCURRENCY. Writes results.json and results.md
# (ratios) under OUT.
#
# Environment: MODELS, DURATION [10], WARMUP [2], CONCURRENCY [32],
# SERVER_CPUS [0], LOADGEN_CPUS [1], THREADS [1] (ORT intra-op, both servers),
# BUILD [build], WEIGHT_REPO [bench/models/json_ab], PORT [18800] (ortserve HTTP; gRPC +1, Go peer +10),
# OUT [bench/results/peers-<time>]. The Go peer is built by
# bench/go_peer/build.sh (needs golang-go and ONNXRUNTIME_GO_SRC).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${MODELS:-weight bert_mini}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
THREADS="${THREADS:-1}"
BUILD="${BUILD:-$ROOT/build}"
PORT="${PORT:-18800}"
OUT="${OUT:-$ROOT/bench/results/peers-$(date -u +%Y%m%dT%H%M%SZ)}"
PY=/usr/bin/python3
ORTSERVE="$BUILD/src/server/ortserve"
LOADGEN="$BUILD/tools/loadgen/ortserve-loadgen"
RAW="$BUILD/bench/raw_ort/raw_ort_bench"
ORT_LIB="$ROOT/.deps/onnxruntime/lib/libonnxruntime.so.1"
GO_PEER="$ROOT/bench/go_peer/go_peer"
mkdir -p "$OUT"
log() { printf '[run_peer_bench] %s\n' "$*" >&2; }
for tool in "$ORTSERVE" "$LOADGEN" "$RAW"; do [[ -x "$tool" ]] || { log "missing $tool (build first)"; exit 1; }; done
[[ -x "$GO_PEER" ]] || "$ROOT/bench/go_peer/build.sh" >&2

# Models: the weight-bound model of #20 and bert_mini (text, INT64 inputs).
WEIGHT_REPO="${WEIGHT_REPO:-$ROOT/bench/models/json_ab}"
[[ -f "$WEIGHT_REPO/weight/1/model.onnx" ]] || "$PY" "$ROOT/bench/make_weight_models.py" "$WEIGHT_REPO"
if [[ " $MODELS " == *" bert_mini "* && ! -f "$ROOT/bench/models/batching/bert_mini/1/model.onnx" ]]; then
  "$PY" "$ROOT/bench/make_bench_models.py" --models bert_mini
fi
repo_of() { [[ "$1" == weight ]] && echo "$WEIGHT_REPO" || echo "$ROOT/bench/models/batching"; }

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}
trap stop_server EXIT
wait_ready() {  # URL
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited; see $OUT/*.log"; exit 1; }
    sleep 0.1
  done
  log "not ready: $1"; exit 1
}
loadgen() {  # LABEL PROTOCOL PORT MODEL
  log "$1"
  taskset -c "$LOADGEN_CPUS" "$LOADGEN" --protocol "$2" --port "$3" -m "$4" --concurrency "$CONCURRENCY" \
    --duration "$DURATION" --warmup "$WARMUP" --label "$1" --json-out "$OUT/$1.json" | tee -a "$OUT/loadgen.txt" >&2
}

{
  echo "{\"nproc\": $(nproc), \"cpu_model\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -n1)\","
  echo " \"loadavg_at_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"git_rev\": \"$(git -C "$ROOT" rev-parse --short HEAD)\","
  echo " \"server_cpus\": \"$SERVER_CPUS\", \"loadgen_cpus\": \"$LOADGEN_CPUS\", \"threads\": $THREADS,"
  echo " \"duration_s\": $DURATION, \"concurrency\": $CONCURRENCY}"
} > "$OUT/machine.json"

for model in $MODELS; do
  repo="$(repo_of "$model")"
  log "raw ORT: $model"
  taskset -c "$SERVER_CPUS" "$RAW" --model "$repo/$model/1/model.onnx" --threads "$THREADS" \
    --batches 1,8,32,64 --seconds 3 --json-out "$OUT/$model-raw.json" >&2
  taskset -c "$SERVER_CPUS" "$ORTSERVE" --model-repository "$repo" --model-control-mode explicit --load-model "$model" \
    --http-port "$PORT" --grpc-port "$((PORT + 1))" --metrics-port -1 --intra-op-thread-count "$THREADS" \
    --log-level warn > "$OUT/$model-ortserve.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT/v2/models/$model/ready"
  loadgen "$model-ortserve-http-binary" http-binary "$PORT" "$model"
  loadgen "$model-ortserve-http-json" http-json "$PORT" "$model"
  loadgen "$model-ortserve-grpc" grpc "$((PORT + 1))" "$model"
  stop_server
  taskset -c "$SERVER_CPUS" "$GO_PEER" --model "$repo/$model/1/model.onnx" --name "$model" --ort-lib "$ORT_LIB" \
    --port "$((PORT + 10))" --intra-op-threads "$THREADS" > "$OUT/$model-go.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$((PORT + 10))/v2/health/ready"
  loadgen "$model-go-http-json" http-json "$((PORT + 10))" "$model"
  stop_server
done

"$PY" - "$OUT" $MODELS <<'PYEOF'
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)
machine = load("machine")
lines = ["# ortserve and the Go peer", "",
         f"{machine['cpu_model']}, {machine['nproc']} cores; servers on core(s) {machine['server_cpus']}, "
         f"load generator on {machine['loadgen_cpus']}; {machine['threads']} ORT thread(s); closed loop, "
         f"concurrency {machine['concurrency']}, {machine['duration_s']} s per run; load average at start "
         f"{machine['loadavg_at_start']}; git {machine['git_rev']}.", ""]
summary = {"machine": machine, "models": {}}
for model in models:
    raw = load(f"{model}-raw")
    limit = raw["best_inferences_per_s"]
    rows = [("raw ORT, best batch (" + str(raw["best_batch"]) + ")", limit, None)]
    for label, name in (("ortserve, HTTP binary", "ortserve-http-binary"), ("ortserve, HTTP JSON", "ortserve-http-json"),
                        ("ortserve, gRPC", "ortserve-grpc"), ("Go peer, HTTP JSON", "go-http-json")):
        r = load(f"{model}-{name}")
        rows.append((label, r["throughput_rps"], r))
    go = rows[-1][1]
    lines += [f"## {model}", "", "| path | inferences/s | vs raw ORT | vs Go peer | p50 ms | p99 ms | failed |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    summary["models"][model] = {}
    for label, rps, r in rows:
        lat = r["latency_us"] if r else None
        p50 = f"{lat['p50'] / 1000:.2f}" if lat else ""
        p99 = f"{lat['p99'] / 1000:.2f}" if lat else ""
        failed = str(r.get("requests_failed", 0)) if r else ""
        lines.append(f"| {label} | {rps:,.0f} | {rps / limit:.2f}x | {rps / go:.2f}x | {p50} | {p99} | {failed} |")
        summary["models"][model][label] = {"inferences_per_s": rps, "vs_raw": rps / limit, "vs_go": rps / go}
    lines.append("")
with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(lines))
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(summary, f, indent=2)
print("\n".join(lines))
PYEOF
log "results: $OUT/results.md"
