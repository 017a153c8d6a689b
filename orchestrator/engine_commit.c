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

static void write_outputs(struct engine *e, struct eti *ti)
{
	store_output_clear(e->st, ti->row.pk);
	usec_t now = now_usec();
	for (size_t i = 0; i < ti->noutputs; i++)
		store_output_put(e->st, ti->row.pk, ti->outputs[i].key, ti->outputs[i].value, now);
	ti->outputs_dirty = false;
}

/* Writes every dirty row in one transaction. */
static void commit_dirty(struct engine *e)
{
	if (e->dirty.n == 0 && e->dirty_runs.n == 0 && e->tries.n == 0)
		return;
	if (store_begin(e->st) < 0) {
		log_warnx("cannot begin a transaction; state changes stay pending");
		return;
	}
	for (size_t i = 0; i < e->dirty.n; i++) {
		struct eti *ti = e->dirty.v[i];
		ti->dirty = false;
		if (ti->run->deleted)
			continue;
		if (ti->needs_insert) {
			if (store_ti_insert(e->st, eng_sync_row(ti)) == 0)
				ti->needs_insert = false;
		} else {
			store_ti_update(e->st, eng_sync_row(ti));
		}
		if (ti->outputs_dirty)
			write_outputs(e, ti);
	}
	e->dirty.n = 0;
	for (size_t i = 0; i < e->dirty_runs.n; i++) {
		struct erun *r = e->dirty_runs.v[i];
		r->dirty = false;
		if (!r->deleted)
			store_run_update(e->st, &r->row);
	}
	e->dirty_runs.n = 0;
	for (size_t i = 0; i < e->tries.n; i++) {
		struct try_row *tr = e->tries.v[i];
		if (store_try_put(e->st, tr) < 0)
			log_warnx("cannot record try %d of task instance %lld", tr->try_number, (long long)tr->ti_pk);
		try_row_free(tr);
		free(tr);
	}
	e->tries.n = 0;
	if (store_commit(e->st) < 0)
		log_warnx("commit failed; state changes were lost from the database");
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

/* Unlinks and frees finished runs after their final state is committed. */
static void reap_runs(struct engine *e)
{
	struct erun **pp = &e->runs;
	while (*pp) {
		struct erun *r = *pp;
		if (!r->finished || r->dirty) {
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

void eng_on_idle(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	eng_dispatch(e);
	commit_dirty(e); /* queued is durable before anything starts */
	for (size_t i = 0; i < e->to_spawn.n; i++)
		eng_start_try(e, e->to_spawn.v[i]);
	e->to_spawn.n = 0;
	eng_process_evals(e);
	commit_dirty(e); /* running + pids (and instant results such as path pokes) */
	reap_runs(e);
	(void)loop;
}
