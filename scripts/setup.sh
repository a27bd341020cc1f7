#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what gpushare needs to build and test on Debian (as root, or with sudo), then
# configures and builds into ./build. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# prometheus (with promtool) and yamllint check the exporter and the manifests with their
# ecosystems' own tools; Node.js runs the Kubernetes schema validator (below).
packages=(cmake g++ make libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev binutils
          pkgconf libcpp-httplib-dev python3 python3-yaml prometheus yamllint)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  plain=() bare=()
  for p in "${missing[@]}"; do
    # prometheus without its recommends (prometheus-node-exporter, a service of its own).
    if [ "$p" = prometheus ]; then bare+=("$p"); else plain+=("$p"); fi
  done
  [ ${#plain[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${plain[@]}" >/dev/null
  [ ${#bare[@]} -eq 0 ] ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
fi

# The Kubernetes schema validator (tests/deploy/package.json, pinned by its lock file) into
# tests/deploy/node_modules, so that the tests need no network.
if [ ! -f tests/deploy/node_modules/.package-lock.json ] ||
   [ tests/deploy/package-lock.json -nt tests/deploy/node_modules/.package-lock.json ]; then
  echo "setup: installing the manifest schema validator (npm ci --prefix tests/deploy)"
  npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error >/dev/null
fi

# The CUDA toolkit's headers (cuda.h, cudaTypedefs.h) are all we need of CUDA; no driver.
if [ ! -f "${CUDA_HOME:-/usr/local/cuda}/include/cudaTypedefs.h" ]; then
  echo "setup: CUDA headers not found under ${CUDA_HOME:-/usr/local/cuda}/include; set CUDA_HOME" >&2
  exit 1
fi

build=${GPUSHARE_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${GPUSHARE_CMAKE_ARGS:-} >/dev/null
targets=()
for t in ${GPUSHARE_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
