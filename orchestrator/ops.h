/* Operations on stored runs that no engine is driving: clear and mark task instances.
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

/* Clears the selected instances (unless dry_run) and requeues the run. Returns the number of
 * instances (listed in *out), -EBUSY when the run is running, or another negative error. */
int ops_clear(struct store *st, const struct dag *d, const struct run_row *run,
	      const struct ops_selection *sel, bool dry_run, struct ti_row **out, char **err);

/* Sets the selected instances to state ("success", "failed" or "skipped"). When every instance of
 * the run is then finished, the run's state follows from its leaves; otherwise the run is
 * requeued so the rest runs. Returns the count, -EBUSY when the run is running, or negative. */
int ops_mark(struct store *st, const struct dag *d, const struct run_row *run,
	     const struct ops_selection *sel, const char *state, bool dry_run, struct ti_row **out, char **err);

#endif
