#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks that libgpushare.so needs only glibc and exports exactly the symbols of its version
# script (the hook table's and dlsym).
set -euo pipefail
lib=$1 map=$2
fail=0
deps=$(ldd "$lib" | awk '{print $1}' | grep -vE '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|lib(c|m|dl|pthread|rt)\.so\.[0-9]+)$' || true)
if [ -n "$deps" ]; then echo "FAIL: depends on more than glibc: $deps"; fail=1; fi
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
expected=$(grep -oE '^\s+[A-Za-z0-9_]+;' "$map" | tr -d ' ;' | sort -u)
if [ "$exported" != "$expected" ]; then
  echo "FAIL: exported symbols differ from $map:"
  diff <(echo "$expected") <(echo "$exported") || true
  fail=1
fi
if nm -D "$lib" | grep -qiE ' [TW] .*(spdlog|fmt|std::|_ZN)'; then echo "FAIL: C++ symbols exported"; fail=1; fi
# Containers: it must load with the glibc of Ubuntu 22.04 / RHEL 9 era images (2.35).
newest=$(objdump -T "$lib" | grep -oE 'GLIBC_2\.[0-9]+' | sort -t. -k2 -n | tail -1)
if [ "${newest#GLIBC_2.}" -gt 35 ]; then echo "FAIL: needs $newest (at most GLIBC_2.35 allowed)"; fail=1; fi
[ $fail -eq 0 ] && echo "OK: glibc only; exports $(echo "$exported" | wc -l) symbols, all from the version script"
exit $fail
