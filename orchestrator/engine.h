/* The run engine: turns DAG runs into task tries and task tries into states.
 *
 * Event-driven: nothing re-scans task instances. A finished try updates the counters of its
 * downstream tasks only, and a task whose trigger rule becomes decidable is scheduled (or
 * skipped / upstream_failed) right then. Timers (retries, sensor pokes, run timeouts) live in
 * the event loop's timer heap.
 *
 * Persistence: state changes are made in memory and marked dirty; once per event-loop iteration
 * the engine writes every dirty row in one transaction, and only after that commit does it
 * start the tries it queued (queued is committed before spawn). The pid and "running" of the
 * started tries go into a second transaction right after the spawns.
 *
 * Threading: everything here runs on the event loop's thread. */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "orchestrator/dag.h"
#include "base/evloop.h"
#include "orchestrator/runs.h"
#include "orchestrator/states.h"
#include "orchestrator/store.h"

struct engine;
struct erun;

struct engine_opts {
	const char *home;        /* state directory; logs go to <home>/logs */
	const char *shim_path;   /* the sluice-shim binary */
	int parallelism;         /* local executor: tries at once */
	usec_t kill_grace;       /* SIGTERM -> SIGKILL grace for timeouts and cancels */
	bool ignore_unknown_pools; /* `dags test`: a missing pool does not hold a task back */
	struct notify *notify;   /* runs the DAGs' callbacks; NULL: none (borrowed) */
	const char *env_passthrough; /* names of the daemon's variables tasks also get (comma-separated) */
	long long max_log_size;  /* bytes a try may write to its log; 0 = no cap */
	bool sync_status;        /* core.db_synchronous = full: status files are fsynced too */
	const char *const *settings; /* "section.key=value" of the configuration (NULL-terminated, copied):
	                              * executor NAME gets the NAME.* ones; NULL = none */
};

/* Creates an engine over a writable store and a loop (both borrowed). NULL with *err set. */
struct engine *engine_new(struct store *st, struct evloop *loop, const struct engine_opts *o, char **err);
/* Frees the engine. Running tries are left to their supervisors. */
void engine_free(struct engine *e);

/* Queues a run of d (runs_queue(): the one place that builds a run row; the run records d's
 * version unless req pins one) and starts it. *err set on failure (-EEXIST when the run_id or
 * logical date is taken, -EINVAL for a bad run_id or conf). On success, *out (if not NULL) gets
 * a borrowed pointer valid until the run-finished callback returns. */
int engine_create_run(struct engine *e, struct dag *d, const struct run_request *req,
		      struct erun **out, char **err);

/* Starts a run whose row is in the database (state queued or running): loads its task
 * instances, creating them when there are none, and carries on from the states it finds. This
 * is also how a restarted daemon resumes: running tries are re-attached (never started again),
 * queued tries whose supervisor never started are started, retry and poke timers are re-armed,
 * and trigger rules are re-evaluated from the stored states. The row is copied. */
int engine_start_run(struct engine *e, struct dag *d, const struct run_row *row,
		     struct erun **out, char **err);

/* Since when the engine's state changes cannot be written (a full disk, an I/O error; they are
 * kept and retried), or USEC_NONE. */
usec_t engine_commit_failing(const struct engine *e);
/* Runs of dag_id the engine is driving (not finished). */
int engine_active_runs(const struct engine *e, const char *dag_id);
/* Whether the engine drives the run with this primary key. */
bool engine_has_run(const struct engine *e, int64_t run_pk);
/* Number of tries an executor holds right now, by walking the runs (for shutdown). */
int engine_running_tries(const struct engine *e);
/* The same from the executors' own counts, without walking anything (for metrics). */
int engine_slots_in_use(const struct engine *e);
/* Stops every running try (SIGTERM to its group, SIGKILL after the grace period); they end as
 * failed tries that are retried when tries remain. For `serve --kill-tasks-on-exit`. */
void engine_kill_all(struct engine *e);
/* Forgets cached pool sizes so the next dispatch reads them from the database. */
void engine_reload_pools(struct engine *e);

/* Clears task instances (by primary key) of a run the engine is driving, as Airflow does: each
 * goes back to none with retries available again and is scheduled as its trigger rule allows;
 * a try that is under way is left to finish. Sets cleared[j] for each pk cleared (may be NULL).
 * Returns how many were cleared, or -ENOENT when the engine does not drive the run. */
int engine_clear(struct engine *e, int64_t run_pk, const int64_t *ti_pks, size_t n, bool *cleared);

/* Called when a run reaches success or failed (after its final state is committed). */
typedef void (*engine_run_done_cb)(void *arg, struct erun *run);
void engine_on_run_done(struct engine *e, engine_run_done_cb cb, void *arg);

/* Stops a run: running tries are cancelled (they end as failed, without retry), tasks that
 * did not start become skipped... then the run fails. */
void engine_cancel_run(struct engine *e, struct erun *run, const char *why);

/* Stops the running tries of task_id (one map_index, or all with -1) in a run the engine drives:
 * SIGTERM to each try's process group, SIGKILL after the grace; each ends as failed without a
 * retry and the run goes on from there. Returns how many, -ENOENT (not driven), -EINVAL (no such
 * task) or -ESRCH (none of them is running). */
int engine_kill_try(struct engine *e, int64_t run_pk, const char *task_id, int map_index, const char *why);

/* Airflow's "mark" inside a run the engine drives: each task instance (by primary key) takes
 * state st (success, failed or skipped). A try under way is stopped (SIGTERM to its group,
 * SIGKILL after the grace) and ends as st without a retry; one not started yet never starts; a
 * finished one changes state and its downstream tasks count it anew. Downstream tasks then go
 * on as their trigger rules say. Sets marked[j] for each pk found (may be NULL). Returns how
 * many, -ENOENT when the engine does not drive the run, -EINVAL for another state. */
int engine_mark(struct engine *e, int64_t run_pk, const int64_t *ti_pks, size_t n, enum ti_state st,
		const char *why, bool *marked);

/* Keeps the engine's copy of a run's note in step with the database (the note was written by
 * the caller): the next write of the run carries it. */
void engine_set_run_note(struct engine *e, int64_t run_pk, const char *note);

/* Stops a run the engine drives whose rows the caller deletes right after (in the same
 * transaction on the engine's thread): its tries are stopped as by a cancel, and from now on
 * nothing of the run is written, logged or notified; the engine forgets it once its tries have
 * ended, and removes its log folder once more then (a supervisor that was stopping may have
 * written its status into it meanwhile). -ENOENT when the engine does not drive it. */
int engine_delete_run(struct engine *e, int64_t run_pk, const char *why);

/* engine_cancel_run() for the run with this primary key; -ENOENT when the engine does not drive
 * it (or it has finished). */
int engine_cancel_run_pk(struct engine *e, int64_t run_pk, const char *why);

/* Accessors of a run for callers that report on it. */
const struct run_row *erun_row(const struct erun *r);
const struct dag *erun_dag(const struct erun *r);

#endif
