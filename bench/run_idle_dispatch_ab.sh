#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Low load on bert_mini, one request at a time: the batcher off, on (a request
# that finds the queue empty and the instance idle runs at once), and on with
# dynamic_batching { wait_when_idle: true } (every batch waits out the 2 ms
# max_queue_delay, Triton's behaviour), alternated ROUNDS times in one run.
# Server on core 0 (1 ORT thread), load generator on core 1.
#   BUILD=build ROUNDS=2 DURATION=8 bench/run_idle_dispatch_ab.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-8}"
OUT="${OUT:-$ROOT/bench/results/idle-dispatch-$(date -u +%Y%m%dT%H%M%SZ)}"
HTTP_PORT="${HTTP_PORT:-18555}"
GRPC_PORT="${GRPC_PORT:-18556}"
mkdir -p "$OUT"
tmp="$(mktemp -d)"
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
[[ -f "$ROOT/bench/models/batching/bert_mini/1/model.onnx" ]] || { echo "run bench/make_bench_models.py first" >&2; exit 1; }
cp -r "$ROOT/bench/models/batching" "$tmp/on"
cp -r "$ROOT/bench/models/batching" "$tmp/wait"
sed -i 's/max_queue_delay_microseconds: 2000/max_queue_delay_microseconds: 2000 wait_when_idle: true/' \
  "$tmp/wait/bert_mini/config.pbtxt"
grep -q wait_when_idle "$tmp/wait/bert_mini/config.pbtxt"
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/machine.txt"
for round in $(seq 1 "$ROUNDS"); do
  for mode in off on wait; do
    repo="$tmp/$mode"
    [[ "$mode" == off ]] && repo="$ROOT/bench/models/nobatching"
    taskset -c 0 "$BUILD/src/server/ortserve" --model-repository "$repo" --http-port "$HTTP_PORT" \
      --grpc-port "$GRPC_PORT" --metrics-port -1 --intra-op-thread-count 1 --log-level warn > "$OUT/$mode.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$HTTP_PORT/v2/models/bert_mini/ready" && break; sleep 0.2; done
    for protocol in http-binary grpc; do
      port="$HTTP_PORT"; [[ "$protocol" == grpc ]] && port="$GRPC_PORT"
      taskset -c 1 "$BUILD/tools/loadgen/ortserve-loadgen" --protocol "$protocol" --port "$port" -m bert_mini \
        --duration "$DURATION" --warmup 2 --concurrency 1 --label "$mode-$protocol-$round" \
        --json-out "$OUT/$mode-$protocol-$round.json" -q > /dev/null
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/results.md"
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
label = {"off": "batching off", "on": "batching on (default)", "wait": "batching on, wait_when_idle"}
print("| batcher | protocol | round | mean us | p50 us | p99 us |")
print("|---|---|---:|---:|---:|---:|")
for protocol in ("http-binary", "grpc"):
    for mode in ("off", "on", "wait"):
        for r in range(1, rounds + 1):
            l = json.load(open(f"{out}/{mode}-{protocol}-{r}.json"))["latency_us"]
            print(f"| {label[mode]} | {protocol} | {r} | {l['mean']:.0f} | {l['p50']:.0f} | {l['p99']:.0f} |")
PY
