#!/usr/bin/env bash
# Installs the Debian packages from scripts/deps.txt that are missing.
# usage: scripts/install-deps.sh [TAG...]   (tags: build run test; default: build test)
# Uses sudo only when not root; says what it installs; does nothing when
# everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list="$here/deps.txt"
tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=(build test)

wanted=()
while read -r pkg tag _; do
	case "$pkg" in '' | '#'*) continue ;; esac
	for t in "${tags[@]}"; do
		if [ "$tag" = "[$t]" ]; then wanted+=("$pkg"); fi
	done
done <"$list"

missing=()
for p in "${wanted[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#wanted[@]} packages from scripts/deps.txt (${tags[*]}) are installed"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: this is not a Debian/apt system; install the equivalents of scripts/deps.txt by hand" >&2
	exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps: need root to install: ${missing[*]} (run as root or install sudo)" >&2
		exit 1
	fi
	SUDO=(sudo)
fi
echo "deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: done"
