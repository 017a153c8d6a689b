#!/usr/bin/env bash
# bench/run.sh - sluice's per-task cost next to ninja and a bare spawn loop, measured side by side.
#
#   bash bench/run.sh [BUILD_DIR]        # BUILD_DIR defaults to "build"; it must hold sluice and
#                                        # sluice-shim (meson setup BUILD_DIR -Dwerror=true &&
#                                        # ninja -C BUILD_DIR)
#
# Two shapes, each task being `/bin/true`:
#   wide   N_WIDE (2000) independent tasks
#   chain  N_CHAIN (500) tasks in a line, each waiting for the previous one
# Runners, all timed in the same invocation on the same machine:
#   xargs       `xargs -P2 -n1 /bin/true` (wide) or `xargs -P1 -n1 /bin/true` (chain) over N lines:
#               the floor, one fork+exec+wait per task and nothing else
#   ninja -j2   a generated build.ninja: one rule `command = /bin/true`, N edges whose outputs are
#               never created, so ninja runs every command on every invocation (no phony, no
#               restat); in the chain edge k has the output of edge k-1 as its input. ninja runs
#               each command through /bin/sh -c, as it always does.
#   sluice      `sluice dags test` of a generated DAG (argv commands, no shell) with the real local
#               executor: each try runs under sluice-shim and every state change goes to SQLite.
#               With SLUICE__CORE__PARALLELISM=2 (ninja -j2's concurrency) and with the default
#               (32); the wide DAG sets max_active_tasks above N. One more sluice row puts
#               SLUICE_HOME on tmpfs (TMPFS_DIR, default /dev/shm; skipped when not writable) to
#               separate the file-system cost (per-try log directories and files) from the rest.
#               Every timed run gets a fresh, already migrated SLUICE_HOME, prepared untimed; old
#               homes are moved aside, not deleted, until the end (deleting them between runs makes
#               inode allocation slower on some file systems and would bill that to sluice).
#   sluice, 1-task DAG   the fixed start-up cost of `sluice dags test` (Lua import, database open)
#
# Timing: hyperfine (Debian package `hyperfine`) when installed, else repeated runs timed with
# `date +%s%N`. Missing Debian packages (ninja-build, hyperfine) are installed with apt-get when
# running as root; otherwise ninja is required and hyperfine is optional.
#
# Output: a markdown table of median wall times (ms, with min and max), the ratios to ninja -j2
# and to xargs, and the overhead per task in ms, (sluice - ninja -j2) / N. Ratios, not absolute
# times, are the point: absolute times move a lot with the machine and its load.
#
# Knobs (environment): N_WIDE=2000 N_CHAIN=500 RUNS=5 (timed rounds after 1 warm-up round),
# CMD_TIMEOUT=120 (seconds; a run taking longer fails the benchmark), TMPFS_DIR=/dev/shm
# (empty: no tmpfs rows), BENCH_TIMER=date (time with date +%s%N even when hyperfine is there),
# KEEP=1 keeps the temporary directories.
# With the defaults it takes about three minutes on a 2-core machine.
#
# Not part of `make test`: run it by hand.
set -euo pipefail

BUILD=${1:-build}
N_WIDE=${N_WIDE:-2000}
N_CHAIN=${N_CHAIN:-500}
RUNS=${RUNS:-5}
CMD_TIMEOUT=${CMD_TIMEOUT:-120}
TMPFS_DIR=${TMPFS_DIR-/dev/shm}

die() { echo "bench: $*" >&2; exit 1; }

BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory '$BUILD'"
SLUICE=$BUILD_ABS/cli/sluice
[ -x "$SLUICE" ] || die "$SLUICE not found; build first: meson setup $BUILD -Dwerror=true && ninja -C $BUILD"
[ -x "$BUILD_ABS/cli/sluice-shim" ] || die "$BUILD_ABS/cli/sluice-shim not found"

# ---- tools -------------------------------------------------------------------------------------
apt_install() {
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing $*" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=900 "$@" >/dev/null
	else
		return 1
	fi
}
command -v ninja >/dev/null || apt_install ninja-build || die "ninja is missing: apt-get install ninja-build"
HYPERFINE=0
if [ "${BENCH_TIMER:-}" != date ]; then
	if command -v hyperfine >/dev/null || apt_install hyperfine; then
		HYPERFINE=1
	else
		echo "bench: hyperfine is missing (apt-get install hyperfine); timing with date +%s%N" >&2
	fi
fi
for t in xargs timeout python3 seq; do command -v $t >/dev/null || die "$t is missing"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
SHM=""
if [ -n "$TMPFS_DIR" ] && [ -d "$TMPFS_DIR" ] && [ -w "$TMPFS_DIR" ]; then
	SHM=$(mktemp -d "$TMPFS_DIR/sluice-bench.XXXXXX")
fi
cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		echo "bench: kept $TMP ${SHM:+and $SHM}" >&2
	else
		rm -rf "$TMP" ${SHM:+"$SHM"}
	fi
}
trap cleanup EXIT

# ---- generated inputs --------------------------------------------------------------------------
# Each DAG sits alone in its own folder, so `dags test` imports just that file.
mkdir -p "$TMP/dags_wide" "$TMP/dags_chain" "$TMP/dags_one" "$TMP/ninja_wide" "$TMP/ninja_chain"

{
	echo "-- $N_WIDE independent tasks running /bin/true (argv form: no shell)"
	echo "local d = dag { id = \"bench_wide\", max_active_tasks = $((N_WIDE * 2)) }"
	for ((i = 1; i <= N_WIDE; i++)); do
		printf 'd:task "t%05d" { cmd = { "/bin/true" } }\n' "$i"
	done
	echo "return d"
} >"$TMP/dags_wide/bench_wide.lua"

{
	echo "-- a chain of $N_CHAIN tasks running /bin/true, each after the previous one"
	echo "local d = dag { id = \"bench_chain\" }"
	echo 'local prev = d:task "s00001" { cmd = { "/bin/true" } }'
	for ((i = 2; i <= N_CHAIN; i++)); do
		printf 'prev = d:task "s%05d" { cmd = { "/bin/true" }, after = { prev } }\n' "$i"
	done
	echo "return d"
} >"$TMP/dags_chain/bench_chain.lua"

cat >"$TMP/dags_one/bench_one.lua" <<'EOF'
local d = dag { id = "bench_one" }
d:task "t" { cmd = { "/bin/true" } }
return d
EOF

# The outputs are never created, so every edge is dirty on every run; ninja still records each
# command in .ninja_log, as in real use.
{
	printf 'rule t\n  command = /bin/true\n  description = t $out\n\n'
	for ((i = 1; i <= N_WIDE; i++)); do printf 'build w%05d: t\n' "$i"; done
} >"$TMP/ninja_wide/build.ninja"
{
	printf 'rule t\n  command = /bin/true\n  description = t $out\n\n'
	printf 'build s00001: t\n'
	for ((i = 2; i <= N_CHAIN; i++)); do printf 'build s%05d: t s%05d\n' "$i" $((i - 1)); done
} >"$TMP/ninja_chain/build.ninja"

seq "$N_WIDE" >"$TMP/lines_wide"
seq "$N_CHAIN" >"$TMP/lines_chain"

# A fresh migrated home for every run: prep_SUFFIX.sh moves the previous home aside (rename only:
# no inode is freed while the benchmark runs) and migrates a new one.
make_prep() { # script home
	mkdir -p "$2.old"
	printf '#!/bin/sh\nset -e\n[ ! -e %q ] || mv %q %q/$(date +%%s%%N)\nexec %q db migrate --home %q --dags %q >/dev/null\n' \
		"$2" "$2" "$2.old" "$SLUICE" "$2" "$TMP/dags_one" >"$1"
}
make_prep "$TMP/prep_disk.sh" "$TMP/home"
HOME_DISK=$TMP/home
if [ -n "$SHM" ]; then
	make_prep "$TMP/prep_shm.sh" "$SHM/home"
	HOME_SHM=$SHM/home
fi

# ---- sanity checks (untimed): every runner really runs N commands -------------------------------
check_ninja() { # dir n
	local last
	last=$(ninja -C "$1" -j2 | tail -n 1)
	case $last in "[$2/$2] "*) ;; *) die "ninja in $1 did not run $2 commands (last line: $last)" ;; esac
}
check_ninja "$TMP/ninja_wide" "$N_WIDE"
check_ninja "$TMP/ninja_chain" "$N_CHAIN"

check_sluice() { # dag-folder dag-id n
	bash "$TMP/prep_disk.sh"
	local out ok
	out=$("$SLUICE" dags test "$2" --home "$HOME_DISK" --dags "$1" --json 2>/dev/null) ||
		die "sluice dags test $2 failed"
	ok=$(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for t in d["task_instances"] if t["state"] == "success"))') ||
		die "cannot read the --json output of sluice dags test $2"
	[ "$ok" = "$3" ] || die "sluice ran $ok successful tasks of $2, expected $3"
}
check_sluice "$TMP/dags_wide" bench_wide "$N_WIDE"
check_sluice "$TMP/dags_chain" bench_chain "$N_CHAIN"

# ---- timing -------------------------------------------------------------------------------------
# Rows are timed interleaved: a warm-up round runs every row once, then each of RUNS rounds times
# every row once, so that a change in the machine's load during the benchmark hits all rows alike
# instead of whichever row happened to be running. Every command runs under `timeout`, the
# baselines too, so the wrapper costs every row the same. A row's PREPARE script (a fresh sluice
# home) runs untimed before each of its runs.
ROWS=()
declare -A ROW_PREP ROW_CMD
row() { # NAME PREPARE COMMAND...
	local name=$1
	ROWS+=("$name")
	ROW_PREP[$name]=$2
	shift 2
	ROW_CMD[$name]=$(printf '%q ' timeout "$CMD_TIMEOUT" "$@")
}
time_once() { # NAME: prints the wall time in seconds
	local name=$1 prep=${ROW_PREP[$1]} cmd=${ROW_CMD[$1]} t0 t1
	if ((HYPERFINE)); then
		local args=(--style none --runs 1 -N --export-json "$TMP/h.json")
		[ -z "$prep" ] || args+=(--prepare "bash $prep")
		hyperfine "${args[@]}" "$cmd" >/dev/null 2>"$TMP/h.err" ||
			{ cat "$TMP/h.err" >&2; die "$name failed"; }
		python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$TMP/h.json"
	else
		[ -z "$prep" ] || bash "$prep"
		t0=$(date +%s%N)
		eval "$cmd" >/dev/null 2>&1 || die "$name failed"
		t1=$(date +%s%N)
		echo "$(((t1 - t0) / 1000))e-6"
	fi
}

P2=(env SLUICE__CORE__PARALLELISM=2)
row "wide/xargs-P2" "" xargs -a "$TMP/lines_wide" -P2 -n1 /bin/true
row "wide/ninja-j2" "" ninja -C "$TMP/ninja_wide" -j2
row "wide/sluice-p2" "$TMP/prep_disk.sh" "${P2[@]}" "$SLUICE" dags test bench_wide --home "$HOME_DISK" --dags "$TMP/dags_wide"
row "wide/sluice-p32" "$TMP/prep_disk.sh" "$SLUICE" dags test bench_wide --home "$HOME_DISK" --dags "$TMP/dags_wide"
[ -z "$SHM" ] ||
	row "wide/sluice-p2-tmpfs" "$TMP/prep_shm.sh" "${P2[@]}" "$SLUICE" dags test bench_wide --home "$HOME_SHM" --dags "$TMP/dags_wide"
row "chain/xargs-P1" "" xargs -a "$TMP/lines_chain" -P1 -n1 /bin/true
row "chain/ninja-j2" "" ninja -C "$TMP/ninja_chain" -j2
row "chain/sluice-p2" "$TMP/prep_disk.sh" "${P2[@]}" "$SLUICE" dags test bench_chain --home "$HOME_DISK" --dags "$TMP/dags_chain"
row "chain/sluice-p32" "$TMP/prep_disk.sh" "$SLUICE" dags test bench_chain --home "$HOME_DISK" --dags "$TMP/dags_chain"
[ -z "$SHM" ] ||
	row "chain/sluice-p2-tmpfs" "$TMP/prep_shm.sh" "${P2[@]}" "$SLUICE" dags test bench_chain --home "$HOME_SHM" --dags "$TMP/dags_chain"
row "one/sluice-p32" "$TMP/prep_disk.sh" "$SLUICE" dags test bench_one --home "$HOME_DISK" --dags "$TMP/dags_one"

: >"$TMP/times"
for ((round = 0; round <= RUNS; round++)); do
	if ((round == 0)); then echo "bench: warm-up round" >&2; else echo "bench: round $round of $RUNS" >&2; fi
	for name in "${ROWS[@]}"; do
		t=$(time_once "$name")
		((round == 0)) || echo "$name $t" >>"$TMP/times"
	done
done

# ---- report -------------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fs=$(df -T "$TMP" | awk 'NR == 2 { print $2 }')
timer=$( ((HYPERFINE)) && hyperfine --version || echo 'date +%s%N')
echo
echo "sluice bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($cpu), $(uname -sr),"
echo "ninja $(ninja --version), timer: $timer, $RUNS interleaved round(s) after a warm-up round,"
echo "sluice home on $fs${SHM:+ (tmpfs rows: $TMPFS_DIR)}"
echo
python3 - "$TMP/times" "$N_WIDE" "$N_CHAIN" <<'EOF'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(float(v) * 1e3)
n = {"wide": int(sys.argv[2]), "chain": int(sys.argv[3]), "one": 1}
label = {
    "xargs-P2": "xargs -P2 -n1 /bin/true", "xargs-P1": "xargs -P1 -n1 /bin/true",
    "ninja-j2": "ninja -j2", "sluice-p2": "sluice, parallelism 2",
    "sluice-p32": "sluice, parallelism 32 (default)",
    "sluice-p2-tmpfs": "sluice, parallelism 2, home on tmpfs",
}
med = {k: statistics.median(v) for k, v in times.items()}
print("| shape | tasks | runner | wall ms: median (min-max) | / ninja | / xargs | ms per task over ninja |")
print("|---|---:|---|---:|---:|---:|---:|")
for key, v in times.items():
    shape, runner = key.split("/")
    m = med[key]
    ninja = med.get(shape + "/ninja-j2")
    xargs = med.get(shape + "/xargs-P2") or med.get(shape + "/xargs-P1")
    ratio = "%.2f" % (m / ninja) if ninja else ""
    xr = "%.2f" % (m / xargs) if xargs else ""
    over = "%+.2f" % ((m - ninja) / n[shape]) if ninja and runner.startswith("sluice") else ""
    name = "sluice, 1-task DAG (start-up)" if shape == "one" else label.get(runner, runner)
    print("| %s | %d | %s | %.0f (%.0f-%.0f) | %s | %s | %s |"
          % (shape, n[shape], name, m, min(v), max(v), ratio, xr, over))
EOF
