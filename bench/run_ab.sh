#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A/B of two ortserve binaries on one synthetic model, in the same hour:
# the builds alternate (A B B A ...) so that a drift of the machine lands on
# both. Per round and build: one request at a time over HTTP binary and gRPC
# (mean latency over the model time of the same run, from the server's
# statistics), and saturation at CONCURRENCY over HTTP binary and gRPC, with
# batching off and on (bench/models/{nobatching,batching}). Server on
# SERVER_CPUS, load generator on LOADGEN_CPUS, one ORT thread.
#
#   OLD=/path/to/old/ortserve NEW=build/src/server/ortserve bench/run_ab.sh [model]
#
#   OLD, NEW [required]     the two ortserve binaries (A and B)
#   BUILD [build]           build folder holding ortserve-loadgen
#   ROUNDS [2]              rounds; each runs both builds, in alternating order
#   DURATION, WARMUP [8, 2] measured and warm-up seconds per load run
#   CONCURRENCY [32]        closed-loop concurrency of the saturation runs
#   SERVER_CPUS, LOADGEN_CPUS [0, 1]
#   BASE_PORT [18600]
# Writes bench/results/ab-<model>-<UTC time>/ (one loadgen JSON per run and
# ab.md, the table summarize_ab.py makes of them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
BASE_PORT="${BASE_PORT:-18600}"
PY=/usr/bin/python3
MODEL="${1:-bert_mini}"
LOADGEN="$BUILD/tools/loadgen/ortserve-loadgen"

log() { printf '[run_ab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ -x "${OLD:-}" && -x "${NEW:-}" ]] || die "set OLD and NEW to two ortserve binaries"
[[ -x "$LOADGEN" ]] || die "$LOADGEN not built (cmake --build $BUILD --target ortserve-loadgen)"
if [[ ! -f "$ROOT/bench/models/batching/$MODEL/1/model.onnx" ]]; then
  log "generating $MODEL"
  "$PY" "$ROOT/bench/make_bench_models.py" --models "$MODEL"
fi

OUT="$ROOT/bench/results/ab-$MODEL-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
HTTP_PORT="$BASE_PORT"
GRPC_PORT="$((BASE_PORT + 1))"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

{
  echo "{\"model\": \"$MODEL\", \"old\": \"$OLD\", \"new\": \"$NEW\","
  echo " \"old_version\": \"$("$OLD" --version 2>/dev/null | head -n1 || echo unknown)\","
  echo " \"new_version\": \"$("$NEW" --version 2>/dev/null | head -n1 || echo unknown)\","
  echo " \"loadavg_at_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"nproc\": $(nproc),"
  echo " \"rounds\": $ROUNDS, \"duration_s\": $DURATION, \"concurrency\": $CONCURRENCY}"
} > "$OUT/machine.json"

start() {  # BINARY batching|nobatching LOGNAME
  taskset -c "$SERVER_CPUS" "$1" --model-repository "$ROOT/bench/models/$2" \
    --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --metrics-port -1 \
    --intra-op-thread-count 1 --log-level warn > "$OUT/$3.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/ready" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/$3.log"
    sleep 0.1
  done
  die "server not ready after 60 s"
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

run() {  # NAME PROTOCOL PORT [flags...]; statistics before and after
  local name="$1" protocol="$2" port="$3"; shift 3
  log "$name"
  curl -sf "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/stats" > "$OUT/$name.stats-before" || true
  taskset -c "$LOADGEN_CPUS" "$LOADGEN" --protocol "$protocol" --port "$port" -m "$MODEL" \
    --duration "$DURATION" --warmup "$WARMUP" --label "$name" --json-out "$OUT/$name.json" "$@" > /dev/null
  curl -sf "http://127.0.0.1:$HTTP_PORT/v2/models/$MODEL/stats" > "$OUT/$name.stats-after" || true
}

for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then order=(old new); else order=(new old); fi
  for build in "${order[@]}"; do
    if [[ "$build" == old ]]; then bin="$OLD"; else bin="$NEW"; fi
    tag="r$round-$build"
    start "$bin" nobatching "$tag-nobatching"
    run "$tag-off-http-c1" http-binary "$HTTP_PORT" --concurrency 1
    run "$tag-off-grpc-c1" grpc "$GRPC_PORT" --concurrency 1
    run "$tag-off-http-sat" http-binary "$HTTP_PORT" --concurrency "$CONCURRENCY"
    run "$tag-off-grpc-sat" grpc "$GRPC_PORT" --concurrency "$CONCURRENCY"
    stop
    start "$bin" batching "$tag-batching"
    run "$tag-on-http-sat" http-binary "$HTTP_PORT" --concurrency "$CONCURRENCY"
    run "$tag-on-grpc-sat" grpc "$GRPC_PORT" --concurrency "$CONCURRENCY"
    stop
  done
done
"$PY" "$ROOT/bench/summarize_ab.py" "$OUT" | tee "$OUT/ab.md"
