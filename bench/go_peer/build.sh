#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Go peer offline: Debian's Go (apt-get install golang-go) and the
# onnxruntime_go module's source, from ONNXRUNTIME_GO_SRC (a checkout of
# github.com/yalue/onnxruntime_go whose C API header matches ORT 1.29,
# ORT_API_VERSION 29), copied into third_party/ (git-ignored) for go.mod's
# replace directive. Writes bench/go_peer/go_peer.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${ONNXRUNTIME_GO_SRC:-$HOME/.cache/ortserve/onnxruntime_go}"
command -v go >/dev/null || { echo "go_peer: needs Go (apt-get install golang-go)" >&2; exit 1; }
if [[ ! -f "$SRC/onnxruntime_go.go" ]]; then
  echo "go_peer: no onnxruntime_go source at $SRC (set ONNXRUNTIME_GO_SRC to a checkout)" >&2
  exit 1
fi
grep -q '#define ORT_API_VERSION 29' "$SRC/onnxruntime_c_api.h" ||
  echo "go_peer: warning: $SRC's C API header is not ORT_API_VERSION 29" >&2
rm -rf "$HERE/third_party/onnxruntime_go"
mkdir -p "$HERE/third_party/onnxruntime_go"
cp "$SRC"/*.go "$SRC"/*.c "$SRC"/*.h "$SRC/go.mod" "$HERE/third_party/onnxruntime_go/"
cd "$HERE"
GOFLAGS=-mod=mod GOPROXY=off GOCACHE="${GOCACHE:-$HOME/.cache/ortserve/go-build}" CGO_ENABLED=1 go build -o go_peer .
echo "$HERE/go_peer"
