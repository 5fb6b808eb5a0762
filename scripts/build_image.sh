#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the ortserve OCI image from Debian's own tools and packages only
# (`make image`; docs/deploy.md):
#   1. `cmake --install` the build into a relocatable tree (stripped);
#   2. the base image: mmdebstrap (Debian's Essential set plus the packages
#      holding the libraries `ldd` finds for the installed binaries, from the
#      apt sources this machine uses) with a non-root user, imported with
#      `podman import`; cached under a tag that hashes its inputs, and its
#      .debs cached in ~/.cache/ortserve/image/debs;
#   3. the install tree on top (deploy/image/Containerfile, `podman build`
#      that never pulls), tagged localhost/ortserve:<version>-<commit> and
#      localhost/ortserve:latest.
# Usage: scripts/build_image.sh [BUILD_DIR]   (default: build)
#   IMAGE=name            image name (default localhost/ortserve)
#   IMAGE_ARCHIVE=path    also write the image as an OCI archive
#   IMAGE_EXTRA_PACKAGES  more Debian packages for the base (space-separated)
# Needs root (or sudo) for mmdebstrap and podman; `WITH_DEPLOY=1 scripts/setup.sh`
# (run first) installs the tools.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
image="${IMAGE:-localhost/ortserve}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ortserve/image"
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
t0=$SECONDS
step() { echo "[image] $(( SECONDS - t0 ))s: $*" >&2; }

WITH_DEPLOY=1 "$root/scripts/setup.sh"

# 1. The install tree.
work="$build/image"
rm -rf "$work/context"
mkdir -p "$work/context"
cmake --install "$build" --prefix "$work/context/opt/ortserve" --strip >/dev/null
bin="$work/context/opt/ortserve/bin/ortserve"
version="$("$bin" --version | sed -n 's/^ortserve \([^ ]*\) (commit \([^,]*\),.*/\1/p')"
commit="$("$bin" --version | sed -n 's/^ortserve \([^ ]*\) (commit \([^,]*\),.*/\2/p')"
[[ -n "$version" && -n "$commit" ]] || { echo "[image] cannot read --version of $bin" >&2; exit 1; }
step "install tree for ortserve $version, commit $commit"

# 2. The base: which Debian packages hold the libraries the binaries load.
# (Debian 12 is usr-merged: a library may be registered under /lib or
# /usr/lib, so each is looked up under both names, in one dpkg-query.)
mapfile -t libs < <(for f in "$work"/context/opt/ortserve/bin/* "$work"/context/opt/ortserve/lib/*.so*; do
                      ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
                    done | grep -v "^$work/context/" | sort -u)  # ONNX Runtime ships in the tree.
candidates=()
for f in "${libs[@]}"; do
  real="$(readlink -f "$f")"
  for p in "$f" "$real"; do candidates+=("/usr${p#/usr}" "${p#/usr}"); done
done
owners="$(dpkg-query -S "${candidates[@]}" 2>/dev/null || true)"
packages=()
for f in "${libs[@]}"; do
  real="$(readlink -f "$f")"
  pkg="$(awk -v a="${f#/usr}" -v b="${real#/usr}" -F': ' \
           '{p=$2; sub(/^\/usr/, "", p)} p == a || p == b {print $1; exit}' <<<"$owners")"
  [[ -n "$pkg" ]] || { echo "[image] no Debian package holds $f" >&2; exit 1; }
  packages+=("${pkg%%:*}")
done
# shellcheck disable=SC2206
packages+=(${IMAGE_EXTRA_PACKAGES:-})
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -s "$f" ]] && grep -q '^[^#]' "$f" && sources+=("$f")
done
((${#sources[@]})) || { echo "[image] no apt sources on this machine" >&2; exit 1; }
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
base_key="$( { printf '%s\n' "${packages[@]}" "$suite"; cat "${sources[@]}"; sed -n '/^ *# BASE-RECIPE/,/^ *# END-BASE-RECIPE/p' "$0"; } \
             | sha256sum | cut -c1-16)"
base="localhost/ortserve-base:$base_key"
if $sudo podman image exists "$base"; then
  step "base $base cached"
else
  step "base $base: mmdebstrap $suite with ${packages[*]}"
  mkdir -p "$cache/debs"
  tarball="$work/base.tar"
  # BASE-RECIPE (changing these lines makes a new base). usr-is-merged
  # stands in for usrmerge, which the Essential set pulls in with Perl.
  $sudo mmdebstrap --variant=essential --mode=root --format=tar \
    --include="$(IFS=,; echo "${packages[*]}"),usr-is-merged" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $cache/debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
    --customize-hook='chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl \
                        libtext-glob-perl perl perl-modules-5.36 libperl5.36' \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* 2>/dev/null || true' \
    --customize-hook='echo "ortserve:x:10001:10001:ortserve:/nonexistent:/usr/sbin/nologin" >> "$1"/etc/passwd' \
    --customize-hook='echo "ortserve:x:10001:" >> "$1"/etc/group' \
    --customize-hook='echo "ortserve:!:19000::::::" >> "$1"/etc/shadow' \
    "$suite" "$tarball" "${sources[@]}"
  # END-BASE-RECIPE
  $sudo podman import --quiet --change 'CMD ["/bin/sh"]' "$tarball" "$base" >/dev/null
  rm -f "$tarball"
  step "base $base built"
fi

# 3. The install tree on top.
$sudo podman build --runtime runc --pull=never --quiet --file "$root/deploy/image/Containerfile" \
  --build-arg BASE="$base" --build-arg VERSION="$version" --build-arg COMMIT="$commit" \
  --tag "$image:$version-${commit:0:12}" --tag "$image:latest" "$work/context" >/dev/null
step "built $image:$version-${commit:0:12} (also $image:latest), $($sudo podman image inspect --format '{{.Size}}' "$image:latest" | awk '{printf "%.0f MB", $1/1e6}')"
if [[ -n "${IMAGE_ARCHIVE:-}" ]]; then
  $sudo podman save --format oci-archive --output "$IMAGE_ARCHIVE" "$image:latest"
  step "saved $IMAGE_ARCHIVE"
fi
