/* GET /dags/{dag_id}/dagRuns[/{dag_run_id}], GET .../taskInstances[/{task_id}[/{map_index}]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "web/api.h"
#include "web/apijson.h"
#include "web/bodies.h"
#include "orchestrator/engine.h"
#include "orchestrator/ops.h"
#include "orchestrator/runs.h"
#include "orchestrator/scheduler.h"

bool api_find_run(struct req *r, struct run_row *run)
{
	const char *dag_id = api_param(r, "dag_id"), *run_id = api_param(r, "dag_run_id");
	if (store_run_get(api_store(r), dag_id, run_id, 0, run) == 0)
		return true;
	api_problem(r, 404, "DAGRun not found", "DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found", dag_id, run_id);
	return false;
}

#define MAX_STATES 16

/* Airflow's filters of a list: ?state= (repeatable) and *_gte / *_lte on dates. */
static bool state_wanted(struct req *r, const char *state)
{
	const char *want[MAX_STATES];
	int n = api_query_values(r, "state", want, MAX_STATES);
	for (int i = 0; i < n; i++)
		if (!strcmp(want[i], state))
			return true;
	return n == 0;
}

/* False when t falls outside ?<field>_gte= / ?<field>_lte= (unset times are outside any range). */
static bool date_wanted(struct req *r, const char *field, usec_t t)
{
	char key[64];
	usec_t v;
	snprintf(key, sizeof(key), "%s_gte", field);
	const char *gte = api_query(r, key);
	snprintf(key, sizeof(key), "%s_lte", field);
	const char *lte = api_query(r, key);
	if (gte && parse_iso8601(gte, &v) == 0 && (t == USEC_NONE || t < v))
		return false;
	if (lte && parse_iso8601(lte, &v) == 0 && (t == USEC_NONE || t > v))
		return false;
	return true;
}

static const char *const run_date_filters[] = {"execution_date_gte", "execution_date_lte", "start_date_gte",
					       "start_date_lte", "end_date_gte", "end_date_lte", "updated_at_gte",
					       "updated_at_lte", NULL};

struct run_page {
	struct strbuf *sb;
	int n;
};

static void page_row(const struct run_row *run, void *ctx)
{
	struct run_page *w = ctx;
	if (w->n++)
		sb_putc(w->sb, ',');
	api_dag_run_write(w->sb, run);
}

/* The common case of one DAG's runs in the store's order (newest first), filtered by state
 * only: one page read with LIMIT/OFFSET from the (dag_id, logical_date) index, so that a DAG with
 * 100,000 runs opens its latest ones at once. Returns false when the request is not that case. */
static bool list_fast(struct req *r, const char *dag_id, int limit, int offset)
{
	const char *order = api_query(r, "order_by");
	if (!strcmp(dag_id, "~") || (order && strcmp(order, "-execution_date") && strcmp(order, "-logical_date")))
		return false;
	for (int i = 0; run_date_filters[i]; i++)
		if (api_query(r, run_date_filters[i]))
			return false;
	const char *want[MAX_STATES];
	int nw = api_query_values(r, "state", want, MAX_STATES);
	struct strbuf states = {0};
	for (int i = 0; i < nw; i++)
		sb_printf(&states, ",%s%s", want[i], i == nw - 1 ? "," : "");
	/* Written as text, each row as the store reads it: the page is most of the request's cost. */
	struct strbuf sb = {0};
	sb_puts(&sb, "{\"dag_runs\":[");
	sb_reserve(&sb, (size_t)limit * 700);
	struct run_page w = {&sb, 0};
	int total = 0;
	int n = store_run_page_each(api_store(r), dag_id, nw ? sb_str(&states) : NULL, offset, limit, &total,
				    page_row, &w);
	sb_free(&states);
	if (n < 0) { /* a read that failed half way lists nothing */
		sb.len = 0;
		sb_puts(&sb, "{\"dag_runs\":[");
	}
	sb_printf(&sb, "],\"total_entries\":%d}", total);
	api_reply_json(r, n < 0 ? 500 : 200, sb_steal(&sb));
	return true;
}

static void list_runs(struct req *r)
{
	int limit, offset;
	struct run_row *runs = NULL;
	const char *dag_id = api_param(r, "dag_id");
	usec_t t;
	if (!api_page(r, &limit, &offset))
		return;
	for (int i = 0; run_date_filters[i]; i++) {
		const char *v = api_query(r, run_date_filters[i]);
		if (v && parse_iso8601(v, &t) < 0) {
			api_problem(r, 400, "Bad Request", "%s must be an ISO 8601 date-time, not '%s'", run_date_filters[i], v);
			return;
		}
	}
	if (list_fast(r, dag_id, limit, offset))
		return;
	/* "~" means every DAG, as in Airflow. */
	int n = store_run_list(api_store(r), strcmp(dag_id, "~") ? dag_id : NULL, &runs);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		struct run_row *x = &runs[i];
		if (state_wanted(r, x->state) && date_wanted(r, "execution_date", x->logical_date) &&
		    date_wanted(r, "start_date", x->start_date) && date_wanted(r, "end_date", x->end_date) &&
		    date_wanted(r, "updated_at", x->updated_at))
			cJSON_AddItemToArray(all, api_dag_run(x));
		run_row_free(x);
	}
	free(runs);
	api_reply_page(r, "dag_runs", all, limit, offset);
}

static void get_run(struct req *r)
{
	struct run_row run = {0};
	if (!api_find_run(r, &run))
		return;
	api_reply(r, 200, api_dag_run(&run));
	run_row_free(&run);
}

static void get_ti(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	const char *task = api_param(r, "task_id"), *mi = api_param(r, "map_index");
	char *end = NULL;
	long map_index = mi ? strtol(mi, &end, 10) : -1;
	if (mi && (*end || !*mi)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer");
		return;
	}
	if (!api_find_run(r, &run))
		return;
	if (store_ti_get(api_store(r), run.pk, task, (int)map_index, &ti) == 0) {
		cJSON *o = api_task_instance(&ti, &run);
		api_add_rendered(r, o, &ti, ti.try_number);
		api_reply(r, 200, o);
		ti_row_free(&ti);
	} else {
		api_problem(r, 404, "Task instance not found", "Task instance %s (map index %ld) of run %s not found",
			    task, map_index, run.run_id);
	}
	run_row_free(&run);
}

struct trigger_call {
	const struct dag *d;
	struct run_request req;
	struct run_row run;
	char *err;
};

static int write_run(struct store *st, void *arg)
{
	struct trigger_call *c = arg;
	return runs_queue(st, c->d, &c->req, &c->run, &c->err);
}

/* The logical date the body asked for, for messages. */
static const char *body_date(const cJSON *body)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "logical_date");
	if (!cJSON_IsString(v))
		v = cJSON_GetObjectItemCaseSensitive(body, "execution_date");
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* POST /dags/{dag_id}/dagRuns: queues a manual run; the scheduler starts it at once. */
static void trigger(struct req *r)
{
	struct trigger_call tc = {0};
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	char *conf_text = NULL;
	if (body_trigger(body, &tc.req, &conf_text, &tc.err) < 0) {
		api_problem(r, 400, "Bad Request", "%s", tc.err);
		goto out;
	}
	/* Refused before anything else is looked up: a bad run_id is the caller's error, whatever
	 * the DAG. */
	if (runs_check(&tc.req, &tc.err) < 0) {
		api_problem(r, 400, "Bad Request", "%s", tc.err);
		goto out;
	}
	struct dag *d = api_dag_by_id(r, api_param(r, "dag_id"));
	if (!d)
		goto out;
	tc.d = d;
	int rc = sched_write(write_run, &tc);
	if (rc == -EEXIST)
		api_problem(r, 409, "Conflict", "DAGRun with DAG ID: '%s' and DAGRun ID or logical date '%s' already exists",
			    d->dag_id, tc.req.run_id ? tc.req.run_id : body_date(body));
	else if (rc == -EINVAL)
		api_problem(r, 400, "Bad Request", "%s", tc.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply(r, 200, api_dag_run(&tc.run));
	dag_unref(d);
out:
	run_row_free(&tc.run);
	free(tc.err);
	free(conf_text);
	cJSON_Delete(body);
}

struct mark_call {
	const struct dag *d;
	const struct run_row *run;
	struct ops_selection sel;
	const char *state;
	bool dry_run;
	int n;
	struct ti_row *rows;
	char *err;
};

static int mark_fn(struct store *st, void *arg)
{
	struct mark_call *c = arg;
	c->n = ops_mark(st, sched_engine(), c->d, c->run, &c->sel, c->state, c->dry_run, &c->rows, &c->err);
	return c->n < 0 ? c->n : 0;
}

/* PATCH .../taskInstances/{task_id}[/{map_index}] {"dry_run", "new_state"}: returns a reference.
 * In a running run the engine marks it: a try under way is stopped and ends in the new state
 * (failed without a retry), as Airflow does. */
static void patch_ti(struct req *r)
{
	struct run_row run = {0};
	struct dag *d = NULL;
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(body, "new_state");
	const cJSON *dry = cJSON_GetObjectItemCaseSensitive(body, "dry_run");
	const char *mi = api_param(r, "map_index"), *task = api_param(r, "task_id");
	char *end = NULL;
	long mindex = mi ? strtol(mi, &end, 10) : -2;
	if (mi && (!*mi || *end || mindex < -1 || mindex > 1000000000)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer, not '%s'", mi);
		goto out;
	}
	if (!cJSON_IsString(state)) {
		api_problem(r, 400, "Bad Request", "new_state (success, failed or skipped) is required");
		goto out;
	}
	if (!(d = api_dag_by_id(r, api_param(r, "dag_id"))) || !api_find_run(r, &run))
		goto out;
	const char *ids[1] = {task};
	struct mark_call c = {.d = d, .run = &run, .state = state->valuestring, .dry_run = cJSON_IsTrue(dry)};
	c.sel = (struct ops_selection){.task_ids = ids, .ntasks = 1, .map_index = (int)mindex};
	int rc = sched_write(mark_fn, &c);
	if (rc == 0 && c.n == 0) {
		api_problem(r, 404, "Task instance not found", "no task instance %s in run %s", task, run.run_id);
	} else if (rc == 0) {
		api_reply(r, 200, api_ti_reference(c.rows[0].task_id, &run));
	} else {
		api_problem(r, rc == -EBUSY ? 409 : rc == -EINVAL || rc == -ENOENT ? 400 : 503,
			    rc == -EBUSY ? "Conflict" : "Bad Request", "%s", c.err ? c.err : strerror(-rc));
	}
	for (int i = 0; i < c.n; i++)
		ti_row_free(&c.rows[i]);
	free(c.rows);
	free(c.err);
out:
	run_row_free(&run);
	dag_unref(d);
	cJSON_Delete(body);
}

const struct route api_dag_run_routes[] = {
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", ROLE_OP, patch_ti, "task_instance.edit"},
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", ROLE_OP, patch_ti, "task_instance.edit"},
	{"POST", "/dags/{dag_id}/dagRuns", ROLE_OP, trigger, "dag_run.create"},
	{"GET", "/dags/{dag_id}/dagRuns", ROLE_VIEWER, list_runs, NULL},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}", ROLE_VIEWER, get_run, NULL},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", ROLE_VIEWER, get_ti, NULL},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", ROLE_VIEWER, get_ti, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
