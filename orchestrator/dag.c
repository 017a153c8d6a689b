#include "orchestrator/dag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/cron.h"
#include "executors/executor.h"

static const char *const trigger_rule_names[TR__COUNT] = {
	[TR_ALL_SUCCESS] = "all_success",
	[TR_ALL_FAILED] = "all_failed",
	[TR_ALL_DONE] = "all_done",
	[TR_ALL_SKIPPED] = "all_skipped",
	[TR_ONE_SUCCESS] = "one_success",
	[TR_ONE_FAILED] = "one_failed",
	[TR_ONE_DONE] = "one_done",
	[TR_NONE_FAILED] = "none_failed",
	[TR_NONE_FAILED_MIN_ONE_SUCCESS] = "none_failed_min_one_success",
	[TR_NONE_SKIPPED] = "none_skipped",
	[TR_ALWAYS] = "always",
};

int trigger_rule_parse(const char *name)
{
	for (int i = 0; i < TR__COUNT; i++)
		if (!strcmp(name, trigger_rule_names[i]))
			return i;
	return -1;
}

const char *trigger_rule_name(enum trigger_rule tr)
{
	return tr < TR__COUNT ? trigger_rule_names[tr] : "?";
}

static const char *const ti_state_names[TI__COUNT] = {
	[TI_NONE] = "none",
	[TI_SCHEDULED] = "scheduled",
	[TI_QUEUED] = "queued",
	[TI_RUNNING] = "running",
	[TI_SUCCESS] = "success",
	[TI_FAILED] = "failed",
	[TI_UP_FOR_RETRY] = "up_for_retry",
	[TI_UP_FOR_RESCHEDULE] = "up_for_reschedule",
	[TI_UPSTREAM_FAILED] = "upstream_failed",
	[TI_SKIPPED] = "skipped",
	[TI_REMOVED] = "removed",
};

const char *ti_state_name(enum ti_state s)
{
	return s < TI__COUNT ? ti_state_names[s] : "none";
}

int ti_state_parse(const char *name)
{
	if (!name || !strcmp(name, "null"))
		return TI_NONE;
	for (int i = 0; i < TI__COUNT; i++)
		if (!strcmp(name, ti_state_names[i]))
			return i;
	return -1;
}

bool ti_state_finished(enum ti_state s)
{
	return s == TI_SUCCESS || s == TI_FAILED || s == TI_SKIPPED || s == TI_UPSTREAM_FAILED ||
	       s == TI_REMOVED;
}

enum tr_decision trigger_rule_eval(enum trigger_rule tr, const struct up_counts *c)
{
	int fails = c->failed + c->upstream_failed;
	int done = c->success + fails + c->skipped + c->removed;
	bool all_done = done >= c->total;

	if (c->total == 0 || tr == TR_ALWAYS)
		return TR_RUN;
	switch (tr) {
	case TR_ALL_SUCCESS:
		if (fails)
			return TR_UPSTREAM_FAILED;
		if (c->skipped)
			return TR_SKIP;
		return all_done ? TR_RUN : TR_WAIT;
	case TR_ALL_FAILED:
		if (c->success || c->skipped)
			return TR_SKIP;
		return all_done ? TR_RUN : TR_WAIT;
	case TR_ALL_DONE:
		return all_done ? TR_RUN : TR_WAIT;
	case TR_ALL_SKIPPED:
		if (c->success || fails)
			return TR_SKIP;
		return all_done ? TR_RUN : TR_WAIT;
	case TR_ONE_SUCCESS:
		if (c->success)
			return TR_RUN;
		if (!all_done)
			return TR_WAIT;
		return c->skipped == done ? TR_SKIP : TR_UPSTREAM_FAILED;
	case TR_ONE_FAILED:
		if (fails)
			return TR_RUN;
		return all_done ? TR_SKIP : TR_WAIT;
	case TR_ONE_DONE:
		if (c->success || c->failed)
			return TR_RUN;
		return all_done ? TR_SKIP : TR_WAIT;
	case TR_NONE_FAILED:
		if (fails)
			return TR_UPSTREAM_FAILED;
		return all_done ? TR_RUN : TR_WAIT;
	case TR_NONE_FAILED_MIN_ONE_SUCCESS:
		if (fails)
			return TR_UPSTREAM_FAILED;
		if (!all_done)
			return TR_WAIT;
		return c->success ? TR_RUN : TR_SKIP;
	case TR_NONE_SKIPPED:
		if (c->skipped)
			return TR_SKIP;
		return all_done ? TR_RUN : TR_WAIT;
	case TR_ALWAYS:
	case TR__COUNT:
		break;
	}
	return TR_RUN;
}

int dag_task_index(const struct dag *d, const char *id)
{
	size_t i;
	if (d->task_ix.count == d->ntasks && d->ntasks) /* finished: the index holds every task */
		return strindex_get(&d->task_ix, id, &i) ? (int)i : -1;
	for (i = 0; i < d->ntasks; i++)
		if (!strcmp(d->tasks[i].id, id))
			return (int)i;
	return -1;
}

struct dag *dag_ref(struct dag *d)
{
	if (d)
		d->refcount++;
	return d;
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_strv_null(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void task_free(struct task *t)
{
	free(t->id);
	free(t->operator_name);
	free(t->cmd_shell);
	free_strv_null(t->cmd_argv);
	free(t->pool);
	free(t->executor);
	cJSON_Delete(t->exec_options);
	for (size_t i = 0; i < t->n_env; i++) {
		free(t->env[i].key);
		free(t->env[i].value);
	}
	free(t->env);
	free(t->no_retry_exit_codes);
	free(t->description);
	free(t->doc_md);
	free(t->run_as);
	free(t->cwd);
	free_strv(t->over_items, t->n_over);
	free(t->over_template);
	free(t->sensor_path);
	free(t->upstream);
	free(t->downstream);
}

static void callback_free(struct callback *c)
{
	free(c->cmd);
	free(c->webhook);
}

void dag_unref(struct dag *d)
{
	if (!d || --d->refcount > 0)
		return;
	for (size_t i = 0; i < d->ntasks; i++)
		task_free(&d->tasks[i]);
	free(d->tasks);
	free(d->topo);
	strindex_free(&d->task_ix);
	free(d->dag_id);
	free(d->fileloc);
	free(d->description);
	free(d->doc_md);
	cJSON_Delete(d->param_specs);
	free(d->schedule);
	free(d->timezone);
	free_strv(d->tags, d->n_tags);
	free(d->owner);
	cJSON_Delete(d->params);
	callback_free(&d->on_failure);
	callback_free(&d->on_success);
	callback_free(&d->on_retry);
	free(d);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Sorts and removes duplicates from an index list; returns the new length. */
static size_t uniq_ints(int *v, size_t n)
{
	size_t out = 0;
	qsort(v, n, sizeof(*v), cmp_int);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || v[out - 1] != v[i])
			v[out++] = v[i];
	return out;
}

static void build_downstream(struct dag *d)
{
	size_t *count = xcalloc(d->ntasks, sizeof(size_t));
	for (size_t i = 0; i < d->ntasks; i++) {
		struct task *t = &d->tasks[i];
		t->n_up = uniq_ints(t->upstream, t->n_up);
		for (size_t j = 0; j < t->n_up; j++)
			count[t->upstream[j]]++;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		free(d->tasks[i].downstream);
		d->tasks[i].downstream = xcalloc(count[i], sizeof(int));
		d->tasks[i].n_down = 0;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		struct task *t = &d->tasks[i];
		for (size_t j = 0; j < t->n_up; j++) {
			struct task *u = &d->tasks[t->upstream[j]];
			u->downstream[u->n_down++] = (int)i;
		}
	}
	free(count);
}

/* Depth-first search for a cycle. colour: 0 = new, 1 = on the stack, 2 = done. On finding a
 * back edge, writes "a -> b -> ... -> a" into err and returns the index where it starts. */
static int find_cycle(struct dag *d, char *err, size_t errlen)
{
	size_t n = d->ntasks;
	unsigned char *colour = xcalloc(n, 1);
	int *parent = xmalloc(n * sizeof(int));
	size_t *next = xcalloc(n, sizeof(size_t));
	int *stack = xmalloc(n * sizeof(int));
	int found = -1;

	for (size_t root = 0; root < n && found < 0; root++) {
		if (colour[root])
			continue;
		size_t sp = 0;
		stack[sp++] = (int)root;
		colour[root] = 1;
		parent[root] = -1;
		while (sp > 0 && found < 0) {
			int v = stack[sp - 1];
			struct task *t = &d->tasks[v];
			if (next[v] == t->n_down) {
				colour[v] = 2;
				sp--;
				continue;
			}
			int w = t->downstream[next[v]++];
			if (colour[w] == 0) {
				colour[w] = 1;
				parent[w] = v;
				stack[sp++] = w;
			} else if (colour[w] == 1) {
				/* Cycle w -> ... -> v -> w: walk back from v to w. */
				size_t len = 1;
				for (int x = v; x != w; x = parent[x])
					len++;
				int *path = xmalloc(len * sizeof(int));
				size_t k = len;
				for (int x = v;; x = parent[x]) {
					path[--k] = x;
					if (x == w)
						break;
				}
				struct strbuf sb = {0};
				sb_puts(&sb, "cycle in task dependencies: ");
				for (size_t i = 0; i < len; i++)
					sb_printf(&sb, "%s -> ", d->tasks[path[i]].id);
				sb_puts(&sb, d->tasks[w].id);
				snprintf(err, errlen, "%s", sb_str(&sb));
				sb_free(&sb);
				free(path);
				found = w;
			}
		}
	}
	free(colour);
	free(parent);
	free(next);
	free(stack);
	return found;
}

/* Kahn's algorithm; the graph is known to be acyclic. Ties keep declaration order. */
static void topo_sort(struct dag *d)
{
	size_t n = d->ntasks, head = 0, tail = 0;
	size_t *indeg = xcalloc(n, sizeof(size_t));
	free(d->topo);
	d->topo = xmalloc((n ? n : 1) * sizeof(int));
	for (size_t i = 0; i < n; i++)
		if ((indeg[i] = d->tasks[i].n_up) == 0)
			d->topo[tail++] = (int)i;
	while (head < tail) {
		struct task *t = &d->tasks[d->topo[head++]];
		for (size_t j = 0; j < t->n_down; j++)
			if (--indeg[t->downstream[j]] == 0)
				d->topo[tail++] = t->downstream[j];
	}
	free(indeg);
}

/* Airflow's "downstream" weight rule: own weight plus the weights of all transitive downstream
 * tasks, each counted once. Bitsets of descendants, built in reverse topological order. */
static void compute_weights(struct dag *d)
{
	size_t n = d->ntasks, words = (n + 63) / 64;
	if (n > 20000) {
		/* Too large for n^2 bits: fall back to own weights (documented in docs/dsl.md). */
		for (size_t i = 0; i < n; i++)
			d->tasks[i].effective_weight = d->tasks[i].priority_weight;
		return;
	}
	uint64_t *desc = xcalloc(n * words > 0 ? n * words : 1, sizeof(uint64_t));
	for (size_t k = n; k-- > 0;) {
		int v = d->topo[k];
		uint64_t *dv = desc + (size_t)v * words;
		struct task *t = &d->tasks[v];
		for (size_t j = 0; j < t->n_down; j++) {
			int c = t->downstream[j];
			uint64_t *dc = desc + (size_t)c * words;
			dv[c / 64] |= 1ULL << (c % 64);
			for (size_t w = 0; w < words; w++)
				dv[w] |= dc[w];
		}
		long sum = t->priority_weight;
		for (size_t w = 0; w < words; w++) {
			uint64_t bits = dv[w];
			while (bits) {
				int b = __builtin_ctzll(bits);
				sum += d->tasks[w * 64 + (size_t)b].priority_weight;
				bits &= bits - 1;
			}
		}
		t->effective_weight = sum > INT32_MAX ? INT32_MAX : (int)sum;
	}
	free(desc);
}

static int check_task(const struct task *t, char *err, size_t errlen)
{
	if (!executor_find(t->executor)) {
		struct strbuf sb = {0};
		for (size_t i = 0; executor_backends[i]; i++)
			sb_printf(&sb, "%s%s", i ? ", " : "", executor_backends[i]->name);
		snprintf(err, errlen, "task '%s': unknown executor '%s' (known: %s)", t->id, t->executor,
			 sb_str(&sb));
		sb_free(&sb);
		return -1;
	}
	if (!valid_id(t->pool)) {
		snprintf(err, errlen, "task '%s': invalid pool name '%s'", t->id, t->pool);
		return -1;
	}
	if (t->kind == TASK_CMD && !t->cmd_shell && !t->cmd_argv) {
		snprintf(err, errlen, "task '%s' has no cmd", t->id);
		return -1;
	}
	if (t->kind == TASK_SENSOR && !t->cmd_shell && !t->cmd_argv && !t->sensor_path) {
		snprintf(err, errlen, "sensor '%s' needs a path or a cmd", t->id);
		return -1;
	}
	return 0;
}

int dag_finish(struct dag *d, char *err, size_t errlen, int *err_line)
{
	*err_line = d->line;
	if (d->schedule) {
		char cerr[256];
		struct cron *c = cron_parse(d->schedule, cerr, sizeof(cerr));
		if (!c) {
			snprintf(err, errlen, "dag '%s': %s", d->dag_id, cerr);
			return -1;
		}
		cron_free(c);
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		if (check_task(&d->tasks[i], err, errlen) < 0) {
			*err_line = d->tasks[i].line;
			return -1;
		}
	}
	build_downstream(d);
	int c = find_cycle(d, err, errlen);
	if (c >= 0) {
		*err_line = d->tasks[c].line;
		return -1;
	}
	topo_sort(d);
	compute_weights(d);
	/* Lookups by task id (every task-instance row read back for a run, the API's task routes)
	 * cost O(1) instead of a scan of the tasks: over a 100,000-task run that scan was quadratic. */
	strindex_clear(&d->task_ix);
	for (size_t i = 0; i < d->ntasks; i++)
		strindex_put(&d->task_ix, d->tasks[i].id, i);
	return 0;
}

bool task_retryable_exit(const struct task *t, int code)
{
	for (size_t i = 0; i < t->n_no_retry; i++)
		if (t->no_retry_exit_codes[i] == code)
			return false;
	return true;
}

usec_t task_retry_delay(const struct task *t, int try_number, double jitter01)
{
	usec_t cap = t->max_retry_delay > 0 ? t->max_retry_delay : DAG_DEFAULT_MAX_RETRY_DELAY;
	double delay = (double)t->retry_delay;

	if (t->retry_exponential_backoff) {
		int exp = try_number > 1 ? try_number - 1 : 0;
		if (exp > 62)
			exp = 62;
		delay = delay * (double)(1ULL << exp);
		delay += delay * 0.1 * jitter01;
	}
	if (delay > (double)cap)
		delay = (double)cap;
	return (usec_t)delay;
}
