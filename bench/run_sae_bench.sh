#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POST /api/v1/sae/analyze on the demo SAE model: the saturation throughput
# (closed loop), then p99 at 50% and 90% of it (open loop, Poisson arrivals).
# The server runs on core 0, the load generator on core 1 when the machine has
# two or more cores. Prints a markdown table; raw JSON lands in bench/results/.
#   BUILD=build DURATION=10 bench/run_sae_bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
out="$root/bench/results/sae-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c 0"; load_cpu="taskset -c 1"; fi

body="$out/body.json"
printf '%s\n' '{"patientId": "p-1042", "reportText": "I felt dizzy after the second dose and then fainted in the kitchen, my husband called an ambulance"}' > "$body"

log="$out/server.log"
$server_cpu "$BUILD/src/server/ortserve" --model-repository "$root/models" --http-address 127.0.0.1 \
  --http-port 0 --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 \
  > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 200); do
  port="$(grep -o 'HTTP listening on [^ ":]*:[0-9]*' "$log" | head -1 | sed 's/.*://')" || true
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "server did not start:"; cat "$log"; exit 1; }

loadgen() {
  $load_cpu "$BUILD/tools/loadgen/ortserve-loadgen" --protocol http-json --port "$port" \
    --http-post /api/v1/sae/analyze --body-file "$body" -d "$DURATION" --warmup "$WARMUP" -q "$@"
}
loadgen --mode closed -c "$CONCURRENCY" --json-out "$out/closed.json"
max="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput_rps"])' "$out/closed.json")"
for pct in 50 90; do
  rate="$(/usr/bin/python3 -c "print(${max} * ${pct} / 100)")"
  loadgen --mode open -r "$rate" --max-outstanding 256 --json-out "$out/open${pct}.json"
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name)))
rows = [("saturation (closed loop, c=%s)" % os.environ.get("CONCURRENCY", "32"), load("closed.json")),
        ("50% of max (open loop)", load("open50.json")), ("90% of max (open loop)", load("open90.json"))]
print("| load | req/s | p50 ms | p99 ms | p99.9 ms | errors |")
print("|---|---:|---:|---:|---:|---:|")
for name, r in rows:
    lat = r["latency_us"]
    print(f"| {name} | {r['throughput_rps']:.0f} | {lat['p50']/1000:.2f} | {lat['p99']/1000:.2f} | "
          f"{lat['p99_9']/1000:.2f} | {r['requests_failed']} |")
PY
