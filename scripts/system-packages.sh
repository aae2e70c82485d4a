#!/usr/bin/env bash
# Installs the Debian packages ferry's demo and tests use, when they are missing:
# docker-registry (registry:2, CNCF Distribution 2.8), skopeo (the peer client),
# containerd (ctr import, CRI, hosts.toml mirrors) and podman (podman load).
# Usage: system-packages.sh [PACKAGE...]   (default: docker-registry skopeo containerd podman)
set -euo pipefail
declare -A BIN=([docker-registry]=docker-registry [skopeo]=skopeo [containerd]=containerd [podman]=podman)
missing=()
for pkg in "${@:-docker-registry skopeo containerd podman}"; do
  for p in $pkg; do command -v "${BIN[$p]:-$p}" >/dev/null 2>&1 || missing+=("$p"); done
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
