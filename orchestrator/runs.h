/* Use case: queue a run. The one place that builds a run row and validates a run_id, for the
 * CLI (`dags trigger`, on its own connection), the REST API (inside sched_write()), the
 * scheduler (scheduled and backfill runs) and `dags test`.
 *
 * Every function takes the writer connection first. */
#ifndef SLUICE_RUNS_H
#define SLUICE_RUNS_H

#include <stdbool.h>

#include "orchestrator/dag.h"
#include "orchestrator/store.h"

/* What a new run looks like; NULL / USEC_NONE / 0 fields get defaults. */
struct run_request {
	const char *run_type;      /* "manual" (default), "scheduled", "backfill" */
	const char *run_id;        /* default "<run_type>__<logical date ISO>"; else valid_run_id() */
	usec_t logical_date;       /* default now; a defaulted date steps past a same-microsecond clash */
	usec_t data_interval_start, data_interval_end; /* default: engine_infer_interval() */
	const char *conf;          /* JSON object text, default "{}" */
	const char *note;
	const char *owner;         /* NULL = the daemon; "test:<pid>" for `dags test` */
	const char *dag_version;   /* pin a version (a broken file's last good one); default none:
	                              the daemon runs the DAG's current version */
	const char *dag_source;    /* when set, d's row and version are written in the same transaction
	                              (the CLI, whose DAG may be new to the database) */
	int64_t backfill_id;       /* 0 = not part of a backfill */
};

/* Checks req against d without writing: the run_id's characters and length, conf is a JSON
 * object. Returns 0 or -EINVAL with *err set (caller frees). */
int runs_check(const struct run_request *req, char **err);

/* Validates req and inserts a queued run of d in one BEGIN IMMEDIATE transaction. Returns 0 and
 * fills *out (caller frees with run_row_free); -EINVAL (bad run_id or conf), -EEXIST (the run_id
 * or logical date is taken) or another negative errno, each with *err set (caller frees). */
int runs_queue(struct store *w, const struct dag *d, const struct run_request *req,
	       struct run_row *out, char **err);

/* The same inside a transaction the caller holds (it commits or rolls back). */
int runs_insert(struct store *w, const struct dag *d, const struct run_request *req,
		struct run_row *out, char **err);

/* Airflow's run id "<run_type>__<logical date ISO>" (malloc'd). */
char *runs_default_id(const char *run_type, usec_t logical_date);

/* Infers the data interval of a manual run at logical date t, as Airflow does: the last
 * complete schedule interval that ends at or before t; [t, t] without a schedule. */
void runs_infer_interval(const struct dag *d, usec_t t, usec_t *start, usec_t *end);

/* $home/logs/<dag>/<run>/<task>/<map_index>/<try>.<ext> (ext "log" for the try's log; the
 * supervisor's status, pid and output files sit beside it), malloc'd; NULL when an id could
 * step outside the home. */
char *runs_log_path(const char *home, const char *dag_id, const char *run_id, const char *task_id, int map_index,
		    int try_number, const char *ext);

/* $home/logs/<dag_id>/<run_id> (malloc'd), or NULL when an id could step outside it. */
char *runs_log_dir(const char *home, const char *dag_id, const char *run_id);

/* Removes a run's logs: refuses (-EPERM, nothing removed) a folder that is not inside
 * $home/logs, whatever the ids in the row say. Returns 0 or -errno. */
int runs_remove_logs(const char *home, const char *dag_id, const char *run_id);

#endif
