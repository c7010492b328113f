#!/usr/bin/env bash
# clang-format-14 over every tracked (and new, unignored) C source, except
# third-party code (third_party/: kept as upstream wrote it).
# usage: scripts/format.sh [--check]   --check: report, change nothing
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$cf" ] || { echo "format: clang-format-14 not found (make deps installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' 2>/dev/null |
	while read -r f; do
		# skip deleted files and anything inside a CMake build tree
		[ -f "$f" ] || continue
		[ -f "${f%%/*}/CMakeCache.txt" ] && continue
		case "$f" in third_party/*) continue ;; esac
		echo "$f"
	done)
[ ${#files[@]} -gt 0 ] || { echo "format: no C sources"; exit 0; }
if [ "${1:-}" = "--check" ]; then
	"$cf" --dry-run -Werror "${files[@]}"
	echo "format: ${#files[@]} files clean"
else
	"$cf" -i "${files[@]}"
	echo "format: ${#files[@]} files formatted"
fi
