#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real, trained models (PaddleOCR, Silero VAD; fetched by
# `bench/run_bench.sh --fetch-real-models`) against raw ONNX Runtime, in one
# run: raw ORT's best throughput over batch sizes and its single-run latency,
# then ortserve with batching off and on (closed loop, HTTP binary). The OCR
# recognizer gets a request mix of three text-line widths, so its batched run
# is a test of shape-aware batching (pad_variable_dims pads each batch to its
# widest line; without it only equal widths batch together).
#
#   bench/run_real_bench.sh                # writes bench/results/real-<time>/results.md
#
# Environment: BUILD [build], DURATION [8], WARMUP [2], SERVER_CPUS [0],
# LOADGEN_CPUS [1], THREADS [1], CONCURRENCY [16], BASE_PORT [18600].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
THREADS="${THREADS:-1}"
CONCURRENCY="${CONCURRENCY:-16}"
BASE_PORT="${BASE_PORT:-18600}"
ORTSERVE="$BUILD/src/server/ortserve"
LOADGEN="$BUILD/tools/loadgen/ortserve-loadgen"
RAW="$BUILD/bench/raw_ort/raw_ort_bench"
REAL="$ROOT/bench/models/real"

log() { printf '[run_real_bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for bin in "$ORTSERVE" "$LOADGEN" "$RAW"; do
  [[ -x "$bin" ]] || die "$bin not built (cmake --build $BUILD --target ortserve ortserve-loadgen raw_ort_bench)"
done
[[ -f "$REAL/ch_PP_OCRv4_rec_infer/1/model.onnx" ]] || die "run bench/run_bench.sh --fetch-real-models first"

OUT="$ROOT/bench/results/real-$(date -u +%Y%m%dT%H%M%SZ)"
REPO="$OUT/repository"
mkdir -p "$REPO"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# name source-model config-body: a repository entry with the fetched weights
# (hard-linked where the filesystem allows, else copied: a symbolic link out
# of the repository fails the load).
add_model() {
  mkdir -p "$REPO/$1/1"
  ln -f "$REAL/$2/1/model.onnx" "$REPO/$1/1/model.onnx" 2>/dev/null || cp "$REAL/$2/1/model.onnx" "$REPO/$1/1/model.onnx"
  printf '%s\n' "$3" > "$REPO/$1/config.pbtxt"
}
OCR_IN='input { name: "x" data_type: TYPE_FP32 dims: [3, 48, -1] }'
add_model cls_unbatched ch_ppocr_mobile_v2_0_cls_infer 'max_batch_size: 0'
# Batches of at most 4: raw ORT's best batch for the classifier on this kind
# of CPU (larger batches run slower per image here; see results).
add_model cls_batched ch_ppocr_mobile_v2_0_cls_infer \
  'max_batch_size: 4
dynamic_batching { max_queue_delay_microseconds: 2000 preferred_batch_size: [4] }'
add_model rec_unbatched ch_PP_OCRv4_rec_infer 'max_batch_size: 0'
add_model rec_batched ch_PP_OCRv4_rec_infer \
  "max_batch_size: 4
$OCR_IN
dynamic_batching { max_queue_delay_microseconds: 2000 pad_variable_dims: true pad_value: 0 }"
# The same mix without padding: each batch takes one width (shape-aware batching).
add_model rec_by_width ch_PP_OCRv4_rec_infer \
  "max_batch_size: 4
$OCR_IN
dynamic_batching { max_queue_delay_microseconds: 2000 }"
add_model vad silero_vad 'max_batch_size: 0'

taskset -c "$SERVER_CPUS" "$ORTSERVE" --model-repository "$REPO" --http-port "$BASE_PORT" --grpc-port -1 \
  --metrics-port -1 --intra-op-thread-count "$THREADS" --log-level warn > "$OUT/ortserve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$BASE_PORT/v2/health/ready" && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/ortserve.log"
  sleep 0.1
done

loadgen() {  # NAME MODEL [flags...]
  local name="$1" model="$2"; shift 2
  log "$name"
  taskset -c "$LOADGEN_CPUS" "$LOADGEN" --protocol http-binary --port "$BASE_PORT" -m "$model" \
    --duration "$DURATION" --warmup "$WARMUP" -c "$CONCURRENCY" --label "$name" --json-out "$OUT/$name.json" "$@" \
    | tee -a "$OUT/loadgen.txt" >&2
}
raw() {  # NAME MODEL DIM [flags...]
  local name="$1" model="$2" dim="$3"; shift 3
  log "raw ORT: $name"
  taskset -c "$SERVER_CPUS" "$RAW" --model "$REAL/$model/1/model.onnx" --threads "$THREADS" --dim "$dim" \
    --seconds 2 --json-out "$OUT/$name.json" "$@" >> "$OUT/raw.txt" 2>&1
}

raw raw_cls ch_ppocr_mobile_v2_0_cls_infer 192 --dims 48,192 --batches 1,2,4,8,16,32
loadgen cls_unbatched cls_unbatched --shape x:1,3,48,192
loadgen cls_batched cls_batched --shape x:1,3,48,192
raw raw_rec ch_PP_OCRv4_rec_infer 240 --batches 1,2,4,8,16
loadgen rec_unbatched rec_unbatched --shape x:1,3,48,160 --shape x:1,3,48,240 --shape x:1,3,48,320
loadgen rec_batched rec_batched --shape x:1,3,48,160 --shape x:1,3,48,240 --shape x:1,3,48,320
loadgen rec_by_width rec_by_width --shape x:1,3,48,160 --shape x:1,3,48,240 --shape x:1,3,48,320
loadgen vad vad --shape input:1,512 --shape state:2,1,128 --int-min 16000 --int-max 16000

"$ROOT/bench/summarize_real.py" "$OUT" > "$OUT/results.md" 2>/dev/null || true
log "results in $OUT"
