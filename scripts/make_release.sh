#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The release tarball of one build (docs/deploy.md, "Release tarball"):
#   <out>/ortserve-<version>-linux-<arch>.tar.gz          the `cmake --install` tree
#   <out>/ortserve-<version>-linux-<arch>.tar.gz.sha256   `sha256sum -c` checks it
# The tree is the relocatable install (bin/, lib/ with ONNX Runtime,
# share/ortserve/models with the demo models, docs) under one top folder
# ortserve-<version>-linux-<arch>/. <arch> is the binary's own (x86_64,
# aarch64), read from its ELF header, so a cross build is named for its target.
# The archive is reproducible: same build, same bytes (entries sorted, owner
# 0:0, every time stamp the commit's time, gzip without a name or time).
#   scripts/make_release.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, BUILD_DIR/release)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
out="${2:-$build/release}"
bin="$build/src/server/ortserve"
die() { echo "[release] $*" >&2; exit 1; }
[[ -x "$bin" ]] || die "$bin not built (cmake --build $build)"

machine="$(LC_ALL=C readelf -h "$bin" | sed -n 's/^ *Machine: *//p')"
case "$machine" in
  *X86-64*) arch=x86_64 ;;
  AArch64) arch=aarch64 ;;
  *) die "unknown ELF machine '$machine' in $bin" ;;
esac
# The version the binary reports (CMake's project version), as build_image.sh reads it;
# a cross-built binary cannot run here, so fall back to the CMake cache.
version="$("$bin" --version 2>/dev/null | sed -n 's/^ortserve \([^ ]*\) .*/\1/p' || true)"
if [[ -z "$version" ]]; then
  version="$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$build/CMakeCache.txt")"
fi
[[ "$version" =~ ^[0-9A-Za-z.+~-]+$ ]] || die "cannot read the version of $bin"
name="ortserve-$version-linux-$arch"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage/$name" --strip > "$stage/install.log" || { cat "$stage/install.log" >&2; die "cmake --install failed"; }
mkdir -p "$out"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$stage" -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz.part"
mv "$out/$name.tar.gz.part" "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "[release] $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$name.tar.gz.sha256")"
