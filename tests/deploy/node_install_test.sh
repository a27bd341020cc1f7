#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/node-install.sh into a scratch "node": the library and tools land under /opt/gpushare,
# ld.so.preload names the library, the ledger directory is 1777, and a second run replaces the
# library by rename (a process that mapped the old one keeps its inode).
#   node_install_test.sh NODE_INSTALL LIBGPUSHARE GPUSHARE_RUN GPUSHARE_SMI
set -euo pipefail
script=$1 lib=$2 run=$3 smi=$4
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/lib" "$t/src/bin"
cp "$lib" "$t/src/lib/libgpushare.so"
cp "$run" "$smi" "$t/src/bin/"
install() { GPUSHARE_SRC=$t/src GPUSHARE_DST=$t/node/opt/gpushare GPUSHARE_LEDGER_HOST_DIR=$t/node/var/run/gpushare sh "$script" >/dev/null; }
fail() { echo "FAIL: $*"; exit 1; }
install
for f in lib/libgpushare.so bin/gpushare-run bin/gpushare-smi; do
  cmp -s "$t/src/$f" "$t/node/opt/gpushare/$f" || fail "$f not installed"
  [ -x "$t/node/opt/gpushare/$f" ] || fail "$f not executable"
done
[ "$(cat "$t/node/opt/gpushare/etc/ld.so.preload")" = /opt/gpushare/lib/libgpushare.so ] || fail "ld.so.preload"
[ "$(stat -c %a "$t/node/var/run/gpushare")" = 1777 ] || fail "ledger dir mode $(stat -c %a "$t/node/var/run/gpushare")"
before=$(stat -c %i "$t/node/opt/gpushare/lib/libgpushare.so")
install
after=$(stat -c %i "$t/node/opt/gpushare/lib/libgpushare.so")
[ "$before" != "$after" ] || fail "the library was rewritten in place (inode $before kept)"
for f in "$t"/node/opt/gpushare/*/*.new.*; do [ -e "$f" ] && fail "temporary file left behind: $f"; done
echo "OK: node-install.sh installs, writes ld.so.preload, prepares the ledger dir, replaces by rename"
