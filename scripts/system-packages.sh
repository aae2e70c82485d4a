#!/usr/bin/env bash
# Installs the Debian packages ferry's demo, tests and single-file build use, when they are
# missing: docker-registry (registry:2, CNCF Distribution 2.8), skopeo (the peer client),
# containerd (ctr import, CRI, hosts.toml mirrors), podman (podman load) and unzip (the tests unpack
# helm from its npm package);
# for `npm run build:exe`: binutils and binutils-aarch64-linux-gnu (strip), qemu-user-static
# and libstdc++6-arm64-cross (run the arm64 Node to make its code cache, and the arm64 file).
# Usage: system-packages.sh [PACKAGE...]   (default: every package the tests use)
set -euo pipefail
# What shows a package is installed: a command, or a file (an absolute path).
declare -A PROBE=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [containerd]=containerd
  [podman]=podman
  [binutils]=strip
  [binutils-aarch64-linux-gnu]=aarch64-linux-gnu-strip
  [qemu-user-static]=qemu-aarch64-static
  [unzip]=unzip
  [libstdc++6-arm64-cross]=/usr/aarch64-linux-gnu/lib/libstdc++.so.6
)
installed() {
  local probe="${PROBE[$1]:-$1}"
  if [[ $probe == /* ]]; then [ -e "$probe" ]; else command -v "$probe" >/dev/null 2>&1; fi
}
missing=()
for pkg in "${@:-docker-registry skopeo containerd podman unzip binutils binutils-aarch64-linux-gnu qemu-user-static libstdc++6-arm64-cross}"; do
  for p in $pkg; do installed "$p" || missing+=("$p"); done
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
