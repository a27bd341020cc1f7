#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file of the project carries the SPDX line of its licence (LICENSE) in its header.
#   scripts/spdx.sh          lists the tracked source files that lack it (exit 1 if any)
#   scripts/spdx.sh --add    adds it where it is missing, in the comment syntax of the file
set -euo pipefail
cd "$(dirname "$0")/.."
tag='SPDX-License-Identifier: Apache-2.0'

# Source files: code, build files, scripts and manifests; not prose (*.md), LICENSE, dotfiles or
# JSON, which has no comments (package.json says its licence in its "license" field).
sources() {
  { if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then git ls-files
    else find . -path ./.git -prune -o -path './build*' -prune -o -path './.*' -prune -o -type f -print | sed 's|^\./||'
    fi; } | grep -vE '(^|/)(LICENSE|[^/]*\.md|[^/]*\.json|\.[^/]*)$' || true
  echo .ci/run  # a dot-folder, which the find above prunes
}

comment_for() {
  case "$1" in
    *.cpp|*.h|*.inc|*.cu|*.c) if head -1 "$1" | grep -q '^/\*'; then echo "/* $tag */"; else echo "// $tag"; fi ;;
    *.map) echo "/* $tag */" ;;
    *) echo "# $tag" ;;
  esac
}

missing=0
while read -r f; do
  [ -f "$f" ] || continue
  head -3 "$f" | grep -q "$tag" && continue
  if [ "${1:-}" != --add ]; then echo "spdx: $f has no '$tag' line"; missing=1; continue; fi
  line=$(comment_for "$f")
  if head -1 "$f" | grep -q '^#!'; then
    sed -i "1a $line" "$f"
  else
    sed -i "1i $line" "$f"
  fi
done < <(sources | sort -u)
exit $missing
