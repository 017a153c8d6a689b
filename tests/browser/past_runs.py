"""Writes N finished past runs of a one-task DAG straight into a running daemon's database, as an
outside process would (SQLite WAL: the daemon keeps running): the data of the browser tests'
"100,000 past runs" benchmark, which the scheduler would take hours to make by running them.

usage: past_runs.py DB DAG_ID TASK_ID COUNT

Runs are hourly, ending an hour before the current hour, one in ten failed, each with one task
instance and its one try, stamped with the DAG's current version. Existing runs are kept (a
logical date already taken is skipped). Prints how many runs it wrote."""
import datetime
import sqlite3
import sys


def main():
    db, dag_id, task_id, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    con = sqlite3.connect(db, timeout=30)
    version = con.execute("SELECT version FROM dag WHERE dag_id = ?", (dag_id,)).fetchone()
    if not version:
        sys.exit(f"past_runs.py: no DAG {dag_id} in {db}")
    hour = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    last = hour - datetime.timedelta(hours=2)
    wrote = 0
    with con:
        for i in range(count):
            start = last - datetime.timedelta(hours=i)
            us = int(start.timestamp()) * 1_000_000
            end = us + 3_600_000_000
            state = "failed" if i % 10 == 3 else "success"
            run_id = "scheduled__" + start.isoformat()
            cur = con.execute(
                "INSERT OR IGNORE INTO dag_run (dag_id, run_id, run_type, logical_date, data_interval_start,"
                " data_interval_end, state, conf, queued_at, start_date, end_date, dag_version)"
                " VALUES (?, ?, 'scheduled', ?, ?, ?, ?, '{}', ?, ?, ?, ?)",
                (dag_id, run_id, us, us, end, state, end, end + 1000, end + 900_000, version[0]))
            if not cur.rowcount:
                continue
            run_pk = cur.lastrowid
            t0, t1 = end + 2000, end + 2000 + 850_000
            ti = con.execute(
                "INSERT INTO task_instance (run_pk, dag_id, run_id, task_id, state, try_number, operator,"
                " executor, queued_when, start_date, end_date, duration, exit_code)"
                " VALUES (?, ?, ?, ?, ?, 1, 'cmd', 'local', ?, ?, ?, 0.85, ?)",
                (run_pk, dag_id, run_id, task_id, state, end + 1500, t0, t1, 1 if state == "failed" else 0))
            con.execute(
                "INSERT INTO task_try (ti_id, try_number, state, executor, queued_when, start_date, end_date,"
                " duration, exit_code) VALUES (?, 1, ?, 'local', ?, ?, ?, 0.85, ?)",
                (ti.lastrowid, state, end + 1500, t0, t1, 1 if state == "failed" else 0))
            wrote += 1
    print(wrote)


if __name__ == "__main__":
    main()
