/* Compact routes for the web UI's views (sluice's additions; web/openapi.yaml):
 *   GET /dags/{dag_id}/grid?limit=N&before=RUN_ID  runs x tasks of one DAG, one page of runs
 *   GET /dagSummaries?dag_ids=a,b&recent=N          the DAG list's last runs, counts, next run
 * Each is answered from indexed queries: a page of runs from the (dag_id, logical_date) index
 * and the task instances of those runs only, never a scan of all runs. */
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "base/json.h"
#include "orchestrator/cron.h"
#include "orchestrator/dag.h"

#define GRID_DEFAULT 25
#define GRID_MAX 1000
#define RECENT_DEFAULT 5
#define RECENT_MAX 25

/* Which state a mapped task's row shows for its instances: the one a user must see first. */
static int state_rank(const char *s)
{
	static const char *const order[] = {"failed", "upstream_failed", "up_for_retry", "up_for_reschedule",
					    "restarting", "running", "deferred", "queued", "scheduled", "none",
					    "removed", "skipped", "success", NULL};
	for (int i = 0; order[i]; i++)
		if (!strcmp(s, order[i]))
			return i;
	return 9;
}

struct task_ix {
	const char *id;
	int ix;
};

static int cmp_ix(const void *a, const void *b)
{
	return strcmp(((const struct task_ix *)a)->id, ((const struct task_ix *)b)->id);
}

struct grid_run {
	const struct task_ix *index;
	size_t ntasks;
	const char **state;        /* per task (NULL: no instance) */
	int *tries;
	cJSON *mapped;             /* {task_id: {state: count}} */
};

static void add_ti(void *arg, const char *task_id, int map_index, const char *state_text, int try_number)
{
	struct grid_run *g = arg;
	struct task_ix key = {task_id, 0};
	const struct task_ix *t = bsearch(&key, g->index, g->ntasks, sizeof(*t), cmp_ix);
	int st = ti_state_parse(state_text);
	if (!t || st < 0)
		return; /* a task of an older version of the DAG */
	const char *state = ti_state_name((enum ti_state)st); /* static: outlives the row */
	const char *shown = g->state[t->ix];
	if (!shown || state_rank(state) < state_rank(shown)) {
		g->state[t->ix] = state;
		g->tries[t->ix] = try_number;
	}
	if (map_index >= 0) {
		cJSON *counts = cJSON_GetObjectItemCaseSensitive(g->mapped, task_id);
		if (!counts)
			counts = cJSON_AddObjectToObject(g->mapped, task_id);
		cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, state);
		if (n)
			cJSON_SetNumberValue(n, n->valuedouble + 1);
		else
			cJSON_AddNumberToObject(counts, state, 1);
	}
}

/* Appends a cJSON tree's text and deletes the tree. */
static void put_tree(struct strbuf *sb, cJSON *j)
{
	char *text = cJSON_PrintUnformatted(j);
	sb_puts(sb, text ? text : "null");
	free(text);
	cJSON_Delete(j);
}

/* One run of the grid: its fields and the cell of each task, written as text (a grid of 1,000
 * runs of 500 tasks would otherwise be a tree of a million items). */
static void grid_run_write(struct strbuf *sb, struct req *r, const struct run_row *run, const struct task_ix *index,
			   size_t n)
{
	struct json_obj o;
	json_obj_begin(&o, sb);
	json_obj_str(&o, "dag_run_id", run->run_id);
	json_obj_str(&o, "state", run->state);
	json_obj_str(&o, "run_type", run->run_type);
	json_obj_time(&o, "logical_date", run->logical_date);
	json_obj_time(&o, "data_interval_start", run->data_interval_start);
	json_obj_time(&o, "data_interval_end", run->data_interval_end);
	json_obj_time(&o, "start_date", run->start_date);
	json_obj_time(&o, "end_date", run->end_date);
	json_obj_str(&o, "note", run->note);
	struct grid_run g = {index, n, xcalloc(n + 1, sizeof(char *)), xcalloc(n + 1, sizeof(int)), cJSON_CreateObject()};
	store_ti_brief_each(api_store(r), run->pk, add_ti, &g);
	json_obj_key(&o, "states");
	sb_putc(sb, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(sb, ',');
		if (g.state[i])
			json_put_string(sb, g.state[i]);
		else
			sb_puts(sb, "null");
	}
	sb_putc(sb, ']');
	json_obj_key(&o, "tries");
	sb_putc(sb, '[');
	for (size_t i = 0; i < n; i++)
		sb_printf(sb, i ? ",%d" : "%d", g.tries[i]);
	sb_putc(sb, ']');
	json_obj_key(&o, "mapped");
	put_tree(sb, g.mapped);
	free(g.state);
	free(g.tries);
	json_obj_end(&o);
}

/* The tasks in topological order (the grid's rows), and an index of them by id. */
static cJSON *grid_tasks(const struct dag *d, struct task_ix *index)
{
	cJSON *tasks = cJSON_CreateArray();
	for (size_t k = 0; k < d->ntasks; k++) {
		const struct task *t = &d->tasks[d->topo[k]];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task_id", t->id);
		cJSON_AddStringToObject(o, "operator", t->operator_name);
		cJSON_AddBoolToObject(o, "mapped", t->mapped);
		cJSON *down = cJSON_AddArrayToObject(o, "downstream_task_ids");
		for (size_t j = 0; j < t->n_down; j++)
			cJSON_AddItemToArray(down, cJSON_CreateString(d->tasks[t->downstream[j]].id));
		cJSON_AddStringToObject(o, "trigger_rule", trigger_rule_name(t->trigger_rule));
		cJSON_AddNullToObject(o, "group");
		cJSON_AddItemToArray(tasks, o);
		index[k] = (struct task_ix){t->id, (int)k};
	}
	qsort(index, d->ntasks, sizeof(*index), cmp_ix);
	return tasks;
}

/* ?limit= (1..GRID_MAX) and ?before= (a run id: the page of runs older than it). */
static bool grid_args(struct req *r, const char *dag_id, int *limit, usec_t *before)
{
	const char *l = api_query(r, "limit"), *b = api_query(r, "before");
	char *end;
	*limit = GRID_DEFAULT;
	*before = USEC_NONE;
	if (l) {
		long v = strtol(l, &end, 10);
		if (!*l || *end || v < 1 || v > GRID_MAX) {
			api_problem(r, 400, "Bad Request", "limit must be an integer from 1 to %d", GRID_MAX);
			return false;
		}
		*limit = (int)v;
	}
	if (b && *b) {
		struct run_row run = {0};
		if (store_run_get(api_store(r), dag_id, b, USEC_NONE, &run) < 0) {
			api_problem(r, 404, "DAGRun not found", "DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found",
				    dag_id, b);
			return false;
		}
		*before = run.logical_date;
		run_row_free(&run);
	}
	return true;
}

/* GET /dags/{dag_id}/grid */
static void grid(struct req *r)
{
	const char *dag_id = api_param(r, "dag_id");
	int limit;
	usec_t before;
	struct dag *d = api_dag_by_id(r, dag_id);
	if (!d)
		return;
	if (!grid_args(r, dag_id, &limit, &before)) {
		dag_unref(d);
		return;
	}
	struct task_ix *index = xcalloc(d->ntasks + 1, sizeof(*index));
	struct strbuf sb = {0};
	struct json_obj o;
	json_obj_begin(&o, &sb);
	json_obj_str(&o, "dag_id", dag_id);
	json_obj_key(&o, "tasks");
	put_tree(&sb, grid_tasks(d, index));
	struct run_row *runs = NULL;
	int n = store_run_page(api_store(r), dag_id, before, limit + 1, &runs);
	json_obj_key(&o, "runs");
	sb_putc(&sb, '[');
	for (int i = 0; i < n && i < limit; i++) {
		if (i)
			sb_putc(&sb, ',');
		grid_run_write(&sb, r, &runs[i], index, d->ntasks);
	}
	sb_putc(&sb, ']');
	json_obj_num(&o, "total_runs", store_run_count(api_store(r), dag_id));
	json_obj_str(&o, "older", n > limit ? runs[limit - 1].run_id : NULL);
	json_obj_end(&o);
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	free(index);
	dag_unref(d);
	api_reply_json(r, n < 0 ? 500 : 200, sb_steal(&sb));
}

/* The DAG list's summaries --------------------------------------------------------------------- */

static void add_active(void *arg, const char *dag_id, const char *state, int n)
{
	cJSON *dags = arg, *s = cJSON_GetObjectItemCaseSensitive(dags, dag_id);
	if (s)
		cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(s, state), n);
}

static cJSON *summary(struct req *r, const struct dag_row *d, int recent)
{
	cJSON *o = cJSON_CreateObject();
	struct run_row *runs = NULL;
	int n = store_run_page(api_store(r), d->dag_id, USEC_NONE, recent, &runs);
	cJSON *arr = cJSON_AddArrayToObject(o, "recent");
	for (int i = 0; i < n; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "dag_run_id", runs[i].run_id);
		cJSON_AddStringToObject(x, "state", runs[i].state);
		cJSON_AddStringToObject(x, "run_type", runs[i].run_type);
		json_add_time(x, "logical_date", runs[i].logical_date);
		json_add_time(x, "start_date", runs[i].start_date);
		json_add_time(x, "end_date", runs[i].end_date);
		cJSON_AddItemToArray(arr, x);
		run_row_free(&runs[i]);
	}
	free(runs);
	cJSON_AddNumberToObject(o, "running", 0);
	cJSON_AddNumberToObject(o, "queued", 0);
	char *words = cron_describe(d->schedule);
	if (d->schedule && d->timezone && strcmp(d->timezone, "UTC")) {
		char *w = xasprintf("%s, %s", words, d->timezone);
		free(words);
		words = w;
	}
	cJSON_AddStringToObject(o, "timetable_description", words);
	free(words);
	json_add_time(o, "next_dagrun", d->next_interval_start);
	json_add_time(o, "next_dagrun_create_after", d->next_interval_end);
	return o;
}

/* Whether dag_id is in the comma-separated list (NULL: every DAG is). */
static bool listed(const char *list, const char *dag_id)
{
	if (!list)
		return true;
	size_t n = strlen(dag_id);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, dag_id, n))
			return true;
		p += len + (e ? 1 : 0);
	}
	return false;
}

/* GET /dagSummaries */
static void dag_summaries(struct req *r)
{
	const char *rs = api_query(r, "recent");
	char *end, *ids = api_query_list(r, "dag_ids");
	long recent = rs ? strtol(rs, &end, 10) : RECENT_DEFAULT;
	if (rs && (!*rs || *end || recent < 0 || recent > RECENT_MAX)) {
		api_problem(r, 400, "Bad Request", "recent must be an integer from 0 to %d", RECENT_MAX);
		free(ids);
		return;
	}
	struct dag_row *rows = NULL;
	int n = store_dag_rows(api_store(r), false, &rows);
	cJSON *o = cJSON_CreateObject(), *dags = cJSON_AddObjectToObject(o, "dags");
	for (int i = 0; i < n; i++) {
		if (listed(ids, rows[i].dag_id))
			cJSON_AddItemToObject(dags, rows[i].dag_id, summary(r, &rows[i], (int)recent));
		dag_row_free(&rows[i]);
	}
	free(rows);
	free(ids);
	store_run_active_counts(api_store(r), add_active, dags);
	api_reply(r, n < 0 ? 500 : 200, o);
}

const struct route api_grid_routes[] = {
	{"GET", "/dags/{dag_id}/grid", ROLE_VIEWER, grid, NULL},
	{"GET", "/dagSummaries", ROLE_VIEWER, dag_summaries, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
