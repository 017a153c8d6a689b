/* Listing task instances with Airflow's filters: GET .../dagRuns/{dag_run_id}/taskInstances (with
 * "~" for every DAG and every run), POST /dags/~/dagRuns/~/taskInstances/list (the same filters in
 * a body), and GET .../taskInstances/{task_id}/listMapped. One filter, filled from the query
 * string or from the body, decides for both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "web/bodies.h"
#include "web/ti_filter.h"

/* From the query string ---------------------------------------------------------------------- */

static bool query_range(struct req *r, const char *field, struct ti_range *out)
{
	char key[64];
	const char *suffix[2] = {"_gte", "_lte"};
	usec_t *dst[2] = {&out->gte, &out->lte};
	for (int i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "%s%s", field, suffix[i]);
		const char *v = api_query(r, key);
		if (v && parse_iso8601(v, dst[i]) < 0) {
			api_problem(r, 400, "Bad Request", "%s must be an ISO 8601 date-time, not '%s'", key, v);
			return false;
		}
	}
	return true;
}

static bool query_number(struct req *r, const char *key, double *out)
{
	const char *v = api_query(r, key);
	char *end;
	if (!v)
		return true;
	*out = strtod(v, &end);
	if (!*v || *end || isnan(*out)) {
		api_problem(r, 400, "Bad Request", "%s must be a number, not '%s'", key, v);
		return false;
	}
	return true;
}

static bool filter_from_query(struct req *r, struct ti_filter *f)
{
	ti_filter_init(f);
	f->states.n = api_query_values(r, "state", f->states.v, TI_FILTER_VALUES);
	f->pools.n = api_query_values(r, "pool", f->pools.v, TI_FILTER_VALUES);
	f->queues.n = api_query_values(r, "queue", f->queues.v, TI_FILTER_VALUES);
	f->executors.n = api_query_values(r, "executor", f->executors.v, TI_FILTER_VALUES);
	return query_range(r, "execution_date", &f->execution_date) && query_range(r, "start_date", &f->start_date) &&
	       query_range(r, "end_date", &f->end_date) && query_range(r, "updated_at", &f->updated_at) &&
	       query_number(r, "duration_gte", &f->duration_gte) && query_number(r, "duration_lte", &f->duration_lte);
}

/* The instances the filter keeps, across the runs of one DAG (dag_id) or of all (NULL). */
static cJSON *collect(struct req *r, const char *dag_id, const struct ti_filter *f)
{
	struct run_row *runs = NULL;
	int n = store_run_list(api_store(r), dag_id, &runs);
	cJSON *all = cJSON_CreateArray();
	/* Oldest run first, so that a list across runs reads in the order they happened. */
	for (int i = n - 1; i >= 0; i--) {
		struct ti_row *tis = NULL;
		int m = ti_filter_run(f, &runs[i]) ? store_ti_list(api_store(r), runs[i].pk, &tis) : 0;
		for (int k = 0; k < m; k++) {
			if (ti_filter_ti(f, &tis[k]))
				cJSON_AddItemToArray(all, api_task_instance(&tis[k], &runs[i]));
			ti_row_free(&tis[k]);
		}
		free(tis);
	}
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	return all;
}

struct page_writer {
	struct strbuf *sb;
	const struct run_row *run;
	int n;
};

static void write_row(const struct ti_row *t, void *ctx)
{
	struct page_writer *w = ctx;
	if (w->n++)
		sb_putc(w->sb, ',');
	api_task_instance_write(w->sb, t, w->run);
}

/* The page of one run's instances in the store's order (no ?order_by=): the same reply as
 * collect() and api_reply_page() give, but only the instances on the page become JSON, so that a
 * run of 500 tasks costs one indexed read and `limit` objects, not 500 objects and a copy. Without
 * filters on the instances, each row of the page is written as the store reads it (no copies). */
static void list_one_run(struct req *r, const struct run_row *run, const struct ti_filter *f, int limit,
			 int offset)
{
	struct strbuf sb = {0};
	int total = 0;
	bool keep_run = ti_filter_run(f, run);
	sb_puts(&sb, "{\"task_instances\":[");
	if (keep_run && ti_filter_keeps_every_ti(f)) {
		sb_reserve(&sb, (size_t)limit * 800);
		struct page_writer w = {&sb, run, 0};
		if (store_ti_page_each(api_store(r), run->pk, offset, limit, &total, write_row, &w) < 0) {
			sb.len = 0; /* as collect() has it: a failed read lists nothing */
			sb_puts(&sb, "{\"task_instances\":[");
			total = 0;
		}
	} else if (keep_run) {
		struct ti_row *tis = NULL;
		int m = store_ti_list(api_store(r), run->pk, &tis), i = 0;
		for (int k = 0; k < m; k++) {
			if (ti_filter_ti(f, &tis[k])) {
				if (i >= offset && i - offset < limit) {
					if (i > offset)
						sb_putc(&sb, ',');
					api_task_instance_write(&sb, &tis[k], run);
				}
				i++;
			}
			ti_row_free(&tis[k]);
		}
		free(tis);
		total = i;
	}
	sb_printf(&sb, "],\"total_entries\":%d}", total);
	api_reply_json(r, 200, sb_steal(&sb));
}

/* GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances; "~" for either means any. */
static void list(struct req *r)
{
	int limit, offset;
	struct ti_filter f;
	const char *dag_id = api_param(r, "dag_id"), *run_id = api_param(r, "dag_run_id");
	if (!api_page(r, &limit, &offset) || !filter_from_query(r, &f))
		return;
	bool any_dag = !strcmp(dag_id, "~"), any_run = !strcmp(run_id, "~");
	if (!any_dag) {
		f.dag_ids.v[f.dag_ids.n++] = dag_id;
		struct dag_row row;
		if (!api_dag_row(r, dag_id, &row))
			return;
		dag_row_free(&row);
	}
	if (!any_run) {
		struct run_row run = {0};
		if (any_dag) {
			api_problem(r, 400, "Bad Request", "a dag_run_id needs a dag_id (use ~ for both)");
			return;
		}
		if (!api_find_run(r, &run))
			return;
		f.run_ids.v[f.run_ids.n++] = run_id;
		const char *order = api_query(r, "order_by");
		if (!order || !*order) {
			list_one_run(r, &run, &f, limit, offset);
			run_row_free(&run);
			return;
		}
		run_row_free(&run);
	}
	api_reply_page(r, "task_instances", collect(r, any_dag ? NULL : dag_id, &f), limit, offset);
}

/* POST /dags/~/dagRuns/~/taskInstances/list */
static void list_batch(struct req *r)
{
	struct ti_filter f;
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	char *err = NULL;
	if (body_ti_filter(body, &f, &err) < 0)
		api_problem(r, 400, "Bad Request", "%s", err);
	else
		api_reply_page(r, "task_instances", collect(r, f.dag_ids.n == 1 ? f.dag_ids.v[0] : NULL, &f), 1 << 30, 0);
	free(err);
	cJSON_Delete(body);
}

/* GET .../taskInstances/{task_id}/listMapped: the instances of a mapped task. */
static void list_mapped(struct req *r)
{
	int limit, offset;
	struct ti_filter f;
	struct run_row run = {0};
	const char *task_id = api_param(r, "task_id");
	if (!api_page(r, &limit, &offset) || !filter_from_query(r, &f))
		return;
	struct dag *d = api_dag_by_id(r, api_param(r, "dag_id"));
	if (!d)
		return;
	int t = dag_task_index(d, task_id);
	if (t < 0 || !d->tasks[t].mapped) {
		api_problem(r, 404, "Task not found", t < 0 ? "Task id %s not found" : "Task id %s is not mapped",
			    task_id);
	} else if (api_find_run(r, &run)) {
		f.dag_ids.v[f.dag_ids.n++] = run.dag_id;
		f.run_ids.v[f.run_ids.n++] = run.run_id;
		f.task_ids.v[f.task_ids.n++] = task_id;
		f.mapped_only = true;
		cJSON *all = collect(r, run.dag_id, &f);
		/* Airflow orders mapped instances by map_index unless asked otherwise. */
		if (api_order(r, "task_instances", all, "map_index"))
			api_reply_page(r, "task_instances", all, limit, offset);
		else
			cJSON_Delete(all);
	}
	run_row_free(&run);
	dag_unref(d);
}

#define TIS "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"

const struct route api_ti_list_routes[] = {
	{"GET", TIS, ROLE_VIEWER, list, NULL},
	{"POST", "/dags/~/dagRuns/~/taskInstances/list", ROLE_VIEWER, list_batch, NULL},
	{"GET", TIS "/{task_id}/listMapped", ROLE_VIEWER, list_mapped, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
