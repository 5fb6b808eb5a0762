#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The cost of the gateway hop (issue 26): one ortserve serves iris_classifier
# (the remote); a second ortserve serves it as a remote model (platform
# "remote", KServe v2 HTTP). The same load goes to the remote directly and
# through the gateway, in one run: one request at a time (added latency) and
# a closed loop of 32 (throughput ceiling). Then the concurrency bound: the
# remote also serves iris_slow, whose dynamic batcher holds each batch 10 ms
# unless 64 rows fill it (a remote with 10 ms latency that carries load by
# batching); a closed loop of 64 goes to it directly and through gateways
# with max_inflight 16 and 64 (each runner holds one remote call, so the
# gateway carries at most max_inflight / latency), and through a gateway
# with 16 runners that batches (each call carries a batch). Results: JSON per run
# under OUT, and a markdown table on stdout.
#
# Usage: bench/run_remote_bench.sh [BUILD=build] [DURATION=10] [OUT=/tmp/remote-bench]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
DURATION="${DURATION:-10}"
OUT="${OUT:-/tmp/remote-bench}"
INFLIGHT="${INFLIGHT:-16}"
SERVER="$BUILD/src/server/ortserve"
LOADGEN="${LOADGEN:-$BUILD/tools/loadgen/ortserve-loadgen}"
REMOTE_PORT="${REMOTE_PORT:-18611}"
GATEWAY_PORT="${GATEWAY_PORT:-18621}"
log() { printf '[remote_bench] %s\n' "$*" >&2; }
for bin in "$SERVER" "$LOADGEN"; do [[ -x "$bin" ]] || { log "$bin not built"; exit 1; }; done

mkdir -p "$OUT"
REPO_REMOTE="$OUT/repo-remote"; REPO_GATEWAY="$OUT/repo-gateway"
rm -rf "$REPO_REMOTE" "$REPO_GATEWAY"
mkdir -p "$REPO_REMOTE" "$REPO_GATEWAY/iris_classifier/1"
cp -r "$ROOT/models/iris_classifier" "$REPO_REMOTE/"
cp -r "$ROOT/models/iris_classifier" "$REPO_REMOTE/iris_slow"
sed -i -e 's/name: "iris_classifier"/name: "iris_slow"/' -e 's/max_queue_delay_microseconds: 500/max_queue_delay_microseconds: 10000/' \
  "$REPO_REMOTE/iris_slow/config.pbtxt"
gateway_model() {  # NAME REMOTE_MODEL MAX_INFLIGHT [EXTRA CONFIG]
  mkdir -p "$REPO_GATEWAY/$1/1"
  cat > "$REPO_GATEWAY/$1/config.pbtxt" <<CFG
platform: "remote"
max_batch_size: 64
remote { endpoints: "127.0.0.1:$REMOTE_PORT" model_name: "$2" max_inflight: $3 }
${4:-}
CFG
}
gateway_model iris_classifier iris_classifier "$INFLIGHT"
gateway_model iris_slow_16 iris_slow 16
gateway_model iris_slow_64 iris_slow 64
# 16 runners, each forwarding a batch the gateway's own batcher formed.
gateway_model iris_slow_16b iris_slow 16 "dynamic_batching { max_queue_delay_microseconds: 500 }"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_ready() {
  for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "not ready: $1"; exit 1
}
"$SERVER" --model-repository "$REPO_REMOTE" --http-port "$REMOTE_PORT" --grpc-port -1 --metrics-port -1 \
  --log-level warn > "$OUT/remote.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$REMOTE_PORT/v2/models/iris_classifier/ready"
wait_ready "http://127.0.0.1:$REMOTE_PORT/v2/models/iris_slow/ready"
"$SERVER" --model-repository "$REPO_GATEWAY" --http-port "$GATEWAY_PORT" --grpc-port -1 --metrics-port -1 \
  --log-level warn > "$OUT/gateway.log" 2>&1 &
PIDS+=($!)
for m in iris_classifier iris_slow_16 iris_slow_64 iris_slow_16b; do wait_ready "http://127.0.0.1:$GATEWAY_PORT/v2/models/$m/ready"; done

run() {  # NAME PORT CONCURRENCY [MODEL]
  log "$1"
  "$LOADGEN" --protocol http-binary --port "$2" -m "${4:-iris_classifier}" --concurrency "$3" --duration "$DURATION" \
    --warmup 2 --drain 5 --label "$1" --json-out "$OUT/$1.json" -q
}
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc), git $(git -C "$ROOT" rev-parse --short HEAD)" \
  > "$OUT/machine.txt"
run direct-c1 "$REMOTE_PORT" 1
run gateway-c1 "$GATEWAY_PORT" 1
run direct-c32 "$REMOTE_PORT" 32
run gateway-c32 "$GATEWAY_PORT" 32
run slow-direct-c64 "$REMOTE_PORT" 64 iris_slow
run slow-gateway16-c64 "$GATEWAY_PORT" 64 iris_slow_16
run slow-gateway64-c64 "$GATEWAY_PORT" 64 iris_slow_64
run slow-gateway16b-c64 "$GATEWAY_PORT" 64 iris_slow_16b
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(n): return json.load(open(os.path.join(out, n + ".json")))
print(open(os.path.join(out, "machine.txt")).read().strip())
print()
print("| run | concurrency | req/s | p50 ms | p99 ms | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
rows = {}
for name in ["direct-c1", "gateway-c1", "direct-c32", "gateway-c32",
             "slow-direct-c64", "slow-gateway16-c64", "slow-gateway64-c64", "slow-gateway16b-c64"]:
    r = load(name); rows[name] = r
    lat = r["latency_us"]
    print(f"| {name} | {name.rsplit('-c', 1)[1]} | {r['throughput_rps']:.0f} | {lat['p50'] / 1000:.3f} | "
          f"{lat['p99'] / 1000:.3f} | {r['requests_failed']} |")
d1, g1 = rows["direct-c1"]["latency_us"]["p50"] / 1000, rows["gateway-c1"]["latency_us"]["p50"] / 1000
print()
print(f"added p50 latency of the hop at concurrency 1: {g1 - d1:.3f} ms ({g1 / d1:.2f}x)")
print(f"throughput through the gateway at concurrency 32: "
      f"{rows['gateway-c32']['throughput_rps'] / rows['direct-c32']['throughput_rps']:.2f}x direct")
for n in ["slow-gateway16-c64", "slow-gateway64-c64", "slow-gateway16b-c64"]:
    print(f"{n}: {rows[n]['throughput_rps'] / rows['slow-direct-c64']['throughput_rps']:.2f}x direct")
PY
