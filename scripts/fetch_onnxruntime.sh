#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches ONNX Runtime 1.29.0 (one build, commit 2e2543fbe9) from the npm
# registry and lays it out as a normal install prefix:
#   $ORT_PREFIX/include/onnxruntime_*.h
#   $ORT_PREFIX/lib/libonnxruntime.so.1 (+ .so symlink)
#   $ORT_PREFIX/lib/libonnxruntime_providers_{shared,cuda}.so   (ORT_WITH_CUDA=1)
# Tarballs are fetched with `npm pack` (never `npm install`: onnxruntime-node's
# install script tries a download), checked against their pinned sha512
# integrity, and cached outside the tree. Re-running is a no-op.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_PREFIX="${ORT_PREFIX:-$root/.deps/onnxruntime}"
CACHE="${ORTSERVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ortserve/npm}"
ORT_WITH_CUDA="${ORT_WITH_CUDA:-0}"

# package@version  sha512 integrity (from the registry's dist.integrity)
declare -A INTEGRITY=(
  [onnxruntime-node@1.29.0]='sha512-WjiVVB72riILz8HbYvxvmjKyE/WmkYoSfKY++axo5jAR609HQg8MwiG/HhShpTcJfmmAdzxxmB+MMST3A+SiPA=='
  [com.github.asus4.onnxruntime@0.4.9]='sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg=='
  [com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9]='sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w=='
)

log() { printf '[fetch_onnxruntime] %s\n' "$*" >&2; }

# Prints the path of the verified tarball for $1 (package@version).
fetch_tarball() {
  local spec="$1" want="${INTEGRITY[$1]}"
  local name="${spec%@*}" version="${spec##*@}"
  local file="$CACHE/${name//\//-}-$version.tgz"
  mkdir -p "$CACHE"
  if [[ ! -f "$file" ]] || ! verify "$file" "$want"; then
    log "npm pack $spec"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>"$tmp/err") || { cat "$tmp/err" >&2; exit 1; }
    mv "$tmp"/*.tgz "$file.part"
    rm -rf "$tmp"
    if ! verify "$file.part" "$want"; then
      log "integrity mismatch for $spec; refusing to use it"; rm -f "$file.part"; exit 1
    fi
    mv "$file.part" "$file"
  fi
  printf '%s\n' "$file"
}

verify() {
  local got
  got="sha512-$(openssl dgst -sha512 -binary "$1" 2>/dev/null | base64 -w0 || sha512sum "$1" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
  [[ "$got" == "$2" ]]
}

# The machine's own architecture, or ORT_ARCH (x64, arm64) for a cross build's
# prefix (scripts/setup_arm64.sh: ORT_ARCH=arm64 ORT_PREFIX=.deps/onnxruntime-arm64).
arch="${ORT_ARCH:-$(uname -m)}"
case "$arch" in
  x86_64|x64) npm_arch=x64 ;;
  aarch64|arm64) npm_arch=arm64 ;;
  *) log "unsupported architecture: $arch"; exit 1 ;;
esac

stamp="$ORT_PREFIX/.stamp"
want_stamp="ort=1.29.0 arch=$npm_arch cuda=$ORT_WITH_CUDA"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
  log "ONNX Runtime already in $ORT_PREFIX"
  exit 0
fi

work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$ORT_PREFIX/lib" "$ORT_PREFIX/include"

# 1. The shared library (a GPU-enabled build; SONAME libonnxruntime.so.1).
node_tgz="$(fetch_tarball onnxruntime-node@1.29.0)"
tar -xzf "$node_tgz" -C "$work" "package/bin/napi-v6/linux/$npm_arch/libonnxruntime.so.1"
install -m 0755 "$work/package/bin/napi-v6/linux/$npm_arch/libonnxruntime.so.1" "$ORT_PREFIX/lib/"
ln -sf libonnxruntime.so.1 "$ORT_PREFIX/lib/libonnxruntime.so"
ln -sf libonnxruntime.so.1 "$ORT_PREFIX/lib/libonnxruntime.so.1.29.0"

# 2. The C/C++ headers: the complete, platform-neutral set inside the Android .aar.
hdr_tgz="$(fetch_tarball com.github.asus4.onnxruntime@0.4.9)"
tar -xzf "$hdr_tgz" -C "$work" package/Plugins/Android/onnxruntime.aar
(cd "$work" && python3 -c 'import sys,zipfile
z=zipfile.ZipFile("package/Plugins/Android/onnxruntime.aar")
for n in z.namelist():
    if n.startswith("headers/") and not n.endswith("/"):
        z.extract(n, "aar")')
cp "$work"/aar/headers/*.h "$ORT_PREFIX/include/"
cp "$work"/aar/headers/*.inc "$ORT_PREFIX/include/" 2>/dev/null || true

# 3. The CUDA 13 execution provider, only when asked for.
if [[ "$ORT_WITH_CUDA" == 1 ]]; then
  [[ "$npm_arch" == x64 ]] || { log "the CUDA provider package is x86_64 only"; exit 1; }
  gpu_tgz="$(fetch_tarball com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9)"
  tar -xzf "$gpu_tgz" -C "$work"
  find "$work/package" -name 'libonnxruntime_providers_*.so' -exec install -m 0755 {} "$ORT_PREFIX/lib/" \;
  ls "$ORT_PREFIX"/lib/libonnxruntime_providers_cuda.so >/dev/null
fi

printf '%s\n' "$want_stamp" > "$stamp"
log "ONNX Runtime 1.29.0 installed in $ORT_PREFIX"
