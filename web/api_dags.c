/* /dags: list, get, PATCH (pause), details, tasks; /dagSources/{file_token} */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "web/dagcache.h"
#include "orchestrator/config.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/scheduler.h"

#define MAX_TAGS 32

/* Finds the daemon's record of a DAG, replying 404 when there is none. */
bool api_dag_row(struct req *r, const char *dag_id, struct dag_row *out)
{
	if (store_dag_row(api_store(r), dag_id, out) == 0)
		return true;
	api_problem(r, 404, "DAG not found", "DAG with dag_id: '%s' not found", dag_id);
	return false;
}

struct dag *api_dag_version(struct req *r, const char *dag_id, const char *version)
{
	/* Parsed once per version, with the daemon's DAG-file limits (a DAG that needs raised limits
	 * loads here as it does in the scheduler). */
	const struct config *cfg = api_config(r);
	struct dag_lua_limits lim = {0}, *limits = NULL;
	if (cfg) {
		lim = (struct dag_lua_limits){cfg->dag_memory_limit, cfg->dag_instruction_limit, cfg->dag_time_limit};
		limits = &lim;
	}
	return dagcache_get(api_store(r), dag_id, version, api_lib_dir(r), limits);
}

/* The DAG as of its current version, parsed from the stored source (a new reference). */
struct dag *api_load_dag(struct req *r, const struct dag_row *row)
{
	if (!row->version) {
		api_problem(r, 404, "DAG not found", "DAG '%s' has no stored version", row->dag_id);
		return NULL;
	}
	struct dag *d = api_dag_version(r, row->dag_id, row->version);
	if (!d)
		api_problem(r, 500, "Internal Server Error", "cannot load the stored version of DAG '%s'", row->dag_id);
	return d;
}

struct dag *api_dag_by_id(struct req *r, const char *dag_id)
{
	struct dag_row row;
	if (!api_dag_row(r, dag_id, &row))
		return NULL;
	struct dag *d = api_load_dag(r, &row);
	dag_row_free(&row);
	return d;
}

static bool has_any_tag(const struct dag_row *d, const char **tags, int ntags)
{
	if (ntags == 0)
		return true;
	cJSON *arr = d->tags ? cJSON_Parse(d->tags) : NULL;
	bool hit = false;
	for (int i = 0; i < cJSON_GetArraySize(arr) && !hit; i++)
		for (int k = 0; k < ntags && !hit; k++)
			hit = !strcmp(cJSON_GetArrayItem(arr, i)->valuestring, tags[k]);
	cJSON_Delete(arr);
	return hit;
}

static void list(struct req *r)
{
	int limit, offset;
	const char *tags[MAX_TAGS];
	bool only_active, paused;
	if (!api_page(r, &limit, &offset) || !api_query_bool(r, "only_active", true, &only_active) ||
	    !api_query_bool(r, "paused", false, &paused))
		return;
	int ntags = api_query_values(r, "tags", tags, MAX_TAGS);
	const char *pattern = api_query(r, "dag_id_pattern");
	bool by_paused = api_query(r, "paused") != NULL;
	struct dag_row *rows = NULL;
	int n = store_dag_rows(api_store(r), !only_active, &rows);
	cJSON *out = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		struct dag_row *d = &rows[i];
		/* dag_id_pattern is Airflow's ILIKE '%pattern%'. */
		bool keep = has_any_tag(d, tags, ntags) && (!pattern || contains_nocase(d->dag_id, pattern)) &&
			    (!by_paused || d->is_paused == paused);
		if (keep)
			cJSON_AddItemToArray(out, api_dag_from_row(d));
		dag_row_free(d);
	}
	free(rows);
	api_reply_page(r, "dags", out, limit, offset);
}

static void get(struct req *r)
{
	struct dag_row row;
	if (!api_dag_row(r, api_param(r, "dag_id"), &row))
		return;
	api_reply(r, 200, api_dag_from_row(&row));
	dag_row_free(&row);
}

struct pause_ctx {
	const char *dag_id;
	bool paused;
};

static int write_paused(struct store *st, void *arg)
{
	struct pause_ctx *c = arg;
	return store_dag_set_paused(st, c->dag_id, c->paused);
}

static void patch(struct req *r)
{
	struct dag_row row;
	char *mask = api_query_list(r, "update_mask");
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "is_paused");
	if (mask && strcmp(mask, "is_paused")) {
		api_problem(r, 400, "Bad Request", "only is_paused can be updated, not '%s'", mask);
	} else if (!cJSON_IsBool(p)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object with a boolean is_paused");
	} else if (api_dag_row(r, api_param(r, "dag_id"), &row)) {
		struct pause_ctx c = {row.dag_id, cJSON_IsTrue(p)};
		int rc = sched_write(write_paused, &c);
		dag_row_free(&row);
		if (rc < 0)
			api_write_failed(r, rc);
		else if (api_dag_row(r, api_param(r, "dag_id"), &row)) {
			api_reply(r, 200, api_dag_from_row(&row));
			dag_row_free(&row);
		}
	}
	free(mask);
	cJSON_Delete(body);
}

static void details(struct req *r)
{
	struct dag_row row;
	if (!api_dag_row(r, api_param(r, "dag_id"), &row))
		return;
	struct dag *d = api_load_dag(r, &row);
	if (d) {
		struct dag_status st = {row.is_paused, row.is_active, row.has_import_errors, row.last_parsed_time,
					 row.next_interval_start, row.next_interval_end};
		api_reply(r, 200, api_dag_detail(d, &st));
		dag_unref(d);
	}
	dag_row_free(&row);
}

static void tasks(struct req *r)
{
	struct dag_row row;
	if (!api_dag_row(r, api_param(r, "dag_id"), &row))
		return;
	struct dag *d = api_load_dag(r, &row);
	const char *one = api_param(r, "task_id"), *order = api_query(r, "order_by");
	if (d && one) {
		int i = dag_task_index(d, one);
		if (i < 0)
			api_problem(r, 404, "Task not found", "Task with id '%s' not found", one);
		else
			api_reply(r, 200, api_task(d, &d->tasks[i]));
	} else if (d) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < d->ntasks; i++)
			cJSON_AddItemToArray(arr, api_task(d, &d->tasks[i]));
		/* Airflow lists tasks by task_id unless asked otherwise. */
		if (api_order(r, "tasks", arr, "task_id") && api_order(r, "tasks", arr, order)) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToObject(o, "tasks", arr);
			cJSON_AddNumberToObject(o, "total_entries", (double)d->ntasks);
			api_reply(r, 200, o);
		} else {
			cJSON_Delete(arr);
		}
	}
	dag_unref(d);
	dag_row_free(&row);
}

static void source(struct req *r)
{
	const char *token = api_param(r, "file_token");
	struct dag_row *rows = NULL;
	int n = store_dag_rows(api_store(r), true, &rows);
	bool done = false;
	for (int i = 0; i < n; i++) {
		char t[33], *src = NULL, *fileloc = NULL;
		api_file_token(rows[i].fileloc, t);
		if (!done && !strcmp(t, token) && rows[i].version &&
		    store_dag_version_source(api_store(r), rows[i].dag_id, rows[i].version, &src, &fileloc) == 0) {
			/* Accept: text/plain gets the bare source, as from Airflow. */
			const char *accept = api_header(r, "Accept");
			if (accept && strstr(accept, "text/plain") && !strstr(accept, "application/json")) {
				api_reply_text(r, 200, src);
				src = NULL;
			} else {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "content", src);
				api_reply(r, 200, o);
			}
			done = true;
		}
		free(src);
		free(fileloc);
		dag_row_free(&rows[i]);
	}
	free(rows);
	if (!done)
		api_problem(r, 404, "Not found", "no DAG source for file token '%s'", token);
}

const struct route api_dag_routes[] = {
	{"GET", "/dags", ROLE_VIEWER, list, NULL},
	{"GET", "/dags/{dag_id}", ROLE_VIEWER, get, NULL},
	{"PATCH", "/dags/{dag_id}", ROLE_OP, patch, "dag.edit"},
	{"GET", "/dags/{dag_id}/details", ROLE_VIEWER, details, NULL},
	{"GET", "/dags/{dag_id}/tasks", ROLE_VIEWER, tasks, NULL},
	{"GET", "/dags/{dag_id}/tasks/{task_id}", ROLE_VIEWER, tasks, NULL},
	{"GET", "/dagSources/{file_token}", ROLE_VIEWER, source, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
