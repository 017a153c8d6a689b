#!/usr/bin/env bash
# Every test tier: the unit and integration suites on the normal build, then the whole suite
# again on an AddressSanitizer + UndefinedBehaviorSanitizer build, then a short run of every
# libFuzzer target (scripts/fuzz.sh --quick, a clang build). Ends with the fuzz tier's
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
asan=${2:-build-asan}
fuzz=${3:-build-fuzz}
status=0

echo "== tests on the normal build ($build)"
meson test -C "$build" --print-errorlogs --num-processes 2 || status=1

echo "== tests under ASan+UBSan ($asan)"
if [[ ! -f $asan/build.ninja ]]; then
	meson setup "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 1
fi
ninja -C "$asan" || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
meson test -C "$asan" --print-errorlogs --num-processes 2 || status=1

echo "== fuzz targets, a short run each ($fuzz)"
scripts/fuzz.sh --quick "$fuzz" || status=1
exit $status
