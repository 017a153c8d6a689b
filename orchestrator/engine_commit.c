/* Commit batching: one transaction per loop iteration, then spawns. */
#include "orchestrator/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/events.h"
#include "base/json.h"
#include "base/log.h"
#include "orchestrator/cron.h"
#include "orchestrator/runs.h"
#include "orchestrator/template.h"
#include "orchestrator/tz.h"

/* Committing and the loop's idle hook ------------------------------------------------------------- */

static int write_outputs(struct engine *e, struct eti *ti)
{
	int rc = store_output_clear(e->st, ti->row.pk);
	usec_t now = now_usec();
	for (size_t i = 0; rc == 0 && i < ti->noutputs; i++)
		rc = store_output_put(e->st, ti->row.pk, ti->outputs[i].key, ti->outputs[i].value, now);
	return rc;
}

/* Writes the dirty rows and the queued try rows of one iteration, without committing. */
static int write_dirty(struct engine *e)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < e->dirty.n; i++) {
		struct eti *ti = e->dirty.v[i];
		if (ti->run->deleted)
			continue;
		rc = ti->needs_insert ? store_ti_insert(e->st, eng_sync_row(ti)) : store_ti_update(e->st, eng_sync_row(ti));
		if (rc == 0 && ti->outputs_dirty)
			rc = write_outputs(e, ti);
	}
	for (size_t i = 0; rc == 0 && i < e->dirty_runs.n; i++) {
		struct erun *r = e->dirty_runs.v[i];
		if (!r->deleted)
			rc = store_run_update(e->st, &r->row);
	}
	for (size_t i = 0; rc == 0 && i < e->tries.n; i++) {
		struct try_row *tr = e->tries.v[i];
		int t = store_try_put(e->st, tr);
		if (t == -EEXIST) /* a history row that is there already: nothing to keep it for */
			log_warnx("try %d of task instance %lld was recorded before", tr->try_number, (long long)tr->ti_pk);
		else
			rc = t;
	}
	return rc;
}

/* Writes every dirty row in one transaction. When the transaction cannot be written (a full
 * disk, an I/O error) nothing is forgotten: the rows stay dirty, the try rows stay queued, and
 * the next iteration (at the latest a second later) tries again; engine_commit_failing() says so
 * meanwhile. Returns 0 or a negative error. */
static int commit_dirty(struct engine *e)
{
	if (e->dirty.n == 0 && e->dirty_runs.n == 0 && e->tries.n == 0)
		return 0;
	int rc = store_begin(e->st);
	if (rc == 0)
		rc = write_dirty(e);
	if (rc == 0)
		rc = store_commit(e->st);
	if (rc < 0) {
		store_rollback(e->st);
		for (size_t i = 0; i < e->dirty.n; i++) {
			struct eti *ti = e->dirty.v[i];
			if (ti->needs_insert)
				ti->row.pk = 0; /* the insert was rolled back */
		}
		if (e->commit_failing_since == USEC_NONE) {
			e->commit_failing_since = now_usec();
			log_warnx("cannot write state changes to the database (%s): they are kept and written as soon as "
				  "it can take them", strerror(-rc));
		}
		return rc;
	}
	for (size_t i = 0; i < e->dirty.n; i++) {
		struct eti *ti = e->dirty.v[i];
		ti->dirty = false;
		ti->needs_insert = false;
		ti->outputs_dirty = false;
	}
	e->dirty.n = 0;
	for (size_t i = 0; i < e->dirty_runs.n; i++)
		((struct erun *)e->dirty_runs.v[i])->dirty = false;
	e->dirty_runs.n = 0;
	for (size_t i = 0; i < e->tries.n; i++) {
		try_row_free(e->tries.v[i]);
		free(e->tries.v[i]);
	}
	e->tries.n = 0;
	if (e->commit_failing_since != USEC_NONE) {
		log_info("state changes are written again (they waited %.1f s)",
			 (double)(now_usec() - e->commit_failing_since) / 1e6);
		e->commit_failing_since = USEC_NONE;
	}
	return 0;
}

/* A run deleted while its tries ran: its supervisors may have written into its log folder while
 * the deletion removed it, so it goes again now that they are done (unless a new run took the
 * same id meanwhile). */
static void forget_deleted(struct engine *e, struct erun *r)
{
	struct run_row again = {0};
	if (store_run_get(e->st, r->row.dag_id, r->row.run_id, 0, &again) == -ENOENT)
		runs_remove_logs(e->home, r->row.dag_id, r->row.run_id);
	run_row_free(&again);
}

static bool run_has_dirty_ti(const struct erun *r)
{
	for (size_t i = 0; i < r->dag->ntasks; i++)
		for (size_t k = 0; k < r->tasks[i].ninst; k++)
			if (r->tasks[i].inst[k]->dirty)
				return true;
	return false;
}

/* Unlinks and frees finished runs after their final state is committed. */
static void reap_runs(struct engine *e)
{
	struct erun **pp = &e->runs;
	while (*pp) {
		struct erun *r = *pp;
		if (!r->finished || r->dirty || run_has_dirty_ti(r)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (r->deleted)
			forget_deleted(e, r);
		else if (e->done_cb)
			e->done_cb(e->done_arg, r);
		eng_free_run(r);
	}
}

/* A second after a failed commit: the loop turns again, and the idle hook tries once more. */
static void on_commit_retry(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	e->commit_timer = NULL;
	(void)loop;
}

static void retry_later(struct engine *e)
{
	if (!e->commit_timer)
		e->commit_timer = evloop_timer_in(e->loop, USEC_PER_SEC, on_commit_retry, e);
}

/* How long the changes of a spawn (running, the pid or external id) may wait for the next
 * commit. Only `queued` must be durable before a try starts (a restarted daemon re-attaches a
 * queued try through its pid and status files); the rest rides along with the iteration that
 * commits next, which for a short try is the one of its end: one transaction per try, not two. */
#define LAZY_COMMIT (20 * 1000)

static void on_lazy_commit(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	e->lazy_timer = NULL; /* the loop turns: the idle hook commits */
	(void)loop;
}

void eng_on_idle(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	eng_dispatch(e);
	/* Queued is durable before anything starts: without the commit, nothing is spawned. */
	if (commit_dirty(e) < 0) {
		retry_later(e);
		return;
	}
	bool spawned = e->to_spawn.n > 0;
	for (size_t i = 0; i < e->to_spawn.n; i++)
		eng_start_try(e, e->to_spawn.v[i]);
	e->to_spawn.n = 0;
	eng_process_evals(e);
	/* running + pids (and instant results such as path pokes): soon, with the next commit */
	if (spawned && (e->dirty.n || e->dirty_runs.n || e->tries.n)) {
		if (!e->lazy_timer)
			e->lazy_timer = evloop_timer_in(e->loop, LAZY_COMMIT, on_lazy_commit, e);
	} else if (commit_dirty(e) < 0) {
		retry_later(e);
	}
	reap_runs(e);
	(void)loop;
}
