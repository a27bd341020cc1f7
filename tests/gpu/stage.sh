#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stages a build for the GPU machine, which has none of our Debian packages:
#   bash tests/gpu/stage.sh [BUILD_DIR] [STAGE_DIR]      (defaults: build, .stage)
# STAGE/lib/libgpushare.so (glibc only), STAGE/bin/{gpushare-run (static), gpushare-smi,
# gpushare-exporter}, and STAGE/lib/ the exporter's shared libraries that are not glibc's or
# libstdc++'s (cpp-httplib, brotli, OpenSSL, zlib), which k8s.sh puts on LD_LIBRARY_PATH for the
# exporter alone. Everything is stripped.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
stage=${2:-.stage}
mkdir -p "$stage/lib" "$stage/bin"
install -m 0755 "$build/libgpushare.so" "$stage/lib/libgpushare.so"
for tool in gpushare-run gpushare-smi gpushare-exporter; do
  install -m 0755 "$build/$tool" "$stage/bin/$tool"
done
ldd "$build/gpushare-exporter" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
  grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
  while read -r dep; do install -m 0644 "$(readlink -f "$dep")" "$stage/lib/$(basename "$dep")"; done
strip --strip-unneeded "$stage/lib/"*.so* "$stage/bin/"* 2>/dev/null || true
echo "staged into $stage:"
ls -l "$stage/lib" "$stage/bin"
