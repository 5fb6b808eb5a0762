#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the bundled INT8 siblings (docs/int8.md) from the FP32 models:
#   models/sae_classifier  -> models/sae_classifier_int8
#   models/text_embedding  -> models/text_embedding_int8
# and checks each against its FP32 model through ortserve (BUILD's binary):
# the SAE sibling must agree with the FP32 model on at least MIN_AGREEMENT of
# the probe set's verdicts and labels, the embedding sibling must keep every
# probe's embedding within MIN_COSINE of the FP32 one. The check's numbers go
# to models/<name>_int8/quantization.json. Re-run after any change to an FP32
# model (e.g. a retrained sae_classifier): `make int8-models`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$root/build}"
MIN_AGREEMENT="${MIN_AGREEMENT:-0.97}"
MIN_COSINE="${MIN_COSINE:-0.99}"
server="$BUILD/src/server/ortserve"
[[ -x "$server" ]] || { echo "make_int8_models: $server not built (cmake --build $BUILD --target ortserve)" >&2; exit 1; }
cd "$root"
/usr/bin/python3 scripts/quantize_int8.py models/sae_classifier models/sae_classifier_int8 \
  --skip-layernorm --check "$server" --texts data/sae/probes.jsonl --min-agreement "$MIN_AGREEMENT" \
  --report models/sae_classifier_int8/quantization.json
/usr/bin/python3 scripts/quantize_int8.py models/text_embedding models/text_embedding_int8 \
  --skip-layernorm --check "$server" --texts data/sae/probes.jsonl --min-cosine "$MIN_COSINE" \
  --report models/text_embedding_int8/quantization.json
