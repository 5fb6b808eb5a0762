#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what `make image` and `make test-deploy` need on Debian 12, from
# Debian's own packages: mmdebstrap (the base image), podman with the runc
# runtime (build, run, and `podman kube play`, whose pods need catatonit for
# their locally built pause image: no registry here), HAProxy, PyYAML. Safe to re-run.
# kubectl is not among them: Debian 12's kubernetes-client (1.20) is too old
# for the Kustomize in deploy/kubernetes; the manifest tests use a kubectl
# found on PATH and skip without one.
set -euo pipefail
packages=(mmdebstrap podman runc uidmap catatonit haproxy python3-yaml)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup-deploy] installing: ${missing[*]}" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
