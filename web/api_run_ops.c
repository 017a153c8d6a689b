/* Changing runs: clearTaskInstances, updateTaskInstancesState, dagRuns/{id}/clear, PATCH and
 * DELETE of a run; reading: dagStats and dagRuns/list. Changes run on the scheduler's thread
 * through the use cases of ops.c, which also decide that clearing inside a running run is done by
 * the engine in memory; marking and deleting a run that is running right now answer 409. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "web/bodies.h"
#include "orchestrator/engine.h"
#include "orchestrator/ops.h"
#include "orchestrator/scheduler.h"

#define MAX_IDS 256

struct op_call {
	const struct dag *d;
	const struct run_row *run;
	struct ops_selection sel;
	const char *mark_state;   /* NULL = clear */
	bool dry_run;
	struct ti_row *rows;
	int n;
	char *err;
};

static int run_op(struct store *st, void *arg)
{
	struct op_call *c = arg;
	c->n = c->mark_state ? ops_mark(st, sched_engine(), c->d, c->run, &c->sel, c->mark_state, c->dry_run,
					&c->rows, &c->err)
			     : ops_clear(st, sched_engine(), c->d, c->run, &c->sel, c->dry_run, &c->rows, &c->err);
	return c->n < 0 ? c->n : 0;
}

static void free_call(struct op_call *c)
{
	for (int i = 0; i < c->n; i++)
		ti_row_free(&c->rows[i]);
	free(c->rows);
	free(c->err);
	c->rows = NULL;
	c->n = 0;
	c->err = NULL;
}

/* Runs a clear or mark through the scheduler; replies and returns false on failure. */
static bool do_op(struct req *r, struct op_call *c)
{
	int rc = sched_write(run_op, c);
	if (rc == 0)
		return true;
	if (rc == -EBUSY)
		api_problem(r, 409, "Conflict", "%s", c->err ? c->err : "the run is running");
	else if (rc == -ENOENT || rc == -EINVAL)
		api_problem(r, rc == -ENOENT ? 404 : 400, rc == -ENOENT ? "Not found" : "Bad Request", "%s",
			    c->err ? c->err : "invalid request");
	else
		api_write_failed(r, rc);
	free_call(c);
	return false;
}

static bool flag(const cJSON *body, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* Task ids from a JSON array (borrowed strings) or all tasks of d. */
static size_t task_ids(const cJSON *arr, const struct dag *d, const char **out)
{
	size_t n = 0;
	if (cJSON_IsArray(arr)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, arr)
			if (cJSON_IsString(it) && n < MAX_IDS)
				out[n++] = it->valuestring;
		return n;
	}
	for (size_t i = 0; i < d->ntasks && n < MAX_IDS; i++)
		out[n++] = d->tasks[i].id;
	return n;
}

/* POST /dags/{dag_id}/clearTaskInstances (dry_run defaults to true, only_failed to true). */
static void clear_tis(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	struct body_clear b;
	char *err = NULL;
	struct dag *d = NULL;
	const char *ids[MAX_IDS];
	if (body_clear_tis(body, &b, &err) < 0) {
		api_problem(r, 400, "Bad Request", "%s", err);
		goto out;
	}
	if (!(d = api_dag_by_id(r, api_param(r, "dag_id"))))
		goto out;
	struct op_call c = {.d = d, .dry_run = b.dry_run};
	c.sel = (struct ops_selection){
		.task_ids = ids, .ntasks = task_ids(b.task_ids, d, ids), .map_index = -2, .upstream = b.upstream,
		.downstream = b.downstream, .only_failed = b.only_failed, .only_unfinished = b.only_running,
	};
	struct run_row *runs = NULL;
	int nruns = store_run_list(api_store(r), d->dag_id, &runs);
	cJSON *refs = cJSON_CreateArray();
	bool ok = true;
	for (int i = 0; i < nruns; i++) {
		bool want = b.run_id ? !strcmp(b.run_id, runs[i].run_id)
				     : (b.from == USEC_NONE || runs[i].logical_date >= b.from) &&
				       (b.to == USEC_NONE || runs[i].logical_date <= b.to);
		if (ok && want) {
			c.run = &runs[i];
			ok = do_op(r, &c);
			for (int k = 0; ok && k < c.n; k++)
				cJSON_AddItemToArray(refs, api_ti_reference(c.rows[k].task_id, &runs[i]));
			if (ok)
				free_call(&c);
		}
		run_row_free(&runs[i]);
	}
	free(runs);
	if (ok) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "task_instances", refs);
		api_reply(r, 200, o);
	} else {
		cJSON_Delete(refs);
	}
out:
	free(err);
	dag_unref(d);
	cJSON_Delete(body);
}

/* POST /dags/{dag_id}/updateTaskInstancesState */
static void update_tis(struct req *r)
{
	struct run_row run = {0};
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	struct dag *d = NULL;
	struct body_mark b;
	char *err = NULL;
	if (body_update_tis(body, &b, &err) < 0) {
		api_problem(r, 400, "Bad Request", "%s", err);
		goto out;
	}
	if (!(d = api_dag_by_id(r, api_param(r, "dag_id"))))
		goto out;
	int found = b.run_id ? store_run_get(api_store(r), d->dag_id, b.run_id, 0, &run)
		    : b.has_date ? store_run_get(api_store(r), d->dag_id, NULL, b.when, &run)
		    : -EINVAL;
	if (found < 0) {
		api_problem(r, 404, "DAGRun not found", "no such run of DAG '%s'", d->dag_id);
		goto out;
	}
	const char *ids[1] = {b.task_id};
	struct op_call c = {.d = d, .run = &run, .mark_state = b.state, .dry_run = b.dry_run};
	c.sel = (struct ops_selection){.task_ids = ids, .ntasks = 1, .map_index = -2, .upstream = b.upstream,
				       .downstream = b.downstream};
	if (do_op(r, &c)) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "task_instances");
		for (int k = 0; k < c.n; k++)
			cJSON_AddItemToArray(arr, api_ti_reference(c.rows[k].task_id, &run));
		api_reply(r, 200, o);
		free_call(&c);
	}
out:
	free(err);
	run_row_free(&run);
	dag_unref(d);
	cJSON_Delete(body);
}

/* POST /dags/{dag_id}/dagRuns/{dag_run_id}/clear: every task instance of the run. */
static void clear_run(struct req *r)
{
	struct run_row run = {0};
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	struct dag *d = api_dag_by_id(r, api_param(r, "dag_id"));
	const char *ids[MAX_IDS];
	if (!d || !api_find_run(r, &run))
		goto out;
	struct op_call c = {.d = d, .run = &run, .dry_run = flag(body, "dry_run", true)};
	c.sel = (struct ops_selection){.task_ids = ids, .ntasks = task_ids(NULL, d, ids), .map_index = -2};
	if (!do_op(r, &c))
		goto out;
	if (c.dry_run) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "task_instances");
		for (int k = 0; k < c.n; k++)
			cJSON_AddItemToArray(arr, api_task_instance(&c.rows[k], &run));
		cJSON_AddNumberToObject(o, "total_entries", c.n);
		api_reply(r, 200, o);
	} else {
		struct run_row now = {0};
		if (store_run_get(api_store(r), run.dag_id, run.run_id, 0, &now) == 0)
			api_reply(r, 200, api_dag_run(&now));
		run_row_free(&now);
	}
	free_call(&c);
out:
	run_row_free(&run);
	dag_unref(d);
	cJSON_Delete(body);
}

struct run_state_call {
	const struct dag *d;
	const struct run_row *run;
	const char *state;
	struct run_row now;        /* the run right after the change, as the reply shows it */
	char *err;
};

static int run_state_fn(struct store *st, void *arg)
{
	struct run_state_call *c = arg;
	char *why = xasprintf("marked %s through the REST API", c->state);
	int rc = ops_set_run_state(st, sched_engine(), c->d, c->run, c->state, why, &c->err);
	free(why);
	if (rc == 0 && store_run_get(st, c->run->dag_id, c->run->run_id, 0, &c->now) < 0)
		rc = -ENOENT;
	return rc;
}

/* PATCH /dags/{dag_id}/dagRuns/{dag_run_id} {"state": "success" | "failed" | "queued"}, as
 * Airflow: on a running run "failed" stops it (running tries failed, the rest skipped) and
 * "success" marks every task success; "queued" touches no task instance. */
static void patch_run(struct req *r)
{
	struct run_row run = {0};
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(body, "state");
	struct dag *d = NULL;
	if (!cJSON_IsString(state) || (strcmp(state->valuestring, "success") && strcmp(state->valuestring, "failed") &&
				       strcmp(state->valuestring, "queued"))) {
		api_problem(r, 400, "Bad Request", "state must be success, failed or queued");
		goto out;
	}
	if (!(d = api_dag_by_id(r, api_param(r, "dag_id"))) || !api_find_run(r, &run))
		goto out;
	struct run_state_call c = {d, &run, state->valuestring, {0}, NULL};
	int rc = sched_write(run_state_fn, &c);
	if (rc == -EBUSY || rc == -EALREADY)
		api_problem(r, 409, "Conflict", "%s", c.err);
	else if (rc == -ENOENT && !c.err)
		api_problem(r, 404, "DAGRun not found", "the run is gone");
	else if (rc == -EINVAL || rc == -ENOENT)
		api_problem(r, 400, "Bad Request", "%s", c.err ? c.err : "invalid request");
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply(r, 200, api_dag_run(&c.now));
	run_row_free(&c.now);
	free(c.err);
out:
	run_row_free(&run);
	dag_unref(d);
	cJSON_Delete(body);
}

struct note_call {
	const struct run_row *run;
	const char *note;
	char *err;
};

static int note_fn(struct store *st, void *arg)
{
	struct note_call *c = arg;
	return ops_set_note(st, sched_engine(), c->run, NULL, -1, c->note, &c->err);
}

/* PATCH /dags/{dag_id}/dagRuns/{dag_run_id}/setNote: returns the run. */
static void set_note(struct req *r)
{
	struct run_row run = {0}, now = {0};
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const char *note = api_note_body(r, body);
	if (note && api_find_run(r, &run)) {
		struct note_call c = {&run, note, NULL};
		int rc = sched_write(note_fn, &c);
		if (rc < 0)
			api_write_failed(r, rc);
		else if (store_run_get(api_store(r), run.dag_id, run.run_id, 0, &now) == 0)
			api_reply(r, 200, api_dag_run(&now));
		free(c.err);
	}
	run_row_free(&now);
	run_row_free(&run);
	cJSON_Delete(body);
}

struct delete_call {
	const char *home;
	const struct run_row *run;
	char *err;
};

static int delete_run_fn(struct store *st, void *arg)
{
	struct delete_call *c = arg;
	return ops_delete_run(st, sched_engine(), c->home, c->run->dag_id, c->run->run_id, false, &c->err);
}

/* DELETE /dags/{dag_id}/dagRuns/{dag_run_id} (its logs go too). */
static void delete_run(struct req *r)
{
	struct run_row run = {0};
	if (!api_find_run(r, &run))
		return;
	struct delete_call c = {api_home(r), &run, NULL};
	int rc = sched_write(delete_run_fn, &c);
	if (rc == -EBUSY)
		api_problem(r, 409, "Conflict", "%s", c.err);
	else if (rc == -ENOENT)
		api_problem(r, 404, "DAGRun not found", "%s", c.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply_empty(r);
	free(c.err);
	run_row_free(&run);
}

/* GET /dagStats?dag_ids=a,b */
static void dag_stats(struct req *r)
{
	static const char *const states[4] = {"queued", "running", "success", "failed"};
	const char *ids = api_query(r, "dag_ids");
	if (!ids || !*ids) {
		api_problem(r, 400, "Bad Request", "dag_ids is required");
		return;
	}
	char *copy = xstrdup(ids), *save = NULL;
	cJSON *o = cJSON_CreateObject(), *dags = cJSON_AddArrayToObject(o, "dags");
	int n = 0;
	for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save), n++) {
		int counts[4];
		store_run_counts(api_store(r), id, counts);
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "dag_id", id);
		cJSON *st = cJSON_AddArrayToObject(e, "stats");
		for (int i = 0; i < 4; i++) {
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "state", states[i]);
			cJSON_AddNumberToObject(s, "count", counts[i]);
			cJSON_AddItemToArray(st, s);
		}
		cJSON_AddItemToArray(dags, e);
	}
	cJSON_AddNumberToObject(o, "total_entries", n);
	free(copy);
	api_reply(r, 200, o);
}

static bool in_list(const cJSON *arr, const char *s)
{
	const cJSON *it;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return true;
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && !strcmp(it->valuestring, s))
			return true;
	return false;
}

static bool in_range(const cJSON *body, const char *gte, const char *lte, usec_t t)
{
	usec_t v;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, gte), *b = cJSON_GetObjectItemCaseSensitive(body, lte);
	if (cJSON_IsString(a) && parse_iso8601(a->valuestring, &v) == 0 && (t == USEC_NONE || t < v))
		return false;
	if (cJSON_IsString(b) && parse_iso8601(b->valuestring, &v) == 0 && (t == USEC_NONE || t > v))
		return false;
	return true;
}

/* POST /dags/~/dagRuns/list */
static void list_runs_batch(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	if (!cJSON_IsObject(body)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object");
		cJSON_Delete(body);
		return;
	}
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(body, "page_limit");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(body, "page_offset");
	int limit = cJSON_IsNumber(lim) ? (int)lim->valuedouble : 100, offset = cJSON_IsNumber(off) ? (int)off->valuedouble : 0;
	if (limit < 0 || offset < 0) {
		api_problem(r, 400, "Bad Request", "page_limit and page_offset must be non-negative");
		cJSON_Delete(body);
		return;
	}
	struct run_row *runs = NULL;
	int n = store_run_list(api_store(r), NULL, &runs);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		struct run_row *x = &runs[i];
		if (in_list(cJSON_GetObjectItemCaseSensitive(body, "dag_ids"), x->dag_id) &&
		    in_list(cJSON_GetObjectItemCaseSensitive(body, "states"), x->state) &&
		    in_range(body, "execution_date_gte", "execution_date_lte", x->logical_date) &&
		    in_range(body, "start_date_gte", "start_date_lte", x->start_date) &&
		    in_range(body, "end_date_gte", "end_date_lte", x->end_date))
			cJSON_AddItemToArray(all, api_dag_run(x));
		run_row_free(x);
	}
	free(runs);
	const cJSON *order = cJSON_GetObjectItemCaseSensitive(body, "order_by");
	api_reply_page_by(r, "dag_runs", all, limit, offset, cJSON_IsString(order) ? order->valuestring : NULL);
	cJSON_Delete(body);
}

const struct route api_run_op_routes[] = {
	{"POST", "/dags/~/dagRuns/list", ROLE_VIEWER, list_runs_batch, NULL},
	{"POST", "/dags/{dag_id}/clearTaskInstances", ROLE_OP, clear_tis, "task_instance.clear"},
	{"POST", "/dags/{dag_id}/updateTaskInstancesState", ROLE_OP, update_tis, "task_instance.edit"},
	{"POST", "/dags/{dag_id}/dagRuns/{dag_run_id}/clear", ROLE_OP, clear_run, "dag_run.clear"},
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}", ROLE_OP, patch_run, "dag_run.edit"},
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}/setNote", ROLE_OP, set_note, "dag_run.edit"},
	{"DELETE", "/dags/{dag_id}/dagRuns/{dag_run_id}", ROLE_OP, delete_run, "dag_run.delete"},
	{"GET", "/dagStats", ROLE_VIEWER, dag_stats, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
