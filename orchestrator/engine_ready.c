/* Readiness: trigger rules, map expansion, dispatch (scheduled -> queued). */
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

static void expand_mapped(struct erun *r, int task);

/* Trigger rules and state propagation --------------------------------------------------------- */

void eng_enqueue_eval(struct engine *e, struct erun *r, int task)
{
	if (e->nevalq == e->capevalq) {
		e->capevalq = e->capevalq ? e->capevalq * 2 : 64;
		e->evalq = xrealloc(e->evalq, e->capevalq * sizeof(*e->evalq));
	}
	e->evalq[e->nevalq++] = (struct eval_item){r, task};
}


static void evaluate(struct erun *r, int task)
{
	struct etask *et = &r->tasks[task];
	if (et->decided || r->cancelled)
		return;
	enum tr_decision dec = trigger_rule_eval(r->dag->tasks[task].trigger_rule, &et->up);
	switch (dec) {
	case TR_WAIT:
		return;
	case TR_RUN:
		et->decided = true;
		if (!et->expanded) {
			expand_mapped(r, task);
			return;
		}
		/* Every instance that has not run (all of them after a clear of a mapped task). */
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				eng_schedule_ti(et->inst[k]);
		return;
	case TR_SKIP:
	case TR_UPSTREAM_FAILED:
		et->decided = true;
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				eng_finish_ti(et->inst[k], dec == TR_SKIP ? TI_SKIPPED : TI_UPSTREAM_FAILED);
		return;
	}
}

/* Work queue instead of recursion, so a long chain of skips cannot overflow the stack. */
void eng_process_evals(struct engine *e)
{
	size_t i = 0;
	while (i < e->nevalq) {
		struct eval_item it = e->evalq[i++];
		evaluate(it.run, it.task);
	}
	e->nevalq = 0;
}

/* Moves ti to a finished state and tells its downstream tasks. */
void eng_finish_ti(struct eti *ti, enum ti_state st)
{
	struct erun *r = ti->run;
	struct task *t = ti_task(ti);
	if (ti->timer) {
		evloop_timer_cancel(r->e->loop, ti->timer);
		ti->timer = NULL;
	}
	if (ti->heap_idx >= 0)
		eng_heap_remove(r->e, ti);
	eng_set_state(ti, st);
	if (ti->row.end_date == USEC_NONE)
		ti->row.end_date = now_usec();
	r->unfinished--;
	for (size_t j = 0; j < t->n_down; j++) {
		struct etask *dt = &r->tasks[t->downstream[j]];
		switch (st) {
		case TI_SUCCESS: dt->up.success++; break;
		case TI_FAILED: dt->up.failed++; break;
		case TI_SKIPPED: dt->up.skipped++; break;
		case TI_UPSTREAM_FAILED: dt->up.upstream_failed++; break;
		default: dt->up.removed++; break;
		}
		eng_enqueue_eval(r->e, r, t->downstream[j]);
	}
	if (r->unfinished == 0)
		eng_finish_run(r);
}

void eng_schedule_ti(struct eti *ti)
{
	eng_set_state(ti, TI_SCHEDULED);
	ti->seq = ++ti->run->e->seq;
	eng_heap_push(ti->run->e, ti);
}

/* Map expansion -------------------------------------------------------------------------------- */

/* Splits a rendered `over` value: a JSON array, else one item per line, else comma-separated. */
char **eng_split_items(const char *s, size_t *n)
{
	char **items = NULL;
	*n = 0;
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s == '[') {
		cJSON *a = cJSON_Parse(s);
		if (cJSON_IsArray(a)) {
			int len = cJSON_GetArraySize(a);
			items = xcalloc((size_t)len + 1, sizeof(char *));
			for (int i = 0; i < len; i++) {
				struct strbuf sb = {0};
				eng_json_scalar(cJSON_GetArrayItem(a, i), &sb);
				items[(*n)++] = sb_steal(&sb);
			}
			cJSON_Delete(a);
			return items;
		}
		cJSON_Delete(a);
	}
	char sep = strchr(s, '\n') ? '\n' : ',';
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, sep);
		if (!end)
			end = p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if (b > a) {
			items = xrealloc(items, (*n + 2) * sizeof(char *));
			items[(*n)++] = xstrndup(a, (size_t)(b - a));
		}
		p = *end ? end + 1 : end;
	}
	return items;
}

static void expand_mapped(struct erun *r, int task)
{
	struct etask *et = &r->tasks[task];
	struct task *t = &r->dag->tasks[task];
	struct eti *first = et->inst[0];
	char **items = t->over_items;
	size_t n = t->n_over;
	char **rendered_items = NULL;

	et->expanded = true;
	if (t->over_template) {
		char *s = NULL, *err = NULL;
		if (tmpl_render(t->over_template, eng_ti_lookup, first, &s, &err) < 0) {
			first->row.try_number = 1;
			eng_append_log(first, "cannot expand mapped task: %s", err);
			free(first->message);
			first->message = err;
			eng_finish_ti(first, TI_FAILED);
			return;
		}
		rendered_items = items = eng_split_items(s, &n);
		free(s);
	}
	if (n == 0) {
		eng_finish_ti(first, TI_SKIPPED);
		goto out;
	}
	et->inst = xrealloc(et->inst, n * sizeof(struct eti *));
	et->ninst = n;
	first->row.map_index = 0;
	first->item = xstrdup(items[0]);
	for (size_t i = 1; i < n; i++) {
		struct eti *ti = eng_new_eti(r, task, (int)i);
		ti->item = xstrdup(items[i]);
		ti->needs_insert = true;
		et->inst[i] = ti;
		r->unfinished++;
	}
	for (size_t j = 0; j < t->n_down; j++)
		r->tasks[t->downstream[j]].up.total += (int)n - 1;
	for (size_t i = 0; i < n; i++)
		eng_schedule_ti(et->inst[i]);
out:
	if (rendered_items) {
		for (size_t i = 0; i < n; i++)
			free(rendered_items[i]);
		free(rendered_items);
	}
}

/* Dispatch: scheduled -> queued ----------------------------------------------------------------- */

enum start_check {
	START_OK,
	START_EXECUTOR_FULL,  /* the executor has no free slot: nothing else of it can start either */
	START_HELD,           /* a pool or the DAG's max_active_tasks holds this one back */
	START_FATAL,          /* the task can never start (*fatal_msg says why) */
};

/* Whether ti may take its slots now. A task whose pool or executor does not exist can never
 * start (START_FATAL with *fatal_msg set). */
static enum start_check can_start(struct engine *e, struct eti *ti, char **fatal_msg)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = eng_get_executor(e, t->executor, &err);
	if (!x) {
		*fatal_msg = xasprintf("executor '%s' is not available: %s", t->executor, err);
		free(err);
		return START_FATAL;
	}
	int free_slots = x->ex->ops->free_slots_for ? x->ex->ops->free_slots_for(x->ex, t->exec_options)
						     : x->ex->ops->free_slots(x->ex);
	if (free_slots - x->pending <= 0)
		return START_EXECUTOR_FULL;
	struct pool_entry *p = eng_get_pool(e, t->pool);
	if (!p) {
		*fatal_msg = xasprintf("pool '%s' does not exist (create it with `sluice pools set %s SLOTS`)",
				       t->pool, t->pool);
		return START_FATAL;
	}
	if (p->slots >= 0 && p->used + t->pool_slots > p->slots)
		return START_HELD;
	struct dag_entry *de = eng_get_dag_entry(e, ti->row.dag_id);
	if (de->active >= ti->run->dag->max_active_tasks)
		return START_HELD;
	return START_OK;
}

void eng_take_slots(struct engine *e, struct eti *ti, int sign)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = eng_get_executor(e, t->executor, &err);
	free(err);
	struct pool_entry *p = eng_get_pool(e, t->pool);
	if (p)
		p->used += sign * t->pool_slots;
	eng_get_dag_entry(e, ti->row.dag_id)->active += sign;
	if (x && sign > 0)
		x->pending++;
}

void eng_dispatch(struct engine *e)
{
	struct ptrvec held = {0};
	usec_t now = now_usec();
	while (e->heap.n > 0) {
		struct eti *ti = eng_heap_pop(e);
		char *fatal_msg = NULL;
		enum start_check chk = can_start(e, ti, &fatal_msg);
		if (chk == START_FATAL) {
			ti->row.try_number++;
			eng_append_log(ti, "%s", fatal_msg);
			free(ti->message);
			ti->message = fatal_msg;
			eng_finish_ti(ti, TI_FAILED);
			continue;
		}
		if (chk != START_OK) {
			pv_push(&held, ti);
			/* With a single executor and no slot left, nothing further can start: stop here
			 * instead of popping every ready instance on every loop iteration. */
			if (chk == START_EXECUTOR_FULL && e->nexecs == 1)
				break;
			continue;
		}
		eng_take_slots(e, ti, +1);
		bool repoke = ti_task(ti)->kind == TASK_SENSOR && ti->row.first_poke_at != USEC_NONE;
		if (!repoke) {
			ti->row.try_number++;
			ti->row.start_date = USEC_NONE;
			ti->row.end_date = USEC_NONE;
			ti->row.duration = -1;
			ti->row.exit_code = TI_NO_EXIT;
		}
		ti->row.queued_when = now;
		ti->row.next_retry_at = USEC_NONE;
		eng_set_state(ti, TI_QUEUED);
		pv_push(&e->to_spawn, ti);
	}
	for (size_t i = 0; i < held.n; i++)
		eng_heap_push(e, held.v[i]);
	free(held.v);
	eng_process_evals(e);
}
