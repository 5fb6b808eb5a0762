#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where the server core's time goes at saturation: one closed-loop run of
# ortserve on the weight-bound model (server on core 0 with one ORT thread,
# load generator on core 1), and during it perf stat (CPU time, context
# switches, system calls per inference) and optionally perf record, whose
# samples bench/classify_profile.py sorts into components (µs per inference).
#
#   bench/saturation_profile.sh BUILD OUT PROTOCOL [ortserve args...]
#   REC=1        also perf record (OUT/perf.data, OUT/classes.txt)
#   C=64         connections; DUR=12 s of load; WIN=6 s measured in its middle
#   DELAY=2000   max_queue_delay_microseconds; DB='wait_when_idle: true' adds to dynamic_batching
#   EV=...       perf stat events (default: CPU time, switches, the I/O system calls)
# Needs perf (root, or perf_event_paranoid <= 1 for the syscall tracepoints).
# Prints the window's inferences, executions and mean batch (from the KServe
# statistics), server CPU per inference, events per inference, and the
# load generator's throughput; writes the same to OUT/summary.txt.
set -u
BUILD=$1; OUT=$2; P=$3; shift 3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${MODEL:-$ROOT/bench/models/json_ab/weight/1/model.onnx}"
C=${C:-64}; DUR=${DUR:-12}; WIN=${WIN:-6}; REC=${REC:-0}
HTTP=${HTTP_PORT:-18910}; GRPC=$((HTTP + 1)); METRICS=$((HTTP + 2))
[[ -f "$MODEL" ]] || { echo "no $MODEL: run bench/make_weight_models.py" >&2; exit 1; }
mkdir -p "$OUT/repo/weight/1"
cp "$MODEL" "$OUT/repo/weight/1/model.onnx"
printf 'name: "weight"\nmax_batch_size: 64\ndynamic_batching { max_queue_delay_microseconds: %s %s }\n' \
  "${DELAY:-2000}" "${DB:-}" > "$OUT/repo/weight/config.pbtxt"
taskset -c 0 "$BUILD/src/server/ortserve" --model-repository "$OUT/repo" --http-port $HTTP --grpc-port $GRPC \
  --metrics-port $METRICS --intra-op-thread-count 1 --http-address 127.0.0.1 --grpc-address 127.0.0.1 \
  --metrics-address 127.0.0.1 --log-level warn "$@" > "$OUT/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP/v2/models/weight/ready" && break; sleep 0.1; done
port=$HTTP; [[ $P == grpc ]] && port=$GRPC
taskset -c 1 "$BUILD/tools/loadgen/ortserve-loadgen" --protocol "$P" --port $port -m weight --concurrency "$C" \
  --duration "$DUR" --warmup 2 > "$OUT/loadgen.txt" 2>&1 &
lg=$!
sleep 4
stats() { curl -s "http://127.0.0.1:$HTTP/v2/models/weight/stats"; }
s0=$(stats)
EV=${EV:-task-clock,context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto}
if [[ $REC == 1 ]]; then
  perf record -F 2000 -g -p $pid -o "$OUT/perf.data" -- sleep "$WIN" > "$OUT/perf_record.txt" 2>&1 &
  rec=$!
fi
perf stat -e "$EV" -p $pid -- sleep "$WIN" > "$OUT/perf_stat.txt" 2>&1
[[ $REC == 1 ]] && wait $rec
s1=$(stats)
wait $lg
kill $pid; wait $pid 2>/dev/null
trap - EXIT
python3 - "$s0" "$s1" "$OUT/perf_stat.txt" "$WIN" > "$OUT/summary.txt" <<'PY'
import json, re, sys
a = json.loads(sys.argv[1])["model_stats"][0]
b = json.loads(sys.argv[2])["model_stats"][0]
win = float(sys.argv[4])
inf = b["inference_count"] - a["inference_count"]
ex = b["execution_count"] - a["execution_count"]
print(f"window {win:.0f} s: {inf} inferences ({inf / win:.1f}/s), {ex} executions, mean batch {inf / max(ex, 1):.2f}")
for line in open(sys.argv[3]):
    m = re.match(r"\s*([\d,.]+)\s+(msec\s+)?(\S+)", line)
    if not m or m.group(3) in ("seconds",):
        continue
    v = float(m.group(1).replace(",", ""))
    if m.group(3) == "task-clock":
        print(f"server CPU {v / 10 / win:.1f}% of a core, {v * 1000 / max(inf, 1):.1f} us per inference")
    else:
        print(f"{m.group(3)}: {v / max(inf, 1):.2f} per inference")
PY
grep -h throughput "$OUT/loadgen.txt" >> "$OUT/summary.txt"
if [[ $REC == 1 ]]; then
  us=$(sed -n 's/.*, \([0-9.]*\) us per inference/\1/p' "$OUT/summary.txt")
  python3 "$ROOT/bench/classify_profile.py" "$OUT/perf.data" "$us" > "$OUT/classes.txt"
fi
cat "$OUT/summary.txt"
