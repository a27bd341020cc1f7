#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs in the DaemonSet's init container on every GPU node: installs libgpushare.so and the tools
# from this image onto the node (hostPath /opt/gpushare, mounted at /host/opt/gpushare), writes
# the ld.so.preload file pods mount as /etc/ld.so.preload, and prepares the ledger directory
# (hostPath /var/run/gpushare, mounted at /host/var/run/gpushare) that every tenant shares.
#
# Files are replaced by rename, never rewritten in place: a running process keeps the library
# it mapped, and a new one gets the new library whole.
set -eu
SRC=${GPUSHARE_SRC:-/opt/gpushare}
DST=${GPUSHARE_DST:-/host/opt/gpushare}
LEDGER=${GPUSHARE_LEDGER_HOST_DIR:-/host/var/run/gpushare}
HOST_PREFIX=/opt/gpushare   # where the files are on the node, as pods mount them

install_file() {  # SOURCE DEST MODE
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.new.$$"
  chmod "$3" "$2.new.$$"
  mv -f "$2.new.$$" "$2"
}

install_file "$SRC/lib/libgpushare.so" "$DST/lib/libgpushare.so" 0755
for tool in gpushare-run gpushare-smi; do
  install_file "$SRC/bin/$tool" "$DST/bin/$tool" 0755
done
mkdir -p "$DST/etc"
printf '%s\n' "$HOST_PREFIX/lib/libgpushare.so" > "$DST/etc/ld.so.preload.new.$$"
chmod 0644 "$DST/etc/ld.so.preload.new.$$"
mv -f "$DST/etc/ld.so.preload.new.$$" "$DST/etc/ld.so.preload"

mkdir -p "$LEDGER"
chmod 1777 "$LEDGER"
echo "gpushare: installed $HOST_PREFIX/lib/libgpushare.so, $HOST_PREFIX/bin/{gpushare-run,gpushare-smi}, $HOST_PREFIX/etc/ld.so.preload; ledgers in /var/run/gpushare"
