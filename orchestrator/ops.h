/* Use cases on runs: clear and mark task instances, delete a run.
 * Each runs in one write transaction that first checks the run is not running, so it cannot
 * race with a daemon that is starting the run. A cleared run becomes queued; a daemon picks it up
 * and runs what was cleared (with `serve` down, it waits for the next start). */
#ifndef SLUICE_OPS_H
#define SLUICE_OPS_H

#include <stdbool.h>

#include "orchestrator/dag.h"
#include "orchestrator/store.h"

struct ops_selection {
	const char *const *task_ids;  /* tasks named by the user */
	size_t ntasks;
	int map_index;                /* -2 = every instance */
	bool upstream, downstream;    /* also the tasks up/downstream of them, transitively */
	bool only_failed;             /* only failed and upstream_failed instances */
	bool only_unfinished;         /* only instances that have not finished */
};

/* Selects the instances of run that sel names, in d (the run's DAG). Returns the count (rows in
 * *out, caller frees each) or -ENOENT with *err for an unknown task. */
int ops_select(struct store *st, const struct dag *d, const struct run_row *run,
	       const struct ops_selection *sel, struct ti_row **out, char **err);

struct engine;
/* Use case "clear", the same for the CLI and the API: clears the selected instances (unless
 * dry_run). A run that is not running is changed in the store and requeued; a running run that
 * the daemon's engine e drives is cleared by the engine in memory (a try under way finishes and
 * is not reported). e is the daemon's engine on its writer thread, or NULL (no daemon in this
 * process). Returns the number of instances (listed in *out), -EBUSY when the run is running
 * and e does not drive it, or another negative error, with *err. */
int ops_clear(struct store *w, struct engine *e, const struct dag *d, const struct run_row *run,
	      const struct ops_selection *sel, bool dry_run, struct ti_row **out, char **err);

/* Use case "cancel a run" (Airflow's "mark failed" on a running run): a running run the daemon's
 * engine e drives has its tries stopped (their process groups killed) and fails, with why as its
 * note; a queued run fails without starting. Returns 0, -EBUSY (running outside the daemon),
 * -EALREADY (it has ended), -ENOENT, or the store's error, with *err. */
int ops_cancel_run(struct store *w, struct engine *e, const struct run_row *run, const char *why, char **err);

/* Use case "kill a try": the running tries of task_id (map_index, or every one with -1) in a
 * running run the daemon's engine e drives are stopped and fail without a retry. Returns how
 * many, -EALREADY (the run is not running), -EBUSY (running outside the daemon), -EINVAL (no
 * such task), -ESRCH (it is not running), with *err. */
int ops_kill_try(struct store *w, struct engine *e, const struct run_row *run, const char *task_id, int map_index,
		 const char *why, char **err);

/* Use case "delete a run": in one transaction deletes the run with its instances, tries and
 * outputs, then removes its logs, never outside $home/logs whatever the row says. A running run
 * the daemon's engine e drives has its tries stopped first and is forgotten by the engine (as
 * Airflow deletes a running run); one running elsewhere is refused (-EBUSY) unless force (`dags
 * test` replacing its own earlier run). Returns 0, -ENOENT, -EBUSY or the store's error, with
 * *err. */
int ops_delete_run(struct store *w, struct engine *e, const char *home, const char *dag_id, const char *run_id,
		   bool force, char **err);

/* Use case "mark": sets the selected instances to state ("success", "failed" or "skipped"). In
 * a run that is not running, when every instance is then finished the run's state follows from
 * its leaves, otherwise the run is requeued so the rest runs. In a running run the daemon's
 * engine e drives, the engine marks them (engine_mark: a try under way is stopped and ends in
 * that state). Returns the count, -EBUSY when the run is running elsewhere, or negative. */
int ops_mark(struct store *st, struct engine *e, const struct dag *d, const struct run_row *run,
	     const struct ops_selection *sel, const char *state, bool dry_run, struct ti_row **out, char **err);

/* Use case "set a run's state" (PATCH dagRun): "success" marks every instance success (stopping
 * the tries under way); "failed" stops a running run as ops_cancel_run does (tries failed, the
 * rest skipped) and fails a finished one, its unfinished instances skipped; "queued" only puts
 * the run back in the queue and touches no instance (-EBUSY while it runs). Returns 0 or a
 * negative error with *err. */
int ops_set_run_state(struct store *w, struct engine *e, const struct dag *d, const struct run_row *run,
		      const char *state, const char *why, char **err);

/* Use case "note" (Airflow's setNote): the note of a run (task_id NULL) or of one task instance.
 * The daemon's engine e keeps its copy of a running run's note in step. -ENOENT when missing. */
int ops_set_note(struct store *w, struct engine *e, const struct run_row *run, const char *task_id, int map_index,
		 const char *note, char **err);

/* Use case "delete a DAG" (Airflow's DELETE /dags/{id}): in one transaction, its runs with their
 * task instances, tries and outputs, its backfills, versions and record; then its logs. The file
 * stays: the daemon imports it again at its next scan (remove the file to be rid of the DAG).
 * Refused with -EBUSY while one of its runs is running, as Airflow. -ENOENT when unknown. */
int ops_delete_dag(struct store *w, const char *home, const char *dag_id, char **err);

#endif
