#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Everything the linux/arm64 cross build (docs/arm64.md) needs on an amd64
# Debian 12 machine, without touching the host's own packages:
#   - the cross compiler (g++-aarch64-linux-gnu) and qemu-user-static, host
#     packages, installed only if a simulated install removes or upgrades nothing;
#   - an arm64 sysroot, $ARM64_SYSROOT (default .deps/sysroot-arm64): Debian's
#     arm64 builds of the -dev packages scripts/setup.sh installs for amd64 and
#     their runtime closure, fetched with apt through a private state directory
#     (APT::Architecture=arm64) and unpacked with dpkg-deb -x;
#   - ONNX Runtime's linux/arm64 library from the same onnxruntime-node@1.29.0
#     package as the amd64 one, in $ORT_PREFIX (default .deps/onnxruntime-arm64).
# Why a sysroot rather than `dpkg --add-architecture arm64`: Multi-Arch: same
# packages must have one version across architectures, so installing e.g.
# libssl-dev:arm64 upgrades the host's libssl3/libssl-dev/zlib1g-dev:amd64 in
# step whenever the host is behind the archive, under everyone building here.
# The sysroot leaves dpkg's configuration and the amd64 packages as they are.
# Safe to re-run: finished steps are skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSROOT="${ARM64_SYSROOT:-$root/.deps/sysroot-arm64}"
ORT_PREFIX="${ORT_PREFIX:-$root/.deps/onnxruntime-arm64}"
log() { printf '[setup_arm64] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# 1. Host packages (amd64): the cross toolchain and the user-mode emulator.
host_packages=(g++-aarch64-linux-gnu qemu-user-static)
missing=()
for p in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  sim="$(LC_ALL=C apt-get -s install --no-install-recommends "${missing[@]}")"
  if grep -qE '^(Remv|Inst [^ ]+ \[)' <<<"$sim"; then
    grep -E '^(Remv|Inst [^ ]+ \[)' <<<"$sim" >&2
    die "installing ${missing[*]} would remove or upgrade host packages (above); not doing it"
  fi
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 1b. binfmt_misc: the kernel hands arm64 programs to qemu-aarch64, so a test
# that starts an arm64 program as a child runs it too (qemu-user alone does not
# follow execve into another arm64 program). Needs root; without it the tests
# in tests/arm64/ctest_exclude.txt are left out.
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    mountpoint -q /proc/sys/fs/binfmt_misc ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
  fi
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && log "binfmt_misc: qemu-aarch64 registered" ||
    log "binfmt_misc: qemu-aarch64 not registered (needs root); tests that start arm64 programs are left out"
fi

# 2. The arm64 sysroot. The libraries of scripts/setup.sh, arm64 builds.
sysroot_packages=(
  libc6-dev libstdc++-12-dev
  libboost1.81-dev libboost-url1.81-dev libgrpc++-dev libprotobuf-dev libabsl-dev
  libsimdjson-dev libfast-float-dev rapidjson-dev libspdlog-dev libfmt-dev libcli11-dev
  libutf8proc-dev prometheus-cpp-dev libgoogle-perftools-dev libssl-dev libhiredis-dev
  libsqlite3-dev libhnswlib-dev zlib1g-dev
  libgtest-dev libgmock-dev
)
want_stamp="packages=${sysroot_packages[*]}"
if [[ -f "$SYSROOT/.stamp" && "$(cat "$SYSROOT/.stamp")" == "$want_stamp" ]]; then
  log "arm64 sysroot already in $SYSROOT"
else
  state="$SYSROOT.apt"
  mkdir -p "$state"/{lists/partial,archives/partial,sources.list.d,preferences.d}
  : > "$state/status"
  # The host's Debian sources (deb822), used for arm64 instead of amd64.
  cp /etc/apt/sources.list.d/debian.sources "$state/sources.list.d/"
  apt_opts=(
    -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64"
    -o "Dir::State::Lists=$state/lists" -o "Dir::State::status=$state/status"
    -o "Dir::Cache=$state" -o "Dir::Cache::archives=$state/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$state/sources.list.d"
    -o "Dir::Etc::preferencesparts=$state/preferences.d"
    -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
  )
  log "apt-get update (arm64, private state in $state)"
  apt-get "${apt_opts[@]}" update -qq
  log "downloading the arm64 packages and their dependencies"
  apt-get "${apt_opts[@]}" install -y -qq --download-only --no-install-recommends \
    "${sysroot_packages[@]}" >/dev/null
  rm -rf "$SYSROOT.part"; mkdir -p "$SYSROOT.part"
  for deb in "$state"/archives/*.deb; do
    dpkg-deb -x "$deb" "$SYSROOT.part"
  done
  # Debian 12 is usr-merged; the unpacked tree is not (base-files makes the links).
  for d in lib bin sbin; do
    if [[ -d "$SYSROOT.part/$d" && ! -L "$SYSROOT.part/$d" ]]; then
      mkdir -p "$SYSROOT.part/usr/$d"
      cp -a "$SYSROOT.part/$d/." "$SYSROOT.part/usr/$d/"
      rm -rf "$SYSROOT.part/${d:?}"
    fi
    ln -sfn "usr/$d" "$SYSROOT.part/$d"
  done
  # Absolute symlinks (libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.N) would
  # point into the host: make them relative to the sysroot.
  while IFS= read -r -d '' link; do
    target="$(readlink "$link")"
    [[ "$target" == /* ]] || continue
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT.part$target")" "$link"
  done < <(find "$SYSROOT.part" -type l -print0)
  # gRPC's CMake package names its code generators (gRPC::grpc_cpp_plugin, ...)
  # under the sysroot's bin/ and fails without them; the build runs the host's
  # (amd64) ones, so that is what the names point to.
  mkdir -p "$SYSROOT.part/usr/bin"
  for plugin in cpp php python ruby; do
    ln -sfn "/usr/bin/grpc_${plugin}_plugin" "$SYSROOT.part/usr/bin/grpc_${plugin}_plugin"
  done
  rm -rf "$SYSROOT"; mv "$SYSROOT.part" "$SYSROOT"
  printf '%s\n' "$want_stamp" > "$SYSROOT/.stamp"
  log "arm64 sysroot in $SYSROOT ($(du -sh "$SYSROOT" | cut -f1), $(ls "$state"/archives/*.deb | wc -l) packages)"
fi

# qemu-user 7.2 (Debian 12) passes the host's /proc/cpuinfo through, x86's,
# which ONNX Runtime's cpuinfo cannot parse on arm64: it crashes at start-up
# (SIGSEGV in a static initializer). qemu -L <sysroot> opens <sysroot>/proc/cpuinfo
# instead when it exists: an ARM one, Neoverse N1 cores, as many as the host has
# (its /sys/devices/system/cpu lists are the ones cpuinfo reads next). It only
# names the cores; the instruction set features come from qemu's CPU model (AT_HWCAP).
mkdir -p "$SYSROOT/proc"
ncpu="$(getconf _NPROCESSORS_CONF)"
for ((i = 0; i < ncpu; i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\n' "$i"
  printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n'
  printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n'
done > "$SYSROOT/proc/cpuinfo"

# 3. ONNX Runtime, linux/arm64 (the same npm package and checks as amd64).
ORT_PREFIX="$ORT_PREFIX" ORT_ARCH=arm64 "$root/scripts/fetch_onnxruntime.sh"
