#!/usr/bin/env bash
# Compare builds of Strata with strata-bench in interleaved rounds (A, B,
# A, B...), because on a shared VM one short run of each spreads by 15-30 %
# (docs/benchmarks.md, "Method: interleaved rounds").
#
# usage: scripts/bench-ab.sh [--rounds N] [--cases LIST] [--data-dir D] NAME=DIR...
#   NAME=DIR  a label and a build copy: DIR/bin holds strata-bench and the
#             servers, DIR/plugins the tier-2 plugins (e.g. cp -r build/bin
#             /tmp/a/bin && ln -s "$PWD/build/plugins" /tmp/a/plugins)
#   --rounds N     rounds, each runs every build once (default 4)
#   --cases LIST   strata-bench cases (default 100B:8x32,1KB:8x32)
#   --data-dir D   server data (default build/bench-data; never tmpfs)
# Each run is strata-bench --systems strata --runs 3 --duration 3. Prints
# one line per run (events/s, MB/s, p99, server CPU us per event) and, per
# build and case, the mean, minimum and maximum events/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=4
cases=100B:8x32,1KB:8x32
data=build/bench-data
builds=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--cases) cases=$2; shift 2 ;;
	--data-dir) data=$2; shift 2 ;;
	-h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*=*) builds+=("$1"); shift ;;
	*) echo "bench-ab: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ ${#builds[@]} -ge 1 ] || { echo "bench-ab: name at least one NAME=DIR build (see --help)" >&2; exit 2; }
for b in "${builds[@]}"; do
	dir=${b#*=}
	[ -x "$dir/bin/strata-bench" ] || { echo "bench-ab: $dir/bin/strata-bench not found (NAME=DIR, see --help)" >&2; exit 2; }
	[ -d "$dir/plugins" ] || { echo "bench-ab: $dir/plugins not found: link the build's plugins directory there" >&2; exit 2; }
done
mkdir -p "$data"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
	for b in "${builds[@]}"; do
		name=${b%%=*} dir=${b#*=}
		"$dir/bin/strata-bench" --systems strata --cases "$cases" --runs 3 \
			--duration 3 --warmup 1 --backlog 0,0 --disk 0 --out "$out" \
			--data-dir "$data" 2>/dev/null |
			awk -F'|' -v r="$r" -v n="$name" '$2 ~ /^ strata $/ && $3 ~ /^ *[0-9]+K?B [0-9]+x[0-9]+ *$/ {
				gsub(/^ +| +$/, "", $3); sub(/ /, "_", $3)
				printf "round %s %s %s: %d events/s, %s MB/s, p99 %s ms, server %.2f us/event\n",
				       r, n, $3, $4, $5 + 0, $8 + 0, $9 * 1e4 / $4
			}' | tee -a "$out/lines"
	done
done
echo "summary (events/s over $rounds rounds):"
awk '{ k = $3 " " $4; v = $5 + 0; n[k]++; s[k] += v
       if (!(k in lo) || v < lo[k]) lo[k] = v; if (v > hi[k]) hi[k] = v }
     END { for (k in n) printf "  %-24s mean %d  min %d  max %d\n", k, s[k] / n[k], lo[k], hi[k] }' \
	"$out/lines" | sort
