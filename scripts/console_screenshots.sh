#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The pictures in docs/console.md: the demo models (iris_classifier with a
# second version, an 80/20 A/B split and a shadow) under a minute and a half
# of mixed traffic (KServe inferences, SAE analyses, embeddings), taken by
# the console browser test's driver in Debian's headless chromium.
#   scripts/console_screenshots.sh [build-dir] [out-dir]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
out="${2:-$root/docs/images}"
work="$(mktemp -d)"
server_pid=""
load_pids=()
cleanup() {
  for pid in "${load_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/models" "$work/models"
cp -r "$work/models/iris_classifier/1" "$work/models/iris_classifier/2"
cat >> "$work/models/iris_classifier/config.pbtxt" <<'CONFIG'
version_policy { all {} }
routing {
  split { version: 1 weight: 0.8 }
  split { version: 2 weight: 0.2 }
  shadow { version: 2 fraction: 0.5 }
}
CONFIG
"$build/src/server/ortserve" --model-repository "$work/models" --model-control-mode explicit --load-model '*' \
  --http-port 0 --grpc-port -1 --metrics-port -1 --log-format text >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's/.*HTTP listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)"
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/server.log"; exit 1; }
base="http://127.0.0.1:$port"

iris='{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}'
reports=("mild headache after the second dose" "I cant breathe and my throat is swelling"
         "slight rash on the arm, itching" "chest pain and fainted at home, taken to hospital"
         "tired for a day" "seizure last night, never had one before")
( while true; do curl -s -o /dev/null -X POST "$base/v2/models/iris_classifier/infer" -d "$iris"; done ) &
load_pids+=($!)
( while true; do curl -s -o /dev/null -X POST "$base/v2/models/iris_classifier/infer" -d "$iris"; sleep 0.01; done ) &
load_pids+=($!)
( i=0; while true; do
    text="${reports[$((i % ${#reports[@]}))]}"
    curl -s -o /dev/null -X POST "$base/api/v1/sae/analyze" -d "{\"patientId\":\"demo-$i\",\"reportText\":\"$text\"}"
    i=$((i + 1)); sleep 0.2
  done ) &
load_pids+=($!)
( while true; do curl -s -o /dev/null -X POST "$base/embed" -d '{"inputs":["mild headache","chest pain"]}'; sleep 0.05; done ) &
load_pids+=($!)
sleep "${CONSOLE_WARMUP_SECONDS:-90}"

mkdir -p "$out"
/usr/bin/node --experimental-websocket --no-warnings "$root/tests/integration/console_browser.mjs" \
  --chromium "${ORTSERVE_CHROMIUM:-/usr/bin/chromium}" --base "$base" --traffic-model iris_classifier \
  --unload-model string_length --screenshots "$out"
echo "screenshots in $out"
