/* The scheduler daemon (`sluice serve`): watches the DAG folder, keeps the database's view of
 * DAGs and import errors current, creates runs from schedules (Airflow 2 data intervals, catchup,
 * start/end dates, max_active_runs), starts runs queued from the CLI, and drives them all through
 * the run engine. It resumes the runs it owns after a restart, crash or not.
 *
 * One process at a time: the daemon holds an exclusive lock on $SLUICE_HOME/serve.lock for its
 * whole life; sched_daemon_running() tells other commands whether it is up. */
#ifndef SLUICE_SCHEDULER_H
#define SLUICE_SCHEDULER_H

#include <stdbool.h>

#include "orchestrator/config.h"
#include "orchestrator/store.h"

struct sched_opts {
	const struct config *cfg;
	const char *home;          /* absolute state directory */
	const char *shim_path;     /* sluice-shim */
	const char *probe_exe;     /* runs `probe_exe __dag-probe FD` to try DAG files first
	                            * (dag_probe.h); NULL = load them in the daemon only */
	bool kill_tasks_on_exit;   /* SIGTERM/SIGINT also stop running tries */
};

/* Runs the daemon until SIGTERM or SIGINT. Returns the process exit status. */
int sched_serve(const struct sched_opts *o);

/* The wall-clock time of the daemon's latest scheduling pass in this process (USEC_NONE before
 * the first). Thread-safe: the web server reads it for /health. */
usec_t sched_heartbeat(void);

/* Gauges of the running daemon, for /metrics (thread-safe reads). */
struct sched_stats {
	usec_t loop;            /* duration of the latest scheduling pass */
	usec_t commit;          /* duration of the latest database commit */
	int slots_in_use;       /* tries the executors hold */
	usec_t commit_failing_since; /* the engine cannot write its changes since (USEC_NONE: it can) */
	usec_t scan;            /* duration of the latest rescan of the DAG folder (stat, re-read,
	                           re-parse of changed files, DAG rows written) */
	long long scans;        /* rescans since the daemon started */
	double scan_total;      /* their summed duration, seconds */
	int dag_files;          /* files in the DAG folder at the latest rescan */
};
void sched_get_stats(struct sched_stats *out);

/* Runs fn(writer, ctx) on the daemon's loop thread with its single writer connection, waits for
 * it and returns its result; the next scheduling pass follows at once, so a queued run or a
 * changed flag takes effect without waiting for the tick. Thread-safe (the web server's writes
 * go through here). Returns -ESRCH when no daemon runs in this process, -ESHUTDOWN when it
 * stopped before running fn, -ETIMEDOUT when the loop did not come to fn within the write wait
 * (a stuck scheduler: fn is then never run; once started, fn is waited for to its end). */
int sched_write(int (*fn)(struct store *writer, void *ctx), void *ctx);
/* How long sched_write() waits for the loop to take a call (webserver.write_timeout). */
void sched_set_write_wait(usec_t wait);

/* The daemon's run engine, for functions that sched_write() runs (only valid there, on the
 * loop thread); NULL when no daemon runs in this process. */
struct engine *sched_engine(void);

/* Tells the daemon that the record of dag_id was deleted while its file stays: the file is
 * imported again at the next scan, and the DAG starts afresh. Only from functions that
 * sched_write() runs; no effect without a daemon. */
void sched_dag_deleted(const char *dag_id);

/* Reads the DAG file at path again now (Airflow's reparseDagFile), whether or not it changed.
 * Only from functions that sched_write() runs. -ENOENT when the folder has no such file,
 * -ESRCH without a daemon. */
int sched_reparse(const char *path);

/* True when a `sluice serve` holds the lock of home; *pid gets its pid when known. */
bool sched_daemon_running(const char *home, int *pid);

#endif
