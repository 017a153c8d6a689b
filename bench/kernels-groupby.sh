#!/usr/bin/env bash
# bench/kernels-groupby.sh - sluice-kernel groupby and join on the db-benchmark shapes, end to end from
# the CSV file (parse + aggregate/join + write the result), next to DuckDB (@duckdb/node-api,
# read_csv + the same SQL, 2 threads), Polars (nodejs-polars) and pandas (python3-pandas), all in
# the same run. Called by bench/run-kernels (which exports KERNEL, KB_DIR), or alone:
#
#   bench/kernels-groupby.sh [BUILD_DIR]     # default build; KB_GB_ROWS rows (default 1e7)
#
# Data (bench/kernels-groupby-gen.mjs, seeded, h2oai/db-benchmark's distributions): G1 (id1..id6,
# v1..v3; K=100) for q1-q5, x/small/medium for j1 (x JOIN small ON id1) and j2 (x JOIN medium ON id2).
# sluice-kernel runs with --threads 2 (groupby) to match DuckDB's 2 threads; join runs as one thread.
# Results are written to /dev/shm when it has room (all engines alike). Times are wall-clock, the best
# of KB_GB_REPS=2 runs (pandas: one run); peers time themselves inside their process, excluding the
# module load, which favours them. RSS is GNU time's peak resident set. Ratios: sluice/DuckDB
# (target <= 1.5) and pandas/sluice (target >= 5). Takes about 3-4 minutes at 1e7 rows (pandas is
# most of it); KB_GB_ROWS=1000000 for a quick look.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
KERNEL=${KERNEL:-$BUILD/kernels/sluice-kernel}
N=${KB_GB_ROWS:-10000000}
OWN_DIR=
if [ -z "${KB_DIR:-}" ]; then KB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-gbbench.XXXXXX"); OWN_DIR=1; fi
D=$KB_DIR/groupby-data
# Results go to memory (tmpfs) when there is room, for every engine alike: a join writes ~1 GB at
# 1e7 rows, and a shared disk's write-back would time the disk instead of the engines.
O=$KB_DIR/groupby-out
if [ -d /dev/shm ] && [ "$(df -Pm /dev/shm | awk 'NR==2 {print $4}')" -gt 4096 ]; then
	O=$(mktemp -d /dev/shm/sluice-gbout.XXXXXX)
fi
mkdir -p "$D" "$O"
trap 'rm -rf "$O"; if [ -n "$OWN_DIR" ]; then rm -rf "$KB_DIR"; fi' EXIT
export LC_ALL=C
cd "$ROOT"
[ -x "$KERNEL" ] || { echo "kernels-groupby: $KERNEL is missing" >&2; exit 2; }
node -e "import('@duckdb/node-api')" 2>/dev/null || { echo "kernels-groupby: npm ci first (@duckdb/node-api)" >&2; exit 2; }
HAVE_PANDAS=1
/usr/bin/python3 -c "import pandas" 2>/dev/null || HAVE_PANDAS=

t0=$(date +%s.%N)
node bench/kernels-groupby-gen.mjs groupby "$N" "$D"
node bench/kernels-groupby-gen.mjs join "$N" "$D"
echo "== group-by and join, db-benchmark shapes, N=$N rows ($(du -m "$D/G1.csv" | cut -f1) MB G1.csv, $(du -m "$D/x.csv" | cut -f1) MB x.csv), generated in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc -l)") s"

# best CMD...: "SECONDS RSS_MB" of the best of KB_GB_REPS runs (default 2; pandas runs once)
REPS=${KB_GB_REPS:-2}
# (the output directory $O/sl is removed before each run: a committed output would make a rerun a no-op)
best() {
	local b= br= t r
	for _ in $(seq "$REPS"); do
		rm -rf "$O/sl"
		read -r t r < <(run "$@")
		if [ -z "$b" ] || [ "$t" = FAIL ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t br=$r; fi
		[ "$t" = FAIL ] && break
	done
	echo "$b $br"
}
# run CMD...: prints "SECONDS RSS_MB" of one run (the command's own "seconds" line wins when it prints one)
run() {
	local t0 t1 out rssf=$O/rss.$$
	t0=$(date +%s.%N)
	out=$(/usr/bin/time -f %M -o "$rssf" "$@") || { echo "FAIL -"; return; }
	t1=$(date +%s.%N)
	local secs
	secs=$(echo "$out" | awk 'NF==2 && $1 ~ /^[0-9.]+$/ {print $1}' | tail -1)
	[ -n "$secs" ] || secs=$(echo "$t1 - $t0" | bc -l)
	echo "$(printf '%.2f' "$secs") $(( $(tail -1 "$rssf") / 1024 ))"
}
# rows of a result file without its header
rows() { [ -f "$1" ] && echo $(( $(wc -l < "$1") - 1 )) || echo "-"; }

declare -A KEY AGG
KEY[q1]=id1;      AGG[q1]=sum:v1
KEY[q2]=id1,id2;  AGG[q2]=sum:v1
KEY[q3]=id3;      AGG[q3]=sum:v1,mean:v3
KEY[q4]=id4;      AGG[q4]=mean:v1,mean:v2,mean:v3
KEY[q5]=id6;      AGG[q5]=sum:v1,sum:v2,sum:v3

printf '%-4s %-34s %8s %8s %8s %8s | %9s %9s | %s\n' q what sluice duckdb polars pandas sl/duck pandas/sl "peak RSS MB (sluice duckdb polars pandas), groups"
for q in q1 q2 q3 q4 q5 j1 j2; do
	rm -rf "$O/sl"
	if [ "${q#j}" = "$q" ]; then
		what="by ${KEY[$q]}: ${AGG[$q]}"
		read -r ts rs < <(best "$KERNEL" groupby --threads 2 -o "$O/sl" --key "${KEY[$q]}" --agg "${AGG[$q]}" \
			--output-format csv "$D/G1.csv")
	else
		if [ $q = j1 ]; then what="x JOIN small ON id1"; key=id1; right=$D/small.csv
		else what="x JOIN medium ON id2"; key=id2; right=$D/medium.csv; fi
		read -r ts rs < <(best "$KERNEL" join -o "$O/sl" --key $key --output-format csv "$D/x.csv" "$right")
	fi
	nsl=$(rows "$O/sl/part-00000.csv")
	read -r td rd < <(best node bench/kernels-groupby-peers.mjs duckdb $q "$D" "$O/duck.csv")
	nd=$(rows "$O/duck.csv")
	read -r tp rp < <(best node bench/kernels-groupby-peers.mjs polars $q "$D" "$O/polars.csv")
	tpd=- rpd=-
	[ -n "$HAVE_PANDAS" ] && read -r tpd rpd < <(run /usr/bin/python3 bench/kernels-groupby-pandas.py $q "$D" "$O/pandas.csv")
	r1=0
	[ "$ts" != FAIL ] && [ "$td" != FAIL ] && r1=$(echo "$ts / $td" | bc -l 2>/dev/null || echo 0)
	r2=-
	[ "$tpd" != - ] && [ "$tpd" != FAIL ] && r2=$(printf '%.1fx' "$(echo "$tpd / $ts" | bc -l)")
	printf '%-4s %-34s %7ss %7ss %7ss %7ss | %8.2fx %9s | %s %s %s %s, %s rows (duckdb %s)\n' $q "$what" "$ts" "$td" "$tp" "$tpd" \
		"$r1" "$r2" "$rs" "$rd" "$rp" "$rpd" "$nsl" "$nd"
	rm -f "$O/duck.csv" "$O/polars.csv" "$O/pandas.csv"
done
echo "kernels-groupby: $(printf '%.0f' "$(echo "$(date +%s.%N) - $t0" | bc -l)") s in all; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
