#include "orchestrator/ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "orchestrator/engine.h"
#include "orchestrator/runs.h"
#include "orchestrator/states.h"

/* Marks t and, when asked, everything up- or downstream of it. */
static void closure(const struct dag *d, int t, bool up, bool down, bool *sel)
{
	int *stack = xmalloc(d->ntasks * sizeof(int) + sizeof(int));
	size_t sp = 0;
	if (sel[t])
		goto out;
	sel[t] = true;
	stack[sp++] = t;
	while (sp > 0) {
		const struct task *x = &d->tasks[stack[--sp]];
		for (int dir = 0; dir < 2; dir++) {
			if ((dir == 0 && !down) || (dir == 1 && !up))
				continue;
			const int *next = dir == 0 ? x->downstream : x->upstream;
			size_t n = dir == 0 ? x->n_down : x->n_up;
			for (size_t i = 0; i < n; i++) {
				if (!sel[next[i]]) {
					sel[next[i]] = true;
					stack[sp++] = next[i];
				}
			}
		}
	}
out:
	free(stack);
}

int ops_select(struct store *st, const struct dag *d, const struct run_row *run,
	       const struct ops_selection *sel, struct ti_row **out, char **err)
{
	bool *want = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(bool));
	struct ti_row *rows = NULL;
	int n, kept = 0;
	*out = NULL;
	for (size_t i = 0; i < sel->ntasks; i++) {
		int t = dag_task_index(d, sel->task_ids[i]);
		if (t < 0) {
			*err = xasprintf("DAG '%s' has no task '%s'", d->dag_id, sel->task_ids[i]);
			free(want);
			return -ENOENT;
		}
		/* The named tasks themselves, then their closures (which include them). */
		bool *one = xcalloc(d->ntasks, sizeof(bool));
		closure(d, t, sel->upstream, sel->downstream, one);
		for (size_t k = 0; k < d->ntasks; k++)
			want[k] |= one[k];
		free(one);
	}
	n = store_ti_list(st, run->pk, &rows);
	for (int i = 0; i < n; i++) {
		int t = dag_task_index(d, rows[i].task_id);
		bool named = false;
		for (size_t k = 0; k < sel->ntasks; k++)
			named |= !strcmp(sel->task_ids[k], rows[i].task_id);
		bool ok = t >= 0 && want[t];
		if (ok && named && sel->map_index != -2 && rows[i].map_index != sel->map_index)
			ok = false;
		if (ok && sel->only_failed && strcmp(rows[i].state, "failed") && strcmp(rows[i].state, "upstream_failed"))
			ok = false;
		int stt = ti_state_parse(rows[i].state);
		if (ok && sel->only_unfinished && stt >= 0 && ti_state_finished((enum ti_state)stt))
			ok = false;
		if (ok)
			rows[kept++] = rows[i];
		else
			ti_row_free(&rows[i]);
	}
	free(want);
	*out = rows;
	return n < 0 ? n : kept;
}

static void free_rows(struct ti_row *rows, int n)
{
	for (int i = 0; i < n; i++)
		ti_row_free(&rows[i]);
	free(rows);
}

/* Checks inside the transaction that no engine drives the run right now. */
static int check_idle(struct store *st, const struct run_row *run, char **err)
{
	struct run_row now = {0};
	int rc = store_run_get(st, run->dag_id, run->run_id, 0, &now);
	if (rc < 0) {
		*err = xasprintf("run %s of %s is gone", run->run_id, run->dag_id);
		return rc;
	}
	rc = strcmp(now.state, "running") ? 0 : -EBUSY;
	if (rc)
		*err = xasprintf("run %s of %s is running; change its task instances once it has ended "
				 "(the daemon's REST API can clear inside a running run it drives)",
				 run->run_id, run->dag_id);
	run_row_free(&now);
	return rc;
}

/* The common start of a change: a transaction, the selection, the check that the run is idle.
 * Returns 1 to go on (transaction open, *n rows in *out), 0 when done already (a dry run: *n
 * rows, transaction closed) or a negative error (nothing to free, transaction closed). */
static int begin_change(struct store *st, const struct dag *d, const struct run_row *run,
			const struct ops_selection *sel, bool dry_run, struct ti_row **out, int *n, char **err)
{
	int rc = store_begin(st);
	*n = 0;
	if (rc < 0) {
		*err = xstrdup("cannot start a transaction");
		return rc;
	}
	*n = ops_select(st, d, run, sel, out, err);
	if (*n < 0) {
		store_rollback(st);
		return *n;
	}
	if ((rc = check_idle(st, run, err)) < 0) {
		store_rollback(st);
		free_rows(*out, *n);
		*out = NULL;
		*n = 0;
		return rc;
	}
	if (dry_run) {
		store_rollback(st);
		return 0;
	}
	return 1;
}

/* Commits a change, or rolls it back and frees the rows. Returns n or a negative error. */
static int end_change(struct store *st, int rc, struct ti_row **out, int n, char **err)
{
	if (rc < 0 || (rc = store_commit(st)) < 0) {
		store_rollback(st);
		*err = xstrdup("cannot write the changed task instances");
		free_rows(*out, n);
		*out = NULL;
		return rc;
	}
	return n;
}

static int clear_stored(struct store *st, const struct dag *d, const struct run_row *run,
			const struct ops_selection *sel, bool dry_run, struct ti_row **out, char **err)
{
	int n, rc = begin_change(st, d, run, sel, dry_run, out, &n, err);
	if (rc <= 0)
		return rc < 0 ? rc : n;
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		int t = dag_task_index(d, (*out)[i].task_id);
		struct ti_row cleared;
		ti_row_copy(&cleared, &(*out)[i]);
		ti_clear_row(&cleared, d->tasks[t].retries);
		if ((rc = store_ti_update(st, &cleared)) == 0)
			rc = store_output_clear(st, cleared.pk);
		ti_row_free(&cleared);
	}
	if (rc == 0 && n > 0)
		rc = store_run_requeue(st, run->pk);
	return end_change(st, rc, out, n, err);
}

/* The state of a run whose instances are all finished (run_outcome over its leaves); *all_done
 * says whether they are. */
static const char *final_state(struct store *st, const struct dag *d, const struct run_row *run, bool *all_done)
{
	struct ti_row *rows = NULL;
	int n = store_ti_list(st, run->pk, &rows);
	enum ti_state *leaves = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*leaves));
	size_t nleaves = 0;
	*all_done = true;
	for (int i = 0; i < n; i++) {
		int s = ti_state_parse(rows[i].state);
		int t = dag_task_index(d, rows[i].task_id);
		if (s < 0 || !ti_state_finished((enum ti_state)s))
			*all_done = false;
		else if (t >= 0 && d->tasks[t].n_down == 0)
			leaves[nleaves++] = (enum ti_state)s;
	}
	enum run_state out = run_outcome(leaves, nleaves, false);
	free(leaves);
	free_rows(rows, n < 0 ? 0 : n);
	return run_state_name(out);
}

static int mark_stored(struct store *st, const struct dag *d, const struct run_row *run,
		       const struct ops_selection *sel, const char *state, bool dry_run, struct ti_row **out, char **err)
{
	int n, rc = begin_change(st, d, run, sel, dry_run, out, &n, err);
	if (rc <= 0)
		return rc < 0 ? rc : n;
	rc = 0;
	usec_t now = now_usec();
	for (int i = 0; i < n && rc == 0; i++)
		rc = store_ti_set_state(st, (*out)[i].pk, state, now);
	bool all_done;
	const char *fin = final_state(st, d, run, &all_done);
	if (rc == 0 && !all_done) {
		rc = store_run_requeue(st, run->pk);
	} else if (rc == 0) {
		struct run_row r = {0};
		run_row_copy(&r, run);
		free(r.state);
		r.state = xstrdup(fin);
		r.end_date = now;
		rc = store_run_update(st, &r);
		run_row_free(&r);
	}
	return end_change(st, rc, out, n, err);
}

/* Marking inside a run the engine drives: the selection comes from the database, the engine
 * changes the states (stopping the tries under way). */
static int mark_running(struct store *w, struct engine *e, const struct run_row *run, const struct dag *d,
			const struct ops_selection *sel, enum ti_state st, bool dry_run, struct ti_row **out,
			char **err)
{
	int n = ops_select(w, d, run, sel, out, err);
	if (n <= 0 || dry_run)
		return n;
	int64_t *pks = xcalloc((size_t)n, sizeof(*pks));
	bool *done = xcalloc((size_t)n, sizeof(*done));
	for (int i = 0; i < n; i++)
		pks[i] = (*out)[i].pk;
	char *why = xasprintf("marked %s by a user", ti_state_name(st));
	int rc = engine_mark(e, run->pk, pks, (size_t)n, st, why, done), kept = 0;
	free(why);
	for (int i = 0; i < n; i++) {
		if (rc >= 0 && done[i])
			(*out)[kept++] = (*out)[i];
		else
			ti_row_free(&(*out)[i]);
	}
	free(pks);
	free(done);
	return kept;
}

int ops_mark(struct store *st, struct engine *e, const struct dag *d, const struct run_row *run,
	     const struct ops_selection *sel, const char *state, bool dry_run, struct ti_row **out, char **err)
{
	int ts = ti_state_parse(state);
	*out = NULL;
	if (ts != TI_SUCCESS && ts != TI_FAILED && ts != TI_SKIPPED) {
		*err = xasprintf("cannot mark a task instance '%s' (use success, failed or skipped)", state);
		return -EINVAL;
	}
	int n = mark_stored(st, d, run, sel, state, dry_run, out, err);
	if (n != -EBUSY || !e || !engine_has_run(e, run->pk))
		return n;
	free(*err);
	*err = NULL;
	return mark_running(st, e, run, d, sel, (enum ti_state)ts, dry_run, out, err);
}

/* Clearing inside a run the engine drives: the selection comes from the database, the change is
 * made by the engine in memory (tries under way are left to finish and are not reported). */
static int clear_running(struct store *w, struct engine *e, const struct dag *d, const struct run_row *run,
			 const struct ops_selection *sel, bool dry_run, struct ti_row **out, char **err)
{
	int n = ops_select(w, d, run, sel, out, err);
	if (n <= 0 || dry_run)
		return n;
	int64_t *pks = xcalloc((size_t)n, sizeof(*pks));
	bool *done = xcalloc((size_t)n, sizeof(*done));
	for (int i = 0; i < n; i++)
		pks[i] = (*out)[i].pk;
	int rc = engine_clear(e, run->pk, pks, (size_t)n, done), kept = 0;
	for (int i = 0; i < n; i++) {
		if (rc >= 0 && done[i])
			(*out)[kept++] = (*out)[i];
		else
			ti_row_free(&(*out)[i]);
	}
	free(pks);
	free(done);
	return kept;
}

int ops_clear(struct store *w, struct engine *e, const struct dag *d, const struct run_row *run,
	      const struct ops_selection *sel, bool dry_run, struct ti_row **out, char **err)
{
	*out = NULL;
	int n = clear_stored(w, d, run, sel, dry_run, out, err);
	if (n != -EBUSY || !e || !engine_has_run(e, run->pk))
		return n;
	free(*err);
	*err = NULL;
	return clear_running(w, e, d, run, sel, dry_run, out, err);
}

int ops_delete_run(struct store *w, struct engine *e, const char *home, const char *dag_id, const char *run_id,
		   bool force, char **err)
{
	struct run_row now = {0};
	int rc = store_begin(w);
	if (rc < 0) {
		*err = xstrdup("cannot start a database transaction");
		return rc;
	}
	if ((rc = store_run_get(w, dag_id, run_id, 0, &now)) < 0)
		*err = xasprintf("no run %s of DAG %s", run_id, dag_id);
	else if (!force && !strcmp(now.state, "running") &&
		 (!e || engine_delete_run(e, now.pk, "the run was deleted") < 0) && (rc = -EBUSY))
		*err = xasprintf("run %s is running outside the daemon; delete it once it has ended", run_id);
	else if ((rc = store_run_delete(w, now.pk)) < 0)
		*err = xstrdup("cannot delete the run");
	if (rc == 0 && (rc = store_commit(w)) < 0)
		*err = xstrdup("cannot commit the deletion");
	else if (rc < 0)
		store_rollback(w);
	/* The rows are gone for good: their logs go too, but never a folder outside the home. */
	if (rc == 0 && runs_remove_logs(home, now.dag_id, now.run_id) == -EPERM)
		log_warnx("run %s of %s: its log folder is not inside %s/logs; left it alone", now.run_id, now.dag_id, home);
	run_row_free(&now);
	return rc;
}

int ops_cancel_run(struct store *w, struct engine *e, const struct run_row *run, const char *why, char **err)
{
	struct run_row now = {0};
	int rc = store_run_get(w, run->dag_id, run->run_id, 0, &now);
	if (rc < 0) {
		*err = xasprintf("no run %s of DAG %s", run->run_id, run->dag_id);
		return rc;
	}
	if (!strcmp(now.state, "running")) {
		rc = e ? engine_cancel_run_pk(e, now.pk, why) : -ENOENT;
		if (rc == -ENOENT) {
			rc = -EBUSY;
			*err = xasprintf("run %s of %s is running outside the daemon; stop that process instead",
					 run->run_id, run->dag_id);
		}
	} else if (!strcmp(now.state, "queued")) {
		/* Not started: nothing to stop, it just never runs. */
		free(now.state);
		now.state = xstrdup("failed");
		free(now.note);
		now.note = xstrdup(why);
		now.end_date = now_usec();
		if ((rc = store_run_update(w, &now)) < 0)
			*err = xstrdup("cannot record the cancel");
	} else {
		rc = -EALREADY;
		*err = xasprintf("run %s of %s has already ended (%s)", run->run_id, run->dag_id, now.state);
	}
	run_row_free(&now);
	return rc;
}

int ops_kill_try(struct store *w, struct engine *e, const struct run_row *run, const char *task_id, int map_index,
		 const char *why, char **err)
{
	struct run_row now = {0};
	int rc = store_run_get(w, run->dag_id, run->run_id, 0, &now);
	if (rc < 0) {
		*err = xasprintf("no run %s of DAG %s", run->run_id, run->dag_id);
		return rc;
	}
	if (strcmp(now.state, "running")) {
		rc = -EALREADY;
		*err = xasprintf("run %s of %s is not running (%s)", run->run_id, run->dag_id, now.state);
	} else if ((rc = e ? engine_kill_try(e, now.pk, task_id, map_index, why) : -ENOENT) == -ENOENT) {
		rc = -EBUSY;
		*err = xasprintf("run %s of %s is running outside the daemon; stop that process instead", run->run_id,
				 run->dag_id);
	} else if (rc == -EINVAL) {
		*err = xasprintf("DAG %s has no task '%s'", run->dag_id, task_id);
	} else if (rc == -ESRCH) {
		*err = xasprintf("task %s of run %s is not running", task_id, run->run_id);
	}
	run_row_free(&now);
	return rc;
}

/* Every task of d, for a change to a whole run. */
static struct ops_selection whole_run(const struct dag *d, const char **ids)
{
	for (size_t i = 0; i < d->ntasks; i++)
		ids[i] = d->tasks[i].id;
	return (struct ops_selection){.task_ids = ids, .ntasks = d->ntasks, .map_index = -2};
}

static int run_to_failed(struct store *w, struct engine *e, const struct run_row *now, const char *why, char **err)
{
	if (!strcmp(now->state, "running") || !strcmp(now->state, "queued"))
		return ops_cancel_run(w, e, now, why, err);
	if (!strcmp(now->state, "failed"))
		return 0;
	struct run_row r = {0};
	run_row_copy(&r, now);
	free(r.state);
	r.state = xstrdup("failed");
	int rc = store_run_update(w, &r);
	if (rc < 0)
		*err = xstrdup("cannot record the run's new state");
	run_row_free(&r);
	return rc;
}

int ops_set_run_state(struct store *w, struct engine *e, const struct dag *d, const struct run_row *run,
		      const char *state, const char *why, char **err)
{
	struct run_row now = {0};
	int rc = store_run_get(w, run->dag_id, run->run_id, 0, &now);
	if (rc < 0) {
		*err = xasprintf("no run %s of DAG %s", run->run_id, run->dag_id);
		return rc;
	}
	if (!strcmp(state, "queued")) {
		/* Airflow only sets the run's state: no task instance is touched. */
		if (!strcmp(now.state, "running")) {
			rc = -EBUSY;
			*err = xasprintf("run %s of %s is running; it can be queued again once it has ended", run->run_id,
					 run->dag_id);
		} else if (strcmp(now.state, "queued") && (rc = store_run_requeue(w, now.pk)) < 0) {
			*err = xstrdup("cannot queue the run");
		}
	} else if (!strcmp(state, "failed")) {
		rc = run_to_failed(w, e, &now, why, err);
	} else if (!strcmp(state, "success")) {
		const char **ids = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(*ids));
		struct ops_selection sel = whole_run(d, ids);
		struct ti_row *rows = NULL;
		int n = ops_mark(w, e, d, &now, &sel, "success", false, &rows, err);
		free_rows(rows, n > 0 ? n : 0);
		free(ids);
		rc = n < 0 ? n : 0;
	} else {
		rc = -EINVAL;
		*err = xasprintf("a run's state is success, failed or queued, not '%s'", state);
	}
	run_row_free(&now);
	return rc;
}

int ops_set_note(struct store *w, struct engine *e, const struct run_row *run, const char *task_id, int map_index,
		 const char *note, char **err)
{
	int rc;
	if (!task_id) {
		if ((rc = store_run_set_note(w, run->pk, note)) == 0 && e)
			engine_set_run_note(e, run->pk, note);
	} else {
		struct ti_row ti;
		if ((rc = store_ti_get(w, run->pk, task_id, map_index, &ti)) == 0) {
			rc = store_ti_set_note(w, ti.pk, note);
			ti_row_free(&ti);
		}
	}
	if (rc == -ENOENT)
		*err = task_id ? xasprintf("no task instance %s (map index %d) in run %s", task_id, map_index, run->run_id)
			       : xasprintf("no run %s of DAG %s", run->run_id, run->dag_id);
	else if (rc < 0)
		*err = xstrdup("cannot write the note");
	return rc;
}

int ops_delete_dag(struct store *w, const char *home, const char *dag_id, char **err)
{
	struct run_row *runs = NULL;
	int rc = store_begin(w);
	if (rc < 0) {
		*err = xstrdup("cannot start a database transaction");
		return rc;
	}
	int n = store_run_list(w, dag_id, &runs);
	for (int i = 0; i < n && rc == 0; i++)
		if (!strcmp(runs[i].state, "running") && (rc = -EBUSY))
			*err = xasprintf("DAG %s has a running run (%s): stop it or let it end first", dag_id, runs[i].run_id);
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	if (rc == 0 && (rc = store_dag_delete(w, dag_id)) == -ENOENT)
		*err = xasprintf("DAG with dag_id: '%s' not found", dag_id);
	else if (rc < 0 && !*err)
		*err = xstrdup("cannot delete the DAG");
	if (rc == 0 && (rc = store_commit(w)) < 0)
		*err = xstrdup("cannot commit the deletion");
	if (rc < 0) {
		store_rollback(w);
		return rc;
	}
	char *logs = path_under(home, "logs", NULL), *dir = path_under(home, "logs", dag_id, NULL);
	if (dir && remove_tree(logs, dir) == -EPERM)
		log_warnx("DAG %s: its log folder is not inside %s/logs; left it alone", dag_id, home);
	free(logs);
	free(dir);
	return 0;
}
