#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The inputs of the capacity model (tools/capacity/mgc_sim.py, docs/deploy.md):
# POST /api/v1/sae/analyze on one replica of the demo SAE model with dynamic
# batching off (the model the simulation makes: one request at a time),
#   service.json  closed loop, one request at a time: the service-time distribution;
#   check.json    open loop, Poisson arrivals at RATE (default: 60% of 1/mean
#                 service time): the measured point the simulation is checked against.
# The server runs on core 0 (1 ORT thread, 1 tokenizer thread, 1 HTTP thread),
# the load generator on core 1. Writes into OUT (default bench/capacity/).
#   BUILD=build DURATION=20 bench/run_capacity_bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
DURATION="${DURATION:-20}"
OUT="${OUT:-$root/bench/capacity}"
mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c 0"; load_cpu="taskset -c 1"; fi

# The demo SAE model without its dynamic batcher.
cp -r "$root/models/sae_classifier" "$tmp/"
python3 - "$tmp/sae_classifier/config.pbtxt" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"dynamic_batching \{.*?\n\}\n", "", s, flags=re.S)
open(p, "w").write(s)
PY
grep -q dynamic_batching "$tmp/sae_classifier/config.pbtxt" && { echo "batching still on" >&2; exit 1; }
printf '%s\n' '{"patientId": "p-1042", "reportText": "I felt dizzy after the second dose and then fainted in the kitchen, my husband called an ambulance"}' > "$tmp/body.json"

$server_cpu "$BUILD/src/server/ortserve" --model-repository "$tmp" --http-address 127.0.0.1 --http-port 0 \
  --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 --http-thread-count 1 \
  --log-format text > "$tmp/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 1 300); do
  port="$(grep -o 'HTTP listening on [^ ":]*:[0-9]*' "$tmp/server.log" | head -1 | sed 's/.*://')" || true
  [[ -n "$port" ]] && curl -sf "127.0.0.1:$port/v2/health/ready" >/dev/null && break
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$tmp/server.log"; exit 1; }
loadgen() {
  $load_cpu "$BUILD/tools/loadgen/ortserve-loadgen" --port "$port" --http-post /api/v1/sae/analyze \
    --body-file "$tmp/body.json" -d "$DURATION" --warmup 2 -q "$@"
}
loadgen --mode closed -c 1 --label "service time: closed loop, one at a time" --json-out "$OUT/service.json"
mean_us="$(python3 -c "import json; print(json.load(open('$OUT/service.json'))['latency_us']['mean'])")"
RATE="${RATE:-$(python3 -c "print(round(0.6e6 / $mean_us))")}"
loadgen --mode open -r "$RATE" --max-outstanding 256 --label "check: open loop, Poisson, $RATE/s" \
  --json-out "$OUT/check.json"
python3 - "$OUT" <<'PY'
import json, sys
for name in ("service", "check"):
    r = json.load(open(f"{sys.argv[1]}/{name}.json"))
    l = r["latency_us"]
    print(f"{name}: {r['throughput_rps']:.0f} req/s, mean {l['mean']:.0f} us, p50 {l['p50']:.0f}, "
          f"p99 {l['p99']:.0f}, p99.9 {l['p99_9']:.0f}, errors {r['requests_failed']}")
PY
