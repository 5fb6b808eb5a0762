#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A/B of two ortserve builds on the KServe JSON path (issue #20.2), interleaved
# (old, new, old, new, ...) so that a shared machine's noise falls on both:
#
#   bench/json_ab.sh OLD_ORTSERVE NEW_ORTSERVE
#
# Models (written into bench/models/json_ab/, git-ignored), FP32 [b, 2048] in
# and out, max_batch_size 64, dynamic batching (2 ms):
#   weight  4 x (2048x2048 MatMul + ReLU), 64 MB: the weight-bound model of #20
#   relu    one ReLU: the model costs nothing, so the codec and HTTP are all
# Each round runs `ortserve-loadgen` closed loop at CONCURRENCY over HTTP JSON
# (random floats in [0,1), JSON outputs) and HTTP binary for reference.
#
# Environment: MODELS [weight relu], ROUNDS [3], DURATION [8], WARMUP [2],
# CONCURRENCY [32], SERVER_CPUS [0], LOADGEN_CPUS [1], THREADS [1] (ORT
# intra-op), LOADGEN [build/tools/loadgen/ortserve-loadgen], PORT [18700],
# OUT [bench/results/json_ab-<time>].
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OLD="${1:?usage: json_ab.sh OLD_ORTSERVE NEW_ORTSERVE}"
NEW="${2:?usage: json_ab.sh OLD_ORTSERVE NEW_ORTSERVE}"
MODELS="${MODELS:-weight relu}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
THREADS="${THREADS:-1}"
LOADGEN="${LOADGEN:-$ROOT/build/tools/loadgen/ortserve-loadgen}"
PORT="${PORT:-18700}"
OUT="${OUT:-$ROOT/bench/results/json_ab-$(date -u +%Y%m%dT%H%M%SZ)}"
REPO="$ROOT/bench/models/json_ab"
mkdir -p "$OUT"

if [[ ! -f "$REPO/weight/1/model.onnx" || ! -f "$REPO/relu/1/model.onnx" ]]; then
  /usr/bin/python3 "$ROOT/bench/make_weight_models.py" "$REPO"
fi

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}
trap stop_server EXIT

start_server() {  # BINARY
  taskset -c "$SERVER_CPUS" "$1" --model-repository "$REPO" --http-port "$PORT" --grpc-port -1 --metrics-port -1 \
    --intra-op-thread-count "$THREADS" --log-level warn > "$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$PORT/v2/health/ready" > /dev/null; then return 0; fi
    sleep 0.2
  done
  echo "server $1 did not become ready" >&2
  cat "$OUT/server.log" >&2
  exit 1
}

echo "build,model,protocol,round,req_per_s,p50_us,p99_us,errors" > "$OUT/runs.csv"
for round in $(seq 1 "$ROUNDS"); do
  for build in old new; do
    bin="$OLD"; [[ "$build" == new ]] && bin="$NEW"
    start_server "$bin"
    for model in $MODELS; do
      for protocol in http-json http-binary; do
        json="$OUT/$build-$model-$protocol-$round.json"
        taskset -c "$LOADGEN_CPUS" "$LOADGEN" -m "$model" --protocol "$protocol" --port "$PORT" --mode closed \
          -c "$CONCURRENCY" -d "$DURATION" --warmup "$WARMUP" --json-out "$json" > /dev/null
        /usr/bin/python3 - "$json" "$build" "$model" "$protocol" "$round" >> "$OUT/runs.csv" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r.get("latency_us", {})
errors = r.get("requests_failed", 0)
print(",".join(sys.argv[2:6] + [f'{r.get("throughput_rps", r.get("rps", 0)):.1f}',
                                 str(lat.get("p50", "")), str(lat.get("p99", "")), str(errors)]))
EOF
        tail -1 "$OUT/runs.csv"
      done
    done
    stop_server
  done
done

/usr/bin/python3 - "$OUT/runs.csv" <<'EOF' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = sorted({(r["model"], r["protocol"]) for r in rows})
print("| model | protocol | old req/s (median) | new req/s (median) | new/old |")
print("|---|---|---:|---:|---:|")
for model, protocol in keys:
    med = {}
    for build in ("old", "new"):
        med[build] = statistics.median(float(r["req_per_s"]) for r in rows
                                       if r["model"] == model and r["protocol"] == protocol and r["build"] == build)
    print(f"| {model} | {protocol} | {med['old']:.0f} | {med['new']:.0f} | {med['new'] / med['old']:.2f}x |")
EOF
echo "results in $OUT"
