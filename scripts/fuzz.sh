#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz on a clang build with ASan+UBSan (set up when missing).
#   scripts/fuzz.sh [--quick] [BUILD]   --quick: a short fixed run for `make test` (20,000
#                                        executions or 20 s per target, whichever comes first,
#                                        seed 1);
#                                        otherwise FUZZ_SECONDS per target (default 60), `make fuzz`
# Each target starts from its seed corpus (tests/fuzz/corpus/<name>) and keeps what it finds in
# BUILD/fuzz-corpus/<name>; a crash, leak, UBSan report or hang (-timeout) is saved in
# BUILD/fuzz-artifacts/ and fails the run. Prints a line per target, then "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
quick=false
if [[ ${1:-} == --quick ]]; then
	quick=true
	shift
fi
build=${1:-build-fuzz}
targets=(cron dsl template json router status csv)

if [[ ! -f $build/build.ninja ]] && ! CC=clang meson setup "$build" -Dfuzz=true -Dwerror=true \
	-Db_sanitize=address,undefined -Db_lundef=false; then
	echo "0 passed, 1 failed (cannot set up $build with clang)"
	exit 1
fi
if ! nice -n 10 ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}"; then
	echo "0 passed, 1 failed (the fuzz targets do not build)"
	exit 1
fi

if $quick; then
	# A fixed seed: the same clone fuzzes the same inputs, so `make test` does not fail by chance.
	limits=(-runs=20000 -max_total_time=20 -seed=1)
else
	limits=(-max_total_time="${FUZZ_SECONDS:-60}")
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/fuzz-artifacts"
passed=0
failed=0
for t in "${targets[@]}"; do
	work=$build/fuzz-corpus/$t
	log=$build/fuzz-artifacts/$t.log
	mkdir -p "$work"
	dict=()
	[[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
	# -timeout: the DSL loader's own wall-clock cap is 5 s, slower under the sanitizers.
	start=$(date +%s%N)
	nice -n 10 "$build/tests/fuzz/fuzz_$t" "$work" "tests/fuzz/corpus/$t" "${limits[@]}" "${dict[@]}" \
		-timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$t-" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	secs=$(awk -v ms="$ms" 'BEGIN { printf "%.1f", ms / 1000 }')
	rate=$(awk -v n="${runs:-0}" -v ms="$ms" 'BEGIN { printf "%d", ms ? n * 1000 / ms : 0 }')
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "fuzz_$t: ${runs:-?} executions in ${secs:-?} s (${rate:-?}/s): ok"
	else
		failed=$((failed + 1))
		echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} executions; log $log:"
		grep -E 'ERROR|SUMMARY|fuzz check|Test unit written' "$log" | head -20
	fi
done
echo "$passed passed, $failed failed"
((failed == 0))
