#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Step load against SLO-adaptive batching (issue #20.3): open-loop Poisson
# load that steps through fractions of the measured capacity, against the
# adaptive batcher (dynamic_batching { latency_target_microseconds }) and a
# grid of hand-tuned static settings (max_batch_size x max_queue_delay), on
# the weight-bound model (bench/make_weight_models.py):
#
#   bench/run_step_load.sh
#
# 1. Capacity: raw ORT's sweep (reference) and ortserve closed loop at
#    CAP_CONCURRENCY with CAP_SETTING (the best static setting on this model);
#    CAPACITY=<req/s> skips the ortserve run and uses that figure.
# 2. Per setting (the adaptive one first and, with REPEAT_ADAPTIVE=1, again
#    last, so its spread over the run shows): one server, a 2 s warm-up at the
#    first step's rate, then one `ortserve-loadgen --mode open` per step
#    (STEP_S seconds each, no warm-up, DRAIN seconds at most for the answers
#    still in flight: the load pauses for that drain between steps). While
#    the steps run, bench/step_load.py samples /metrics every SAMPLE_MS
#    (batch size limit, queue delay limit, batch size histogram).
# 3. bench/step_load.py report: results.md, results.json, step_load.svg.
#
# Environment: STEPS [0.1,0.4,0.7,1.0,1.2,0.7,0.1] (fractions of capacity),
# STEP_S [8], DRAIN [5], TARGET_US [auto] (the adaptive setting's latency
# target; auto: 2.5 x raw ORT's batch-32 run p50 measured in step 1, rounded
# up to the millisecond: two batch-32 runs and some queue delay fit, so the
# target is feasible up to the load a batch of 32 serves; about 20 ms on a
# quiet core, where batch 1 runs in 1.8 ms), ADAPTIVE_MAX_BATCH [64], ADAPTIVE_MAX_DELAY_US [5000] (its bounds),
# STATIC ["1:0 8:0 8:2000 32:0 32:2000 32:5000 64:0 64:2000 64:5000"]
# (max_batch_size:max_queue_delay_us), REPEAT_ADAPTIVE [1], CAP_SETTING
# [64:2000], CAP_CONCURRENCY [64], CAP_DURATION [8], CAPACITY [measured],
# PROTOCOL [http-binary], MAX_OUTSTANDING [256] (open-loop requests in flight,
# HTTP connections), SAMPLE_MS [250], SERVER_CPUS [0], LOADGEN_CPUS [1],
# THREADS [1], NICE [10] (every process of the run), BUILD [build],
# PORT [18900] (HTTP; metrics +2), OUT [bench/results/step_load-<time>].
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${STEPS:-0.1,0.4,0.7,1.0,1.2,0.7,0.1}"
STEP_S="${STEP_S:-8}"
DRAIN="${DRAIN:-5}"
TARGET_US="${TARGET_US:-auto}"
ADAPTIVE_MAX_BATCH="${ADAPTIVE_MAX_BATCH:-64}"
ADAPTIVE_MAX_DELAY_US="${ADAPTIVE_MAX_DELAY_US:-5000}"
STATIC="${STATIC:-1:0 8:0 8:2000 32:0 32:2000 32:5000 64:0 64:2000 64:5000}"
REPEAT_ADAPTIVE="${REPEAT_ADAPTIVE:-1}"
CAP_SETTING="${CAP_SETTING:-64:2000}"
CAP_CONCURRENCY="${CAP_CONCURRENCY:-64}"
CAP_DURATION="${CAP_DURATION:-8}"
CAPACITY="${CAPACITY:-}"
PROTOCOL="${PROTOCOL:-http-binary}"
MAX_OUTSTANDING="${MAX_OUTSTANDING:-256}"
SAMPLE_MS="${SAMPLE_MS:-250}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
THREADS="${THREADS:-1}"
NICE="${NICE:-10}"
BUILD="${BUILD:-$ROOT/build}"
PORT="${PORT:-18900}"
OUT="${OUT:-$ROOT/bench/results/step_load-$(date -u +%Y%m%dT%H%M%SZ)}"
PY=/usr/bin/python3
ORTSERVE="$BUILD/src/server/ortserve"
LOADGEN="$BUILD/tools/loadgen/ortserve-loadgen"
RAW="$BUILD/bench/raw_ort/raw_ort_bench"
MODEL=weight
MODEL_FILE="$ROOT/bench/models/json_ab/weight/1/model.onnx"
METRICS_PORT=$((PORT + 2))
mkdir -p "$OUT"
log() { printf '[run_step_load] %s\n' "$*" >&2; }
for tool in "$ORTSERVE" "$LOADGEN" "$RAW"; do [[ -x "$tool" ]] || { log "missing $tool (build first)"; exit 1; }; done
[[ -f "$MODEL_FILE" ]] || "$PY" "$ROOT/bench/make_weight_models.py" "$ROOT/bench/models/json_ab"
on_server() { nice -n "$NICE" taskset -c "$SERVER_CPUS" "$@"; }
on_loadgen() { nice -n "$NICE" taskset -c "$LOADGEN_CPUS" "$@"; }

SERVER_PID=""
SAMPLER_PID=""
stop_all() {
  if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SAMPLER_PID=""
  SERVER_PID=""
}
trap stop_all EXIT

# A repository of one model, the weight-bound model's file under NAME's config.
make_repo() {  # NAME MAX_BATCH DELAY_US TARGET_US
  local dir="$OUT/repos/$1/$MODEL"
  mkdir -p "$dir/1"
  ln -f "$MODEL_FILE" "$dir/1/model.onnx" 2>/dev/null || cp "$MODEL_FILE" "$dir/1/model.onnx"
  {
    printf 'name: "%s"\nmax_batch_size: %s\ndynamic_batching {\n  max_queue_delay_microseconds: %s\n' "$MODEL" "$2" "$3"
    [[ "$4" -gt 0 ]] && printf '  latency_target_microseconds: %s\n' "$4"
    printf '}\n'
  } > "$dir/config.pbtxt"
  echo "$OUT/repos/$1"
}
start_server() {  # NAME REPO
  # Not through on_server: a function sent to the background runs in a subshell, and $! would be that.
  nice -n "$NICE" taskset -c "$SERVER_CPUS" "$ORTSERVE" --model-repository "$2" --http-port "$PORT" --grpc-port -1 --metrics-port "$METRICS_PORT" \
    --intra-op-thread-count "$THREADS" --log-level warn > "$OUT/$1-server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/models/$MODEL/ready" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited; see $OUT/$1-server.log"; exit 1; }
    sleep 0.1
  done
  log "not ready: $1"; exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

{
  echo "{\"nproc\": $(nproc), \"cpu_model\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -n1)\","
  echo " \"loadavg_at_start\": \"$(loadavg)\", \"git_rev\": \"$(git -C "$ROOT" rev-parse --short HEAD)\","
  echo " \"server_cpus\": \"$SERVER_CPUS\", \"loadgen_cpus\": \"$LOADGEN_CPUS\", \"threads\": $THREADS, \"nice\": $NICE,"
  echo " \"protocol\": \"$PROTOCOL\", \"steps\": [$STEPS], \"step_s\": $STEP_S, \"drain_s\": $DRAIN,"
  echo " \"adaptive_max_batch\": $ADAPTIVE_MAX_BATCH,"
  echo " \"adaptive_max_delay_us\": $ADAPTIVE_MAX_DELAY_US, \"static\": \"$STATIC\", \"cap_setting\": \"$CAP_SETTING\","
  echo " \"cap_concurrency\": $CAP_CONCURRENCY, \"max_outstanding\": $MAX_OUTSTANDING, \"sample_ms\": $SAMPLE_MS,"
  echo " \"started_utc\": \"$(date -u +%FT%TZ)\"}"
} > "$OUT/machine.json"

# 1. Capacity.
log "raw ORT sweep"
on_server "$RAW" --model "$MODEL_FILE" --threads "$THREADS" --batches 1,8,32,64 --seconds 2 \
  --json-out "$OUT/raw_ort.json" >&2
if [[ -z "$CAPACITY" ]]; then
  repo="$(make_repo capacity "${CAP_SETTING%%:*}" "${CAP_SETTING##*:}" 0)"
  start_server capacity "$repo"
  log "capacity: closed loop, concurrency $CAP_CONCURRENCY, static $CAP_SETTING"
  on_loadgen "$LOADGEN" --protocol "$PROTOCOL" --port "$PORT" -m "$MODEL" --concurrency "$CAP_CONCURRENCY" \
    --duration "$CAP_DURATION" --warmup 2 --label capacity --json-out "$OUT/capacity.json" >&2
  stop_all
  CAPACITY="$("$PY" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_rps"], 1))' "$OUT/capacity.json")"
fi
log "capacity $CAPACITY req/s"
if [[ "$TARGET_US" == auto ]]; then
  TARGET_US="$("$PY" -c 'import json, math, sys
r = json.load(open(sys.argv[1]))
run = [t["run_p50_us"] for t in r["throughput"] if t["batch"] == 32][0]
print(int(math.ceil(2.5 * run / 1000) * 1000))' "$OUT/raw_ort.json")"
fi
log "latency target $TARGET_US us"
echo "{\"capacity_rps\": $CAPACITY, \"target_us\": $TARGET_US}" > "$OUT/capacity_used.json"

# 2. The settings, one server each.
run_setting() {  # NAME MAX_BATCH DELAY_US TARGET_US
  local name="$1" repo i=0 frac rate
  repo="$(make_repo "$name" "$2" "$3" "$4")"
  start_server "$name" "$repo"
  local first="${STEPS%%,*}"
  on_loadgen "$LOADGEN" --protocol "$PROTOCOL" --port "$PORT" -m "$MODEL" --mode open \
    --rate "$("$PY" -c "print(max(1.0, $first * $CAPACITY))")" --max-outstanding "$MAX_OUTSTANDING" \
    --duration 2 --warmup 0 --drain "$DRAIN" --quiet > /dev/null
  nice -n "$NICE" taskset -c "$LOADGEN_CPUS" "$PY" "$ROOT/bench/step_load.py" sample --url "http://127.0.0.1:$METRICS_PORT/metrics" \
    --model "$MODEL" --interval-ms "$SAMPLE_MS" --out "$OUT/$name-metrics.jsonl" &
  SAMPLER_PID=$!
  for frac in ${STEPS//,/ }; do
    rate="$("$PY" -c "print(round(max(1.0, $frac * $CAPACITY), 1))")"
    log "$name step $i: $frac x capacity = $rate req/s"
    local t0 t1
    t0="$(date +%s.%N)"
    on_loadgen "$LOADGEN" --protocol "$PROTOCOL" --port "$PORT" -m "$MODEL" --mode open --rate "$rate" \
      --max-outstanding "$MAX_OUTSTANDING" --duration "$STEP_S" --warmup 0 --drain "$DRAIN" --seed $((17 + i)) \
      --label "$name-step$i" --json-out "$OUT/$name-step$i.json" --quiet > /dev/null
    t1="$(date +%s.%N)"
    echo "{\"setting\": \"$name\", \"step\": $i, \"fraction\": $frac, \"rate\": $rate, \"t_start\": $t0, \"t_end\": $t1}" \
      >> "$OUT/steps.jsonl"
    i=$((i + 1))
  done
  stop_all
}
SETTINGS=("adaptive:$ADAPTIVE_MAX_BATCH:$ADAPTIVE_MAX_DELAY_US:$TARGET_US")
for s in $STATIC; do SETTINGS+=("static-b${s%%:*}-d${s##*:}:${s%%:*}:${s##*:}:0"); done
[[ "$REPEAT_ADAPTIVE" == 1 ]] && SETTINGS+=("adaptive2:$ADAPTIVE_MAX_BATCH:$ADAPTIVE_MAX_DELAY_US:$TARGET_US")
: > "$OUT/steps.jsonl"
for s in "${SETTINGS[@]}"; do
  IFS=: read -r name mb delay target <<< "$s"
  run_setting "$name" "$mb" "$delay" "$target"
done
"$PY" - "$OUT/machine.json" "$(loadavg)" "$(date -u +%FT%TZ)" <<'PYEOF'
import json, sys
path, load, end = sys.argv[1:]
m = json.load(open(path)); m["loadavg_at_end"] = load; m["ended_utc"] = end
json.dump(m, open(path, "w"), indent=1)
PYEOF

# 3. The report.
"$PY" "$ROOT/bench/step_load.py" report "$OUT"
log "wrote $OUT/results.md and $OUT/step_load.svg"
