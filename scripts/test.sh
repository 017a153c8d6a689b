#!/usr/bin/env bash
# Every test tier: the unit and integration suites on the normal build, then the whole suite
# again on an AddressSanitizer + UndefinedBehaviorSanitizer build, then a short run of every
# libFuzzer target (scripts/fuzz.sh --quick, a clang build). Each tier prints its own summary;
# the last line adds them up: "N passed, N failed" over every test of every tier.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
asan=${2:-build-asan}
fuzz=${3:-build-fuzz}
status=0
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Adds a meson summary (Ok, Fail, Timeout, Unexpected Pass; Skipped counts as neither) to the totals.
count_meson() {
	local ok bad
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	bad=$(sed -n 's/^\(Fail\|Timeout\|Unexpected Pass\): *\([0-9]*\).*/\2/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + bad))
	[[ -n $ok ]] || failed=$((failed + 1)) # meson printed no summary: count the tier as a failure
}

echo "== tests on the normal build ($build)"
meson test -C "$build" --print-errorlogs --num-processes 2 | tee "$out"
((PIPESTATUS[0] == 0)) || status=1
count_meson

echo "== tests under ASan+UBSan ($asan)"
if [[ ! -f $asan/build.ninja ]]; then
	meson setup "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 1
fi
ninja -C "$asan" || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
meson test -C "$asan" --print-errorlogs --num-processes 2 | tee "$out"
((PIPESTATUS[0] == 0)) || status=1
count_meson

echo "== fuzz targets, a short run each ($fuzz)"
scripts/fuzz.sh --quick "$fuzz" | tee "$out"
((PIPESTATUS[0] == 0)) || status=1
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
if [[ -n $line ]]; then
	passed=$((passed + ${line%% *}))
	f=${line#*, }
	failed=$((failed + ${f%% *}))
else
	failed=$((failed + 1))
fi

echo "== all tiers (normal build, ASan+UBSan, fuzz targets)"
((failed == 0)) || status=1
echo "$passed passed, $failed failed"
exit $status
