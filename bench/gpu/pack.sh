#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs what the GPU machine needs to run ortserve's GPU benchmark into .gpu/
# (git-ignored), as pieces small enough to carry one per `run` call:
#
#   .gpu/bundle.tar.xz.NN  ortserve, ortserve-loadgen, raw_ort_bench (stripped
#                          copies, in bin/) and every shared library they load
#                          per ldd except the C library family (in lib/:
#                          libstdc++, libgcc_s, grpc, protobuf, absl, spdlog,
#                          fmt, prometheus-cpp, utf8proc, simdjson, tcmalloc,
#                          libonnxruntime.so.1, ...)
#   .gpu/cuda.tar.xz.NN    libonnxruntime_providers_{cuda,shared}.so (in lib/,
#                          so they land beside libonnxruntime.so.1)
#   .gpu/MANIFEST          one line per archive: sha256 name pieces bytes
#
# Archives are `xz -9e` (the GPU machine has no zstd; its python3 has lzma),
# split into pieces of at most $PIECE_SIZE. bench/gpu/device_run.sh receives,
# checks and unpacks them there; bench/gpu/README.md is the runbook.
#
# Usage: bench/gpu/pack.sh            (BUILD=build dir, default ./build; read only)
# Env:   BUILD, PIECE_SIZE (45M), XZ_THREADS (2), GPU_PACK_DIR (.gpu)
# The CUDA archive is rebuilt only when the provider libraries change.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$root/build}"
PACK="${GPU_PACK_DIR:-$root/.gpu}"
PIECE_SIZE="${PIECE_SIZE:-45M}"
XZ_THREADS="${XZ_THREADS:-2}"
# Blocks of 64 MiB let both xz threads work on the 230 MB provider library
# (xz -9's default block is 192 MiB, which leaves one thread idle).
XZ=(xz -9e -T"$XZ_THREADS" --block-size=64MiB)

log() { printf '[pack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in xz split sha256sum strip ldd tar; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

bins=(src/server/ortserve tools/loadgen/ortserve-loadgen bench/raw_ort/raw_ort_bench tests/gpu/gpu_serving_test)
missing=()
for b in "${bins[@]}"; do [[ -x "$BUILD/$b" ]] || missing+=("$BUILD/$b"); done
if ((${#missing[@]})); then
  die "not built: ${missing[*]} (cmake --build $BUILD --target ortserve ortserve-loadgen raw_ort_bench)"
fi

# raw_ort_bench must be the one with --cuda (bench/raw_ort/raw_ort_bench.cc of issue #8).
"$BUILD/bench/raw_ort/raw_ort_bench" --help | grep -q -- '--cuda' \
  || die "$BUILD/bench/raw_ort/raw_ort_bench has no --cuda: rebuild it (cmake --build $BUILD --target raw_ort_bench)"

mkdir -p "$PACK"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# Writes $1 (a folder) as $PACK/$2.tar.xz pieces; records its line in $stage/manifest.
archive() {
  local dir="$1" name="$2" whole="$stage/$2.tar.xz"
  log "compressing $name ($(du -sh "$dir" | cut -f1) staged) with ${XZ[*]}"
  local t0=$SECONDS
  tar -C "$dir" --owner=0 --group=0 --numeric-owner -cf - . | "${XZ[@]}" > "$whole"
  local bytes sha
  bytes="$(stat -c %s "$whole")"
  sha="$(sha256sum "$whole" | cut -d' ' -f1)"
  rm -f "$PACK/$name.tar.xz."*
  split -b "$PIECE_SIZE" -d -a 2 "$whole" "$PACK/$name.tar.xz."
  rm -f "$whole"
  local pieces
  pieces="$(ls "$PACK/$name.tar.xz."* | wc -l)"
  printf '%s %s.tar.xz %s %s\n' "$sha" "$name" "$pieces" "$bytes" > "$PACK/.$name.line"
  log "$name.tar.xz: $bytes bytes in $pieces piece(s), $((SECONDS - t0)) s"
}

# ---- 1. The bundle: binaries and their libraries -------------------------------
mkdir -p "$stage/bundle/bin" "$stage/bundle/lib"
for b in "${bins[@]}"; do
  cp "$BUILD/$b" "$stage/bundle/bin/"
  strip --strip-unneeded "$stage/bundle/bin/$(basename "$b")"
done
# The C library family comes from the GPU machine's own glibc (newer than ours);
# everything else travels.
c_family='^(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64|ld-linux)\.so'
for b in "${bins[@]}"; do ldd "$BUILD/$b"; done > "$stage/ldd.txt"
if grep -q 'not found' "$stage/ldd.txt"; then
  grep 'not found' "$stage/ldd.txt" >&2
  die "a library the binaries need is not found here"
fi
awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' "$stage/ldd.txt" | sort -u | while read -r soname path; do
  [[ "$soname" =~ $c_family ]] && continue
  cp -L "$path" "$stage/bundle/lib/$soname"
  chmod u+w "$stage/bundle/lib/$soname"
  strip --strip-unneeded "$stage/bundle/lib/$soname"
done
{
  echo "git_rev $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "packed_at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build $BUILD"
  for b in "${bins[@]}"; do echo "binary $b $(sha256sum "$BUILD/$b" | cut -d' ' -f1)"; done
} > "$stage/bundle/BUILDINFO"
ort_used="$(awk '$1 == "libonnxruntime.so.1" {print $3}' "$stage/ldd.txt" | head -n1)"
[[ -n "$ort_used" ]] || die "the binaries do not load libonnxruntime.so.1 (per ldd)"
log "bundle: $(ls "$stage/bundle/lib" | wc -l) libraries; libonnxruntime.so.1 from $ort_used"
archive "$stage/bundle" bundle

# ---- 2. The CUDA execution provider -------------------------------------------
provider_dir=""
for d in "$(dirname "$ort_used")" "$root/.deps/onnxruntime/lib" "$root/.deps/onnxruntime-cuda/lib"; do
  if [[ -f "$d/libonnxruntime_providers_cuda.so" && -f "$d/libonnxruntime_providers_shared.so" ]]; then
    provider_dir="$d"; break
  fi
done
if [[ -z "$provider_dir" ]]; then
  log "no CUDA provider here: ORT_WITH_CUDA=1 scripts/fetch_onnxruntime.sh into .deps/onnxruntime-cuda (npm)"
  ORT_WITH_CUDA=1 ORT_PREFIX="$root/.deps/onnxruntime-cuda" "$root/scripts/fetch_onnxruntime.sh" \
    || die "fetching the CUDA provider failed (npm registry unreachable?)"
  provider_dir="$root/.deps/onnxruntime-cuda/lib"
fi
# The provider must come from the same ORT build as the libonnxruntime.so.1 we carry.
if [[ -f "$provider_dir/libonnxruntime.so.1" ]] && ! cmp -s "$provider_dir/libonnxruntime.so.1" "$ort_used"; then
  die "$provider_dir/libonnxruntime.so.1 differs from $ort_used: the CUDA provider would not match the ORT build"
fi
cuda_inputs="$(cd "$provider_dir" && sha256sum libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so)"
if [[ -f "$PACK/.cuda.inputs" && "$(cat "$PACK/.cuda.inputs")" == "$cuda_inputs" && -f "$PACK/.cuda.line" ]] \
   && ls "$PACK/cuda.tar.xz."* >/dev/null 2>&1; then
  log "cuda.tar.xz: provider unchanged since the last pack; kept"
else
  mkdir -p "$stage/cuda/lib"
  for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    cp -L "$provider_dir/$f" "$stage/cuda/lib/"
    chmod u+w "$stage/cuda/lib/$f"
    strip --strip-unneeded "$stage/cuda/lib/$f"
  done
  archive "$stage/cuda" cuda
  printf '%s\n' "$cuda_inputs" > "$PACK/.cuda.inputs"
fi

cat "$PACK/.bundle.line" "$PACK/.cuda.line" > "$PACK/MANIFEST"

# ---- 3. Report ------------------------------------------------------------------
echo "pieces in $PACK (carry each with .gpu/MANIFEST; at most 45 MiB each):"
(cd "$PACK" && ls -l --time-style=+ MANIFEST bundle.tar.xz.* cuda.tar.xz.* | awk '{printf "  %-20s %10d bytes  %5.1f MiB\n", $NF, $5, $5/1048576}')
echo "archives (sha256 name pieces bytes):"
sed 's/^/  /' "$PACK/MANIFEST"

# A call plan: the working tree travels with every call, and tree + carried
# pieces must stay under 64 MiB; fill each call first-fit, largest piece first.
tree_bytes="$(cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null \
  | awk '{s += $1} END {print s + 0}')"
python3 - "$PACK" "$tree_bytes" <<'EOF'
import os, sys
pack, tree = sys.argv[1], int(sys.argv[2])
budget = 64 * 2**20 - tree - 2 * 2**20  # 2 MiB of margin for files others add meanwhile.
pieces = sorted((f for f in os.listdir(pack) if ".tar.xz." in f), key=lambda f: (-os.path.getsize(os.path.join(pack, f)), f))
calls = []
for f in pieces:
    size = os.path.getsize(os.path.join(pack, f))
    for c in calls:
        if c[0] + size <= budget:
            c[0] += size
            c[1].append(f)
            break
    else:
        calls.append([size, [f]])
calls[0][1].insert(0, "MANIFEST")
print(f"call plan (working tree {tree / 2**20:.1f} MiB; at most {budget / 2**20:.1f} MiB carried a call):")
for i, (size, files) in enumerate(calls, 1):
    steps = "receive unpack models" if i == len(calls) else "receive"
    carry = ", ".join(f'".gpu/{f}"' for f in files)
    print(f"  {i}. bash bench/gpu/device_run.sh {steps}   carry [{carry}]   ({size / 2**20:.1f} MiB)")
print(f"  {len(calls) + 1}. bash bench/gpu/device_run.sh bench   carry []")
print(f"  {len(calls) + 2}. bash bench/gpu/device_run.sh tests   carry []")
EOF
