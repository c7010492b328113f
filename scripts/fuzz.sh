#!/usr/bin/env bash
# Build every fuzz harness with clang + libFuzzer and run each for a while.
# usage: scripts/fuzz.sh [SECONDS_PER_HARNESS]   (default 60)
# Corpora grow in build-fuzz/corpus/<name>/ (seeded from tests/fuzz/corpus);
# a crash leaves crash-* in build-fuzz/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
scripts/install-deps.sh build fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Debug \
	-DSTRATA_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
names=$(sed -n 's/^strata_add_fuzz(NAME \([a-z_0-9]*\).*/\1/p' tests/fuzz/CMakeLists.txt)
# shellcheck disable=SC2086
cmake --build build-fuzz -j "$(nproc)" --target $names
rc=0
for n in $names; do
	corpus=build-fuzz/corpus/$n
	mkdir -p "$corpus"
	[ -d "tests/fuzz/corpus/$n" ] && cp -n tests/fuzz/corpus/"$n"/* "$corpus"/ 2>/dev/null || true
	echo "fuzz: $n for ${secs}s"
	if ! (cd build-fuzz && "tests/fuzz/$n" -max_total_time="$secs" -max_len=65536 \
		-print_final_stats=1 "corpus/$n" 2>"fuzz-$n.log"); then
		echo "fuzz: $n FAILED (build-fuzz/fuzz-$n.log, crash-* in build-fuzz/)"
		rc=1
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "build-fuzz/fuzz-$n.log" || true
done
exit $rc
