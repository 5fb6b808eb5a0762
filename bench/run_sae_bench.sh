#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POST /api/v1/sae/analyze on the demo SAE model: the saturation throughput
# (closed loop), then p99 at 50% and 90% of it (open loop, Poisson arrivals),
# for each report in REPORTS:
#   short  a 19-word serious report (one window)
#   long   the issue #17 report: "I had a mild headache today. " x 25 and the
#          event at the end (about 900 characters, ~190 tokens: 11 windows of 32
#          tokens 16 apart, the demo model's setting)
#   2000w  a 2,000-word diary with the event in the middle (~2,340 tokens, 146 windows)
# With BASELINE=<build dir> the same runs are made against that build's
# ortserve first (e.g. main before a change), in the same invocation, so the
# two can be compared row by row; each (build, report) pair gets a fresh server.
# BASELINE_MODELS=<model repository> makes the baseline serve other models
# (e.g. main's, to compare a retrained model on the same binary); by default
# both serve this checkout's models/.
# The server runs on core 0, the load generator on core 1 when the machine has
# two or more cores. Prints markdown tables; raw JSON lands in bench/results/.
#   BUILD=build BASELINE=/work/main/build DURATION=10 REPORTS=short,long bench/run_sae_bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
BASELINE="${BASELINE:-}"
BASELINE_MODELS="${BASELINE_MODELS:-$root/models}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-32}"
REPORTS="${REPORTS:-short,long}"
out="$root/bench/results/sae-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
server_cpu=""; load_cpu=""
if (( $(nproc) >= 2 )); then server_cpu="taskset -c 0"; load_cpu="taskset -c 1"; fi

/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
short = "I felt dizzy after the second dose and then fainted in the kitchen, my husband called an ambulance"
event = "Then I could not breathe and my husband called 911."
long = "I had a mild headache today. " * 25 + event
diary = ["I had a mild headache today.", "My arm was a little sore where the shot went in.",
         "Felt a little tired today.", "Slept fine last night.",
         "A bit of nausea after lunch but it passed quickly.", "No fever today.",
         "Did some gardening and felt okay.", "My arm is a bit red and itchy.", "Feeling fine otherwise."]
words, parts, i = 0, [], 0
while words < 2000:
    s = diary[i % len(diary)]; parts.append(s); words += len(s.split()); i += 1
parts.insert(len(parts) // 2, event)
for name, text in (("short", short), ("long", long), ("2000w", " ".join(parts))):
    with open(os.path.join(out, f"body-{name}.json"), "w") as f:
        json.dump({"patientId": "p-1042", "reportText": text}, f)
PY

run_one() {  # run_one LABEL BUILD_DIR REPORT
  local label="$1" build="$2" report="$3" dir="$out/$1-$3"
  local models="$root/models"
  [[ "$label" == baseline ]] && models="$BASELINE_MODELS"
  mkdir -p "$dir"
  local log="$dir/server.log"
  $server_cpu "$build/src/server/ortserve" --model-repository "$models" --http-address 127.0.0.1 \
    --http-port 0 --grpc-port -1 --metrics-port -1 --intra-op-thread-count 1 --tokenizer-threads 1 \
    > "$log" 2>&1 &
  local server=$!
  local port=""
  for _ in $(seq 1 300); do
    port="$(grep -o 'HTTP listening on [^ ":]*:[0-9]*' "$log" | head -1 | sed 's/.*://')" || true
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "server did not start:"; cat "$log"; kill "$server"; exit 1; }
  # One answer kept, to show what each build says about the report.
  curl -s -X POST "127.0.0.1:$port/api/v1/sae/analyze" --data-binary "@$out/body-$report.json" > "$dir/answer.json" || true
  loadgen() {
    $load_cpu "$BUILD/tools/loadgen/ortserve-loadgen" --protocol http-json --port "$port" \
      --http-post /api/v1/sae/analyze --body-file "$out/body-$report.json" -d "$DURATION" --warmup "$WARMUP" -q "$@"
  }
  loadgen --mode closed -c "$CONCURRENCY" --json-out "$dir/closed.json"
  local max
  max="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput_rps"])' "$dir/closed.json")"
  for pct in 50 90; do
    local rate
    rate="$(/usr/bin/python3 -c "print(${max} * ${pct} / 100)")"
    loadgen --mode open -r "$rate" --max-outstanding 256 --json-out "$dir/open${pct}.json"
  done
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
}

labels=()
if [[ -n "$BASELINE" ]]; then labels+=("baseline=$BASELINE"); fi
labels+=("this=$BUILD")
IFS=',' read -r -a reports <<< "$REPORTS"
for report in "${reports[@]}"; do
  for entry in "${labels[@]}"; do run_one "${entry%%=*}" "${entry#*=}" "$report"; done
done
uptime > "$out/load.txt"

/usr/bin/python3 - "$out" "$REPORTS" <<'PY'
import json, os, sys
out, reports = sys.argv[1], sys.argv[2].split(",")
def load(*p):
    return json.load(open(os.path.join(out, *p)))
c = os.environ.get("CONCURRENCY", "32")
print(f"Run {os.path.basename(out)}; load at the end: {open(os.path.join(out, 'load.txt')).read().strip()}")
for report in reports:
    print(f"\n### report: {report}\n")
    print("| build | load | req/s | p50 ms | p99 ms | p99.9 ms | errors | windows | isSAE |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for label in ("baseline", "this"):
        d = os.path.join(out, f"{label}-{report}")
        if not os.path.isdir(d):
            continue
        try:
            a = load(d, "answer.json")
        except Exception:
            a = {}
        for name, f in ((f"saturation (closed, c={c})", "closed.json"), ("50% of max (open)", "open50.json"),
                        ("90% of max (open)", "open90.json")):
            r = load(d, f)
            lat = r["latency_us"]
            print(f"| {label} | {name} | {r['throughput_rps']:.0f} | {lat['p50']/1000:.2f} | {lat['p99']/1000:.2f} | "
                  f"{lat['p99_9']/1000:.2f} | {r['requests_failed']} | {a.get('windows', '-')} | {a.get('isSAE', '-')} |")
PY
