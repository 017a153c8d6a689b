/* The rest of Airflow's API that an Airflow client calls, answered from what sluice has:
 * dagWarnings (tasks naming a pool that does not exist), a task instance's unmet dependencies,
 * reparseDagFile, and the resources sluice has none of (plugins, providers, extra links,
 * datasets), which are empty lists rather than 404s, since empty is the truth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "base/json.h"
#include "orchestrator/scheduler.h"

/* GET /dagWarnings (dag_id, warning_type): Airflow's "non-existent pool" warnings. */
static void dag_warnings(struct req *r)
{
	int limit, offset;
	const char *want_dag = api_query(r, "dag_id"), *want_type = api_query(r, "warning_type");
	if (!api_page(r, &limit, &offset))
		return;
	struct dag_row *rows = NULL;
	struct pool_row *pools = NULL;
	int n = store_dag_rows(api_store(r), false, &rows), np = store_pool_list(api_store(r), &pools);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		struct dag *d = NULL;
		bool wanted = (!want_dag || !strcmp(want_dag, rows[i].dag_id)) &&
			      (!want_type || !strcmp(want_type, "non-existent pool"));
		if (wanted && rows[i].version)
			d = api_dag_version(r, rows[i].dag_id, rows[i].version);
		struct strbuf missing = {0};
		for (size_t t = 0; d && t < d->ntasks; t++) {
			bool found = false;
			for (int k = 0; k < np && !found; k++)
				found = !strcmp(pools[k].name, d->tasks[t].pool);
			char quoted[300];
			snprintf(quoted, sizeof(quoted), "'%s'", d->tasks[t].pool);
			if (!found && !strstr(sb_str(&missing), quoted))
				sb_printf(&missing, "%s%s", missing.len ? ", " : "", quoted);
		}
		if (missing.len) {
			cJSON *w = cJSON_CreateObject();
			cJSON_AddStringToObject(w, "dag_id", rows[i].dag_id);
			cJSON_AddStringToObject(w, "warning_type", "non-existent pool");
			char *msg = xasprintf("Dag '%s' references non-existent pools: [%s]", rows[i].dag_id, sb_str(&missing));
			cJSON_AddStringToObject(w, "message", msg);
			free(msg);
			json_add_time(w, "timestamp", rows[i].last_parsed_time);
			cJSON_AddItemToArray(all, w);
		}
		sb_free(&missing);
		dag_unref(d);
	}
	for (int i = 0; i < n; i++)
		dag_row_free(&rows[i]);
	for (int i = 0; i < np; i++)
		pool_row_free(&pools[i]);
	free(rows);
	free(pools);
	/* Airflow's server sends "dag_warnings"; its spec, and so the official client, call the list
	 * "import_errors". Both keys carry it, so that either reader finds it typed. */
	if (!api_order(r, "dag_warnings", all, api_query(r, "order_by"))) {
		cJSON_Delete(all);
		return;
	}
	int total = cJSON_GetArraySize(all);
	cJSON *page = cJSON_CreateArray();
	for (int i = offset; i < total && i < offset + limit; i++)
		cJSON_AddItemToArray(page, cJSON_Duplicate(cJSON_GetArrayItem(all, i), true));
	cJSON_Delete(all);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "dag_warnings", page);
	cJSON_AddItemToObject(o, "import_errors", cJSON_Duplicate(page, true));
	cJSON_AddNumberToObject(o, "total_entries", total);
	api_reply(r, 200, o);
}

static void add_dep(cJSON *arr, const char *name, const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddItemToArray(arr, o);
}

/* Why the upstream tasks hold ti back (Airflow's "Trigger Rule" dependency), if they do. */
static void trigger_rule_dep(struct req *r, const struct dag *d, int task, const struct run_row *run, cJSON *deps)
{
	const struct task *t = &d->tasks[task];
	struct up_counts c = {0};
	struct strbuf states = {0}, ids = {0};
	struct ti_row *tis = NULL;
	int n = t->n_up ? store_ti_list(api_store(r), run->pk, &tis) : 0;
	for (size_t u = 0; u < t->n_up; u++) {
		const char *up = d->tasks[t->upstream[u]].id;
		for (int k = 0; k < n; k++) {
			if (strcmp(tis[k].task_id, up))
				continue;
			int s = ti_state_parse(tis[k].state);
			c.total++;
			c.success += s == TI_SUCCESS;
			c.failed += s == TI_FAILED;
			c.skipped += s == TI_SKIPPED;
			c.upstream_failed += s == TI_UPSTREAM_FAILED;
			c.removed += s == TI_REMOVED;
			sb_printf(&states, "%s%s", states.len ? ", " : "", tis[k].state);
		}
		sb_printf(&ids, "%s'%s'", ids.len ? ", " : "", up);
	}
	for (int k = 0; k < n; k++)
		ti_row_free(&tis[k]);
	free(tis);
	enum tr_decision dec = trigger_rule_eval(t->trigger_rule, &c);
	if (t->n_up && dec != TR_RUN) {
		int done = c.success + c.failed + c.skipped + c.upstream_failed + c.removed;
		char *why = xasprintf("Task's trigger rule '%s' %s: %d of %d upstream task instances have finished "
				      "(%d success, %d failed, %d skipped, %d upstream_failed). upstream_states=[%s], "
				      "upstream_task_ids=[%s]",
				      trigger_rule_name(t->trigger_rule), dec == TR_WAIT ? "is not met yet" : "cannot be met",
				      done, c.total, c.success, c.failed, c.skipped, c.upstream_failed, sb_str(&states),
				      sb_str(&ids));
		add_dep(deps, "Trigger Rule", why);
		free(why);
	}
	sb_free(&states);
	sb_free(&ids);
}

/* GET .../taskInstances/{task_id}[/{map_index}]/dependencies: what keeps the instance from
 * running now, in Airflow's words. */
static void dependencies(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	const char *mi = api_param(r, "map_index");
	char *end = NULL;
	long map_index = mi ? strtol(mi, &end, 10) : -1;
	if (mi && (!*mi || *end)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer, not '%s'", mi);
		return;
	}
	struct dag *d = api_dag_by_id(r, api_param(r, "dag_id"));
	if (!d || !api_find_run(r, &run))
		goto out;
	if (store_ti_get(api_store(r), run.pk, api_param(r, "task_id"), (int)map_index, &ti) < 0) {
		api_problem(r, 404, "Task instance not found", "Task instance %s (map index %ld) of run %s not found",
			    api_param(r, "task_id"), map_index, run.run_id);
		goto out;
	}
	cJSON *deps = cJSON_CreateArray();
	int s = ti_state_parse(ti.state);
	char *why = NULL;
	if (s >= 0 && ti_state_finished((enum ti_state)s)) {
		why = xasprintf("Task is in the '%s' state.", ti.state);
		add_dep(deps, "Task Instance State", why);
	} else if (s == TI_QUEUED || s == TI_RUNNING) {
		why = xasprintf("Task is in the '%s' state.", ti.state);
		add_dep(deps, "Task Instance State", why);
	} else {
		if (strcmp(run.state, "running")) {
			why = xasprintf("Task instance's dagrun was not in the 'running' state but in the state '%s'.",
					run.state);
			add_dep(deps, "Dag Run State", why);
		}
		if (s == TI_UP_FOR_RETRY && ti.next_retry_at != USEC_NONE) {
			char at[ISO_BUFSZ];
			format_iso8601(ti.next_retry_at, at, sizeof(at));
			free(why);
			why = xasprintf("Task is not ready for retry yet but will be retried automatically. The task will "
					"be retried at %s.", at);
			add_dep(deps, "Not In Retry Period", why);
		}
		int t = dag_task_index(d, ti.task_id);
		if (t >= 0)
			trigger_rule_dep(r, d, t, &run, deps);
	}
	free(why);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "dependencies", deps);
	api_reply(r, 200, o);
	ti_row_free(&ti);
out:
	run_row_free(&run);
	dag_unref(d);
}

/* PUT /parseDagFile/{file_token}: reads the file again now. */
struct reparse_call {
	const char *path;
};

static int reparse_fn(struct store *w, void *arg)
{
	(void)w;
	return sched_reparse(((struct reparse_call *)arg)->path);
}

static void reparse(struct req *r)
{
	const char *token = api_param(r, "file_token");
	struct dag_row *rows = NULL;
	int n = store_dag_rows(api_store(r), true, &rows);
	char *path = NULL;
	for (int i = 0; i < n; i++) {
		char t[33];
		api_file_token(rows[i].fileloc, t);
		if (!path && !strcmp(t, token))
			path = xstrdup(rows[i].fileloc);
		dag_row_free(&rows[i]);
	}
	free(rows);
	struct reparse_call c = {path};
	int rc = path ? sched_write(reparse_fn, &c) : -ENOENT;
	if (rc == -ENOENT)
		api_problem(r, 404, "Not found", "no DAG file with file token '%s'", token);
	else if (rc < 0)
		api_write_failed(r, rc);
	else {
		api_reply(r, 201, cJSON_CreateObject());
	}
	free(path);
}

static void empty(struct req *r, const char *key)
{
	int limit, offset;
	if (!api_page(r, &limit, &offset))
		return;
	api_reply_page(r, key, cJSON_CreateArray(), limit, offset);
}

static void plugins(struct req *r) { empty(r, "plugins"); }
static void providers(struct req *r) { empty(r, "providers"); }
static void datasets(struct req *r) { empty(r, "datasets"); }
static void dataset_events(struct req *r) { empty(r, "dataset_events"); }

static void dataset(struct req *r)
{
	api_problem(r, 404, "Dataset not found", "sluice has no datasets (no dataset with uri '%s')", api_param(r, "uri"));
}

static void extra_links(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	if (!api_find_run(r, &run))
		return;
	if (store_ti_get(api_store(r), run.pk, api_param(r, "task_id"), -1, &ti) == 0) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddArrayToObject(o, "extra_links"); /* sluice's tasks have none */
		api_reply(r, 200, o);
		ti_row_free(&ti);
	} else {
		api_problem(r, 404, "Task instance not found", "Task instance %s of run %s not found", api_param(r, "task_id"),
			    run.run_id);
	}
	run_row_free(&run);
}

static void upstream_dataset_events(struct req *r)
{
	struct run_row run = {0};
	if (!api_find_run(r, &run))
		return;
	run_row_free(&run);
	empty(r, "dataset_events");
}

#define TI "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"

const struct route api_extra_routes[] = {
	{"GET", "/dagWarnings", ROLE_VIEWER, dag_warnings, NULL},
	{"GET", TI "/dependencies", ROLE_VIEWER, dependencies, NULL},
	{"GET", TI "/{map_index}/dependencies", ROLE_VIEWER, dependencies, NULL},
	{"GET", TI "/links", ROLE_VIEWER, extra_links, NULL},
	{"PUT", "/parseDagFile/{file_token}", ROLE_OP, reparse, "dag_file.reparse"},
	{"GET", "/plugins", ROLE_VIEWER, plugins, NULL},
	{"GET", "/providers", ROLE_VIEWER, providers, NULL},
	{"GET", "/datasets", ROLE_VIEWER, datasets, NULL},
	{"GET", "/datasets/events", ROLE_VIEWER, dataset_events, NULL},
	{"GET", "/datasets/{uri}", ROLE_VIEWER, dataset, NULL},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamDatasetEvents", ROLE_VIEWER, upstream_dataset_events, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
