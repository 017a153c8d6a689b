/* Loading a run's instances and re-attaching to its tries (recovery). */
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

/* Recovery helpers ------------------------------------------------------------------------- */

static void add_instance(struct etask *et, struct eti *ti)
{
	et->inst = xrealloc(et->inst, (et->ninst + 1) * sizeof(struct eti *));
	et->inst[et->ninst++] = ti;
}

static int cmp_map_index(const void *a, const void *b)
{
	const struct eti *x = *(struct eti *const *)a, *y = *(struct eti *const *)b;
	return (x->row.map_index > y->row.map_index) - (x->row.map_index < y->row.map_index);
}

static int load_output(void *arg, const char *key, const char *value)
{
	struct eti *ti = arg;
	ti->outputs = xrealloc(ti->outputs, (ti->noutputs + 1) * sizeof(struct kv));
	ti->outputs[ti->noutputs].key = xstrdup(key);
	ti->outputs[ti->noutputs].value = xstrdup(value);
	ti->noutputs++;
	return 0;
}

/* Builds the instances of r from its stored rows (inserting rows for tasks that have none).
 * Returns 0 or a negative error; runs inside a transaction. */
static int load_instances(struct engine *e, struct erun *r)
{
	struct dag *d = r->dag;
	struct ti_row *rows = NULL;
	int n = store_ti_list(e->st, r->row.pk, &rows);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int idx = dag_task_index(d, rows[i].task_id);
		if (idx < 0) {
			/* Its task is not in the DAG the run resumes with (the run's own version could
			 * not be loaded, so it runs the current one): as Airflow does, the instance
			 * becomes removed and takes no further part in the run. */
			int was = ti_state_parse(rows[i].state);
			if (was != TI_REMOVED && ti_transition(&rows[i], was < 0 ? TI_NONE : (enum ti_state)was, TI_REMOVED)) {
				log_warnx("run %s of %s: task %s is no longer in the DAG; its instance is removed",
					  rows[i].run_id, rows[i].dag_id, rows[i].task_id);
				store_ti_set_state(e->st, rows[i].pk, "removed", now_usec());
			}
			ti_row_free(&rows[i]);
			continue;
		}
		struct eti *ti = xcalloc(1, sizeof(*ti));
		ti->run = r;
		ti->task = idx;
		ti->heap_idx = -1;
		ti->row = rows[i];
		int stt = ti_state_parse(ti->row.state);
		ti->state = stt < 0 ? TI_NONE : (enum ti_state)stt;
		free(ti->row.state);
		ti->row.state = NULL;
		add_instance(&r->tasks[idx], ti);
	}
	free(rows);
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		if (et->ninst == 0) {
			struct eti *ti = eng_new_eti(r, (int)i, -1);
			int rc = store_ti_insert(e->st, eng_sync_row(ti));
			if (rc < 0) {
				eng_free_eti(ti);
				return rc;
			}
			add_instance(et, ti);
		}
		qsort(et->inst, et->ninst, sizeof(struct eti *), cmp_map_index);
		et->expanded = !d->tasks[i].mapped || et->inst[0]->row.map_index >= 0 ||
			       ti_state_finished(et->inst[0]->state);
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_SUCCESS)
				store_output_each(e->st, et->inst[k]->row.pk, load_output, et->inst[k]);
	}
	return 0;
}

/* Mapped items are not stored: re-render them for instances that still have to run. */
static void restore_items(struct erun *r, int task)
{
	struct task *t = &r->dag->tasks[task];
	struct etask *et = &r->tasks[task];
	char **items = t->over_items, **owned = NULL;
	size_t n = t->n_over;
	/* Nothing to do for unmapped tasks, maps not expanded yet, or maps that ended unexpanded. */
	if (!t->mapped || !et->expanded || et->inst[0]->row.map_index < 0)
		return;
	if (t->over_template) {
		char *s = NULL, *err = NULL;
		if (tmpl_render(t->over_template, eng_ti_lookup, et->inst[0], &s, &err) < 0) {
			free(err);
			return;
		}
		owned = items = eng_split_items(s, &n);
		free(s);
	}
	for (size_t k = 0; k < et->ninst; k++) {
		int mi = et->inst[k]->row.map_index;
		if (mi >= 0 && (size_t)mi < n && !et->inst[k]->item)
			et->inst[k]->item = xstrdup(items[mi]);
	}
	if (owned) {
		for (size_t i = 0; i < n; i++)
			free(owned[i]);
		free(owned);
	}
}

void eng_count_upstream(struct erun *r)
{
	struct dag *d = r->dag;
	r->unfinished = 0;
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		memset(&et->up, 0, sizeof(et->up));
		for (size_t j = 0; j < d->tasks[i].n_up; j++)
			et->up.total += (int)r->tasks[d->tasks[i].upstream[j]].ninst;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		for (size_t k = 0; k < et->ninst; k++) {
			enum ti_state st = et->inst[k]->state;
			if (!ti_state_finished(st))
				r->unfinished++;
			for (size_t j = 0; j < d->tasks[i].n_down && ti_state_finished(st); j++) {
				struct up_counts *c = &r->tasks[d->tasks[i].downstream[j]].up;
				switch (st) {
				case TI_SUCCESS: c->success++; break;
				case TI_FAILED: c->failed++; break;
				case TI_SKIPPED: c->skipped++; break;
				case TI_UPSTREAM_FAILED: c->upstream_failed++; break;
				default: c->removed++; break;
				}
			}
		}
		/* A task is decided once every instance of it has left none (a cleared task has not). */
		et->decided = et->ninst > 0;
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				et->decided = false;
	}
}

static void reattach_ti(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = eng_get_executor(e, t->executor, &err);
	char *log = eng_try_file(ti, "log"), *status = eng_try_file(ti, "status"), *pidf = eng_try_file(ti, "pid");
	char *outp = eng_try_file(ti, "out"), *maskf = eng_try_file(ti, "mask");
	struct stat sb;
	bool started = ti->state == TI_RUNNING || stat(status, &sb) == 0 || stat(pidf, &sb) == 0;

	eng_take_slots(e, ti, +1);
	if (!x) {
		eng_append_log(ti, "cannot re-attach: %s", err);
		free(err);
		eng_release_slots(e, ti);
		eng_fail_try(ti, true);
		goto out;
	}
	if (!started) {
		/* queued, and its supervisor never got going: start it now (same try). */
		pv_push(&e->to_spawn, ti);
		goto out;
	}
	x->pending--;
	struct exec_spec spec = {
		.log_path = log, .status_path = status, .pid_path = pidf, .output_path = outp,
		/* A backend that copies the log itself (ssh) keeps the secrets file until the end. */
		.mask_path = access(maskf, F_OK) == 0 ? maskf : NULL,
		.max_log_size = e->max_log_size, .sync_status = e->sync_status, .timeout = t->execution_timeout, .kill_grace = e->kill_grace,
		.dag_id = ti->row.dag_id, .run_id = ti->row.run_id, .task_id = ti->row.task_id,
		.map_index = ti->row.map_index, .try_number = ti->row.try_number,
		.options = t->exec_options,
	};
	if (x->ex->ops->reattach(x->ex, (uint64_t)(uintptr_t)ti, &spec, ti->row.external_id) < 0) {
		eng_append_log(ti, "cannot re-attach to the running try; counting it as lost");
		eng_release_slots(e, ti);
		eng_fail_try(ti, true);
		goto out;
	}
	ti->ex = x->ex;
	ti->spawned = true;
	if (ti->state != TI_RUNNING)
		eng_set_state(ti, TI_RUNNING);
out:
	free(log);
	free(status);
	free(pidf);
	free(outp);
	free(maskf);
}

/* Puts every instance back where its stored state says it is. */
static void resume_instances(struct engine *e, struct erun *r)
{
	usec_t now = now_usec();
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		restore_items(r, (int)i);
		for (size_t k = 0; k < et->ninst; k++) {
			struct eti *ti = et->inst[k];
			usec_t delay;
			switch (ti->state) {
			case TI_SCHEDULED:
				ti->seq = ++e->seq;
				eng_heap_push(e, ti);
				break;
			case TI_QUEUED:
			case TI_RUNNING:
				reattach_ti(e, ti);
				break;
			case TI_UP_FOR_RETRY:
			case TI_UP_FOR_RESCHEDULE:
				delay = ti->row.next_retry_at == USEC_NONE ? 0 : ti->row.next_retry_at - now;
				ti->timer = evloop_timer_in(e->loop, delay > 0 ? delay : 0, eng_retry_timer, ti);
				break;
			default:
				break;
			}
		}
		if (!et->decided)
			eng_enqueue_eval(e, r, (int)i);
	}
}

int engine_start_run(struct engine *e, struct dag *d, const struct run_row *row,
		     struct erun **out, char **err)
{
	/* A row written around runs_queue() (by hand, say) must not name files outside the home. */
	if (!valid_id(row->dag_id) || !valid_run_id(row->run_id)) {
		*err = xasprintf("its DAG id or run id is not a valid name; the run is left alone");
		return -EINVAL;
	}
	struct erun *r = xcalloc(1, sizeof(*r));
	int rc;

	r->e = e;
	r->dag = dag_ref(d);
	run_row_copy(&r->row, row);
	r->conf = cJSON_Parse(r->row.conf ? r->row.conf : "{}");
	if (!cJSON_IsObject(r->conf)) {
		cJSON_Delete(r->conf);
		r->conf = cJSON_CreateObject();
	}
	r->tasks = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(struct etask));
	if ((rc = store_begin(e->st)) < 0) {
		*err = xstrdup("cannot start a database transaction");
		goto fail;
	}
	if ((rc = load_instances(e, r)) < 0) {
		store_rollback(e->st);
		*err = xstrdup("cannot load or create the task instances");
		goto fail;
	}
	int rs = run_state_parse(r->row.state);
	r->state = rs < 0 ? RUN_QUEUED : (enum run_state)rs;
	if (r->state != RUN_RUNNING) {
		eng_set_run_state(r, RUN_RUNNING);
		r->row.start_date = now_usec();
		store_run_update(e->st, &r->row);
	}
	if ((rc = store_commit(e->st)) < 0) {
		*err = xstrdup("cannot commit the run's task instances");
		goto fail;
	}
	r->next = e->runs;
	e->runs = r;
	if (d->dagrun_timeout > 0) {
		usec_t left = r->row.start_date + d->dagrun_timeout - now_usec();
		r->timeout = evloop_timer_in(e->loop, left > 0 ? left : 0, eng_on_run_timeout, r);
	}
	eng_count_upstream(r);
	resume_instances(e, r);
	if (r->unfinished == 0 && !r->finished)
		eng_finish_run(r);
	eng_process_evals(e);
	evloop_wake(e->loop);
	if (out)
		*out = r;
	return 0;
fail:
	store_rollback(e->st); /* its rows, if a step before the commit failed */
	eng_free_run(r);
	return rc;
}
