#!/usr/bin/env bash
# `make run`: migrate the database, check the example DAGs, queue one run of each example that
# has no schedule, and start the daemon (scheduler + REST API) in the foreground. Ctrl-C stops it;
# running tasks keep running and are collected at the next start.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sluice="$build/cli/sluice"
export SLUICE_HOME=${SLUICE_HOME:-$PWD/.sluice}
export SLUICE_DAGS=${SLUICE_DAGS:-$PWD/dags}

"$sluice" db migrate || exit 1
"$sluice" dags check || true
for id in $("$sluice" dags list --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["dags"]:
    if d["schedule_interval"] is None:
        print(d["dag_id"])'); do
	"$sluice" dags trigger "$id" >/dev/null 2>&1 && echo "queued a run of $id"
done
cat <<MSG

State: $SLUICE_HOME (database sluice.db, one log per try under logs/)
Watch: $sluice runs list <dag_id>    $sluice tasks list <dag_id> <run_id>
       $sluice tasks logs <dag_id> <run_id> <task_id>
The daemon below is the scheduler, the web UI and the REST API: it prints the UI's address
and, on its first start, the admin password (kept in $SLUICE_HOME/admin_password.txt until
admin first logs in; log in to the UI as admin with it). Ctrl-C stops the daemon.

MSG
if [[ -f $SLUICE_HOME/admin_password.txt ]]; then
	echo "Admin password (admin has not logged in yet): $(cat "$SLUICE_HOME/admin_password.txt")"
fi
exec "$sluice" serve
