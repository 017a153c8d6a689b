#!/usr/bin/env bash
# `make run`: migrate the database, check the example DAGs and run each once.
# The scheduler daemon (`sluice serve`) is not built yet; until it is, this runs every
# example DAG through `sluice dags test` so that the whole path (DSL, store, executor,
# logs) is exercised for real, and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sluice="$build/sluice"
export SLUICE_HOME=${SLUICE_HOME:-$PWD/.sluice}
export SLUICE_DAGS=${SLUICE_DAGS:-$PWD/dags}

"$sluice" db migrate || exit 1
"$sluice" dags check || true
echo
echo "Note: the scheduler daemon (sluice serve, with its web UI) is not part of this build yet."
echo "Running each example DAG once with \`sluice dags test\` instead:"
echo
rc=0
for id in $("$sluice" dags list --json | python3 -c 'import json,sys; print("\n".join(d["dag_id"] for d in json.load(sys.stdin)["dags"]))'); do
	echo "== $id"
	"$sluice" dags test "$id" || rc=1
	echo
done
echo "State: $SLUICE_HOME (database sluice.db, logs under logs/)"
echo "Try: $sluice runs list <dag_id>   $sluice tasks logs <dag_id> <run_id> <task_id>"
exit $rc
